"""Transfer mapping: out/in numbering and order, partial receipts, refusals with reasons."""

from __future__ import annotations

import copy
from decimal import Decimal

from include.iseller_accurate.pipeline import MapContext
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.transfers import TransfersStream

WAREHOUSE = "0f1c2d3e-0000-4000-8000-00000000000a"
DAGO = "0f1c2d3e-0000-4000-8000-00000000000b"
SETTINGS = parse_settings(
    {
        "outlets": {
            WAREHOUSE: {
                "name": "Gudang Pusat",
                "branch": "Kantor Pusat",
                "warehouse": "Gudang Pusat",
                "adjustment_account": "510501",
            },
            DAGO: {
                "name": "Toko Dago",
                "branch": "Cabang Bandung",
                "warehouse": "Gudang Dago",
                "adjustment_account": "510501",
            },
        },
    }
)

TRANSFER = {
    "transfer_id": "tttttttt-0000-4000-8000-000000000001",
    "transfer_number": "TRF-WH01-0004",
    "type": "outlet",
    "from_outlet_id": WAREHOUSE,
    "from_outlet_code": "WH01",
    "to_outlet_id": DAGO,
    "to_outlet_code": "BDG01",
    "status": "received",
    "sent_date": "2026-11-25T16:30:00",  # 23:30 in Jakarta
    "received_date": "2026-11-25T17:30:00",  # 00:30 the next day in Jakarta
    "products": [
        {
            "product_id": "p1",
            "product_name": "Kopi Arabika",
            "sku": "BRG-0001",
            "quantity": Decimal("5"),
            "received_quantity": Decimal("5"),
        },
        {
            "product_id": "p2",
            "product_name": "Teh Melati",
            "sku": "BRG-0003",
            "quantity": Decimal("2.5"),
            "received_quantity": Decimal("2.5"),
        },
    ],
}


def _map(*transfers, settings=SETTINGS):
    docs = TransfersStream().map([copy.deepcopy(t) for t in transfers], MapContext(settings))
    return {doc.data_type: doc for doc in docs}


def test_received_transfer_gives_transfer_out_then_transfer_in_naming_it():
    docs = _map(TRANSFER)
    out, tin = docs["transfer_out"], docs["transfer_in"]
    assert set(docs) == {"transfer_out", "transfer_in"}
    assert out.target_number == "TO/TRF-WH01-0004" and tin.target_number == "TI/TRF-WH01-0004"
    assert out.target_module == tin.target_module == "item-transfer"
    assert out.payload == {
        "number": "TO/TRF-WH01-0004",
        "itemTransferType": "TRANSFER_OUT",
        "transDate": "25/11/2026",
        "branchName": "Kantor Pusat",
        "warehouseName": "Gudang Pusat",
        "referenceWarehouseName": "Gudang Dago",
        "description": "Transfer iSeller TRF-WH01-0004: Gudang Pusat ke Toko Dago (dikirim)",
        "detailItem": [
            {"itemNo": "BRG-0001", "quantity": Decimal("5"), "detailNotes": "Kopi Arabika"},
            {"itemNo": "BRG-0003", "quantity": Decimal("2.5"), "detailNotes": "Teh Melati"},
        ],
    }
    assert tin.payload["itemTransferType"] == "TRANSFER_IN"
    assert tin.payload["fromItemTransferNo"] == "TO/TRF-WH01-0004"
    assert (
        tin.payload["warehouseName"] == "Gudang Dago"
        and tin.payload["referenceWarehouseName"] == "Gudang Pusat"
    )
    assert tin.payload["branchName"] == "Cabang Bandung"
    assert tin.payload["transDate"] == "26/11/2026"  # received after midnight, shop time
    assert tin.requires == [out.key] and tin.refs == {"fromItemTransferNo": out.key}
    assert out.source_date < tin.source_date
    assert out.outlet_id == WAREHOUSE and tin.outlet_id == DAGO
    assert isinstance(tin.payload["detailItem"][1]["quantity"], Decimal)


def test_transfer_in_transit_gives_only_the_transfer_out():
    sent = {
        **TRANSFER,
        "status": "sent",
        "received_date": None,
        "products": [{**line, "received_quantity": None} for line in TRANSFER["products"]],
    }
    assert set(_map(sent)) == {"transfer_out"}


def test_numbering_is_deterministic():
    first, second = _map(TRANSFER), _map(TRANSFER)
    assert first["transfer_out"].payload == second["transfer_out"].payload
    assert first["transfer_in"].payload == second["transfer_in"].payload


