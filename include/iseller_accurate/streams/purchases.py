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

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from include.iseller_accurate.ledger import RunRef
from include.iseller_accurate.settings import SETTINGS_VARIABLE, SyncSettings
from include.iseller_accurate.webhook_events import (
    EventRow,
    PlannedTransfer,
    TransferRow,
    WebhookEventLedger,
    document_entries,
)

log = logging.getLogger(__name__)

ZERO = Decimal(0)
#: How long one task keeps claiming newly arrived events before leaving them to the next run.
CLAIM_BUDGET_SECONDS = 300.0
CLAIM_BATCH = 200


@dataclass(frozen=True)
class PurchaseKind:
    """An Accurate purchase document type the sync moves to iSeller."""

    event_type: str
    module: str
    code: str
    #: +1: goods come in (transfer in); -1: goods go back to the supplier (transfer out).
    direction: int
    label: str


RECEIVE_ITEM = PurchaseKind("RECEIVE_ITEM", "receive-item", "RI", 1, "receive item")
PURCHASE_INVOICE = PurchaseKind("PURCHASE_INVOICE", "purchase-invoice", "PI", 1, "purchase invoice")
PURCHASE_RETURN = PurchaseKind("PURCHASE_RETURN", "purchase-return", "PRT", -1, "purchase return")
KINDS: dict[str, PurchaseKind] = {k.event_type: k for k in (RECEIVE_ITEM, PURCHASE_INVOICE, PURCHASE_RETURN)}

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


