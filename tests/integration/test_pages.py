"""The operator pages (Sync Status, Webhook Log) over a real PostgreSQL ledger of 100,000+ rows.

The pages' FastAPI router runs in-process, mounted under ``/integrations`` as the plugin mounts it,
with Airflow's own user resolution (``airflow.api_fastapi.core_api.security.get_user``: bearer header
or the UI's ``_token`` cookie) in front of every route. Only the auth manager behind it is a stand-in
(tokens and per-DAG permissions chosen by the test), and Airflow's REST API is mocked at the HTTP
transport for Refresh. The same checks against the real API server are in test_pages_stack.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from fastapi.testclient import TestClient

from include.iseller_accurate.ledger import connect, migrate
from include.iseller_accurate.web import listing, pages, shared
from tests import pages_app
from tests.pages_app import SALES_DAG, TRANSFERS_DAG, WEBHOOK_DAG
from tests.pages_app import AuthManager as _AuthManager  # noqa: F401  (test_preflight_page, test_reconciliation_page)
from tests.pages_app import User as _User  # noqa: F401

ROWS = 100_000
AIRFLOW = "http://airflow.test"
ANSWER_BUDGET_S = 1.0


# -- a ledger with 100,000 documents and 100,000 webhook events ------------------------------------
@pytest.fixture(scope="module")
def big_ledger(pg_server_dsn: str) -> Iterator[str]:
    name = f"t_pages_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{pg_server_dsn.rpartition('/')[0]}/{name}"
    try:
        with connect(dsn, autocommit=True) as conn:
            migrate(conn)
            pages_app.fill(conn, ROWS)
        yield dsn
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Airflow's auth in front, a stand-in auth manager behind (tests/pages_app.py)
@pytest.fixture
def client(big_ledger: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    pages_app.install(big_ledger, monkeypatch.setattr)
    monkeypatch.setattr(shared, "airflow_api_url", lambda request: AIRFLOW)
    with TestClient(pages_app.app(), follow_redirects=False) as test_client:
        yield test_client


def _auth(user: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{user}"}


def _timed_get(client: TestClient, url: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    resp = client.get(url, **kwargs)
    elapsed = time.perf_counter() - started
    print(f"{elapsed * 1000:7.1f} ms  GET {url} {kwargs.get('params') or ''}")  # shown with pytest -s
    return resp, elapsed


API = "/integrations/operator/api"
PAGE = "/integrations/operator"


# -- anonymous requests are refused ----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/documents", "/api/webhook-events"])
def test_data_endpoints_refuse_anonymous_and_bad_tokens(client: TestClient, path: str) -> None:
    anonymous = client.get(f"{PAGE}{path}")
    assert anonymous.status_code == 401
    assert "rows" not in anonymous.text
    assert client.get(f"{PAGE}{path}", headers={"Authorization": "Bearer forged"}).status_code == 403
    assert client.get(f"{PAGE}{path}", cookies={"_token": "forged"}).status_code == 403


@pytest.mark.parametrize("path", ["/sync-status", "/webhook-log", "/run?dag_id=x&run_id=y"])
def test_pages_send_anonymous_users_to_the_airflow_login(client: TestClient, path: str) -> None:
    resp = client.get(f"{PAGE}{path}")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/auth/login")
    assert "SI/OUT" not in resp.text


def test_refresh_refuses_anonymous(client: TestClient) -> None:
    resp = client.post(f"{API}/refresh", json={"kind": "documents", "ids": [97]})
    assert resp.status_code == 401


def test_the_airflow_ui_cookie_signs_in(client: TestClient) -> None:
    resp = client.get(f"{PAGE}/sync-status", cookies={"_token": "tok-admin"})
    assert resp.status_code == 200
    assert "Sync Status" in resp.text and "signed in as admin" in resp.text


# -- permissions: only the DAGs whose task instances the user may read -----------------------------
def test_rows_are_limited_to_the_dags_the_user_may_read(client: TestClient) -> None:
    body = client.get(f"{API}/documents", params={"size": 200}, headers=_auth("transfers")).json()
    assert body["rows"] and {row["dag_id"] for row in body["rows"]} == {TRANSFERS_DAG}
    assert body["total"] == ROWS // 10
    # webhook events: none readable (the webhook DAG is not theirs), unowned events neither
    assert client.get(f"{API}/webhook-events", headers=_auth("transfers")).json()["total"] == 0


def test_a_user_without_any_dag_is_refused(client: TestClient) -> None:
    assert client.get(f"{API}/documents", headers=_auth("nobody")).status_code == 403
    page = client.get(f"{PAGE}/sync-status", headers=_auth("nobody"))
    assert page.status_code == 403 and "Not allowed" in page.text


# -- 100,000 rows: every answer under a second -----------------------------------------------------
@pytest.mark.slow
def test_list_answers_under_a_second_with_100000_rows(client: TestClient) -> None:
    first, elapsed = _timed_get(client, f"{API}/documents", headers=_auth())
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["total"] == ROWS and not body["total_capped"]
    assert len(body["rows"]) == listing.DEFAULT_PAGE_SIZE
    assert body["rows"][0]["source_id"] == f"src-{ROWS}"  # newest first
    assert body["counts"]["failed"] == ROWS // 97
    assert elapsed < ANSWER_BUDGET_S, f"first page took {elapsed:.3f}s"

    # keyset paging: a few pages on, then 99,000 rows deep (the cursor of document 1,000)
    cursor = body["older"]
    for _ in range(5):
        body = client.get(f"{API}/documents", params={"after": cursor}, headers=_auth()).json()
        cursor = body["older"]
    assert body["rows"][-1]["source_id"] == f"src-{ROWS - 6 * listing.DEFAULT_PAGE_SIZE + 1}"
    deep_cursor = listing.encode_cursor(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * 1000), 1000)
    deep, elapsed = _timed_get(client, f"{API}/documents", params={"after": deep_cursor}, headers=_auth())
    assert [row["source_id"] for row in deep.json()["rows"]][:2] == ["src-999", "src-998"]
    assert elapsed < ANSWER_BUDGET_S, f"a page 99,000 rows deep took {elapsed:.3f}s"
    last, elapsed = _timed_get(client, f"{PAGE}/sync-status", params={"after": deep_cursor}, headers=_auth())
    assert last.status_code == 200 and "src-" not in last.text.split("<tbody>")[0]
    assert elapsed < ANSWER_BUDGET_S, f"the HTML page 99,000 rows deep took {elapsed:.3f}s"

    for params in (
        {"status": "failed"},
        {"status": "attention", "outlet": "outlet-1"},
        {"type": "sales_invoice", "from": "2026-03-01", "to": "2026-04-30"},
        {"q": "OUT2-4"},
        {"status": "synced", "type": "stock_opname", "outlet": "outlet-2"},
    ):
        resp, elapsed = _timed_get(client, f"{API}/documents", params=params, headers=_auth())
        assert resp.status_code == 200, resp.text
        assert elapsed < ANSWER_BUDGET_S, f"{params} took {elapsed:.3f}s"

    for url in (f"{PAGE}/sync-status", f"{PAGE}/sync-status?status=failed", f"{PAGE}/webhook-log"):
        resp, elapsed = _timed_get(client, url, headers=_auth())
        assert resp.status_code == 200
        assert elapsed < ANSWER_BUDGET_S, f"{url} took {elapsed:.3f}s"

    resp, elapsed = _timed_get(client, f"{API}/webhook-events", params={"status": "failed"}, headers=_auth())
    assert resp.json()["total"] == ROWS // 101
    assert elapsed < ANSWER_BUDGET_S


def test_filters(client: TestClient) -> None:
    failed = client.get(f"{API}/documents", params={"status": "failed", "size": 500}, headers=_auth()).json()
    assert failed["total"] == ROWS // 97
    assert all(row["status"] == "failed" and "tidak ditemukan" in row["reason"] for row in failed["rows"])
    attention = client.get(f"{API}/documents", params={"status": "attention"}, headers=_auth()).json()
    assert {row["status"] for row in attention["rows"]} <= {"failed", "blocked"}
    outlet = client.get(
        f"{API}/documents", params={"outlet": "outlet-3", "type": "sales_return"}, headers=_auth()
    )
    rows = outlet.json()["rows"]
    assert rows and all(r["outlet_id"] == "outlet-3" and r["data_type"] == "sales_return" for r in rows)
    assert rows[0]["outlet_name"] == "Toko 3"
    day = client.get(
        f"{API}/documents", params={"from": "2026-01-02", "to": "2026-01-02"}, headers=_auth()
    ).json()
    # one local (Asia/Jakarta) day of 5-minute documents
    assert day["total"] == 24 * 12
    assert all(row["date_local"].startswith("2026-01-02") for row in day["rows"])
    found = client.get(f"{API}/documents", params={"q": "SI/OUT1-54321"}, headers=_auth()).json()
    assert [row["source_id"] for row in found["rows"]] == ["src-54321"]
    assert client.get(f"{API}/documents", params={"status": "bogus"}, headers=_auth()).status_code == 400
    assert client.get(f"{API}/documents", params={"from": "yesterday"}, headers=_auth()).status_code == 400
    assert client.get(f"{API}/documents", params={"after": "garbage"}, headers=_auth()).status_code == 400


def test_keyset_pages_walk_forward_and_back(client: TestClient) -> None:
    params = {"status": "failed", "size": 7}
    first = client.get(f"{API}/documents", params=params, headers=_auth()).json()
    assert first["newer"] is None and first["older"]
    second = client.get(
        f"{API}/documents", params={**params, "after": first["older"]}, headers=_auth()
    ).json()
    back = client.get(
        f"{API}/documents", params={**params, "before": second["newer"]}, headers=_auth()
    ).json()
    assert [r["id"] for r in back["rows"]] == [r["id"] for r in first["rows"]]
    ids = [r["id"] for r in first["rows"] + second["rows"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 14


def test_rows_link_to_their_airflow_task_instance(client: TestClient) -> None:
    row = client.get(f"{API}/documents", params={"ids": "97"}, headers=_auth()).json()["rows"][0]
    assert row["ti_url"] == f"/dags/{SALES_DAG}/runs/scheduled__0/tasks/load"
    page = client.get(
        f"{PAGE}/sync-status",
        params={"dag_id": SALES_DAG, "run_id": "scheduled__0", "status": "failed"},
        headers=_auth(),
    ).text
    assert f'href="/dags/{SALES_DAG}/runs/scheduled__0/tasks/load" target="_top"' in page


# -- Refresh: Airflow's clearTaskInstances, as the signed-in user ----------------------------------
def test_refresh_clears_the_owning_task_instance_with_the_users_token(client: TestClient) -> None:
    with respx.mock(assert_all_called=True) as airflow:
        route = airflow.post(f"{AIRFLOW}/api/v2/dags/{SALES_DAG}/clearTaskInstances").mock(
            return_value=httpx.Response(200, json={"task_instances": [{"task_id": "load", "map_index": -1}]})
        )
        resp = client.post(
            f"{API}/refresh",
            json={"kind": "documents", "ids": [97, 89 * 2, 5]},
            cookies={"_token": "tok-admin"},
        )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert [run["ok"] for run in result["runs"]] == [True, True]  # two runs: scheduled__0 and scheduled__1
    assert [s["id"] for s in result["skipped"]] == [5]  # synced: nothing to refresh
    sent = [call.request for call in route.calls]
    assert all(request.headers["Authorization"] == "Bearer tok-admin" for request in sent)
    bodies = sorted(
        (httpx.Response(200, content=r.content).json() for r in sent), key=lambda b: b["dag_run_id"]
    )
    assert bodies[0]["dag_run_id"] == "scheduled__0" and bodies[0]["task_ids"] == ["load"]
    assert bodies[0]["only_failed"] is True and bodies[0]["dry_run"] is False
    assert "SI/OUT1-97" in bodies[0]["note"]


def test_refresh_falls_back_to_the_runs_failed_tasks(client: TestClient) -> None:
    answers = iter(
        [
            httpx.Response(200, json={"task_instances": []}),
            httpx.Response(200, json={"task_instances": [{"task_id": "load", "map_index": -1}]}),
        ]
    )
    with respx.mock() as airflow:
        route = airflow.post(f"{AIRFLOW}/api/v2/dags/{SALES_DAG}/clearTaskInstances").mock(
            side_effect=lambda request: next(answers)
        )
        result = client.post(
            f"{API}/refresh", json={"kind": "documents", "ids": [97]}, headers=_auth()
        ).json()
    assert result["runs"][0]["ok"]
    second = httpx.Response(200, content=route.calls[1].request.content).json()
    assert "task_ids" not in second  # every failed task of the run


def test_refresh_reports_airflows_refusal(client: TestClient) -> None:
    with respx.mock() as airflow:
        airflow.post(f"{AIRFLOW}/api/v2/dags/{SALES_DAG}/clearTaskInstances").mock(
            return_value=httpx.Response(403, json={"detail": "Forbidden"})
        )
        answer = client.post(f"{API}/refresh", json={"kind": "documents", "ids": [97]}, headers=_auth())
    assert answer.status_code == 403, answer.text  # refused every run asked: the user may clear none
    result = answer.json()
    assert result["runs"][0]["ok"] is False
    assert "may not clear" in result["runs"][0]["message"]
    assert result["detail"] == result["runs"][0]["message"]  # what the page shows


def test_refresh_only_touches_rows_the_user_may_see(client: TestClient) -> None:
    # document 97 belongs to the sales DAG: invisible to the transfers-only user, so nothing is cleared
    with respx.mock(assert_all_called=False) as airflow:
        route = airflow.post(url__regex=r".*/clearTaskInstances").mock(return_value=httpx.Response(200))
        result = client.post(
            f"{API}/refresh", json={"kind": "documents", "ids": [97]}, headers=_auth("transfers")
        ).json()
    assert result == {"runs": [], "skipped": [], "requested": 0}
    assert not route.called


def test_refresh_wants_json(client: TestClient) -> None:
    resp = client.post(
        f"{API}/refresh",
        content="kind=documents&ids=97",
        headers={**_auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code in (415, 422)


def test_webhook_log_lists_events_and_refreshes_failed_ones(client: TestClient) -> None:
    body = client.get(f"{API}/webhook-events", params={"status": "failed"}, headers=_auth()).json()
    row = body["rows"][0]
    assert row["reason"] == "Produk tanpa SKU di iSeller" and row["refreshable"]
    assert row["ti_url"].startswith(f"/dags/{WEBHOOK_DAG}/runs/")
    with respx.mock() as airflow:
        airflow.post(f"{AIRFLOW}/api/v2/dags/{WEBHOOK_DAG}/clearTaskInstances").mock(
            return_value=httpx.Response(200, json={"task_instances": [{"task_id": "process_events"}]})
        )
        result = client.post(
            f"{API}/refresh", json={"kind": "webhook_events", "ids": [row["id"]]}, headers=_auth()
        ).json()
    assert result["runs"][0]["ok"]
    html = client.get(f"{PAGE}/webhook-log?status=failed", headers=_auth()).text
    assert "Produk tanpa SKU di iSeller" in html and "Webhook Log" in html


def test_plugin_navigation_entries() -> None:
    views = {view["name"]: view for view in pages.external_views()}
    assert views["Sync Status"]["href"].endswith("/integrations/operator/sync-status")
    assert views["Webhook Log"]["url_route"] == "webhook-log"
    assert views["Sync Status"]["category"] == views["Webhook Log"]["category"] == "browse"
    assert "{RUN_ID}" in views["Sync documents"]["href"]


# -- hostile query strings (issue 9): a 400 with a reason, never a 500 -----------------------------
@pytest.mark.parametrize("path", [f"{API}/documents", f"{API}/webhook-events", f"{PAGE}/sync-status"])
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"q": "a\x00b"}, "q: contains the control character \\x00"),
        ({"q": "SI\x1b[31m"}, "q: contains the control character \\x1b"),
        ({"q": "x" * 5000}, "q: longer than"),
        ({"type": "sales\x00invoice"}, "type: contains the control character"),
        ({"outlet": "outlet-1\x00"}, "outlet: contains the control character"),
        ({"dag_id": SALES_DAG, "run_id": "r\x00"}, "run_id: contains the control character"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "a date between"),
    ],
    ids=["nul", "escape", "long", "type-nul", "outlet-nul", "run-id-nul", "last-day"],
)
def test_hostile_filters_are_400_with_a_reason(
    client: TestClient, path: str, params: dict[str, str], reason: str
) -> None:
    resp = client.get(path, params=params, headers=_auth())
    assert resp.status_code == 400, resp.text
    assert reason in resp.json()["detail"]


def test_hostile_row_ids_and_cursors_are_400(client: TestClient) -> None:
    for params in (
        {"ids": "1," * 600},
        {"ids": "99999999999999999999999"},
        {"ids": "-5"},
        {"after": "YQBi"},  # base64 of "a\x00b"
        {"before": "\x00"},
    ):
        resp = client.get(f"{API}/documents", params=params, headers=_auth())
        assert resp.status_code == 400, (params, resp.text)


def test_refresh_with_absurd_ids_is_refused_or_harmless(client: TestClient) -> None:
    for ids in ([10**30], [-1], [2**63]):
        resp = client.post(f"{API}/refresh", json={"kind": "documents", "ids": ids}, headers=_auth())
        assert resp.status_code in (200, 422), (ids, resp.status_code, resp.text)
        if resp.status_code == 200:
            assert resp.json() == {"runs": [], "skipped": [], "requested": 0}
