"""Sales mapping over fixtures: numbering, Decimal money, tax modes, customers, failures with reasons."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from include.iseller_accurate.pipeline import MapContext
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.common import accurate_date, parse_time
from include.iseller_accurate.streams.sales import SalesStream

OUTLET = "0f1c2d3e-0000-4000-8000-000000000001"
SETTINGS = parse_settings(
    {
        "use_customer_id_mapping": True,
        "outlets": {
            OUTLET: {
                "branch": "Cabang Jakarta",
                "warehouse": "Gudang Kemang",
                "payment_accounts": {"cash": "110101", "external_debit": "110301"},
            }
        },
    }
)

ORDER = {
    "order_id": "aaaaaaaa-1111-4000-8000-000000000001",
    "order_reference": "#JKT01-1001",
    "status": "completed",
    "payment_status": "paid",
    "order_date": "2026-11-16T16:55:00",  # 23:55 in Jakarta
    "closed_date": "2026-11-16T17:05:00",  # 00:05 next day in Jakarta
    "outlet_id": OUTLET,
    "outlet_name": "Toko Kemang",
    "register_name": "Kasir 1",
    "customer_id": "cccccccc-2222-4000-8000-000000000002",
    "customer_first_name": "Budi",
    "customer_last_name": "Santoso",
    "external_customer_id": "CUST-00001",
    "tax_inclusive": True,
    "total_discount_amount": Decimal("6500.00"),
    "total_tax_amount": Decimal("12369.37"),
    "rounding_amount": Decimal("0.00"),
    "total_amount": Decimal("125166.67"),  # 2 x 65000 - 6500 + 0.5 x 3333.33, tax included
    "order_details": [
        {
            "order_detail_id": "l1",
            "product_name": "Kopi Arabika",
            "sku": "BRG-0001",
            "quantity": Decimal("2"),
            "base_price": Decimal("65000.00"),
            "discount_amount": Decimal("6500.00"),
            "tax_percentage": Decimal("11"),
        },
        {
            "order_detail_id": "l2",
            "product_name": "Air Mineral",
            "sku": "BRG-0018",
            "quantity": Decimal("0.5"),
            "base_price": Decimal("3333.33"),
            "discount_amount": Decimal("0.00"),
            "tax_percentage": Decimal("11"),
        },
    ],
    "transactions": [
        {
            "transaction_id": "t1",
            "type": "sale",
            "status": "success",
            "gateway": "cash",
            "amount": Decimal("100000.00"),
            "transaction_date": "2026-11-16T17:05:00",
        },
        {
            "transaction_id": "t2",
            "type": "sale",
            "status": "success",
            "gateway": "external_debit",
            "amount": Decimal("24000.01"),
            "transaction_date": "2026-11-16T17:05:00",
        },
        {
            "transaction_id": "t3",
            "type": "sale",
            "status": "failure",
            "gateway": "external_debit",
            "amount": Decimal("24000.01"),
            "transaction_date": "2026-11-16T17:04:00",
        },
    ],
}


def _map(*orders, settings=SETTINGS):
    return {
        doc.key: doc for doc in SalesStream().map([copy.deepcopy(o) for o in orders], MapContext(settings))
    }


def test_invoice_receipts_and_customer_with_exact_money():
    docs = _map(ORDER)
    invoice = docs[("sales_invoice", ORDER["order_id"])]
    assert invoice.status == "pending" and invoice.target_number == "SI/JKT01-1001"
    payload = invoice.payload
    assert payload["transDate"] == "17/11/2026"  # the shop's local date, not UTC's
    assert payload["branchName"] == "Cabang Jakarta" and payload["inclusiveTax"] is True
    line = payload["detailItem"][0]
    assert line == {
        "itemNo": "BRG-0001",
        "quantity": Decimal("2"),
        "unitPrice": Decimal("65000.00"),
        "warehouseName": "Gudang Kemang",
        "detailNotes": "Kopi Arabika",
        "useTax1": True,
        "itemCashDiscount": Decimal("6500.00"),
    }
    assert payload["detailItem"][1]["unitPrice"] == Decimal("3333.33")
    assert all(isinstance(v, Decimal) for v in (line["quantity"], line["unitPrice"]))
    assert "cashDiscount" not in payload  # all discount is on lines
    customer = docs[("customer", ORDER["customer_id"])]
    assert customer.target_number == "CUST-00001" and customer.payload["customerNo"] == "CUST-00001"
    assert invoice.requires == [customer.key] and invoice.refs == {"customerNo": customer.key}
    receipts = sorted(
        (d for d in docs.values() if d.data_type == "sales_receipt"), key=lambda d: d.target_number
    )
    assert [r.target_number for r in receipts] == ["SR/JKT01-1001", "SR/JKT01-1001-2"]
    assert receipts[0].payload["bankNo"] == "110101" and receipts[0].payload["chequeAmount"] == Decimal(
        "100000.00"
    )
    assert receipts[1].payload["detailInvoice"] == [
        {"invoiceNo": "SI/JKT01-1001", "paymentAmount": Decimal("24000.01")}
    ]
    assert all(invoice.key in r.requires for r in receipts)


def test_customer_without_id_number_or_mapping_off_is_numbered_by_accurate():
    order = {**ORDER, "external_customer_id": None}
    customer = _map(order)[("customer", ORDER["customer_id"])]
    assert customer.target_number is None and "customerNo" not in customer.payload
    assert customer.lookup == {"field": "notes", "value": f"iSeller customer {ORDER['customer_id']}"}
    off = parse_settings({**SETTINGS.model_dump(), "use_customer_id_mapping": False})
    assert _map(ORDER, settings=off)[("customer", ORDER["customer_id"])].target_number is None


def test_walk_in_sale_uses_the_outlets_general_customer():
    order = {**ORDER, "customer_id": None}
    docs = _map(order)
    invoice = docs[("sales_invoice", ORDER["order_id"])]
    assert invoice.payload["customerNo"] == "UMUM" and invoice.requires == []
    assert not [d for d in docs.values() if d.data_type == "customer"]


def test_exclusive_tax_and_order_level_discount():
    order = {
        **ORDER,
        "tax_inclusive": False,
        "total_discount_amount": Decimal("7500.50"),
        "total_amount": Decimal("137824.44"),  # (125166.665 - 1000.50) x 1.11
    }
    payload = _map(order)[("sales_invoice", ORDER["order_id"])].payload
    assert payload["inclusiveTax"] is False and payload["taxable"] is True
    assert payload["cashDiscount"] == Decimal("1000.50")


def test_line_without_sku_fails_alone_with_an_actionable_reason():
    broken = copy.deepcopy(ORDER)
    broken["order_details"][1]["sku"] = ""
    good = {
        **copy.deepcopy(ORDER),
        "order_id": "bbbbbbbb-0000-4000-8000-000000000009",
        "order_reference": "#JKT01-1002",
    }
    docs = _map(broken, good)
    bad = docs[("sales_invoice", broken["order_id"])]
    assert bad.status == "failed" and bad.payload is None
    assert (
        "#JKT01-1001" in bad.reason
        and "line 2 (Air Mineral) has no SKU" in bad.reason
        and "refresh" in bad.reason
    )
    assert docs[("sales_invoice", good["order_id"])].status == "pending"


def test_unmapped_outlet_and_unmapped_payment_type_name_the_setting():
    order = {**ORDER, "outlet_id": "unknown-outlet"}
    invoice = _map(order)[("sales_invoice", ORDER["order_id"])]
    assert invoice.status == "failed" and "iseller_accurate_settings.outlets.unknown-outlet" in invoice.reason
    gift = copy.deepcopy(ORDER)
    gift["transactions"][0]["gateway"] = "gift_card"
    receipts = [d for d in _map(gift).values() if d.data_type == "sales_receipt" and d.status == "failed"]
    assert (
        len(receipts) == 1 and "gift_card" in receipts[0].reason and "payment_accounts" in receipts[0].reason
    )


def test_void_is_skipped_and_refund_becomes_a_sales_return():
    void = {**ORDER, "status": "void", "cancel_date": "2026-11-16T17:10:00"}
    docs = _map(void)
    assert [d.status for d in docs.values()] == ["skipped"]
    assert "voided" in docs[("sales_invoice", ORDER["order_id"])].reason
    refunded = copy.deepcopy(ORDER)
    refunded["_refunds"] = [
        {
            "refund_id": "r1",
            "refund_date": "2026-11-17T03:00:00",
            "refund_amount": Decimal("58500"),
            "refund_details": [{"sku": "BRG-0001", "quantity": Decimal("1"), "amount": Decimal("58500")}],
        }
    ]
    ret = _map(refunded)[("sales_return", f"{ORDER['order_id']}:r1")]
    assert ret.target_number == "RT/JKT01-1001" and ret.payload["invoiceNumber"] == "SI/JKT01-1001"
    assert ret.payload["detailItem"] == [
        {
            "itemNo": "BRG-0001",
            "quantity": Decimal("1"),
            "unitPrice": Decimal("65000.00"),
            "warehouseName": "Gudang Kemang",
        }
    ]
    assert ("sales_invoice", ORDER["order_id"]) in ret.requires


def test_same_input_same_numbers():
    assert {k: d.target_number for k, d in _map(ORDER).items()} == {
        k: d.target_number for k, d in _map(ORDER).items()
    }


@pytest.mark.parametrize(
    "value", ["2026-11-16T17:05:00", "2026-11-16T17:05:00Z", "2026-11-17T00:05:00+07:00"]
)
def test_offset_less_iseller_times_are_utc(value):
    moment = parse_time(value)
    assert moment.utcoffset().total_seconds() == 0 and moment.hour == 17
    assert accurate_date(moment, SETTINGS) == "17/11/2026"


class _FakeIseller:
    """Answers GetRegisterShifts / GetOrders like iSeller: whole seconds, created_before exclusive."""

    def __init__(self, shift, orders):
        self.shift, self.orders, self.asked = shift, orders, []

    def get_register_shifts(self, **filters):
        return [self.shift]

    def get_orders_pages(self, **filters):
        self.asked.append(filters)
        after, before = filters["created_after"], filters["created_before"]
        yield {"orders": [o for o in self.orders if after <= parse_time(o["order_date"]) < before]}


def test_shift_reads_orders_up_to_and_including_its_close_second():
    from datetime import datetime as _dt

    from include.iseller_accurate.pipeline import ExtractContext

    shift = {
        "register_shift_id": "s1",
        "open_date": "2026-11-26T01:48:08",
        "closed_date": "2026-11-26T01:48:08",
    }
    inside = {**ORDER, "order_id": "o-in", "order_date": "2026-11-26T01:48:08"}
    after = {**ORDER, "order_id": "o-next", "order_date": "2026-11-26T01:48:09"}  # the next shift's
    iseller = _FakeIseller(shift, [inside, after])
    now = _dt(2026, 11, 26, tzinfo=parse_time(inside["order_date"]).tzinfo)
    params = {"register_shift_id": "s1", "register_id": "r1", "outlet_id": OUTLET}
    records = SalesStream().extract(ExtractContext(SETTINGS, params, now, now, iseller=iseller))
    assert [r["order_id"] for r in records] == ["o-in"]


def test_cash_rounding_down_becomes_an_invoice_discount_and_up_is_noted():
    down = {**ORDER, "rounding_amount": Decimal("-49.00"), "total_amount": Decimal("125117.67")}
    payload = _map(down)[("sales_invoice", ORDER["order_id"])].payload
    assert payload["cashDiscount"] == Decimal("49.00") and "pembulatan -49.00" in payload["description"]
    both = {**down, "total_discount_amount": Decimal("7500.50"), "total_amount": Decimal("124117.17")}
    assert _map(both)[("sales_invoice", ORDER["order_id"])].payload["cashDiscount"] == Decimal("1049.50")
    up = {**ORDER, "rounding_amount": Decimal("51.00"), "total_amount": Decimal("125217.67")}
    payload = _map(up)[("sales_invoice", ORDER["order_id"])].payload
    assert "cashDiscount" not in payload and "pembulatan 51.00" in payload["description"]


def test_order_whose_lines_do_not_add_up_to_isellers_total_fails_alone_with_both_totals():
    short = {**copy.deepcopy(ORDER), "total_order_amount": Decimal("120166.67")}  # a promotion not in lines
    good = {
        **copy.deepcopy(ORDER),
        "order_id": "bbbbbbbb-0000-4000-8000-000000000009",
        "order_reference": "#JKT01-1002",
        "total_order_amount": Decimal("125167.50"),  # within a rupiah of the invoice (125166.66)
    }
    docs = _map(short, good)
    bad = docs[("sales_invoice", short["order_id"])]
    assert bad.status == "failed" and bad.payload is None
    assert "#JKT01-1001" in bad.reason and "total_order_amount is 120166.67" in bad.reason
    assert "invoice would total 125166.66" in bad.reason and "promotion" in bad.reason
    assert docs[("sales_invoice", good["order_id"])].status == "pending"


def test_total_check_names_a_tax_flag_that_does_not_match_the_total():
    # iSeller says the prices include tax, but its total has 11 % added on top.
    wrong = {
        **copy.deepcopy(ORDER),
        "total_amount": Decimal("138935.00"),
        "total_tax_amount": Decimal("13768.33"),
    }
    reason = _map(wrong)[("sales_invoice", ORDER["order_id"])].reason
    assert "total_amount is 138935.00" in reason and "the difference is the tax 13768.33" in reason


def test_order_without_a_total_is_not_checked():
    order = {k: v for k, v in copy.deepcopy(ORDER).items() if k != "total_amount"}
    assert _map(order)[("sales_invoice", ORDER["order_id"])].status == "pending"


def test_dates_written_with_a_space_as_the_public_doc_shows_map_like_iso_dates():
    spaced = copy.deepcopy(ORDER)
    for name in ("order_date", "closed_date"):
        spaced[name] = spaced[name].replace("T", " ")
    for payment in spaced["transactions"]:
        payment["transaction_date"] = payment["transaction_date"].replace("T", " ")
    assert {k: (d.status, d.payload) for k, d in _map(spaced).items()} == {
        k: (d.status, d.payload) for k, d in _map(ORDER).items()
    }


def test_an_unreadable_isellers_total_fails_that_order_alone_naming_the_field():
    bad = {**copy.deepcopy(ORDER), "total_order_amount": "NaN"}
    good = {
        **copy.deepcopy(ORDER),
        "order_id": "bbbbbbbb-0000-4000-8000-000000000009",
        "order_reference": "#JKT01-1002",
    }
    docs = _map(bad, good)
    failed = docs[("sales_invoice", bad["order_id"])]
    assert failed.status == "failed" and "total_order_amount" in failed.reason
    assert docs[("sales_invoice", good["order_id"])].status == "pending"
