"""The Accurate hook against every variant the public material allows, served by the real sandbox.

Each variant is a sandbox switch (``/_sandbox/config``); every test runs the hook over real sockets in
both directions of its switch: discovery key, cross-host 308, page-size rule, OAuth session flow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import pytest

from include.iseller_accurate.clients import AccurateHook
from include.iseller_accurate.clients.errors import ApiError, AuthError
from sandbox.accurate.app import DEFAULT_OAUTH_TOKEN

if TYPE_CHECKING:
    from tests.sandbox.accurate_fixtures import AccurateApi, AccurateServer

pytest_plugins = ["tests.sandbox.accurate_fixtures"]
pytestmark = pytest.mark.sandbox

TOKEN = "sandbox-api-token"
SECRET = "sandbox-signature-secret"
#: Items added on top of the 48 seeded ones, so that even 1000-row pages need two calls.
EXTRA_ITEMS = 1100


def use_connection(monkeypatch: pytest.MonkeyPatch, base_url: str, **extra: Any) -> None:
    """Point the ``accurate_api`` connection at a sandbox (API token by default)."""
    password = extra.pop("password", TOKEN)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": base_url,
                "password": password,
                "extra": {"signature_secret": SECRET, **extra},
            }
        ),
    )


@pytest.fixture
def hook(accurate: AccurateApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccurateHook]:
    """A hook (API-token method) on a freshly reset sandbox."""
    use_connection(monkeypatch, accurate.base_url)
    client = AccurateHook(max_retries=2)
    yield client
    client.close()


@pytest.fixture
def oauth_hook(accurate: AccurateApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccurateHook]:
    """A hook in the OAuth session mode (access token, no signature secret needed)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": accurate.base_url,
                "password": DEFAULT_OAUTH_TOKEN,
                "extra": {"auth_mode": "oauth"},
            }
        ),
    )
    client = AccurateHook(max_retries=2)
    yield client
    client.close()


def calls(api: AccurateApi, action: str | None = None, module: str | None = None) -> list[dict[str, Any]]:
    """The sandbox's request log."""
    params = {k: v for k, v in {"module": module, "action": action}.items() if v}
    return list(api.control("GET", "requests", params=params)["requests"])


# ---------------------------------------------------------------- discovery key


@pytest.mark.parametrize("key", ["data usaha", "database", "host"])
def test_discovery_reads_the_database_under_every_public_key(
    accurate: AccurateApi, hook: AccurateHook, key: str
) -> None:
    accurate.config(discovery_key=key)
    raw = accurate.ok(accurate.request("GET", "/api/api-token.do"))["d"]
    holder = raw if key == "host" else raw[key]
    assert holder["host"] == accurate.base_url
    assert not ({"data usaha", "database"} - {key}) & set(raw)  # only this variant's key

    assert hook.discover_host() == accurate.base_url
    assert hook.database["id"] == 100042
    assert next(hook.list("customer", fields=["customerNo"]))["customerNo"]


# ---------------------------------------------------------------- 308 to another host


@pytest.fixture
def other_sandbox(
    accurate_start: Callable[..., AbstractContextManager[AccurateServer]],
) -> Iterator[str]:
    """A second sandbox (same token and secret) reached by another host name: ``localhost``."""
    with accurate_start("--seed", "7") as server:
        yield server.base_url.replace("127.0.0.1", "localhost")


@pytest.mark.parametrize("moved", [False, True])
def test_a_database_moved_to_another_host_is_followed_with_every_signed_header(
    accurate: AccurateApi, hook: AccurateHook, other_sandbox: str, moved: bool
) -> None:
    assert accurate.base_url.startswith("http://127.0.0.1:")
    hook.discover_host()  # the database is here when the hook first asks
    accurate.config(moved=moved, moved_to=other_sandbox)
    other = type(accurate)(other_sandbox)
    try:
        other.control("DELETE", "requests")
        result = hook.save("customer", {"customerNo": "C-MOVED", "name": "Pindah Host"})
        assert result.ok, result.messages

        here = calls(accurate, "save", "customer")
        there = calls(other, "save", "customer")
        if moved:
            assert [c["status_code"] for c in here] == [308]
            assert [c["status_code"] for c in there] == [200]  # Authorization and signature arrived
            assert hook.discover_host() == other_sandbox
            assert other.detail("customer", customerNo="C-MOVED")["s"] is True
            stored_here = accurate.control("GET", "records/customer")["d"]
            assert "C-MOVED" not in {r["customerNo"] for r in stored_here}
        else:
            assert [c["status_code"] for c in here] == [200] and there == []
    finally:
        other.close()


def test_a_redirect_to_a_host_discovery_does_not_name_is_refused(
    accurate: AccurateApi, hook: AccurateHook, other_sandbox: str
) -> None:
    """Credentials never go to a host the account host did not confirm (discovery still says here)."""
    hook.discover_host()
    # The sandbox redirects to the other server; its discovery names the other server too, so point
    # the hook's account host elsewhere: a third origin that answers discovery with this sandbox.
    accurate.config(moved=True, moved_to=other_sandbox)
    hook.discover_host = lambda *, refresh=False: accurate.base_url  # type: ignore[method-assign]
    other = type(accurate)(other_sandbox)
    try:
        other.control("DELETE", "requests")
        with pytest.raises(ApiError, match="does not confirm"):
            hook.call("customer", "list")
        assert calls(other) == []
    finally:
        other.close()


