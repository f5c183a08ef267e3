"""iSeller sandbox contract: OAuth tokens, ``resource_url``, 401 on expired or unknown tokens."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.sandbox.iseller_fixtures import IsellerServer

pytest_plugins = ["tests.sandbox.iseller_fixtures"]
pytestmark = pytest.mark.sandbox

#: The contract's default local credentials.
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"

GET_STORE_INFO = "/api/v2/GetStoreInfo"


def _token(client: httpx.Client, **fields: str) -> httpx.Response:
    return client.post("/oauth/token", data=fields)


def _store_info(client: httpx.Client, token: str) -> httpx.Response:
    return client.post(GET_STORE_INFO, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def iseller_short_ttl_server(
    iseller_start: Callable[..., contextlib.AbstractContextManager[IsellerServer]],
) -> Iterator[IsellerServer]:
    """A sandbox whose access tokens live three seconds."""
    with iseller_start(42, 3) as server:
        yield server


def test_client_credentials_token_answers_the_documented_fields(iseller_server: IsellerServer) -> None:
    with iseller_server.client() as client:
        response = _token(
            client, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "resource_url"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 14 * 24 * 3600
        assert body["resource_url"] == iseller_server.base_url
        # Calls go to {resource_url}/api/v2/<Method>.
        with httpx.Client(base_url=body["resource_url"]) as store_client:
            info = _store_info(store_client, body["access_token"])
        assert info.status_code == 200
        assert info.json()["status"] is True


def test_token_accepts_a_json_body_and_basic_auth(iseller_server: IsellerServer) -> None:
    with iseller_server.client() as client:
        response = client.post(
            "/oauth/token",
            json={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        assert response.status_code == 200
        assert _store_info(client, response.json()["access_token"]).status_code == 200
        basic = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET)
        )
        assert basic.status_code == 200


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        (
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "someone", "client_secret": CLIENT_SECRET},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
        (
            {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            400,
            "unsupported_grant_type",
        ),
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            400,
            "invalid_request",
        ),
        (
            {
                "grant_type": "refresh_token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": "nope",
            },
            400,
            "invalid_grant",
        ),
    ],
)
def test_token_refusals(
    iseller_server: IsellerServer, fields: dict[str, str], status: int, error: str
) -> None:
    with iseller_server.client() as client:
        response = _token(client, **fields)
    assert response.status_code == status
    assert response.json()["error"] == error


@pytest.mark.parametrize("header", [None, "Bearer unknown-token", "Basic abc", "Bearer", "unknown-token"])
def test_api_call_without_a_valid_token_is_401(iseller_server: IsellerServer, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    with iseller_server.client() as client:
        for path in ("/api/v2/GetOrders", "/api/v3/GetOutlets", "/api/v3/CreateTransfer"):
            response = client.post(path, json={}, headers=headers)
            assert response.status_code == 401, path
            assert response.json()["status"] is False
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_tokens_get_401_and_refresh_gives_a_working_pair(iseller_server: IsellerServer) -> None:
    with iseller_server.client() as client:
        first = _token(
            client, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ).json()
        assert _store_info(client, first["access_token"]).status_code == 200

        expired = client.post("/_sandbox/tokens/expire")
        assert expired.status_code == 200
        assert expired.json()["expired"] >= 1
        assert _store_info(client, first["access_token"]).status_code == 401

        refreshed = _token(
            client,
            grant_type="refresh_token",
            refresh_token=first["refresh_token"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        assert refreshed.status_code == 200
        second = refreshed.json()
        assert second["access_token"] != first["access_token"]
        assert second["resource_url"] == iseller_server.base_url
        assert _store_info(client, second["access_token"]).status_code == 200
        # A refresh token is single use.
        again = _token(
            client,
            grant_type="refresh_token",
            refresh_token=first["refresh_token"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        assert again.status_code == 400
        # Refreshing needs the client credentials too.
        wrong = _token(
            client,
            grant_type="refresh_token",
            refresh_token=second["refresh_token"],
            client_id=CLIENT_ID,
            client_secret="wrong",
        )
        assert wrong.status_code == 401


def test_short_token_ttl_expires_by_itself(iseller_short_ttl_server: IsellerServer) -> None:
    with iseller_short_ttl_server.client() as client:
        token = _token(
            client, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ).json()
        assert token["expires_in"] == 3
        assert _store_info(client, token["access_token"]).status_code == 200
        time.sleep(3.3)
        assert _store_info(client, token["access_token"]).status_code == 401
        fresh = _token(
            client,
            grant_type="refresh_token",
            refresh_token=token["refresh_token"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        ).json()
        assert _store_info(client, fresh["access_token"]).status_code == 200


def test_control_routes_need_no_token(iseller_server: IsellerServer) -> None:
    with iseller_server.client() as client:
        assert client.get("/_sandbox/health").json()["status"] == "ok"
        assert client.get("/_sandbox/state").json()["orders"] >= 90


def test_issued_tokens_lists_every_pair_ever_handed_out(iseller_server: IsellerServer) -> None:
    """The secret-leak scan needs the tokens Airflow got, the refreshed ones included."""
    with iseller_server.client() as client:
        first = _token(
            client, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ).json()
        second = _token(
            client,
            grant_type="refresh_token",
            refresh_token=first["refresh_token"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        ).json()
        issued = client.get("/_sandbox/tokens/issued")
        assert issued.status_code == 200
        pairs = [(t["access_token"], t["refresh_token"]) for t in issued.json()["tokens"]]
        assert (first["access_token"], first["refresh_token"]) in pairs  # rotated away, still listed
        assert (second["access_token"], second["refresh_token"]) in pairs
        assert issued.json()["count"] == len(pairs)
