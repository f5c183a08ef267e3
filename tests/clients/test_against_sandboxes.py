"""Both hooks against the real sandbox servers over real sockets (started here as subprocesses)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from include.iseller_accurate.clients import AccurateHook, IsellerHook, LocalRateLimiter, OutcomeUnknownError
from tests.sandbox_process import run_sandbox

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
ACCURATE_TOKEN = "sandbox-api-token"
ACCURATE_SECRET = "sandbox-signature-secret"


def start_sandbox(package: str) -> Iterator[str]:
    """Run ``python -m <package>`` until the test module is done; yield its base URL."""
    with run_sandbox(package, "--seed", "42", timeout=60) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def accurate_url() -> Iterator[str]:
    """A running Accurate sandbox."""
    yield from start_sandbox("sandbox.accurate")


@pytest.fixture(scope="module")
def iseller_url() -> Iterator[str]:
    """A running iSeller sandbox."""
    yield from start_sandbox("sandbox.iseller")


@pytest.fixture
def accurate(accurate_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccurateHook]:
    """A hook on the sandbox's ``accurate_api`` connection."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": accurate_url,
                "password": ACCURATE_TOKEN,
                "extra": {"signature_secret": ACCURATE_SECRET},
            }
        ),
    )
    requests.delete(f"{accurate_url}/_sandbox/faults", timeout=5)
    hook = AccurateHook(max_retries=8)
    yield hook
    hook.close()
    requests.delete(f"{accurate_url}/_sandbox/faults", timeout=5)
    requests.post(f"{accurate_url}/_sandbox/config", json={"moved": False}, timeout=5)


@pytest.fixture
def iseller(iseller_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[IsellerHook]:
    """A hook on the sandbox's ``iseller_api`` connection."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ISELLER_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": iseller_url,
                "login": "sandbox-client",
                "password": "sandbox-secret",
            }
        ),
    )
    hook = IsellerHook()
    yield hook
    hook.close()


def test_discovery_answers_the_sandbox_itself(accurate: AccurateHook, accurate_url: str) -> None:
    assert accurate.discover_host() == accurate_url
    ok, message = accurate.test_connection()
    assert ok, message


def test_save_then_duplicate_save(accurate: AccurateHook) -> None:
    number = f"IT-{uuid.uuid4().hex[:8].upper()}"
    record = {"customerNo": number, "name": f"Integration {number}"}
    first = accurate.save("customer", record)
    assert first.ok, first.reason
    assert first.number == number and first.id is not None
    second = accurate.save("customer", record)
    assert not second.ok and second.duplicate_number, second.reason
    found = accurate.detail("customer", customerNo=number)
    assert found is not None and found["customerNo"] == number


def test_list_paging_and_find_by_numbers(accurate: AccurateHook) -> None:
    total = accurate.call("customer", "list", params={"sp.pageSize": 1})["sp"]["rowCount"]
    rows = list(accurate.list("customer", fields=["id", "customerNo", "name"], page_size=2))
    assert total > 2 and len(rows) == total
    assert len({row["id"] for row in rows}) == total
    wanted = [row["customerNo"] for row in rows[:3]] + ["NO-SUCH-CUSTOMER"]
    found = accurate.find_by_numbers("customer", wanted, field="customerNo")
    assert sorted(found) == sorted(wanted[:3])


def test_bulk_save_reports_each_record(accurate: AccurateHook) -> None:
    number = f"IT-{uuid.uuid4().hex[:8].upper()}"
    results = accurate.bulk_save(
        "customer",
        [
            {"customerNo": f"{number}-A", "name": "Bulk A"},
            {"customerNo": f"{number}-A", "name": "Bulk A again"},
            {"customerNo": f"{number}-B", "name": "Bulk B"},
        ],
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].duplicate_number


@pytest.mark.parametrize("idempotent", [False, True])
def test_answer_lost_after_commit(accurate: AccurateHook, accurate_url: str, idempotent: bool) -> None:
    hook = AccurateHook(timeout=0.5)
    hook.discover_host()
    requests.post(
        f"{accurate_url}/_sandbox/faults",
        timeout=5,
        json={
            "fail_next": 1,
            "fail_next_kind": "commit_then_timeout",
            "timeout_seconds": 1.5,
            "modules": ["customer"],
            "actions": ["save"],
        },
    )
    number = f"IT-{uuid.uuid4().hex[:8].upper()}"
    record = {"customerNo": number, "name": "Lost answer"}
    if idempotent:
        result = hook.save("customer", record)  # re-sent: Accurate refuses the duplicate
        assert not result.ok and result.duplicate_number and result.resent
    else:
        with pytest.raises(OutcomeUnknownError) as caught:
            hook.save("customer", record, idempotent=False)
        assert caught.value.number == number
    assert hook.detail("customer", customerNo=number) is not None  # the first attempt was stored
    hook.close()


def test_database_move_is_followed(accurate: AccurateHook, accurate_url: str) -> None:
    accurate.discover_host()
    requests.post(f"{accurate_url}/_sandbox/config", json={"moved": True}, timeout=5)
    rows = list(accurate.list("customer", page_size=100))  # 308, followed keeping method and headers
    assert rows
    assert accurate.discover_host() == f"{accurate_url}/moved-db"


def test_rate_limited_calls_all_succeed_through_retries(accurate: AccurateHook, accurate_url: str) -> None:
    accurate.discover_host()
    requests.post(f"{accurate_url}/_sandbox/faults", json={"rate_limit_per_s": 2}, timeout=5)
    requests.delete(f"{accurate_url}/_sandbox/requests", timeout=5)
    for _ in range(10):
        assert accurate.call("customer", "list", params={"sp.pageSize": 1})["s"] is True
    log = requests.get(f"{accurate_url}/_sandbox/requests", timeout=5).json()["requests"]
    statuses = [entry["status_code"] for entry in log]
    assert statuses.count(200) == 10 and 429 in statuses


def test_local_limiter_keeps_below_the_sandbox_limit(accurate: AccurateHook, accurate_url: str) -> None:
    accurate.rate_limiter = LocalRateLimiter()
    accurate.discover_host()
    requests.delete(f"{accurate_url}/_sandbox/requests", timeout=5)
    for _ in range(12):
        accurate.call("customer", "list", params={"sp.pageSize": 1})
    log = requests.get(f"{accurate_url}/_sandbox/requests", timeout=5).json()["requests"]
    assert [entry["status_code"] for entry in log] == [200] * 12  # never a 429


def test_iseller_token_and_order_paging(iseller: IsellerHook, iseller_url: str) -> None:
    pages = list(iseller.get_orders_pages(page_size=20))
    assert len(pages) > 1 and pages[-1]["has_next_item"] is False
    orders = [order for page in pages for order in page["orders"]]
    assert len(orders) == pages[0]["count"]
    assert len({order["order_id"] for order in orders}) == len(orders)
    assert iseller.access_token().resource_url == iseller_url


def test_iseller_expired_token_is_renewed(iseller: IsellerHook, iseller_url: str) -> None:
    assert iseller.get_outlets()
    requests.post(f"{iseller_url}/_sandbox/tokens/expire", timeout=5)
    assert iseller.get_outlets()  # 401, refresh grant, second try