# ---------------------------------------------------------------- page size


@pytest.fixture
def many_items(accurate: AccurateApi) -> int:
    """Enough items for several pages of every size; answers the item count."""
    extra = [{"no": f"VAR-{n:05d}", "name": f"Barang Varian {n}"} for n in range(EXTRA_ITEMS)]
    accurate.control("POST", "items", json=extra)
    return int(accurate.list("item", {"sp.pageSize": 1})["sp"]["rowCount"])


@pytest.mark.parametrize(
    ("max_size", "over_max", "served", "refused"),
    [
        (100, "cap", 100, 0),  # the sandbox default: silent cap at 100
        (100, "error", 100, 1),  # 1000 refused, 100 served
        (1000, "cap", 1000, 0),  # the public integrator's observation
        (1000, "error", 1000, 0),
        (50, "cap", 50, 0),  # capped below what the hook asks for
        (50, "error", 20, 2),  # 1000 and 100 refused, 20 (the documented default) served
    ],
)
def test_list_pages_with_the_size_the_server_uses_without_skipping_or_repeating(
    accurate: AccurateApi,
    hook: AccurateHook,
    many_items: int,
    max_size: int,
    over_max: str,
    served: int,
    refused: int,
) -> None:
    accurate.config(max_page_size=max_size, page_size_over_max=over_max)
    accurate.control("DELETE", "requests")

    numbers = [row["no"] for row in hook.list("item", fields=["no"])]

    assert len(numbers) == many_items and len(set(numbers)) == many_items
    log = calls(accurate, "list", "item")
    assert sum(1 for c in log if c["s"] is False) == refused
    assert sum(1 for c in log if c["s"] is True) == math.ceil(many_items / served)


def test_list_with_an_explicit_page_size_still_reads_everything_when_capped(
    accurate: AccurateApi, hook: AccurateHook, many_items: int
) -> None:
    accurate.config(max_page_size=30)
    rows = list(hook.list("item", fields=["no"], page_size=500))
    assert len({row["no"] for row in rows}) == len(rows) == many_items


# ---------------------------------------------------------------- createdDate


def test_documents_carry_created_date_and_lists_filter_on_it(
    accurate: AccurateApi, hook: AccurateHook
) -> None:
    accurate.config(signature_clock="real")  # the hook signs with the real clock
    accurate.advance_clock(3600)
    saved = hook.save("sales-invoice", accurate.invoice("SI-VAR-1"))
    assert saved.ok, saved.messages
    stored = hook.detail("sales-invoice", number="SI-VAR-1")
    assert stored is not None and stored["createdDate"] == stored["lastUpdate"]
    created = stored["createdDate"]

    accurate.advance_clock(60)
    updated = hook.save(
        "sales-invoice", {**accurate.invoice("SI-VAR-1"), "id": saved.id, "description": "ubah"}
    )
    assert updated.ok, updated.messages
    again = hook.detail("sales-invoice", number="SI-VAR-1")
    assert again is not None and again["createdDate"] == created != again["lastUpdate"]

    found = list(
        hook.list("sales-invoice", fields=["number", "createdDate"], filters={"createdDate": created})
    )
    assert [row["number"] for row in found] == ["SI-VAR-1"]
    before = list(
        hook.list("purchase-order", fields=["number"], filters={"createdDate": ("LESS_THAN", created)})
    )
    assert len(before) == 6  # the seeded purchase orders, created before the invoice


@pytest.mark.parametrize("created_date", [True, False])
def test_documents_are_read_and_found_by_number_with_or_without_created_date(
    accurate: AccurateApi, hook: AccurateHook, created_date: bool
) -> None:
    """A public integrator reports real list records without ``createdDate``: reads must not need it."""
    accurate.config(created_date=created_date)
    saved = hook.save("sales-invoice", accurate.invoice("SI-VAR-2"))
    assert saved.ok, saved.messages

    stored = hook.detail("sales-invoice", number="SI-VAR-2")
    found = hook.find_by_numbers(
        "sales-invoice", ["SI-VAR-2", "SI-NONE"], fields=["transDate", "totalAmount"]
    )
    listed = list(hook.list("sales-invoice", fields=["number", "createdDate"]))

    assert stored is not None and stored["id"] == saved.id
    assert list(found) == ["SI-VAR-2"] and found["SI-VAR-2"]["id"] == saved.id
    assert [row["number"] for row in listed] == ["SI-VAR-2"]
    assert ("createdDate" in stored) is created_date
    assert ("createdDate" in listed[0]) is created_date


# ---------------------------------------------------------------- OAuth session flow


