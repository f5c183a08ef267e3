"""The Accurate modules the sandbox serves and how each one is keyed and looked up.

Public facts (reference doc): modules customer, vendor, item, warehouse, branch and the transaction
modules; lookup by ``id`` or by the document ``number`` / master key (``customerNo``, item ``no``,
name); webhook event types RECEIVE_ITEM, PURCHASE_INVOICE, PURCHASE_RETURN, ITEM (and more) with
``<kind>Id``/``<kind>No`` entries.

Assumptions: the auto-number shapes (``SI.2026.11.00001`` from the transaction date's year and
month, ``C.00001`` for customers, ``V.00001`` vendors, ``I.00001`` items), the lookup of vendors by
``vendorNo`` and of GL accounts by ``no``, and the ``glaccount`` module being read-only here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModuleSpec:
    """How one module is stored, keyed, numbered and announced by webhooks."""

    name: str
    kind: str  # "master" | "transaction" | "readonly"
    key: str  # the record field that is unique (number, customerNo, no, vendorNo, name)
    lookup: str  # detail.do / delete.do parameter besides ``id``
    prefix: str = ""  # auto-number prefix ("" = key required)
    webhook_type: str | None = None
    webhook_kind: str | None = None  # key prefix in webhook data: receiveItem -> receiveItemId/No

    @property
    def is_transaction(self) -> bool:
        """True for document modules keyed by ``number``."""
        return self.kind == "transaction"


def _master(name: str, key: str, prefix: str, webhook: tuple[str, str] | None = None) -> ModuleSpec:
    return ModuleSpec(name, "master", key, key, prefix, *(webhook or (None, None)))


def _transaction(name: str, prefix: str, webhook: tuple[str, str]) -> ModuleSpec:
    return ModuleSpec(name, "transaction", "number", "number", prefix, *webhook)


MODULES: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        _master("customer", "customerNo", "C", ("CUSTOMER", "customer")),
        _master("vendor", "vendorNo", "V", ("VENDOR", "vendor")),
        _master("item", "no", "I", ("ITEM", "item")),
        _master("warehouse", "name", "", ("WAREHOUSE", "warehouse")),
        _master("branch", "name", "", ("BRANCH", "branch")),
        ModuleSpec("glaccount", "readonly", "no", "no"),
        _transaction("sales-invoice", "SI", ("SALES_INVOICE", "salesInvoice")),
        _transaction("sales-receipt", "SR", ("SALES_RECEIPT", "salesReceipt")),
        _transaction("sales-return", "SRT", ("SALES_RETURN", "salesReturn")),
        _transaction("item-transfer", "IT", ("ITEM_TRANSFER", "itemTransfer")),
        _transaction("item-adjustment", "IA", ("ITEM_ADJUSTMENT", "itemAdjustment")),
        _transaction("purchase-order", "PO", ("PURCHASE_ORDER", "purchaseOrder")),
        _transaction("receive-item", "RI", ("RECEIVE_ITEM", "receiveItem")),
        _transaction("purchase-invoice", "PI", ("PURCHASE_INVOICE", "purchaseInvoice")),
        _transaction("purchase-return", "PRT", ("PURCHASE_RETURN", "purchaseReturn")),
    )
}

#: Event types a new subscription receives (the ones the project ingests).
DEFAULT_WEBHOOK_TYPES = ("PURCHASE_ORDER", "RECEIVE_ITEM", "PURCHASE_INVOICE", "PURCHASE_RETURN", "ITEM")

#: Actions per module kind.
READ_ACTIONS = {"list", "detail"}
WRITE_ACTIONS = {"save", "bulk-save", "delete"}