def test_partial_receipt_empties_transit_and_books_the_difference_out_of_the_destination():
    partial = copy.deepcopy(TRANSFER)
    partial["products"][0]["received_quantity"] = Decimal("3")
    partial["_unit_costs"] = {"BRG-0001": Decimal("39000.00")}
    docs = _map(partial)
    assert docs["transfer_in"].payload["detailItem"][0]["quantity"] == Decimal("5")  # all of transit
    diff = docs["transfer_difference"]
    assert diff.target_number == "TD/TRF-WH01-0004" and diff.target_module == "item-adjustment"
    assert diff.requires == [docs["transfer_in"].key]
    assert diff.outlet_id == DAGO and diff.source_date == docs["transfer_in"].source_date
    assert diff.payload["adjustmentAccountNo"] == "510501" and diff.payload["branchName"] == "Cabang Bandung"
    assert diff.payload["detailItem"] == [
        {
            "itemAdjustmentType": "ADJUSTMENT_OUT",
            "itemNo": "BRG-0001",
            "quantity": Decimal("2"),
            "warehouseName": "Gudang Dago",
            "detailNotes": "dikirim 5, diterima 3",
            "unitCost": Decimal("39000.00"),
        }
    ]


def test_partial_receipt_without_adjustment_account_fails_the_transfer_in_with_the_reason():
    settings = parse_settings(
        {
            "outlets": {
                WAREHOUSE: {"branch": "Kantor Pusat", "warehouse": "Gudang Pusat"},
                DAGO: {"branch": "Cabang Bandung", "warehouse": "Gudang Dago"},
            }
        }
    )
    partial = copy.deepcopy(TRANSFER)
    partial["products"][1]["received_quantity"] = Decimal("0")
    docs = _map(partial, settings=settings)
    assert docs["transfer_out"].status == "pending" and docs["transfer_out"].payload
    tin = docs["transfer_in"]
    assert tin.status == "failed" and tin.payload is None and "transfer_difference" not in docs
    assert "received short (BRG-0003: 0 of 2.5)" in tin.reason
    assert f"adjustment_account under iseller_accurate_settings.outlets.{DAGO}" in tin.reason


def test_receiving_more_than_was_sent_is_refused_with_the_reason():
    over = copy.deepcopy(TRANSFER)
    over["products"][0]["received_quantity"] = Decimal("6")
    tin = _map(over)["transfer_in"]
    assert tin.status == "failed"
    assert "line 1 (Kopi Arabika) received 6 but only 5 were sent" in tin.reason


def test_product_without_sku_fails_with_an_actionable_reason():
    no_sku = copy.deepcopy(TRANSFER)
    no_sku["products"][1]["sku"] = ""
    docs = _map(no_sku)
    assert docs["transfer_out"].status == "failed"
    assert docs["transfer_out"].reason == (
        "transfer TRF-WH01-0004 (Gudang Pusat to Toko Dago): line 2 (Teh Melati) has no SKU in iSeller;"
        " set the product's SKU in iSeller to its Accurate item number, then refresh"
    )


def test_unmapped_outlet_fails_both_sides_naming_the_settings_key():
    settings = parse_settings(
        {"outlets": {WAREHOUSE: {"branch": "Kantor Pusat", "warehouse": "Gudang Pusat"}}}
    )
    docs = _map(TRANSFER, settings=settings)
    for doc in docs.values():
        assert doc.status == "failed"
        assert f"outlet BDG01 ({DAGO}) has no Accurate mapping" in doc.reason
        assert f"iseller_accurate_settings.outlets.{DAGO}" in doc.reason


def test_outlets_sharing_a_warehouse_are_skipped():
    settings = parse_settings(
        {
            "outlets": {
                WAREHOUSE: {"branch": "Kantor Pusat", "warehouse": "Gudang Pusat"},
                DAGO: {"branch": "Kantor Pusat", "warehouse": "Gudang Pusat"},
            }
        }
    )
    docs = _map(TRANSFER, settings=settings)
    assert {doc.status for doc in docs.values()} == {"skipped"}
    assert "both outlets use Accurate warehouse Gudang Pusat" in docs["transfer_in"].reason


def test_supplier_transfers_are_not_sent_back_to_accurate():
    supplier = {**TRANSFER, "type": "in", "status": "completed", "from_outlet_id": None}
    assert _map(supplier) == {}
