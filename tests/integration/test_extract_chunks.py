"""Extract maps and stores a chunk of records at a time (issue 13: the extract task's memory).

100,000 orders mapped in one go took the extract task to 2 GiB: every order's documents and the
line table of every order were held at once. Now only one chunk's documents are held; the guarantees
stay those of the whole batch: a record whose mapping raises fails alone, every record read has a
ledger row, a customer several chunks name is one row posted once, and the counts are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from include.iseller_accurate.extract import MAP_CHUNK
from include.iseller_accurate.ledger import Document, Ledger
from include.iseller_accurate.pipeline import (
    ExtractContext,
    MapContext,
    Stream,
    extract_documents,
    map_records,
)
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.streams.stock_opname import StockOpnameStream
from include.iseller_accurate.streams.transfers import TransfersStream
from tests.integration.test_hostile_extract import (
    SETTINGS,
    T0,
    FakeIseller,
    extract,
    load,
    order,
    rows,
    run,
)
from tests.integration.test_pipeline_ledger import FakeAccurate


class Numbered(Stream):
    """Records ``r-0`` .. ``r-<n-1>``, one document each; remembers every batch ``map`` was given."""

    name = "numbered"
    data_types = ("numbered",)
    record_name = "record"

    def __init__(self, count: int, broken: Sequence[str] = ()) -> None:
        self.count = count
        self.broken = set(broken)
        self.batches: list[int] = []

    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        return [{"id": f"r-{n}"} for n in range(self.count)]

    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
        self.batches.append(len(records))
        documents = []
        for record in records:
            if record["id"] in self.broken:
                raise ValueError(f"amount of {record['id']} is not a number")
            documents.append(
                Document(
                    "numbered",
                    record["id"],
                    source_key=record["id"],
                    source_date=T0,
                    target_module="numbered",
                    target_number=None,
                    payload={"record": record["id"]},
                )
            )
        return documents


def extract_numbered(stream: Numbered, ledger: Ledger) -> dict[str, Any]:
    ctx = ExtractContext(SETTINGS, {}, T0, T0, None, ledger)
    return extract_documents(stream, ctx, ledger, run(), advance_cursor=True)


def stored(ledger: Ledger, data_type: str = "numbered") -> dict[str, dict[str, Any]]:
    return rows(ledger, data_type)


def test_the_default_chunk_is_2000_records_and_batch_wide_streams_opt_out():
    assert MAP_CHUNK == 2_000 and SalesStream().map_chunk == MAP_CHUNK
    # both order their records across the batch (sent order, count order): mapped whole
    assert TransfersStream.map_chunk is None and StockOpnameStream.map_chunk is None


def test_5000_records_are_mapped_2000_at_a_time_and_every_one_is_stored(ledger):
    stream = Numbered(5_000)
    summary = extract_numbered(stream, ledger)
    assert stream.batches == [2_000, 2_000, 1_000]
    assert max(stream.batches) == 2_000
    assert len(stored(ledger)) == 5_000
    assert summary["records"] == 5_000 and summary["documents"] == 5_000
    assert summary["mapped_pending"] == 5_000
    assert ledger.cursor("numbered") == T0


def test_a_record_that_breaks_mapping_in_the_second_chunk_fails_alone(ledger):
    stream = Numbered(5_000, broken=["r-3500"])
    summary = extract_numbered(stream, ledger)
    # only the chunk that broke is mapped again record by record; the others stay whole
    assert stream.batches[:3] == [2_000, 2_000, 1]
    assert stream.batches.count(1) == 2_000 and stream.batches[-1] == 1_000
    documents = stored(ledger)
    assert len(documents) == 5_000
    bad = documents["r-3500"]
    assert bad["status"] == "failed"
    assert bad["reason"] == (
        "record r-3500: could not be read (ValueError: amount of r-3500 is not a number); check it in iSeller"
    )
    assert {k for k, row in documents.items() if row["status"] != "pending"} == {"r-3500"}
    assert summary == {
        "records": 5_000,
        "documents": 5_000,
        "window_start": T0.isoformat(),
        "window_end": T0.isoformat(),
        "mapped_failed": 1,
        "mapped_pending": 4_999,
    }


def test_a_stream_that_opts_out_is_mapped_as_one_batch(ledger):
    stream = Numbered(5_000)
    stream.map_chunk = None
    summary = extract_numbered(stream, ledger)
    assert stream.batches == [5_000] and summary["documents"] == 5_000


def test_a_chunk_that_loses_a_record_stops_the_extract_before_the_cursor_moves(ledger):
    class Losing(Numbered):
        def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
            documents = super().map(records, ctx)
            return [doc for doc in documents if doc.source_id != "r-2500"]

        def ignores(self, record: Any) -> bool:
            return False

    stream = Losing(5_000)
    # map_records gives the lost record a failed row; a ledger that then drops it is caught
    original = Ledger.upsert

    def dropping(self: Ledger, documents: Sequence[Document], run_ref: Any) -> dict:
        return original(self, [d for d in documents if d.source_key != "r-2500"], run_ref)

    ledger.upsert = dropping.__get__(ledger)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="numbered: 1 documents and 1 source records have no ledger row"):
        extract_numbered(stream, ledger)
    assert ledger.cursor("numbered") is None
    # the chunk that lost it stops the run: the third is never mapped; a retry stores everything
    assert stream.batches == [2_000, 2_000] and len(stored(ledger)) == 3_999


def customer_order(n: int, customer: str | None) -> dict[str, Any]:
    raw = order(n)
    if customer:
        raw.update(customer_id=customer, external_customer_id=customer.upper(), customer_first_name="Budi")
    return raw


def test_a_customer_named_in_three_chunks_is_one_row_posted_once_with_the_same_counts(ledger):
    iseller, accurate = FakeIseller(), FakeAccurate()
    iseller.orders = [
        customer_order(1, "cust-1"),
        customer_order(2, None),
        customer_order(3, "cust-1"),  # second chunk
        customer_order(4, "cust-2"),
        customer_order(5, "cust-1"),  # third chunk
    ]
    whole = SalesStream()
    records = whole.group_orders(iseller.get_orders_pages())
    expected = map_records(whole, records, MapContext(SETTINGS))
    stream = SalesStream()
    stream.map_chunk = 2
    summary = extract(stream, iseller, ledger)
    counts = {
        "documents": len(expected),
        "mapped_pending": sum(doc.status == "pending" for doc in expected),
    }
    assert summary["records"] == 5
    assert {k: summary[k] for k in counts} == counts == {"documents": 12, "mapped_pending": 12}
    customers = stored(ledger, "customer")
    assert set(customers) == {"cust-1", "cust-2"}
    assert customers["cust-1"]["source_key"] == "order-1"  # its first mapping stands
    linked = ledger.conn.execute(
        "SELECT count(*) AS n FROM sync.run_documents WHERE document_id = %s", (customers["cust-1"]["id"],)
    ).fetchone()
    assert linked["n"] == 1
    report = load(ledger, accurate, SalesStream(), iseller)
    assert not report.failed and not report.blocked
    assert set(accurate.records["customer"]) == {"CUST-1", "CUST-2"}
    assert sum(n for module, n in accurate.calls if module == "customer") == 2  # each posted once
    invoices = accurate.records["sales-invoice"]
    assert [invoices[f"SI/JKT01-{n}"]["customerNo"] for n in (1, 3, 5)] == ["CUST-1"] * 3
    assert all(row["status"] == "synced" for row in stored(ledger, "customer").values())


class Remembering(Numbered):
    """Keeps the list it read, and notes how many of its records are still held at each ``map``."""

    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        self.read = super().extract(ctx)
        self.held: list[int] = []
        return self.read

    def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
        self.held.append(sum(record is not None for record in self.read))
        return super().map(records, ctx)


def test_the_records_of_a_stored_chunk_are_let_go_before_the_next_is_mapped(ledger):
    # 100,000 orders: the records read are most of what is left of the extract's memory; those of
    # a stored chunk are released, so the next chunks reuse their memory
    stream = Remembering(5_000)
    summary = extract_numbered(stream, ledger)
    assert stream.held == [5_000, 3_000, 1_000]
    assert summary["records"] == 5_000 and len(stored(ledger)) == 5_000
