"""Fixtures of the integration tests that run against both sandbox_urls (real servers on real sockets)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from include.iseller_accurate.clients import (
    AccurateHook,
    IsellerHook,
    LocalRateLimiter,
    clear_discovery_cache,
    clear_token_cache,
)
from include.iseller_accurate.ledger import Ledger, connect, migrate
from tests.sandbox.accurate_fixtures import run_accurate_server
from tests.sandbox.iseller_fixtures import run_iseller_server

SEED = 42


@pytest.fixture
def ledger(pg_dsn: str) -> Iterator[Ledger]:
    """The sync ledger, migrated, on a fresh database of its own."""
    conn = connect(pg_dsn, autocommit=True)
    migrate(conn)
    yield Ledger(conn)
    conn.close()


@pytest.fixture
def hooks(sandbox_connections: tuple[str, str]) -> Iterator[tuple[IsellerHook, AccurateHook]]:
    """Both API hooks on the sandboxes (a local rate limiter), closed afterwards."""
    iseller, accurate = IsellerHook(), AccurateHook(rate_limiter=LocalRateLimiter(), max_retries=4)
    yield iseller, accurate
    iseller.close()
    accurate.close()


@pytest.fixture(scope="module")
def sandbox_urls() -> Iterator[tuple[str, str]]:
    """Both sandboxes (the demo shop of seed 42) on free ports, for one module: (Accurate, iSeller) URLs."""
    with run_accurate_server("--seed", str(SEED)) as accurate, run_iseller_server(SEED) as iseller:
        yield accurate.base_url, iseller.base_url


@pytest.fixture
def sandbox_connections(sandbox_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Both sandboxes reset to their seed, and the ``accurate_api`` / ``iseller_api`` connections on them.

    The hooks' host-discovery and token caches are emptied, so a hook made now talks to these servers.
    """
    accurate_url, iseller_url = sandbox_urls
    for url in sandbox_urls:
        httpx.post(f"{url}/_sandbox/reset", json={"seed": SEED}, timeout=10).raise_for_status()
    accurate = {
        "conn_type": "http",
        "host": accurate_url,
        "password": "sandbox-api-token",
        "extra": {"signature_secret": "sandbox-signature-secret"},
    }
    iseller = {
        "conn_type": "http",
        "host": iseller_url,
        "login": "sandbox-client",
        "password": "sandbox-secret",
    }
    monkeypatch.setenv("AIRFLOW_CONN_ACCURATE_API", json.dumps(accurate))
    monkeypatch.setenv("AIRFLOW_CONN_ISELLER_API", json.dumps(iseller))
    clear_discovery_cache()
    clear_token_cache()
    return sandbox_urls
