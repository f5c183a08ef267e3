"""AccurateHook against a requests-level fake: signing, discovery, redirects, retries, writes, paging."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from include.iseller_accurate.clients import (
    AccurateBusinessError,
    AccurateHook,
    AuthError,
    LocalRateLimiter,
    OutcomeUnknownError,
    SaveResult,
    TransientApiError,
    encode_filters,
    sign_timestamp,
)
from include.iseller_accurate.clients import accurate_access as accurate_module
from tests.clients.conftest import ACCOUNT, DATA_HOST, SIGNATURE_SECRET, TOKEN, assert_no_secrets

DISCOVERY = f"{ACCOUNT}/api/api-token.do"


def envelope(d: Any = None, s: bool = True, **extra: Any) -> dict[str, Any]:
    return {"s": s, "d": d, **extra}


def add_discovery(rsps: responses.RequestsMock, host: str = DATA_HOST) -> None:
    rsps.add(
        responses.GET,
        DISCOVERY,
        json=envelope({"data usaha": {"host": host, "id": 123, "alias": "Toko Demo"}, "user": {"name": "x"}}),
    )


def url(module: str, action: str, host: str = DATA_HOST) -> str:
    return f"{host}/accurate/api/{module}/{action}.do"


def query(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def expected_signature(timestamp: str, encoding: str = "base64") -> str:
    digest = hmac.new(SIGNATURE_SECRET.encode(), timestamp.encode(), hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def connection_error_before_sending() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, url("x", "y"), reason))  # type: ignore[arg-type]


# -- signing -------------------------------------------------------------------------------------------
def test_sign_matches_hmac_sha256_of_the_timestamp() -> None:
    hook = AccurateHook()
    assert hook.sign("1764120000000") == expected_signature("1764120000000")
    assert sign_timestamp(SIGNATURE_SECRET, "26/11/2026 10:00:00", "hex") == expected_signature(
        "26/11/2026 10:00:00", "hex"
    )
    # A known vector, independent of this module: HMAC-SHA256(key="key", "The quick brown fox ...").
    assert (
        sign_timestamp("key", "The quick brown fox jumps over the lazy dog", "hex")
        == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    with pytest.raises(ValueError):
        sign_timestamp("k", "t", "rot13")


def test_hex_encoding_from_the_connection_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": ACCOUNT,
                "password": TOKEN,
                "extra": {"signature_secret": SIGNATURE_SECRET, "signature_encoding": "hex"},
            }
        ),
    )
    assert AccurateHook().sign("123") == expected_signature("123", "hex")


def test_missing_signature_secret_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API", json.dumps({"conn_type": "http", "host": ACCOUNT, "password": TOKEN})
    )
    with pytest.raises(AuthError, match="signature_secret"):
        AccurateHook().sign("1")


def test_every_call_is_signed_with_a_fresh_timestamp(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "detail"), status=503)
    rsps.add(responses.GET, url("item", "detail"), json=envelope({"id": 1, "no": "SKU-1"}))
    hook = AccurateHook()
    stamps = iter(["1764120000001", "1764120000002", "1764120000003"])
    hook.make_timestamp = lambda: next(stamps)  # type: ignore[method-assign]

    assert hook.detail("item", no="SKU-1") == {"id": 1, "no": "SKU-1"}

    seen = []
    for call in rsps.calls:
        headers = call.request.headers
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["X-Api-Signature"] == expected_signature(headers["X-Api-Timestamp"])
        assert "signature_secret" not in {k.lower() for k in headers}  # HttpHook would copy extras
        assert not headers["Authorization"].startswith("Basic")
        seen.append(headers["X-Api-Timestamp"])
    assert seen == ["1764120000001", "1764120000002", "1764120000003"]  # discovery, 503, retry


def test_default_timestamp_is_unix_milliseconds() -> None:
    stamp = AccurateHook.make_timestamp()
    assert stamp.isdigit()
    assert abs(int(stamp) / 1000 - datetime.now(UTC).timestamp()) < 5


# -- discovery -----------------------------------------------------------------------------------------
def test_discovery_is_cached_per_process_and_refreshed_on_demand(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    first = AccurateHook()
    assert first.discover_host() == DATA_HOST
    assert first.discover_host() == DATA_HOST
    assert AccurateHook().discover_host() == DATA_HOST  # another instance: module cache
    assert len(rsps.calls) == 1
    assert first.discover_host(refresh=True) == DATA_HOST
    assert len(rsps.calls) == 2
    assert first.database["alias"] == "Toko Demo"


def test_discovery_expires_after_its_time_to_live(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_discovery(rsps)
    hook = AccurateHook()
    hook.discover_host()
    later = datetime.now(UTC).timestamp() + accurate_module.DISCOVERY_TTL.total_seconds() + 60
    monkeypatch.setattr(accurate_module.time, "time", lambda: later)
    hook.discover_host()
    assert len(rsps.calls) == 2


def test_discovery_falls_back_to_post_on_405(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, DISCOVERY, status=405)
    rsps.add(responses.POST, DISCOVERY, json=envelope({"data usaha": {"host": "hera.test"}}))
    assert AccurateHook().discover_host() == "https://hera.test"
    assert [c.request.method for c in rsps.calls] == ["GET", "POST"]


def test_discovery_refused_is_an_auth_error(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, DISCOVERY, json=envelope(["Token tidak valid"], s=False))
    with pytest.raises(AuthError, match="Token tidak valid"):
        AccurateHook().discover_host()


@pytest.mark.parametrize("status", [307, 308])
def test_redirect_is_followed_keeping_method_body_and_headers(
    rsps: responses.RequestsMock, status: int
) -> None:
    moved = "http://hera.zeus.test"
    add_discovery(rsps)
    rsps.add(
        responses.POST,
        url("sales-invoice", "save"),
        status=status,
        headers={"Location": url("sales-invoice", "save", moved)},
    )
    rsps.add(
        responses.POST,
        url("sales-invoice", "save", moved),
        json=envelope(["Berhasil disimpan"], r={"id": 7, "number": "SI-1"}),
    )
    add_discovery(rsps, moved)  # the next call discovers again (answer: the new host)

    hook = AccurateHook()
    result = hook.save("sales-invoice", {"number": "SI-1", "transDate": "26/11/2026"})

    assert result.ok and result.id == 7
    first, second = rsps.calls[1].request, rsps.calls[2].request
    assert second.method == "POST"
    assert second.body == first.body and json.loads(second.body or "") == {
        "number": "SI-1",
        "transDate": "26/11/2026",
    }
    for name in ("Authorization", "X-Api-Timestamp", "X-Api-Signature", "Content-Type"):
        assert second.headers[name] == first.headers[name]
    assert hook.discover_host() == moved  # re-discovered after the move
    assert rsps.calls[-1].request.url == DISCOVERY


def test_requests_own_redirect_handling_would_drop_the_token(rsps: responses.RequestsMock) -> None:
    """Why the hook follows redirects itself: requests strips Authorization on a cross-host redirect."""
    rsps.add(responses.POST, "http://a.test/x", status=308, headers={"Location": "http://b.test/x"})
    rsps.add(responses.POST, "http://b.test/x", json={})
    requests.post("http://a.test/x", json={"a": 1}, headers={"Authorization": "Bearer t"})
    assert "Authorization" not in rsps.calls[1].request.headers


def test_redirect_to_a_foreign_host_is_not_followed(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.GET, url("item", "list"), status=308, headers={"Location": "http://evil.example/steal"}
    )
    with pytest.raises(Exception, match="unexpected host"):
        list(AccurateHook().list("item"))
    assert all("evil" not in str(c.request.url) for c in rsps.calls)


# -- retry classification ------------------------------------------------------------------------------
def test_429_honours_retry_after_seconds(rsps: responses.RequestsMock, waits: list[float]) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "detail"), status=429, headers={"Retry-After": "3"})
    rsps.add(responses.GET, url("item", "detail"), status=429, headers={"Retry-After": "1"})
    rsps.add(responses.GET, url("item", "detail"), json=envelope({"id": 1}))
    assert AccurateHook().detail("item", id=1) == {"id": 1}
    assert len(waits) == 2
    assert 3 <= waits[0] < 3.3 and 1 <= waits[1] < 1.3


def test_429_honours_retry_after_http_date(rsps: responses.RequestsMock, waits: list[float]) -> None:
    add_discovery(rsps)
    when = datetime.now(UTC) + timedelta(seconds=20)
    rsps.add(
        responses.GET,
        url("item", "detail"),
        status=429,
        headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")},
    )
    rsps.add(responses.GET, url("item", "detail"), json=envelope({"id": 1}))
    AccurateHook().detail("item", id=1)
    assert 17 <= waits[0] <= 21


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_backoff(
    rsps: responses.RequestsMock, waits: list[float], status: int
) -> None:
    add_discovery(rsps)
    for _ in range(3):
        rsps.add(responses.GET, url("item", "list"), status=status)
    rsps.add(responses.GET, url("item", "list"), json=envelope([{"id": 1}], sp={"pageCount": 1}))
    assert list(AccurateHook().list("item")) == [{"id": 1}]
    assert len(waits) == 3
    assert all(w > 0 for w in waits)
    assert waits[2] > waits[0] / 2  # exponential with equal jitter: never collapses


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect"),
        requests.exceptions.ConnectionError("Connection aborted"),
    ],
    ids=["read-timeout", "connect-timeout", "connection-error"],
)
def test_timeouts_and_connection_errors_are_retried_for_reads(
    rsps: responses.RequestsMock, waits: list[float], failure: Exception
) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "detail"), body=failure)
    rsps.add(responses.GET, url("item", "detail"), json=envelope({"id": 1}))
    assert AccurateHook().detail("item", id=1) == {"id": 1}
    assert len(waits) == 1


def test_gives_up_after_max_retries(rsps: responses.RequestsMock, waits: list[float]) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "detail"), status=503)
    with pytest.raises(TransientApiError) as caught:
        AccurateHook(max_retries=3).detail("item", id=1)
    assert caught.value.attempts == 4
    assert len(rsps.calls) == 1 + 4 and len(waits) == 3
    assert "HTTP 503" in str(caught.value)


def test_401_is_not_retried(rsps: responses.RequestsMock, waits: list[float]) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.GET, url("item", "detail"), status=401, json=envelope(["Signature tidak valid"], s=False)
    )
    with pytest.raises(AuthError, match="Signature tidak valid") as caught:
        AccurateHook().detail("item", id=1)
    assert caught.value.status_code == 401
    assert len(rsps.calls) == 2 and waits == []


def test_business_refusal_is_a_result_and_never_retried(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.POST,
        url("sales-invoice", "save"),
        json=envelope(["Sudah ada data lain dengan No Form # SI-1"], s=False),
    )
    result = AccurateHook().save("sales-invoice", {"number": "SI-1"})
    assert result == SaveResult(ok=False, record=None, messages=["Sudah ada data lain dengan No Form # SI-1"])
    assert result.duplicate_number and result.reason.startswith("Sudah ada")
    assert len(rsps.calls) == 2 and waits == []


def test_business_refusal_with_a_4xx_status_is_still_a_result(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.POST,
        url("sales-invoice", "save"),
        status=400,
        json=envelope(["Pelanggan tidak ditemukan"], s=False),
    )
    result = AccurateHook().save("sales-invoice", {"number": "SI-2"})
    assert not result.ok and not result.duplicate_number and result.reason == "Pelanggan tidak ditemukan"


@pytest.mark.parametrize(
    ("messages", "duplicate"),
    [
        (["Sudah ada data lain dengan No Form # SI-1"], True),
        (["Customer No. C1 already exists"], True),
        (["Nama sudah ada"], True),
        (["Gudang tidak ditemukan"], False),
    ],
)
def test_duplicate_number_detection(messages: list[str], duplicate: bool) -> None:
    assert SaveResult(ok=False, record=None, messages=messages).duplicate_number is duplicate


# -- writes whose outcome is unknown -------------------------------------------------------------------
def test_not_idempotent_save_is_not_resent_after_a_read_timeout(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    add_discovery(rsps)
    rsps.add(responses.POST, url("customer", "save"), body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(OutcomeUnknownError) as caught:
        AccurateHook().save("customer", {"name": "Budi"}, idempotent=False)
    assert len(rsps.calls) == 2 and waits == []
    assert caught.value.module == "customer" and caught.value.number == "Budi"
    assert "before sending it again" in str(caught.value)


def test_not_idempotent_save_is_not_resent_after_a_server_error(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(responses.POST, url("customer", "save"), status=502)
    with pytest.raises(OutcomeUnknownError):
        AccurateHook().save("customer", {"name": "Budi"}, idempotent=False)
    assert len(rsps.calls) == 2


@pytest.mark.parametrize(
    "first",
    [lambda: connection_error_before_sending(), lambda: requests.exceptions.ConnectTimeout("connect"), 429],
    ids=["connect-refused", "connect-timeout", "rate-limited"],
)
def test_not_idempotent_save_is_resent_when_it_was_never_sent(
    rsps: responses.RequestsMock, waits: list[float], first: Any
) -> None:
    add_discovery(rsps)
    if first == 429:
        rsps.add(responses.POST, url("customer", "save"), status=429, headers={"Retry-After": "1"})
    else:
        rsps.add(responses.POST, url("customer", "save"), body=first())
    rsps.add(responses.POST, url("customer", "save"), json=envelope(["ok"], r={"id": 9, "customerNo": "C.1"}))
    result = AccurateHook().save("customer", {"name": "Budi"}, idempotent=False)
    assert result.ok and result.number == "C.1" and not result.resent
    assert len(waits) == 1


def test_idempotent_save_is_resent_and_reports_it(rsps: responses.RequestsMock, waits: list[float]) -> None:
    add_discovery(rsps)
    rsps.add(responses.POST, url("sales-invoice", "save"), body=requests.exceptions.ReadTimeout("timed out"))
    rsps.add(
        responses.POST,
        url("sales-invoice", "save"),
        json=envelope(["Sudah ada data lain dengan No Form # SI-9"], s=False),
    )
    result = AccurateHook().save("sales-invoice", {"number": "SI-9"})
    assert result.duplicate_number and result.resent  # the first attempt was most likely stored


def test_idempotent_save_that_never_gets_an_answer_is_outcome_unknown(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    add_discovery(rsps)
    rsps.add(responses.POST, url("sales-invoice", "save"), body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(OutcomeUnknownError) as caught:
        AccurateHook(max_retries=2).save("sales-invoice", {"number": "SI-9"})
    assert caught.value.number == "SI-9"
    assert len(rsps.calls) == 1 + 3


# -- bulk ----------------------------------------------------------------------------------------------
def test_bulk_save_refuses_more_than_100_records() -> None:
    with pytest.raises(ValueError, match="at most 100"):
        AccurateHook().bulk_save("sales-invoice", [{"number": str(i)} for i in range(101)])


def test_bulk_save_answers_one_result_per_record_in_order(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.POST,
        url("sales-invoice", "bulk-save"),
        json=envelope(
            [
                {"s": True, "d": ["ok"], "r": {"id": 1, "number": "A"}},
                {"s": False, "d": ["Sudah ada data lain dengan No Form # B"]},
                {"s": True, "d": ["ok"], "r": {"id": 3, "number": "C"}},
            ],
            s=False,  # whatever the outer flag says, each record stands on its own
        ),
    )
    results = AccurateHook().bulk_save("sales-invoice", [{"number": n} for n in "ABC"])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].duplicate_number and results[2].id == 3
    assert json.loads(rsps.calls[1].request.body or "") == {
        "data": [{"number": "A"}, {"number": "B"}, {"number": "C"}]
    }


def test_bulk_save_refused_as_a_whole_fails_every_record(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(responses.POST, url("item-transfer", "bulk-save"), json=envelope(["Data tidak valid"], s=False))
    results = AccurateHook().bulk_save("item-transfer", [{"number": "T1"}, {"number": "T2"}])
    assert [r.reason for r in results] == ["Data tidak valid", "Data tidak valid"]
    assert AccurateHook().bulk_save("item-transfer", []) == []


# -- reads ---------------------------------------------------------------------------------------------
def test_list_pages_to_the_last_page(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    for page in (1, 2, 3):
        rows = [{"id": page * 10 + i} for i in range(2 if page < 3 else 1)]
        rsps.add(
            responses.GET,
            url("item", "list"),
            json=envelope(rows, sp={"page": page, "pageSize": 2, "pageCount": 3, "rowCount": 5}),
        )
    rows = list(
        AccurateHook().list("item", fields=["id", "no"], page_size=2, filters={"itemType": "INVENTORY"})
    )
    assert [r["id"] for r in rows] == [10, 11, 20, 21, 30]
    pages = [query(c.request) for c in rsps.calls[1:]]
    assert [p["sp.page"] for p in pages] == [["1"], ["2"], ["3"]]
    assert pages[0]["fields"] == ["id,no"] and pages[0]["sp.pageSize"] == ["2"]
    assert pages[0]["filter.itemType.op"] == ["EQUAL"] and pages[0]["filter.itemType.val[0]"] == ["INVENTORY"]


def _capped_list(rsps: responses.RequestsMock, total: int, caps: list[int], with_sp: bool) -> None:
    """A list.do serving ``min(asked, cap)`` rows per page; ``caps`` gives the cap of each call in turn."""
    calls = iter(caps)

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        params = query(request)
        size = min(int(params["sp.pageSize"][0]), next(calls))
        page = int(params["sp.page"][0])
        rows = [{"id": n} for n in range((page - 1) * size, min(page * size, total))]
        extra = {"sp": {"page": page, "pageSize": size, "rowCount": total}} if with_sp else {}
        return 200, {}, json.dumps(envelope(rows, **extra))

    rsps.add_callback(responses.GET, url("item", "list"), callback=answer)


def test_list_pages_through_a_silent_cap_without_sp(rsps: responses.RequestsMock) -> None:
    """A server that serves fewer rows than asked and says nothing: the next page shows whether more exist."""
    add_discovery(rsps)
    _capped_list(rsps, total=8, caps=[3] * 10, with_sp=False)
    rows = [r["id"] for r in AccurateHook().list("item")]
    assert rows == list(range(8))
    sizes = [query(c.request)["sp.pageSize"][0] for c in rsps.calls[1:]]
    assert sizes == ["1000", "3", "3"]


def test_list_neither_skips_nor_repeats_when_the_served_size_changes(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    _capped_list(rsps, total=10, caps=[4, 3, 3, 3, 3], with_sp=True)
    rows = [r["id"] for r in AccurateHook().list("item")]
    assert rows == list(range(10))


def test_list_refused_raises(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "list"), json=envelope(["Field tidak dikenal"], s=False))
    with pytest.raises(AccurateBusinessError, match="Field tidak dikenal"):
        list(AccurateHook().list("item"))


def test_filters_are_encoded() -> None:
    params = encode_filters(
        {
            "number": ["A", "B"],
            "transDate": ("BETWEEN", [datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date()]),
            "lastUpdate": ("GREATER_THAN", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
            "suspended": False,
        }
    )
    assert params == {
        "filter.number.op": "EQUAL",
        "filter.number.val[0]": "A",
        "filter.number.val[1]": "B",
        "filter.transDate.op": "BETWEEN",
        "filter.transDate.val[0]": "01/11/2026",
        "filter.transDate.val[1]": "30/11/2026",
        "filter.lastUpdate.op": "GREATER_THAN",
        "filter.lastUpdate.val[0]": "26/11/2026 10:00:00",
        "filter.suspended.op": "EQUAL",
        "filter.suspended.val[0]": "false",
    }


def test_find_by_numbers_asks_100_numbers_per_call(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    numbers = [f"SI-{i:03d}" for i in range(150)]

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        asked = [v[0] for k, v in query(request).items() if k.startswith("filter.number.val")]
        rows = [{"id": i, "number": n} for i, n in enumerate(asked) if int(n[3:]) % 2 == 0]
        return 200, {}, json.dumps(envelope(rows, sp={"pageCount": 1}))

    rsps.add_callback(responses.GET, url("sales-invoice", "list"), callback=answer)
    found = AccurateHook().find_by_numbers("sales-invoice", numbers)
    assert sorted(found) == [n for n in numbers if int(n[3:]) % 2 == 0]
    calls = [query(c.request) for c in rsps.calls[1:]]
    assert len(calls) == 2
    assert calls[0]["filter.number.op"] == ["EQUAL"]
    assert sum(k.startswith("filter.number.val") for k in calls[0]) == 100
    assert sum(k.startswith("filter.number.val") for k in calls[1]) == 50
    assert calls[0]["fields"] == ["id,number"]


def test_detail_is_none_when_not_found(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("sales-invoice", "detail"), json=envelope(["Data tidak ditemukan"], s=False))
    assert AccurateHook().detail("sales-invoice", number="SI-404") is None
    assert query(rsps.calls[1].request)["number"] == ["SI-404"]


def test_money_is_parsed_as_decimal(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.GET,
        url("sales-invoice", "detail"),
        body='{"s": true, "d": {"id": 5, "totalAmount": 123456789012.123456, "detailItem": '
        '[{"unitPrice": 15000.10, "quantity": 2}]}}',
        content_type="application/json",
    )
    found = AccurateHook().detail("sales-invoice", id=5)
    assert found is not None
    assert found["totalAmount"] == Decimal("123456789012.123456")
    assert found["detailItem"][0]["unitPrice"] == Decimal("15000.10")
    assert found["detailItem"][0]["quantity"] == 2 and found["id"] == 5


def test_get_stock_is_decimal(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(
        responses.GET,
        url("item", "get-stock"),
        body='{"s": true, "d": {"availableStock": 12.5}}',
        content_type="application/json",
    )
    assert AccurateHook().get_stock("SKU-1", "Gudang Utama") == Decimal("12.5")
    assert query(rsps.calls[1].request) == {"no": ["SKU-1"], "warehouseName": ["Gudang Utama"]}


def test_webhook_history_is_split_into_24_hour_windows(rsps: responses.RequestsMock) -> None:
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        window = query(request)
        events = [{"uuid": window["from"][0]}, {"uuid": "shared"}]
        return 200, {}, json.dumps(envelope(events))

    rsps.add_callback(responses.GET, f"{ACCOUNT}/api/webhook-history.do", callback=answer)
    start = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 25/11/2026 00:00 in Jakarta
    deliveries = AccurateHook().webhook_history(start, start + timedelta(hours=60))
    windows = [(query(c.request)["from"][0], query(c.request)["to"][0]) for c in rsps.calls]
    assert windows == [
        ("25/11/2026 00:00:00", "26/11/2026 00:00:00"),
        ("26/11/2026 00:00:00", "27/11/2026 00:00:00"),
        ("27/11/2026 00:00:00", "27/11/2026 12:00:00"),
    ]
    assert [d["uuid"] for d in deliveries] == [
        "25/11/2026 00:00:00",
        "shared",
        "26/11/2026 00:00:00",
        "27/11/2026 00:00:00",
    ]
    with pytest.raises(ValueError):
        AccurateHook().webhook_history(datetime(2026, 11, 1), datetime(2026, 11, 2))


def test_webhook_renew_uses_the_account_host(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, f"{ACCOUNT}/api/webhook-renew.do", json=envelope({"expiredDate": "03/12/2026"}))
    assert AccurateHook().webhook_renew()["d"] == {"expiredDate": "03/12/2026"}
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


# -- secrets -------------------------------------------------------------------------------------------
def test_secrets_never_reach_messages_logs_or_reprs(
    rsps: responses.RequestsMock, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"token {TOKEN} with secret {SIGNATURE_SECRET} is wrong"
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "detail"), status=500, body=echo)
    rsps.add(responses.GET, url("item", "detail"), status=401, json=envelope([echo], s=False))
    rsps.add(responses.GET, url("item", "list"), status=418, body=echo)
    hook = AccurateHook()
    with pytest.raises(AuthError) as auth:
        hook.detail("item", id=1)
    with pytest.raises(Exception) as other:
        list(hook.list("item"))
    ok, message = hook.test_connection()
    texts = [str(auth.value), str(other.value), repr(auth.value), message, repr(hook), repr(hook.settings)]
    texts += [record.getMessage() for record in caplog.records]
    assert "***" in str(auth.value) and "***" in str(other.value)
    for text in texts:
        assert_no_secrets(text)


def test_test_connection(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    assert AccurateHook().test_connection() == (
        True,
        f"Connected to Accurate database Toko Demo at {DATA_HOST}",
    )
    rsps.add(responses.GET, DISCOVERY, status=401, json=envelope(["API Token tidak valid"], s=False))
    ok, message = AccurateHook().test_connection()
    assert not ok and "API Token tidak valid" in message


# -- threads and the rate limiter ----------------------------------------------------------------------
def test_concurrent_calls_use_one_session_per_thread_and_the_limiter(rsps: responses.RequestsMock) -> None:
    add_discovery(rsps)
    rsps.add(responses.GET, url("item", "detail"), json=envelope({"id": 1}))
    entered: list[int] = []

    class CountingLimiter(LocalRateLimiter):
        def slot(self) -> Any:
            entered.append(threading.get_ident())
            return super().slot()

    hook = AccurateHook(rate_limiter=CountingLimiter(rate=1000, max_in_flight=8))
    sessions: dict[int, requests.Session] = {}

    def work() -> None:
        for _ in range(3):
            hook.detail("item", id=1)
        sessions[threading.get_ident()] = hook.get_conn()  # kept alive, so identities stay distinct

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(s) for s in sessions.values()}) == 8  # a session per thread
    assert len(entered) == 8 * 3 + 1  # every request (and the discovery) went through the limiter
    hook.close()


def test_money_is_sent_as_exact_json_numbers(rsps):
    """Decimal amounts leave as JSON numbers with exactly their digits (never strings, never floats)."""
    import json as _json
    from decimal import Decimal as _D

    from include.iseller_accurate.clients import AccurateHook as _Hook
    from tests.clients.conftest import ACCOUNT, DATA_HOST

    rsps.add(
        responses.GET,
        f"{ACCOUNT}/api/api-token.do",
        json={"s": True, "d": {"data usaha": {"host": DATA_HOST, "id": 1, "alias": "x"}}},
    )
    rsps.add(
        responses.POST,
        f"{DATA_HOST}/accurate/api/sales-invoice/save.do",
        json={"s": True, "d": ["ok"], "r": {"id": 1, "number": "SI/1"}},
    )
    _Hook().save("sales-invoice", {"number": "SI/1", "amount": _D("999999999999.99"), "q": _D("0.5")})
    body = rsps.calls[-1].request.body
    text = body.decode() if isinstance(body, bytes) else body
    assert '"amount":999999999999.99' in text and '"q":0.5' in text
    assert _json.loads(text, parse_float=_D)["amount"] == _D("999999999999.99")


def test_oauth_mode_with_several_databases_asks_for_database_id(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {"conn_type": "http", "host": ACCOUNT, "password": TOKEN, "extra": {"auth_mode": "oauth"}}
        ),
    )
    rsps.add(
        responses.GET,
        f"{ACCOUNT}/api/db-list.do",
        json=envelope([{"id": 11, "alias": "Toko A"}, {"id": 12, "alias": "Toko B"}]),
    )
    with pytest.raises(AuthError, match=r"reaches 2 Accurate databases \(11 \(Toko A\), 12 \(Toko B\)\)"):
        AccurateHook().discover_host()
    assert "X-Api-Signature" not in rsps.calls[0].request.headers
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
