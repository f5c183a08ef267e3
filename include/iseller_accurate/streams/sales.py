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

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from include.iseller_accurate.checks import FieldProblem, Reader, kind_of, read_time
from include.iseller_accurate.ledger import Document, Ledger, RunRef
from include.iseller_accurate.pipeline import ExtractContext, MapContext, Stream
from include.iseller_accurate.settings import OutletMapping, SyncSettings

ZERO = Decimal(0)
CUSTOMER_NOTE_PREFIX = "iSeller customer "
#: Internal param set by ``plan_run``: this run sweeps closed shifts instead of reading a window.
SHIFT_SWEEP = "_shift_sweep"
#: Bookmark (``sync.cursors``) of the shift sweep: the run time of the last complete sweep.
SHIFT_SWEEP_CURSOR = "sales_shift_sweep"
#: The sweep lists shifts closed since its bookmark minus this (an offline POS uploads a shift late).
SHIFT_SWEEP_OVERLAP = timedelta(days=1)
#: At most this many shifts per sweep run; the rest are read by the next sweep.
MAX_SWEEP_SHIFTS = 200


def parse_time(value: Any) -> datetime | None:
    """iSeller times: ISO-8601, offset-less meaning UTC. Returns an aware UTC datetime.

    Raises :class:`FieldProblem` (a ValueError) for anything else; mapping reads its times through
    :class:`checks.Reader` first, so that the reason names the document and the field.
    """
    return read_time(value, "time")


def _within(value: Any, start: datetime, end: datetime) -> bool:
    moment = parse_time(value)
    return moment is not None and start <= moment <= end


def _in_shift(order: Any, start: datetime, end: datetime) -> bool:
    """Whether an order iSeller listed for a shift's register and times belongs to that shift.

    An order whose ``order_date`` is missing or unreadable is kept: dropping it here would lose it
    without a trace, and raising would fail the whole shift. Kept, it reaches the per-document
    check, which fails that order alone with a reason naming its ``order_date``.
    """
    if not isinstance(order, dict):
        return True
    try:
        moment = parse_time(order.get("order_date"))
    except ValueError:  # FieldProblem
        return True
    return moment is None or start <= moment <= end


def _shift_bounds(shift: dict[str, Any]) -> tuple[datetime, datetime]:
    opened, closed = parse_time(shift.get("open_date")), parse_time(shift.get("closed_date"))
    if opened is None or closed is None:
        raise ValueError(f"register shift {shift.get('register_shift_id')} is not closed")
    return opened, closed


def shifts_already_read(ledger: Ledger, shift_ids: Sequence[str]) -> set[str]:
    """Which of ``shift_ids`` a run has already read (table ``sync.register_shifts_read``)."""
    if not shift_ids:
        return set()
    rows = ledger.conn.execute(
        "SELECT register_shift_id FROM sync.register_shifts_read WHERE register_shift_id = ANY(%s)",
        (list(shift_ids),),
    ).fetchall()
    return {row["register_shift_id"] if isinstance(row, dict) else row[0] for row in rows}


def record_shifts_read(
    ledger: Ledger, shifts: Sequence[tuple[dict[str, Any], int, str]], run: RunRef
) -> None:
    """Remember shifts whose orders are now stored in the ledger (by a trigger or by the sweep)."""
    if not shifts:
        return
    with ledger.conn.transaction():
        for shift, orders, read_by in shifts:
            ledger.conn.execute(
                "INSERT INTO sync.register_shifts_read (register_shift_id, register_id, outlet_id,"
                " open_date, closed_date, orders, read_by, dag_id, run_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (register_shift_id) DO UPDATE SET orders = EXCLUDED.orders,"
                " closed_date = EXCLUDED.closed_date, dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id,"
                " last_read_at = now()",
                (
                    str(shift.get("register_shift_id")),
                    str(shift.get("register_id") or ""),
                    shift.get("outlet_id"),
                    parse_time(shift.get("open_date")),
                    parse_time(shift.get("closed_date")),
                    orders,
                    read_by,
                    run.dag_id,
                    run.run_id,
                ),
            )


def accurate_date(moment: datetime, settings: SyncSettings) -> str:
    """Accurate's ``dd/MM/yyyy`` for the shop's local date of ``moment``."""
    return moment.astimezone(settings.tz).strftime("%d/%m/%Y")


