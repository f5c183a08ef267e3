"""Stock opname mapping: counted minus system per item, in/out, unit cost, prerequisites, reasons."""

from __future__ import annotations

import copy
from decimal import Decimal

from include.iseller_accurate.pipeline import MapContext
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.stock_opname import (
    StockOpnameStream,
    adjustment_quantities,
    has_differences,
)

KEMANG = "0f1c2d3e-0000-4000-8000-000000000001"
SETTINGS = parse_settings(
    {
        "outlets": {
            KEMANG: {
                "name": "Toko Kemang",
                "branch": "Cabang Jakarta",
                "warehouse": "Gudang Kemang",
                "adjustment_account": "510501",
            }
        },
    }
)

TAKE = {
    "stock_take_id": "ssssssss-0000-4000-8000-000000000001",
    "stock_take_number": "ST-JKT01-0002",
    "outlet_id": KEMANG,
    "outlet_code": "JKT01",
    "stock_take_date": "2026-11-25T14:30:00",
    "status": "completed",
    "lines": [
        {
            "product_id": "p1",
            "product_name": "Kopi Arabika",
            "sku": "BRG-0001",
            "system_quantity": Decimal("40"),
            "counted_quantity": Decimal("37"),
        },
        {
            "product_id": "p2",
            "product_name": "Teh Melati",
            "sku": "BRG-0003",
            "system_quantity": Decimal("10"),
            "counted_quantity": Decimal("12.5"),
        },
        {
            "product_id": "p3",
            "product_name": "Gula Aren",
            "sku": "BRG-0004",
            "system_quantity": Decimal("8"),
            "counted_quantity": Decimal("8"),
        },
    ],
    "_unit_costs": {"BRG-0001": Decimal("39000.00")},
    "_after": [
        {
            "data_type": "sales_invoice",
            "source_id": "order-1",
            "label": "sales invoice SI/JKT01-1093 (order #JKT01-1093), which the sales sync has not read",
        },
        {"data_type": "transfer_in", "source_id": "transfer-1", "label": "transfer in TI/TRF-WH01-0004"},
    ],
}


def _map(take, settings=SETTINGS):
    docs = StockOpnameStream().map([copy.deepcopy(take)], MapContext(settings))
    assert len(docs) == 1
    return docs[0]


def test_stock_take_becomes_one_adjustment_with_counted_minus_system_per_item():
    doc = _map(TAKE)
    assert doc.data_type == "stock_opname" and doc.target_module == "item-adjustment"
    assert doc.target_number == "SO/ST-JKT01-0002" and doc.status == "pending"
    assert doc.payload == {
        "number": "SO/ST-JKT01-0002",
        "transDate": "25/11/2026",
        "branchName": "Cabang Jakarta",
        "adjustmentAccountNo": "510501",
        "description": "Stock opname iSeller ST-JKT01-0002 (Toko Kemang)",
        "detailItem": [
            {
                "itemAdjustmentType": "ADJUSTMENT_OUT",
                "itemNo": "BRG-0001",
                "quantity": Decimal("3"),
                "warehouseName": "Gudang Kemang",
                "detailNotes": "hitung 37, sistem 40",
                "unitCost": Decimal("39000.00"),
            },
            {
                "itemAdjustmentType": "ADJUSTMENT_IN",
                "itemNo": "BRG-0003",
                "quantity": Decimal("2.5"),
                "warehouseName": "Gudang Kemang",
                "detailNotes": "hitung 12.5, sistem 10",
            },
        ],
    }
    assert adjustment_quantities(TAKE) == {"BRG-0001": Decimal(-3), "BRG-0003": Decimal("2.5"), "BRG-0004": 0}


def test_earlier_movements_are_ordering_prerequisites_with_their_labels():
    doc = _map(TAKE)
    assert doc.after == [("sales_invoice", "order-1"), ("transfer_in", "transfer-1")]
    assert doc.requires == []
    assert doc.waiting_notes[("sales_invoice", "order-1")].startswith("sales invoice SI/JKT01-1093")
    assert "_after" not in doc.source and "_unit_costs" not in doc.source


def test_stock_take_without_differences_is_skipped():
    same = copy.deepcopy(TAKE)
    for line in same["lines"]:
        line["counted_quantity"] = line["system_quantity"]
    assert not has_differences(same)
    doc = _map(same)
    assert doc.status == "skipped" and doc.payload is None
    assert "every count equals iSeller's system quantity" in doc.reason


def test_missing_adjustment_account_fails_with_the_settings_key():
    settings = parse_settings(
        {"outlets": {KEMANG: {"branch": "Cabang Jakarta", "warehouse": "Gudang Kemang"}}}
    )
    doc = _map(TAKE, settings)
    assert doc.status == "failed"
    assert "has no adjustment_account" in doc.reason
    assert f"iseller_accurate_settings.outlets.{KEMANG}" in doc.reason


def test_unmapped_outlet_and_missing_sku_fail_with_reasons():
    doc = _map(TAKE, parse_settings({}))
    assert doc.status == "failed" and "outlet JKT01" in doc.reason and "has no Accurate mapping" in doc.reason
    no_sku = copy.deepcopy(TAKE)
    no_sku["lines"][1]["sku"] = ""
    doc = _map(no_sku)
    assert doc.status == "failed"
    assert doc.reason.startswith("stock take ST-JKT01-0002: line 2 (Teh Melati) has no SKU in iSeller")


def test_an_item_counted_twice_is_refused():
    twice = copy.deepcopy(TAKE)
    twice["lines"].append(dict(twice["lines"][0]))
    doc = _map(twice)
    assert doc.status == "failed" and "BRG-0001 (Kopi Arabika) is counted on lines 1 and 4" in doc.reason


def test_drafts_are_not_stock_opname_yet():
    draft = {**TAKE, "status": "draft"}
    assert StockOpnameStream().map([draft], MapContext(SETTINGS)) == []