class WebhookProcessor:
    """Applies Accurate purchase events to iSeller (see the module docstring)."""

    def __init__(
        self, ledger: WebhookEventLedger, accurate: Any, iseller: Any, settings: SyncSettings, run: RunRef
    ) -> None:
        self.ledger = ledger
        self.accurate = accurate
        self.iseller = iseller
        self.settings = settings
        self.run = run
        self.warehouses = warehouse_outlets(settings)
        self._skus: set[str] | None = None
        self._outlet_codes: dict[str, str] | None = None
        from include.iseller_accurate.streams.purchase_orders import PurchaseOrders

        #: Purchase orders as pending transfers, and the receive items that complete them.
        self.orders = PurchaseOrders(self)

    # -- iSeller look-ups, read once per task --------------------------------------------------
    def skus(self) -> set[str]:
        """SKUs of iSeller's products (a product without SKU has none)."""
        if self._skus is None:
            self._skus = {_text(p.get("sku")) for p in self.iseller.get_products() if _text(p.get("sku"))}
        return self._skus

    def outlet_codes(self) -> dict[str, str]:
        """iSeller outlet id -> outlet code."""
        if self._outlet_codes is None:
            self._outlet_codes = {
                str(o.get("id") or o.get("outlet_id")): _text(o.get("outlet_code"))
                for o in self.iseller.get_outlets()
            }
        return self._outlet_codes

    # -- events --------------------------------------------------------------------------------
    def process_events(self, events: Iterable[EventRow]) -> dict[str, int]:
        """Process events in the given order (oldest first); each one's outcome goes to the ledger."""
        counts: dict[str, int] = defaultdict(int)
        for event in events:
            self.ledger.begin(event.id, self.run)
            try:
                outcome = self.process(event)
            except Exception as exc:  # noqa: BLE001 - one event must never stop the others
                log.exception("Unexpected error on webhook event %s", event.uuid)
                outcome = EventOutcome("failed", f"unexpected error: {exc}", transient=True)
            self.ledger.finish(
                event.id,
                outcome.status,
                outcome.reason,
                references=outcome.references,
                transient=outcome.transient,
            )
            counts[outcome.status] += 1
            level = logging.WARNING if outcome.status == "failed" else logging.INFO
            log.log(
                level,
                "%s [%s]: %s%s",
                event.label,
                event.uuid,
                outcome.status,
                f": {outcome.reason}" if outcome.reason else "",
            )
        return dict(counts)

    def process(self, event: EventRow) -> EventOutcome:
        """Outcome of one event (nothing is raised for business problems)."""
        kind = KINDS.get(event.event_type)
        if event.event_type == "PURCHASE_ORDER":
            orders = document_entries(event.payload)
            if not orders:
                return EventOutcome("ignored", "the event names no document")
            return combine([self.orders.reconcile_event(entry, event.id) for entry in orders])
        if kind is None:
            handled = ", ".join(["PURCHASE_ORDER", *KINDS])
            return EventOutcome(
                "ignored", f"event type {event.event_type} is not synced to iSeller (only {handled})"
            )
        entries = document_entries(event.payload)
        if not entries:
            return EventOutcome("ignored", "the event names no document")
        return combine([self.reconcile(kind, entry, event.id) for entry in entries])

    def reconcile(self, kind: PurchaseKind, entry: Mapping[str, Any], event_id: int | None) -> EventOutcome:
        """Make iSeller hold what one Accurate document holds now."""
        from include.iseller_accurate.clients.errors import ApiError, AuthError, BusinessError

        number = entry.get("number")
        accurate_id = entry.get("id")
        label = f"{kind.label} {number or accurate_id or '?'}"
        try:
            if accurate_id is None:
                if not number:
                    return EventOutcome("failed", f"{kind.label}: the event has neither an id nor a number")
                found = self.accurate.detail(kind.module, number=number)
                if found is None:
                    return EventOutcome("failed", f"{label} does not exist in Accurate")
                accurate_id = int(found["id"])
            with self.ledger.document_lock(kind.module, accurate_id):
                return self._reconcile_locked(
                    kind, int(accurate_id), number, entry.get("action") or "WRITE", label, event_id
                )
        except (AuthError, BusinessError) as exc:
            return EventOutcome("failed", f"{label}: {exc}")
        except ApiError as exc:
            return EventOutcome("failed", f"{label}: {exc}; it will be retried", transient=True)

    def _reconcile_locked(
        self,
        kind: PurchaseKind,
        accurate_id: int,
        number: str | None,
        action: str,
        label: str,
        event_id: int | None,
    ) -> EventOutcome:
        document = self.accurate.detail(kind.module, id=accurate_id)
        if document is not None:
            number = _text(document.get("number")) or number
            label = f"{kind.label} {number}"
        number = number or str(accurate_id)
        transfers = self._settle(self.ledger.document_transfers(kind.module, accurate_id, number))
        notes: list[str] = []
        others = self.ledger.other_numbers(kind.module, accurate_id, number)
        if others:  # renumbered, or an id handed out again: never reverse what another number received
            log.warning("%s: Accurate id %s was sent to iSeller before as %s", label, accurate_id, others)
            notes.append(
                f"Accurate id {accurate_id} was sent before as {', '.join(others)}; treated as a new document"
            )
        if document is None and action != "DELETE":
            if transfers or self.ledger.deletion_recorded(kind.event_type, accurate_id):
                return EventOutcome(
                    "failed",
                    f"{label} (id {accurate_id}) no longer exists in Accurate: it was deleted after it was "
                    "saved. "
                    "Nothing was sent to iSeller for this event; the deletion's own event reverses what "
                    "reached iSeller before.",
                )
            return EventOutcome(
                "failed",
                f"{label} (id {accurate_id}) was not found in Accurate: the database has no such document "
                "(never saved there, e.g. an event of another database or a test delivery, or deleted "
                "before its deletion event arrived). Nothing was sent to iSeller for this event. Look the "
                "number up in Accurate: if the document is there, press Refresh; if not, nothing needs "
                "doing.",
            )
        names: dict[str, str] = {}
        if document is None:
            target: dict[StockKey, Decimal] = {}
        else:
            try:
                target, names = target_stock(kind, document, self.warehouses)
            except MappingProblem as problem:
                return EventOutcome("failed", f"{label}: {problem}")
        held = applied_stock(transfers)
        completed_refs: list[str] = []
        if kind is RECEIVE_ITEM:
            # Lines of a purchase order complete that order's pending transfer (once, on the receive
            # item's first pass); what they brought counts as held, so it is never sent twice.
            if document is not None and action != "DELETE" and not transfers:
                from include.iseller_accurate.streams.purchase_orders import OrderFailure

                try:
                    notes[:0] = self.orders.complete_from_receipt(accurate_id, number, document, event_id)
                except OrderFailure as failure:
                    return failure.outcome
            completed_refs = [c.reference_code for c in self.orders.completions(accurate_id, number)]
            held = stock_sum(held, self.orders.received_by(accurate_id, number))
        difference = stock_difference(target, held)
        done_refs = [t.reference_code for t in transfers] + completed_refs
        if not difference:
            if document is None:
                if transfers:
                    return EventOutcome(
                        "done", f"{label} was deleted; already reversed in iSeller", done_refs
                    )
                return EventOutcome(
                    "ignored",
                    f"{label} was deleted in Accurate before it reached iSeller: nothing to reverse",
                )
            if not target and not transfers:
                return EventOutcome(
                    "ignored",
                    f"{label} moves no stock in iSeller (no stock lines, or all lines "
                    "were received with receive items)",
                )
            if completed_refs and not transfers and notes:
                return EventOutcome("done", "; ".join(notes), done_refs)
            return EventOutcome("done", "; ".join(["already in iSeller", *notes]), done_refs)
        problems = self._check_iseller(difference, names)
        if problems:
            return EventOutcome("failed", f"{label}: " + "; ".join(problems))
        base = reference_base(kind, number)
        plans = plan_transfers(
            kind,
            accurate_id,
            number,
            difference,
            self.outlet_codes(),
            self.ledger.codes_taken(base),
        )
        self.ledger.plan(plans, event_id)
        supplier = supplier_name(document) if document is not None else None
        created: list[str] = []
        for plan in plans:
            outcome = self._create(kind, plan, supplier, label)
            if outcome is not None:
                outcome.references = done_refs + created
                return outcome
            created.append(plan.reference_code)
        if document is None:
            notes.insert(0, f"{label} was deleted in Accurate: reversed in iSeller")
        elif transfers:
            notes.insert(0, f"{label} changed in Accurate: the difference was sent to iSeller")
        return EventOutcome("done", "; ".join(notes) or None, done_refs + created)

    def _check_iseller(self, difference: Mapping[StockKey, Decimal], names: Mapping[str, str]) -> list[str]:
        problems: list[str] = []
        skus = self.skus()
        for sku in sorted({sku for _, sku in difference}):
            if sku not in skus:
                name = names.get(sku)
                problems.append(
                    f"item {sku}{f' ({name})' if name else ''} has no product with that SKU in iSeller; "
                    "give the "
                    f"product the SKU {sku} in iSeller, then refresh (clear the failed task)"
                )
        codes = self.outlet_codes()
        for outlet_id in sorted({outlet_id for outlet_id, _ in difference}):
            if not codes.get(outlet_id):
                problems.append(f"outlet {outlet_id} of the settings is not an outlet of the iSeller store")
        return problems

    def _find_in_iseller(self, reference_code: str) -> dict[str, Any] | None:
        for transfer in self.iseller.get_transfers(reference_code=reference_code):
            if _text(transfer.get("reference_code")) == reference_code:
                return dict(transfer)
        return None

    def _settle(self, transfers: list[TransferRow]) -> list[TransferRow]:
        """The document's transfers that iSeller has, each checked with GetTransfers(reference_code).

        An unconfirmed one (answer lost, crash) is confirmed when found; any one iSeller does not have
        (never made, removed there, or iSeller reset while the ledger stayed) is dropped from the
        ledger, so that the difference is computed against what iSeller really holds.
        """
        settled = []
        for transfer in transfers:
            found = self._find_in_iseller(transfer.reference_code)
            if found is None:
                if transfer.status == "created":
                    log.warning(
                        "Transfer %s is recorded as made but iSeller does not have it; it will be "
                        "made again if the document still needs it",
                        transfer.reference_code,
                    )
                else:
                    log.info("Transfer %s was never created in iSeller", transfer.reference_code)
                self.ledger.forget(transfer.reference_code, created=True)
                continue
            if transfer.status == "creating":
                self.ledger.confirm(
                    transfer.reference_code,
                    _text(found.get("transfer_id")) or None,
                    _text(found.get("transfer_number")) or None,
                )
                transfer.status = "created"
            settled.append(transfer)
        return settled

    def _create(
        self, kind: PurchaseKind, plan: PlannedTransfer, supplier: str | None, label: str
    ) -> EventOutcome | None:
        """Create one planned transfer (after looking it up); None on success, else the failure."""
        from include.iseller_accurate.clients.errors import AuthError, OutcomeUnknownError, TransientApiError

        existing = self._find_in_iseller(plan.reference_code)
        if existing is not None:
            log.info(
                "Transfer %s is already in iSeller (%s): confirmed, not created again",
                plan.reference_code,
                existing.get("transfer_number"),
            )
            self.ledger.confirm(
                plan.reference_code,
                _text(existing.get("transfer_id")) or None,
                _text(existing.get("transfer_number")) or None,
            )
            return None
        try:
            result = self.iseller.create_transfer(transfer_payload(plan, supplier, kind))
        except OutcomeUnknownError as exc:
            return EventOutcome(
                "failed",
                f"{label}: iSeller did not confirm transfer {plan.reference_code} ({exc}); it is looked up "
                "before anything is sent again",
                transient=True,
            )
        except AuthError as exc:
            self.ledger.forget(plan.reference_code)
            return EventOutcome("failed", f"{label}: {exc}")
        except TransientApiError as exc:
            self.ledger.forget(plan.reference_code)
            return EventOutcome(
                "failed", f"{label}: iSeller unavailable ({exc}); it will be retried", transient=True
            )
        if not result.ok:
            self.ledger.forget(plan.reference_code)
            return EventOutcome(
                "failed", f"{label}: iSeller refused transfer {plan.reference_code}: {result.reason}"
            )
        self.ledger.confirm(plan.reference_code, result.transfer_id, result.transfer_number)
        log.info(
            "%s: transfer %s %s at %s created in iSeller (%s)",
            label,
            plan.transfer_type,
            plan.reference_code,
            plan.outlet_code,
            result.transfer_number,
        )
        return None


