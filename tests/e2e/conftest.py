"""Fixtures of the end-to-end tests: the running local stack (real Airflow, sandboxes, PostgreSQL).

``make test`` starts the stack before pytest (scripts/test.sh); for a quicker loop, ``make up`` once
and run ``pytest tests/e2e`` with the environment of scripts/env.sh (``. scripts/env.sh``).
Without a running stack these tests are skipped, except in CI (env ``CI``) or under ``make test``
(env ``SYNC_STACK_REQUIRED``), where a missing stack is an error.
Every test under tests/e2e is marked ``e2e``. The secret-leak scan (test_zz_secret_scan_e2e.py) is
moved to the end of the session, after every other test that drives the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import airflow_api
from tests.e2e.airflow_api import AirflowAPI, skip_or_fail, stack_is_up

E2E_DIR = Path(__file__).resolve().parent
#: Runs after every other collected test: it scans what they left in logs, pages and databases.
SOAK = E2E_DIR / "test_soak_e2e.py"
RUN_LAST = E2E_DIR / "test_zz_secret_scan_e2e.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
    # A stable sort: every other test keeps its place. The soak goes after every other end-to-end test
    # (it leaves stock and prerequisites a later stock-opname test would trip over), the secret scan
    # after the soak (it scans what all of them left).
    def order(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve()
        return 2 if path == RUN_LAST else 1 if path == SOAK else 0

    items.sort(key=order)


@pytest.fixture(scope="session")
def airflow() -> Iterator[AirflowAPI]:
    """Client of the running Airflow's REST API, logged in as admin."""
    reason = stack_is_up()
    if reason:
        skip_or_fail(reason)
    api = AirflowAPI()
    api.login()
    try:
        yield api
    finally:
        api.close()


def _sandbox(url: str, name: str) -> str:
    try:
        resp = httpx.get(f"{url}/_sandbox/health", timeout=3.0)
    except httpx.HTTPError as exc:
        skip_or_fail(f"{name} sandbox not reachable at {url} ({exc.__class__.__name__})")
    else:
        if resp.status_code != 200:
            skip_or_fail(f"{name} sandbox health check at {url} answered HTTP {resp.status_code}")
    return url


@pytest.fixture(scope="session")
def accurate_sandbox_url() -> str:
    """Base URL of the running Accurate sandbox (http://127.0.0.1:$ACCURATE_SANDBOX_PORT)."""
    return _sandbox(airflow_api.accurate_sandbox_url(), "Accurate")


@pytest.fixture(scope="session")
def iseller_sandbox_url() -> str:
    """Base URL of the running iSeller sandbox (http://127.0.0.1:$ISELLER_SANDBOX_PORT)."""
    return _sandbox(airflow_api.iseller_sandbox_url(), "iSeller")
