"""A big run's documents are posted while its extract still maps the later chunks (issue 13).

The extract task hands each stored chunk of a run of more than one chunk to an :class:`EarlyPoster`
(a thread with its own ledger connection and Accurate client); the load task then posts whatever is
still open and reports the run. What must hold: exactly once whoever posts; a run of one chunk is
posted by the load task alone, as before; a document the early poster cannot post stays open (never
blocked by it) and the load task re-reads, retries and reports it; an early poster that breaks, or an
extract that fails half-way, leaves nothing lost and nothing posted twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from include.iseller_accurate.ledger import Ledger, RunRef
from include.iseller_accurate.pipeline import (
    EarlyPoster,
    ExtractContext,
    Loader,
    extract_documents,
)
from include.iseller_accurate.settings import parse_settings
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.tasks import _refresher
from sandbox.demo_shop import build_demo_shop
from tests.integration.test_exactly_once_sandbox import lose_next_invoice_answer
from tests.integration.test_hostile_extract import SETTINGS, T0, FakeIseller, order, rows
from tests.integration.test_pipeline_ledger import FakeAccurate

DAG = "iseller_sales_to_accurate"
EXTRACT = RunRef(DAG, "manual__big", "extract")


class CountingAccurate(FakeAccurate):
    """FakeAccurate that counts each number it is asked to save, and on which thread."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: Counter[str] = Counter()
        self.threads: set[str] = set()

    def bulk_save(self, module: str, records: list[dict[str, Any]], *, idempotent: bool = True) -> Any:
        with self.lock:
            self.asked.update(str(r.get("number") or r.get("customerNo") or r.get("name")) for r in records)
        self.threads.add(threading.current_thread().name)
        return super().bulk_save(module, records, idempotent=idempotent)


def big_stream(chunk: int) -> SalesStream:
    stream = SalesStream()
    stream.map_chunk = chunk  # the default is 2,000 records; a few make several chunks here
    return stream


def opener(dsn: str, accurate: Any, run: RunRef = EXTRACT) -> Any:
    @contextmanager
    def open_loader() -> Iterator[Loader]:
        with Ledger.open(dsn) as own:
            yield Loader(own, accurate, run)

    return open_loader


def extract_posting(
    stream: SalesStream, iseller: FakeIseller, ledger: Ledger, dsn: str, accurate: Any, **kw: Any
) -> tuple[dict[str, Any], EarlyPoster]:
    """What the extract task does: extract, with each stored chunk handed to an early poster."""
    ctx = ExtractContext(SETTINGS, {}, T0 - timedelta(hours=1), T0 + timedelta(hours=3), iseller, ledger)
    with EarlyPoster.running(opener(dsn, accurate), **kw) as early:
        summary = extract_documents(stream, ctx, ledger, EXTRACT, advance_cursor=True, on_stored=early.stored)
        early.finish()
    return {**summary, **early.summary()}, early


def load(
    ledger: Ledger, accurate: Any, stream: SalesStream, iseller: FakeIseller, try_number: int = 1
) -> Any:
    run = RunRef(DAG, "manual__big", "load", try_number=try_number)
    return Loader(
        ledger, accurate, run, refresh=_refresher(stream, SETTINGS, iseller, ledger, run)
    ).load_run()


def statuses(ledger: Ledger) -> Counter[str]:
    found = ledger.conn.execute("SELECT status FROM sync.documents").fetchall()
    return Counter(r["status"] for r in found)


@pytest.fixture
def dsn(pg_dsn: str, ledger: Ledger) -> str:
    return pg_dsn


def test_a_run_of_one_chunk_posts_nothing_during_the_extract(ledger, dsn):
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(5)]

    summary, early = extract_posting(big_stream(2_000), iseller, ledger, dsn, accurate)

    assert accurate.calls == [] and summary["posted_early"] == 0  # the shift's size: load posts it
    assert early._thread is None  # no thread, no Accurate client opened
    report = load(ledger, accurate, big_stream(2_000), iseller)
    assert report.posted == 10 and not report.failed and not report.blocked
    assert set(accurate.asked.values()) == {1}