def reference_of(order: dict[str, Any]) -> str:
    """The order reference without ``#`` (falls back to the start of the order id)."""
    reference = str(order.get("order_reference") or "").strip().lstrip("#")
    return reference or str(order["order_id"])[:13]


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


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
            return "sales_return", "sales-return", ":unreadable"
        return "sales_invoice", "sales-invoice", ""

    def __init__(self) -> None:
        #: Shifts read by this run, remembered in the ledger by :meth:`mark_read` once stored.
        self.shifts_read: list[tuple[dict[str, Any], int, str]] = []
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
            shift = self._find_shift(ctx)
            orders = self._shift_orders(ctx, shift)
            self.shifts_read.append((shift, len(orders), "trigger"))
            return orders
        if params.get(SHIFT_SWEEP):
            return self._sweep(ctx)
        pages = ctx.iseller.get_orders_pages(modified_after=ctx.window_start, modified_before=ctx.window_end)
        return self._collect(pages)

    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Re-read orders by id (their refunds too), for the sync refresh."""
        records: list[dict[str, Any]] = []
        for order_id in source_keys:
            records.extend(self._collect(ctx.iseller.get_orders_pages(order_id=order_id)))
        return records

    def _shift_orders(self, ctx: ExtractContext, shift: dict[str, Any]) -> list[dict[str, Any]]:
        """The orders of one closed shift: its register's orders with open <= order_date <= close."""
        start, end = _shift_bounds(shift)
        # iSeller's created_before is exclusive and its times have whole seconds: ask one second more.
        pages = ctx.iseller.get_orders_pages(
            created_after=start,
            created_before=end + timedelta(seconds=1),
            register_id=str(shift.get("register_id") or ctx.params.get("register_id") or "") or None,
            outlet_id=shift.get("outlet_id") or ctx.params.get("outlet_id"),
        )
        orders = self._collect(pages)
        return [o for o in orders if o.get("_only_refund") or _in_shift(o, start, end)]

    def _find_shift(self, ctx: ExtractContext) -> dict[str, Any]:
        """The closed shift the trigger's conf names; conf that cannot name one fails the run at once."""
        from include.iseller_accurate.clients.errors import IsellerBusinessError
        from include.iseller_accurate.conf import TriggerConfError

        params = ctx.params
        shift_id, register_id = params["register_shift_id"], params.get("register_id")
        try:
            shifts = list(
                ctx.iseller.get_register_shifts(
                    register_id=register_id, outlet_id=params.get("outlet_id"), register_shift_id=shift_id
                )
            )
        except IsellerBusinessError as error:  # e.g. "Register not found": retrying cannot help
            raise TriggerConfError(
                f"conf.register_id/conf.outlet_id: iSeller refused them ({error}); check the trigger's conf"
            ) from None
        for shift in shifts:
            if str(shift.get("register_shift_id")) != str(shift_id):
                continue
            if parse_time(shift.get("open_date")) is None:
                raise TriggerConfError(
                    f"conf.register_shift_id: shift {shift_id} has no open date in iSeller"
                )
            if parse_time(shift.get("closed_date")) is None:
                raise TriggerConfError(
                    f"conf.register_shift_id: shift {shift_id} is still open in iSeller; it is synced by"
                    " the next shift sweep after it closes (or trigger again once it is closed)"
                )
            return {"register_id": register_id, "outlet_id": params.get("outlet_id"), **shift}
        raise TriggerConfError(
            f"conf.register_shift_id: shift {shift_id} of register {register_id} was not found in iSeller;"
            " check the register_shift_id in the trigger's conf"
        )

    def _sweep(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Orders of every closed shift no run has read (the POS trigger never arrived, or failed).

        Lists the shifts closed since the last sweep (minus a day of overlap, for shifts an offline POS
        uploads late) up to the run's time, and reads those not in ``sync.register_shifts_read``.
        """
        if ctx.ledger is None:
            raise RuntimeError("the shift sweep needs the ledger")
        cursor = ctx.ledger.cursor(SHIFT_SWEEP_CURSOR)
        end = ctx.window_end
        since = min(cursor - SHIFT_SWEEP_OVERLAP if cursor else end - self.initial_lookback, end)
        closed = [
            shift
            for shift in ctx.iseller.get_register_shifts(
                closed_after=since, closed_before=end + timedelta(seconds=1)
            )
            if (moment := parse_time(shift.get("closed_date"))) is not None
            and since <= moment <= end
            and parse_time(shift.get("open_date")) is not None
        ]
        known = shifts_already_read(ctx.ledger, [str(s.get("register_shift_id")) for s in closed])
        unread = sorted(
            (s for s in closed if str(s.get("register_shift_id")) not in known),
            key=lambda s: parse_time(s.get("closed_date")) or end,
        )
        self.sweep_complete = len(unread) <= MAX_SWEEP_SHIFTS
        records: list[dict[str, Any]] = []
        for shift in unread[:MAX_SWEEP_SHIFTS]:
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

    @staticmethod
    def _collect(pages: Any) -> list[dict[str, Any]]:
        orders: dict[str, dict[str, Any]] = {}
        refunds: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in pages:
            for order in page.get("orders") or []:
                orders[SalesStream().record_key(order)] = order
            for refunded in page.get("refunded_orders") or []:
                refunds[SalesStream().record_key(refunded)].append(refunded)
        records = []
        for order_id in list(orders) + [k for k in refunds if k not in orders]:
            found = orders.get(order_id) or refunds[order_id][0]
            if not isinstance(found, dict):
                records.append(found)  # mapping fails it alone, with its reason
                continue
            order = dict(found)
            seen = {}
            for refund in refunds.get(order_id, []):
                seen[str(refund.get("refund_id") or refund.get("refund_date"))] = refund
            order["_refunds"] = list(seen.values())
            order["_only_refund"] = order_id not in orders
            records.append(order)
        return records

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
            reader = Reader(_label(raw))
            try:
                readable.append((_read_order(raw, settings, reader), reader.cleaned))
            except FieldProblem as problem:
                documents.extend(_failed_order(raw, f"{reader.label}: {problem}", settings))
        orders = [order for order, _ in readable]
        lines = _lines_frame(orders)
        line_problems = _line_problems(lines)
        items_by_order = _lines_by_order(lines)
        for order, cleaned in readable:
            mapped = self._map_order(
                order,
                settings,
                items_by_order.get(str(order["order_id"])),
                line_problems.get(str(order["order_id"])),
            )
            for doc in mapped:
                if doc.data_type == "sales_invoice":
                    doc.cleaned = list(cleaned)
            documents.extend(mapped)
        # One customer document per customer, however many orders name it.
        unique: dict[tuple[str, str], Document] = {}
        for doc in documents:
            unique.setdefault(doc.key, doc)
        return list(unique.values())

    def _map_order(
        self,
        order: dict[str, Any],
        settings: SyncSettings,
        items: list[dict[str, Any]] | None,
        line_problem: str | None,
    ) -> list[Document]:
        order_id = str(order["order_id"])
        reference = reference_of(order)
        label = f"order #{reference}"
        status = str(order.get("status") or "").lower()
        when = (
            parse_time(order.get("closed_date")) or parse_time(order.get("order_date")) or datetime.now(UTC)
        )
        outlet_id = str(order.get("outlet_id") or "")
        invoice_number = f"SI/{reference}"
        base: dict[str, Any] = {
            "source_key": order_id,
            "source_number": f"#{reference}",
            "outlet_id": outlet_id,
        }
        invoice_key = ("sales_invoice", order_id)
        source = {k: v for k, v in order.items() if not k.startswith("_")}

        if status not in ("completed", "void"):
            return []
        documents: list[Document] = []
        mapping = settings.outlet(outlet_id)
        if status == "void" and not order.get("_only_refund"):
            cancelled_at = order.get("cancel_date") or order.get("modified_date")
            cancelled = cancelled_at.isoformat() if isinstance(cancelled_at, datetime) else ""
            return [
                Document(
                    "sales_invoice",
                    order_id,
                    source_date=when,
                    target_module="sales-invoice",
                    target_number=invoice_number,
                    payload=None,
                    source=source,
                    status="skipped",
                    reason=f"{label} was voided in iSeller {cancelled}: nothing to post".strip(),
                    **base,
                )
            ]
        customer_doc, customer_ref, customer_no = self._customer(order, settings, mapping, when, base)
        if customer_doc is not None:
            documents.append(customer_doc)
        if not order.get("_only_refund"):
            problem = _outlet_problem(order, mapping) or line_problem
            invoice = Document(
                "sales_invoice",
                order_id,
                source_date=when,
                target_module="sales-invoice",
                target_number=invoice_number,
                payload=None,
                source=source,
                **base,
            )
            if problem or mapping is None or items is None:
                invoice.status = "failed"
                invoice.reason = f"{label}: {problem or 'the order has no lines'}"
            else:
                invoice.payload = _invoice_payload(
                    order, items, mapping, settings, invoice_number, customer_no
                )
                disagreement = _total_problem(order, invoice.payload)
                if disagreement:
                    invoice.status = "failed"
                    invoice.reason = f"{label}: {disagreement}"
                    invoice.payload = None
                if customer_ref:
                    invoice.requires.append(customer_ref)
                    invoice.refs["customerNo"] = customer_ref
            documents.append(invoice)
            documents.extend(
                self._receipts(order, settings, mapping, invoice, when, base, customer_ref, customer_no)
            )
        documents.extend(
            self._returns(
                order, settings, mapping, items, invoice_key, invoice_number, base, customer_ref, customer_no
            )
        )
        return documents

    def _customer(
        self,
        order: dict[str, Any],
        settings: SyncSettings,
        mapping: OutletMapping | None,
        when: datetime,
        base: dict[str, Any],
    ) -> tuple[Document | None, tuple[str, str] | None, str]:
        customer_id = order.get("customer_id")
        walk_in = mapping.walk_in_customer if mapping else "UMUM"
        if not customer_id:
            return None, None, walk_in
        customer_id = str(customer_id)
        id_number = str(order.get("external_customer_id") or "").strip()
        name = (
            " ".join(
                str(order.get(k) or "").strip() for k in ("customer_first_name", "customer_last_name")
            ).strip()
            or f"Pelanggan {customer_id[:8]}"
        )
        payload: dict[str, Any] = {"name": name, "notes": f"{CUSTOMER_NOTE_PREFIX}{customer_id}"}
        if order.get("customer_email"):
            payload["email"] = order["customer_email"]
        if order.get("customer_phone_number"):
            payload["mobilePhone"] = order["customer_phone_number"]
        if mapping:
            payload["branchName"] = mapping.branch
        numbered = settings.use_customer_id_mapping and bool(id_number)
        if numbered:
            payload["customerNo"] = id_number
        doc = Document(
            "customer",
            customer_id,
            source_key=str(order["order_id"]),
            source_date=when,
            target_module="customer",
            target_number=id_number if numbered else None,
            payload=payload,
            source_number=id_number or name,
            outlet_id=base["outlet_id"],
            source={"customer_id": customer_id, "external_customer_id": id_number or None, "name": name},
            lookup=None if numbered else {"field": "notes", "value": payload["notes"]},
        )
        return doc, ("customer", customer_id), id_number if numbered else ""

    def _receipts(
        self,
        order: dict[str, Any],
        settings: SyncSettings,
        mapping: OutletMapping | None,
        invoice: Document,
        when: datetime,
        base: dict[str, Any],
        customer_ref: tuple[str, str] | None,
        customer_no: str,
    ) -> list[Document]:
        reference = reference_of(order)
        limits = settings.limits
        reader = Reader(f"order #{reference}")
        transactions = order.get("transactions") or []
        problems: dict[str | None, str] = {}
        if not isinstance(transactions, list):
            problems[None] = f"{reader.label}: {reader.fail('transactions', 'not a list of payments')}"
            transactions = []
        payments = []
        by_account: dict[str | None, Decimal] = defaultdict(Decimal)
        unmapped: list[str] = []
        last_paid = when
        for index, payment in enumerate(transactions, start=1):
            reader.at(f"payment {index}")
            account: str | None = None
            try:
                if not isinstance(payment, dict):
                    raise reader.fail("transactions", f"{kind_of(payment)} where a payment is expected")
                kind = reader.text(payment.get("type", "sale"), "type", identifier=True).lower()
                state = reader.text(payment.get("status", "success"), "status", identifier=True).lower()
                if kind != "sale" or state != "success":
                    continue
                gateway = reader.text(payment.get("gateway"), "gateway", identifier=True) or "custom"
                account = mapping.account_for(gateway) if mapping else None
                amount = reader.number(
                    payment.get("amount"),
                    "amount",
                    maximum=limits.max_document_total,
                    limit_name="limits.max_document_total",
                )
                paid = reader.moment(payment.get("transaction_date"), "transaction_date")
            except FieldProblem as problem:
                problems.setdefault(account, f"{reader.label}: {problem}")
                by_account.setdefault(account, ZERO)
                continue
            payments.append(payment)
            if account is None:
                unmapped.append(gateway)
            by_account[account] += amount
            last_paid = max(last_paid, paid or last_paid)
        if not payments and not problems:
            return []
        reader.at("")
        for account, total in by_account.items():
            try:
                reader.amount_limit(total, "amount", limits, "max_document_total", "the payments' total")
            except FieldProblem as problem:
                problems.setdefault(account, f"{reader.label}: {problem}")
        documents = []
        accounts = sorted(by_account, key=lambda a: (a is None, a or ""))
        for index, account in enumerate(accounts, start=1):
            number = f"SR/{reference}" if index == 1 else f"SR/{reference}-{index}"
            doc = Document(
                "sales_receipt",
                f"{order['order_id']}:{account or 'unmapped'}",
                source_date=last_paid,
                target_module="sales-receipt",
                target_number=number,
                payload=None,
                source={"order_id": order["order_id"], "payments": payments},
                **base,
            )
            doc.requires.append(invoice.key)
            if mapping is None:
                doc.status, doc.reason = "failed", f"order #{reference}: {_outlet_problem(order, None)}"
            elif account in problems:
                doc.status, doc.reason = "failed", problems[account]
            elif account is None:
                doc.status = "failed"
                doc.reason = (
                    f"order #{reference}: payment type {', '.join(sorted(set(unmapped)))} has no"
                    f" Accurate account in {_outlet_path(order)}.payment_accounts (or cash_account);"
                    " add it, then refresh"
                )
            elif mapping is not None:
                doc.payload = {
                    "number": number,
                    "transDate": accurate_date(last_paid, settings),
                    "customerNo": customer_no,
                    "bankNo": account,
                    "branchName": mapping.branch,
                    "chequeAmount": by_account[account],
                    "description": f"Pembayaran iSeller #{reference}",
                    "detailInvoice": [
                        {"invoiceNo": invoice.target_number, "paymentAmount": by_account[account]}
                    ],
                }
                if customer_ref:
                    doc.requires.append(customer_ref)
                    doc.refs["customerNo"] = customer_ref
            documents.append(doc)
        return documents

    def _returns(
        self,
        order: dict[str, Any],
        settings: SyncSettings,
        mapping: OutletMapping | None,
        items: list[dict[str, Any]] | None,
        invoice_key: tuple[str, str],
        invoice_number: str,
        base: dict[str, Any],
        customer_ref: tuple[str, str] | None,
        customer_no: str,
    ) -> list[Document]:
        refunds = sorted(
            order.get("_refunds") or [],
            key=lambda r: str(r.get("refund_date")) if isinstance(r, dict) else "",
        )
        documents = []
        reference = reference_of(order)
        for index, refund in enumerate(refunds, start=1):
            number = f"RT/{reference}" if index == 1 else f"RT/{reference}-{index}"
            reader = Reader(f"order #{reference}")
            refund_key, when, problem = _refund_identity(order, refund, index, reader)
            if problem is not None:
                documents.append(
                    Document(
                        "sales_return",
                        f"{order['order_id']}:{refund_key}",
                        source_date=when,
                        target_module="sales-return",
                        target_number=number,
                        payload=None,
                        source=refund if isinstance(refund, dict) else {"refund": repr(refund)[:2000]},
                        status="failed",
                        reason=problem,
                        requires=[invoice_key],
                        **base,
                    )
                )
                continue
            doc = Document(
                "sales_return",
                f"{order['order_id']}:{refund_key}",
                source_date=when,
                target_module="sales-return",
                target_number=number,
                payload=None,
                source=refund,
                **base,
            )
            doc.requires.append(invoice_key)
            try:
                returned = _refund_lines(refund, items, reader, settings)
            except FieldProblem as problem:
                doc.status, doc.reason = "failed", f"{reader.label}: {problem}"
                documents.append(doc)
                continue
            if mapping is None:
                doc.status, doc.reason = "failed", f"order #{reference}: {_outlet_problem(order, None)}"
            elif not returned:
                doc.status, doc.reason = "failed", f"refund of order #{reference} names no returned items"
            elif any(not line["itemNo"] for line in returned):
                doc.status = "failed"
                doc.reason = (
                    f"refund of order #{reference}: a returned product has no SKU in iSeller;"
                    " set it, then refresh"
                )
            else:
                doc.payload = {
                    "number": number,
                    "transDate": accurate_date(when, settings),
                    "customerNo": customer_no,
                    "branchName": mapping.branch,
                    "invoiceNumber": invoice_number,
                    "description": f"Retur iSeller #{reference}",
                    "detailItem": [{**line, "warehouseName": mapping.warehouse} for line in returned],
                }
                if customer_ref:
                    doc.requires.append(customer_ref)
                    doc.refs["customerNo"] = customer_ref
            documents.append(doc)
        return documents


def _outlet_path(order: dict[str, Any]) -> str:
    return f"iseller_accurate_settings.outlets.{order.get('outlet_id')}"


def _outlet_problem(order: dict[str, Any], mapping: OutletMapping | None) -> str | None:
    if mapping is not None:
        return None
    name = order.get("outlet_name") or order.get("outlet_code") or "the outlet"
    return (
        f"outlet {name} ({order.get('outlet_id')}) has no Accurate mapping; add branch and warehouse under"
        f" {_outlet_path(order)} in the settings Variable, then refresh"
    )


def _lines_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for order in records:
        for position, line in enumerate(order.get("order_details") or [], start=1):
            rows.append(
                {
                    "order_id": str(order["order_id"]),
                    "position": position,
                    "order_detail_id": str(line.get("order_detail_id") or position),
                    "product_id": line.get("product_id"),
                    "product_name": str(line.get("product_name") or ""),
                    "sku": str(line.get("sku") or "").strip(),
                    "quantity": _decimal(line.get("quantity")),
                    "base_price": _decimal(line.get("base_price")),
                    "discount_amount": _decimal(line.get("discount_amount")),
                    "tax_percentage": _decimal(line.get("tax_percentage")),
                }
            )
    columns = [
        "order_id",
        "position",
        "order_detail_id",
        "product_id",
        "product_name",
        "sku",
        "quantity",
        "base_price",
        "discount_amount",
        "tax_percentage",
    ]
    return pd.DataFrame(rows, columns=columns)


def _lines_by_order(lines: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The lines of each order in their order, as plain records (one pass over the frame)."""
    lines = lines.assign(taxed=lines["tax_percentage"].map(lambda pct: pct > 0))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in lines.sort_values(["order_id", "position"], kind="stable").to_dict("records"):
        grouped.setdefault(str(record["order_id"]), []).append({str(k): v for k, v in record.items()})
    return grouped


def _line_problems(lines: pd.DataFrame) -> dict[str, str]:
    """Per order, the first reason its lines cannot become Accurate lines."""
    problems: dict[str, str] = {}
    if lines.empty:
        return problems
    no_sku = lines[lines["sku"] == ""]
    for order_id, frame in no_sku.groupby("order_id", sort=False):
        first = frame.iloc[0]
        problems[str(order_id)] = (
            f"line {first['position']} ({first['product_name']}) has no SKU in iSeller; set the product's SKU"
            " in iSeller to its Accurate item number, then refresh"
        )
    bad_qty = lines[lines["quantity"].map(lambda q: q <= 0)]
    for order_id, frame in bad_qty.groupby("order_id", sort=False):
        first = frame.iloc[0]
        problems.setdefault(
            str(order_id),
            f"line {first['position']} ({first['product_name']}) has quantity {first['quantity']}",
        )
    return problems


def _invoice_payload(
    order: dict[str, Any],
    items: list[dict[str, Any]],
    mapping: OutletMapping,
    settings: SyncSettings,
    number: str,
    customer_no: str,
) -> dict[str, Any]:
    when = parse_time(order.get("closed_date")) or parse_time(order.get("order_date")) or datetime.now(UTC)
    detail = []
    for line in items:
        entry: dict[str, Any] = {
            "itemNo": line["sku"],
            "quantity": line["quantity"],
            "unitPrice": line["base_price"],
            "warehouseName": mapping.warehouse,
            "detailNotes": line["product_name"],
            "useTax1": line["taxed"],
        }
        if line["discount_amount"]:
            entry["itemCashDiscount"] = line["discount_amount"]
        detail.append(entry)
    line_discounts = sum((d["itemCashDiscount"] for d in detail if "itemCashDiscount" in d), ZERO)
    order_discount = _decimal(order.get("total_discount_amount")) - line_discounts
    payload: dict[str, Any] = {
        "number": number,
        "transDate": accurate_date(when, settings),
        "customerNo": customer_no,
        "branchName": mapping.branch,
        "description": f"Penjualan iSeller #{reference_of(order)}"
        + (
            f" ({order.get('outlet_name')}, {order.get('register_name')})" if order.get("outlet_name") else ""
        ),
        "inclusiveTax": bool(order.get("tax_inclusive")),
        "taxable": _decimal(order.get("total_tax_amount")) > 0,
        "detailItem": detail,
    }
    # Cash rounding: a total rounded down (negative rounding_amount) is a discount on the invoice,
    # so the receipt of what the customer paid settles it exactly. A total rounded up has no field
    # in Accurate's sales invoice to carry it; it is noted in the description (see the README).
    rounding = _decimal(order.get("rounding_amount"))
    if rounding < 0:
        order_discount = max(order_discount, ZERO) - rounding
    if order_discount > 0:
        payload["cashDiscount"] = order_discount
    if rounding:
        payload["description"] += f"; pembulatan {rounding}"
    return payload


#: iSeller's order total, in the order the mapping trusts them (the public doc's name first).
_TOTAL_FIELDS = ("total_order_amount", "total_amount")
#: Largest difference between iSeller's total and the invoice's that is still the same sale (a
#: rupiah: iSeller rounds tax per line, Accurate per invoice).
TOTAL_TOLERANCE = Decimal(1)
_PPN = Decimal(11)
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


def invoice_total(payload: dict[str, Any]) -> Decimal:
    """The total Accurate will compute for an invoice payload: lines (quantity x price - line
    discount), less ``cashDiscount``, with 11 % PPN on the taxed lines (taken out of the amount when
    ``inclusiveTax``, added on top otherwise; the cash discount shared over the lines by amount)."""
    lines = [
        (line["quantity"] * line["unitPrice"] - line.get("itemCashDiscount", ZERO), bool(line.get("useTax1")))
        for line in payload.get("detailItem") or []
    ]
    subtotal = sum((amount for amount, _ in lines), ZERO)
    cash_discount = payload.get("cashDiscount") or ZERO
    net = subtotal - cash_discount
    if not payload.get("taxable") or payload.get("inclusiveTax"):
        return net.quantize(_CENT)
    taxed = sum((amount for amount, use_tax in lines if use_tax), ZERO)
    if subtotal:
        taxed -= cash_discount * taxed / subtotal
    tax = (taxed * _PPN / _HUNDRED).quantize(_CENT)
    return (net + tax).quantize(_CENT)


def _total_problem(order: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """Why the invoice would not carry the sale iSeller recorded (None: it does, or iSeller gave
    no total). A total rounded up (positive ``rounding_amount``) has no place on the invoice and is
    left out of the comparison (it is noted in the description)."""
    name = next((n for n in _TOTAL_FIELDS if isinstance(order.get(n), Decimal)), None)
    if name is None:
        return None
    expected = order[name]
    rounding = order.get("rounding_amount") or ZERO
    comparable = expected - max(rounding, ZERO)
    computed = invoice_total(payload)
    difference = computed - comparable
    if difference.copy_abs() <= TOTAL_TOLERANCE:
        return None
    tax = order.get("total_tax_amount") or ZERO
    details = payload["detailItem"]
    line_sum = sum((d["quantity"] * d["unitPrice"] - d.get("itemCashDiscount", ZERO) for d in details), ZERO)
    if tax and (difference - tax).copy_abs() <= TOTAL_TOLERANCE:
        cause = (
            f"the difference is the tax {tax}: iSeller's tax_inclusive ({order.get('tax_inclusive')})"
            " does not match how its total was taxed"
        )
    elif tax and (difference + tax).copy_abs() <= TOTAL_TOLERANCE:
        cause = (
            f"the difference is the tax {tax}: iSeller added tax on top of prices marked tax-inclusive"
            f" ({order.get('tax_inclusive')})"
        )
    elif difference > 0:
        cause = (
            f"the lines add up to {line_sum} before order discount and tax: a discount, promotion or"
            " line missing from the order's details (e.g. total_promotion_amount) is the likely cause"
        )
    else:
        cause = (
            f"the lines add up to {line_sum} before order discount and tax: a line or charge is missing"
            " from the order's details, or a discount was counted twice"
        )
    return (
        f"the invoice would total {computed} but iSeller's {name} is {expected}"
        + (f" (less rounding up {rounding} = {comparable})" if rounding > 0 else "")
        + f", a difference of {difference} (more than {TOTAL_TOLERANCE} rupiah); {cause}. Nothing was"
        " posted: correct the order in iSeller (or tell the integrator which total is right), then refresh"
    )


def _refund_identity(
    order: dict[str, Any], refund: Any, index: int, reader: Reader
) -> tuple[str, datetime, str | None]:
    """A refund's ledger key and date, and the reason it cannot be read (None: it can).

    The reader is placed at the refund (``refund <id>``) for the lines read next."""
    fallback = order.get("modified_date") if isinstance(order.get("modified_date"), datetime) else None
    if not isinstance(refund, dict):
        reader.at(f"refund {index}")
        problem = reader.fail("refund", f"{kind_of(refund)} where a refund is expected")
        return f"refund-{index}", fallback or datetime.now(UTC), f"{reader.label}: {problem}"
    try:
        refund_id = reader.at(f"refund {index}").text(refund.get("refund_id"), "refund_id", identifier=True)
    except FieldProblem as problem:
        return f"refund-{index}", fallback or datetime.now(UTC), f"{reader.label}: {problem}"
    reader.at(f"refund {refund_id or index}")
    try:
        when = reader.moment(refund.get("refund_date"), "refund_date") or fallback or datetime.now(UTC)
    except FieldProblem as problem:
        return refund_id or f"refund-{index}", fallback or datetime.now(UTC), f"{reader.label}: {problem}"
    return refund_id or when.isoformat(), when, None


def _refund_lines(
    refund: dict[str, Any], items: list[dict[str, Any]] | None, reader: Reader, settings: SyncSettings
) -> list[dict[str, Any]]:
    """Returned lines as Accurate return lines (sku, quantity, unit price from the sale).

    Raises :class:`FieldProblem` for a value that cannot be read or is outside the limits."""
    raw = refund.get("refund_details") or refund.get("returned_items") or refund.get("order_details") or []
    if not isinstance(raw, list):
        raise reader.fail("refund_details", f"{kind_of(raw)} where a list of lines is expected")
    limits = settings.limits
    prices: dict[str, Decimal] = {}
    if items is not None:
        prices = {str(line["sku"]): line["base_price"] for line in items}
    where = reader.where
    lines = []
    total = ZERO
    for position, line in enumerate(raw, start=1):
        reader.at(f"{where} line {position}")
        if not isinstance(line, dict):
            raise reader.fail("refund_details", f"{kind_of(line)} where a line is expected")
        field = "returned_quantity" if "returned_quantity" in line else "quantity"
        quantity = reader.number(line.get(field), field, negative=True)
        if quantity <= 0:
            continue
        quantity = reader.quantity(quantity, field, limits)
        sku = reader.text(line.get("sku"), "sku", identifier=True)
        price = reader.number(line.get("base_price"), "base_price") or prices.get(sku, ZERO)
        amount = quantity * price
        what = f"quantity {quantity} x unit price {price} ="
        reader.amount_limit(amount, "base_price", limits, "max_line_amount", what)
        total += amount
        lines.append({"itemNo": sku, "quantity": quantity, "unitPrice": price})
    reader.at(where)
    reader.amount_limit(total, "total", limits, "max_document_total", "the refund's total")
    return lines


def _label(order: dict[str, Any]) -> str:
    """How a reason names an order: ``order #JKT01-1001``, or by its id when the reference is unusable."""
    try:
        reference = Reader("").text(order.get("order_reference"), "order_reference", identifier=True)
        reference = reference.lstrip("#")
    except FieldProblem:
        reference = ""
    return f"order #{reference}" if reference else f"order {SalesStream().record_key(order)}"


_HEADER_IDS = ("order_id", "order_reference", "status", "outlet_id", "customer_id", "external_customer_id")
_HEADER_TEXT = (
    "outlet_name",
    "outlet_code",
    "register_name",
    "customer_first_name",
    "customer_last_name",
    "customer_email",
    "customer_phone_number",
)
_HEADER_TIMES = ("order_date", "closed_date", "cancel_date", "modified_date")


def _read_order(raw: dict[str, Any], settings: SyncSettings, reader: Reader) -> dict[str, Any]:
    """A copy of an order with every value the mapping uses checked: identifiers as clean text,
    names cleaned, amounts as finite Decimals within the limits, times as UTC datetimes.

    Raises :class:`FieldProblem` naming the line and field of the first unusable value. Payments
    and refunds are checked where they are mapped, so that they fail their own documents.
    """
    limits = settings.limits
    order = dict(raw)
    reader.at("")
    for name in _HEADER_IDS:
        if name in raw:
            order[name] = reader.text(raw.get(name), name, identifier=True, required=name == "order_id")
    for name in _HEADER_TEXT:
        if name in raw:
            order[name] = reader.text(raw.get(name), name)
    for name in _HEADER_TIMES:
        if name in raw:
            order[name] = reader.moment(raw.get(name), name)
    for name in ("total_discount_amount", "total_tax_amount"):
        order[name] = reader.number(raw.get(name), name)
    for name in _TOTAL_FIELDS:
        if raw.get(name) not in (None, ""):
            order[name] = reader.number(raw.get(name), name)
    order["rounding_amount"] = reader.number(raw.get("rounding_amount"), "rounding_amount", negative=True)
    details = raw.get("order_details") or []
    if not isinstance(details, list):
        raise reader.fail("order_details", f"{kind_of(details)} where a list of lines is expected")
    lines = []
    total = ZERO
    for position, line in enumerate(details, start=1):
        reader.at(f"line {position}")
        if not isinstance(line, dict):
            raise reader.fail("order_details", f"{kind_of(line)} where a line is expected")
        clean = dict(line)
        clean["sku"] = reader.text(line.get("sku"), "sku", identifier=True)
        clean["product_name"] = reader.text(line.get("product_name"), "product_name")
        clean["order_detail_id"] = reader.text(line.get("order_detail_id"), "order_detail_id")
        quantity = clean["quantity"] = reader.quantity(line.get("quantity"), "quantity", limits)
        price = clean["base_price"] = reader.number(line.get("base_price"), "base_price")
        discount = clean["discount_amount"] = reader.number(line.get("discount_amount"), "discount_amount")
        tax = clean["tax_percentage"] = reader.number(line.get("tax_percentage"), "tax_percentage")
        if tax > 100:
            raise reader.fail("tax_percentage", f"{tax} is not between 0 and 100")
        amount = quantity * price
        what = f"quantity {quantity} x unit price {price} ="
        reader.amount_limit(amount, "base_price", limits, "max_line_amount", what)
        if discount > amount:
            raise reader.fail("discount_amount", f"{discount} is more than the line's amount {amount}")
        total += amount - discount
        lines.append(clean)
    order["order_details"] = lines
    reader.at("")
    reader.amount_limit(total, "total", limits, "max_document_total", "the order's total")
    return order


def _failed_order(raw: dict[str, Any], reason: str, settings: SyncSettings) -> list[Document]:
    """The documents of an order that cannot be read: its invoice (unless the order is only a refund
    of an earlier one) and each of its refunds' returns, all failed with the reason."""
    stream = SalesStream()
    order_id = stream.record_key(raw)
    reader = Reader("")
    try:
        reference = reader.text(raw.get("order_reference"), "order_reference", identifier=True).lstrip("#")
    except FieldProblem:
        reference = ""
    try:
        outlet_id = reader.text(raw.get("outlet_id"), "outlet_id", identifier=True)
    except FieldProblem:
        outlet_id = ""
    when = datetime.now(UTC)
    for name in ("closed_date", "order_date", "modified_date"):
        try:
            moment = read_time(raw.get(name), name)
        except FieldProblem:
            continue
        if moment is not None:
            when = moment
            break
    base: dict[str, Any] = {
        "source_key": order_id,
        "source_number": f"#{reference}" if reference else order_id,
        "outlet_id": outlet_id,
        "payload": None,
        "status": "failed",
        "reason": reason,
    }
    documents = []
    if not raw.get("_only_refund"):
        source = {k: v for k, v in raw.items() if not str(k).startswith("_")}
        documents.append(
            Document(
                "sales_invoice",
                order_id,
                source_date=when,
                target_module="sales-invoice",
                target_number=f"SI/{reference}" if reference else None,
                source=source,
                **base,
            )
        )
    refunds = raw.get("_refunds")
    for index, refund in enumerate(refunds if isinstance(refunds, list) else [], start=1):
        key, refunded_at, _ = _refund_identity({}, refund, index, Reader(""))
        documents.append(
            Document(
                "sales_return",
                f"{order_id}:{key}",
                source_date=refunded_at,
                target_module="sales-return",
                target_number=None,
                source=refund if isinstance(refund, dict) else {"refund": repr(refund)[:2000]},
                requires=[] if raw.get("_only_refund") else [("sales_invoice", order_id)],
                **base,
            )
        )
    return documents
