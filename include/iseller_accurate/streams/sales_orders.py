"""Sales, reading: iSeller orders and refunds grouped, checked field by field, and their lines.

What comes from iSeller may hold anything (see :mod:`checks`): :func:`read_order` returns a copy of
an order with every value the mapping uses checked, or raises :class:`FieldProblem` naming the line
and field; :func:`failed_order` then gives the order's documents, failed with that reason. Refunds
are checked where they are mapped (:func:`refund_identity`, :func:`refund_lines`), so that they fail
their own documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from include.iseller_accurate.checks import FieldProblem, Reader, kind_of
from include.iseller_accurate.kinds import SALES_INVOICE, SALES_RETURN
from include.iseller_accurate.ledger import Document
from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.streams.common import (
    decimal_of,
    first_time,
    line_list,
    no_sku_reason,
    read_line,
    safe_identifier,
    source_fields,
)

ZERO = Decimal(0)
#: iSeller's order total, in the order the mapping trusts them (the public doc's name first).
TOTAL_FIELDS = ("total_order_amount", "total_amount")


def reference_of(order: dict[str, Any]) -> str:
    """The order reference without ``#`` (falls back to the start of the order id)."""
    reference = str(order.get("order_reference") or "").strip().lstrip("#")
    return reference or str(order["order_id"])[:13]


def orders_with_refunds(pages: Iterable[dict[str, Any]], key: Callable[[Any], str]) -> list[dict[str, Any]]:
    """The orders of iSeller's order pages, each with its refunds attached (``_refunds``); a refund
    of an order not on the pages stands for that order (``_only_refund``). ``key`` is the order's
    source key (the sales stream's ``record_key``)."""
    orders: dict[str, dict[str, Any]] = {}
    refunds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    shared: dict[Any, Any] = {}
    for page in pages:
        for order in page.get("orders") or []:
            orders[key(order)] = share_values(order, shared)
        for refunded in page.get("refunded_orders") or []:
            refunds[key(refunded)].append(share_values(refunded, shared))
    records = []
    for order_id in list(orders) + [k for k in refunds if k not in orders]:
        found = orders.get(order_id) or refunds[order_id][0]
        if not isinstance(found, dict):
            records.append(found)  # mapping fails it alone, with its reason
            continue
        # The page's own order (a fresh parse) takes its refunds; a refund standing for its order is
        # copied (it is also one of the refunds).
        order = found if order_id in orders else dict(found)
        seen = {}
        for refund in refunds.get(order_id, []):
            seen[str(refund.get("refund_id") or refund.get("refund_date"))] = refund
        order["_refunds"] = list(seen.values())
        order["_only_refund"] = order_id not in orders
        records.append(order)
    return records


#: How many distinct values :func:`share_values` remembers before it starts afresh.
SHARED_VALUES = 50_000


def share_values(record: Any, shared: dict[Any, Any]) -> Any:
    """``record`` with each repeated text or decimal value replaced by one copy shared across records.

    A whole window of orders is held while its chunks are mapped; parsed from JSON, every order has
    its own copy of its status, outlet, product names, prices and quantities (about 6 KiB an order,
    half of it repeats). Equal texts are the same text and a decimal is shared only with one written
    the same way (``1.0`` is not ``1``), so nothing read changes. Walks without recursion (a record may
    be nested thousands deep); ``shared`` is emptied when it holds ``SHARED_VALUES`` values.
    """
    if len(shared) > SHARED_VALUES:
        shared.clear()
    stack = [record]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            pairs: Iterable[tuple[Any, Any]] = node.items()
        elif isinstance(node, list):
            pairs = enumerate(node)
        else:
            continue
        for slot, value in pairs:
            kind = type(value)
            if kind is str:
                same = shared.setdefault(value, value)
            elif kind is Decimal:
                same = shared.setdefault((str(value),), value)
            else:
                if kind is dict or kind is list:
                    stack.append(value)
                continue
            if same is not value:
                node[slot] = same
    return record