def test_a_big_run_is_posted_during_the_extract_exactly_once_and_load_finds_nothing_left(ledger, dsn):
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(23)]
    stream = big_stream(5)

    summary, _ = extract_posting(stream, iseller, ledger, dsn, accurate, round_size=1)

    assert summary["records"] == 23 and summary["documents"] == 46
    assert summary["posted_early"] == 46 and summary["confirmed_early"] == 0
    assert accurate.threads and all(name.startswith("ThreadPoolExecutor") for name in accurate.threads)
    assert statuses(ledger) == {"synced": 46}
    handed_by = ledger.conn.execute("SELECT DISTINCT task_id FROM sync.documents").fetchall()
    assert [r["task_id"] for r in handed_by] == ["extract"]  # the Sync Status page says who posted
    report = load(ledger, accurate, stream, iseller)
    assert report.posted == 0 and report.total == 46 and not report.failed and not report.blocked
    assert len(accurate.asked) == 46 and set(accurate.asked.values()) == {1}  # each number asked once


def test_rounds_take_whole_chunks_up_to_the_round_size(ledger, dsn):
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(12)]
    seen: list[int] = []
    real = Loader.post_stored

    def spy(self: Loader, ids: list[int]) -> None:
        seen.append(len(ids))
        real(self, ids)

    # 12 orders, 3 a chunk: 4 chunks of 6 documents; rounds of up to 12 take two chunks at most.
    Loader.post_stored = spy  # type: ignore[method-assign]
    try:
        extract_posting(big_stream(3), iseller, ledger, dsn, accurate, round_size=12)
    finally:
        Loader.post_stored = real  # type: ignore[method-assign]
    assert sum(seen) == 24 and all(n in (6, 12) for n in seen), seen
    assert statuses(ledger) == {"synced": 24}


def test_a_document_the_early_poster_cannot_post_stays_open_and_load_retries_and_reports_it(ledger, dsn):
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(10)]
    iseller.orders[1] = order(1, sku="BRG-0404")  # Accurate does not know this item
    stream = big_stream(4)

    summary, _ = extract_posting(stream, iseller, ledger, dsn, accurate)

    invoice = rows(ledger)["order-1"]
    receipt = rows(ledger, "sales_receipt")["order-1:110101"]
    assert invoice["status"] == "failed" and "BRG-0404" in invoice["reason"]
    assert receipt["status"] == "pending" and receipt["reason"] is None  # not blocked by the early poster
    assert summary["posted_early"] == 18
    report = load(ledger, accurate, stream, iseller)
    assert [r.source_id for r in report.failed] == ["order-1"]
    assert [r.source_id for r in report.blocked] == ["order-1:110101"]
    assert "BRG-0404" in report.failed[0].reason and "JKT01-1" in report.blocked[0].reason
    assert accurate.asked["SI/JKT01-1"] == 2  # tried once early, once more by load after a re-read
    assert all(count == 1 for number, count in accurate.asked.items() if number != "SI/JKT01-1")


def test_an_early_poster_that_breaks_leaves_the_rest_to_load_and_nothing_is_posted_twice(ledger, dsn):
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(12)]
    stream = big_stream(4)

    class Breaking(CountingAccurate):
        """Commits the first bulk save, loses its answer, then cannot even look numbers up."""

        def __init__(self) -> None:
            super().__init__()
            self.records, self.lose_answers = accurate.records, 1  # the same Accurate behind it

        def find_by_numbers(self, module: str, numbers: list[str], field: str = "number") -> Any:
            raise RuntimeError("Accurate is gone")

    broken = Breaking()
    summary, early = extract_posting(stream, iseller, ledger, dsn, broken)

    assert isinstance(early.error, RuntimeError) and summary["posted_early"] == 0
    assert statuses(ledger)["posting"] > 0  # claimed, outcome unknown: the load must look first
    assert summary["documents"] == 24  # the extract itself went on and stored everything
    report = load(ledger, accurate, stream, iseller)
    assert not report.failed and not report.blocked
    assert report.confirmed > 0 and report.posted + report.confirmed == 24
    assert statuses(ledger) == {"synced": 24}
    saved = Counter(number for module in accurate.records.values() for number in module)
    assert len(saved) == 24 and set(saved.values()) == {1}


