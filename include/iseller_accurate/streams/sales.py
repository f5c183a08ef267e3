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
    """iSeller times: ISO-8601, offset-less meaning UTC. Returns an aware UTC datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _within(value: Any, start: datetime, end: datetime) -> bool:
    moment = parse_time(value)
    return moment is not None and start <= moment <= end


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
        return [o for o in orders if o.get("_only_refund") or _within(o.get("order_date"), start, end)]

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
            if (moment := parse_time(shift.get("closed_date"))) is not None and since <= moment <= end
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
                orders[str(order["order_id"])] = order
            for refunded in page.get("refunded_orders") or []:
                refunds[str(refunded["order_id"])].append(refunded)
        records = []
        for order_id in list(orders) + [k for k in refunds if k not in orders]:
            order = dict(orders.get(order_id) or refunds[order_id][0])
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
        lines = _lines_frame(records)
        line_problems = _line_problems(lines)
        items_by_order = _lines_by_order(lines)
        documents: list[Document] = []
        for order in records:
            documents.extend(
                self._map_order(
                    order,
                    settings,
                    items_by_order.get(str(order["order_id"])),
                    line_problems.get(str(order["order_id"])),
                )
            )
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
            cancelled = order.get("cancel_date") or order.get("modified_date") or ""
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
        payments = [
            t
            for t in order.get("transactions") or []
            if str(t.get("type", "sale")).lower() == "sale"
            and str(t.get("status", "success")).lower() == "success"
        ]
        if not payments:
            return []
        reference = reference_of(order)
        by_account: dict[str | None, Decimal] = defaultdict(Decimal)
        unmapped: list[str] = []
        last_paid = when
        for payment in payments:
            gateway = str(payment.get("gateway") or "custom")
            account = mapping.account_for(gateway) if mapping else None
            if account is None:
                unmapped.append(gateway)
            by_account[account] += _decimal(payment.get("amount"))
            last_paid = max(last_paid, parse_time(payment.get("transaction_date")) or last_paid)
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
            if account is None:
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
        refunds = sorted(order.get("_refunds") or [], key=lambda r: str(r.get("refund_date")))
        documents = []
        reference = reference_of(order)
        for index, refund in enumerate(refunds, start=1):
            when = (
                parse_time(refund.get("refund_date"))
                or parse_time(order.get("modified_date"))
                or datetime.now(UTC)
            )
            refund_key = str(refund.get("refund_id") or when.isoformat())
            number = f"RT/{reference}" if index == 1 else f"RT/{reference}-{index}"
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
            returned = _refund_lines(refund, items)
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


def _refund_lines(refund: dict[str, Any], items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Returned lines as Accurate return lines (sku, quantity, unit price from the sale)."""
    raw = refund.get("refund_details") or refund.get("returned_items") or refund.get("order_details") or []
    prices: dict[str, Decimal] = {}
    if items is not None:
        prices = {str(line["sku"]): line["base_price"] for line in items}
    lines = []
    for line in raw:
        quantity = _decimal(line.get("returned_quantity", line.get("quantity")))
        if quantity <= 0:
            continue
        sku = str(line.get("sku") or "").strip()
        price = _decimal(line.get("base_price")) or prices.get(sku, ZERO)
        lines.append({"itemNo": sku, "quantity": quantity, "unitPrice": price})
    return lines
