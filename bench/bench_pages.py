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
from tests.pg import TempPostgres  # noqa: E402

SALES_DAG = "iseller_sales_to_accurate"
TRANSFERS_DAG = "iseller_transfers_to_accurate"
WEBHOOK_DAG = "accurate_webhooks_to_iseller"
GOAL_MS = 200.0


def fill(conn: Any, rows: int) -> None:
    """N documents and N webhook events, in batches (one statement of a million rows is slow to WAL)."""
    batch = 200_000
    for first in range(1, rows + 1, batch):
        last = min(rows, first + batch - 1)
        conn.execute(
            """
            INSERT INTO sync.documents (data_type, source_id, source_key, source_number, outlet_id,
                source_date, target_module, target_number, status, reason, attempts, last_attempt_at,
                dag_id, run_id, task_id, map_index, try_number)
            SELECT (ARRAY['sales_invoice', 'sales_receipt', 'sales_return', 'transfer_out',
                          'stock_opname'])[1 + g %% 5],
                   'src-' || g, 'key-' || g, '#OUT' || (g %% 4) || '-' || g, 'outlet-' || (g %% 4),
                   timestamptz '2026-01-01 00:00+00' + (g * interval '30 seconds'),
                   'sales-invoice', 'SI/OUT' || (g %% 4) || '-' || g,
                   CASE WHEN g %% 97 = 0 THEN 'failed' WHEN g %% 89 = 0 THEN 'blocked'
                        WHEN g %% 83 = 0 THEN 'pending' WHEN g %% 79 = 0 THEN 'skipped'
                        ELSE 'synced' END,
                   CASE WHEN g %% 97 = 0 THEN 'Barang BRG-' || g || ' tidak ditemukan'
                        WHEN g %% 89 = 0 THEN 'waits for sales invoice SI/OUT-' || g END,
                   1 + g %% 3,
                   timestamptz '2026-01-01 00:00+00' + (g * interval '30 seconds') + interval '1 minute',
                   CASE WHEN g %% 10 = 0 THEN %(transfers)s ELSE %(sales)s END,
                   'scheduled__' || (g / 100), 'load', -1, 1
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
            """,
            {"first": first, "last": last, "sales": SALES_DAG, "transfers": TRANSFERS_DAG},
        )
        conn.execute(
            "INSERT INTO sync.run_documents (dag_id, run_id, document_id)"
            " SELECT dag_id, run_id, id FROM sync.documents WHERE id BETWEEN %s AND %s",
            (first, last),
        )
        conn.execute(
            """
            INSERT INTO sync.webhook_events (uuid, event_type, payload, accurate_number, action,
                received_at, status, reason, attempts, last_attempt_at, dag_id, run_id, task_id,
                map_index, try_number)
            SELECT 'uuid-' || g, (ARRAY['RECEIVE_ITEM', 'PURCHASE_INVOICE', 'PURCHASE_RETURN'])[1 + g %% 3],
                   '{}'::jsonb, 'RI.2026.' || g, 'WRITE',
                   timestamptz '2026-01-01 00:00+00' + (g * interval '30 seconds'),
                   CASE WHEN g %% 101 = 0 THEN 'failed' WHEN g %% 7 = 0 THEN 'ignored' ELSE 'done' END,
                   CASE WHEN g %% 101 = 0 THEN 'Produk tanpa SKU di iSeller' END, 1, now(),
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE %(dag)s END,
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE 'asset_triggered__' || (g / 100) END,
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE 'process_events' END, -1, 1
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
            """,
            {"first": first, "last": last, "dag": WEBHOOK_DAG},
        )
    conn.execute("VACUUM ANALYZE sync.documents")
    conn.execute("VACUUM ANALYZE sync.run_documents")
    conn.execute("VACUUM ANALYZE sync.webhook_events")


class _Admin:
    def get_name(self) -> str:
        return "admin"

    def get_id(self) -> str:
        return "admin"


class _AuthManager:
    """Stand-in behind Airflow's own token resolution: token ``bench`` is an admin of every DAG."""

    dags = {SALES_DAG, TRANSFERS_DAG, WEBHOOK_DAG}

    async def get_user_from_token(self, token: str) -> _Admin:
        import jwt

        if token != "bench":
            raise jwt.InvalidTokenError("bad token")
        return _Admin()

    def get_authorized_dag_ids(self, *, user: Any, method: str = "GET", **_: Any) -> set[str]:
        return set(self.dags)

    def is_authorized_dag(
        self, *, method: str, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        return True

    def get_url_login(self, **kwargs: Any) -> str:
        return "/auth/login"


def client_for(dsn: str) -> Any:
    import airflow.api_fastapi.app as airflow_app
    import airflow.api_fastapi.core_api.security as security
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from include.iseller_accurate.settings import SyncSettings
    from include.iseller_accurate.web import pages, shared, static

    manager = _AuthManager()
    security.get_auth_manager = lambda: manager  # type: ignore[assignment]
    airflow_app.get_auth_manager = lambda: manager  # type: ignore[assignment]
    shared.dsn_from_connection = lambda *a, **k: dsn  # type: ignore[assignment]
    settings = SyncSettings.model_validate(
        {"outlets": {f"outlet-{i}": {"name": f"Toko {i}", "branch": "B", "warehouse": "W"} for i in range(4)}}
    )
    shared.settings = lambda: (settings, None)  # type: ignore[assignment]
    sub = FastAPI()
    sub.include_router(pages.router)
    static.mount(sub)  # as the plugin mounts it: the floor's static file
    root = FastAPI()
    root.mount("/integrations", sub)
    return TestClient(root, follow_redirects=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=env_int("BENCH_LEDGER_ROWS", 100_000))
    parser.add_argument("--repeats", type=int, default=env_int("BENCH_PAGE_REPEATS", 20))
    parser.add_argument("--explain-ms", type=int, default=None, help="print plans of slower statements")
    args = parser.parse_args()

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
            fill(conn, args.rows)
        fill_s = time.perf_counter() - started
        print(f"ledger filled: {args.rows:,} documents and {args.rows:,} webhook events in {fill_s:.0f} s")
        headers = {"Authorization": "Bearer bench"}
        api, page = "/integrations/operator/api", "/integrations/operator"
        terms = [f"OUT{i % 4}-{(i * 7919) % args.rows + 1}" for i in range(args.repeats)]
        events = [f"RI.2026.{(i * 7919) % args.rows + 1}" for i in range(args.repeats)]
        queries: list[tuple[str, str, str, Any]] = []
        for label, url in (
            ("Sync Status JSON", f"{api}/documents"),
            ("Sync Status HTML", f"{page}/sync-status"),
        ):
            queries += [
                (label, "first page", url, lambda i: {}),
                (label, "status=failed", url, lambda i: {"status": "failed"}),
                (label, "outlet", url, lambda i: {"outlet": f"outlet-{i % 4}"}),
                (label, "search", url, lambda i: {"q": terms[i]}),
            ]
        for label, url in (
            ("Webhook Log JSON", f"{api}/webhook-events"),
            ("Webhook Log HTML", f"{page}/webhook-log"),
        ):
            queries += [
                (label, "first page", url, lambda i: {}),
                (label, "status=failed", url, lambda i: {"status": "failed"}),
                (label, "search", url, lambda i: {"q": events[i]}),
            ]
        with client_for(pg.dsn) as client:

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
