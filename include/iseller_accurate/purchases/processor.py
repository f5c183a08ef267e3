"""Applying Accurate purchase events to iSeller: one run claims events and reconciles each document.

What maps to what is in ``mapping.py``; iSeller's side (look-ups, creating a transfer exactly once)
in ``transfers.py``; purchase orders and the receive items completing them in ``orders.py``. The task
entry point (``process_events``) is ``tasks.run_webhook_events``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from include.iseller_accurate.ledger import RunRef
from include.iseller_accurate.pipeline import SyncFailed
from include.iseller_accurate.purchases.events import document_entries
from include.iseller_accurate.purchases.mapping import (
    KINDS,
    PURCHASE_ORDER,
    RECEIVE_ITEM,
    EventOutcome,
    MappingProblem,
    PurchaseKind,
    StockKey,
    _text,
    applied_stock,
    call_failed,
    combine,
    plan_transfers,
    reference_base,
    stock_difference,
    stock_sum,
    supplier_name,
    target_stock,
    transfer_payload,
    warehouse_outlets,
)
from include.iseller_accurate.purchases.orders import OrderFailure, PurchaseOrders
from include.iseller_accurate.purchases.store import (
    EventRow,
    TransferRow,
    WebhookEventLedger,
)
from include.iseller_accurate.purchases.transfers import IsellerTransfers
from include.iseller_accurate.settings import SyncSettings

log = logging.getLogger(__name__)

#: How long one task keeps claiming newly arrived events before leaving them to the next run.
CLAIM_BUDGET_SECONDS = 300.0
CLAIM_BATCH = 200


@dataclass(eq=False)
class WebhookProcessor:
    """Applies Accurate purchase events to iSeller (see ``mapping.py`` for what maps to what)."""

    ledger: WebhookEventLedger
    accurate: Any
    iseller: Any
    settings: SyncSettings
    run: RunRef
    #: Accurate warehouse name -> iSeller outlet ids, from the settings.
    warehouses: dict[str, list[str]] = field(init=False)
    #: iSeller's products, outlets and transfers (found by reference code, created once).
    transfers: IsellerTransfers = field(init=False)
    #: Purchase orders as pending transfers, and the receive items that complete them.
    orders: PurchaseOrders = field(init=False)

    def __post_init__(self) -> None:
        self.warehouses = warehouse_outlets(self.settings)
        self.transfers = IsellerTransfers(self.ledger, self.iseller)
        self.orders = PurchaseOrders(self.ledger, self.accurate, self.warehouses, self.transfers)

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
        handle: Callable[[Mapping[str, Any], int | None], EventOutcome]
        if event.event_type == PURCHASE_ORDER.event_type:
            handle = self.orders.reconcile_event
        elif kind is not None:
            handle = partial(self.reconcile, kind)
        else:
            handled = ", ".join([PURCHASE_ORDER.event_type, *KINDS])
            return EventOutcome(
                "ignored", f"event type {event.event_type} is not synced to iSeller (only {handled})"
            )
        entries = document_entries(event.payload)
        if not entries:
            return EventOutcome("ignored", "the event names no document")
        return combine([handle(entry, event.id) for entry in entries])

    def reconcile(self, kind: PurchaseKind, entry: Mapping[str, Any], event_id: int | None) -> EventOutcome:
        """Make iSeller hold what one Accurate document holds now."""
        from include.iseller_accurate.clients.errors import ApiError

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
        except ApiError as exc:
            return call_failed(label, exc)

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
        problems = self.transfers.check(difference, names)
        if problems:
            return EventOutcome("failed", f"{label}: " + "; ".join(problems))
        base = reference_base(kind, number)
        plans = plan_transfers(
            kind,
            accurate_id,
            number,
            difference,
            self.transfers.outlet_codes(),
            self.ledger.codes_taken(base),
        )
        self.ledger.plan(plans, event_id)
        supplier = supplier_name(document) if document is not None else None
        created: list[str] = []
        for plan in plans:
            outcome = self.transfers.create_once(transfer_payload(plan, supplier, kind), label)
            if outcome is not None:
                outcome.references = done_refs + created
                return outcome
            created.append(plan.reference_code)
        if document is None:
            notes.insert(0, f"{label} was deleted in Accurate: reversed in iSeller")
        elif transfers:
            notes.insert(0, f"{label} changed in Accurate: the difference was sent to iSeller")
        return EventOutcome("done", "; ".join(notes) or None, done_refs + created)

    def _settle(self, transfers: list[TransferRow]) -> list[TransferRow]:
        """The document's transfers that iSeller has, each checked with GetTransfers(reference_code).

        An unconfirmed one (answer lost, crash) is confirmed when found; any one iSeller does not have
        (never made, removed there, or iSeller reset while the ledger stayed) is dropped from the
        ledger, so that the difference is computed against what iSeller really holds.
        """
        settled = []
        for transfer in transfers:
            found = self.transfers.find(transfer.reference_code)
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
                self.transfers.confirm_found(transfer.reference_code, found)
                transfer.status = "created"
            settled.append(transfer)
        return settled

# ---------------------------------------------------------------------------------------------
# the task


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
    spent. Raises :class:`~include.iseller_accurate.pipeline.SyncFailed` (the message lists the failed
    events with their reasons) when any event of the run failed."""
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
        transient = ledger.all_transient(failed)
        raise SyncFailed(
            f"{len(failed)} of {summary['events']} webhook events failed; repair the cause, then clear "
            "this task "
            "to re-process exactly these:\n" + "\n".join(lines),
            transient=transient,
        )
    return summary
