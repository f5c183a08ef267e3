"""Fixtures of the API client tests: Airflow connections from env vars, an HTTP fake, recorded waits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses

from include.iseller_accurate.clients import _transport, clear_discovery_cache, clear_token_cache

ACCOUNT = "http://account.test"
DATA_HOST = "http://zeus.test"
TOKEN = "acc-token-3f9a1c"
SIGNATURE_SECRET = "sig-secret-77d2e0"
WEBHOOK_TOKEN = "hook-token-5b1e"
OAUTH = "http://oauth.iseller.test"
STORE = "http://store.iseller.test"
CLIENT_ID = "client-abc"
CLIENT_SECRET = "client-secret-9e8d7c"

SECRETS = (TOKEN, SIGNATURE_SECRET, WEBHOOK_TOKEN, CLIENT_SECRET)


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """``accurate_api`` and ``iseller_api`` connections as Airflow reads them from the environment."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": ACCOUNT,
                "password": TOKEN,
                "extra": {"signature_secret": SIGNATURE_SECRET, "webhook_token": WEBHOOK_TOKEN, "timeout": 5},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_ISELLER_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": OAUTH,
                "login": CLIENT_ID,
                "password": CLIENT_SECRET,
                "extra": {"webhook_api_key": "iseller-hook-key-1234"},
            }
        ),
    )


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Discovery and token caches are per process: start every test without them."""
    clear_discovery_cache()
    clear_token_cache()
    yield
    clear_discovery_cache()
    clear_token_cache()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(_transport, "sleep", recorded.append)
    return recorded


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """The requests-level HTTP fake."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def assert_no_secrets(text: str) -> None:
    """Fail if any test secret appears in ``text``."""
    for secret in SECRETS:
        assert secret not in text, f"secret {secret[:4]}... leaked"
