"""The task entry points of the Accurate -> iSeller DAGs, on a real PostgreSQL (the API is faked)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict


def _sync_db_with_extras(pg_dsn: str) -> str:
    info = conninfo_to_dict(pg_dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": info.get("host"),
            "port": int(info.get("port") or 5432),
            "schema": info.get("dbname"),
            "login": info.get("user"),
            "password": info.get("password") or "",
            "extra": {"sslmode": "disable", "connect_timeout": 7},
        }
    )


def test_renewal_limits_accurate_on_the_sync_db_connection_with_its_tls_extras(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: the webhook tasks built their Accurate client from a hand-made DSN that dropped the
    connection's extras (``sslmode`` ...), unlike the sync DAGs; now every task builds it one way."""
    from include.iseller_accurate import clients
    from include.iseller_accurate.purchases.store import WebhookEventLedger
    from include.iseller_accurate.tasks import run_renewal

    monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", _sync_db_with_extras(pg_dsn))
    limiters: list[Any] = []

    class Accurate:
        def __init__(self, rate_limiter: Any = None, **_: Any) -> None:
            limiters.append(rate_limiter)

        def webhook_renew(self) -> dict[str, Any]:
            return {"s": True, "d": {"expiredDate": "07/12/2026 10:00:00"}}

    monkeypatch.setattr(clients, "AccurateHook", Accurate)
    result = run_renewal()
    assert result["expires_text"] == "07/12/2026 10:00:00"
    (limiter,) = limiters
    options = conninfo_to_dict(limiter._dsn)
    assert options.get("sslmode") == "disable" and options.get("connect_timeout") == "7"
    with WebhookEventLedger.open(pg_dsn) as ledger:
        assert (ledger.subscription() or {}).get("expires_text") == "07/12/2026 10:00:00"
