"""Sales-sync throughput: 10,000 iSeller orders through the whole pipeline into Accurate.

Starts a throwaway PostgreSQL (the ledger and the rate limiter live there, as in production) and both
sandboxes on free ports, creates the orders in the iSeller sandbox, then:

1. baseline: the Accurate limit as this machine reaches it, measured in the same run: bulk-saves of
   100 ready-made invoices sent as fast as the deployment-wide rate limiter allows (8 requests/s,
   8 in flight) -> documents per second;
2. the pipeline: the ``extract`` task's work (read orders from iSeller, map with pandas, store in the
   ledger 2,000 orders at a time, and post each stored chunk while the next is mapped, as the task
   does for a run of more than one chunk) and the ``load`` task's work (post what is still open,
   exactly once), each in its own process like an Airflow task, timing both and reading their peak
   memory. ``BENCH_SEQUENTIAL=1``: the extract posts nothing and load posts everything (the design
   before 2026-12-01), to compare on the same machine.

Prints documents per second through the pipeline, the ratio to the baseline (goal >= 0.97x), and
the peak RSS of each task process (goal <= 512 MiB at 100,000 orders).

Run: ``python bench/bench_sales_sync.py [--orders 10000]`` from the repository root (default
``$BENCH_ORDERS`` or 2,000; the goals of issue 13 are stated for 10,000 orders, memory at 100,000).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import Figure, emit, env_int  # noqa: E402
from tests.pg import TempPostgres, free_port  # noqa: E402
from tests.sandbox_process import run_sandbox  # noqa: E402

ACCURATE_TOKEN = "sandbox-api-token"
ACCURATE_SECRET = "sandbox-signature-secret"


def environment(pg: TempPostgres, accurate_port: int, iseller_port: int) -> dict[str, str]:
    from sandbox.demo_shop import build_demo_shop

    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "AIRFLOW_CONN_SYNC_DB": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": pg.port,
                    "login": "postgres",
                    "schema": "postgres",
                }
            ),
            "AIRFLOW_CONN_ACCURATE_API": json.dumps(
                {
                    "conn_type": "http",
                    "host": f"http://127.0.0.1:{accurate_port}",
                    "password": ACCURATE_TOKEN,
                    "extra": {"signature_secret": ACCURATE_SECRET},
                }
            ),
            "AIRFLOW_CONN_ISELLER_API": json.dumps(
                {
                    "conn_type": "http",
                    "host": f"http://127.0.0.1:{iseller_port}",
                    "login": "sandbox-client",
                    "password": "sandbox-secret",
                }
            ),
            "AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS": json.dumps(build_demo_shop(42).settings()),
        }
    )
    return env


def baseline(requests: int) -> tuple[float, int]:
    """Documents per second when only the Accurate limit bounds the rate (same limiter, same server)."""
    from include.iseller_accurate.clients import AccurateHook, PostgresRateLimiter
    from include.iseller_accurate.ledger import connect, dsn_from_connection, migrate
    from sandbox.demo_shop import build_demo_shop

    dsn = dsn_from_connection()
    with connect(dsn, autocommit=True) as conn:
        migrate(conn)
    shop = build_demo_shop(42)
    outlet = shop.outlets[0]
    skus = [p.sku for p in shop.products if p.sku and p.in_accurate]
    hook = AccurateHook(rate_limiter=PostgresRateLimiter(dsn))

    def batch(n: int) -> int:
        records = [
            {
                "number": f"BASE/{n}-{i}",
                "transDate": "16/11/2026",
                "customerNo": "UMUM",
                "branchName": outlet.branch_name,
                "detailItem": [
                    {
                        "itemNo": skus[(n + i) % len(skus)],
                        "quantity": Decimal(1),
                        "unitPrice": Decimal("1000.00"),
                        "warehouseName": outlet.warehouse_name,
                    }
                ],
            }
            for i in range(100)
        ]
        return sum(1 for r in hook.bulk_save("sales-invoice", records) if r.ok)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        saved = sum(pool.map(batch, range(requests)))
    elapsed = time.perf_counter() - start
    return saved / elapsed, saved


def phase(name: str, window_start: str, window_end: str) -> None:
    """Run one task's work (in a child process, like an Airflow task)."""
    from include.iseller_accurate.clients import AccurateHook, IsellerHook, PostgresRateLimiter
    from include.iseller_accurate.ledger import Ledger, RunRef, dsn_from_connection
    from include.iseller_accurate.pipeline import EarlyPoster, ExtractContext, Loader, extract_documents
    from include.iseller_accurate.settings import load_settings
    from include.iseller_accurate.streams.sales import SalesStream

    run = RunRef("iseller_sales_to_accurate", "bench", name)
    started = time.perf_counter()
    with Ledger.open(dsn_from_connection()) as ledger:
        if name == "extract":
            ctx = ExtractContext(
                load_settings(),
                {},
                datetime.fromisoformat(window_start),
                datetime.fromisoformat(window_end),
                iseller=IsellerHook(),
                ledger=ledger,
            )
            calls: list[tuple[str, int, float, float]] = []
            chunks: list[float] = []

            @contextlib.contextmanager
            def open_loader() -> Any:  # as the extract task opens it (tasks.posting_early)
                with Ledger.open(dsn_from_connection()) as own:
                    hook = AccurateHook(rate_limiter=PostgresRateLimiter(dsn_from_connection()))
                    trace_calls(hook, started, into=calls)
                    yield Loader(own, hook, run)

            # BENCH_SEQUENTIAL=1: the extract posts nothing and the load task posts everything (as
            # before 2026-12-01), to compare on the same machine.
            sequential = bool(os.environ.get("BENCH_SEQUENTIAL"))
            with EarlyPoster.running(open_loader) as early:

                def stored(ids: list[int]) -> None:
                    chunks.append(round(time.perf_counter() - started, 2))
                    if not sequential:
                        early.stored(ids)

                result = extract_documents(
                    SalesStream(), ctx, ledger, run, advance_cursor=False, on_stored=stored
                )
                early.finish()
            result.update(early.summary())
            result["chunks_stored_at_s"] = chunks
            result["requests"] = timeline(calls)
        else:
            accurate = AccurateHook(rate_limiter=PostgresRateLimiter(dsn_from_connection()))
            calls = trace_calls(accurate, started)
            report = Loader(
                ledger, accurate, RunRef("iseller_sales_to_accurate", "bench", "extract")
            ).load_run()
            result = {
                "posted": report.posted,
                "confirmed": report.confirmed,
                "failed": len(report.failed),
                "blocked": len(report.blocked),
                "total": report.total,
                "requests": timeline(calls),
            }
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def trace_calls(
    accurate: Any, started: float, into: list[tuple[str, int, float, float]] | None = None
) -> list[tuple[str, int, float, float]]:
    """Record every Accurate call of a task (kind, documents, call and answer time since the task
    started) in ``into`` (or a new list); the call time includes the wait for a rate-limit slot."""
    calls: list[tuple[str, int, float, float]] = [] if into is None else into

    def traced(kind: str, method: Any, size: Callable[..., int]) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            at = time.perf_counter() - started
            try:
                return method(*args, **kwargs)
            finally:
                calls.append((kind, size(*args), at, time.perf_counter() - started))

        return call

    accurate.bulk_save = traced("post", accurate.bulk_save, lambda module, records, *_: len(records))
    accurate.save = traced("post", accurate.save, lambda *_: 1)
    accurate.find_by_numbers = traced("lookup", accurate.find_by_numbers, lambda module, numbers, *_: 0)
    return calls


