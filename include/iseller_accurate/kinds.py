"""Each kind of document the sync writes to Accurate, declared once.

A :class:`DocumentKind` says what the ledger calls it (``data_type``), which Accurate module it is
posted to, how its number starts, which field of that module holds the number, and how an operator
names it. Building a document (:meth:`DocumentKind.document`), looking a number up in Accurate
(:func:`number_field`) and naming a document in a note, a log table or a page (:func:`label_of`) all
read from here.

This module imports nothing of the project at load time (the ledger may import it): the
:class:`~include.iseller_accurate.ledger.Document` a kind builds is imported when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.iseller_accurate.ledger import Document


@dataclass(frozen=True)
class DocumentKind:
    """One kind of document: ``DocumentKind("sales_invoice", "sales-invoice", "SI", "number", ...)``.

    A kind of another direction (Accurate to iSeller) can extend it with its own fields, e.g. a
    subclass with ``event_type`` and ``direction`` (fields after these five need defaults or
    ``kw_only``), and be registered with :func:`register`.
    """

    #: The ledger's name (``sync.documents.data_type``).
    data_type: str
    #: The Accurate module it is posted to (``sales-invoice``: ``/api/sales-invoice/save.do``).
    module: str
    #: Its number is ``<prefix>/<source number>``; None when Accurate (or the source) numbers it.
    prefix: str | None
    #: The field of ``module`` that holds the number (``number`` for transactions).
    number_field: str
    #: How an operator names it: ``sales invoice`` (``sales invoice SI/JKT01-1001``).
    label: str

    def number(self, base: str, index: int = 1) -> str:
        """``SI/JKT01-1001`` for ``base`` ``JKT01-1001``; the 2nd, 3rd... of one source get ``-2``, ``-3``."""
        if self.prefix is None:
            raise ValueError(f"{self.label} numbers are not made by the sync")
        return f"{self.prefix}/{base}" + (f"-{index}" if index > 1 else "")

    def key(self, source_id: str) -> tuple[str, str]:
        """A document's key in the ledger: ``("sales_invoice", <order id>)``."""
        return (self.data_type, source_id)

    def document(self, source_id: str, number: str | None, **fields: Any) -> Document:
        """A ledger document of this kind (``payload`` None unless given)."""
        from include.iseller_accurate.ledger import Document

        fields.setdefault("payload", None)
        return Document(self.data_type, source_id, target_module=self.module, target_number=number, **fields)



CUSTOMER = DocumentKind("customer", "customer", None, "customerNo", "customer")
SALES_INVOICE = DocumentKind("sales_invoice", "sales-invoice", "SI", "number", "sales invoice")
SALES_RECEIPT = DocumentKind("sales_receipt", "sales-receipt", "SR", "number", "sales receipt")
SALES_RETURN = DocumentKind("sales_return", "sales-return", "RT", "number", "sales return")
TRANSFER_OUT = DocumentKind("transfer_out", "item-transfer", "TO", "number", "transfer out")
TRANSFER_IN = DocumentKind("transfer_in", "item-transfer", "TI", "number", "transfer in")
TRANSFER_DIFFERENCE = DocumentKind(
    "transfer_difference", "item-adjustment", "TD", "number", "transfer difference"
)
STOCK_OPNAME = DocumentKind("stock_opname", "item-adjustment", "SO", "number", "stock opname")

#: Every kind, by data type.
KINDS: dict[str, DocumentKind] = {}

#: Accurate master records the sync looks up by number but never posts (not ledger documents).
_LOOKUP_ONLY_FIELDS = {"item": "no", "vendor": "vendorNo"}


def register(*kinds: DocumentKind) -> None:
    """Add kinds to :data:`KINDS` (a data type is declared once)."""
    for kind in kinds:
        known = KINDS.setdefault(kind.data_type, kind)
        if known is not kind:
            raise ValueError(f"document kind {kind.data_type} is declared twice")


register(
    CUSTOMER,
    SALES_INVOICE,
    SALES_RECEIPT,
    SALES_RETURN,
    TRANSFER_OUT,
    TRANSFER_IN,
    TRANSFER_DIFFERENCE,
    STOCK_OPNAME,
)

#: Ledger data types of the transfers stream; all of them move stock at their ``outlet_id``.
TRANSFER_TYPES = (TRANSFER_OUT.data_type, TRANSFER_IN.data_type, TRANSFER_DIFFERENCE.data_type)
#: Sales documents that move stock at their outlet.
STOCK_MOVING_SALES_TYPES = (SALES_INVOICE.data_type, SALES_RETURN.data_type)


def number_field(module: str) -> str:
    """The field of Accurate module ``module`` that holds its number (``customerNo`` for customers)."""
    for kind in KINDS.values():
        if kind.module == module:
            return kind.number_field
    return _LOOKUP_ONLY_FIELDS.get(module, "number")


def label_of(data_type: str | None) -> str:
    """How an operator names a data type: ``sales_invoice`` -> ``sales invoice`` (an unknown one with
    its underscores as spaces)."""
    if not data_type:
        return ""
    kind = KINDS.get(data_type)
    return kind.label if kind is not None else data_type.replace("_", " ")
