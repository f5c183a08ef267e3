"""What the reconciliation DAG runs: read iSeller, Accurate and the ledger for a date range, compare,
store, alert once per red outlet and day; check stock.

Requests used, for a range of D days and O outlets sharing B branches: iSeller ``GetOrders`` pages
over the whole range (200 orders a page); Accurate one ``list.do`` per module (3) per 100 documents
of the range, plus one list per 100 synced documents not found in their branch and day; the stock
check one ``list.do`` per 100 tracked SKUs plus one ``get-stock.do`` per tracked item and outlet.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from include.iseller_accurate.ledger import Ledger, RunRef
from include.iseller_accurate.pipeline import Loader, LoadReport, MapContext
from include.iseller_accurate.reconciliation import SALES_TYPES, store
from include.iseller_accurate.reconciliation.sales import (
    AccurateDoc,
    DayResult,
    compare,
    expected_documents,
    iseller_totals,
    local_day,
)
from include.iseller_accurate.reconciliation.stock import (
    StockResult,
    check_stock,
    order_lines,
    pending_effects,
    tracked_quantities,
)
from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.streams.common import parse_time
from include.iseller_accurate.streams.sales import SalesStream

log = logging.getLogger(__name__)

#: Longest range one run reconciles (a backfill of a longer period: several runs).
MAX_DAYS = 62
LIST_FIELDS = {
    "sales-invoice": ["id", "number", "transDate", "branchName", "totalAmount"],
    "sales-receipt": ["id", "number", "transDate", "branchName", "chequeAmount", "totalPayment", "bankNo"],
    "sales-return": ["id", "number", "transDate", "branchName", "totalAmount"],
}


@dataclass
class SalesOutcome:
    """What a sales reconciliation found (for XCom, logs and the alert)."""

    days: list[DayResult] = field(default_factory=list)

    @property
    def red(self) -> list[DayResult]:
        return [d for d in self.days if d.status == "red"]

    def summary(self) -> dict[str, Any]:
        by_class: dict[str, int] = defaultdict(int)
        for day in self.days:
            for diff in day.differences:
                by_class[diff.cls] += 1
        return {"days": len(self.days), "red": len(self.red), "differences": dict(sorted(by_class.items()))}


def repost_and_load(
    ledger: Ledger, accurate: Any, difference_ids: Sequence[int], run: RunRef
) -> tuple[dict[str, Any], LoadReport]:
    """Reopen the documents of "missing in Accurate" differences (checked gone by number), then load
    the run's open documents with the normal loader: those just reopened and, on a retry (or a
    Refresh from Sync Status, which clears this task), those an earlier try could not post."""
    outcome = store.repost(ledger, accurate, difference_ids, run)
    return outcome, Loader(ledger, accurate, run).load_run()


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"date_to {end} is before date_from {start}")
    count = (end - start).days + 1
    if count > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days per run, got {count}: split the range into several runs")
    return [start + timedelta(days=i) for i in range(count)]


def utc_bounds(days: Sequence[date], settings: SyncSettings) -> tuple[datetime, datetime]:
    """The UTC instants of the first day's local midnight and the midnight after the last day."""
    tz = settings.tz
    start = datetime.combine(days[0], time.min, tz).astimezone(UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), time.min, tz).astimezone(UTC)
    return start, end


def outlets_of(settings: SyncSettings, wanted: Sequence[str] | None) -> list[str]:
    """The mapped outlets to reconcile (all mapped ones by default)."""
    mapped = sorted(settings.outlets)
    if not wanted:
        return mapped
    unknown = [o for o in wanted if o not in settings.outlets]
    if unknown:
        raise ValueError(
            f"outlet_ids: {', '.join(unknown)} not mapped in iseller_accurate_settings.outlets (only mapped"
            " outlets have an Accurate side to compare with)"
        )
    return sorted(set(wanted))