def timeline(calls: list[tuple[str, int, float, float]]) -> dict[str, Any]:
    """Where the load's time goes: requests, documents per posting request, the first call, and
    the pauses (> 0.3 s) in which the loader handed out no request."""
    posts = [n for kind, n, _, _ in calls if kind == "post"]
    starts = sorted(at for _, _, at, _ in calls) or [0.0]
    pauses = [round(b - a, 2) for a, b in zip(starts, starts[1:], strict=False) if b - a > 0.3]
    return {
        "requests": len(calls),
        "posting_requests": len(posts),
        "documents_per_posting_request": round(sum(posts) / len(posts), 1) if posts else 0,
        "first_call_s": round(starts[0], 2),
        "last_answer_s": round(max((end for *_, end in calls), default=0.0), 2),
        "pauses_over_0_3_s": pauses,
    }


def peak_rss_mib() -> float:
    """This process's own peak resident memory (``VmHWM``), in MiB.

    ``ru_maxrss`` is not used: on Linux a child started by a bigger parent reports the parent's peak
    at the time it was started (about 150 MiB here) even when its own is far smaller.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(name: str, env: dict[str, str], start: datetime, end: datetime) -> dict[str, float]:
    # BENCH_PROFILE=1 writes a cProfile of each task process to /tmp/bench-<phase>.prof
    profile = ["-m", "cProfile", "-o", f"/tmp/bench-{name}.prof"] if os.environ.get("BENCH_PROFILE") else []
    out = subprocess.run(
        [
            sys.executable,
            *profile,
            __file__,
            "--phase",
            name,
            "--window-start",
            start.isoformat(),
            "--window-end",
            end.isoformat(),
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=env_int("BENCH_ORDERS", 2000))
    parser.add_argument("--baseline-requests", type=int, default=48)
    parser.add_argument("--phase", choices=["extract", "load"])
    parser.add_argument("--window-start")
    parser.add_argument("--window-end")
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.window_start, args.window_end)
        return

    pg = TempPostgres().start()
    accurate_port, iseller_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        stack.callback(pg.stop)
        stack.enter_context(run_sandbox("sandbox.accurate", "--seed", "42", port=accurate_port))
        stack.enter_context(run_sandbox("sandbox.iseller", "--seed", "42", port=iseller_port))
        env = environment(pg, accurate_port, iseller_port)
        os.environ.update(env)
        window_start = datetime.now(UTC) - timedelta(seconds=5)
        created = 0
        while created < args.orders:  # the sandbox generates valid random orders
            count = min(2000, args.orders - created)
            answer = httpx.post(
                f"http://127.0.0.1:{iseller_port}/_sandbox/orders/bulk", json={"count": count}, timeout=120
            )
            answer.raise_for_status()
            created += count
        window_end = datetime.now(UTC) + timedelta(seconds=5)

        base_rate, base_docs = baseline(args.baseline_requests)
        extract = run_phase("extract", env, window_start, window_end)
        load = run_phase("load", env, window_start, window_end)
        early_docs = extract["posted_early"] + extract["confirmed_early"]
        load_docs = load["posted"] + load["confirmed"]
        documents = early_docs + load_docs
        pipeline_seconds = extract["seconds"] + load["seconds"]
        rate = documents / pipeline_seconds
        # How well the posting uses the limiter, from its first request to its last answer (the
        # extract's early posting, or the load task's when the extract posted nothing).
        busy = extract if early_docs >= load_docs else load
        span = busy["requests"]["last_answer_s"] - busy["requests"]["first_call_s"]
        posting_rate = max(early_docs, load_docs) / span if span > 0 else 0.0

        def requests(phase: dict[str, Any]) -> str:
            shown = phase["requests"]
            return (
                f"{shown['requests']} ({shown['documents_per_posting_request']}; {shown['first_call_s']} s;"
                f" {shown['pauses_over_0_3_s']})"
            )

        rows = [
            ("orders", f"{args.orders:,}"),
            ("documents posted (invoices, receipts, customers)", f"{documents:,}"),
            ("  of them during the extract / by the load task", f"{early_docs:,} / {load_docs:,}"),
            ("failed / blocked", f"{load['failed']} / {load['blocked']}"),
            (
                "extract task: seconds, peak RSS",
                f"{extract['seconds']:.1f} s, {extract['peak_rss_mib']:.0f} MiB",
            ),
            ("  chunks stored at (s)", ", ".join(str(at) for at in extract["chunks_stored_at_s"]) or "-"),
            ("  its requests (documents per post; first call; pauses > 0.3 s)", requests(extract)),
            ("load task: seconds, peak RSS", f"{load['seconds']:.1f} s, {load['peak_rss_mib']:.0f} MiB"),
            ("  its requests (documents per post; first call; pauses > 0.3 s)", requests(load)),
            ("pipeline throughput", f"{rate:,.0f} documents/s"),
            (
                "baseline: Accurate limit reached here",
                f"{base_rate:,.0f} documents/s ({base_docs:,} documents)",
            ),
            ("nominal Accurate limit", "800 documents/s (8 requests/s x 100)"),
            ("ratio pipeline / baseline", f"{rate / base_rate:.0%} (goal >= 97%)"),
            ("ratio while posting / baseline", f"{posting_rate / base_rate:.0%}"),
        ]
        width = max(len(name) for name, _ in rows)
        print("\nSales sync benchmark")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")

        name = "big day"
        size = f"{args.orders:,} orders"
        memory_note = "goal is for 100,000 orders" if args.orders < 100_000 else "at the goal's size"

        def memory(task: str) -> Figure:
            peak = extract["peak_rss_mib"] if task == "extract" else load["peak_rss_mib"]
            over = peak > 512
            return Figure(
                name,
                f"peak RSS of the {task} task process ({size})",
                peak,
                "MiB",
                goal="<= 512 MiB at 100,000 orders",
                holds=False if over else (True if args.orders >= 100_000 else None),
                note=memory_note,
            )

        emit(
            [
                Figure(
                    name,
                    f"pipeline documents/s ({size}, extract + load)",
                    rate,
                    "docs/s",
                    floor=base_rate,
                    floor_label="docs/s limiter's best",
                    goal=">= 0.97 x limiter",
                    holds=rate >= 0.97 * base_rate,
                ),
                Figure(
                    name,
                    f"pipeline documents/s vs nominal ({size})",
                    rate,
                    "docs/s",
                    floor=800,
                    floor_label="docs/s nominal (8 x 100)",
                    goal=">= 0.90 x nominal",
                    holds=rate >= 0.9 * 800,
                ),
                Figure(
                    name,
                    f"documents/s while posting, first request to last answer ({size})",
                    posting_rate,
                    "docs/s",
                    floor=base_rate,
                    floor_label="docs/s limiter's best",
                    goal="(diagnostic)",
                ),
                memory("extract"),
                memory("load"),
            ],
            {
                "orders": args.orders,
                "documents": documents,
                "extract": extract,
                "load": load,
                "posted_during_extract": early_docs,
                "sequential": bool(os.environ.get("BENCH_SEQUENTIAL")),
                "baseline_docs_per_s": base_rate,
                "baseline_documents": base_docs,
                "failed": load["failed"],
                "blocked": load["blocked"],
            },
        )
        if load["failed"] or load["blocked"]:
            raise SystemExit(f"{load['failed']} failed / {load['blocked']} blocked documents: see above")


if __name__ == "__main__":
    main()
