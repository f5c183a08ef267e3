"""Accurate purchases to iSeller stock (the Accurate -> iSeller direction), driven by webhook events.

What maps to what:

============================  ===============================  =========================================
Accurate event / document     iSeller                          reference_code
============================  ===============================  =========================================
RECEIVE_ITEM / receive-item   ``CreateTransfer`` type ``in``    ``ACC-RI-<number>``
PURCHASE_INVOICE / p.-invoice ``CreateTransfer`` type ``in``    ``ACC-PI-<number>`` (only lines *not*
                                                               received with a receive item: those
                                                               brought their stock already)
PURCHASE_RETURN / p.-return   ``CreateTransfer`` type ``out``   ``ACC-PRT-<number>``
anything else (ITEM, ...)     nothing: the event is ``ignored`` with the reason
============================  ===============================  =========================================

- A line's warehouse (``warehouseName``, else the header's) is the outlet whose mapping in the settings
  Variable names that warehouse (``outlets.<outlet_id>.warehouse``); its ``outlet_code`` comes from
  iSeller's GetOutlets. A document spanning several warehouses makes one transfer per outlet
  (``ACC-RI-<number>``, ``ACC-RI-<number>-2``, ...). Products are matched by SKU = Accurate item number;
  quantities are in the item's base unit (``quantityDefault`` when Accurate gives it, else
  ``quantity`` x ``unitRatio``, else ``quantity``).
- **Reconciliation, not replay.** Every event makes iSeller hold what the document holds *now*: the
  document is read again with ``detail.do``; its stock per (outlet, SKU) is compared with the sum of
  the transfers already made for it (``sync.webhook_transfers``); only the difference is sent. So a
  duplicate or late event sends nothing, an **edited** document gets one adjusting transfer
  (``-2``, ``-3`` ...: ``in`` for more, ``out`` for less), and a **DELETE** of a document that already
  reached iSeller is **reversed** by the opposite transfer. A WRITE event whose document no longer
  exists fails with that reason (the DELETE event, delivered or recovered from the history, does the
  reversal).
- **A document is its id and number**: an id that comes back under another number (a reset sandbox or
  restored database hands ids out again, or the document was renumbered) is a new document, never an
  edit of the old one. The earlier transfers are checked in iSeller first; one iSeller no longer has
  is dropped from the ledger, so the difference is computed against what iSeller really holds.
- **Exactly once.** Transfers are written to the ledger (``creating``) before ``CreateTransfer``, and
  before every create iSeller is asked ``GetTransfers(reference_code=...)``: a transfer found is
  confirmed, never created twice. A lost answer stays ``creating`` and is settled by that lookup.
- **Errors are data.** A SKU without iSeller product, an unmapped warehouse, a deleted document or an
  iSeller refusal fails that event alone, with a reason an operator can act on; nothing of that
  document is sent until all its lines can be. Unavailable services fail it as *transient*.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from include.iseller_accurate.kinds import DocumentKind, register
from include.iseller_accurate.purchases.store import PlannedTransfer, TransferRow
from include.iseller_accurate.settings import SETTINGS_VARIABLE, SyncSettings

ZERO = Decimal(0)


@dataclass(frozen=True, kw_only=True)
class PurchaseKind(DocumentKind):
    """An Accurate purchase document type the sync moves to iSeller (a :class:`DocumentKind` the other
    way round: ``prefix`` is the code of its iSeller reference, ``ACC-<prefix>-<number>``)."""

    #: Accurate's webhook event type (``RECEIVE_ITEM``).
    event_type: str
    #: +1: goods come in (transfer in); -1: goods go back to the supplier (transfer out).
    direction: int

    @property
    def code(self) -> str:
        """The reference code: ``RI`` in ``ACC-RI-<number>``."""
        return self.prefix or ""


def _purchase_kind(event_type: str, code: str, direction: int) -> PurchaseKind:
    module = event_type.lower().replace("_", "-")
    return PurchaseKind(
        data_type=event_type.lower(),
        module=module,
        prefix=code,
        number_field="number",
        label=event_type.lower().replace("_", " "),
        event_type=event_type,
        direction=direction,
    )


RECEIVE_ITEM = _purchase_kind("RECEIVE_ITEM", "RI", 1)
PURCHASE_INVOICE = _purchase_kind("PURCHASE_INVOICE", "PI", 1)
PURCHASE_RETURN = _purchase_kind("PURCHASE_RETURN", "PRT", -1)
KINDS: dict[str, PurchaseKind] = {k.event_type: k for k in (RECEIVE_ITEM, PURCHASE_INVOICE, PURCHASE_RETURN)}

PURCHASE_ORDER = _purchase_kind("PURCHASE_ORDER", "PO", 1)
register(RECEIVE_ITEM, PURCHASE_INVOICE, PURCHASE_RETURN, PURCHASE_ORDER)
#: Status values of an Accurate purchase order that mean nothing more will arrive (assumed shapes).
CLOSED_STATUSES = frozenset({"CLOSED", "CLOSE", "MANUAL_CLOSED", "DITUTUP"})

StockKey = tuple[str, str]  # (iSeller outlet_id, SKU)


class MappingProblem(Exception):
    """The document cannot be mapped; the message is the reason shown to the operator."""


# ---------------------------------------------------------------------------------------------
# pure mapping


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _nested(record: Mapping[str, Any], key: str, inner: str) -> str:
    value = record.get(key)
    return _text(value.get(inner)) if isinstance(value, Mapping) else ""


def reference_base(kind: PurchaseKind, number: str) -> str:
    """The reference_code of a document's first transfer: ``ACC-RI-<number>``."""
    return f"ACC-{kind.code}-{number}"


