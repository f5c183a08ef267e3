"""Sales: completed iSeller orders -> Accurate customers, sales invoices, receipts and returns.

Numbering (deterministic, so a document can never be posted twice):
- sales invoice ``SI/<order reference>`` (``#JKT01-1001`` -> ``SI/JKT01-1001``)
- sales receipt ``SR/<order reference>`` (``-2``, ``-3`` when payments go to several accounts)
- sales return ``RT/<order reference>`` (``-2``... for further refunds of the same order)
- customer: ``customerNo`` = the iSeller customer ID number when ``use_customer_id_mapping`` is on
  and the customer has one; otherwise Accurate numbers the customer and the ledger keeps the pairing
  (the iSeller customer id is written to the Accurate customer's ``notes`` to find it again).

Prerequisites: invoice needs its customer; receipts and returns need their invoice. A voided order is
``skipped`` with the reason. Orders that are neither completed nor voided (draft, reserved) are not
sales yet and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from include.iseller_accurate.checks import FieldProblem, Reader
from include.iseller_accurate.kinds import SALES_INVOICE, SALES_RETURN
from include.iseller_accurate.ledger import Document, Ledger, RunRef
from include.iseller_accurate.pipeline import ExtractContext, MapContext, Stream
from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.streams.sales_documents import map_order
from include.iseller_accurate.streams.sales_orders import (
    failed_order,
    line_problems,
    lines_by_order,
    lines_frame,
    order_label,
    orders_with_refunds,
    read_order,
)
from include.iseller_accurate.streams.sales_shifts import (
    SHIFT_SWEEP,
    SHIFT_SWEEP_CURSOR,
    ShiftRead,
    find_shift,
    in_shift,
    record_shifts_read,
    shift_bounds,
    unread_closed_shifts,
)


class SalesStream(Stream):
    """iSeller orders of a window, of one closed register shift, or of the closed shifts no run read."""

    name = "sales"
    key_field = "order_id"
    record_name = "order"

    def ignores(self, record: Any) -> bool:
        """Orders neither completed nor voided (drafts, reserved) are not sales yet: no ledger row."""
        if not isinstance(record, dict):
            return False
        return str(record.get("status") or "").lower() not in ("completed", "void")

    def unreadable_type(self, record: Any) -> tuple[str, str, str]:
        if isinstance(record, dict) and record.get("_only_refund"):  # its invoice may be synced already
            return SALES_RETURN.data_type, SALES_RETURN.module, ":unreadable"
        return SALES_INVOICE.data_type, SALES_INVOICE.module, ""

    def __init__(self) -> None:
        #: Shifts read by this run, remembered in the ledger by :meth:`mark_read` once stored.
        self.shifts_read: list[ShiftRead] = []
        self.sweep_complete = False

    def plan_run(self, settings: SyncSettings, params: dict[str, Any]) -> dict[str, Any]:
        """In ``shift_close`` mode a run without a shift or a window is a shift sweep."""
        if (
            settings.sales_sync_mode == "shift_close"
            and not params.get("register_shift_id")
            and not params.get("window_start")
        ):
            return {**params, SHIFT_SWEEP: True}
        return params

    def uses_window(self, params: dict[str, Any]) -> bool:
        return not params.get("register_shift_id") and not params.get(SHIFT_SWEEP)

    # -- extract -------------------------------------------------------------------------------
    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Orders (with refunds attached) of the run's shift, of the swept shifts, or of its window."""
        params = ctx.params
        if params.get("register_shift_id"):
            shift = find_shift(ctx)
            orders = self._shift_orders(ctx, shift)
            self.shifts_read.append((shift, len(orders), "trigger"))
            return orders
        if params.get(SHIFT_SWEEP):
            return self._sweep(ctx)
        pages = ctx.iseller.get_orders_pages(modified_after=ctx.window_start, modified_before=ctx.window_end)
        return self.group_orders(pages)

    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Re-read orders by id (their refunds too), for the sync refresh."""
        records: list[dict[str, Any]] = []
        for order_id in source_keys:
            records.extend(self.group_orders(ctx.iseller.get_orders_pages(order_id=order_id)))
        return records

    def group_orders(self, pages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The orders of iSeller's order pages with their refunds attached (see
        :func:`sales_orders.orders_with_refunds`)."""
        return orders_with_refunds(pages, self.record_key)

    def _shift_orders(self, ctx: ExtractContext, shift: dict[str, Any]) -> list[dict[str, Any]]:
        """The orders of one closed shift: its register's orders with open <= order_date <= close."""
        start, end = shift_bounds(shift)
        # iSeller's created_before is exclusive and its times have whole seconds: ask one second more.
        pages = ctx.iseller.get_orders_pages(
            created_after=start,
            created_before=end + timedelta(seconds=1),
            register_id=str(shift.get("register_id") or ctx.params.get("register_id") or "") or None,
            outlet_id=shift.get("outlet_id") or ctx.params.get("outlet_id"),
        )
        orders = self.group_orders(pages)
        return [o for o in orders if o.get("_only_refund") or in_shift(o, start, end)]

    def _sweep(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Orders of every closed shift no run has read (see :func:`sales_shifts.unread_closed_shifts`)."""
        unread, self.sweep_complete = unread_closed_shifts(ctx, self.initial_lookback)
        records: list[dict[str, Any]] = []
        for shift in unread:
            orders = self._shift_orders(ctx, shift)
            self.shifts_read.append((shift, len(orders), "sweep"))
            records.extend(orders)
        return records

    def mark_read(self, ctx: ExtractContext, ledger: Ledger, run: RunRef) -> dict[str, Any]:
        """After the documents are stored: remember the shifts read and move the sweep's bookmark."""
        record_shifts_read(ledger, self.shifts_read, run)
        if ctx.params.get(SHIFT_SWEEP) and self.sweep_complete:
            ledger.advance_cursor(SHIFT_SWEEP_CURSOR, ctx.window_end)
        return {
            "shifts_read": len(self.shifts_read),
            "shift_ids": [str(shift.get("register_shift_id")) for shift, _, _ in self.shifts_read][:50],
        }

    # -- map -----------------------------------------------------------------------------------
    def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
        """Customers, invoices, receipts and returns for the orders (see the module docstring)."""
        if not records:
            return []
        settings = ctx.settings
        documents: list[Document] = []
        readable: list[tuple[dict[str, Any], list[str]]] = []
        for raw in records:
            if self.ignores(raw):
                continue
            if not isinstance(raw, dict) or self.record_key(raw).startswith("unreadable:"):
                documents.append(self.unreadable(raw, "it is not an iSeller order with an order_id"))
                continue
            reader = Reader(order_label(raw, self.record_key(raw)))
            try:
                readable.append((read_order(raw, settings, reader), reader.cleaned))
            except FieldProblem as problem:
                documents.extend(failed_order(raw, self.record_key(raw), f"{reader.label}: {problem}"))
        orders = [order for order, _ in readable]
        lines = lines_frame(orders)
        problems = line_problems(lines)
        items_by_order = lines_by_order(lines)
        for order, cleaned in readable:
            mapped = map_order(
                order,
                settings,
                items_by_order.get(str(order["order_id"])),
                problems.get(str(order["order_id"])),
            )
            for doc in mapped:
                if doc.data_type == SALES_INVOICE.data_type:
                    doc.cleaned = list(cleaned)
            documents.extend(mapped)
        # One customer document per customer, however many orders name it.
        unique: dict[tuple[str, str], Document] = {}
        for doc in documents:
            unique.setdefault(doc.key, doc)
        return list(unique.values())
