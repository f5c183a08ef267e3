"""Accurate sandbox contract: stock per item and warehouse, transfers in transit, negative stock."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.demo_shop import build_demo_shop

if TYPE_CHECKING:
    from tests.sandbox.accurate_fixtures import AccurateApi

pytest_plugins = ["tests.sandbox.accurate_fixtures"]

SHOP = build_demo_shop(42)
KEMANG, DAGO, CENTRAL = "Gudang Kemang", "Gudang Dago", "Gudang Pusat"


def _messages(body: dict[str, Any]) -> str:
    assert body["s"] is False, body
    return " | ".join(body["d"])


def _transfer(
    number: str, kind: str, source: str, target: str, lines: list[tuple[str, Any]], **extra: Any
) -> dict[str, Any]:
    record = {
        "number": number,
        "itemTransferType": kind,
        "branchName": "Kantor Pusat",
        "transDate": "20/11/2026",
        "warehouseName": source if kind == "TRANSFER_OUT" else target,
        "referenceWarehouseName": target if kind == "TRANSFER_OUT" else source,
        "detailItem": [{"itemNo": no, "quantity": qty} for no, qty in lines],
    }
    record.update(extra)
    return record


def test_opening_stock_comes_from_the_demo_shop(accurate: AccurateApi) -> None:
    for outlet in SHOP.outlets:
        for sku in ("BRG-0001", "BRG-0025", "BRG-0050"):
            assert accurate.stock(sku, outlet.warehouse_name) == SHOP.opening_stock[(sku, outlet.outlet_id)]


def test_get_stock_answer_shape_and_errors(accurate: AccurateApi) -> None:
    body = accurate.ok(accurate.data("item", "get-stock", params={"no": "BRG-0001", "warehouseName": KEMANG}))
    assert set(body["d"]) == {"itemNo", "warehouseName", "availableStock"}
    assert body["d"]["itemNo"] == "BRG-0001" and body["d"]["warehouseName"] == KEMANG
    total = accurate.ok(accurate.data("item", "get-stock", params={"no": "BRG-0001"}))["d"]["availableStock"]
    assert Decimal(total) == sum(SHOP.opening_stock[("BRG-0001", o.outlet_id)] for o in SHOP.outlets)
    unknown = accurate.ok(
        accurate.data("item", "get-stock", params={"no": "BRG-0049", "warehouseName": KEMANG})
    )
    assert 'no: Barang dengan kode "BRG-0049" tidak ditemukan' in _messages(unknown)
    unknown = accurate.ok(
        accurate.data("item", "get-stock", params={"no": "BRG-0001", "warehouseName": "Gudang X"})
    )
    assert 'warehouseName: Gudang "Gudang X"' in _messages(unknown)


def test_sales_and_returns_move_stock(accurate: AccurateApi) -> None:
    start = accurate.stock("BRG-0002", KEMANG)
    accurate.save("sales-invoice", accurate.invoice("S-1", lines=[("BRG-0002", 3), ("BRG-0002", 2)]))
    assert accurate.stock("BRG-0002", KEMANG) == start - 5
    accurate.save(
        "sales-return",
        {
            "number": "SR-1",
            "customerNo": "UMUM",
            "branchName": "Cabang Jakarta",
            "invoiceNumber": "S-1",
            "detailItem": [{"itemNo": "BRG-0002", "quantity": 2, "warehouseName": KEMANG}],
        },
    )
    assert accurate.stock("BRG-0002", KEMANG) == start - 3


def test_adjustments_move_stock_both_ways(accurate: AccurateApi) -> None:
    start = accurate.stock("BRG-0003", KEMANG)
    body = accurate.save(
        "item-adjustment",
        {
            "number": "IA-1",
            "branchName": "Cabang Jakarta",
            "adjustmentAccountNo": "510501",
            "transDate": "20/11/2026",
            "detailItem": [
                {
                    "itemNo": "BRG-0003",
                    "quantity": 4,
                    "itemAdjustmentType": "ADJUSTMENT_IN",
                    "warehouseName": KEMANG,
                },
                {
                    "itemNo": "BRG-0003",
                    "quantity": 1,
                    "itemAdjustmentType": "ADJUSTMENT_OUT",
                    "warehouseName": KEMANG,
                },
            ],
        },
    )
    assert body["s"] is True, body
    assert accurate.stock("BRG-0003", KEMANG) == start + 3
    accurate.delete("item-adjustment", number="IA-1")
    assert accurate.stock("BRG-0003", KEMANG) == start


def test_purchases_move_stock(accurate: AccurateApi) -> None:
    central = accurate.stock("BRG-0004", CENTRAL)
    received = accurate.save(
        "receive-item",
        {
            "number": "RI-1",
            "receiveNumber": "SJ-77",
            "vendorNo": "V.0001",
            "branchName": "Kantor Pusat",
            "detailItem": [{"itemNo": "BRG-0004", "quantity": 10}],
        },
    )
    assert received["s"] is True, received
    assert received["r"]["detailItem"][0]["warehouseName"] == CENTRAL
    assert accurate.stock("BRG-0004", CENTRAL) == central + 10
    invoice = accurate.save(
        "purchase-invoice",
        {
            "number": "PI-1",
            "vendorNo": "V.0001",
            "branchName": "Kantor Pusat",
            "detailItem": [
                {"itemNo": "BRG-0004", "quantity": 10, "receiveItemNumber": "RI-1"},
                {"itemNo": "BRG-0005", "quantity": 6, "unitPrice": "1000"},
            ],
        },
    )
    assert invoice["s"] is True, invoice
    assert accurate.stock("BRG-0004", CENTRAL) == central + 10  # the received line adds nothing again
    direct = accurate.stock("BRG-0005", CENTRAL)
    assert (
        accurate.save(
            "purchase-return",
            {
                "number": "PR-1",
                "vendorNo": "V.0001",
                "branchName": "Kantor Pusat",
                "invoiceNumber": "PI-1",
                "detailItem": [{"itemNo": "BRG-0005", "quantity": 2}],
            },
        )["s"]
        is True
    )
    assert accurate.stock("BRG-0005", CENTRAL) == direct - 2
    missing = accurate.save(
        "purchase-invoice",
        {
            "number": "PI-2",
            "vendorNo": "V.0001",
            "branchName": "Kantor Pusat",
            "detailItem": [{"itemNo": "BRG-0004", "quantity": 1, "receiveItemNumber": "RI-404"}],
        },
    )
    assert "detailItem[0].receiveItemNumber: Penerimaan Barang dengan No Form # RI-404" in _messages(missing)
    assert "RI-1" in _messages(accurate.delete("receive-item", number="RI-1"))  # invoiced: in use


def test_transfer_out_puts_goods_in_transit_and_transfer_in_receives_them(accurate: AccurateApi) -> None:
    central, kemang = accurate.stock("BRG-0006", CENTRAL), accurate.stock("BRG-0006", KEMANG)
    out = accurate.save(
        "item-transfer", _transfer("TO-1", "TRANSFER_OUT", CENTRAL, KEMANG, [("BRG-0006", 5)])
    )
    assert out["s"] is True, out
    assert accurate.stock("BRG-0006", CENTRAL) == central - 5
    assert accurate.stock("BRG-0006", KEMANG) == kemang
    transit = accurate.control("GET", "stock", params={"itemNo": "BRG-0006"})["in_transit"]
    assert transit == [{"transferOutNo": "TO-1", "itemNo": "BRG-0006", "quantity": 5}]
    first = accurate.save(
        "item-transfer",
        _transfer("TI-1", "TRANSFER_IN", CENTRAL, KEMANG, [("BRG-0006", 3)], fromItemTransferNo="TO-1"),
    )
    assert first["s"] is True, first
    assert accurate.stock("BRG-0006", KEMANG) == kemang + 3
    too_many = accurate.save(
        "item-transfer",
        _transfer("TI-2", "TRANSFER_IN", CENTRAL, KEMANG, [("BRG-0006", 3)], fromItemTransferNo="TO-1"),
    )
    assert "detailItem[0].quantity" in _messages(too_many) and "sisa 2" in _messages(too_many)
    rest = accurate.save(
        "item-transfer",
        _transfer("TI-2", "TRANSFER_IN", CENTRAL, KEMANG, [("BRG-0006", 2)], fromItemTransferNo="TO-1"),
    )
    assert rest["s"] is True, rest
    assert accurate.stock("BRG-0006", KEMANG) == kemang + 5
    assert accurate.control("GET", "stock", params={"itemNo": "BRG-0006"})["in_transit"] == []
    assert "TO-1" in _messages(accurate.delete("item-transfer", number="TO-1"))
    assert accurate.delete("item-transfer", number="TI-2")["s"] is True
    assert accurate.stock("BRG-0006", KEMANG) == kemang + 3


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"fromItemTransferNo": ""}, "fromItemTransferNo: Pemindahan Barang Keluar harus diisi"),
        (
            {"fromItemTransferNo": "TO-404"},
            "fromItemTransferNo: Pemindahan Barang Keluar # TO-404 tidak ditemukan",
        ),
        (
            {"fromItemTransferNo": "TI-OK"},
            "fromItemTransferNo: Pemindahan Barang Keluar # TI-OK tidak ditemukan",
        ),
        (
            {"fromItemTransferNo": "TO-OK", "warehouseName": DAGO},
            'warehouseName: Gudang tujuan "Gudang Dago"',
        ),
        ({"fromItemTransferNo": "TO-OK", "item": "BRG-0008"}, 'barang "BRG-0008"'),
    ],
)
def test_transfer_in_refusals(accurate: AccurateApi, extra: dict[str, Any], expected: str) -> None:
    assert accurate.save(
        "item-transfer", _transfer("TO-OK", "TRANSFER_OUT", CENTRAL, KEMANG, [("BRG-0007", 4)])
    )["s"]
    assert accurate.save(
        "item-transfer",
        _transfer("TI-OK", "TRANSFER_IN", CENTRAL, KEMANG, [("BRG-0007", 1)], fromItemTransferNo="TO-OK"),
    )["s"]
    item = extra.pop("item", "BRG-0007")
    record = _transfer("TI-X", "TRANSFER_IN", CENTRAL, KEMANG, [(item, 1)], **extra)
    assert expected in _messages(accurate.save("item-transfer", record))


def test_transfer_out_rules(accurate: AccurateApi) -> None:
    same = _transfer("TO-S", "TRANSFER_OUT", CENTRAL, CENTRAL, [("BRG-0001", 1)])
    assert "referenceWarehouseName" in _messages(accurate.save("item-transfer", same))
    no_type = _transfer("TO-T", "TRANSFER_OUT", CENTRAL, KEMANG, [("BRG-0001", 1)], itemTransferType="")
    assert "itemTransferType: harus diisi" in _messages(accurate.save("item-transfer", no_type))
    unknown = _transfer("TO-U", "TRANSFER_OUT", "Gudang Awan", KEMANG, [("BRG-0001", 1)])
    assert 'warehouseName: Gudang "Gudang Awan"' in _messages(accurate.save("item-transfer", unknown))


def test_negative_stock_is_allowed_by_default_and_refused_when_switched_on(accurate: AccurateApi) -> None:
    have = accurate.stock("BRG-0010", KEMANG)
    assert (
        accurate.save("sales-invoice", accurate.invoice("N-1", lines=[("BRG-0010", have + 2)]))["s"] is True
    )
    assert accurate.stock("BRG-0010", KEMANG) == -2
    accurate.config(refuse_negative_stock=True)
    body = accurate.save("sales-invoice", accurate.invoice("N-2", lines=[("BRG-0011", 1000)]))
    assert 'Stok barang "BRG-0011" di gudang "Gudang Kemang" tidak mencukupi' in _messages(body)
    out = _transfer("N-3", "TRANSFER_OUT", CENTRAL, KEMANG, [("BRG-0011", 10_000)])
    assert '"BRG-0011" di gudang "Gudang Pusat"' in _messages(accurate.save("item-transfer", out))
    ok = accurate.save("sales-invoice", accurate.invoice("N-4", lines=[("BRG-0011", 1)]))
    assert ok["s"] is True
    english = accurate.save(
        "sales-invoice", accurate.invoice("N-5", lines=[("BRG-0011", 1000)]), **{"X-Language-Profile": "US"}
    )
    assert 'Not enough stock of item "BRG-0011" in warehouse "Gudang Kemang"' in _messages(english)


def test_items_helper_creates_and_patches_items_with_stock(accurate: AccurateApi) -> None:
    body = accurate.control(
        "POST",
        "items",
        json={
            "no": "BRG-0049",
            "name": "Permen Jahe",
            "unit1Name": "PCS",
            "unitPrice": 7500,
            "stock": {KEMANG: 12},
        },
    )
    assert body["s"] is True and body["r"]["no"] == "BRG-0049"
    assert accurate.stock("BRG-0049", KEMANG) == 12
    patched = accurate.control("POST", "items", json={"no": "BRG-0049", "unitPrice": "8000.50"})
    assert Decimal(patched["r"]["unitPrice"]) == Decimal("8000.50") and patched["r"]["name"] == "Permen Jahe"
    assert accurate.stock("BRG-0049", KEMANG) == 12
    refused = accurate.control("POST", "items", expect=400, json={"no": "BRG-X", "stock": {"Gudang Awan": 1}})
    assert refused["s"] is False
