"""Sales, mapping: one checked iSeller order -> its Accurate customer, invoice, receipts and returns.

See :mod:`include.iseller_accurate.streams.sales` for the numbering and the prerequisites. The order
comes checked (:func:`sales_orders.read_order`); what is still wrong with it (an outlet without a
mapping, a payment type without an account, totals that disagree) fails the document it concerns,
with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from include.iseller_accurate.checks import FieldProblem, Reader, kind_of
from include.iseller_accurate.kinds import CUSTOMER, SALES_INVOICE, SALES_RECEIPT, SALES_RETURN
from include.iseller_accurate.ledger import Document
from include.iseller_accurate.settings import OutletMapping, SyncSettings
from include.iseller_accurate.streams.common import (
    SETTINGS_PATH,
    accurate_date,
    decimal_of,
    parse_time,
    source_fields,
)
from include.iseller_accurate.streams.sales_orders import (
    TOTAL_FIELDS,
    reference_of,
    refund_identity,
    refund_lines,
    refund_return,
)

ZERO = Decimal(0)
CUSTOMER_NOTE_PREFIX = "iSeller customer "


def map_order(
    order: dict[str, Any],
    settings: SyncSettings,
    items: list[dict[str, Any]] | None,
    line_problem: str | None,
) -> list[Document]:
    order_id = str(order["order_id"])
    reference = reference_of(order)
    label = f"order #{reference}"
    status = str(order.get("status") or "").lower()
    when = parse_time(order.get("closed_date")) or parse_time(order.get("order_date")) or datetime.now(UTC)
    outlet_id = str(order.get("outlet_id") or "")
    invoice_number = SALES_INVOICE.number(reference)
    base: dict[str, Any] = {
        "source_key": order_id,
        "source_number": f"#{reference}",
        "outlet_id": outlet_id,
    }
    invoice_key = SALES_INVOICE.key(order_id)
    source = source_fields(order)

    if status not in ("completed", "void"):
        return []
    documents: list[Document] = []
    mapping = settings.outlet(outlet_id)
    if status == "void" and not order.get("_only_refund"):
        cancelled_at = order.get("cancel_date") or order.get("modified_date")
        cancelled = cancelled_at.isoformat() if isinstance(cancelled_at, datetime) else ""
        return [
            SALES_INVOICE.document(
                order_id,
                source_date=when,
                number=invoice_number,
                source=source,
                status="skipped",
                reason=f"{label} was voided in iSeller {cancelled}: nothing to post".strip(),
                **base,
            )
        ]
    customer_doc, customer_ref, customer_no = _customer(order, settings, mapping, when, base)
    if customer_doc is not None:
        documents.append(customer_doc)
    if not order.get("_only_refund"):
        problem = _outlet_problem(order, mapping) or line_problem
        invoice = SALES_INVOICE.document(
            order_id,
            source_date=when,
            number=invoice_number,
            source=source,
            **base,
        )
        if problem or mapping is None or items is None:
            invoice.status = "failed"
            invoice.reason = f"{label}: {problem or 'the order has no lines'}"
        else:
            invoice.payload = _invoice_payload(order, items, mapping, settings, invoice_number, customer_no)
            disagreement = _total_problem(order, invoice.payload)
            if disagreement:
                invoice.status = "failed"
                invoice.reason = f"{label}: {disagreement}"
                invoice.payload = None
            if customer_ref:
                invoice.requires.append(customer_ref)
                invoice.refs["customerNo"] = customer_ref
        documents.append(invoice)
        documents.extend(_receipts(order, settings, mapping, invoice, when, base, customer_ref, customer_no))
    documents.extend(
        _returns(
            order, settings, mapping, items, invoice_key, invoice_number, base, customer_ref, customer_no
        )
    )
    return documents


def _customer(
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
    doc = CUSTOMER.document(
        customer_id,
        source_key=str(order["order_id"]),
        source_date=when,
        number=id_number if numbered else None,
        payload=payload,
        source_number=id_number or name,
        outlet_id=base["outlet_id"],
        source={"customer_id": customer_id, "external_customer_id": id_number or None, "name": name},
        lookup=None if numbered else {"field": "notes", "value": payload["notes"]},
    )
    return doc, CUSTOMER.key(customer_id), id_number if numbered else ""


def _receipts(
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
        number = SALES_RECEIPT.number(reference, index)
        doc = SALES_RECEIPT.document(
            f"{order['order_id']}:{account or 'unmapped'}",
            source_date=last_paid,
            number=number,
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
                "detailInvoice": [{"invoiceNo": invoice.target_number, "paymentAmount": by_account[account]}],
            }
            if customer_ref:
                doc.requires.append(customer_ref)
                doc.refs["customerNo"] = customer_ref
        documents.append(doc)
    return documents


def _returns(
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
        number = SALES_RETURN.number(reference, index)
        reader = Reader(f"order #{reference}")
        refund_key, when, problem = refund_identity(order, refund, index, reader)
        doc = refund_return(
            order["order_id"], refund_key, when, refund, number, requires=[invoice_key], **base
        )
        if problem is not None:
            doc.status, doc.reason = "failed", problem
            documents.append(doc)
            continue
        try:
            returned = refund_lines(refund, items, reader, settings)
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
    return f"{SETTINGS_PATH}.{order.get('outlet_id')}"


def _outlet_problem(order: dict[str, Any], mapping: OutletMapping | None) -> str | None:
    if mapping is not None:
        return None
    name = order.get("outlet_name") or order.get("outlet_code") or "the outlet"
    return (
        f"outlet {name} ({order.get('outlet_id')}) has no Accurate mapping; add branch and warehouse under"
        f" {_outlet_path(order)} in the settings Variable, then refresh"
    )


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
    order_discount = decimal_of(order.get("total_discount_amount")) - line_discounts
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
        "taxable": decimal_of(order.get("total_tax_amount")) > 0,
        "detailItem": detail,
    }
    # Cash rounding: a total rounded down (negative rounding_amount) is a discount on the invoice,
    # so the receipt of what the customer paid settles it exactly. A total rounded up has no field
    # in Accurate's sales invoice to carry it; it is noted in the description (see the README).
    rounding = decimal_of(order.get("rounding_amount"))
    if rounding < 0:
        order_discount = max(order_discount, ZERO) - rounding
    if order_discount > 0:
        payload["cashDiscount"] = order_discount
    if rounding:
        payload["description"] += f"; pembulatan {rounding}"
    return payload


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
    name = next((n for n in TOTAL_FIELDS if isinstance(order.get(n), Decimal)), None)
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
