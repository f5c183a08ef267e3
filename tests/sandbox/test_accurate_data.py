"""Accurate sandbox contract: seeded data, envelopes, save/detail/list/delete, bulk, business rules."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.accurate.clock import SandboxClock
from sandbox.accurate.database import Database
from sandbox.accurate.state import SandboxConfig
from sandbox.demo_shop import build_demo_shop

if TYPE_CHECKING:
    from tests.sandbox.accurate_fixtures import AccurateApi

pytest_plugins = ["tests.sandbox.accurate_fixtures"]

SHOP = build_demo_shop(42)
ITEM_NOS = [p.sku for p in SHOP.products if p.sku and p.in_accurate]
TRANSACTION_MODULES = [
    "sales-invoice",
    "sales-receipt",
    "sales-return",
    "item-transfer",
    "item-adjustment",
    "purchase-order",
    "receive-item",
    "purchase-invoice",
    "purchase-return",
]


def _messages(body: dict[str, Any]) -> str:
    assert body["s"] is False, body
    return " | ".join(body["d"])


# ----------------------------------------------------------------------------- seeded data


def test_seed_holds_the_demo_shop_masters(accurate: AccurateApi) -> None:
    branches = accurate.list("branch", {"fields": "name", "sp.pageSize": 100})["d"]
    assert sorted(b["name"] for b in branches) == sorted({o.branch_name for o in SHOP.outlets})
    warehouses = accurate.list("warehouse", {"fields": "name", "sp.pageSize": 100})["d"]
    assert sorted(w["name"] for w in warehouses) == sorted({o.warehouse_name for o in SHOP.outlets})
    items = accurate.list("item", {"fields": "no", "sp.pageSize": 100})
    assert sorted(i["no"] for i in items["d"]) == sorted(ITEM_NOS)
    assert "BRG-0049" not in ITEM_NOS  # the product missing in Accurate stays missing
    customers = accurate.list("customer", {"fields": "customerNo,name", "sp.pageSize": 100})["d"]
    expected = {c.customer_number for c in SHOP.customers if c.in_accurate} | {"UMUM"}
    assert {c["customerNo"] for c in customers} == expected
    assert {"customerNo": "UMUM", "name": "Pelanggan Umum"}.items() <= next(
        c for c in customers if c["customerNo"] == "UMUM"
    ).items()
    vendors = accurate.list("vendor", {"fields": "vendorNo"})["d"]
    assert {v["vendorNo"] for v in vendors} == {v.vendor_no for v in SHOP.vendors}
    accounts = accurate.list("glaccount", {"fields": "no,name"})["d"]
    assert {a["no"]: a["name"] for a in accounts} == SHOP.gl_accounts


def test_seeded_item_fields_come_from_the_products(accurate: AccurateApi) -> None:
    product = SHOP.products[0]
    item = accurate.detail("item", no=product.sku)["d"]
    assert item["name"] == product.name
    assert item["itemType"] == "INVENTORY"
    assert item["unit1Name"] == product.unit
    assert Decimal(item["unitPrice"]) == product.price
    assert Decimal(item["unitCost"]) == product.buying_price
    kemang = next(o for o in SHOP.outlets if o.warehouse_name == "Gudang Kemang")
    balances = {b["warehouseName"]: Decimal(b["balance"]) for b in item["detailWarehouseData"]}
    assert balances["Gudang Kemang"] == SHOP.opening_stock[(product.sku, kemang.outlet_id)]


def test_seed_has_purchase_orders_for_every_vendor(accurate: AccurateApi) -> None:
    orders = accurate.list("purchase-order", {"fields": "number,vendorNo,detailItem"})["d"]
    per_vendor: dict[str, int] = {}
    for order in orders:
        per_vendor[order["vendorNo"]] = per_vendor.get(order["vendorNo"], 0) + 1
        assert order["detailItem"] and all(line["itemNo"] in ITEM_NOS for line in order["detailItem"])
    assert per_vendor == {v.vendor_no: 2 for v in SHOP.vendors}


def test_same_seed_gives_the_same_data(accurate: AccurateApi) -> None:
    local = Database(42, SandboxClock(), SandboxConfig())
    for module in ("item", "customer", "vendor", "warehouse", "branch", "glaccount", "purchase-order"):
        served = accurate.control("GET", f"records/{module}")["d"]
        assert served == _plain(list(local.tables[module].records.values())), module
    other = Database(7, SandboxClock(), SandboxConfig())
    assert other.stock != local.stock


def _plain(value: Any) -> Any:
    import json

    from sandbox.accurate.jsonio import encode

    return json.loads(encode(value), parse_float=Decimal)


# ----------------------------------------------------------------------------- save / detail


def test_save_answers_the_envelope_with_the_stored_record(accurate: AccurateApi) -> None:
    body = accurate.save("sales-invoice", accurate.invoice("INV-0001", description="POS #JKT01-1001"))
    assert body["s"] is True
    assert body["d"] == ['Data "INV-0001" berhasil disimpan']
    record = body["r"]
    assert isinstance(record["id"], int) and record["number"] == "INV-0001"
    assert record["description"] == "POS #JKT01-1001"
    assert record["detailItem"][0]["itemNo"] == "BRG-0001" and isinstance(record["detailItem"][0]["id"], int)
    detail = accurate.detail("sales-invoice", number="INV-0001")
    assert detail["s"] is True and detail["d"] == record
    assert accurate.detail("sales-invoice", id=record["id"])["d"] == record


def test_blank_number_auto_numbers_and_a_retried_blank_save_makes_a_second_document(
    accurate: AccurateApi,
) -> None:
    first = accurate.save("sales-invoice", accurate.invoice())["r"]["number"]
    second = accurate.save("sales-invoice", accurate.invoice())["r"]["number"]
    assert re.fullmatch(r"SI\.2026\.11\.\d{5}", first)
    assert first != second
    assert accurate.list("sales-invoice")["sp"]["rowCount"] == 2


@pytest.mark.parametrize(("module", "prefix"), [("item-adjustment", "IA"), ("purchase-order", "PO")])
def test_auto_numbers_use_a_prefix_per_module(accurate: AccurateApi, module: str, prefix: str) -> None:
    record: dict[str, Any] = {
        "branchName": "Kantor Pusat",
        "transDate": "05/12/2026",
        "detailItem": [
            {
                "itemNo": "BRG-0002",
                "quantity": 1,
                "warehouseName": "Gudang Pusat",
                "itemAdjustmentType": "ADJUSTMENT_IN",
            }
        ],
    }
    record.update(
        {"adjustmentAccountNo": "510501"} if module == "item-adjustment" else {"vendorNo": "V.0001"}
    )
    number = accurate.save(module, record)["r"]["number"]
    assert re.fullmatch(rf"{prefix}\.2026\.12\.\d{{5}}", number), number


def test_duplicate_number_is_refused_with_the_exact_message(accurate: AccurateApi) -> None:
    assert accurate.save("sales-invoice", accurate.invoice("INV-DUP"))["s"] is True
    body = accurate.save("sales-invoice", accurate.invoice("INV-DUP"))
    assert body == {"s": False, "d": ["Sudah ada data lain dengan No Form # INV-DUP"]}
    assert accurate.list("sales-invoice")["sp"]["rowCount"] == 1


def test_form_encoded_save_with_indexed_names(accurate: AccurateApi) -> None:
    body = accurate.save_form(
        "sales-invoice",
        {
            "number": "INV-FORM",
            "customerNo": "UMUM",
            "branchName": "Cabang Jakarta",
            "transDate": "21/11/2026",
            "detailItem[0].itemNo": "BRG-0003",
            "detailItem[0].quantity": "2",
            "detailItem[0].unitPrice": "17500.50",
            "detailItem[0].warehouseName": "Gudang Kemang",
            "detailItem[1].itemNo": "BRG-0004",
            "detailItem[1].quantity": "1.5",
            "detailItem[1].detailNotes": "catatan",
            "taxable": "true",
        },
    )
    assert body["s"] is True, body
    lines = body["r"]["detailItem"]
    assert [line["itemNo"] for line in lines] == ["BRG-0003", "BRG-0004"]
    assert Decimal(lines[0]["unitPrice"]) == Decimal("17500.50")
    assert Decimal(lines[1]["quantity"]) == Decimal("1.5")
    assert lines[1]["detailNotes"] == "catatan"
    assert lines[1]["warehouseName"] == "Gudang Kemang"  # the branch's default warehouse
    assert body["r"]["taxable"] is True


def test_amounts_are_decimal_and_taxes_computed(accurate: AccurateApi) -> None:
    record = accurate.invoice(
        "INV-TAX", lines=[("BRG-0001", 3)], taxable=True, inclusiveTax=False, cashDiscount="100"
    )
    record["detailItem"][0].update(unitPrice="10000.10", itemDiscPercent="10+5")
    body = accurate.save("sales-invoice", record)["r"]
    gross = Decimal("3") * Decimal("10000.10")
    line_total = (gross * Decimal("0.9") * Decimal("0.95")).quantize(Decimal("0.01"))
    assert Decimal(body["detailItem"][0]["totalPrice"]) == line_total
    net = line_total - 100
    assert Decimal(body["tax1Amount"]) == (net * Decimal("0.11")).quantize(Decimal("0.01"))
    assert Decimal(body["totalAmount"]) == net + Decimal(body["tax1Amount"])
    assert Decimal(body["primeOwing"]) == Decimal(body["totalAmount"])


def test_detail_not_found_is_a_business_error(accurate: AccurateApi) -> None:
    assert "NOPE" in _messages(accurate.detail("sales-invoice", number="NOPE"))
    assert "999999" in _messages(accurate.detail("customer", id=999999))
    assert "customerNo" in _messages(accurate.detail("customer"))


@pytest.mark.parametrize(
    ("module", "param", "value"),
    [
        ("customer", "customerNo", "UMUM"),
        ("item", "no", "BRG-0005"),
        ("vendor", "vendorNo", "V.0002"),
        ("warehouse", "name", "Gudang Dago"),
        ("branch", "name", "Cabang Bandung"),
        ("glaccount", "no", "110101"),
        ("purchase-order", "number", "PO.2026.11.00001"),
    ],
)
def test_detail_by_master_key(accurate: AccurateApi, module: str, param: str, value: str) -> None:
    body = accurate.detail(module, **{param: value})
    assert body["s"] is True and body["d"][param] == value
    assert accurate.detail(module, id=body["d"]["id"])["d"][param] == value


def test_update_by_id_merges_header_and_lines(accurate: AccurateApi) -> None:
    saved = accurate.save(
        "sales-invoice", accurate.invoice("INV-UPD", lines=[("BRG-0001", 2), ("BRG-0002", 1)])
    )["r"]
    first, second = saved["detailItem"]
    before = accurate.stock("BRG-0001", "Gudang Kemang")
    body = accurate.save(
        "sales-invoice",
        {
            "id": saved["id"],
            "description": "diubah",
            "detailItem": [
                {"id": first["id"], "quantity": 5},
                {"id": second["id"], "_status": "delete"},
                {"itemNo": "BRG-0006", "quantity": 1},
            ],
        },
    )
    assert body["s"] is True, body
    record = body["r"]
    assert record["id"] == saved["id"] and record["number"] == "INV-UPD" and record["description"] == "diubah"
    assert [(line["itemNo"], Decimal(line["quantity"])) for line in record["detailItem"]] == [
        ("BRG-0001", 5),
        ("BRG-0006", 1),
    ]
    assert record["detailItem"][0]["id"] == first["id"]
    assert accurate.stock("BRG-0001", "Gudang Kemang") == before - 3
    assert record["optLock"] == saved["optLock"] + 1


def test_update_with_unknown_id_or_line_id_is_refused(accurate: AccurateApi) -> None:
    assert "999999" in _messages(accurate.save("sales-invoice", {"id": 999999, "description": "x"}))
    saved = accurate.save("sales-invoice", accurate.invoice("INV-L"))["r"]
    body = accurate.save("sales-invoice", {"id": saved["id"], "detailItem": [{"id": 424242, "quantity": 1}]})
    assert "detailItem[0].id" in _messages(body)


def test_update_to_a_number_in_use_is_refused(accurate: AccurateApi) -> None:
    accurate.save("sales-invoice", accurate.invoice("INV-A"))
    other = accurate.save("sales-invoice", accurate.invoice("INV-B"))["r"]
    body = accurate.save("sales-invoice", {"id": other["id"], "number": "INV-A"})
    assert body["d"] == ["Sudah ada data lain dengan No Form # INV-A"]


def test_delete_by_number_and_by_id_reverses_stock(accurate: AccurateApi) -> None:
    before = accurate.stock("BRG-0001", "Gudang Kemang")
    first = accurate.save("sales-invoice", accurate.invoice("INV-D1", lines=[("BRG-0001", 4)]))["r"]
    accurate.save("sales-invoice", accurate.invoice("INV-D2", lines=[("BRG-0001", 1)]))
    assert accurate.stock("BRG-0001", "Gudang Kemang") == before - 5
    assert accurate.delete("sales-invoice", number="INV-D2")["d"] == ['Data "INV-D2" berhasil dihapus']
    response = accurate.data("sales-invoice", "delete", "DELETE", params={"id": first["id"]})
    assert accurate.ok(response)["s"] is True
    assert accurate.stock("BRG-0001", "Gudang Kemang") == before
    assert accurate.detail("sales-invoice", number="INV-D1")["s"] is False
    assert "INV-D1" in _messages(accurate.delete("sales-invoice", number="INV-D1"))
    # The number is free again.
    assert accurate.save("sales-invoice", accurate.invoice("INV-D1"))["s"] is True


# ----------------------------------------------------------------------------- masters


def test_customer_auto_number_and_fields_usable_in_filters(accurate: AccurateApi) -> None:
    first = accurate.save(
        "customer",
        {
            "name": "Budi Baru",
            "notes": "iseller:abc-123",
            "email": "b@contoh.id",
            "branchName": "Cabang Jakarta",
        },
    )
    second = accurate.save("customer", {"customerNo": "", "name": "Siti Baru", "notes": "iseller:def-456"})
    assert first["r"]["customerNo"] == "C.00001" and second["r"]["customerNo"] == "C.00002"
    assert first["d"] == ['Data "C.00001" berhasil disimpan']
    found = accurate.list(
        "customer",
        {"filter.notes.op": "EQUAL", "filter.notes.val[0]": "iseller:def-456", "fields": "customerNo,notes"},
    )
    assert found["d"] == [{"id": second["r"]["id"], "customerNo": "C.00002", "notes": "iseller:def-456"}]


@pytest.mark.parametrize(
    ("module", "record", "expected"),
    [
        ("customer", {"customerNo": "UMUM", "name": "X"}, "Sudah ada data lain dengan No Pelanggan # UMUM"),
        ("item", {"no": "BRG-0001", "name": "X"}, "Sudah ada data lain dengan Kode Barang # BRG-0001"),
        ("vendor", {"vendorNo": "V.0001", "name": "X"}, "Sudah ada data lain dengan No Pemasok # V.0001"),
        ("warehouse", {"name": "Gudang Dago"}, "Sudah ada data lain dengan Nama Gudang # Gudang Dago"),
        ("branch", {"name": "Cabang Bandung"}, "Sudah ada data lain dengan Nama Cabang # Cabang Bandung"),
    ],
)
def test_duplicate_master_key_is_refused(
    accurate: AccurateApi, module: str, record: dict[str, Any], expected: str
) -> None:
    assert accurate.save(module, record) == {"s": False, "d": [expected]}


def test_new_masters_can_be_created_and_used(accurate: AccurateApi) -> None:
    assert accurate.save("branch", {"name": "Cabang Medan"})["s"] is True
    assert accurate.save("warehouse", {"name": "Gudang Medan"})["s"] is True
    item = accurate.save(
        "item", {"no": "BRG-9001", "name": "Barang Baru", "unit1Name": "PCS", "unitPrice": 1000}
    )
    assert item["s"] is True and item["r"]["itemType"] == "INVENTORY"
    assert accurate.save("vendor", {"name": "PT Baru"})["r"]["vendorNo"] == "V.00001"
    body = accurate.save(
        "sales-invoice",
        accurate.invoice("INV-MDN", branch="Cabang Medan", warehouse="Gudang Medan", lines=[("BRG-9001", 1)]),
    )
    assert body["s"] is True, body
    assert accurate.stock("BRG-9001", "Gudang Medan") == -1


def test_glaccount_is_read_only(accurate: AccurateApi) -> None:
    assert accurate.detail("glaccount", no="110201")["d"]["name"] == "Bank BCA"
    assert "hanya dapat dibaca" in _messages(accurate.save("glaccount", {"no": "999", "name": "X"}))


# ----------------------------------------------------------------------------- list


def test_paging_to_the_last_page(accurate: AccurateApi) -> None:
    total = len(ITEM_NOS)
    first = accurate.list("item", {"sp.pageSize": 10})
    assert first["sp"] == {"page": 1, "pageSize": 10, "pageCount": -(-total // 10), "rowCount": total}
    seen = [row["no"] for row in first["d"]]
    for page in range(2, first["sp"]["pageCount"] + 1):
        body = accurate.list("item", {"sp.pageSize": 10, "sp.page": page})
        assert body["sp"]["page"] == page
        seen += [row["no"] for row in body["d"]]
    assert len(body["d"]) == total - 10 * (first["sp"]["pageCount"] - 1)
    assert sorted(seen) == sorted(ITEM_NOS)
    beyond = accurate.list("item", {"sp.pageSize": 10, "sp.page": first["sp"]["pageCount"] + 1})
    assert beyond["s"] is True and beyond["d"] == []


def test_default_and_maximum_page_size(accurate: AccurateApi) -> None:
    assert accurate.list("item")["sp"]["pageSize"] == 20
    assert len(accurate.list("item")["d"]) == 20
    assert accurate.list("item", {"sp.pageSize": 500})["sp"]["pageSize"] == 100
    assert "sp.page" in _messages(accurate.list("item", {"sp.page": "zero"}))


def test_fields_returns_only_those_plus_id(accurate: AccurateApi) -> None:
    row = accurate.list("item", {"fields": "name,unitPrice,doesNotExist", "sp.pageSize": 1})["d"][0]
    assert set(row) == {"id", "name", "unitPrice"}
    default_row = accurate.list("item", {"sp.pageSize": 1})["d"][0]
    assert set(default_row) == {"id", "no"}
    invoice_row = accurate.list("purchase-order", {"sp.pageSize": 1})["d"][0]
    assert set(invoice_row) == {"id", "number"}


def test_equal_filter_with_a_hundred_values(accurate: AccurateApi) -> None:
    numbers = [f"POS-{n:04d}" for n in range(120)]
    for start in (0, 100):
        body = accurate.bulk("sales-invoice", [accurate.invoice(n) for n in numbers[start : start + 100]])
        assert all(result["s"] for result in body["d"])
    wanted = numbers[10:110] + ["POS-MISSING"]
    params: list[tuple[str, str]] = [
        ("filter.number.op", "EQUAL"),
        ("fields", "number"),
        ("sp.pageSize", "100"),
    ]
    params += [(f"filter.number.val[{i}]", n) for i, n in enumerate(wanted)]
    body = accurate.list("sales-invoice", params)
    assert body["sp"]["rowCount"] == 100
    assert sorted(row["number"] for row in body["d"]) == sorted(numbers[10:110])


def test_filter_operators(accurate: AccurateApi) -> None:
    for day, number in ((18, "F-18"), (19, "F-19"), (20, "F-20"), (21, "F-21")):
        accurate.save(
            "sales-invoice", accurate.invoice(number, transDate=f"{day}/11/2026", lines=[("BRG-0001", day)])
        )

    def numbers(params: list[tuple[str, str]]) -> list[str]:
        return [row["number"] for row in accurate.list("sales-invoice", [*params, ("fields", "number")])["d"]]

    assert numbers(
        [
            ("filter.transDate.op", "BETWEEN"),
            ("filter.transDate.val[0]", "19/11/2026"),
            ("filter.transDate.val[1]", "20/11/2026"),
        ]
    ) == ["F-19", "F-20"]
    assert numbers(
        [
            ("filter.number.op", "NOT_EQUAL"),
            ("filter.number.val[0]", "F-18"),
            ("filter.number.val[1]", "F-21"),
        ]
    ) == ["F-19", "F-20"]
    assert numbers([("filter.transDate.op", "GREATER_THAN"), ("filter.transDate.val[0]", "20/11/2026")]) == [
        "F-21"
    ]
    assert numbers([("filter.totalAmount.op", "LESS_THAN"), ("filter.totalAmount.val[0]", "65000")]) == []
    assert numbers(
        [("filter.totalAmount.op", "LESS_THAN"), ("filter.totalAmount.val[0]", str(65000 * 19 + 1))]
    ) == ["F-18", "F-19"]
    assert numbers([("filter.number.op", "CONTAIN"), ("filter.number.val[0]", "f-2")]) == ["F-20", "F-21"]
    assert numbers([("filter.number", "F-19")]) == ["F-19"]
    assert numbers([("filter.customer.customerNo", "UMUM"), ("sp.sort", "number|desc")]) == [
        "F-21",
        "F-20",
        "F-19",
        "F-18",
    ]
    names = accurate.list(
        "item", {"filter.name.op": "CONTAIN", "filter.name.val": "kopi", "fields": "name", "sp.pageSize": 100}
    )["d"]
    assert names and all("kopi" in row["name"].lower() for row in names)
    assert "UNKNOWN_OP" in _messages(
        accurate.list("item", {"filter.name.op": "UNKNOWN_OP", "filter.name.val": "x"})
    )


def test_list_accepts_post_with_a_form_body(accurate: AccurateApi) -> None:
    response = accurate.data(
        "item",
        "list",
        "POST",
        data={
            "filter.no.op": "EQUAL",
            "filter.no.val[0]": "BRG-0002",
            "filter.no.val[1]": "BRG-0003",
            "fields": "no",
        },
    )
    assert [row["no"] for row in accurate.ok(response)["d"]] == ["BRG-0002", "BRG-0003"]


# ----------------------------------------------------------------------------- bulk


def test_bulk_results_in_input_order_with_failures_isolated(accurate: AccurateApi) -> None:
    records = [
        accurate.invoice("B-1"),
        accurate.invoice("B-2", lines=[("NOPE", 1)]),
        accurate.invoice("B-1"),
        accurate.invoice("B-3"),
    ]
    body = accurate.bulk("sales-invoice", records)
    assert body["s"] is True  # outer s: the batch was processed (documented choice)
    results = body["d"]
    assert [r["s"] for r in results] == [True, False, False, True]
    assert results[0]["r"]["number"] == "B-1" and results[3]["r"]["number"] == "B-3"
    assert "detailItem[0].itemNo" in results[1]["d"][0]
    assert results[2]["d"] == ["Sudah ada data lain dengan No Form # B-1"]
    accurate.config(bulk_outer_s="all")
    assert accurate.bulk("sales-invoice", [accurate.invoice("B-4"), accurate.invoice("B-4")])["s"] is False


def test_bulk_of_100_is_accepted_and_101_refused(accurate: AccurateApi) -> None:
    body = accurate.bulk("sales-invoice", [accurate.invoice(f"H-{n}") for n in range(100)])
    assert body["s"] is True and len(body["d"]) == 100 and all(r["s"] for r in body["d"])
    refused = accurate.bulk("sales-invoice", [accurate.invoice(f"X-{n}") for n in range(101)])
    assert refused["s"] is False and "100" in refused["d"][0]
    assert accurate.detail("sales-invoice", number="X-0")["s"] is False
    assert accurate.bulk("sales-invoice", [])["s"] is False


def test_bulk_with_form_fields(accurate: AccurateApi) -> None:
    fields = {}
    for n in range(2):
        fields.update(
            {
                f"data[{n}].number": f"FB-{n}",
                f"data[{n}].customerNo": "UMUM",
                f"data[{n}].branchName": "Cabang Dago" if n else "Cabang Jakarta",
                f"data[{n}].detailItem[0].itemNo": "BRG-0001",
                f"data[{n}].detailItem[0].quantity": "1",
            }
        )
    fields["data[1].branchName"] = "Cabang Bandung"
    body = accurate.ok(accurate.data("sales-invoice", "bulk-save", "POST", data=fields))
    assert [r["r"]["number"] for r in body["d"]] == ["FB-0", "FB-1"]
    assert body["d"][1]["r"]["detailItem"][0]["warehouseName"] == "Gudang Dago"


# ----------------------------------------------------------------------------- business rules


@pytest.mark.parametrize("module", TRANSACTION_MODULES)
def test_branch_name_is_required_for_every_transaction(accurate: AccurateApi, module: str) -> None:
    body = accurate.save(module, {"number": "NB-1", "detailItem": [{"itemNo": "BRG-0001", "quantity": 1}]})
    assert "branchName" in _messages(body) and "cabang" in _messages(body).lower()
    body = accurate.save(module, {"number": "NB-1", "branchName": "Cabang Atlantis"})
    assert 'branchName: Cabang "Cabang Atlantis" tidak ditemukan' in _messages(body)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"customerNo": "CUST-404"}, 'customerNo: Pelanggan dengan No "CUST-404" tidak ditemukan'),
        ({"customerNo": ""}, "customerNo: harus diisi"),
        (
            {"line": {"itemNo": "BRG-4040"}},
            'detailItem[1].itemNo: Barang dengan kode "BRG-4040" tidak ditemukan',
        ),
        ({"line": {"warehouseName": "Gudang Bulan"}}, 'detailItem[1].warehouseName: Gudang "Gudang Bulan"'),
        ({"line": {"quantity": "dua"}}, 'detailItem[1].quantity: nilai "dua" bukan angka yang valid'),
        ({"line": {"quantity": -1}}, "detailItem[1].quantity: harus lebih besar dari 0"),
        ({"line": {"quantity": 0}}, "detailItem[1].quantity: harus lebih besar dari 0"),
        ({"line": {"quantity": None}}, "detailItem[1].quantity: harus diisi"),
        ({"line": {"unitPrice": "murah"}}, 'detailItem[1].unitPrice: nilai "murah" bukan angka'),
        ({"line": {"unitPrice": -5}}, "detailItem[1].unitPrice: tidak boleh negatif"),
        ({"line": {"itemUnitName": "DUS"}}, 'detailItem[1].itemUnitName: Satuan "DUS"'),
        ({"transDate": "2026-11-20"}, 'transDate: tanggal "2026-11-20" tidak valid'),
        ({"detailItem": []}, "detailItem: minimal satu rincian"),
    ],
)
def test_sales_invoice_validation(accurate: AccurateApi, change: dict[str, Any], expected: str) -> None:
    record = accurate.invoice("V-1", lines=[("BRG-0001", 1), ("BRG-0002", 1)])
    line_change = change.pop("line", None)
    if line_change:
        record["detailItem"][1].update(line_change)
    record.update(change)
    body = accurate.save("sales-invoice", record)
    assert expected in _messages(body)
    assert accurate.detail("sales-invoice", number="V-1")["s"] is False


def test_several_problems_are_reported_together_and_in_english_on_request(accurate: AccurateApi) -> None:
    record = accurate.invoice("V-2", customer="CUST-404", lines=[("BRG-4040", -1)])
    body = accurate.save("sales-invoice", record, **{"X-Language-Profile": "US"})
    text = _messages(body)
    assert 'customerNo: Customer "CUST-404" not found' in text
    assert 'detailItem[0].itemNo: Item "BRG-4040" not found' in text
    assert "detailItem[0].quantity: must be greater than 0" in text


def test_sales_receipt_rules(accurate: AccurateApi) -> None:
    invoice = accurate.save("sales-invoice", accurate.invoice("R-INV", lines=[("BRG-0001", 2)]))["r"]
    receipt = {
        "number": "R-1",
        "customerNo": "UMUM",
        "branchName": "Cabang Jakarta",
        "bankNo": "110101",
        "transDate": "20/11/2026",
        "paymentMethod": "CASH_OTHER",
        "detailInvoice": [{"invoiceNo": "R-INV", "paymentAmount": "50000"}],
    }
    missing = {**receipt, "detailInvoice": [{"invoiceNo": "R-NOPE", "paymentAmount": "1"}]}
    assert (
        "detailInvoice[0].invoiceNo: Faktur Penjualan dengan No Form # R-NOPE tidak ditemukan"
        in _messages(accurate.save("sales-receipt", missing))
    )
    assert 'bankNo: Akun Perkiraan "999999"' in _messages(
        accurate.save("sales-receipt", {**receipt, "bankNo": "999999"})
    )
    assert "bankNo: harus diisi" in _messages(accurate.save("sales-receipt", {**receipt, "bankNo": ""}))
    other = {**receipt, "customerNo": "CUST-00001"}
    assert "UMUM" in _messages(accurate.save("sales-receipt", other))
    body = accurate.save("sales-receipt", receipt)
    assert body["s"] is True, body
    assert Decimal(body["r"]["chequeAmount"]) == 50000
    owing = Decimal(accurate.detail("sales-invoice", number="R-INV")["d"]["primeOwing"])
    assert owing == Decimal(invoice["totalAmount"]) - 50000
    assert "R-INV" in _messages(accurate.delete("sales-invoice", number="R-INV"))  # paid: in use
    assert accurate.delete("sales-receipt", number="R-1")["s"] is True
    assert accurate.delete("sales-invoice", number="R-INV")["s"] is True


def test_sales_return_rules(accurate: AccurateApi) -> None:
    accurate.save("sales-invoice", accurate.invoice("RT-INV", lines=[("BRG-0001", 3)]))
    stock = accurate.stock("BRG-0001", "Gudang Kemang")
    record = {
        "number": "RT-1",
        "customerNo": "UMUM",
        "branchName": "Cabang Jakarta",
        "invoiceNumber": "RT-NOPE",
        "detailItem": [{"itemNo": "BRG-0001", "quantity": 1, "warehouseName": "Gudang Kemang"}],
    }
    assert "invoiceNumber: Faktur Penjualan dengan No Form # RT-NOPE tidak ditemukan" in _messages(
        accurate.save("sales-return", record)
    )
    body = accurate.save("sales-return", {**record, "invoiceNumber": "RT-INV"})
    assert body["s"] is True, body
    assert accurate.stock("BRG-0001", "Gudang Kemang") == stock + 1


def test_gl_account_checked_on_item_adjustment(accurate: AccurateApi) -> None:
    record: dict[str, Any] = {
        "branchName": "Cabang Jakarta",
        "adjustmentAccountNo": "000000",
        "detailItem": [{"itemNo": "BRG-0001", "quantity": 1, "itemAdjustmentType": "ADJUSTMENT_IN"}],
    }
    assert 'adjustmentAccountNo: Akun Perkiraan "000000"' in _messages(
        accurate.save("item-adjustment", record)
    )
    record["detailItem"][0]["itemAdjustmentType"] = "SIDEWAYS"
    record["adjustmentAccountNo"] = "510501"
    assert "itemAdjustmentType" in _messages(accurate.save("item-adjustment", record))


def test_purchase_documents_rules(accurate: AccurateApi) -> None:
    order = accurate.detail("purchase-order", number="PO.2026.11.00001")["d"]
    line = order["detailItem"][0]
    receive = {
        "number": "RI-1",
        "vendorNo": order["vendorNo"],
        "branchName": "Kantor Pusat",
        "detailItem": [{"itemNo": line["itemNo"], "quantity": 2, "purchaseOrderNumber": order["number"]}],
    }
    assert "receiveNumber: harus diisi" in _messages(accurate.save("receive-item", receive))
    receive["receiveNumber"] = "SJ-001"
    wrong_vendor = {**receive, "vendorNo": "V.0003" if order["vendorNo"] != "V.0003" else "V.0002"}
    assert "detailItem[0].purchaseOrderNumber" in _messages(accurate.save("receive-item", wrong_vendor))
    missing_po = {**receive, "detailItem": [{**receive["detailItem"][0], "purchaseOrderNumber": "PO-NOPE"}]}
    assert "Pesanan Pembelian dengan No Form # PO-NOPE" in _messages(
        accurate.save("receive-item", missing_po)
    )
    assert 'vendorNo: Pemasok dengan No "V.9999"' in _messages(
        accurate.save("receive-item", {**receive, "vendorNo": "V.9999"})
    )
    assert accurate.save("receive-item", receive)["s"] is True
    assert "PO.2026.11.00001" in _messages(accurate.delete("purchase-order", number="PO.2026.11.00001"))


def test_unknown_module_action_method_and_malformed_body(accurate: AccurateApi) -> None:
    response = accurate.data("spaceship", "list")
    assert response.status_code == 404 and response.json()["s"] is False
    response = accurate.data("item", "explode")
    assert response.status_code == 404 and response.json()["s"] is False
    response = accurate.data("item", "save", "GET")
    assert response.status_code == 405 and response.json()["s"] is False
    response = accurate.data(
        "item", "save", "POST", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["s"] is False
