"""IsellerHook against a requests-level fake: OAuth token, 401 renewal, paging, errors, writes."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from include.iseller_accurate.clients import (
    ApiError,
    AuthError,
    IsellerBusinessError,
    IsellerHook,
    OutcomeUnknownError,
    TransientApiError,
    format_iseller_datetime,
    parse_iseller_datetime,
)
from include.iseller_accurate.clients import iseller as iseller_module
from tests.clients.conftest import CLIENT_ID, CLIENT_SECRET, OAUTH, STORE, assert_no_secrets

TOKEN_URL = f"{OAUTH}/oauth/token"
ORDERS = f"{STORE}/api/v2/GetOrders"


class TokenServer:
    """Fake OAuth endpoint issuing numbered tokens and recording the grants asked for."""

    def __init__(self, rsps: responses.RequestsMock, expires_in: int = 1_209_600) -> None:
        self.grants: list[dict[str, str]] = []
        self.issued = 0
        self.expires_in = expires_in
        rsps.add_callback(responses.POST, TOKEN_URL, callback=self)

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.grants.append(form)
        self.issued += 1
        body = {
            "access_token": f"access-{self.issued}",
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": f"refresh-{self.issued}",
            "resource_url": STORE,
        }
        return 200, {}, json.dumps(body)


def bearer(call: Any) -> str:
    return str(call.request.headers["Authorization"])


def api_calls(rsps: responses.RequestsMock) -> list[Any]:
    return [c for c in rsps.calls if not str(c.request.url).startswith(TOKEN_URL)]


def test_client_credentials_token_and_resource_url(rsps: responses.RequestsMock) -> None:
    tokens = TokenServer(rsps)
    rsps.add(
        responses.POST,
        f"{STORE}/api/v3/GetOutlets",
        json={"status": True, "outlets": [{"id": "o1"}], "has_next_item": False},
    )
    assert IsellerHook().get_outlets() == [{"id": "o1"}]
    assert tokens.grants == [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    ]
    assert rsps.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert bearer(rsps.calls[1]) == "Bearer access-1"


def test_token_is_cached_per_process_and_renewed_before_expiry(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = TokenServer(rsps, expires_in=3600)
    rsps.add(responses.POST, f"{STORE}/api/v2/GetStoreInfo", json={"status": True, "store_name": "Demo"})
    IsellerHook().get_store_info()
    IsellerHook().get_store_info()
    assert tokens.issued == 1
    later = datetime.now(UTC).timestamp() + 3600 - 60  # inside the renewal margin, not yet expired
    monkeypatch.setattr(iseller_module.time, "time", lambda: later)
    IsellerHook().get_store_info()
    assert [g["grant_type"] for g in tokens.grants] == ["client_credentials", "refresh_token"]
    assert tokens.grants[1]["refresh_token"] == "refresh-1"
    assert bearer(api_calls(rsps)[-1]) == "Bearer access-2"


def test_401_renews_the_token_and_retries_exactly_once(rsps: responses.RequestsMock) -> None:
    tokens = TokenServer(rsps)
    rsps.add(responses.POST, ORDERS, status=401, json={"status": False, "error_message": "expired"})
    rsps.add(
        responses.POST, ORDERS, json={"status": True, "orders": [{"order_id": "a"}], "has_next_item": False}
    )
    hook = IsellerHook(time_zone_semantics="ignored", first_page=1)
    assert [o["order_id"] for o in hook.get_orders()] == ["a"]
    assert [g["grant_type"] for g in tokens.grants] == ["client_credentials", "refresh_token"]
    assert [bearer(c) for c in api_calls(rsps)] == ["Bearer access-1", "Bearer access-2"]


def test_a_second_401_is_an_auth_error(rsps: responses.RequestsMock, waits: list[float]) -> None:
    tokens = TokenServer(rsps)
    rsps.add(
        responses.POST, ORDERS, status=401, json={"status": False, "error_message": "App not authorised"}
    )
    with pytest.raises(AuthError, match="App not authorised"):
        list(IsellerHook().get_orders())
    assert tokens.issued == 2 and len(api_calls(rsps)) == 2 and waits == []


def test_refused_refresh_falls_back_to_client_credentials(rsps: responses.RequestsMock) -> None:
    grants: list[str] = []

    def token(request: Any) -> tuple[int, dict[str, str], str]:
        grant = parse_qs(request.body)["grant_type"][0]
        grants.append(grant)
        if grant == "refresh_token":
            return 400, {}, json.dumps({"error": "invalid_grant"})
        n = len(grants)
        return (
            200,
            {},
            json.dumps(
                {
                    "access_token": f"a{n}",
                    "refresh_token": f"r{n}",
                    "expires_in": 99999,
                    "resource_url": STORE,
                }
            ),
        )

    rsps.add_callback(responses.POST, TOKEN_URL, callback=token)
    rsps.add(responses.POST, ORDERS, status=401)
    rsps.add(responses.POST, ORDERS, json={"status": True, "orders": [], "has_next_item": False})
    list(IsellerHook().get_orders())
    assert grants == ["client_credentials", "refresh_token", "client_credentials"]
    assert bearer(api_calls(rsps)[-1]) == "Bearer a3"


def test_wrong_client_secret_is_an_auth_error(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.add(
        responses.POST,
        TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": f"bad secret {CLIENT_SECRET}"},
    )
    with pytest.raises(AuthError) as caught:
        IsellerHook().get_store_info()
    assert "Check the client id and secret" in str(caught.value)
    assert_no_secrets(str(caught.value))
    assert waits == []


def test_paging_from_a_known_first_page_stops_on_has_next_item_false(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    for page in (1, 2, 3):
        rsps.add(
            responses.POST,
            f"{STORE}/api/v2/GetProducts",
            json={"status": True, "products": [{"product_id": f"p{page}"}], "has_next_item": page < 3},
        )
    products = list(IsellerHook(first_page=1).get_products(track_inventory=True))
    assert [p["product_id"] for p in products] == ["p1", "p2", "p3"]
    bodies = [json.loads(c.request.body) for c in api_calls(rsps)]
    assert [(b["page"], b["page_size"]) for b in bodies] == [(1, 200), (2, 200), (3, 200)]
    assert bodies[0]["track_inventory"] is True


def test_paging_stops_on_an_empty_page(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        f"{STORE}/api/v2/GetRegisterShifts",
        json={"status": True, "register_shifts": [{"register_shift_id": "s1"}], "has_next_item": True},
    )
    rsps.add(
        responses.POST,
        f"{STORE}/api/v2/GetRegisterShifts",
        json={"status": True, "register_shifts": [], "has_next_item": True},
    )
    hook = IsellerHook(time_zone_semantics="ignored")
    assert len(list(hook.get_register_shifts(register_id="r1"))) == 1
    assert len(api_calls(rsps)) == 2


def test_orders_pages_are_fetched_once_with_filters_in_utc(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        ORDERS,
        json={
            "status": True,
            "orders": [{"order_id": "o1"}],
            "refunded_orders": [{"order_id": "r1"}],
            "has_next_item": True,
        },
    )
    rsps.add(
        responses.POST,
        ORDERS,
        json={"status": True, "orders": [], "refunded_orders": [{"order_id": "r2"}], "has_next_item": False},
    )
    jakarta = timezone(timedelta(hours=7))
    pages = list(
        IsellerHook(time_zone_semantics="ignored").get_orders_pages(
            modified_after=datetime(2026, 11, 26, 7, 0, tzinfo=jakarta),
            modified_before=datetime(2026, 11, 26, 8, 0, 0, 250000, tzinfo=UTC),
            outlet_id="out-1",
        )
    )
    assert [len(p["orders"]) for p in pages] == [1, 0]
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body["modified_after"] == "2026-11-26T00:00:00"
    assert body["modified_before"] == "2026-11-26T08:00:00.250"
    assert body["includes"] == ["OrderDetails", "Transactions", "DiscountDetails"]
    assert body["sort"] == "ModifiedDate" and body["sort_direction"] == "asc" and body["outlet_id"] == "out-1"
    assert "created_after" not in body
    assert body["time_zone"] == 7 and body["page"] == 0  # Asia/Jakarta; pages tried from 0


def test_refunded_orders_iterator(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        ORDERS,
        json={
            "status": True,
            "orders": [{"order_id": "o1"}],
            "refunded_orders": [{"order_id": "r1"}],
            "has_next_item": False,
        },
    )
    assert [r["order_id"] for r in IsellerHook().get_refunded_orders(order_id="r1")] == ["r1"]


def test_read_refused_with_status_false_raises(rsps: responses.RequestsMock, waits: list[float]) -> None:
    TokenServer(rsps)
    rsps.add(responses.POST, ORDERS, json={"status": False, "error_message": "Outlet not found: x"})
    with pytest.raises(IsellerBusinessError, match="Outlet not found: x"):
        list(IsellerHook().get_orders(outlet_id="x"))
    assert len(api_calls(rsps)) == 1 and waits == []


def test_create_transfer_refusal_is_a_result(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        f"{STORE}/api/v3/CreateTransfer",
        json={"status": False, "error_message": "Product with SKU X not found"},
    )
    result = IsellerHook().create_transfer(
        {
            "outlet_code": "JKT01",
            "type": "in",
            "reference_code": "RI.1",
            "products": [{"sku": "X", "quantity": Decimal("2")}],
        }
    )
    assert not result.ok and result.reason == "Product with SKU X not found"
    assert json.loads(api_calls(rsps)[0].request.body)["products"] == [{"sku": "X", "quantity": 2}]


def test_create_transfer_success(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        f"{STORE}/api/v3/CreateTransfer",
        json={"status": True, "transfer_id": "t-1", "transfer_number": "TR-0001"},
    )
    result = IsellerHook().create_transfer({"outlet_code": "JKT01", "type": "in", "reference_code": "RI.1"})
    assert result.ok and result.transfer_id == "t-1" and result.transfer_number == "TR-0001"


def test_create_transfer_is_not_resent_after_a_read_timeout(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    TokenServer(rsps)
    rsps.add(responses.POST, f"{STORE}/api/v3/CreateTransfer", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknownError) as caught:
        IsellerHook().create_transfer({"outlet_code": "JKT01", "type": "in", "reference_code": "RI.7"})
    assert caught.value.number == "RI.7" and len(api_calls(rsps)) == 1 and waits == []


def test_create_transfer_is_resent_when_the_connection_never_opened(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    TokenServer(rsps)
    rsps.add(responses.POST, f"{STORE}/api/v3/CreateTransfer", body=requests.exceptions.ConnectTimeout("c"))
    rsps.add(responses.POST, f"{STORE}/api/v3/CreateTransfer", json={"status": True, "transfer_id": "t-2"})
    assert IsellerHook().create_transfer({"reference_code": "RI.8"}).ok
    assert len(waits) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_reads_are_retried_on_429_and_server_errors(
    rsps: responses.RequestsMock, waits: list[float], status: int
) -> None:
    TokenServer(rsps)
    rsps.add(responses.POST, ORDERS, status=status, headers={"Retry-After": "2"})
    rsps.add(responses.POST, ORDERS, body=requests.exceptions.ReadTimeout("slow"))
    rsps.add(responses.POST, ORDERS, json={"status": True, "orders": [], "has_next_item": False})
    assert list(IsellerHook().get_orders()) == []
    assert len(waits) == 2 and 2 <= waits[0] < 2.3


def test_reads_give_up_after_max_retries(rsps: responses.RequestsMock, waits: list[float]) -> None:
    TokenServer(rsps)
    rsps.add(responses.POST, ORDERS, status=503)
    with pytest.raises(TransientApiError) as caught:
        list(IsellerHook(max_retries=2).get_orders())
    assert caught.value.attempts == 3 and len(waits) == 2


def test_money_is_decimal(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        ORDERS,
        body='{"status": true, "has_next_item": false, "orders": '
        '[{"total_amount": 65000.00, "order_details": [{"quantity": 1.5}]}]}',
        content_type="application/json",
    )
    order = next(IsellerHook().get_orders())
    assert order["total_amount"] == Decimal("65000.00")
    assert str(order["total_amount"]) == "65000.00"
    assert order["order_details"][0]["quantity"] == Decimal("1.5")


def test_secrets_never_reach_messages_logs_or_reprs(
    rsps: responses.RequestsMock, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    TokenServer(rsps)
    echo = "token access-1 and access-2, client secret " + CLIENT_SECRET
    rsps.add(responses.POST, ORDERS, status=500, body=echo)
    rsps.add(responses.POST, ORDERS, status=401, json={"status": False, "error_message": echo})
    hook = IsellerHook()
    with pytest.raises(AuthError) as caught:
        list(hook.get_orders())
    texts = [str(caught.value), repr(hook), repr(hook.settings), repr(iseller_module._TOKENS)]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        assert_no_secrets(text)
        assert "access-1" not in text and "access-2" not in text and "refresh-1" not in text


def test_assumed_reads_use_the_seam(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        f"{STORE}/api/v3/GetTransfers",
        json={"status": True, "transfers": [{"transfer_id": "t1"}], "has_next_item": False},
    )
    rsps.add(
        responses.POST,
        f"{STORE}/api/v3/GetCustomers",
        json={"status": True, "customers": [{"customer_id": "c1"}], "has_next_item": False},
    )
    rsps.add(
        responses.POST,
        f"{STORE}/api/v3/GetStockTakes",
        json={"status": True, "stock_takes": [{"stock_take_id": "s1"}], "has_next_item": False},
    )
    hook = IsellerHook()
    assert [t["transfer_id"] for t in hook.get_transfers(transfer_type="outlet", status="received")] == ["t1"]
    assert [c["customer_id"] for c in hook.get_customers()] == ["c1"]
    assert [s["stock_take_id"] for s in hook.get_stock_takes(outlet_id="o1")] == ["s1"]
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body["type"] == "outlet" and body["status"] == "received"


def test_test_connection(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(responses.POST, f"{STORE}/api/v2/GetStoreInfo", json={"status": True, "store_name": "Demo"})
    assert IsellerHook().test_connection() == (True, f"Connected to iSeller store Demo at {STORE}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-16T03:12:00", datetime(2026, 11, 16, 3, 12, tzinfo=UTC)),
        ("2026-11-16T03:12:00.1234567", datetime(2026, 11, 16, 3, 12, 0, 123456, tzinfo=UTC)),
        ("2026-11-16T03:12:00Z", datetime(2026, 11, 16, 3, 12, tzinfo=UTC)),
        ("2026-11-16T10:12:00+07:00", datetime(2026, 11, 16, 3, 12, tzinfo=UTC)),
        ("2026-11-16", datetime(2026, 11, 16, tzinfo=UTC)),
    ],
)
def test_parse_iseller_datetime(text: str, expected: datetime) -> None:
    parsed = parse_iseller_datetime(text)
    assert parsed == expected and parsed.tzinfo is UTC


def test_format_iseller_datetime_is_utc_without_offset() -> None:
    assert format_iseller_datetime(datetime(2026, 11, 16, 10, 0, tzinfo=timezone(timedelta(hours=7)))) == (
        "2026-11-16T03:00:00"
    )
    assert format_iseller_datetime(datetime(2026, 11, 16, 3, 0)) == "2026-11-16T03:00:00"
    with pytest.raises(ValueError):
        parse_iseller_datetime("  ")


def _orders_answer(request: Any, dates: dict[int, str]) -> tuple[int, dict[str, str], str]:
    body = json.loads(request.body)
    date = dates[int(body.get("time_zone", 0))]
    answer = {"status": True, "orders": [{"order_id": "o1", "order_date": date}], "has_next_item": False}
    return 200, {}, json.dumps(answer)


def test_time_zone_probe_refuses_a_server_that_moves_dates_by_another_amount(
    rsps: responses.RequestsMock,
) -> None:
    TokenServer(rsps)
    dates = {0: "2026-11-16T03:00:00", 7: "2026-11-16T05:00:00"}  # moved 2 h for time_zone 7
    rsps.add_callback(responses.POST, ORDERS, callback=lambda r: _orders_answer(r, dates))
    with pytest.raises(ApiError, match="neither applied nor ignored"):
        list(IsellerHook(first_page=1).get_orders_pages(modified_after=datetime(2026, 11, 16, tzinfo=UTC)))


def test_time_zone_applied_dates_come_back_in_utc_and_a_bad_date_is_left_for_the_mapping(
    rsps: responses.RequestsMock,
) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        ORDERS,
        json={
            "status": True,
            "orders": [
                {"order_id": "o1", "order_date": "2026-11-16 10:00:00", "closed_date": "31/12/2026"},
                {
                    "order_id": "o2",
                    "order_date": "2026-11-16T03:00:00Z",
                    "transactions": [
                        {"transaction_id": "t", "transaction_date": "2026-11-16 10:05:00.1234567"}
                    ],
                },
            ],
            "has_next_item": False,
        },
    )
    hook = IsellerHook(time_zone_semantics="shifts", first_page=1)
    pages = list(hook.get_orders_pages(modified_after=datetime(2026, 11, 16, 3, 0, tzinfo=UTC)))
    first, second = pages[0]["orders"]
    assert first["order_date"] == "2026-11-16T03:00:00" and first["closed_date"] == "31/12/2026"
    assert second["order_date"] == "2026-11-16T03:00:00"
    assert second["transactions"][0]["transaction_date"] == "2026-11-16T03:05:00.123"
    body = json.loads(api_calls(rsps)[0].request.body)
    assert body["modified_after"] == "2026-11-16T10:00:00" and body["time_zone"] == 7


def test_paging_that_never_moves_on_is_an_error_not_a_loop(rsps: responses.RequestsMock) -> None:
    TokenServer(rsps)
    rsps.add(
        responses.POST,
        f"{STORE}/api/v2/GetProducts",
        json={"status": True, "products": [{"product_id": "p1"}], "has_next_item": True},
    )
    with pytest.raises(ApiError, match="paging is not working"):
        list(IsellerHook().get_products())
    assert len(api_calls(rsps)) == 3


def test_time_zone_hours_of_the_shop() -> None:
    from zoneinfo import ZoneInfo

    from include.iseller_accurate.times import time_zone_hours

    moment = datetime(2026, 11, 16, tzinfo=UTC)
    assert time_zone_hours(ZoneInfo("Asia/Jakarta"), moment) == 7
    assert time_zone_hours(ZoneInfo("Asia/Makassar"), moment) == 8
    assert time_zone_hours(ZoneInfo("Asia/Kolkata"), moment) == Decimal("5.5")
    assert time_zone_hours(ZoneInfo("Europe/Berlin"), datetime(2026, 7, 1, tzinfo=UTC)) == 2  # summer


def test_bad_connection_extras_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for extra in ({"time_zone_semantics": "maybe"}, {"first_page": 2}, {"page_size": 5000}):
        monkeypatch.setenv(
            "AIRFLOW_CONN_ISELLER_API",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": OAUTH,
                    "login": CLIENT_ID,
                    "password": CLIENT_SECRET,
                    "extra": extra,
                }
            ),
        )
        with pytest.raises(AuthError, match=next(iter(extra))):
            IsellerHook().settings  # noqa: B018