def reconcile_sales(
    settings: SyncSettings,
    ledger: Ledger,
    iseller: Any,
    accurate: Any,
    days: Sequence[date],
    outlets: Sequence[str],
    run: RunRef | None,
) -> SalesOutcome:
    """Compare and store every outlet and day of the range.

    When a side cannot be read, the days are stored as "could not be checked" with the reason (the
    grid shows them so) and the exception goes on (the task fails; Airflow retries it).
    """
    with _stored_as_unchecked_on_error(ledger, outlets, days, run):
        tz = settings.tz
        start, end = utc_bounds(days, settings)
        day_set = set(days)
        # iSeller: every order and refund of the range (all outlets at once), mapped as the sync maps them.
        stream = SalesStream()
        records = stream.group_orders(iseller.get_orders_pages(created_after=start, created_before=end))
        mapped = stream.map(records, MapContext(settings, ledger.synced_numbers))
        iseller_by_day = _iseller_by_day(records, outlets, day_set, settings)
        # Ledger: the range's rows (widened by a day each side: a document's date may differ from its
        # order's).
        rows = store.ledger_rows(
            ledger.conn, SALES_TYPES, outlets, start - timedelta(days=1), end + timedelta(days=1)
        )
        expected = expected_documents(mapped, rows, outlets, day_set, tz)
        # Accurate: the branches' documents of the range.
        branch_of = {outlet: settings.outlets[outlet].branch for outlet in outlets}
        branches = sorted(set(branch_of.values()))
        accurate_docs: list[AccurateDoc] = []
        for module, fields in LIST_FIELDS.items():
            for row in accurate.list(
                module,
                fields=fields,
                filters={"branchName": branches, "transDate": ("BETWEEN", [days[0], days[-1]])},
                page_size=100,
            ):
                doc = AccurateDoc.from_row(module, row)
                if doc.branch in branches and doc.day in day_set:
                    accurate_docs.append(doc)
        known = {
            (info.target_module, info.target_number or ""): (
                str(info.outlet_id or ""),
                local_day(info.source_date, tz),
            )
            for info in store.ledger_by_numbers(ledger.conn, [(d.module, d.number) for d in accurate_docs])
        }

        def find_elsewhere(module: str, numbers: list[str]) -> dict[str, AccurateDoc]:
            found = accurate.find_by_numbers(module, numbers, fields=LIST_FIELDS[module])
            return {number: AccurateDoc.from_row(module, row) for number, row in found.items()}

        results = compare(
            expected, accurate_docs, branch_of, list(days), find_elsewhere, known, iseller_by_day
        )
        ordered = [results[key] for key in sorted(results)]
        store.save_days(ledger.conn, ordered, run)
        return SalesOutcome(ordered)


@contextmanager
def _stored_as_unchecked_on_error(
    ledger: Ledger, outlets: Sequence[str], days: Sequence[date], run: RunRef | None
) -> Iterator[None]:
    """Any error: each outlet and day is stored as "could not be checked" with the reason, and the
    exception goes on."""
    try:
        yield
    except Exception as exc:
        reason = f"could not be checked: {type(exc).__name__}: {exc}"[:2000]
        for outlet in outlets:
            for day in days:
                store.save_error(ledger.conn, outlet, day, reason, run)
        raise


def _iseller_by_day(
    records: Sequence[dict[str, Any]], outlets: Sequence[str], days: set[date], settings: SyncSettings
) -> dict[tuple[str, date], dict[str, Any]]:
    tz = settings.tz
    orders: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    refunds: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    wanted = set(outlets)
    for record in records:
        outlet = str(record.get("outlet_id") or "")
        if outlet not in wanted:
            continue
        if not record.get("_only_refund") and str(record.get("status") or "").lower() == "completed":
            when = _time(record.get("closed_date")) or _time(record.get("order_date"))
            if when is not None and local_day(when, tz) in days:
                orders[(outlet, local_day(when, tz))].append(record)
        for refund in record.get("_refunds") or []:
            if not isinstance(refund, dict):
                continue
            when = _time(refund.get("refund_date"))
            if when is not None and local_day(when, tz) in days:
                refunds[(outlet, local_day(when, tz))].append(refund)
    return {
        (outlet, day): iseller_totals(orders.get((outlet, day), []), refunds.get((outlet, day), []))
        for outlet in outlets
        for day in days
    }


