"""The ledger opens ``sync_db`` with every libpq setting of the Airflow connection, extras included.

A production database reached over the network needs ``sslmode`` (and often ``options`` or
``application_name``) in the connection's extra; the ledger used to build its own DSN from host, port,
database, login and password only, so those settings never reached PostgreSQL. Checked on a real
server: what the server and libpq report for the session, not what was passed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from include.iseller_accurate.ledger import Ledger, connect, dsn_from_connection

EXTRA = {
    "sslmode": "disable",
    "options": "-c statement_timeout=4321",
    "application_name": "shop-sync-test",
}


def _connection_json(dsn: str, extra: dict[str, str]) -> str:
    parts = urlsplit(dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": parts.hostname,
            "port": parts.port,
            "schema": parts.path.lstrip("/"),
            "login": parts.username or "",
            "password": parts.password or "",
            "extra": extra,
        }
    )


@pytest.fixture
def sync_db(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", _connection_json(pg_dsn, EXTRA))
    yield pg_dsn


def _session(conn: psycopg.Connection[Any]) -> dict[str, str]:
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT current_setting('statement_timeout') AS statement_timeout,"
        " current_setting('application_name') AS application_name"
    ).fetchone()
    assert row is not None
    values = dict(row)
    values["sslmode"] = conn.info.get_parameters().get("sslmode", "prefer (libpq default)")
    return values


def test_ledger_connection_keeps_the_connection_extras(sync_db: str) -> None:
    with connect(autocommit=True) as conn:
        assert _session(conn) == {
            "statement_timeout": "4321ms",
            "application_name": "shop-sync-test",
            "sslmode": "disable",
        }
        # Still the ledger's connection: rows as dicts, JSON money as Decimal.
        row = conn.execute("""SELECT '{"total": 10.10}'::jsonb AS doc""").fetchone()
        assert row == {"doc": {"total": Decimal("10.10")}}


def test_ledger_open_keeps_the_connection_extras(sync_db: str) -> None:
    with Ledger.open() as ledger:
        assert _session(ledger.conn)["statement_timeout"] == "4321ms"
        assert ledger.conn.autocommit


def test_dsn_from_connection_keeps_the_connection_extras(sync_db: str) -> None:
    with psycopg.connect(dsn_from_connection()) as conn:
        assert _session(conn) == {
            "statement_timeout": "4321ms",
            "application_name": "shop-sync-test",
            "sslmode": "disable",
        }


def test_without_extras_the_session_is_named_after_the_sync(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", _connection_json(pg_dsn, {}))
    with connect() as conn:
        assert _session(conn)["application_name"] == "iseller-accurate-sync"
        assert not conn.autocommit
    with psycopg.connect(dsn_from_connection()) as conn:
        assert _session(conn)["application_name"] == "iseller-accurate-sync"


def test_a_misspelt_extra_is_refused_not_ignored(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sslmod`` for ``sslmode``: ignoring it would connect without the TLS the operator asked for."""
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", _connection_json(pg_dsn, {"sslmod": "require"}))
    with pytest.raises(psycopg.ProgrammingError, match="sslmod"):
        connect()
    with pytest.raises(psycopg.ProgrammingError, match="sslmod"):
        dsn_from_connection()
