"""The Accurate rate limiters: at most 8 starts in any 1-second window and 8 requests in flight.

``PostgresRateLimiter`` runs against a real PostgreSQL (``pg_dsn``) from several processes, as the
workers of a deployment would.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from include.iseller_accurate.clients import LocalRateLimiter, PostgresRateLimiter
from include.iseller_accurate.clients.ratelimit import MIGRATION_FILE

Interval = tuple[float, float]  # (start, end) wall-clock seconds of one request


def max_starts_per_second(intervals: Sequence[Interval]) -> int:
    """The most request starts inside any half-open 1-second window."""
    starts = sorted(start for start, _ in intervals)
    best = 0
    for i, start in enumerate(starts):
        j = i
        while j < len(starts) and starts[j] < start + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def max_concurrent(intervals: Sequence[Interval]) -> int:
    """The most requests running at once (an end at the same instant as a start frees first)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


def run_requests(
    limiter: PostgresRateLimiter | LocalRateLimiter, count: int, durations: tuple[float, float], seed: int
) -> list[Interval]:
    rng = random.Random(seed)
    intervals = []
    for _ in range(count):
        with limiter.slot():
            start = time.time()
            time.sleep(rng.uniform(*durations))
            end = time.time()
        intervals.append((start, end))
    return intervals


