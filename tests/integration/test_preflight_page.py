"""The Preflight page in-process over a real ledger, with Airflow's own user resolution in front.

Only the auth manager is a stand-in (as in test_pages.py). The page shows the latest stored run,
its problems with their fixes (hostile text escaped), earlier runs by ``?run=``, and refuses users
who may not read the preflight DAG; anonymous users go to Airflow's login.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from include.iseller_accurate.ledger import connect, migrate
from include.iseller_accurate.preflight import DAG_ID, PreflightResult, Problem, save_result
from include.iseller_accurate.web import pages, shared
from include.iseller_accurate.web import preflight as preflight_page
from tests.integration.test_pages import _AuthManager, _User


@pytest.fixture
def client(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Any]]:
    import airflow.api_fastapi.app as airflow_app
    import airflow.api_fastapi.core_api.security as security

    manager = _AuthManager()
    manager.users["preflight"] = _User("preflight", {DAG_ID})
    monkeypatch.setattr(security, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(airflow_app, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(shared, "dsn_from_connection", lambda *a, **k: pg_dsn)
    monkeypatch.setattr(shared, "_migrated", threading.Event())
    sub = FastAPI()
    sub.include_router(pages.router)
    sub.include_router(preflight_page.router)
    root = FastAPI()
    root.mount("/integrations", sub)
    conn = connect(pg_dsn, autocommit=True)
    migrate(conn)
    with TestClient(root, follow_redirects=False) as test_client:
        yield test_client, conn
    conn.close()


def _auth(user: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{user}"}


URL = "/integrations/operator/preflight"


def test_no_run_yet_then_the_latest_run_with_problems_and_fixes(client: tuple[TestClient, Any]) -> None:
    http, conn = client
    empty = http.get(URL, headers=_auth())
    assert empty.status_code == 200 and 'data-status="none"' in empty.text

    first = PreflightResult(
        facts={
            "accurate_host": "http://accurate.test",
            "iseller_outlets": [{"id": "o-1", "name": "Toko Baru", "mapped": False}],
        }
    )
    first_id = save_result(conn, first, DAG_ID, "manual__first")
    hostile = Problem(
        "error", "sku_missing", 'SKU "<script>alert(1)</script>"', "has no item in Accurate.", "create it"
    )
    warning = Problem("warning", "no_sku", 'product "Kopi Luwak 100g" (p1)', "has no SKU.", "give it a SKU")
    save_result(
        conn, PreflightResult([hostile, warning], {"accurate_host": "http://a.test"}), DAG_ID, "manual__2"
    )

    page = http.get(URL, headers=_auth("preflight"))
    assert page.status_code == 200
    assert 'data-status="failed"' in page.text and "Preflight failed: 1 error, 1 warning" in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "give it a SKU" in page.text and "http://a.test" in page.text
    assert page.text.count('<tr data-severity="error"') == 1

    earlier = http.get(f"{URL}?run={first_id}", headers=_auth())
    assert 'data-status="clean"' in earlier.text and "Nothing to repair." in earlier.text
    assert "Toko Baru</strong> <span class=\"mono\">o-1</span> · <strong>not mapped</strong>" in earlier.text
    assert http.get(f"{URL}?run=999999", headers=_auth()).status_code == 404

    latest = http.get("/integrations/operator/api/preflight", headers=_auth()).json()["run"]
    assert (latest["run_id"], latest["errors"], latest["warnings"]) == ("manual__2", 1, 1)
    assert latest["problems"][0]["fix"] == "create it"


def test_permissions_and_login(client: tuple[TestClient, Any]) -> None:
    http, _ = client
    anonymous = http.get(URL)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/auth/login")
    assert http.get("/integrations/operator/api/preflight").status_code == 401
    refused = http.get(URL, headers=_auth("transfers"))  # may read the transfers DAG only
    assert refused.status_code == 403 and "preflight DAG" in refused.text
    assert http.get("/integrations/operator/api/preflight", headers=_auth("transfers")).status_code == 403


def test_the_page_is_in_the_browse_menu() -> None:
    (view,) = preflight_page.external_views()
    assert (view["name"], view["category"], view["destination"]) == ("Preflight", "browse", "nav")
    assert view["href"].endswith("/integrations/operator/preflight")
