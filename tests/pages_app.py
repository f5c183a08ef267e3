"""The operator pages over a filled ledger, served in-process: shared by tests/integration/test_pages.py
and bench/bench_pages.py.

:func:`fill` writes N documents and N webhook events (a deterministic mix: mostly synced, some failed /
blocked / pending / skipped, four outlets, five data types; every 10th document belongs to the
transfers DAG). :func:`install` puts a stand-in auth manager behind Airflow's own user resolution and
points the pages at the given ledger; :func:`app` mounts the pages' router (and their static files)
under ``/integrations`` as the plugin does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

SALES_DAG = "iseller_sales_to_accurate"
TRANSFERS_DAG = "iseller_transfers_to_accurate"
WEBHOOK_DAG = "accurate_webhooks_to_iseller"


def fill(conn: Any, rows: int, *, step: str = "5 minutes", batch: int | None = None) -> None:
    """``rows`` documents and ``rows`` webhook events, ``step`` apart from 2026-01-01 00:00 UTC.

    ``batch`` splits the inserts (one statement of a million rows is slow to WAL); None = one each.
    """
    batch = batch or rows
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
                   timestamptz '2026-01-01 00:00+00' + (g * %(step)s::interval),
                   'sales-invoice', 'SI/OUT' || (g %% 4) || '-' || g,
                   CASE WHEN g %% 97 = 0 THEN 'failed' WHEN g %% 89 = 0 THEN 'blocked'
                        WHEN g %% 83 = 0 THEN 'pending' WHEN g %% 79 = 0 THEN 'skipped'
                        ELSE 'synced' END,
                   CASE WHEN g %% 97 = 0 THEN 'Barang BRG-' || g || ' tidak ditemukan'
                        WHEN g %% 89 = 0 THEN 'waits for sales invoice SI/OUT-' || g END,
                   1 + g %% 3,
                   timestamptz '2026-01-01 00:00+00' + (g * %(step)s::interval) + interval '1 minute',
                   CASE WHEN g %% 10 = 0 THEN %(transfers)s ELSE %(sales)s END,
                   'scheduled__' || (g / 100), 'load', -1, 1
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
            """,
            {"first": first, "last": last, "step": step, "sales": SALES_DAG, "transfers": TRANSFERS_DAG},
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
                   timestamptz '2026-01-01 00:00+00' + (g * %(step)s::interval),
                   CASE WHEN g %% 101 = 0 THEN 'failed' WHEN g %% 7 = 0 THEN 'ignored' ELSE 'done' END,
                   CASE WHEN g %% 101 = 0 THEN 'Produk tanpa SKU di iSeller' END, 1, now(),
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE %(dag)s END,
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE 'asset_triggered__' || (g / 100) END,
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE 'process_events' END, -1, 1
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
            """,
            {"first": first, "last": last, "step": step, "dag": WEBHOOK_DAG},
        )
    conn.execute("VACUUM ANALYZE sync.documents")
    conn.execute("VACUUM ANALYZE sync.run_documents")
    conn.execute("VACUUM ANALYZE sync.webhook_events")


# -- Airflow's auth in front, a stand-in auth manager behind ---------------------------------------
class User:
    def __init__(self, name: str, dags: set[str] | None) -> None:
        self.name, self.dags = name, dags

    def get_name(self) -> str:
        return self.name

    def get_id(self) -> str:
        return self.name


class AuthManager:
    """Tokens ``tok-<user>``; ``dags`` per user (None = every DAG)."""

    all_dags = {SALES_DAG, TRANSFERS_DAG, WEBHOOK_DAG}

    def __init__(self) -> None:
        self.users = {
            "admin": User("admin", None),
            "transfers": User("transfers", {TRANSFERS_DAG}),
            "nobody": User("nobody", set()),
        }

    async def get_user_from_token(self, token: str) -> User:
        name = token.removeprefix("tok-")
        if not token.startswith("tok-") or name not in self.users:
            raise jwt.InvalidTokenError("bad token")
        return self.users[name]

    def get_authorized_dag_ids(self, *, user: User, method: str = "GET", **_: Any) -> set[str]:
        return set(self.all_dags) if user.dags is None else set(user.dags)

    def is_authorized_dag(
        self, *, method: str, user: User, access_entity: Any = None, details: Any = None
    ) -> bool:
        return user.dags is None or (details is not None and details.id in user.dags)

    def get_url_login(self, **kwargs: Any) -> str:
        return f"/auth/login?next={kwargs.get('next_url', '')}"


def install(dsn: str, set_attr: Callable[[Any, str, Any], None] = setattr) -> AuthManager:
    """Point Airflow's user resolution at a stand-in :class:`AuthManager` and the pages at ``dsn``
    (settings: four outlets). ``set_attr``: ``monkeypatch.setattr`` in a test (undone after it),
    plain ``setattr`` in a benchmark process."""
    import airflow.api_fastapi.app as airflow_app
    import airflow.api_fastapi.core_api.security as security

    from include.iseller_accurate.settings import SyncSettings
    from include.iseller_accurate.web import shared

    manager = AuthManager()
    set_attr(security, "get_auth_manager", lambda: manager)
    set_attr(airflow_app, "get_auth_manager", lambda: manager)
    set_attr(shared, "dsn_from_connection", lambda *a, **k: dsn)
    settings = SyncSettings.model_validate(
        {"outlets": {f"outlet-{i}": {"name": f"Toko {i}", "branch": "B", "warehouse": "W"} for i in range(4)}}
    )
    set_attr(shared, "settings", lambda: (settings, None))
    return manager


def app() -> Any:
    """The pages' router and static files, mounted under ``/integrations`` as the plugin mounts them."""
    from fastapi import FastAPI

    from include.iseller_accurate.web import pages, static

    sub = FastAPI()
    sub.include_router(pages.router)
    static.mount(sub)
    root = FastAPI()
    root.mount("/integrations", sub)
    return root
