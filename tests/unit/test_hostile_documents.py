"""Hostile values in iSeller documents: one bad field fails its own document, with a reason naming the
document, the line and the field; the rest of the batch maps as usual. Sanity limits come from the
settings (``limits``)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from include.iseller_accurate import jsonutil
from include.iseller_accurate.pipeline import MapContext
from include.iseller_accurate.settings import SettingsError, parse_settings
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.streams.stock_opname import StockOpnameStream
from include.iseller_accurate.streams.transfers import TransfersStream
from tests.unit.test_sales_mapping import ORDER
from tests.unit.test_sales_mapping import SETTINGS as SALES_SETTINGS
from tests.unit.test_stock_opname_mapping import SETTINGS as TAKE_SETTINGS
from tests.unit.test_stock_opname_mapping import TAKE
from tests.unit.test_transfer_mapping import SETTINGS as TRANSFER_SETTINGS
from tests.unit.test_transfer_mapping import TRANSFER


def _order(n: int, **changes) -> dict:
    order = copy.deepcopy(ORDER)
    order["order_id"] = f"order-{n}"
    order["order_reference"] = f"#JKT01-{1000 + n}"
    order.update(changes)
    return order


def _with_line(n: int, position: int, **changes) -> dict:
    order = _order(n)
    order["order_details"][position - 1].update(changes)
    return order


def _sales(*orders, settings=SALES_SETTINGS):
    docs = SalesStream().map([copy.deepcopy(o) for o in orders], MapContext(settings))
    return {doc.key: doc for doc in docs}


def _invoice(docs, n):
    return docs[("sales_invoice", f"order-{n}")]


BAD_LINE_VALUES = [
    ("quantity", "abc", "'abc' is not a number"),
    ("quantity", "NaN", "not a finite number"),
    ("quantity", "Infinity", "not a finite number"),
    ("quantity", Decimal("NaN"), "not a finite number"),
    ("quantity", float("inf"), "not a finite number"),
    ("quantity", [1, 2], "a list where a number is expected"),
    ("quantity", {"value": 1}, "an object where a number is expected"),
    ("quantity", True, "true/false where a number is expected"),
    ("quantity", Decimal("-2"), "is negative"),
    ("quantity", Decimal("1e12"), "above the limit"),
    ("quantity", Decimal("0.0000001"), "below the smallest quantity"),
    ("base_price", "12.000,50", "is not a number"),
    ("base_price", Decimal("-100"), "is negative"),
    ("discount_amount", "1e999999999", "above"),
    ("tax_percentage", Decimal("250"), "between 0 and 100"),
    ("sku", ["BRG-0001"], "a list where text is expected"),
    ("sku", "BRG\x00-0001", "control characters"),
]


LINE_IDS = [
    "quantity-abc",
    "quantity-NaN-text",
    "quantity-Infinity-text",
    "quantity-NaN-decimal",
    "quantity-inf-float",
    "quantity-list",
    "quantity-object",
    "quantity-bool",
    "quantity-negative",
    "quantity-1e12",
    "quantity-1e-7",
    "base_price-comma",
    "base_price-negative",
    "discount-1e999999999",
    "tax-250",
    "sku-list",
    "sku-NUL",
]


@pytest.mark.parametrize(("field", "value", "problem"), BAD_LINE_VALUES, ids=LINE_IDS)
def test_a_bad_line_value_fails_only_its_order_with_order_line_and_field(field, value, problem):
    docs = _sales(_order(1), _with_line(2, 1, **{field: value}), _order(3))
    bad = _invoice(docs, 2)
    assert bad.status == "failed" and bad.payload is None
    assert bad.reason.startswith(f"order #JKT01-1002: line 1 field {field}: ")
    assert problem in bad.reason and "refresh" in bad.reason
    for good in (1, 3):
        assert _invoice(docs, good).status == "pending" and _invoice(docs, good).payload


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("closed_date", "31/12/2026", "not an ISO-8601 time"),
        ("order_date", "2026-13-45T10:00:00", "not an ISO-8601 time"),
        ("closed_date", "9999-12-31T23:59:59", "out of range"),
        ("closed_date", "0001-01-01T00:00:00", "out of range"),
        ("closed_date", 1764000000, "a number where a time is expected"),
        ("total_discount_amount", "abc", "is not a number"),
        ("rounding_amount", "NaN", "not a finite number"),
        ("order_reference", "#JKT01\n1002", "control characters"),
        ("order_reference", {"x": 1}, "an object where text is expected"),
        ("external_customer_id", "CUST\x00-1", "control characters"),
    ],
    ids=[
        "closed_date-day-first",
        "order_date-month-13",
        "closed_date-year-9999",
        "closed_date-year-1",
        "closed_date-epoch-number",
        "total_discount-abc",
        "rounding-NaN",
        "reference-newline",
        "reference-object",
        "customer_number-NUL",
    ],
)
def test_a_bad_order_field_fails_only_that_order(field, value, problem):
    docs = _sales(_order(1), _order(2, **{field: value}), _order(3))
    bad = _invoice(docs, 2)
    assert bad.status == "failed" and bad.payload is None
    assert f"field {field}: " in bad.reason and problem in bad.reason
    assert bad.reason.startswith("order #JKT01-1002") or bad.reason.startswith("order order-2")
    assert "\x00" not in bad.reason and "\n" not in (bad.target_number or "")
    assert _invoice(docs, 1).status == _invoice(docs, 3).status == "pending"


def test_nul_in_a_product_name_is_cleaned_and_recorded_not_fatal():
    docs = _sales(_order(1), _with_line(2, 1, product_name="Gula\x00Aren\x07 Manis"))
    invoice = _invoice(docs, 2)
    assert invoice.status == "pending"
    assert invoice.payload["detailItem"][0]["detailNotes"] == "GulaAren  Manis"
    assert invoice.cleaned and "line 1 field product_name" in invoice.cleaned[0]
    assert "order #JKT01-1002" in invoice.cleaned[0]
    assert "\x00" not in str(invoice.source)
    assert not _invoice(docs, 1).cleaned


def test_a_name_that_looks_like_the_decimal_marker_stays_text():
    """The ledger's JSON writes Decimals through a NUL-prefixed marker: a product name holding that
    marker must not turn into a number."""
    docs = _sales(_with_line(1, 1, product_name="\x00dec:1e9"))
    invoice = _invoice(docs, 1)
    assert jsonutil.loads(jsonutil.dumps(invoice.payload))["detailItem"][0]["detailNotes"] == "dec:1e9"


def test_money_with_many_decimal_places_is_left_to_accurates_rounding_but_a_quantity_is_not():
    docs = _sales(_with_line(1, 1, base_price="65000.1234567"), _with_line(2, 1, quantity="1.0000001"))
    assert _invoice(docs, 1).status == "pending"
    assert "more than 6 decimal places" in _invoice(docs, 2).reason


def test_a_bad_payment_fails_the_receipt_not_the_invoice():
    order = _order(2)
    order["transactions"][0]["amount"] = "abc"
    docs = _sales(order)
    assert _invoice(docs, 2).status == "pending"
    receipts = [d for d in docs.values() if d.data_type == "sales_receipt"]
    bad = [d for d in receipts if d.status == "failed"]
    assert (
        len(bad) == 1 and "order #JKT01-1002: payment 1 field amount: 'abc' is not a number" in bad[0].reason
    )


def test_a_bad_refund_fails_the_return_not_the_invoice():
    order = _order(2)
    order["_refunds"] = [
        {
            "refund_id": "r1",
            "refund_date": "31/12/2026",
            "refund_details": [{"sku": "BRG-0001", "returned_quantity": Decimal("1")}],
        },
        {
            "refund_id": "r2",
            "refund_date": "2026-11-17T03:00:00",
            "refund_details": [{"sku": "BRG-0001", "returned_quantity": "NaN"}],
        },
    ]
    docs = _sales(order)
    assert _invoice(docs, 2).status == "pending"
    returns = {d.source_id: d for d in docs.values() if d.data_type == "sales_return"}
    assert returns["order-2:r1"].status == "failed"
    assert "refund r1 field refund_date: '31/12/2026' is not an ISO-8601 time" in returns["order-2:r1"].reason
    assert returns["order-2:r2"].status == "failed"
    assert "refund r2 line 1 field returned_quantity" in returns["order-2:r2"].reason


def test_an_invoice_above_the_document_total_limit_fails_with_the_setting_to_change():
    settings = SALES_SETTINGS.model_copy(
        update={"limits": SALES_SETTINGS.limits.model_copy(update={"max_document_total": Decimal("100000")})}
    )
    docs = _sales(_order(1), settings=settings)  # total 130,000 - 6,500 + 1,666.665
    bad = _invoice(docs, 1)
    assert bad.status == "failed" and "total" in bad.reason and "limits.max_document_total" in bad.reason


def test_a_line_above_the_line_amount_limit_fails():
    docs = _sales(_with_line(1, 1, base_price=Decimal("2000000000")))
    bad = _invoice(docs, 1)
    assert bad.status == "failed" and "line 1" in bad.reason and "limits.max_line_amount" in bad.reason


def test_unmapped_outlets_receipt_says_the_outlet_is_not_mapped():
    docs = _sales(_order(1, outlet_id="unknown-outlet", outlet_name="Toko Baru"))
    receipts = [d for d in docs.values() if d.data_type == "sales_receipt"]
    assert receipts and all(d.status == "failed" for d in receipts)
    for receipt in receipts:
        assert "outlet Toko Baru (unknown-outlet) has no Accurate mapping" in receipt.reason
        assert "iseller_accurate_settings.outlets.unknown-outlet" in receipt.reason
        assert "payment type" not in receipt.reason


def test_limits_have_defaults_and_are_validated():
    limits = parse_settings({}).limits
    assert limits.max_line_quantity == Decimal("1000000") and limits.min_line_quantity == Decimal("0.001")
    assert limits.max_line_amount == Decimal("1000000000")
    assert limits.max_document_total == Decimal("10000000000")
    custom = parse_settings({"limits": {"max_line_quantity": 5000, "min_line_quantity": "0.01"}}).limits
    assert custom.max_line_quantity == Decimal(5000) and custom.min_line_quantity == Decimal("0.01")
    for bad in (
        {"max_line_quantity": 0},
        {"min_line_quantity": "0.0000001"},
        {"max_document_total": "1e15"},
        {"min_line_quantity": 10, "max_line_quantity": 5},
        {"max_line_amount": "NaN"},
    ):
        with pytest.raises(SettingsError, match="limits"):
            parse_settings({"limits": bad})


# -- transfers -------------------------------------------------------------------------------------


def _transfer(n: int, **changes) -> dict:
    transfer = copy.deepcopy(TRANSFER)
    transfer["transfer_id"] = f"transfer-{n}"
    transfer["transfer_number"] = f"TRF-WH01-{n:04d}"
    transfer.update(changes)
    return transfer


def _transfers(*transfers):
    docs = TransfersStream().map([copy.deepcopy(t) for t in transfers], MapContext(TRANSFER_SETTINGS))
    return {doc.key: doc for doc in docs}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("quantity", "abc", "'abc' is not a number"),
        ("quantity", "NaN", "not a finite number"),
        ("quantity", Decimal("1e12"), "above the limit"),
        ("quantity", Decimal("0.0000001"), "below the smallest quantity"),
        ("received_quantity", [5], "a list where a number is expected"),
        ("sku", "BRG\x00-0001", "control characters"),
    ],
    ids=[
        "quantity-abc",
        "quantity-NaN",
        "quantity-1e12",
        "quantity-1e-7",
        "received_quantity-list",
        "sku-NUL",
    ],
)
def test_a_bad_transfer_line_fails_only_that_transfer(field, value, problem):
    bad = _transfer(2)
    bad["products"][0][field] = value
    docs = _transfers(_transfer(1), bad)
    failed = [d for d in docs.values() if d.source_id == "transfer-2" and d.status == "failed"]
    assert failed and all(
        d.reason.startswith("transfer TRF-WH01-0002") and f"line 1 field {field}: " in d.reason
        for d in failed
    )
    assert problem in failed[0].reason and "refresh" in failed[0].reason
    assert all(d.status == "pending" for d in docs.values() if d.source_id == "transfer-1")


@pytest.mark.parametrize(
    ("field", "value"),
    [("sent_date", "25/11/2026"), ("received_date", "9999-12-31T23:59:59")],
    ids=["sent_date-day-first", "received_date-year-9999"],
)
def test_a_bad_transfer_date_fails_that_transfer(field, value):
    docs = _transfers(_transfer(1), _transfer(2, **{field: value}))
    failed = [d for d in docs.values() if d.source_id == "transfer-2" and d.status == "failed"]
    assert failed and f"field {field}" in failed[0].reason
    assert all(d.status == "pending" for d in docs.values() if d.source_id == "transfer-1")


def test_nul_in_a_transfer_product_name_is_cleaned():
    transfer = _transfer(1)
    transfer["products"][0]["product_name"] = "Kopi\x00Arabika"
    docs = _transfers(transfer)
    out = docs[("transfer_out", "transfer-1")]
    assert out.status == "pending" and out.payload["detailItem"][0]["detailNotes"] == "KopiArabika"
    assert out.cleaned and "line 1 field product_name" in out.cleaned[0]


# -- stock takes -----------------------------------------------------------------------------------


def _take(n: int, **changes) -> dict:
    take = copy.deepcopy(TAKE)
    take["stock_take_id"] = f"take-{n}"
    take["stock_take_number"] = f"ST-JKT01-{n:04d}"
    take.update(changes)
    return take


def _takes(*takes):
    docs = StockOpnameStream().map([copy.deepcopy(t) for t in takes], MapContext(TAKE_SETTINGS))
    return {doc.source_id: doc for doc in docs}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("counted_quantity", "abc", "'abc' is not a number"),
        ("counted_quantity", "NaN", "not a finite number"),
        ("counted_quantity", Decimal("1e12"), "above the limit"),
        ("system_quantity", {"q": 1}, "an object where a number is expected"),
        ("sku", "BRG\x01", "control characters"),
    ],
    ids=["counted-abc", "counted-NaN", "counted-1e12", "system-object", "sku-control"],
)
def test_a_bad_stock_take_line_fails_only_that_stock_take(field, value, problem):
    bad = _take(2)
    bad["lines"][0][field] = value
    docs = _takes(_take(1), bad)
    assert docs["take-2"].status == "failed"
    assert docs["take-2"].reason.startswith(f"stock take ST-JKT01-0002: line 1 field {field}: ")
    assert problem in docs["take-2"].reason
    assert docs["take-1"].status == "pending"


def test_a_bad_stock_take_date_fails_that_stock_take():
    docs = _takes(_take(1), _take(2, stock_take_date="25/11/2026 21:30"))
    assert docs["take-2"].status == "failed" and "field stock_take_date" in docs["take-2"].reason
    assert docs["take-1"].status == "pending"


def test_an_unreadable_unit_cost_fails_the_stock_take_naming_the_product():
    take = _take(1)
    take["_unit_costs"] = {"BRG-0001": "NaN"}
    doc = _takes(take)["take-1"]
    assert doc.status == "failed" and "line 1 field unit cost" in doc.reason


# -- the pipeline's net under the streams ----------------------------------------------------------


class _Fragile(SalesStream):
    """A stream whose mapping raises on one record and silently drops another (a bug)."""

    def map(self, records, ctx):
        if any(r.get("order_id") == "order-2" for r in records):
            raise RuntimeError("boom")
        return [d for d in super().map(records, ctx) if d.source_key != "order-3"]


def test_a_mapping_bug_costs_one_record_and_a_dropped_record_still_gets_a_row():
    from include.iseller_accurate.pipeline import map_records

    draft = _order(4, status="draft")
    docs = map_records(_Fragile(), [_order(1), _order(2), _order(3), draft], MapContext(SALES_SETTINGS))
    invoices = {d.source_key: d for d in docs if d.data_type == "sales_invoice"}
    assert invoices["order-1"].status == "pending"
    assert invoices["order-2"].status == "failed" and "RuntimeError: boom" in invoices["order-2"].reason
    assert invoices["order-3"].status == "failed" and "gave no document" in invoices["order-3"].reason
    assert "order-4" not in invoices  # a draft is not a sale yet, on purpose