def warehouse_outlets(settings: SyncSettings) -> dict[str, list[str]]:
    """Accurate warehouse name -> the iSeller outlet ids mapped to it (the settings read backwards)."""
    result: dict[str, list[str]] = defaultdict(list)
    for outlet_id, mapping in sorted(settings.outlets.items()):
        result[mapping.warehouse].append(outlet_id)
    return dict(result)


@dataclass(frozen=True)
class DocumentLine:
    """A stock line of an Accurate purchase document."""

    index: int
    sku: str
    name: str
    warehouse: str
    quantity: Decimal


def base_quantity(line: Mapping[str, Any]) -> Decimal | None:
    """Quantity in the item's base unit: ``quantityDefault``, else quantity x ``unitRatio``, else quantity."""
    default = _decimal(line.get("quantityDefault"))
    if default is not None:
        return default
    quantity = _decimal(line.get("quantity"))
    ratio = _decimal(line.get("unitRatio"))
    if quantity is not None and ratio is not None and ratio > 0:
        return quantity * ratio
    return quantity


def stock_lines(kind: PurchaseKind, document: Mapping[str, Any]) -> list[DocumentLine]:
    """The lines that move stock. Purchase-invoice lines received with a receive item are left out.

    Raises :class:`MappingProblem` for a line without item number or warehouse, or with a bad quantity.
    """
    header_warehouse = _text(document.get("warehouseName")) or _nested(document, "warehouse", "name")
    lines = document.get("detailItem") or []
    problems: list[str] = []
    result: list[DocumentLine] = []
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if not isinstance(line, Mapping):
            continue
        if kind is PURCHASE_INVOICE and (
            _text(line.get("receiveItemNumber")) or _nested(line, "receiveItem", "number")
        ):
            continue  # its goods came in with the receive item
        sku = _text(line.get("itemNo")) or _nested(line, "item", "no")
        name = _text(line.get("detailName")) or _nested(line, "item", "name")
        warehouse = _text(line.get("warehouseName")) or _nested(line, "warehouse", "name") or header_warehouse
        quantity = base_quantity(line)
        where = f"line {index + 1}" + (f" ({sku})" if sku else "")
        if not sku:
            problems.append(f"{where} has no item number")
        if not warehouse:
            problems.append(f"{where} has no warehouse")
        if quantity is None or quantity < 0:
            problems.append(f"{where} has no valid quantity ({line.get('quantity')!r})")
        if sku and warehouse and quantity is not None and quantity > 0:
            result.append(DocumentLine(index, sku, name, warehouse, quantity))
    if problems:
        raise MappingProblem("; ".join(problems))
    return result