def _time(value: Any) -> datetime | None:
    """An iSeller time, or None when absent or malformed (such an order still counts where the
    sync's mapping places it; only the day's iSeller totals leave it out)."""
    try:
        return parse_time(value)
    except (TypeError, ValueError, OverflowError):
        return None


def check_outlet_stock(
    settings: SyncSettings,
    ledger: Ledger,
    iseller: Any,
    accurate: Any,
    outlets: Sequence[str],
    checked_on: date,
) -> list[StockResult]:
    """The stock check of ``outlets``, stored under ``checked_on``."""
    on_hand = tracked_quantities(iseller.get_products(track_inventory=True), outlets)
    skus = sorted({sku for quantities in on_hand.values() for sku in quantities})
    items = set(accurate.find_by_numbers("item", skus, field="no")) if skus else set()
    rows, sources = store.open_rows(ledger.conn, outlets)
    effects = pending_effects(rows, {row_id: order_lines(source) for row_id, source in sources.items()})
    warehouse_of = {outlet: settings.outlets[outlet].warehouse for outlet in outlets}
    results = check_stock(on_hand, warehouse_of, items, accurate.get_stock, effects)
    store.save_stock(ledger.conn, results, checked_on)
    return results


def red_day_alert(
    red: Sequence[dict[str, Any]], settings: SyncSettings, base_url: str
) -> tuple[str, str, str]:
    """(subject, text, html) of the alert for newly red outlet days."""
    import html as html_lib

    names = {oid: (o.name or oid) for oid, o in settings.outlets.items()}
    lines = [
        f"{names.get(r['outlet_id'], r['outlet_id'])} {r['day']}: {r['differences']} difference(s),"
        f" {r['difference_amount']}"
        for r in red
    ]
    page = f"{base_url}/plugin/reconciliation/integrations/operator/reconciliation"
    subject = f"[Airflow] Reconciliation: {len(red)} outlet day(s) where iSeller and Accurate disagree"
    text = "\n".join(
        ["iSeller and Accurate disagree:", *lines, "", f"Reconciliation: {page}", "Open the day for the fix."]
    )
    body = (
        "<p>iSeller and Accurate disagree:</p><ul>"
        + "".join(f"<li>{html_lib.escape(line)}</li>" for line in lines)
        + f'</ul><p><a href="{html_lib.escape(page)}">Reconciliation</a>: open the day for the fix.</p>'
    )
    return subject[:200], text, body


def send_red_day_alerts(ledger: Ledger, outcome: SalesOutcome, settings: SyncSettings) -> int:
    """Alert, through the ``sync_alerts`` connection, the red outlet days never alerted before."""
    from include.iseller_accurate.alerts import (
        ALERTS_CONN_ID,
        EMAIL_TYPES,
        Alert,
        _airflow_base_url,
        post_to_chat,
        send_email,
    )
    from include.iseller_accurate.notes import optional_connection

    keys = [(d.outlet_id, d.day) for d in outcome.red]
    fresh = store.unalerted_red_days(ledger.conn, keys)
    if not fresh:
        return 0
    conn = optional_connection(ALERTS_CONN_ID)
    if conn is None:
        log.info(
            "Failure alerts are off (no %r connection); %d red day(s) not alerted", ALERTS_CONN_ID, len(fresh)
        )
        return 0
    subject, text, body = red_day_alert(fresh, settings, _airflow_base_url())
    alert = Alert(subject=subject, text=text, html=body)
    try:
        if (conn.conn_type or "").lower() in EMAIL_TYPES:
            send_email(ALERTS_CONN_ID, conn, alert)
        else:
            post_to_chat(conn, alert)
    except Exception:  # noqa: BLE001 - not marked: the next run tries again
        log.warning("Reconciliation alert through %r could not be sent", ALERTS_CONN_ID, exc_info=True)
        return 0
    store.mark_alerted(ledger.conn, [(r["outlet_id"], r["day"]) for r in fresh])
    return len(fresh)
