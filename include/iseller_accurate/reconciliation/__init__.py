"""Daily reconciliation: do iSeller and Accurate agree, per outlet and local day, and on stock?

The sync status says what the sync did; this answers the accountant's question, whether the books
match the till, by reading both sides afresh (iSeller's orders and refunds, Accurate's sales
invoices, receipts and returns through its API, never from the ledger) and comparing them with each
other and with the ledger. Every difference gets one class and the documents behind it:

- ``not_synced``: the ledger has the document but it is pending, failed or blocked (see Sync Status);
- ``missing_in_accurate``: the ledger says synced, Accurate no longer has the number (deleted by
  hand); it can be re-posted (exactly once, see :func:`store.repost`);
- ``changed_in_accurate``: Accurate has the number but its amount, date or branch differ from what
  was posted;
- ``only_in_accurate``: a document in the outlet's branch and day that no iSeller order explains
  (entered by hand, or a duplicate);
- ``only_in_iseller``: a completed order (or refund) the sync never read: a gap in its windows.

Modules: :mod:`.sales` (the comparison), :mod:`.stock` (stock per outlet and warehouse),
:mod:`.store` (results in the ledger database, re-post), :mod:`.run` (what the DAG calls).
"""

from __future__ import annotations

from include.iseller_accurate.kinds import SALES_INVOICE, SALES_RECEIPT, SALES_RETURN

CLASSES: dict[str, str] = {
    "not_synced": "Not synced yet",
    "missing_in_accurate": "Missing in Accurate",
    "changed_in_accurate": "Changed in Accurate",
    "only_in_accurate": "Only in Accurate",
    "only_in_iseller": "Only in iSeller",
}

#: The sales data types compared (customers are master data, not part of a day's books).
SALES_TYPES = (SALES_INVOICE.data_type, SALES_RECEIPT.data_type, SALES_RETURN.data_type)
MODULE_OF = {kind.data_type: kind.module for kind in (SALES_INVOICE, SALES_RECEIPT, SALES_RETURN)}
TYPE_OF = {module: data_type for data_type, module in MODULE_OF.items()}