def test_oauth_mode_opens_the_database_and_sends_the_session(
    accurate: AccurateApi, oauth_hook: AccurateHook
) -> None:
    assert oauth_hook.discover_host() == accurate.base_url
    saved = oauth_hook.save("customer", {"customerNo": "C-OAUTH", "name": "Lewat OAuth"})
    assert saved.ok, saved.messages
    assert [c["action"] for c in calls(accurate, module="account")] == ["db-list", "open-db"]
    assert [c["status_code"] for c in calls(accurate, "save")] == [200]


def test_oauth_session_is_renewed_when_it_expires(accurate: AccurateApi, oauth_hook: AccurateHook) -> None:
    assert next(oauth_hook.list("customer", fields=["customerNo"]))
    accurate.advance_clock(3601)  # past session_ttl_seconds

    assert next(oauth_hook.list("customer", fields=["customerNo"]))

    account = [c["action"] for c in calls(accurate, module="account")]
    assert account == ["db-list", "open-db", "db-refresh-session"]
    statuses = [c["status_code"] for c in calls(accurate, "list", "customer")]
    assert statuses == [200, 401, 200]


def test_oauth_session_lost_by_the_server_is_opened_again(
    accurate: AccurateApi, oauth_hook: AccurateHook
) -> None:
    assert next(oauth_hook.list("customer", fields=["customerNo"]))
    accurate.reset()  # the server forgets every session: refresh refuses, open-db is asked again

    assert next(oauth_hook.list("customer", fields=["customerNo"]))
    account = [c["action"] for c in calls(accurate, module="account")]
    assert account == ["db-refresh-session", "db-list", "open-db"]


def test_oauth_with_an_explicit_database_id_skips_db_list(
    accurate: AccurateApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": accurate.base_url,
                "password": DEFAULT_OAUTH_TOKEN,
                "extra": {"auth_mode": "oauth", "database_id": "100042"},
            }
        ),
    )
    client = AccurateHook(max_retries=0)
    try:
        assert next(client.list("customer", fields=["customerNo"]))
        assert [c["action"] for c in calls(accurate, module="account")] == ["open-db"]
    finally:
        client.close()


@pytest.mark.parametrize("moved", [False, True])
def test_oauth_session_follows_a_database_moved_to_another_host_and_is_renewed_there(
    accurate: AccurateApi, oauth_hook: AccurateHook, other_sandbox: str, moved: bool
) -> None:
    """OAuth mode across a cross-host 308: the access token and ``X-Session-ID`` reach the new host (which
    accepts the account host's sessions: ``session_authority``), and a session that expires after the move
    is renewed at the account host and used on the new host."""
    assert accurate.base_url.startswith("http://127.0.0.1:")
    assert oauth_hook.discover_host() == accurate.base_url  # the database is here when first opened
    other = type(accurate)(other_sandbox)
    try:
        other.config(session_authority=accurate.base_url)
        other.control("DELETE", "requests")
        accurate.config(moved=moved, moved_to=other_sandbox)
        accurate.control("DELETE", "requests")

        saved = oauth_hook.save("customer", {"customerNo": "C-OAUTH-MOVED", "name": "Sesi Pindah Host"})
        assert saved.ok, saved.messages
        here, there = calls(accurate, "save", "customer"), calls(other, "save", "customer")
        if not moved:
            assert [c["status_code"] for c in here] == [200] and there == []
            assert calls(other) == []
            return
        assert [c["status_code"] for c in here] == [308]
        assert [c["status_code"] for c in there] == [200]  # the session header arrived with the token
        assert oauth_hook.discover_host() == other_sandbox
        assert other.detail("customer", customerNo="C-OAUTH-MOVED")["s"] is True

        # The session expires at the account host after the move: renewed there, used on the new host.
        accurate.advance_clock(3601)
        accurate.control("DELETE", "requests")
        other.control("DELETE", "requests")
        assert next(oauth_hook.list("customer", fields=["customerNo"]))
        account = [c["action"] for c in calls(accurate, module="account")]
        assert "db-refresh-session" in account and "open-db" not in account
        assert calls(accurate, "list", "customer") == []  # no data call went to the old host
        assert [c["status_code"] for c in calls(other, "list", "customer")] == [401, 200]
        assert oauth_hook.discover_host() == other_sandbox
    finally:
        other.close()


def test_oauth_switched_off_refuses_the_session_flow(accurate: AccurateApi, oauth_hook: AccurateHook) -> None:
    accurate.config(oauth=False)
    with pytest.raises(AuthError, match="tidak memakai OAuth") as refused:
        oauth_hook.discover_host()
    assert "OAuth access token" in str(refused.value) and DEFAULT_OAUTH_TOKEN not in str(refused.value)


def test_api_token_hook_still_signs_when_oauth_is_on(accurate: AccurateApi, hook: AccurateHook) -> None:
    """The default switch (``oauth`` on) leaves the API-token method as it was."""
    accurate.config(oauth=True)
    assert next(hook.list("customer", fields=["customerNo"]))
    assert [c["action"] for c in calls(accurate, module="account")] == ["api-token"]
