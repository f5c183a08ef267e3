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

from include.iseller_accurate.ledger import Document
from include.iseller_accurate.pipeline import ExtractContext, MapContext, Stream
from include.iseller_accurate.settings import OutletMapping, SyncSettings

ZERO = Decimal(0)
CUSTOMER_NOTE_PREFIX = "iSeller customer "


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
    """iSeller orders of a window or of one closed register shift."""

    name = "sales"

    def uses_window(self, params: dict[str, Any]) -> bool:
        return not params.get("register_shift_id")

    # -- extract -------------------------------------------------------------------------------
    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Orders (with refunds attached) of the run's shift or window."""
        params = ctx.params
        if params.get("register_shift_id"):
            start, end = self._shift_window(ctx)
            # A shift holds its register's orders with open <= order_date <= close; iSeller's
            # created_before is exclusive and its times have whole seconds, so ask one second more.
            pages = ctx.iseller.get_orders_pages(
                created_after=start,
                created_before=end + timedelta(seconds=1),
                register_id=params.get("register_id"),
                outlet_id=params.get("outlet_id"),
            )
            orders = self._collect(pages)
            return [o for o in orders if o.get("_only_refund") or _within(o.get("order_date"), start, end)]
        else:
            pages = ctx.iseller.get_orders_pages(
                modified_after=ctx.window_start, modified_before=ctx.window_end
            )
        return self._collect(pages)

    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Re-read orders by id (their refunds too), for the sync refresh."""
        records: list[dict[str, Any]] = []
        for order_id in source_keys:
            records.extend(self._collect(ctx.iseller.get_orders_pages(order_id=order_id)))
        return records

    def _shift_window(self, ctx: ExtractContext) -> tuple[datetime, datetime]:
        params = ctx.params
        shift_id = params["register_shift_id"]
        for shift in ctx.iseller.get_register_shifts(
            register_id=params.get("register_id"), outlet_id=params.get("outlet_id")
        ):
            if str(shift.get("register_shift_id")) != str(shift_id):
                continue
            opened, closed = parse_time(shift.get("open_date")), parse_time(shift.get("closed_date"))
            if opened is None:
                raise ValueError(f"register shift {shift_id} has no open date in iSeller")
            if closed is None:
                raise ValueError(
                    f"register shift {shift_id} is still open in iSeller; close the shift, then trigger again"
                )
            return opened, closed
        raise ValueError(
            f"register shift {shift_id} of register {params.get('register_id')} was not found in iSeller;"
            " check the register_shift_id in the trigger's conf"
        )

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
