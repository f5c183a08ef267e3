"""Contract of the Accurate sandbox's variant switches: discovery key, page-size rule, moved_to, OAuth.

Each switch is exercised in both directions over a real socket; defaults keep the old behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.accurate.app import DEFAULT_OAUTH_TOKEN

if TYPE_CHECKING:
    from tests.sandbox.accurate_fixtures import AccurateApi, AccurateServer

pytest_plugins = ["tests.sandbox.accurate_fixtures"]
pytestmark = pytest.mark.sandbox

OAUTH = {"Authorization": f"Bearer {DEFAULT_OAUTH_TOKEN}"}


def test_defaults_keep_the_old_behaviour(accurate: AccurateApi) -> None:
    config = accurate.control("GET", "config")
    assert config["discovery_key"] == "data usaha"
    assert (config["max_page_size"], config["page_size_over_max"]) == (100, "cap")
    assert config["moved_to"] == "" and config["oauth"] is True and config["session_ttl_seconds"] == 3600
    assert config["created_date"] is True and config["session_authority"] == ""
    assert "data usaha" in accurate.ok(accurate.request("GET", "/api/api-token.do"))["d"]


@pytest.mark.parametrize(
    "change",
    [
        {"discovery_key": "db"},
        {"max_page_size": 0},
        {"page_size_over_max": "truncate"},
        {"moved_to": "localhost:9"},
        {"moved_to": "http://other.test/path"},
        {"session_ttl_seconds": 0},
        {"oauth": "yes"},
        {"created_date": "no"},
        {"session_authority": "localhost:9"},
    ],
)
def test_invalid_switch_values_are_refused(accurate: AccurateApi, change: dict[str, Any]) -> None:
    answer = accurate.control("POST", "config", expect=400, json=change)
    assert answer["s"] is False


@pytest.mark.parametrize("key", ["data usaha", "database", "host"])
def test_discovery_key_switch(accurate: AccurateApi, key: str) -> None:
    accurate.config(discovery_key=key)
    d = accurate.ok(accurate.request("GET", "/api/api-token.do"))["d"]
    database = d if key == "host" else d[key]
    assert database["host"] == accurate.base_url and database["id"] == 100042
    assert set(d) & {"data usaha", "database"} == ({key} - {"host"})


@pytest.mark.parametrize(("over_max", "size"), [("cap", 500), ("error", 500), ("cap", 1000), ("error", 1000)])
@pytest.mark.parametrize("max_size", [100, 1000])
def test_page_size_rule(accurate: AccurateApi, over_max: str, size: int, max_size: int) -> None:
    accurate.config(max_page_size=max_size, page_size_over_max=over_max)
    body = accurate.list("item", {"sp.pageSize": size, "fields": "no"})
    if size <= max_size:
        assert body["s"] is True and body["sp"]["pageSize"] == size
    elif over_max == "cap":
        assert body["s"] is True and body["sp"]["pageSize"] == max_size
    else:
        assert body["s"] is False and body["d"] == [f"sp.pageSize: maksimal {max_size} data per halaman"]


def test_documents_carry_created_date_masters_do_not(accurate: AccurateApi) -> None:
    order = accurate.list("purchase-order", {"fields": "number,createdDate", "sp.pageSize": 1})["d"][0]
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", order["createdDate"])
    item = accurate.list("item", {"fields": "no,createdDate", "sp.pageSize": 1})["d"][0]
    assert "createdDate" not in item
    saved = accurate.save("sales-invoice", accurate.invoice("SI-CD-1"))
    assert saved["s"] is True and saved["r"]["createdDate"] == saved["r"]["lastUpdate"]


@pytest.mark.parametrize("created_date", [True, False])
def test_created_date_switch(accurate: AccurateApi, created_date: bool) -> None:
    """Off: documents answer without ``createdDate`` (save, detail, list) and a filter on it matches none."""
    accurate.config(created_date=created_date)
    saved = accurate.save("sales-invoice", accurate.invoice("SI-CD-2"))
    assert saved["s"] is True
    detail = accurate.detail("sales-invoice", number="SI-CD-2")["d"]
    rows = accurate.list("purchase-order", {"fields": "number,createdDate", "sp.sort": "createdDate|desc"})
    since = accurate.list(
        "purchase-order", {"filter.createdDate.op": "LESS_THAN", "filter.createdDate.val": "01/01/2100"}
    )
    empty = accurate.list("purchase-order", {"filter.createdDate.op": "EMPTY"})
    assert detail["number"] == "SI-CD-2" and detail["lastUpdate"]
    numbers = sorted(row["number"] for row in rows["d"])
    assert len(numbers) == 6 and rows["sp"]["rowCount"] == 6
    if created_date:
        assert saved["r"]["createdDate"] == detail["createdDate"] == detail["lastUpdate"]
        assert all(row["createdDate"] for row in rows["d"])
        assert (since["sp"]["rowCount"], empty["sp"]["rowCount"]) == (6, 0)
    else:
        assert "createdDate" not in saved["r"] and "createdDate" not in detail
        assert not any("createdDate" in row for row in rows["d"])
        assert (since["sp"]["rowCount"], empty["sp"]["rowCount"]) == (0, 6)
        stored = accurate.control("GET", "records/sales-invoice")["d"]
        assert any(r["number"] == "SI-CD-2" and r["createdDate"] for r in stored)  # kept, not shown


@pytest.mark.parametrize("moved", [False, True])
def test_moved_to_another_origin(accurate: AccurateApi, moved: bool) -> None:
    other = "http://localhost:9"
    accurate.config(moved=moved, moved_to=other)
    answer = accurate.data("customer", "list", params={"sp.pageSize": 1})
    host = accurate.ok(accurate.request("GET", "/api/api-token.do"))["d"]["data usaha"]["host"]
    if moved:
        assert answer.status_code == 308
        assert answer.headers["Location"] == f"{other}/accurate/api/customer/list.do?sp.pageSize=1"
        assert host == other
    else:
        assert answer.status_code == 200 and host == accurate.base_url


def open_db(accurate: AccurateApi) -> dict[str, Any]:
    answer = accurate.http.get("/api/open-db.do", params={"id": 100042}, headers=OAUTH)
    return dict(accurate.ok(answer))


def session_call(accurate: AccurateApi, session: str, **headers: str) -> Any:
    return accurate.http.get(
        "/accurate/api/customer/list.do", headers={**OAUTH, "X-Session-ID": session, **headers}
    )


def test_oauth_routes_answer_the_public_shapes(accurate: AccurateApi) -> None:
    listed = accurate.ok(accurate.http.get("/api/db-list.do", headers=OAUTH))
    assert listed["s"] is True and [db["id"] for db in listed["d"]] == [100042]
    opened = open_db(accurate)
    assert opened["s"] is True and opened["host"] == accurate.base_url and opened["session"]
    assert session_call(accurate, opened["session"]).status_code == 200

    unknown = accurate.ok(accurate.http.get("/api/open-db.do", params={"id": 1}, headers=OAUTH))
    assert unknown["s"] is False and "1" in unknown["d"][0]


def test_oauth_session_expires_and_is_refreshed(accurate: AccurateApi) -> None:
    session = open_db(accurate)["session"]
    same = accurate.ok(
        accurate.http.get(
            "/api/db-refresh-session.do", params={"id": 100042, "session": session}, headers=OAUTH
        )
    )
    assert same["d"]["session"] == session  # still valid: kept

    accurate.advance_clock(3600)
    expired = session_call(accurate, session, **{"X-Language-Profile": "US"})
    assert expired.status_code == 401 and "expired" in expired.json()["d"][0]
    renewed = accurate.ok(
        accurate.http.get(
            "/api/db-refresh-session.do", params={"id": 100042, "session": session}, headers=OAUTH
        )
    )
    assert renewed["s"] is True and renewed["d"]["session"] != session
    assert renewed["d"]["host"] == accurate.base_url
    assert session_call(accurate, renewed["d"]["session"]).status_code == 200

    gone = accurate.ok(
        accurate.http.get(
            "/api/db-refresh-session.do", params={"id": 100042, "session": "nope"}, headers=OAUTH
        )
    )
    assert gone["s"] is False


def test_oauth_refuses_wrong_tokens_and_sessions(accurate: AccurateApi) -> None:
    session = open_db(accurate)["session"]
    wrong_token = accurate.http.get(
        "/accurate/api/customer/list.do", headers={"Authorization": "Bearer x", "X-Session-ID": session}
    )
    assert wrong_token.status_code == 401
    assert session_call(accurate, "not-a-session").status_code == 401
    no_session = accurate.http.get("/accurate/api/customer/list.do", headers=OAUTH)
    assert no_session.status_code == 401  # without X-Session-ID the call is an API-token call
    api_token_on_oauth_route = accurate.request("GET", "/api/db-list.do")
    assert api_token_on_oauth_route.status_code == 401


@pytest.mark.parametrize("trusted", [False, True])
def test_session_authority_lets_a_data_host_accept_the_account_hosts_sessions(
    accurate: AccurateApi,
    accurate_start: Callable[..., AbstractContextManager[AccurateServer]],
    trusted: bool,
) -> None:
    with accurate_start("--seed", "7") as server:
        data_host = type(accurate)(server.base_url)
        try:
            if trusted:
                data_host.config(session_authority=accurate.base_url)
            session = open_db(accurate)["session"]  # opened at the account host, not here
            first = session_call(data_host, session, **{"X-Language-Profile": "US"})
            unknown = session_call(data_host, "not-a-session")
            accurate.advance_clock(3600)  # expires at the account host
            expired = session_call(data_host, session, **{"X-Language-Profile": "US"})
            data_host.config(session_authority="http://127.0.0.1:9")  # nothing listens there
            unreachable = session_call(data_host, open_db(accurate)["session"])
        finally:
            data_host.close()
    assert unknown.status_code == 401 and expired.status_code == 401
    assert unreachable.status_code == 401  # an account host that cannot be asked confirms nothing
    if trusted:
        assert first.status_code == 200 and "expired" in expired.json()["d"][0]
        checks = accurate.control("GET", "requests", params={"action": "db-check-session"})["requests"]
        assert [c["status_code"] for c in checks] == [200, 200, 200]
    else:
        assert first.status_code == 401 and "unknown database session" in first.json()["d"][0]


@pytest.mark.parametrize("enabled", [True, False])
def test_oauth_switch(accurate: AccurateApi, enabled: bool) -> None:
    session = open_db(accurate)["session"]
    accurate.config(oauth=enabled)
    listed = accurate.http.get("/api/db-list.do", headers=OAUTH)
    data = session_call(accurate, session)
    assert (listed.status_code, data.status_code) == ((200, 200) if enabled else (401, 401))
    # The API-token method is served either way.
    assert accurate.data("customer", "list").status_code == 200
