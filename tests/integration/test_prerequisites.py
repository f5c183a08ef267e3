"""Prerequisites on a real PostgreSQL: transfers in order, blocked with reasons, released by a refresh;
stock opname waiting across streams for documents not even extracted yet.

Accurate is faked in memory (transfer in refused without its transfer out, unknown items refused,
stock per item and warehouse); iSeller is faked by a small in-memory store for the stream tests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from include.iseller_accurate.ledger import Document, Ledger, RunRef, connect, migrate
from include.iseller_accurate.pipeline import ExtractContext, Loader, MapContext, extract_documents
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.streams.stock_opname import StockOpnameStream
from include.iseller_accurate.streams.transfers import TransfersStream
from tests.integration.test_pipeline_ledger import FakeAccurate, Result

WAREHOUSE, KEMANG, DAGO = "outlet-wh", "outlet-kemang", "outlet-dago"
SETTINGS = parse_settings(
    {
        "outlets": {
            WAREHOUSE: {
                "name": "Gudang Pusat",
                "branch": "Kantor Pusat",
                "warehouse": "Gudang Pusat",
                "adjustment_account": "510501",
            },
            KEMANG: {
                "name": "Toko Kemang",
                "branch": "Cabang Jakarta",
                "warehouse": "Gudang Kemang",
                "adjustment_account": "510501",
                "cash_account": "110101",
            },
            DAGO: {
                "name": "Toko Dago",
                "branch": "Cabang Bandung",
                "warehouse": "Gudang Dago",
                "adjustment_account": "510501",
                "cash_account": "110101",
            },
        },
    }
)
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


class StockAccurate(FakeAccurate):
    """The fake Accurate plus item transfers, item adjustments and stock per warehouse."""

    def __init__(self) -> None:
        super().__init__()
        self.items |= {"BRG-0003", "BRG-0011"}
        self.stock: dict[tuple[str, str], Decimal] = {}
        self.saved: list[str] = []  # numbers in the order Accurate stored them

    def _save_one(self, module: str, record: dict[str, Any]) -> Result:
        if module == "item-transfer" and record.get("itemTransferType") == "TRANSFER_IN":
            out = record.get("fromItemTransferNo")
            if out not in self.records.get("item-transfer", {}):
                return Result(
                    False, messages=[f"fromItemTransferNo: Pemindahan Barang Keluar # {out} tidak ditemukan"]
                )
        result = super()._save_one(module, record)
        if result.ok:
            self.saved.append(record["number"] if "number" in record else str(result.record))
            for line in record.get("detailItem", []):
                if module == "item-transfer":
                    warehouse = record["warehouseName"]
                    sign = -1 if record["itemTransferType"] == "TRANSFER_OUT" else 1
                elif module == "item-adjustment":
                    warehouse = line["warehouseName"]
                    sign = 1 if line["itemAdjustmentType"] == "ADJUSTMENT_IN" else -1
                else:
                    warehouse = line.get("warehouseName", "")
                    sign = -1 if module == "sales-invoice" else 1
                key = (line["itemNo"], warehouse)
                self.stock[key] = self.stock.get(key, Decimal(0)) + sign * Decimal(line["quantity"])
        return result


def run(dag: str, n: int = 1, try_number: int = 1) -> RunRef:
    return RunRef(dag, f"manual__{n}", "load", try_number=try_number)


def transfer(
    number: int,
    sku: str = "BRG-0001",
    *,
    sent: datetime,
    received: datetime | None,
    quantity: str = "5",
    received_quantity: str | None = None,
    source=WAREHOUSE,
    target=DAGO,
) -> dict:
    return {
        "transfer_id": f"transfer-{number}",
        "transfer_number": f"TRF-WH01-{number:04d}",
        "type": "outlet",
        "from_outlet_id": source,
        "to_outlet_id": target,
        "from_outlet_code": "WH01",
        "to_outlet_code": "BDG01",
        "status": "received" if received else "sent",
        "sent_date": sent.isoformat(),
        "received_date": received.isoformat() if received else None,
        "created_date": sent.isoformat(),
        "modified_date": (received or sent).isoformat(),
        "products": [
            {
                "product_id": sku,
                "product_name": f"Produk {sku}",
                "sku": sku,
                "quantity": Decimal(quantity),
                "received_quantity": (Decimal(received_quantity or quantity) if received else None),
            }
        ],
    }


def transfer_docs(*transfers: dict) -> list[Document]:
    return TransfersStream().map(list(transfers), MapContext(SETTINGS))


def statuses(ledger: Ledger) -> dict[tuple[str, str], tuple[str, str | None]]:
    rows = ledger.conn.execute("SELECT data_type, source_id, status, reason FROM sync.documents").fetchall()
    return {(r["data_type"], r["source_id"]): (r["status"], r["reason"]) for r in rows}


def test_migrations_include_awaited_prerequisites(pg_dsn):
    with connect(pg_dsn, autocommit=True) as conn:
        assert "0005_awaited_prerequisites.sql" in migrate(conn)


def test_transfer_out_is_posted_before_its_transfer_in(ledger):
    accurate = StockAccurate()
    # the transfer in is extracted first (an earlier run only saw the transfer out, or rows arrive out
    # of order): the loader still posts the transfer out first
    docs = transfer_docs(transfer(1, sent=NOW, received=NOW + timedelta(hours=2)))
    ledger.upsert(list(reversed(docs)), run("transfers"))
    report = Loader(ledger, accurate, run("transfers")).load_run()
    assert not report.failed and not report.blocked and report.posted == 2
    assert accurate.saved == ["TO/TRF-WH01-0001", "TI/TRF-WH01-0001"]
    assert accurate.stock == {
        ("BRG-0001", "Gudang Pusat"): Decimal(-5),
        ("BRG-0001", "Gudang Dago"): Decimal(5),
    }


def test_transfer_in_blocked_by_failed_transfer_out_then_one_refresh_releases_both(ledger):
    accurate = StockAccurate()
    docs = transfer_docs(transfer(39, "BRG-0049", sent=NOW, received=NOW + timedelta(hours=1)))
    ledger.upsert(docs, run("transfers"))
    report = Loader(ledger, accurate, run("transfers")).load_run()
    assert [r.data_type for r in report.failed] == ["transfer_out"]
    assert [r.data_type for r in report.blocked] == ["transfer_in"]
    assert "BRG-0049 tidak ditemukan" in report.failed[0].reason
    assert report.blocked[0].reason.startswith(
        "waits for transfer out TO/TRF-WH01-0039, which failed:"
        " Accurate refused transfer out TO/TRF-WH01-0039:"
    )
    assert "BRG-0049" in report.blocked[0].reason
    assert accurate.calls == [("item-transfer", 1)]  # the transfer in was never sent to be refused

    accurate.items.add("BRG-0049")  # the repair, in Accurate
    report = Loader(ledger, accurate, run("transfers", try_number=2)).load_run()  # the refresh
    assert not report.failed and not report.blocked and report.posted == 2
    assert accurate.saved == ["TO/TRF-WH01-0039", "TI/TRF-WH01-0039"]


def test_repairing_the_first_document_releases_the_chain_of_later_runs_oldest_first(ledger):
    accurate = StockAccurate()
    first = transfer(1, "BRG-0049", sent=NOW, received=NOW + timedelta(hours=1))
    later = transfer(
        2,
        "BRG-0011",
        sent=NOW + timedelta(hours=2),
        received=NOW + timedelta(hours=3),
        source=DAGO,
        target=KEMANG,
    )
    # the stock take of Dago comes after both transfers: it waits for them
    take_doc = _opname_doc(
        DAGO,
        NOW + timedelta(hours=4),
        after=[("transfer_out", "transfer-1"), ("transfer_in", "transfer-1"), ("transfer_out", "transfer-2")],
    )
    ledger.upsert(transfer_docs(first), run("transfers", 1))
    Loader(ledger, accurate, run("transfers", 1)).load_run()
    ledger.upsert(transfer_docs(later), run("transfers", 2))
    Loader(ledger, accurate, run("transfers", 2)).load_run()
    ledger.upsert([take_doc], run("opname", 1))
    report = Loader(ledger, accurate, run("opname", 1)).load_run()
    assert report.blocked[0].reason.startswith("waits for transfer out TO/TRF-WH01-0001, which failed:")
    assert "(and 1 more earlier documents not in Accurate yet)" in report.blocked[0].reason
    assert statuses(ledger)[("transfer_out", "transfer-2")][0] == "synced"

    accurate.items.add("BRG-0049")
    report = Loader(ledger, accurate, run("transfers", 1, try_number=2)).load_run()  # refresh the first run
    assert not report.failed and not report.blocked
    assert accurate.saved == [
        "TO/TRF-WH01-0002",
        "TI/TRF-WH01-0002",
        "TO/TRF-WH01-0001",
        "TI/TRF-WH01-0001",
        "SO/ST-1",
    ]
    assert {s for s, _ in statuses(ledger).values()} == {"synced"}


def _opname_doc(outlet: str, when: datetime, *, after, notes=None, number: str = "ST-1") -> Document:
    warehouse = SETTINGS.outlets[outlet].warehouse
    return Document(
        "stock_opname",
        f"take-{number}",
        source_key=f"take-{number}",
        source_date=when,
        target_module="item-adjustment",
        target_number=f"SO/{number}",
        outlet_id=outlet,
        payload={
            "number": f"SO/{number}",
            "adjustmentAccountNo": "510501",
            "detailItem": [
                {
                    "itemAdjustmentType": "ADJUSTMENT_OUT",
                    "itemNo": "BRG-0011",
                    "quantity": Decimal(1),
                    "warehouseName": warehouse,
                }
            ],
        },
        after=list(after),
        waiting_notes=dict(notes or {}),
    )


def _invoice(order: str, outlet: str, when: datetime, *, status: str = "pending") -> Document:
    return Document(
        "sales_invoice",
        order,
        source_key=order,
        source_date=when,
        target_module="sales-invoice",
        target_number=f"SI/{order}",
        source_number=f"#{order}",
        outlet_id=outlet,
        payload=None
        if status == "skipped"
        else {
            "number": f"SI/{order}",
            "customerNo": "UMUM",
            "detailItem": [
                {
                    "itemNo": "BRG-0011",
                    "quantity": Decimal(2),
                    "unitPrice": Decimal(10),
                    "warehouseName": SETTINGS.outlets[outlet].warehouse,
                }
            ],
        },
        status=status,
        reason="voided" if status == "skipped" else None,
    )


def test_stock_opname_waits_for_a_sale_not_extracted_yet_and_the_sales_run_releases_it(ledger):
    accurate = StockAccurate()
    key = ("sales_invoice", "JKT01-1093")
    take = _opname_doc(
        KEMANG,
        NOW,
        after=[key],
        notes={
            key: "sales invoice SI/JKT01-1093 (order #JKT01-1093),"
            " which the sales sync has not read from iSeller yet"
        },
    )
    ledger.upsert([take], run("opname"))
    report = Loader(ledger, accurate, run("opname")).load_run()
    assert [r.data_type for r in report.blocked] == ["stock_opname"]
    assert report.blocked[0].reason == (
        "waits for sales invoice SI/JKT01-1093 (order #JKT01-1093),"
        " which the sales sync has not read from iSeller yet"
    )
    assert ledger.released() == []

    # The sales sync reads the order later; storing it links the waiting stock opname to it.
    ledger.upsert([_invoice("JKT01-1093", KEMANG, NOW - timedelta(hours=1))], run("sales"))
    assert ledger.conn.execute("SELECT count(*) AS n FROM sync.awaited_prerequisites").fetchone()["n"] == 0
    report = Loader(ledger, accurate, run("sales")).load_run()  # the sales load posts both, in order
    assert accurate.saved == ["SI/JKT01-1093", "SO/ST-1"]
    assert {s for s, _ in statuses(ledger).values()} == {"synced"}
    assert accurate.stock[("BRG-0011", "Gudang Kemang")] == Decimal(-3)
    # the sales run is now responsible for the stock opname it posted (its grid shows it)
    assert report.total == 2


def test_a_skipped_sale_satisfies_an_ordering_prerequisite_but_a_failed_one_blocks(ledger):
    accurate = StockAccurate()
    ledger.upsert([_invoice("void", KEMANG, NOW - timedelta(hours=2), status="skipped")], run("sales"))
    bad = _invoice("bad", KEMANG, NOW - timedelta(hours=1))
    bad.payload["detailItem"][0]["itemNo"] = "BRG-9999"
    ledger.upsert([bad], run("sales"))
    Loader(ledger, accurate, run("sales")).load_run()
    ledger.upsert(
        [_opname_doc(KEMANG, NOW, after=[("sales_invoice", "void"), ("sales_invoice", "bad")])], run("opname")
    )
    report = Loader(ledger, accurate, run("opname")).load_run()
    assert report.blocked[0].reason.startswith("waits for sales invoice SI/bad, which failed:")
    accurate.items.add("BRG-9999")
    report = Loader(ledger, accurate, run("sales", try_number=2)).load_run()
    assert accurate.saved == ["SI/bad", "SO/ST-1"]


def test_a_remapped_document_gets_the_prerequisites_of_its_new_mapping(ledger):
    accurate = StockAccurate()
    ledger.upsert([_opname_doc(KEMANG, NOW, after=[("sales_invoice", "gone")])], run("opname"))
    assert Loader(ledger, accurate, run("opname")).load_run().blocked
    # refreshed: the order is no longer a sale before the stock take (e.g. voided and left out)
    ledger.upsert([_opname_doc(KEMANG, NOW, after=[])], run("opname"))
    report = Loader(ledger, accurate, run("opname", try_number=2)).load_run()
    assert not report.blocked and accurate.saved == ["SO/ST-1"]


def test_storing_and_awaiting_at_the_same_moment_never_lose_the_link(ledger, pg_dsn):
    # Many stock opname documents await sales that other connections store concurrently.
    takes = [
        _opname_doc(KEMANG, NOW, after=[("sales_invoice", f"o{i}")], number=f"ST-{i}") for i in range(40)
    ]
    sales = [_invoice(f"o{i}", KEMANG, NOW - timedelta(minutes=1)) for i in range(40)]

    def store(documents: list[Document], dag: str) -> None:
        with connect(pg_dsn, autocommit=True) as conn:
            other = Ledger(conn)
            for doc in documents:
                other.upsert([doc], run(dag))

    threads = [
        threading.Thread(target=store, args=(takes, "opname")),
        threading.Thread(target=store, args=(sales, "sales")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    awaited = ledger.conn.execute("SELECT count(*) AS n FROM sync.awaited_prerequisites").fetchone()["n"]
    links = ledger.conn.execute("SELECT count(*) AS n FROM sync.prerequisites").fetchone()["n"]
    assert (awaited, links) == (0, 40)


# --- the stock opname stream against an in-memory iSeller ------------------------------------------


class FakeIseller:
    """The reads the transfer and stock opname streams use, over in-memory records."""

    def __init__(self) -> None:
        self.orders: list[dict] = []
        self.transfers: list[dict] = []
        self.takes: list[dict] = []
        self.products = [{"sku": "BRG-0011", "buying_price": Decimal("9000.00")}]

    @staticmethod
    def _at(record: dict, name: str) -> datetime:
        return datetime.fromisoformat(record[name])

    def get_orders_pages(self, created_after=None, created_before=None, outlet_id=None, **_: Any):
        orders = [
            o
            for o in self.orders
            if (not outlet_id or o["outlet_id"] == outlet_id)
            and (created_after is None or self._at(o, "order_date") >= created_after)
            and (created_before is None or self._at(o, "order_date") < created_before)
        ]
        yield {"orders": orders, "refunded_orders": [], "has_next_item": False}

    def get_transfers(
        self,
        transfer_type=None,
        outlet_id=None,
        created_before=None,
        modified_after=None,
        modified_before=None,
        transfer_id=None,
        **_: Any,
    ):
        return [
            t
            for t in self.transfers
            if (not outlet_id or outlet_id in (t["from_outlet_id"], t["to_outlet_id"]))
            and (transfer_id is None or t["transfer_id"] == transfer_id)
            and (created_before is None or self._at(t, "sent_date") < created_before)
            and (modified_after is None or self._at(t, "modified_date") >= modified_after)
            and (modified_before is None or self._at(t, "modified_date") < modified_before)
        ]

    def get_stock_takes(
        self, created_after=None, created_before=None, outlet_id=None, stock_take_id=None, **_: Any
    ):
        return [
            t
            for t in self.takes
            if (not outlet_id or t["outlet_id"] == outlet_id)
            and (stock_take_id is None or t["stock_take_id"] == stock_take_id)
            and (created_after is None or self._at(t, "stock_take_date") >= created_after)
            and (created_before is None or self._at(t, "stock_take_date") < created_before)
        ]

    def get_products(self, **_: Any):
        return list(self.products)

    def order(self, number: int, when: datetime, outlet=KEMANG, status="completed") -> dict:
        order = {
            "order_id": f"order-{number}",
            "order_reference": f"#JKT01-{number}",
            "status": status,
            "order_date": when.isoformat(),
            "closed_date": when.isoformat(),
            "outlet_id": outlet,
            "modified_date": when.isoformat(),
            "order_details": [
                {
                    "order_detail_id": "l1",
                    "product_name": "Produk",
                    "sku": "BRG-0011",
                    "quantity": Decimal(1),
                    "base_price": Decimal(10),
                    "discount_amount": Decimal(0),
                    "tax_percentage": Decimal(0),
                }
            ],
            "transactions": [],
        }
        self.orders.append(order)
        return order

    def take(self, number: int, when: datetime, outlet=KEMANG, system="10", counted="8") -> dict:
        take = {
            "stock_take_id": f"take-{number}",
            "stock_take_number": f"ST-JKT01-{number:04d}",
            "outlet_id": outlet,
            "stock_take_date": when.isoformat(),
            "status": "completed",
            "lines": [
                {
                    "product_id": "p",
                    "product_name": "Produk",
                    "sku": "BRG-0011",
                    "system_quantity": Decimal(system),
                    "counted_quantity": Decimal(counted),
                }
            ],
        }
        self.takes.append(take)
        return take


def _extract(stream, iseller, ledger, start, end, dag, n=1):
    ctx = ExtractContext(SETTINGS, {}, start, end, iseller=iseller, ledger=ledger)
    return extract_documents(stream, ctx, ledger, run(dag, n), advance_cursor=True)


def _after_of(ledger: Ledger, take_id: str) -> set[str]:
    rows = ledger.conn.execute(
        "SELECT q.source_id FROM sync.prerequisites p JOIN sync.documents d ON d.id = p.document_id"
        " JOIN sync.documents q ON q.id = p.requires_id WHERE d.source_id = %s"
        " UNION ALL SELECT a.source_id FROM sync.awaited_prerequisites a JOIN sync.documents d"
        " ON d.id = a.document_id WHERE d.source_id = %s",
        (take_id, take_id),
    ).fetchall()
    return {r["source_id"] for r in rows}


def test_stream_stock_take_waits_for_the_outlets_earlier_sales_and_transfers_only(ledger):
    iseller, accurate = FakeIseller(), StockAccurate()
    iseller.order(1000, NOW - timedelta(days=3))  # before the sync's history: taken as in Accurate already
    iseller.order(1001, NOW - timedelta(hours=5))
    iseller.order(1002, NOW - timedelta(hours=4), outlet=DAGO)  # another outlet
    iseller.order(1003, NOW + timedelta(minutes=5))  # after the count
    iseller.order(1004, NOW - timedelta(hours=3), status="void")  # moves nothing
    iseller.order(1005, NOW)  # the very second of the count (iSeller has whole seconds): counted after it
    iseller.transfers.append(
        transfer(
            7,
            "BRG-0011",
            sent=NOW - timedelta(hours=6),
            received=NOW - timedelta(hours=2),
            source=DAGO,
            target=KEMANG,
        )
    )
    iseller.take(1, NOW)

    _extract(
        StockOpnameStream(), iseller, ledger, NOW - timedelta(minutes=1), NOW + timedelta(minutes=1), "opname"
    )
    assert _after_of(ledger, "take-1") == {"order-1001", "order-1005", "transfer-7"}
    report = Loader(ledger, accurate, run("opname")).load_run()
    assert report.blocked[0].reason == (
        "waits for sales invoice SI/JKT01-1001 (order #JKT01-1001), which the sales sync"
        " (iseller_sales_to_accurate) has not read from iSeller yet"
        " (and 2 more earlier documents not read from iSeller yet)"
    )

    # the other syncs run: the transfers first (the stock take still waits for the sale), then sales
    _extract(TransfersStream(), iseller, ledger, NOW - timedelta(days=1), NOW, "transfers")
    Loader(ledger, accurate, run("transfers")).load_run()
    assert statuses(ledger)[("stock_opname", "take-1")][0] == "blocked"
    _extract(SalesStream(), iseller, ledger, NOW - timedelta(days=1), NOW + timedelta(seconds=1), "sales")
    Loader(ledger, accurate, run("sales")).load_run()
    assert statuses(ledger)[("stock_opname", "take-1")][0] == "synced"
    assert accurate.saved[-1] == "SO/ST-JKT01-0001"
    adjustment = accurate.records["item-adjustment"]["SO/ST-JKT01-0001"]
    assert adjustment["detailItem"][0]["quantity"] == Decimal(2)
    assert adjustment["detailItem"][0]["unitCost"] == Decimal("9000.00")
    # overlapping windows later: what is already in Accurate is not read again
    day = (NOW - timedelta(days=1), NOW)
    assert _extract(TransfersStream(), iseller, ledger, *day, "transfers", 2)["records"] == 0
    window = (NOW - timedelta(minutes=1), NOW + timedelta(minutes=1))
    assert _extract(StockOpnameStream(), iseller, ledger, *window, "opname", 2)["records"] == 0


def test_stream_next_stock_take_looks_back_only_to_the_previous_one(ledger):
    iseller, accurate = FakeIseller(), StockAccurate()
    ledger.upsert(
        [_invoice("early", KEMANG, NOW - timedelta(days=5))], run("sales")
    )  # the history starts here
    Loader(ledger, accurate, run("sales")).load_run()
    iseller.order(2001, NOW - timedelta(days=4))
    iseller.take(1, NOW - timedelta(days=3))
    iseller.order(2002, NOW - timedelta(days=2))
    iseller.take(2, NOW)
    # the first stock take was never read by a stock opname run: the second one brings it along
    _extract(
        StockOpnameStream(), iseller, ledger, NOW - timedelta(minutes=1), NOW + timedelta(minutes=1), "opname"
    )
    assert _after_of(ledger, "take-1") == {"order-2001"}
    assert _after_of(ledger, "take-2") == {"take-1", "order-2002"}
    assert len(Loader(ledger, accurate, run("opname")).load_run().blocked) == 2
    _extract(SalesStream(), iseller, ledger, NOW - timedelta(days=6), NOW, "sales", 2)
    Loader(ledger, accurate, run("sales", 2)).load_run()
    # each stock take after its own sales, the second after the first
    assert accurate.saved == [
        "SI/early",
        "SI/JKT01-2001",
        "SI/JKT01-2002",
        "SO/ST-JKT01-0001",
        "SO/ST-JKT01-0002",
    ]


def test_stream_refresh_of_a_transfer_reads_it_again_and_ignores_other_streams_rows(ledger):
    iseller = FakeIseller()
    iseller.transfers.append(transfer(3, sent=NOW - timedelta(hours=1), received=None))
    stream = TransfersStream()
    ctx = ExtractContext(SETTINGS, {}, NOW, NOW, iseller=iseller, ledger=ledger)
    assert [t["transfer_id"] for t in stream.refetch(ctx, ["transfer-3"])] == ["transfer-3"]
    assert stream.owns("transfer_in") and not stream.owns("stock_opname")
    assert StockOpnameStream().owns("stock_opname") and not StockOpnameStream().owns("sales_invoice")


def test_a_batch_of_stock_takes_reads_each_outlets_history_once_with_the_same_prerequisites(ledger):
    # 30 stock takes at one outlet, each after a sale of its own: per stock take, the outlet's history
    # was read again (30 reads of GetOrders and GetTransfers); a 100,000-document soak spent over 20
    # minutes in that. Each stock take still waits for exactly what it waited for before.
    class CountingIseller(FakeIseller):
        def __init__(self) -> None:
            super().__init__()
            self.reads = {"orders": 0, "transfers": 0}

        def get_orders_pages(self, *args: Any, **kwargs: Any):
            self.reads["orders"] += 1
            return super().get_orders_pages(*args, **kwargs)

        def get_transfers(self, *args: Any, **kwargs: Any):
            self.reads["transfers"] += 1
            return super().get_transfers(*args, **kwargs)

    iseller = CountingIseller()
    takes = 30
    for number in range(takes):
        when = NOW - timedelta(hours=takes - number)
        iseller.order(3000 + number, when - timedelta(minutes=30))
        iseller.take(100 + number, when)
    _extract(
        StockOpnameStream(),
        iseller,
        ledger,
        NOW - timedelta(hours=takes + 1),
        NOW + timedelta(minutes=1),
        "opname",
    )
    assert iseller.reads == {"orders": 1, "transfers": 1}
    assert _after_of(ledger, "take-100") == {"order-3000"}
    for number in range(1, takes):
        assert _after_of(ledger, f"take-{100 + number}") == {f"take-{99 + number}", f"order-{3000 + number}"}