def target_stock(
    kind: PurchaseKind, document: Mapping[str, Any], warehouses: Mapping[str, Sequence[str]]
) -> tuple[dict[StockKey, Decimal], dict[str, str]]:
    """What iSeller should hold for this document: signed quantity per (outlet_id, SKU), and SKU -> name.

    Raises :class:`MappingProblem` naming every unmapped or ambiguous warehouse.
    """
    target: dict[StockKey, Decimal] = defaultdict(lambda: ZERO)
    names: dict[str, str] = {}
    problems: list[str] = []
    for line in stock_lines(kind, document):
        outlets = warehouses.get(line.warehouse) or []
        if not outlets:
            problem = (
                f"warehouse '{line.warehouse}' is not mapped to an iSeller outlet (map it in the Variable "
                f"{SETTINGS_VARIABLE}: outlets.<outlet_id>.warehouse)"
            )
        elif len(outlets) > 1:
            problem = (
                f"warehouse '{line.warehouse}' is mapped to several iSeller outlets ({', '.join(outlets)}); "
                "goods received there cannot be given to one outlet"
            )
        else:
            target[(outlets[0], line.sku)] += kind.direction * line.quantity
            names.setdefault(line.sku, line.name)
            continue
        if problem not in problems:
            problems.append(problem)
    if problems:
        raise MappingProblem("; ".join(problems))
    return {key: value for key, value in target.items() if value}, names


def applied_stock(transfers: Iterable[TransferRow]) -> dict[StockKey, Decimal]:
    """What iSeller holds for a document: the signed sum of its transfers (created or being created)."""
    held: dict[StockKey, Decimal] = defaultdict(lambda: ZERO)
    for transfer in transfers:
        sign = 1 if transfer.transfer_type == "in" else -1
        for line in transfer.lines:
            held[(transfer.outlet_id, str(line["sku"]))] += sign * Decimal(str(line["quantity"]))
    return {key: value for key, value in held.items() if value}


def stock_sum(*parts: Mapping[StockKey, Decimal]) -> dict[StockKey, Decimal]:
    """The sum of several stock maps, non-zero entries only."""
    total: dict[StockKey, Decimal] = defaultdict(lambda: ZERO)
    for part in parts:
        for key, value in part.items():
            total[key] += value
    return {key: value for key, value in total.items() if value}


def stock_difference(
    target: Mapping[StockKey, Decimal], held: Mapping[StockKey, Decimal]
) -> dict[StockKey, Decimal]:
    """target - held, non-zero entries only."""
    keys = set(target) | set(held)
    diff = {key: target.get(key, ZERO) - held.get(key, ZERO) for key in keys}
    return {key: value for key, value in diff.items() if value}


def next_codes(base: str, taken: set[str], count: int) -> list[str]:
    """``count`` reference codes not in ``taken``: ``base``, ``base-2``, ``base-3``, ..."""
    codes: list[str] = []
    n = 1
    while len(codes) < count:
        code = base if n == 1 else f"{base}-{n}"
        if code not in taken:
            codes.append(code)
        n += 1
    return codes


