"""The operator pages behind the real Airflow API server: Airflow's login protects them.

Plugin FastAPI apps are not protected by Airflow by default; these requests go to the running API
server (``make up`` / ``make test``) and show that the pages and their data endpoints refuse anyone
Airflow has not signed in, and serve whoever it has (bearer token or the UI's ``_token`` cookie).
Skipped without a running stack, except where the stack is required (CI, ``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.airflow_api import AirflowAPI, airflow_base_url, skip_or_fail, stack_is_up

pytestmark = pytest.mark.e2e

PAGES = ("/integrations/operator/sync-status", "/integrations/operator/webhook-log")
DATA = ("/integrations/operator/api/documents", "/integrations/operator/api/webhook-events")


@pytest.fixture(scope="module")
def token() -> Iterator[str]:
    reason = stack_is_up()
    if reason:
        skip_or_fail(reason)
    api = AirflowAPI()
    try:
        yield api.login()
    finally:
        api.close()


@pytest.fixture
def http(token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=airflow_base_url(), timeout=30.0, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("path", DATA)
def test_data_endpoints_refuse_anonymous_requests(http: httpx.Client, path: str) -> None:
    answer = http.get(path)
    assert answer.status_code == 401, answer.text
    assert answer.json() == {"detail": "Not authenticated"}
    assert http.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403


def test_refresh_refuses_anonymous_requests(http: httpx.Client) -> None:
    answer = http.post("/integrations/operator/api/refresh", json={"kind": "documents", "ids": [1]})
    assert answer.status_code == 401, answer.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anonymous_visitors_to_airflows_login(http: httpx.Client, path: str) -> None:
    answer = http.get(path)
    assert answer.status_code == 303
    assert "/auth/login" in answer.headers["location"]
    assert "<table" not in answer.text


@pytest.mark.parametrize("path", DATA)
def test_data_endpoints_serve_a_signed_in_user(http: httpx.Client, token: str, path: str) -> None:
    answer = http.get(path, headers={"Authorization": f"Bearer {token}"}, params={"size": 5})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) >= {"rows", "total", "counts", "older", "newer"}


@pytest.mark.parametrize("path", PAGES)
def test_pages_serve_the_airflow_ui_cookie(token: str, path: str) -> None:
    with httpx.Client(base_url=airflow_base_url(), timeout=30.0, cookies={"_token": token}) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert "<table" in answer.text


def test_static_assets_need_no_login(http: httpx.Client) -> None:
    # icons of the navigation entries and the pages' style: no data in them
    for name in ("sync-status.svg", "webhook-log-dark.svg", "operator.css", "operator.js", "theme.js"):
        assert http.get(f"/integrations/operator/static/{name}").status_code == 200
    assert http.get("/integrations/operator/static/..%2Fpages.py").status_code == 404


def test_navigation_entries_are_registered(http: httpx.Client, token: str) -> None:
    plugins = http.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}).json()["plugins"]
    views = {v["name"]: v for p in plugins for v in p.get("external_views", [])}
    assert views["Sync Status"]["href"].endswith("/integrations/operator/sync-status")
    assert views["Webhook Log"]["url_route"] == "webhook-log"
