"""The operator pages' totals and status chips are answered from an index (migration 0013).

With a million ledger rows, counting the rows of a list (up to 100,000) and its open statuses under
the user's DAG scope read the table itself for ``dag_id`` (bench/bench_pages.py). These tests take
the exact statements ``listing.count`` and ``listing.status_counts`` send and check PostgreSQL can
answer them with an index-only scan (no table reads), with and without the outlet filter.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg import sql

from include.iseller_accurate.ledger import connect, migrate
from include.iseller_accurate.web import listing

SCOPE = listing.Scope(dag_ids=frozenset({"iseller_sales_to_accurate", "accurate_webhooks_to_iseller"}))


class _Explaining:
    """Stands in for the ledger connection: records the plan of each statement instead of running it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, query: Any, params: Any = None) -> Any:
        explain = sql.SQL("EXPLAIN (FORMAT JSON) ") + (
            query if isinstance(query, sql.Composable) else sql.SQL(query)
        )
        self.plans.append(json.dumps(self.conn.execute(explain, params).fetchone(), default=str))
        return self

    def fetchone(self) -> dict[str, int]:
        return {"n": 0}

    def fetchall(self) -> list[Any]:
        return []


@pytest.fixture
def ledger(pg_dsn: str) -> Any:
    with connect(pg_dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO sync.documents (data_type, source_id, source_key, outlet_id, source_date,"
            " target_module, target_number, status, dag_id, run_id, task_id)"
            " SELECT 'sales_invoice', 's' || g, 'k' || g, 'outlet-' || (g % 4),"
            " now() - g * interval '1 minute',"
            " 'sales-invoice', 'SI/' || g, CASE WHEN g % 97 = 0 THEN 'failed' ELSE 'synced' END,"
            " 'iseller_sales_to_accurate', 'r', 'load' FROM generate_series(1, 5000) AS g"
        )
        conn.execute(
            "INSERT INTO sync.webhook_events (uuid, event_type, payload, status, dag_id)"
            " SELECT 'u' || g, 'RECEIVE_ITEM', '{}'::jsonb,"
            " CASE WHEN g % 101 = 0 THEN 'failed' ELSE 'done' END,"
            " 'accurate_webhooks_to_iseller' FROM generate_series(1, 5000) AS g"
        )
        conn.execute("VACUUM ANALYZE sync.documents")
        conn.execute("VACUUM ANALYZE sync.webhook_events")
        # a small table would be read whole; what matters is whether an index can answer alone
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        yield conn


@pytest.mark.parametrize(
    ("spec", "flt"),
    [
        (listing.DOCUMENTS, listing.ListFilter()),
        (listing.DOCUMENTS, listing.ListFilter(status="failed")),
        (listing.DOCUMENTS, listing.ListFilter(outlet_id="outlet-1")),
        (listing.DOCUMENTS, listing.ListFilter(status=listing.ATTENTION, outlet_id="outlet-2")),
        (listing.WEBHOOK_EVENTS, listing.ListFilter()),
        (listing.WEBHOOK_EVENTS, listing.ListFilter(status="failed")),
    ],
    ids=[
        "documents",
        "documents-failed",
        "documents-outlet",
        "documents-attention-outlet",
        "events",
        "events-failed",
    ],
)
def test_totals_and_status_counts_read_only_an_index(ledger: Any, spec: Any, flt: Any) -> None:
    explaining = _Explaining(ledger)
    listing.count(explaining, spec, flt, SCOPE)  # type: ignore[arg-type]
    listing.status_counts(explaining, spec, flt, SCOPE)  # type: ignore[arg-type]
    for plan in explaining.plans:
        assert '"Index Only Scan"' in plan, plan
        assert '"Seq Scan"' not in plan and '"Index Scan"' not in plan, plan
