"""Hostile iSeller documents through the real extract -> ledger (PostgreSQL) -> load path.

One bad document never costs the batch: it is stored failed with a reason naming the order and the
field (or stored cleaned, with what was cleaned recorded), and every other document is stored and
posted. Every record extract reads ends as a ledger row.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from include.iseller_accurate.ledger import Document, Ledger, RunRef
from include.iseller_accurate.pipeline import ExtractContext, Loader, extract_documents
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.streams.stock_opname import StockOpnameStream
from include.iseller_accurate.streams.transfers import TransfersStream
from include.iseller_accurate.tasks import _refresher
from tests.integration.test_pipeline_ledger import FakeAccurate

OUTLET = "outlet-kemang"
SETTINGS = parse_settings(
    {
        "outlets": {
            OUTLET: {
                "name": "Toko Kemang",
                "branch": "Cabang Jakarta",
                "warehouse": "Gudang Kemang",
                "cash_account": "110101",
                "adjustment_account": "510501",
            },
            "outlet-dago": {"branch": "Cabang Bandung", "warehouse": "Gudang Dago"},
        }
    }
)
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAG = "iseller_sales_to_accurate"


class FakeIseller:
    """The reads the streams make, over in-memory records (the store may hold anything)."""

    def __init__(self) -> None:
        self.orders: list[Any] = []
        self.transfers: list[Any] = []
        self.takes: list[Any] = []
        self.products: list[Any] = []

    def get_orders_pages(self, order_id=None, **_: Any):
        orders = [
            o
            for o in self.orders
            if order_id is None or (isinstance(o, dict) and o.get("order_id") == order_id)
        ]
        yield {"orders": copy.deepcopy(orders), "refunded_orders": [], "has_next_item": False}

    def get_transfers(self, transfer_id=None, **_: Any):
        return [
            copy.deepcopy(t)
            for t in self.transfers
            if transfer_id is None or t.get("transfer_id") == transfer_id
        ]

    def get_stock_takes(self, stock_take_id=None, outlet_id=None, **_: Any):
        return [
            copy.deepcopy(t)
            for t in self.takes
            if (stock_take_id is None or t.get("stock_take_id") == stock_take_id)
            and (outlet_id is None or t.get("outlet_id") == outlet_id)
        ]

    def get_products(self, **_: Any):
        return list(self.products)


def order(n: int, *, name: str = "Gula Aren", sku: str = "BRG-0001", quantity: Any = Decimal(1)) -> dict:
    when = (T0 + timedelta(minutes=n)).replace(tzinfo=None).isoformat()
    return {
        "order_id": f"order-{n}",
        "order_reference": f"#JKT01-{n}",
        "status": "completed",
        "order_date": when,
        "closed_date": when,
        "modified_date": when,
        "outlet_id": OUTLET,
        "register_id": "register-1",
        "order_details": [
            {
                "order_detail_id": "l1",
                "product_name": name,
                "sku": sku,
                "quantity": quantity,
                "base_price": Decimal("15000"),
                "discount_amount": Decimal(0),
                "tax_percentage": Decimal(0),
            }
        ],
        "transactions": [
            {
                "type": "sale",
                "status": "success",
                "gateway": "cash",
                "amount": Decimal("15000") * (quantity if isinstance(quantity, Decimal) else 1),
                "transaction_date": when,
            }
        ],
    }


def run(try_number: int = 1) -> RunRef:
    return RunRef(DAG, "manual__1", "load", try_number=try_number)


def extract(stream, iseller, ledger, settings=SETTINGS) -> dict:
    ctx = ExtractContext(settings, {}, T0 - timedelta(hours=1), T0 + timedelta(hours=1), iseller, ledger)
    return extract_documents(stream, ctx, ledger, run(), advance_cursor=True)


def rows(ledger: Ledger, data_type: str = "sales_invoice") -> dict[str, dict]:
    found = ledger.conn.execute(
        "SELECT * FROM sync.documents WHERE data_type = %s ORDER BY source_id", (data_type,)
    ).fetchall()
    return {r["source_id"]: r for r in found}


def load(ledger, accurate, stream, iseller, try_number: int = 1):
    refresh = _refresher(stream, SETTINGS, iseller, ledger, run(try_number))
    return Loader(ledger, accurate, run(try_number), refresh=refresh).load_run()


def test_nul_in_a_product_name_is_cleaned_and_the_other_orders_are_stored_and_posted(ledger):
    iseller, accurate = FakeIseller(), FakeAccurate()
    iseller.orders = [order(1), order(2, name="Gula\x00Aren"), order(3), order(4)]
    summary = extract(SalesStream(), iseller, ledger)
    invoices = rows(ledger)
    assert set(invoices) == {"order-1", "order-2", "order-3", "order-4"} and summary["records"] == 4
    bad = invoices["order-2"]
    assert bad["status"] == "pending" and bad["payload"]["detailItem"][0]["detailNotes"] == "GulaAren"
    assert "order #JKT01-2: line 1 field product_name: NUL character removed" in bad["cleaned"]
    report = load(ledger, accurate, SalesStream(), iseller)
    assert not report.failed and not report.blocked
    assert set(accurate.records["sales-invoice"]) == {f"SI/JKT01-{n}" for n in (1, 2, 3, 4)}
    synced = rows(ledger)["order-2"]
    assert synced["status"] == "synced" and "NUL character removed" in synced["reason"]


def test_nul_in_a_sku_fails_that_order_alone_and_a_repair_then_clear_posts_it(ledger):
    iseller, accurate = FakeIseller(), FakeAccurate()
    iseller.orders = [order(1), order(2, sku="BRG-\x000001"), order(3), order(4)]
    extract(SalesStream(), iseller, ledger)
    invoices = rows(ledger)
    assert len(invoices) == 4
    bad = invoices["order-2"]
    assert bad["status"] == "failed"
    assert (
        bad["reason"].startswith("order #JKT01-2: line 1 field sku: ")
        and "control characters" in bad["reason"]
    )
    report = load(ledger, accurate, SalesStream(), iseller)
    assert [r.source_id for r in report.failed] == ["order-2"]
    assert report.blocked == []  # its payments are read (and posted) once the order can be read
    assert set(accurate.records["sales-invoice"]) == {"SI/JKT01-1", "SI/JKT01-3", "SI/JKT01-4"}
    # clearing without a repair: the order is read again, fails again with its reason, no exception
    report = load(ledger, accurate, SalesStream(), iseller, try_number=2)
    assert [r.source_id for r in report.failed] == ["order-2"]
    # the SKU is repaired in iSeller, the load is cleared: it posts
    iseller.orders[1]["order_details"][0]["sku"] = "BRG-0001"
    report = load(ledger, accurate, SalesStream(), iseller, try_number=3)
    assert not report.failed and not report.blocked
    assert (
        "SI/JKT01-2" in accurate.records["sales-invoice"]
        and "SR/JKT01-2" in accurate.records["sales-receipt"]
    )


def test_renaming_the_product_back_and_clearing_posts_the_order_whatever_its_line_holds(ledger):
    """The order line keeps the old (NUL) name after the product is renamed: the refresh re-reads
    the order and posts it cleaned, instead of failing the whole refresh."""
    iseller, accurate = FakeIseller(), FakeAccurate()
    iseller.orders = [order(1), order(2, name="Gula\x00Aren")]
    extract(SalesStream(), iseller, ledger)
    accurate.items.discard("BRG-0001")  # the first load fails every invoice (item missing in Accurate)
    report = load(ledger, accurate, SalesStream(), iseller)
    assert {r.source_id for r in report.failed} == {"order-1", "order-2"}
    accurate.items.add("BRG-0001")
    report = load(ledger, accurate, SalesStream(), iseller, try_number=2)  # refresh re-reads the NUL line
    assert not report.failed and not report.blocked
    assert accurate.records["sales-invoice"]["SI/JKT01-2"]["detailItem"][0]["detailNotes"] == "GulaAren"


def test_every_record_read_ends_as_a_ledger_row_even_when_many_are_bad(ledger):
    iseller, accurate = FakeIseller(), FakeAccurate()
    dated = order(6)
    dated["closed_date"] = "31/12/2026"
    no_id = order(8)
    del no_id["order_id"]
    iseller.orders = [
        order(1),
        order(2, quantity="abc"),
        order(3, quantity="NaN"),
        order(4, quantity=Decimal("1e12")),
        order(5, quantity=Decimal("0.0000001")),
        dated,
        order(7, sku=["BRG-0001"]),
        no_id,
        "not an order at all",
        order(9, name="Gula\x00Aren"),
    ]
    summary = extract(SalesStream(), iseller, ledger)
    assert summary["records"] == 10
    stored = ledger.conn.execute(
        "SELECT source_key, status, reason FROM sync.documents WHERE data_type = 'sales_invoice'"
    ).fetchall()
    assert len(stored) == 10  # N records, N invoice rows
    by_status = {}
    for row in stored:
        by_status.setdefault(row["status"], []).append(row)
    assert len(by_status["pending"]) == 2 and len(by_status["failed"]) == 8
    assert all(row["reason"] for row in by_status["failed"])
    report = load(ledger, accurate, SalesStream(), iseller)
    assert set(accurate.records["sales-invoice"]) == {"SI/JKT01-1", "SI/JKT01-9"}
    assert len(report.failed) == 8


def test_a_document_the_ledger_cannot_hold_fails_alone_at_storage(ledger):
    """The storage safety net: a stream that let a NUL or a non-finite amount into a payload."""
    good = Document(
        "sales_invoice",
        "o1",
        source_key="o1",
        source_date=T0,
        target_module="sales-invoice",
        target_number="SI/T-1",
        payload={"number": "SI/T-1", "detailItem": []},
        source_number="#T-1",
    )
    nul = Document(
        "sales_invoice",
        "o2",
        source_key="o2",
        source_date=T0,
        target_module="sales-invoice",
        target_number="SI/T-2",
        payload={"number": "SI/T-2", "description": "a\x00b"},
        source_number="#T-2",
        source={"name": "a\x00b", "bad\ud800": "x"},
    )
    nan = Document(
        "sales_invoice",
        "o3",
        source_key="o3",
        source_date=T0,
        target_module="sales-invoice",
        target_number="SI/T-3",
        payload={"number": "SI/T-3", "cashDiscount": Decimal("NaN")},
        source_number="#T-3",
    )
    ids = ledger.upsert([good, nul, nan], run())
    assert len(ids) == 3
    stored = rows(ledger)
    assert stored["o1"]["status"] == "pending"
    assert stored["o2"]["status"] == "failed" and "payload.description" in stored["o2"]["reason"]
    assert stored["o2"]["source"]["name"] == "ab"
    assert stored["o3"]["status"] == "failed" and "payload.cashDiscount" in stored["o3"]["reason"]


def test_a_renumbered_customer_stays_on_its_first_accurate_number(ledger):
    iseller, accurate = FakeIseller(), FakeAccurate()
    first = order(1)
    first.update(customer_id="cust-1", external_customer_id="CUST-0001", customer_first_name="Budi")
    iseller.orders = [first]
    extract(SalesStream(), iseller, ledger)
    assert not load(ledger, accurate, SalesStream(), iseller).failed
    later = order(2)  # the customer was renumbered in iSeller after the first sync
    later.update(customer_id="cust-1", external_customer_id="CUST-0099", customer_first_name="Budi")
    iseller.orders = [first, later]
    extract(SalesStream(), iseller, ledger)
    report = load(ledger, accurate, SalesStream(), iseller)
    assert not report.failed and not report.blocked
    assert set(accurate.records["customer"]) == {"CUST-0001"}  # no second customer
    assert accurate.records["sales-invoice"]["SI/JKT01-2"]["customerNo"] == "CUST-0001"
    customer = rows(ledger, "customer")["cust-1"]
    assert customer["target_number"] == "CUST-0001"


def test_a_bad_transfer_and_a_bad_stock_take_fail_alone_through_extract(ledger):
    iseller = FakeIseller()

    def transfer(n: int, quantity: Any) -> dict:
        when = (T0 + timedelta(minutes=n)).replace(tzinfo=None).isoformat()
        return {
            "transfer_id": f"transfer-{n}",
            "transfer_number": f"TRF-{n}",
            "type": "outlet",
            "from_outlet_id": OUTLET,
            "to_outlet_id": "outlet-dago",
            "status": "sent",
            "sent_date": when,
            "modified_date": when,
            "created_date": when,
            "products": [{"product_name": "Kopi\x00", "sku": "BRG-0001", "quantity": quantity}],
        }

    iseller.transfers = [transfer(1, Decimal(2)), transfer(2, "abc"), transfer(3, "NaN")]
    extract(TransfersStream(), iseller, ledger)
    outs = rows(ledger, "transfer_out")
    assert outs["transfer-1"]["status"] == "pending" and "NUL" in outs["transfer-1"]["cleaned"]
    assert outs["transfer-2"]["status"] == outs["transfer-3"]["status"] == "failed"
    assert (
        "transfer TRF-2" in outs["transfer-2"]["reason"] and "field quantity" in outs["transfer-2"]["reason"]
    )

    def take(n: int, counted: Any) -> dict:
        when = (T0 + timedelta(minutes=n)).replace(tzinfo=None).isoformat()
        return {
            "stock_take_id": f"take-{n}",
            "stock_take_number": f"ST-{n}",
            "outlet_id": OUTLET,
            "stock_take_date": when,
            "status": "completed",
            "lines": [
                {"product_name": "Kopi", "sku": "BRG-0001", "system_quantity": 5, "counted_quantity": counted}
            ],
        }

    iseller.takes = [take(1, 3), take(2, "abc")]
    iseller.products = [{"sku": "BRG-0001", "buying_price": "abc"}]
    extract(StockOpnameStream(), iseller, ledger)
    takes = rows(ledger, "stock_opname")
    assert set(takes) == {"take-1", "take-2"}
    assert takes["take-2"]["status"] == "failed" and "field counted_quantity" in takes["take-2"]["reason"]
    assert takes["take-1"]["status"] == "failed" and "unit cost" in takes["take-1"]["reason"]


def test_a_source_record_nested_thousands_deep_is_stored_cut_short(ledger):
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    doc = Document(
        "sales_invoice",
        "o1",
        source_key="o1",
        source_date=T0,
        target_module="sales-invoice",
        target_number="SI/T-1",
        payload={"number": "SI/T-1"},
        source={"extra": deep},
    )
    good = Document(
        "sales_invoice",
        "o2",
        source_key="o2",
        source_date=T0,
        target_module="sales-invoice",
        target_number="SI/T-2",
        payload={"number": "SI/T-2"},
    )
    ledger.upsert([doc, good], run())
    stored = rows(ledger)
    assert stored["o1"]["status"] == stored["o2"]["status"] == "pending"
    assert "nested too deep" in str(stored["o1"]["source"]) and stored["o1"]["cleaned"]


def test_a_record_iseller_will_not_re_read_does_not_stop_the_refresh_of_the_others(ledger):
    class Flaky(FakeIseller):
        def get_orders_pages(self, order_id=None, **kw: Any):
            if order_id == "order-2":
                raise RuntimeError("iSeller answered 500")
            yield from super().get_orders_pages(order_id=order_id, **kw)

    iseller, accurate = Flaky(), FakeAccurate()
    iseller.orders = [order(1), order(2)]
    extract(SalesStream(), iseller, ledger)
    accurate.items.discard("BRG-0001")
    load(ledger, accurate, SalesStream(), iseller)  # both invoices refused: item missing
    accurate.items.add("BRG-0001")
    report = load(ledger, accurate, SalesStream(), iseller, try_number=2)  # the refresh re-reads both
    assert "SI/JKT01-1" in accurate.records["sales-invoice"]
    assert "SI/JKT01-2" in accurate.records["sales-invoice"]  # its last mapping is posted as stored
    assert not report.failed


class ShiftIseller(FakeIseller):
    """One closed register shift around T0, and the orders iSeller lists for it."""

    shift = {
        "register_shift_id": "shift-1",
        "register_id": "register-1",
        "outlet_id": OUTLET,
        "open_date": (T0 - timedelta(hours=1)).replace(tzinfo=None).isoformat(),
        "closed_date": (T0 + timedelta(hours=1)).replace(tzinfo=None).isoformat(),
    }

    def get_register_shifts(self, **_: Any):
        return [copy.deepcopy(self.shift)]


@pytest.mark.parametrize("bad_date", ["31/02/2026", "not a date", None])
def test_a_bad_order_date_fails_that_order_alone_in_a_shift_close_run(ledger, bad_date):
    """The soak's finding: the shift's order_date window filter raised on one unreadable order_date,
    failing the whole extract (every order of the shift lost, the run retried for minutes)."""
    iseller, accurate = ShiftIseller(), FakeAccurate()
    dated = order(2)
    dated["order_date"] = bad_date
    iseller.orders = [order(1), dated, order(3), order(200)]  # order 200: after the shift closed
    params = {"register_shift_id": "shift-1", "register_id": "register-1", "outlet_id": OUTLET}
    ctx = ExtractContext(SETTINGS, params, T0 - timedelta(hours=1), T0 + timedelta(hours=1), iseller, ledger)
    extract_documents(SalesStream(), ctx, ledger, run(), advance_cursor=True)
    stored = {r["source_id"]: r for r in rows(ledger).values()}
    assert set(stored) == {"order-1", "order-2", "order-3"}
    assert stored["order-1"]["status"] == stored["order-3"]["status"] == "pending"
    load(ledger, accurate, SalesStream(), iseller)
    if bad_date is None:  # no order date at all: kept (iSeller listed it for this shift), mapped as usual
        assert set(accurate.records["sales-invoice"]) == {"SI/JKT01-1", "SI/JKT01-2", "SI/JKT01-3"}
        return
    assert stored["order-2"]["status"] == "failed"
    assert "order_date" in stored["order-2"]["reason"]
    assert set(accurate.records["sales-invoice"]) == {"SI/JKT01-1", "SI/JKT01-3"}


@pytest.mark.parametrize("total", ["1e400", "NaN", "Infinity", "abc"])
def test_an_order_with_an_absurd_total_fails_alone(ledger, total):
    """The soak's finding: an order whose total_amount was "1e400" was posted from its lines."""
    iseller, accurate = FakeIseller(), FakeAccurate()
    bad = order(2)
    bad["total_amount"] = total
    good = order(1)
    good["total_amount"] = "15000"
    iseller.orders = [good, bad]
    extract(SalesStream(), iseller, ledger)
    stored = rows(ledger)
    assert stored["order-2"]["status"] == "failed"
    assert "total_amount" in stored["order-2"]["reason"]
    load(ledger, accurate, SalesStream(), iseller)
    assert set(accurate.records["sales-invoice"]) == {"SI/JKT01-1"}
