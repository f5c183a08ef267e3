"""Accurate sandbox contract: 429 limits, 308 moves, injected faults, request log, reset, clock."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.sandbox.accurate_fixtures import AccurateApi

pytest_plugins = ["tests.sandbox.accurate_fixtures"]

ITEM_LIST = "/accurate/api/item/list.do"


async def _burst(accurate: AccurateApi, count: int, path: str = ITEM_LIST) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=accurate.base_url, timeout=15) as client:
        return await asyncio.gather(*(client.get(path, headers=accurate.headers()) for _ in range(count)))


# ----------------------------------------------------------------------------- rate limits


def test_burst_beyond_8_per_second_gets_429_with_retry_after(accurate: AccurateApi) -> None:
    accurate.faults(rate_limit_per_s=8, max_in_flight=8)
    started = time.monotonic()
    responses = asyncio.run(_burst(accurate, 30))
    elapsed = time.monotonic() - started
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(limited) == 30
    # A full bucket of 8, plus what refills while the burst lasts (a loaded machine spreads it).
    assert 1 <= len(ok) <= 8 + math.ceil(8 * elapsed), [r.status_code for r in responses]
    assert len(limited) >= 10
    for response in limited:
        assert int(response.headers["Retry-After"]) >= 1
        body = response.json()
        assert body["s"] is False and body["d"] and isinstance(body["d"][0], str)
    time.sleep(1.05)
    assert all(r.status_code == 200 for r in asyncio.run(_burst(accurate, 8)))


def test_a_paced_client_at_8_per_second_is_never_limited(accurate: AccurateApi) -> None:
    accurate.faults(rate_limit_per_s=8, max_in_flight=8)
    time.sleep(1.0)
    statuses = []
    for _ in range(20):
        statuses.append(accurate.http.get(ITEM_LIST, headers=accurate.headers()).status_code)
        time.sleep(0.13)
    assert statuses == [200] * 20


def test_more_than_8_in_flight_gets_429(accurate: AccurateApi) -> None:
    accurate.faults(rate_limit_per_s=None, max_in_flight=8, latency_ms=1500)
    responses = asyncio.run(_burst(accurate, 20))
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) <= 8 and len(limited) >= 12
    assert "bersamaan" in limited[0].json()["d"][0]
    assert limited[0].headers["Retry-After"] == "1"


def test_rate_limit_is_configurable_and_control_routes_are_never_limited(accurate: AccurateApi) -> None:
    accurate.faults(rate_limit_per_s=1, max_in_flight=8)
    statuses = [r.status_code for r in asyncio.run(_burst(accurate, 5))]
    assert 1 <= statuses.count(200) <= 2 and statuses.count(429) >= 3
    assert all(accurate.http.get("/_sandbox/health").status_code == 200 for _ in range(30))
    accurate.faults(rate_limit_per_s=0)
    assert all(r.status_code == 200 for r in asyncio.run(_burst(accurate, 8)))


def test_429_message_in_english(accurate: AccurateApi) -> None:
    accurate.faults(rate_limit_per_s=1)
    accurate.http.get(ITEM_LIST, headers=accurate.headers())
    response = accurate.http.get(ITEM_LIST, headers=accurate.headers(**{"X-Language-Profile": "US"}))
    assert response.status_code == 429 and "Too many requests" in response.json()["d"][0]


# ----------------------------------------------------------------------------- 308


def test_moved_database_answers_308_and_clients_can_follow_it(accurate: AccurateApi) -> None:
    accurate.config(moved=True)
    response = accurate.data("sales-invoice", "save", "POST", json=accurate.invoice("MV-1"))
    assert response.status_code == 308
    assert response.headers["Location"] == f"{accurate.base_url}/moved-db/accurate/api/sales-invoice/save.do"
    assert accurate.control("GET", "records/sales-invoice")["d"] == []  # a 308 stores nothing
    with httpx.Client(base_url=accurate.base_url, follow_redirects=True) as client:
        followed = client.post(
            "/accurate/api/sales-invoice/save.do", json=accurate.invoice("MV-1"), headers=accurate.headers()
        )
        assert followed.status_code == 200 and followed.json()["s"] is True
        assert str(followed.url).startswith(f"{accurate.base_url}/moved-db/")
        detail = client.get(
            "/accurate/api/sales-invoice/detail.do", params={"number": "MV-1"}, headers=accurate.headers()
        )
        assert detail.json()["d"]["number"] == "MV-1"
    discovered = accurate.ok(accurate.request("GET", "/api/api-token.do"))["d"]["data usaha"]["host"]
    assert discovered == f"{accurate.base_url}/moved-db"
    moved_detail = httpx.get(
        f"{discovered}/accurate/api/sales-invoice/detail.do",
        params={"number": "MV-1"},
        headers=accurate.headers(),
    )
    assert moved_detail.json()["d"]["number"] == "MV-1"


def test_redirect_keeps_the_query_and_the_new_prefix_is_always_served(accurate: AccurateApi) -> None:
    assert (
        accurate.ok(
            accurate.request("GET", "/moved-db/accurate/api/item/detail.do", params={"no": "BRG-0001"})
        )["d"]["no"]
        == "BRG-0001"
    )
    accurate.config(moved=True, moved_prefix="/zeus2")
    response = accurate.data("item", "detail", params={"no": "BRG-0001"})
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/zeus2/accurate/api/item/detail.do?no=BRG-0001")
    assert accurate.request("GET", "/nowhere/accurate/api/item/detail.do").status_code == 404


# ----------------------------------------------------------------------------- faults


def test_error_fault_answers_500_without_committing(accurate: AccurateApi) -> None:
    accurate.faults(error_rate=1)
    response = accurate.data("sales-invoice", "save", "POST", json=accurate.invoice("E-1"))
    assert response.status_code == 500 and response.json()["s"] is False
    accurate.faults(error_rate=0, error_status=503)
    accurate.faults(fail_next=1)
    response = accurate.data("sales-invoice", "save", "POST", json=accurate.invoice("E-1"))
    assert response.status_code == 503 and response.headers["content-type"].startswith("text/html")
    assert accurate.detail("sales-invoice", number="E-1")["s"] is False


def test_timeout_fault_does_not_commit(accurate: AccurateApi) -> None:
    accurate.faults(timeout_rate=1, timeout_seconds=0.8, modules=["sales-invoice"])
    with pytest.raises(httpx.ReadTimeout):
        accurate.data("sales-invoice", "save", "POST", json=accurate.invoice("T-1"), timeout=0.3)
    accurate.control("DELETE", "faults")
    accurate.faults(rate_limit_per_s=None, max_in_flight=None)
    time.sleep(0.8)
    assert accurate.detail("sales-invoice", number="T-1")["s"] is False
    log = accurate.control("GET", "requests", params={"module": "sales-invoice", "action": "save"})[
        "requests"
    ]
    assert log[-1]["fault"] == "timeout" and log[-1]["status_code"] == 504


def test_commit_then_timeout_commits_and_the_answer_is_lost(accurate: AccurateApi) -> None:
    accurate.faults(commit_then_timeout_rate=1, timeout_seconds=1.0, actions=["save"])
    with pytest.raises(httpx.ReadTimeout):
        accurate.data("sales-invoice", "save", "POST", json=accurate.invoice("CT-1"), timeout=0.3)
    detail = accurate.detail("sales-invoice", number="CT-1")  # list/detail are not faulted here
    assert detail["s"] is True and detail["d"]["number"] == "CT-1"
    # A client waiting longer than the sleep sees the connection dropped mid-answer.
    accurate.faults(timeout_seconds=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        accurate.data("sales-invoice", "save", "POST", json=accurate.invoice("CT-2"), timeout=5)
    accurate.faults(commit_then_timeout_rate=0)
    assert accurate.detail("sales-invoice", number="CT-2")["s"] is True
    # The retry of the same number is refused: the client must look it up.
    retry = accurate.save("sales-invoice", accurate.invoice("CT-2"))
    assert retry["d"] == ["Sudah ada data lain dengan No Form # CT-2"]


def test_fail_next_faults_exactly_n_matching_requests(accurate: AccurateApi) -> None:
    accurate.faults(fail_next=2, modules=["item"], actions=["list"])
    assert accurate.data("customer", "list").status_code == 200
    statuses = [accurate.data("item", "list").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    accurate.faults(fail_next=1, fail_next_kind="timeout", timeout_seconds=0.2)
    started = time.monotonic()
    response = accurate.data("item", "list", timeout=5)
    assert response.status_code == 504 and time.monotonic() - started >= 0.2
    assert accurate.control("GET", "faults")["fail_next"] == 0


def test_fault_settings_are_validated_and_can_be_cleared(accurate: AccurateApi) -> None:
    accurate.control("POST", "faults", expect=400, json={"error_rate": 2})
    accurate.control("POST", "faults", expect=400, json={"no_such_fault": 1})
    accurate.control("POST", "faults", expect=400, json={"error_status": 404})
    settings = accurate.faults(error_rate=0.5, duplicate_webhook_rate=0.25)
    assert settings["error_rate"] == 0.5 and settings["duplicate_webhook_rate"] == 0.25
    cleared = accurate.control("DELETE", "faults")
    assert cleared["error_rate"] == 0 and cleared["rate_limit_per_s"] == 8 and cleared["max_in_flight"] == 8


# ----------------------------------------------------------------------------- request log, reset, clock


def test_request_log_records_calls_and_saved_numbers(accurate: AccurateApi) -> None:
    accurate.control("DELETE", "requests")
    saved = accurate.save("sales-invoice", accurate.invoice("LOG-1"))["r"]
    accurate.bulk("sales-invoice", [accurate.invoice("LOG-2"), accurate.invoice("LOG-1")])
    accurate.http.get(ITEM_LIST)  # unsigned: 401
    log = accurate.control("GET", "requests")["requests"]
    assert [(e["module"], e["action"], e["status_code"]) for e in log] == [
        ("sales-invoice", "save", 200),
        ("sales-invoice", "bulk-save", 200),
        ("item", "list", 401),
    ]
    first = log[0]
    assert first["method"] == "POST" and first["path"] == "/accurate/api/sales-invoice/save.do"
    assert first["s"] is True and first["saved"] == [{"id": saved["id"], "number": "LOG-1"}]
    assert log[1]["saved"][0]["number"] == "LOG-2" and log[1]["failed"] == 1
    assert {"time", "duration_ms", "fault"} <= set(first)
    only = accurate.control("GET", "requests", params={"module": "sales-invoice", "action": "bulk-save"})
    assert len(only["requests"]) == 1
    assert accurate.control("GET", "requests", params={"limit": 1})["requests"][0]["module"] == "item"
    accurate.control("DELETE", "requests")
    assert accurate.control("GET", "requests")["requests"] == []


def test_reset_rebuilds_everything(accurate: AccurateApi) -> None:
    accurate.save("sales-invoice", accurate.invoice("RS-1", lines=[("BRG-0001", 5)]))
    accurate.config(refuse_negative_stock=True)
    stock = accurate.stock("BRG-0001", "Gudang Kemang")
    accurate.control("POST", "reset", json={})
    accurate.faults(rate_limit_per_s=None, max_in_flight=None)
    assert accurate.detail("sales-invoice", number="RS-1")["s"] is False
    assert accurate.stock("BRG-0001", "Gudang Kemang") == stock + 5
    assert accurate.control("GET", "config")["refuse_negative_stock"] is False
    assert accurate.control("POST", "reset", json={"seed": 7})["seed"] == 7
    accurate.faults(rate_limit_per_s=None, max_in_flight=None)
    assert accurate.control("GET", "health")["seed"] == 7
    assert accurate.stock("BRG-0001", "Gudang Kemang") != stock + 5 or accurate.stock(
        "BRG-0002", "Gudang Kemang"
    )


def test_sandbox_clock_moves_forward_only(accurate: AccurateApi) -> None:
    before = accurate.control("GET", "clock")
    moved = accurate.advance_clock(3600)
    assert moved["unix"] - before["unix"] >= 3600
    assert moved["offset_seconds"] == 3600
    target = datetime.fromisoformat(moved["now"]) + timedelta(days=2)
    assert (
        accurate.control("POST", "clock", json={"now": target.isoformat()})["now"][:16]
        == target.isoformat()[:16]
    )
    accurate.clock_offset = float(accurate.control("GET", "clock")["offset_seconds"])
    accurate.control("POST", "clock", expect=400, json={"advance_seconds": -5})
    accurate.control("POST", "clock", expect=400, json={"now": "2020-01-01T00:00:00+00:00"})
    assert accurate.ok(accurate.data("item", "list"))["s"] is True


def test_config_is_validated(accurate: AccurateApi) -> None:
    accurate.control("POST", "config", expect=400, json={"bulk_outer_s": "sometimes"})
    accurate.control("POST", "config", expect=400, json={"refuse_negative_stock": "yes"})
    accurate.control("POST", "config", expect=400, json={"unknown": True})
    config: dict[str, Any] = accurate.control("GET", "config")
    assert config["moved"] is False and config["moved_prefix"] == "/moved-db"


# ----------------------------------------------------------------------------- fault counts and seed


def test_fault_counts_count_each_kind_the_sandbox_injected(accurate: AccurateApi) -> None:
    accurate.control("DELETE", "fault-counts")
    accurate.faults(rate_limit_per_s=0, fail_next=2, fail_next_kind="error")
    statuses = [accurate.http.get(ITEM_LIST, headers=accurate.headers()).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    accurate.faults(rate_limit_per_s=1)
    asyncio.run(_burst(accurate, 5))
    accurate.faults(rate_limit_per_s=0)
    accurate.config(moved=True)
    assert accurate.http.get(ITEM_LIST, headers=accurate.headers()).status_code == 308
    accurate.config(moved=False)
    counts = accurate.control("GET", "fault-counts")
    assert counts["error"] == 2 and counts["moved"] == 1 and counts["rate_limited"] >= 3, counts
    assert accurate.control("DELETE", "fault-counts") == {}
    assert accurate.control("GET", "fault-counts") == {}


def test_the_same_fault_seed_rolls_the_same_faults(accurate: AccurateApi) -> None:
    def roll() -> list[int]:
        accurate.faults(rate_limit_per_s=0, error_rate=0.5, seed=7)
        return [accurate.http.get(ITEM_LIST, headers=accurate.headers()).status_code for _ in range(12)]

    first = roll()
    assert first == roll() and 500 in first and 200 in first
    accurate.control("POST", "faults", expect=400, json={"seed": "x"})
