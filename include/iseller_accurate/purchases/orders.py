"""Accurate purchase orders as expected (pending) inbound transfers in iSeller, driven by webhook events.

What happens (issue 11; the user-facing description is in ``docs/accurate-to-iseller.md``):

- A ``PURCHASE_ORDER`` event makes iSeller hold, per outlet of the order's warehouse(s), **one pending
  transfer** ``in`` (``ACC-PO-<number>``, later ``-2``, ``-3`` ...) carrying what is still *open*:
  ordered minus what receive items already brought. A pending transfer moves no stock.
- A ``RECEIVE_ITEM`` whose lines reference the order (``purchaseOrderNumber``) **completes** the order's
  pending transfer at that outlet with the quantities that arrived (``UpdateTransfer`` status
  ``completed``: the stock moves then, once), and what is still open becomes a new pending transfer
  (the next ``-n``). So each receipt is one completed transfer, and the remainder stays visible as
  pending. The receive item's own ``ACC-RI-<number>`` transfer carries only what the order's transfer
  did not (lines of other orders or of none, SKUs the order lacks).
- A purchase order **closed** (``manualClosed`` / status ``CLOSED``) or **deleted** in Accurate cancels
  its pending transfer (``UpdateTransfer`` status ``cancelled``): nothing moves.
- An edited order: its pending transfer is cancelled and a new one made with the new open quantities.
- Out of order: a receive item processed before its order's event first brings the order to iSeller
  (reading it with ``detail.do``), then completes it; the order's own event then finds nothing to do.
- Exactly once: a transfer is a ledger row (``creating``) before ``CreateTransfer``; a status change
  is written as ``wanted_status`` before ``UpdateTransfer``; both are settled by ``GetTransfers
  (reference_code)`` before anything is sent again. The order is held by an advisory lock while it
  is reconciled (a receive item takes its own lock first, then the order's).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from include.iseller_accurate.purchases.mapping import (
    PURCHASE_ORDER,
    ZERO,
    EventOutcome,
    MappingProblem,
    StockKey,
    _decimal,
    _text,
    as_lines,
    by_outlet,
    call_failed,
    describe,
    lines_map,
    next_codes,
    open_quantities,
    order_closed,
    pending_payload,
    receipt_order_lines,
    receipt_split,
    reference_base,
    stock_sum,
    supplier_name,
    target_stock,
    update_payload,
)
from include.iseller_accurate.purchases.store import WebhookEventLedger
from include.iseller_accurate.purchases.transfers import IsellerTransfers

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# ledger rows


@dataclass
class OrderTransfer:
    """One iSeller transfer made for a purchase order (a row of ``sync.webhook_transfers``)."""

    reference_code: str
    accurate_id: int
    accurate_number: str
    outlet_id: str
    outlet_code: str
    lines: list[dict[str, Any]]
    status: str  # creating | created (the row is confirmed in iSeller)
    iseller_status: str  # pending | completed | cancelled
    wanted_status: str | None = None
    received_lines: list[dict[str, Any]] | None = None
    receipt_id: int | None = None
    receipt_number: str | None = None

    @property
    def open(self) -> bool:
        """Pending in iSeller with no status change under way."""
        return self.iseller_status == "pending" and self.wanted_status is None

    @property
    def received(self) -> dict[StockKey, Decimal]:
        """What arrived with it (completed, or being completed)."""
        if "completed" not in (self.iseller_status, self.wanted_status):
            return {}
        return {(self.outlet_id, sku): q for sku, q in lines_map(self.received_lines or []).items()}


_COLUMNS = (
    "reference_code, accurate_id, accurate_number, outlet_id, outlet_code, lines, status, iseller_status,"
    " wanted_status, received_lines, receipt_id, receipt_number"
)


class OrderLedger:
    """The purchase-order rows of ``sync.webhook_transfers`` (migration 0012)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, accurate_id: int, number: str) -> list[OrderTransfer]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM sync.webhook_transfers WHERE document_type = %s AND accurate_id = %s"
            " AND accurate_number = %s ORDER BY id",
            (PURCHASE_ORDER.module, accurate_id, number),
        ).fetchall()
        return [OrderTransfer(**row) for row in rows]

    def completions(self, receipt_id: int, receipt_number: str) -> list[OrderTransfer]:
        """Order transfers completed (or being completed) with this receive item."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM sync.webhook_transfers WHERE document_type = %s AND receipt_id = %s"
            " AND receipt_number = %s AND 'completed' IN (iseller_status, COALESCE(wanted_status, ''))"
            " ORDER BY id",
            (PURCHASE_ORDER.module, receipt_id, receipt_number),
        ).fetchall()
        return [OrderTransfer(**row) for row in rows]

    def plan(self, row: OrderTransfer, event_id: int | None) -> None:
        self.conn.execute(
            "INSERT INTO sync.webhook_transfers (reference_code, document_type, accurate_id, accurate_number,"
            " outlet_id, outlet_code, transfer_type, lines, event_id, iseller_status)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'in', %s, %s, 'pending')",
            (
                row.reference_code,
                PURCHASE_ORDER.module,
                row.accurate_id,
                row.accurate_number,
                row.outlet_id,
                row.outlet_code,
                Jsonb(row.lines),
                event_id,
            ),
        )

    def want(
        self,
        reference_code: str,
        status: str,
        received: list[dict[str, Any]] | None = None,
        receipt: tuple[int, str] | None = None,
    ) -> None:
        """Write the status change about to be asked of iSeller (before the call)."""
        self.conn.execute(
            "UPDATE sync.webhook_transfers SET wanted_status = %s, received_lines = %s, receipt_id = %s,"
            " receipt_number = %s WHERE reference_code = %s",
            (
                status,
                Jsonb(received) if received is not None else None,
                receipt[0] if receipt else None,
                receipt[1] if receipt else None,
                reference_code,
            ),
        )

    def settle_status(
        self, reference_code: str, status: str, received: list[dict[str, Any]] | None = None
    ) -> None:
        """iSeller holds the transfer in ``status`` (confirmed by its answer or by a look-up)."""
        self.conn.execute(
            "UPDATE sync.webhook_transfers SET iseller_status = %s, wanted_status = NULL,"
            " received_lines = CASE WHEN %s = 'completed' THEN COALESCE(%s, received_lines) ELSE NULL END,"
            " receipt_id = CASE WHEN %s = 'completed' THEN receipt_id END,"
            " receipt_number = CASE WHEN %s = 'completed' THEN receipt_number END"
            " WHERE reference_code = %s",
            (
                status,
                status,
                Jsonb(received) if received is not None else None,
                status,
                status,
                reference_code,
            ),
        )

    def drop_wish(self, reference_code: str) -> None:
        """The status change was refused: the transfer stays as it was."""
        self.conn.execute(
            "UPDATE sync.webhook_transfers SET wanted_status = NULL, received_lines = NULL,"
            " receipt_id = NULL, receipt_number = NULL"
            " WHERE reference_code = %s AND iseller_status = 'pending'",
            (reference_code,),
        )


# ---------------------------------------------------------------------------------------------
# reconciliation


class OrderFailure(Exception):
    """Stops the order's reconciliation; the outcome says why."""

    def __init__(self, outcome: EventOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


@dataclass
class OrderResult:
    """What one reconciliation of a purchase order did."""

    created: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    pending: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # reference -> open lines


class PurchaseOrders:
    """Purchase-order events and the receive items that complete them (see the module docstring)."""

    def __init__(
        self,
        events: WebhookEventLedger,
        accurate: Any,
        warehouses: Mapping[str, Sequence[str]],
        transfers: IsellerTransfers,
    ) -> None:
        self.events = events
        self.accurate = accurate
        self.warehouses = warehouses
        self.transfers = transfers
        self.ledger = OrderLedger(events.conn)

    # -- the PURCHASE_ORDER event --------------------------------------------------------------
    def reconcile_event(self, entry: Mapping[str, Any], event_id: int | None) -> EventOutcome:
        """Make iSeller hold one pending transfer per outlet with what the order still expects."""
        from include.iseller_accurate.clients.errors import ApiError

        number = entry.get("number")
        accurate_id = entry.get("id")
        label = f"{PURCHASE_ORDER.label} {number or accurate_id or '?'}"
        try:
            document = None
            if accurate_id is None:
                if not number:
                    return EventOutcome("failed", "purchase order: the event has neither an id nor a number")
                document = self.accurate.detail(PURCHASE_ORDER.module, number=number)
                if document is None:
                    return EventOutcome("failed", f"{label} does not exist in Accurate")
                accurate_id = int(document["id"])
            with self.events.document_lock(PURCHASE_ORDER.module, int(accurate_id)):
                if document is None:
                    document = self.accurate.detail(PURCHASE_ORDER.module, id=accurate_id)
                return self._event_outcome(
                    int(accurate_id), number, document, entry.get("action") or "WRITE", event_id
                )
        except ApiError as exc:
            return call_failed(label, exc)

    def _event_outcome(
        self,
        accurate_id: int,
        number: str | None,
        document: Mapping[str, Any] | None,
        action: str,
        event_id: int | None,
    ) -> EventOutcome:
        number = (_text(document.get("number")) if document else "") or number or str(accurate_id)
        label = f"{PURCHASE_ORDER.label} {number}"
        if document is None and not self.ledger.rows(accurate_id, number):
            if action == "DELETE":
                return EventOutcome(
                    "ignored", f"{label} was deleted in Accurate before it reached iSeller: nothing to cancel"
                )
            return EventOutcome(
                "failed",
                f"{label} (id {accurate_id}) was not found in Accurate: the database has no such document "
                "(never saved there, or deleted before its deletion event arrived). Nothing was sent to "
                "iSeller for this event. Look the number up in Accurate: if the order is there, press "
                "Refresh; if not, nothing needs doing.",
            )
        try:
            result = self._reconcile_locked(accurate_id, number, document, event_id)
        except OrderFailure as failure:
            return failure.outcome
        refs = [*result.created, *result.cancelled]
        rows = self.ledger.rows(accurate_id, number)
        notes: list[str] = []
        if document is None or order_closed(document):
            why = "deleted" if document is None else "closed"
            if result.cancelled:
                notes.append(
                    f"{label} was {why} in Accurate: cancelled in iSeller {', '.join(result.cancelled)}"
                )
            elif rows:
                notes.append(f"{label} was {why} in Accurate: nothing is pending in iSeller any more")
            else:
                return EventOutcome(
                    "ignored", f"{label} was {why} in Accurate before it reached iSeller: nothing expected"
                )
        for reference, lines in result.pending.items():
            verb = "pending in iSeller as" if reference in result.created else "already pending in iSeller as"
            notes.append(f"{verb} {reference}: still open {describe(lines)}")
        if not notes:
            if not rows:
                return EventOutcome(
                    "ignored", f"{label} expects no goods at a mapped outlet (no stock lines)"
                )
            notes.append(f"{label}: everything ordered has arrived; nothing is pending in iSeller")
        return EventOutcome("done", "; ".join(notes), refs or [r.reference_code for r in rows if r.open])

    def _reconcile_locked(
        self,
        accurate_id: int,
        number: str,
        document: Mapping[str, Any] | None,
        event_id: int | None,
    ) -> OrderResult:
        """Bring the order's pending transfers to what it still expects (the order's lock is held)."""
        label = f"{PURCHASE_ORDER.label} {number}"
        rows = self._settle(self.ledger.rows(accurate_id, number), label)
        names: dict[str, str] = {}
        ordered: dict[StockKey, Decimal] = {}
        if document is not None and not order_closed(document):
            try:
                ordered, names = target_stock(PURCHASE_ORDER, document, self.warehouses)
            except MappingProblem as problem:
                raise OrderFailure(EventOutcome("failed", f"{label}: {problem}")) from None
        received = stock_sum(*(row.received for row in rows))
        wanted = by_outlet(open_quantities(ordered, received))
        current = {row.outlet_id: row for row in rows if row.open}
        result = OrderResult()
        changes = [
            outlet
            for outlet in sorted(set(wanted) | set(current))
            if current.get(outlet) is None or lines_map(current[outlet].lines) != wanted.get(outlet, {})
        ]
        new_outlets = [outlet for outlet in changes if wanted.get(outlet)]
        if new_outlets:
            problems = self.transfers.check(
                {(outlet, sku): q for outlet in new_outlets for sku, q in wanted[outlet].items()}, names
            )
            if problems:
                raise OrderFailure(EventOutcome("failed", f"{label}: " + "; ".join(problems)))
        for outlet in changes:
            row = current.get(outlet)
            if row is not None:
                self._change(row, "cancelled", None, None, label)
                result.cancelled.append(row.reference_code)
        if new_outlets:
            supplier = supplier_name(document) if document is not None else None
            base = reference_base(PURCHASE_ORDER, number)
            codes = next_codes(base, self.events.codes_taken(base), len(new_outlets))
            outlet_codes = self.transfers.outlet_codes()
            for code, outlet in zip(codes, sorted(new_outlets, key=lambda o: outlet_codes[o]), strict=True):
                row = OrderTransfer(
                    reference_code=code,
                    accurate_id=accurate_id,
                    accurate_number=number,
                    outlet_id=outlet,
                    outlet_code=outlet_codes[outlet],
                    lines=as_lines(wanted[outlet]),
                    status="creating",
                    iseller_status="pending",
                )
                self.ledger.plan(row, event_id)
                self._create(row, supplier, label)
                result.created.append(code)
        for row in self.ledger.rows(accurate_id, number):
            if row.open:
                result.pending[row.reference_code] = lines_map(row.lines)
        return result

    # -- receive items -------------------------------------------------------------------------
    def completions(self, receipt_id: int, receipt_number: str) -> list[OrderTransfer]:
        """Order transfers this receive item completed."""
        return self.ledger.completions(receipt_id, receipt_number)

    def received_by(self, receipt_id: int, receipt_number: str) -> dict[StockKey, Decimal]:
        """Stock the receive item brought through its orders' transfers."""
        return stock_sum(*(row.received for row in self.completions(receipt_id, receipt_number)))

    def complete_from_receipt(
        self, receipt_id: int, receipt_number: str, document: Mapping[str, Any], event_id: int | None
    ) -> list[str]:
        """Complete the pending transfers of the orders this receive item references with what arrived.

        Returns notes for the Webhook Log. An order that cannot be brought to iSeller (refused, not in
        Accurate, nothing pending) leaves its lines to the receive item's own transfer (stock still
        arrives, once). Raises :class:`OrderFailure` when a completion cannot be confirmed or iSeller
        is unavailable: the receive item fails (transient: retried) and nothing of it is sent meanwhile.
        """
        notes: list[str] = []
        done = {row.accurate_number for row in self.completions(receipt_id, receipt_number)}
        for po_number, received in sorted(receipt_order_lines(document, self.warehouses).items()):
            if po_number in done:
                continue  # completed on an earlier attempt of this receive item
            order = self.accurate.detail(PURCHASE_ORDER.module, number=po_number)
            if order is None:
                notes.append(f"purchase order {po_number} is not in Accurate: received as a plain receipt")
                continue
            order_id = int(order["id"])
            label = f"{PURCHASE_ORDER.label} {po_number}"
            with self.events.document_lock(PURCHASE_ORDER.module, order_id):
                try:
                    self._reconcile_locked(order_id, po_number, order, event_id)
                except OrderFailure as failure:
                    if failure.outcome.transient:
                        raise  # iSeller unavailable or the answer lost: the receive item is retried
                    notes.append(f"{failure.outcome.reason}; its lines are received as a plain receipt")
                    continue
                rows = self.ledger.rows(order_id, po_number)
                pending = {row.outlet_id: row for row in rows if row.open}
                split = receipt_split(received, {o: lines_map(r.lines) for o, r in pending.items()})
                if not split:
                    notes.append(f"{label} has nothing pending in iSeller: received as a plain receipt")
                    continue
                for outlet in sorted(split):
                    row = pending[outlet]
                    arrived = as_lines(split[outlet])
                    self._change(row, "completed", arrived, (receipt_id, receipt_number), label)
                    what = describe(split[outlet])
                    notes.append(f"completed {row.reference_code} in iSeller with what arrived ({what})")
                try:
                    after = self._reconcile_locked(order_id, po_number, order, event_id)
                except OrderFailure as failure:
                    notes.append(str(failure.outcome.reason))
                    continue
                if after.pending:
                    notes.extend(
                        f"{label} still open: {describe(lines)} (pending as {ref})"
                        for ref, lines in after.pending.items()
                    )
                else:
                    notes.append(f"{label}: nothing more is expected")
        return notes

    # -- iSeller calls -------------------------------------------------------------------------
    def _settle(self, rows: list[OrderTransfer], label: str) -> list[OrderTransfer]:
        """Check each row with GetTransfers: confirm creations, finish status changes under way, drop
        rows iSeller no longer has, and adopt a status changed in iSeller itself."""
        settled = []
        for row in rows:
            found = self.transfers.find(row.reference_code)
            if found is None:
                log.warning(
                    "Transfer %s is not in iSeller; it is dropped from the ledger", row.reference_code
                )
                self.events.forget(row.reference_code, created=True)
                continue
            if row.status == "creating":
                self.transfers.confirm_found(row.reference_code, found)
                row.status = "created"
            status = _text(found.get("status")).lower()
            if row.wanted_status and status == "pending":
                self._change(row, row.wanted_status, row.received_lines, None, label, again=True)
            elif status in ("pending", "completed", "cancelled") and (
                status != row.iseller_status or row.wanted_status
            ):
                received = None
                if status == "completed" and row.wanted_status != "completed":
                    received = [
                        {"sku": p.get("sku"), "quantity": _decimal(p.get("received_quantity")) or ZERO}
                        for p in found.get("products") or []
                        if _decimal(p.get("received_quantity"))
                    ]
                self.ledger.settle_status(row.reference_code, status, received)
                row.iseller_status, row.wanted_status = status, None
                if received is not None:
                    row.received_lines = received
                if status != "completed":
                    row.received_lines = None
            settled.append(row)
        return settled

    def _create(self, row: OrderTransfer, supplier: str | None, label: str) -> None:
        failure = self.transfers.create_once(
            pending_payload(row.reference_code, row.outlet_code, row.lines, supplier),
            label,
            what="pending transfer",
            refused_note=" (pending transfers are an assumption about iSeller, see docs/sandboxes.md)",
        )
        if failure is not None:
            raise OrderFailure(failure)

    def _change(
        self,
        row: OrderTransfer,
        status: str,
        received: list[dict[str, Any]] | None,
        receipt: tuple[int, str] | None,
        label: str,
        *,
        again: bool = False,
    ) -> None:
        """Complete or cancel a pending transfer: the wish is written first, then UpdateTransfer."""
        from include.iseller_accurate.clients.errors import AuthError, OutcomeUnknownError, TransientApiError

        if not again:
            self.ledger.want(row.reference_code, status, received, receipt)
        try:
            payload = update_payload(row.reference_code, status, received)
            result = self.transfers.client.update_transfer(payload)
        except OutcomeUnknownError as exc:
            raise OrderFailure(
                EventOutcome(
                    "failed",
                    f"{label}: iSeller did not confirm that {row.reference_code} is {status} ({exc}); its "
                    "status is looked up before anything is sent again",
                    transient=True,
                )
            ) from None
        except (AuthError, TransientApiError) as exc:
            self.ledger.drop_wish(row.reference_code)
            transient = isinstance(exc, TransientApiError)
            raise OrderFailure(
                EventOutcome(
                    "failed",
                    f"{label}: {row.reference_code} could not be {status}: {exc}"
                    + ("; it will be retried" if transient else ""),
                    transient=transient,
                )
            ) from None
        if not result.ok:
            self.ledger.drop_wish(row.reference_code)
            raise OrderFailure(
                EventOutcome(
                    "failed",
                    f"{label}: iSeller refused to mark {row.reference_code} {status}: {result.reason}",
                )
            )
        self.ledger.settle_status(row.reference_code, status, received)
        row.iseller_status, row.wanted_status = status, None
        row.received_lines = received if status == "completed" else None
        log.info("%s: transfer %s %s in iSeller", label, row.reference_code, status)