def test_an_extract_that_fails_half_way_stops_posting_and_its_retry_posts_each_document_once(ledger, dsn):
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(16)]
    stream = big_stream(4)
    ctx = ExtractContext(SETTINGS, {}, T0 - timedelta(hours=1), T0 + timedelta(hours=3), iseller, ledger)
    chunks = 0

    with pytest.raises(RuntimeError, match="worker lost"):  # e.g. the task killed between two chunks
        with EarlyPoster.running(opener(dsn, accurate)) as early:

            def stored(ids: list[int]) -> None:
                nonlocal chunks
                chunks += 1
                early.stored(ids)
                if chunks == 2:
                    raise RuntimeError("worker lost")

            extract_documents(stream, ctx, ledger, EXTRACT, advance_cursor=True, on_stored=stored)
    assert ledger.cursor("sales") is None  # the window will be read again
    assert statuses(ledger)["synced"] <= 16 and sum(statuses(ledger).values()) == 16

    retry = RunRef(DAG, "manual__big", "extract", try_number=2)
    with EarlyPoster.running(opener(dsn, accurate, retry)) as early:
        extract_documents(stream, ctx, ledger, retry, advance_cursor=True, on_stored=early.stored)
    report = load(ledger, accurate, stream, iseller)
    assert not report.failed and not report.blocked and report.total == 32
    assert statuses(ledger) == {"synced": 32}
    assert len(accurate.asked) == 32 and set(accurate.asked.values()) == {1}


def test_big_run_through_both_sandboxes_is_posted_during_the_extract_exactly_once(
    sandbox_urls, hooks, ledger, dsn
):
    """Real sockets, real hooks: 300 orders in chunks of 40, a lost answer in the middle."""
    accurate_url, iseller_url = sandbox_urls
    iseller, accurate = hooks
    start = datetime.now(UTC) - timedelta(seconds=5)
    answer = httpx.post(f"{iseller_url}/_sandbox/orders/bulk", json={"count": 300, "seed": 7}, timeout=60)
    answer.raise_for_status()
    end = datetime.now(UTC) + timedelta(seconds=5)
    lose_next_invoice_answer(accurate_url)
    stream = big_stream(40)
    demo = parse_settings(build_demo_shop(42).settings())
    ctx = ExtractContext(demo, {}, start, end, iseller=iseller, ledger=ledger)
    with EarlyPoster.running(opener(dsn, accurate)) as early:
        summary = extract_documents(
            stream, ctx, ledger, EXTRACT, advance_cursor=False, on_stored=early.stored
        )
        early.finish()
    report = Loader(ledger, accurate, RunRef(DAG, "manual__big", "load")).load_run()

    assert not report.failed and not report.blocked, report.table()
    assert (
        early.report.posted + early.report.confirmed + report.posted + report.confirmed
        == summary["documents"]
    )
    assert early.report.posted > summary["documents"] // 2  # most of it went during the extract
    assert early.report.confirmed > 0  # the lost answer was looked up, not posted again
    ours = {
        r["target_number"]
        for r in ledger.conn.execute(
            "SELECT target_number FROM sync.documents WHERE data_type IN ('sales_invoice', 'sales_receipt')"
        ).fetchall()
    }
    for module in ("sales-invoice", "sales-receipt"):
        numbers = [
            str(r["number"])
            for r in httpx.get(f"{accurate_url}/_sandbox/records/{module}", timeout=30).json()["d"]
            if str(r["number"]) in ours
        ]
        assert len(numbers) == len(set(numbers)) == 300, module  # every order's, each exactly once


def test_freed_memory_is_handed_back_after_every_chunk_and_every_round(ledger, dsn, monkeypatch):
    """100,000 orders: without it the extract's peak went from 498 to 514-516 MiB (goal <= 512)."""
    import include.iseller_accurate.extract as extract_module
    import include.iseller_accurate.pipeline as pipeline_module

    calls: list[str] = []
    monkeypatch.setattr(extract_module, "give_back_memory", lambda: calls.append("chunk"))
    monkeypatch.setattr(pipeline_module, "give_back_memory", lambda: calls.append("round"))
    iseller, accurate = FakeIseller(), CountingAccurate()
    iseller.orders = [order(n) for n in range(9)]

    extract_posting(big_stream(3), iseller, ledger, dsn, accurate, round_size=1)

    assert calls.count("chunk") == 3 and calls.count("round") == 3
    assert extract_module._malloc_trim() is not None  # glibc here: the call is real, not a no-op