def refund_identity(
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


def refund_lines(
    refund: dict[str, Any], items: list[dict[str, Any]] | None, reader: Reader, settings: SyncSettings
) -> list[dict[str, Any]]:
    """Returned lines as Accurate return lines (sku, quantity, unit price from the sale).

    Raises :class:`FieldProblem` for a value that cannot be read or is outside the limits."""
    value = refund.get("refund_details") or refund.get("returned_items") or refund.get("order_details")
    raw = line_list(reader, value, "refund_details")
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


def order_label(order: dict[str, Any], key: str) -> str:
    """How a reason names an order: ``order #JKT01-1001``, or by its key when the reference is unusable."""
    reference = safe_identifier(order, "order_reference").lstrip("#")
    return f"order #{reference}" if reference else f"order {key}"


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


def read_order(raw: dict[str, Any], settings: SyncSettings, reader: Reader) -> dict[str, Any]:
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
    for name in TOTAL_FIELDS:
        if raw.get(name) not in (None, ""):
            order[name] = reader.number(raw.get(name), name)
    order["rounding_amount"] = reader.number(raw.get("rounding_amount"), "rounding_amount", negative=True)
    lines = []
    total = ZERO
    for position, line in enumerate(line_list(reader, raw.get("order_details"), "order_details"), start=1):
        clean = read_line(reader, line, position, "order_details", ("product_name", "order_detail_id"))
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


def failed_order(raw: dict[str, Any], order_id: str, reason: str) -> list[Document]:
    """The documents of an order that cannot be read: its invoice (unless the order is only a refund
    of an earlier one) and each of its refunds' returns, all failed with the reason."""
    reference = safe_identifier(raw, "order_reference").lstrip("#")
    when = first_time(raw, ("closed_date", "order_date", "modified_date"))
    base: dict[str, Any] = {
        "source_key": order_id,
        "source_number": f"#{reference}" if reference else order_id,
        "outlet_id": safe_identifier(raw, "outlet_id"),
        "payload": None,
        "status": "failed",
        "reason": reason,
    }
    documents = []
    if not raw.get("_only_refund"):
        source = source_fields(raw)
        documents.append(
            SALES_INVOICE.document(
                order_id,
                source_date=when,
                number=SALES_INVOICE.number(reference) if reference else None,
                source=source,
                **base,
            )
        )
    refunds = raw.get("_refunds")
    for index, refund in enumerate(refunds if isinstance(refunds, list) else [], start=1):
        key, refunded_at, _ = refund_identity({}, refund, index, Reader(""))
        requires = [] if raw.get("_only_refund") else [SALES_INVOICE.key(order_id)]
        documents.append(refund_return(order_id, key, refunded_at, refund, None, requires=requires, **base))
    return documents


def refund_return(
    order_id: str, refund_key: str, when: datetime, refund: Any, number: str | None, **fields: Any
) -> Document:
    """The sales return of one refund of an order; its source is the refund as iSeller sent it."""
    source = refund if isinstance(refund, dict) else {"refund": repr(refund)[:2000]}
    return SALES_RETURN.document(
        f"{order_id}:{refund_key}", number, source_date=when, source=source, **fields
    )


def lines_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
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
                    "quantity": decimal_of(line.get("quantity")),
                    "base_price": decimal_of(line.get("base_price")),
                    "discount_amount": decimal_of(line.get("discount_amount")),
                    "tax_percentage": decimal_of(line.get("tax_percentage")),
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


def lines_by_order(lines: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The lines of each order in their order, as plain records (one pass over the frame)."""
    lines = lines.assign(taxed=lines["tax_percentage"].map(lambda pct: pct > 0))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in lines.sort_values(["order_id", "position"], kind="stable").to_dict("records"):
        grouped.setdefault(str(record["order_id"]), []).append({str(k): v for k, v in record.items()})
    return grouped


def line_problems(lines: pd.DataFrame) -> dict[str, str]:
    """Per order, the first reason its lines cannot become Accurate lines."""
    problems: dict[str, str] = {}
    if lines.empty:
        return problems
    no_sku = lines[lines["sku"] == ""]
    for order_id, frame in no_sku.groupby("order_id", sort=False):
        first = frame.iloc[0]
        problems[str(order_id)] = no_sku_reason(first["position"], first["product_name"])
    bad_qty = lines[lines["quantity"].map(lambda q: q <= 0)]
    for order_id, frame in bad_qty.groupby("order_id", sort=False):
        first = frame.iloc[0]
        problems.setdefault(
            str(order_id),
            f"line {first['position']} ({first['product_name']}) has quantity {first['quantity']}",
        )
    return problems
