"""Accurate sandbox contract: signed headers, 401 answers, discovery, command line options."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from sandbox.accurate.signing import TIMESTAMP_FORMATS, make_headers, sign

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.sandbox.accurate_fixtures import AccurateApi

pytest_plugins = ["tests.sandbox.accurate_fixtures"]

TOKEN = "sandbox-api-token"
SECRET = "sandbox-signature-secret"

ITEM_LIST = "/accurate/api/item/list.do"


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["s"] is False
    assert isinstance(body["d"], list) and len(body["d"]) == 1
    return str(body["d"][0])


@pytest.mark.parametrize("timestamp_format", TIMESTAMP_FORMATS)
@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_every_timestamp_format_and_signature_encoding_is_accepted(
    accurate: AccurateApi, timestamp_format: str, encoding: str
) -> None:
    response = accurate.http.get(ITEM_LIST, headers=accurate.headers(timestamp_format, encoding))
    assert response.status_code == 200, response.text
    assert response.json()["s"] is True


def test_hex_signature_is_case_insensitive_and_base64_may_be_urlsafe(accurate: AccurateApi) -> None:
    headers = accurate.headers("local", "hex")
    headers["X-Api-Signature"] = headers["X-Api-Signature"].upper()
    assert accurate.http.get(ITEM_LIST, headers=headers).status_code == 200
    headers = accurate.headers("unix")
    headers["X-Api-Signature"] = headers["X-Api-Signature"].replace("+", "-").replace("/", "_").rstrip("=")
    assert accurate.http.get(ITEM_LIST, headers=headers).status_code == 200


def test_local_timestamp_is_jakarta_time(accurate: AccurateApi) -> None:
    # The same instant written as UTC wall time is 7 hours off: refused as skew.
    utc_wall = time.strftime("%d/%m/%Y %H:%M:%S", time.gmtime())
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "X-Api-Timestamp": utc_wall,
        "X-Api-Signature": sign(SECRET, utc_wall),
    }
    assert "600" in _refusal(accurate.http.get(ITEM_LIST, headers=headers))


@pytest.mark.parametrize("seconds", [-700, 700])
def test_timestamp_more_than_600_seconds_away_is_refused(accurate: AccurateApi, seconds: int) -> None:
    headers = make_headers(TOKEN, SECRET, "unix", now=time.time() + seconds)
    message = _refusal(accurate.http.get(ITEM_LIST, headers=headers))
    assert "X-Api-Timestamp" in message and "600" in message


def test_timestamp_within_the_window_is_accepted(accurate: AccurateApi) -> None:
    headers = make_headers(TOKEN, SECRET, "millis", now=time.time() - 550)
    assert accurate.http.get(ITEM_LIST, headers=headers).status_code == 200


def test_wrong_secret_is_refused(accurate: AccurateApi) -> None:
    message = _refusal(accurate.http.get(ITEM_LIST, headers=make_headers(TOKEN, "not-the-secret")))
    assert "X-Api-Signature" in message


def test_signature_of_another_timestamp_is_refused(accurate: AccurateApi) -> None:
    headers = accurate.headers("unix")
    headers["X-Api-Timestamp"] = str(int(headers["X-Api-Timestamp"]) - 1)
    assert "X-Api-Signature" in _refusal(accurate.http.get(ITEM_LIST, headers=headers))


def test_unknown_token_is_refused(accurate: AccurateApi) -> None:
    message = _refusal(accurate.http.get(ITEM_LIST, headers=make_headers("someone-else", SECRET)))
    assert "API Token" in message


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Authorization", None, "Authorization"),
        ("Authorization", "Basic abc", "Authorization"),
        ("X-Api-Timestamp", None, "X-Api-Timestamp"),
        ("X-Api-Timestamp", "kemarin sore", "kemarin sore"),
        ("X-Api-Timestamp", "2026-13-45T99:00:00", "X-Api-Timestamp"),
        ("X-Api-Signature", None, "X-Api-Signature"),
        ("X-Api-Signature", "bm90LWEtc2lnbmF0dXJl", "X-Api-Signature"),
    ],
)
def test_missing_or_malformed_header_is_refused_naming_it(
    accurate: AccurateApi, header: str, value: str | None, expected: str
) -> None:
    headers = accurate.headers()
    if value is None:
        del headers[header]
    else:
        headers[header] = value
        if header == "X-Api-Timestamp":
            headers["X-Api-Signature"] = sign(SECRET, value)
    assert expected in _refusal(accurate.http.get(ITEM_LIST, headers=headers))


def test_refusal_language_follows_x_language_profile(accurate: AccurateApi) -> None:
    headers = make_headers(TOKEN, "wrong")
    indonesian = _refusal(accurate.http.get(ITEM_LIST, headers=headers))
    english = _refusal(accurate.http.get(ITEM_LIST, headers={**headers, "X-Language-Profile": "US"}))
    assert "tidak valid" in indonesian
    assert "Invalid X-Api-Signature" in english


@pytest.mark.parametrize(
    "path",
    [
        "/api/api-token.do",
        "/api/webhook-renew.do",
        "/api/webhook-history.do",
        ITEM_LIST,
        "/accurate/api/sales-invoice/save.do",
        "/moved-db/accurate/api/item/detail.do",
    ],
)
def test_every_api_route_needs_the_signed_headers(accurate: AccurateApi, path: str) -> None:
    _refusal(accurate.http.post(path))


def test_revoked_token_is_refused(accurate: AccurateApi) -> None:
    accurate.config(token_revoked=True)
    assert "API Token" in _refusal(accurate.http.get(ITEM_LIST, headers=accurate.headers()))


def test_control_routes_need_no_signature(accurate: AccurateApi) -> None:
    for path in ("health", "clock", "faults", "config", "requests", "stock", "webhook-deliveries"):
        assert accurate.http.get(f"/_sandbox/{path}").status_code == 200, path


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_discovery_answers_this_server_as_data_host(accurate: AccurateApi, method: str) -> None:
    body = accurate.ok(accurate.request(method, "/api/api-token.do"))
    assert body["s"] is True
    database = body["d"]["data usaha"]
    assert database["host"] == accurate.base_url
    assert isinstance(database["id"], int)
    assert database["alias"] == "Toko Nusantara Demo"
    assert isinstance(body["d"]["user"], dict)
    # The discovered host really serves the data calls.
    listed = httpx.get(f"{database['host']}/accurate/api/branch/list.do", headers=accurate.headers())
    assert listed.json()["s"] is True


def test_discovery_host_follows_the_host_the_client_used(accurate: AccurateApi) -> None:
    port = accurate.base_url.rsplit(":", 1)[1]
    body = httpx.get(f"http://localhost:{port}/api/api-token.do", headers=accurate.headers()).json()
    assert body["d"]["data usaha"]["host"] == f"http://localhost:{port}"


def test_signatures_follow_the_sandbox_clock(accurate: AccurateApi) -> None:
    accurate.advance_clock(3600)
    real_time = make_headers(TOKEN, SECRET)
    assert "600" in _refusal(accurate.http.get(ITEM_LIST, headers=real_time))
    assert accurate.http.get(ITEM_LIST, headers=accurate.headers()).status_code == 200
    accurate.config(signature_clock="real")
    assert accurate.http.get(ITEM_LIST, headers=real_time).status_code == 200


def test_command_line_reads_port_token_and_secret_from_the_environment(
    accurate_start: Callable[..., Any], accurate_free_port: Callable[[], int]
) -> None:
    port = accurate_free_port()
    env = {
        "ACCURATE_SANDBOX_PORT": str(port),
        "ACCURATE_API_TOKEN": "env-token",
        "ACCURATE_SIGNATURE_SECRET": "env-secret",
    }
    with accurate_start("--seed", "7", env=env) as server:
        assert server.base_url.endswith(f":{port}")
        ok = httpx.get(f"{server.base_url}{ITEM_LIST}", headers=make_headers("env-token", "env-secret"))
        assert ok.status_code == 200
        refused = httpx.get(f"{server.base_url}{ITEM_LIST}", headers=make_headers(TOKEN, SECRET))
        assert refused.status_code == 401
        assert httpx.get(f"{server.base_url}/_sandbox/health").json()["seed"] == 7


def test_command_line_options_for_token_and_secret(accurate_start: Callable[..., Any]) -> None:
    with accurate_start("--api-token", "arg-token", "--signature-secret", "arg-secret") as server:
        ok = httpx.get(
            f"{server.base_url}{ITEM_LIST}", headers=make_headers("arg-token", "arg-secret", "iso")
        )
        assert ok.status_code == 200
        assert httpx.get(f"{server.base_url}/_sandbox/health").json()["seed"] == 42
