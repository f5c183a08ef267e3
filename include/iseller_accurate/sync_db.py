"""Opening the sync ledger's database (connection ``sync_db``) and migrating its schema.

The connection is opened by the Postgres provider's ``PostgresHook``, so every libpq setting of the
Airflow connection reaches PostgreSQL: host, port, database, login, password and the extras
(``sslmode``, ``sslrootcert``, ``options``, ``application_name``, ``connect_timeout``, ...). The same
settings make the DSN of :func:`dsn_from_connection`, for code that needs a connection string.

Schema changes are versioned SQL files under ``migrations/`` applied in order by :func:`migrate`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps, set_json_loads

from include.iseller_accurate import jsonutil

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SYNC_DB_CONN_ID = "sync_db"
#: How the sync's sessions show in ``pg_stat_activity`` unless the connection's extra names another.
APPLICATION_NAME = "iseller-accurate-sync"
_MIGRATION_LOCK = 7_301_942  # advisory lock id: one migrator at a time
#: libpq keyword -> Airflow connection field.
_LIBPQ_FIELDS = {"host": "host", "port": "port", "dbname": "schema", "user": "login", "password": "password"}


def get_connection(conn_id: str) -> Any:
    """An Airflow connection, from a task (Task SDK) or from the API server (plugin code)."""
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - outside a task: the secrets backends of the core
        from include.iseller_accurate.airflow_internals import metastore_connection

        return metastore_connection(conn_id)


def sync_db_hook(conn_id: str = SYNC_DB_CONN_ID) -> PostgresHook:
    """A ``PostgresHook`` on the ledger's database.

    The connection is read once with :func:`get_connection` (so this works in a task and in the API
    server alike) and handed to the hook with the defaults the ledger always had: host 127.0.0.1,
    port 5432, database ``sync_db`` and the application name, each only where the connection leaves
    it empty.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import Connection

    conn = get_connection(conn_id)
    extra = dict(conn.extra_dejson or {})
    extra.setdefault("application_name", APPLICATION_NAME)
    filled = Connection(
        conn_id=conn_id,
        conn_type=conn.conn_type or "postgres",
        host=conn.host or "127.0.0.1",
        port=conn.port or 5432,
        schema=conn.schema or "sync_db",
        login=conn.login or None,
        password=conn.password or None,
        extra=json.dumps(extra),
    )
    return PostgresHook(postgres_conn_id=conn_id, connection=filled)


def dsn_from_connection(conn_id: str = SYNC_DB_CONN_ID) -> str:
    """libpq connection string for an Airflow connection (``postgres`` type), extras included.

    The same settings the hook passes to psycopg (the extras the provider reserves for itself, such
    as ``cursor`` or ``iam``, are left out as the hook leaves them out).
    """
    hook = sync_db_hook(conn_id)
    conn = hook.connection
    params: dict[str, Any] = {key: getattr(conn, name) for key, name in _LIBPQ_FIELDS.items()}
    for key, value in conn.extra_dejson.items():
        if key not in hook.ignored_extra_options:
            params[key] = value
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})


def connect(dsn: str | None = None, *, autocommit: bool = False) -> psycopg.Connection[dict[str, Any]]:
    """Open a ledger connection whose rows are dicts and whose JSON values keep money as Decimal.

    Without ``dsn``: the ``sync_db`` connection, through the Postgres provider's hook.
    """
    if dsn is not None:
        conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row)
    else:
        opened = sync_db_hook().get_conn()
        if not isinstance(opened, psycopg.Connection):
            opened.close()
            raise RuntimeError(
                "the Postgres provider opened sync_db with psycopg2; the sync needs psycopg 3"
                " (installed with SQLAlchemy 2, as requirements.txt pins them)"
            )
        conn = opened
        conn.autocommit = autocommit
        conn.row_factory = dict_row
    set_json_loads(jsonutil.loads, conn)
    set_json_dumps(jsonutil.dumps, conn)
    return conn


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the migrations not applied yet, in file-name order. Returns the names applied."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS sync")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sync.schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] if isinstance(row, tuple) else row["name"]
                for row in conn.execute("SELECT name FROM sync.schema_migrations").fetchall()}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.name in done:
                continue
            conn.execute(path.read_text())  # trusted files of this package
            conn.execute("INSERT INTO sync.schema_migrations (name) VALUES (%s)", (path.name,))
            applied.append(path.name)
    return applied


@contextmanager
def migrated(dsn: str | None = None) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """An autocommit ledger connection with the schema migrated, closed on exit (what every
    ``open()`` of a ledger-backed store needs)."""
    conn = connect(dsn, autocommit=True)
    try:
        migrate(conn)
        yield conn
    finally:
        conn.close()