def _pg_worker(
    dsn: str,
    count: int,
    threads: int,
    durations: tuple[float, float],
    kwargs: dict[str, float],
    results: Any,
) -> None:
    """One worker process: ``count`` requests over ``threads`` threads sharing one limiter, like a task."""
    limiter = PostgresRateLimiter(dsn, **kwargs)  # type: ignore[arg-type]
    intervals: list[Interval] = []
    lock = threading.Lock()

    def work(n: int, share: int) -> None:
        done = run_requests(limiter, share, durations, seed=os.getpid() * 100 + n)
        with lock:
            intervals.extend(done)

    shares = [count // threads + (1 if n < count % threads else 0) for n in range(threads)]
    pool = [threading.Thread(target=work, args=(n, share)) for n, share in enumerate(shares)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    limiter.close()
    results.put(intervals)


def run_processes(
    dsn: str, processes: int, count: int, threads: int, durations: tuple[float, float], **kwargs: float
) -> list[Interval]:
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[list[Interval]] = ctx.Queue()
    workers = [
        ctx.Process(target=_pg_worker, args=(dsn, count, threads, durations, kwargs, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    intervals: list[Interval] = []
    for _ in workers:
        intervals.extend(results.get(timeout=60))
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    return intervals


# -- LocalRateLimiter ----------------------------------------------------------------------------------
def test_local_limiter_spaces_starts_and_caps_in_flight_across_threads() -> None:
    limiter = LocalRateLimiter()  # 8 per second, 8 in flight
    intervals: list[Interval] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        done = run_requests(limiter, 1, (1.1, 1.5), seed)
        with lock:
            intervals.extend(done)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(14)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(intervals) == 14
    assert max_starts_per_second(intervals) <= 8
    assert max_concurrent(intervals) == 8  # the 9th waited for a free slot, not only for its start time


def test_local_limiter_in_flight_cap_binds() -> None:
    limiter = LocalRateLimiter(rate=1000, max_in_flight=3)
    intervals: list[Interval] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        done = run_requests(limiter, 2, (0.1, 0.1), seed)
        with lock:
            intervals.extend(done)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max_concurrent(intervals) == 3


def test_local_limiter_releases_on_error() -> None:
    limiter = LocalRateLimiter(rate=1000, max_in_flight=1)
    with pytest.raises(RuntimeError), limiter.slot():
        raise RuntimeError("request failed")
    with limiter.slot():  # would block for ever if the slot leaked
        pass


# -- PostgresRateLimiter -------------------------------------------------------------------------------
def test_migration_is_idempotent_and_seeds_eight_slots(pg_dsn: str) -> None:
    limiter = PostgresRateLimiter(pg_dsn)
    limiter.ensure_schema()
    limiter.ensure_schema()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(MIGRATION_FILE.read_text())  # the lead's migration runner applies the same file
        slots = conn.execute("SELECT count(*) FROM sync.rate_limit_lease WHERE name = 'accurate'").fetchone()
        buckets = conn.execute("SELECT count(*) FROM sync.rate_limit_bucket").fetchone()
    assert slots == (8,) and buckets == (1,)


def test_limiter_creates_its_tables_when_the_migration_never_ran(pg_dsn: str) -> None:
    limiter = PostgresRateLimiter(pg_dsn, name="other", max_in_flight=3)
    with limiter.slot():
        pass
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*), count(holder) FROM sync.rate_limit_lease WHERE name = 'other'"
        ).fetchone()
    assert rows == (3, 0)  # seeded for its own name, and the slot was released
    limiter.close()
    assert "password" not in repr(limiter) and pg_dsn not in repr(limiter)


def test_three_processes_share_eight_per_second_and_eight_in_flight(pg_dsn: str) -> None:
    PostgresRateLimiter(pg_dsn).ensure_schema()
    intervals = run_processes(pg_dsn, processes=3, count=10, threads=5, durations=(0.2, 1.5))
    assert len(intervals) == 30
    assert max_starts_per_second(intervals) <= 8
    assert max_concurrent(intervals) <= 8


def test_in_flight_cap_binds_across_processes(pg_dsn: str) -> None:
    PostgresRateLimiter(pg_dsn, max_in_flight=4).ensure_schema()
    intervals = run_processes(
        pg_dsn, processes=3, count=4, threads=2, durations=(0.25, 0.25), rate=500, max_in_flight=4
    )
    assert max_concurrent(intervals) == 4


def _crashing_holder(dsn: str, held: Any) -> None:
    limiter = PostgresRateLimiter(dsn, max_in_flight=1, lease_seconds=2)
    slot = limiter.slot()  # keep a reference: a collected context manager would release the slot
    slot.__enter__()
    held.set()
    os._exit(0)  # dies holding the slot: no release, no cleanup


def test_an_expired_lease_of_a_crashed_worker_is_reclaimed(pg_dsn: str) -> None:
    ctx = multiprocessing.get_context("fork")
    held = ctx.Event()
    crashing = ctx.Process(target=_crashing_holder, args=(pg_dsn, held))
    crashing.start()
    assert held.wait(timeout=30)
    crashing.join(timeout=10)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM expires_at - clock_timestamp())::float8 FROM sync.rate_limit_lease"
            " WHERE name = 'accurate' AND slot = 1 AND holder IS NOT NULL"
        ).fetchone()
    assert row is not None  # the dead worker still holds the only slot
    asked, remaining = time.monotonic(), row[0]
    limiter = PostgresRateLimiter(pg_dsn, max_in_flight=1, lease_seconds=1, poll_interval=0.02)
    with limiter.slot():
        waited = time.monotonic() - asked
    assert remaining - 0.1 <= waited < remaining + 2
    limiter.close()


def test_a_late_release_does_not_free_a_reclaimed_slot(pg_dsn: str) -> None:
    slow = PostgresRateLimiter(pg_dsn, max_in_flight=1, lease_seconds=0.5, poll_interval=0.02)
    other = PostgresRateLimiter(pg_dsn, max_in_flight=1, lease_seconds=30, poll_interval=0.02)
    stuck = slow.slot()
    stuck.__enter__()
    with other.slot():  # after 0.5 s the stuck lease has expired and is taken over
        stuck.__exit__(None, None, None)  # the slow holder finally finishes
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            holder = conn.execute("SELECT holder FROM sync.rate_limit_lease WHERE slot = 1").fetchone()
        assert holder is not None and holder[0] is not None  # still held by ``other``
    slow.close()
    other.close()