def plan_transfers(
    kind: PurchaseKind,
    accurate_id: int,
    number: str,
    difference: Mapping[StockKey, Decimal],
    outlet_codes: Mapping[str, str],
    taken: set[str],
) -> list[PlannedTransfer]:
    """One transfer per (outlet, direction) carrying ``difference``, with fresh reference codes.

    Deterministic: outlets by code, ``in`` before ``out``, SKUs sorted.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (outlet_id, sku), quantity in difference.items():
        groups[(outlet_id, "in" if quantity > 0 else "out")].append({"sku": sku, "quantity": abs(quantity)})
    order = sorted(groups, key=lambda key: (outlet_codes[key[0]], key[1] != "in"))
    codes = next_codes(reference_base(kind, number), taken, len(order))
    return [
        PlannedTransfer(
            reference_code=code,
            document_type=kind.module,
            accurate_id=accurate_id,
            accurate_number=number,
            outlet_id=outlet_id,
            outlet_code=outlet_codes[outlet_id],
            transfer_type=direction,
            lines=sorted(groups[(outlet_id, direction)], key=lambda line: line["sku"]),
        )
        for code, (outlet_id, direction) in zip(codes, order, strict=True)
    ]


def supplier_name(document: Mapping[str, Any]) -> str | None:
    """The vendor as iSeller shows it: its name when Accurate gives one, else its number."""
    return (
        _nested(document, "vendor", "name")
        or _text(document.get("vendorName"))
        or _text(document.get("vendorNo"))
        or None
    )


def transfer_payload(
    transfer: PlannedTransfer | TransferRow, supplier: str | None, kind: PurchaseKind
) -> dict[str, Any]:
    """The ``/api/v3/CreateTransfer`` body of a planned transfer."""
    payload: dict[str, Any] = {
        "outlet_code": transfer.outlet_code,
        "type": transfer.transfer_type,
        "status": "completed",
        "reference_code": transfer.reference_code,
        "products": [
            {"sku": line["sku"], "quantity": Decimal(str(line["quantity"]))} for line in transfer.lines
        ],
        "tags": ["accurate", kind.module],
    }
    if supplier:
        payload["supplier_name"] = supplier
    return payload


# ---------------------------------------------------------------------------------------------
# loading


@dataclass
class EventOutcome:
    """The result of one event (or of one document of it)."""

    status: str  # done | ignored | failed
    reason: str | None = None
    references: list[str] = field(default_factory=list)
    transient: bool = False


def call_failed(label: str, exc: Exception) -> EventOutcome:
    """The outcome of a document whose Accurate or iSeller call failed: refused or not allowed fails it;
    anything else (unavailable, answer lost) fails it as transient, so Airflow retries it."""
    from include.iseller_accurate.clients.errors import AuthError, BusinessError

    if isinstance(exc, AuthError | BusinessError):
        return EventOutcome("failed", f"{label}: {exc}")
    return EventOutcome("failed", f"{label}: {exc}; it will be retried", transient=True)


def combine(outcomes: Sequence[EventOutcome]) -> EventOutcome:
    """One outcome for an event with several documents: failed if any failed, ignored if all were."""
    failed = [o for o in outcomes if o.status == "failed"]
    references = [ref for o in outcomes for ref in o.references]
    if failed:
        return EventOutcome(
            "failed",
            "; ".join(o.reason or "failed" for o in failed),
            references,
            transient=all(o.transient for o in failed),
        )
    notes = [o.reason for o in outcomes if o.reason]
    status = "ignored" if all(o.status == "ignored" for o in outcomes) else "done"
    return EventOutcome(status, "; ".join(notes) or None, references)


# ---------------------------------------------------------------------------------------------
# purchase orders (see ``orders.py``)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def order_closed(document: Mapping[str, Any]) -> bool:
    """Whether the purchase order is closed in Accurate: ``manualClosed``/``closed``/``orderClosed``
    true, or a ``status``/``statusName`` among :data:`CLOSED_STATUSES`."""
    if any(_truthy(document.get(key)) for key in ("manualClosed", "closed", "orderClosed")):
        return True
    for key in ("status", "statusName"):
        value = document.get(key)
        if isinstance(value, Mapping):
            value = value.get("name") or value.get("value")
        if _text(value).upper().replace(" ", "_") in CLOSED_STATUSES:
            return True
    return False


def open_quantities(
    ordered: Mapping[StockKey, Decimal], received: Mapping[StockKey, Decimal]
) -> dict[StockKey, Decimal]:
    """What is still expected: ordered minus received per (outlet, SKU), never below zero."""
    result = {}
    for key, quantity in ordered.items():
        left = quantity - received.get(key, ZERO)
        if left > 0:
            result[key] = left
    return result


def by_outlet(quantities: Mapping[StockKey, Decimal]) -> dict[str, dict[str, Decimal]]:
    """(outlet, SKU) -> quantity as outlet -> SKU -> quantity."""
    result: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for (outlet_id, sku), quantity in quantities.items():
        result[outlet_id][sku] = quantity
    return dict(result)


def lines_map(lines: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """``[{"sku", "quantity"}]`` as SKU -> quantity (summed)."""
    result: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        result[str(line["sku"])] += Decimal(str(line["quantity"]))
    return {sku: quantity for sku, quantity in result.items() if quantity}


def as_lines(quantities: Mapping[str, Decimal]) -> list[dict[str, Any]]:
    """SKU -> quantity as sorted ``[{"sku", "quantity"}]``."""
    return [{"sku": sku, "quantity": quantities[sku]} for sku in sorted(quantities) if quantities[sku]]


def receipt_order_lines(
    document: Mapping[str, Any], warehouses: Mapping[str, Any]
) -> dict[str, dict[StockKey, Decimal]]:
    """A receive item's lines that reference a purchase order, per order number and (outlet, SKU).

    The order is the line's ``purchaseOrderNumber`` (or ``purchaseOrder.number``), else the header's.
    Lines of unmapped or ambiguous warehouses are left out (the receive item reports them itself).
    """
    header = _text(document.get("purchaseOrderNumber")) or _nested(document, "purchaseOrder", "number")
    raw_lines = document.get("detailItem") or []
    result: dict[str, dict[StockKey, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for line in stock_lines(RECEIVE_ITEM, document):
        raw = raw_lines[line.index] if isinstance(raw_lines, list) else {}
        number = _text(raw.get("purchaseOrderNumber")) or _nested(raw, "purchaseOrder", "number") or header
        outlets = warehouses.get(line.warehouse) or []
        if number and len(outlets) == 1:
            result[number][(outlets[0], line.sku)] += line.quantity
    return {number: dict(lines) for number, lines in result.items()}


def receipt_split(
    received: Mapping[StockKey, Decimal], pending: Mapping[str, Mapping[str, Decimal]]
) -> dict[str, dict[str, Decimal]]:
    """What a receipt completes: per outlet with a pending transfer, the received SKUs that transfer
    expects (any quantity, more or less than expected). Other SKUs stay with the receive item."""
    result: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for (outlet_id, sku), quantity in received.items():
        if quantity > 0 and sku in pending.get(outlet_id, {}):
            result[outlet_id][sku] = quantity
    return dict(result)


def describe(quantities: Mapping[str, Decimal]) -> str:
    """``BRG-0001 x 5, BRG-0002 x 2`` (sorted)."""
    return ", ".join(f"{sku} x {_number(quantities[sku])}" for sku in sorted(quantities))


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    return text


def pending_payload(
    reference_code: str, outlet_code: str, lines: Iterable[Mapping[str, Any]], supplier: str | None
) -> dict[str, Any]:
    """``CreateTransfer`` body of an expected delivery: type ``in``, status ``pending``."""
    payload: dict[str, Any] = {
        "outlet_code": outlet_code,
        "type": "in",
        "status": "pending",
        "reference_code": reference_code,
        "products": [{"sku": line["sku"], "quantity": Decimal(str(line["quantity"]))} for line in lines],
        "tags": ["accurate", PURCHASE_ORDER.module],
    }
    if supplier:
        payload["supplier_name"] = supplier
    return payload


def update_payload(
    reference_code: str, status: str, received: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """``UpdateTransfer`` body: ``completed`` with what arrived, or ``cancelled``."""
    payload: dict[str, Any] = {"reference_code": reference_code, "status": status}
    if status == "completed":
        payload["products"] = [
            {"sku": line["sku"], "quantity": Decimal(str(line["quantity"]))} for line in received or []
        ]
    return payload