# ---------------------------------------------------------------------------------------------
# the task


class WebhookEventsFailed(Exception):
    """Some events of the run failed; the message lists them with their reasons."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def process_run(
    ledger: WebhookEventLedger,
    processor: WebhookProcessor,
    run: RunRef,
    *,
    claim_budget: float = CLAIM_BUDGET_SECONDS,
    batch: int = CLAIM_BATCH,
) -> dict[str, Any]:
    """The ingestion task's work: the run's own unfinished events first (a retry or a clear), then, on
    the run's first attempt only, pending events oldest first until none are left or the budget is
    spent. Raises :class:`WebhookEventsFailed` when any event of the run failed."""
    may_claim = ledger.start_claiming(run)
    own = ledger.run_events(run, ("processing", "failed"))
    if own:
        log.info("Re-processing %d unfinished events of this run", len(own))
        processor.process_events(own)
    if may_claim:
        deadline = time.monotonic() + claim_budget
        while time.monotonic() < deadline:
            claimed = ledger.claim_pending(run, batch)
            if not claimed:
                break
            log.info("Claimed %d pending events", len(claimed))
            processor.process_events(claimed)
    counts = ledger.run_counts(run)
    failed = ledger.run_events(run, ("failed",))
    summary = {
        "events": sum(counts.values()),
        **{k: v for k, v in sorted(counts.items())},
        "still_pending": ledger.pending_count(),
    }
    log.info("Webhook events of this run: %s", summary)
    if failed:
        lines = [f"{e.label} [{e.uuid}]: {e.reason}" for e in failed]
        transient = _all_transient(ledger, failed)
        raise WebhookEventsFailed(
            f"{len(failed)} of {summary['events']} webhook events failed; repair the cause, then clear "
            "this task "
            "to re-process exactly these:\n" + "\n".join(lines),
            transient=transient,
        )
    return summary


def _all_transient(ledger: WebhookEventLedger, events: Sequence[EventRow]) -> bool:
    rows = ledger.conn.execute(
        "SELECT bool_and(transient) AS t FROM sync.webhook_events WHERE id = ANY(%s)",
        ([e.id for e in events],),
    ).fetchone()
    return bool(rows and rows["t"])


def run_webhook_events(context: dict[str, Any]) -> dict[str, Any]:
    """Entry point of task ``process_events`` of DAG ``accurate_webhooks_to_iseller``."""
    from include.iseller_accurate.clients import AccurateHook, IsellerHook, PostgresRateLimiter
    from include.iseller_accurate.ledger import dsn_from_connection
    from include.iseller_accurate.settings import load_settings
    from include.iseller_accurate.tasks import run_ref

    settings = load_settings()
    run = run_ref(context)
    dsn = dsn_from_connection()
    accurate = AccurateHook(rate_limiter=PostgresRateLimiter(dsn))
    iseller = IsellerHook()
    with WebhookEventLedger.open(dsn) as ledger:
        processor = WebhookProcessor(ledger, accurate, iseller, settings, run)
        try:
            return process_run(ledger, processor, run)
        except WebhookEventsFailed as failure:
            if failure.transient:
                raise  # Airflow retries the task by itself
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(failure)) from None
