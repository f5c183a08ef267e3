"""The operator pages at size: Sync Status and Webhook Log over a ledger of N rows.

Starts a throwaway PostgreSQL, migrates the ledger, fills ``sync.documents`` and
``sync.webhook_events`` with N rows each (a year of dates, four outlets, mostly synced, some failed /
blocked / pending), then serves the pages' FastAPI router in-process, mounted under
``/integrations`` as the plugin mounts it, with Airflow's own user resolution in front (bearer
token) and a stand-in auth manager behind it (an admin who may read every DAG). Each query is asked
``--repeats`` times (JSON API and HTML page): first page, filtered by status, by outlet, and by a
search term (a different term each time). Reported: p95 per query, against the goal of 200 ms and
beside the floor measured in the same run: the p95 of the router's static file (same app, same
HTTP stack, no database).

Run: ``python bench/bench_pages.py [--rows 100000] [--repeats 20]`` from the repository root
(default ``$BENCH_LEDGER_ROWS`` or 100,000; the goal of issue 13 is stated for 1,000,000 rows).
``--explain-ms 50`` prints the plan (EXPLAIN ANALYZE, by PostgreSQL's auto_explain) of every
statement slower than 50 ms: where a slow page spends its time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import Figure, emit, env_int, percentile  # noqa: E402
from tests import pages_app  # noqa: E402
from tests.pg import TempPostgres  # noqa: E402

GOAL_MS = 200.0
STEP = "30 seconds"  # between two documents' dates: 1,000,000 rows span about a year
BATCH = 200_000  # rows per insert statement (one statement of a million rows is slow to WAL)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=env_int("BENCH_LEDGER_ROWS", 100_000))
    parser.add_argument("--repeats", type=int, default=env_int("BENCH_PAGE_REPEATS", 20))
    parser.add_argument("--explain-ms", type=int, default=None, help="print plans of slower statements")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from include.iseller_accurate.ledger import connect, migrate

    pg = TempPostgres().start()
    try:
        started = time.perf_counter()
        with connect(pg.dsn, autocommit=True) as conn:
            migrate(conn)
            if args.explain_ms is not None:
                conn.execute("LOAD 'auto_explain'")  # its settings exist only once loaded
                conn.execute("ALTER SYSTEM SET session_preload_libraries = 'auto_explain'")
                conn.execute(f"ALTER SYSTEM SET auto_explain.log_min_duration = {int(args.explain_ms)}")
                conn.execute("ALTER SYSTEM SET auto_explain.log_analyze = on")
                conn.execute("ALTER SYSTEM SET auto_explain.log_buffers = on")
                conn.execute("SELECT pg_reload_conf()")
            pages_app.fill(conn, args.rows, step=STEP, batch=BATCH)
        fill_s = time.perf_counter() - started
        print(f"ledger filled: {args.rows:,} documents and {args.rows:,} webhook events in {fill_s:.0f} s")
        headers = {"Authorization": "Bearer tok-admin"}  # an admin of every DAG
        api, page = "/integrations/operator/api", "/integrations/operator"
        terms = [f"OUT{i % 4}-{(i * 7919) % args.rows + 1}" for i in range(args.repeats)]
        events = [f"RI.2026.{(i * 7919) % args.rows + 1}" for i in range(args.repeats)]
        filters: dict[str, Any] = {
            "first page": lambda i: {},
            "status=failed": lambda i: {"status": "failed"},
            "outlet": lambda i: {"outlet": f"outlet-{i % 4}"},
            "search": lambda i: {"q": terms[i]},
            "event search": lambda i: {"q": events[i]},
        }
        # (label, url, the filters asked of it)
        lists = (
            ("Sync Status JSON", f"{api}/documents", ("first page", "status=failed", "outlet", "search")),
            ("Sync Status HTML", f"{page}/sync-status", ("first page", "status=failed", "outlet", "search")),
            ("Webhook Log JSON", f"{api}/webhook-events", ("first page", "status=failed", "event search")),
            ("Webhook Log HTML", f"{page}/webhook-log", ("first page", "status=failed", "event search")),
        )
        queries: list[tuple[str, str, str, Any]] = [
            (label, name.removeprefix("event "), url, filters[name])
            for label, url, names in lists
            for name in names
        ]
        pages_app.install(pg.dsn)
        with TestClient(pages_app.app(), follow_redirects=False) as client:

            def timed(url: str, params: dict[str, str], auth: bool = True) -> float:
                began = time.perf_counter()
                resp = client.get(url, params=params, headers=headers if auth else {})
                took = time.perf_counter() - began
                if resp.status_code != 200:
                    raise SystemExit(f"GET {url} {params}: HTTP {resp.status_code} {resp.text[:300]}")
                return took

            for _label, _name, url, params in queries:  # warm: the first request migrates, caches plans
                timed(url, params(0))
            floor = [timed(f"{page}/static/operator.css", {}, auth=False) for _ in range(args.repeats)]
            floor_ms = percentile(floor, 0.95) * 1000
            figures = []
            samples: dict[str, list[float]] = {}
            for label, name, url, params in queries:
                times = [timed(url, params(i)) for i in range(args.repeats)]
                p95 = percentile(times, 0.95) * 1000
                samples[f"{label} {name}"] = [round(t * 1000, 1) for t in times]
                figures.append(
                    Figure(
                        "pages",
                        f"{label}, {name}, p95 ({args.rows:,} rows)",
                        p95,
                        "ms",
                        floor=floor_ms,
                        floor_label="ms static file",
                        goal="p95 <= 200 ms at 1,000,000 rows",
                        holds=False if p95 > GOAL_MS else (True if args.rows >= 1_000_000 else None),
                        note="" if args.rows >= 1_000_000 else "goal is for 1,000,000 rows",
                    )
                )
        if args.explain_ms is not None:
            log = (pg.dir / "log").read_text(encoding="utf-8", errors="replace")
            plans = log[log.find("duration:") :] if "duration:" in log else ""
            print(f"\nstatements slower than {args.explain_ms} ms (auto_explain):\n{plans[-20000:]}")
    finally:
        pg.stop()
    emit(
        figures, {"rows": args.rows, "repeats": args.repeats, "fill_seconds": round(fill_s, 1), "ms": samples}
    )


if __name__ == "__main__":
    main()
