"""The Reconciliation page over a real PostgreSQL ledger, behind Airflow's own user resolution.

As in test_pages.py: the router runs in-process under ``/integrations``, Airflow's ``get_user`` in
front (bearer token or the UI's cookie), a stand-in auth manager behind, and Airflow's REST API mocked
at the HTTP transport for Re-post.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from include.iseller_accurate.ledger import Document, Ledger, connect, migrate
from include.iseller_accurate.reconciliation import store
from include.iseller_accurate.reconciliation.sales import DayResult, Difference
from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.web import pages, shared
from include.iseller_accurate.web import reconciliation as page
from tests.integration.test_pages import _AuthManager, _User

DAG = "iseller_accurate_reconciliation"
AIRFLOW = "http://airflow.test"
PAGE = "/integrations/operator"
DAY = date(2026, 11, 25)


@pytest.fixture
def filled(pg_dsn: str) -> Iterator[dict[str, int]]:
    conn = connect(pg_dsn, autocommit=True)
    migrate(conn)
    ledger = Ledger(conn)
    ids = ledger.upsert(
        [
            Document(
                "sales_invoice",
                "o2",
                source_key="o2",
                source_date=datetime(2026, 11, 25, 3, tzinfo=UTC),
                target_module="sales-invoice",
                target_number="SI/JKT01-2",
                payload={"number": "SI/JKT01-2"},
                source_number="#JKT01-2",
                outlet_id="out-1",
            )
        ],
        None,
    )
    doc_id = ids[("sales_invoice", "o2")]
    ledger.mark_synced([(doc_id, "SI/JKT01-2", 5, None)])
    red = DayResult(
        "out-1", DAY, iseller={"orders": 3, "net_sales": Decimal("0.10")}, accurate={"invoices": 3}
    )
    red.differences = [
        Difference(
            "out-1",
            DAY,
            "missing_in_accurate",
            "sales-invoice",
            "SI/JKT01-2",
            "deleted",
            data_type="sales_invoice",
            source_number="#JKT01-2",
            document_id=doc_id,
            expected_amount=Decimal("130000.00"),
        ),
        Difference(
            "out-1",
            DAY,
            "only_in_accurate",
            "sales-invoice",
            "SI.2026.11.00001",
            "by hand",
            accurate_amount=Decimal("12500.00"),
        ),
        Difference(
            "out-1",
            DAY,
            "not_synced",
            "sales-receipt",
            "SR/JKT01-3",
            "failed: x",
            source_number="#JKT01-3",
            expected_amount=Decimal("1.00"),
        ),
    ]
    green = DayResult("out-2", DAY)
    store.save_days(conn, [red, green], None)
    diffs = {d["class"]: d["id"] for d in store.day_detail(conn, "out-1", DAY)[1]}
    conn.close()
    yield {"dsn": pg_dsn, **diffs}  # type: ignore[dict-item]


@pytest.fixture
def client(filled, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    import airflow.api_fastapi.app as airflow_app
    import airflow.api_fastapi.core_api.security as security

    manager = _AuthManager()
    manager.all_dags = {DAG}
    manager.users["sales"] = _User("sales", {"iseller_sales_to_accurate"})
    monkeypatch.setattr(security, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(airflow_app, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(shared, "dsn_from_connection", lambda *a, **k: filled["dsn"])
    settings = SyncSettings.model_validate(
        {
            "outlets": {
                "out-1": {"name": "Toko Kemang", "branch": "B1", "warehouse": "W1"},
                "out-2": {"name": "Toko Dago", "branch": "B2", "warehouse": "W2"},
            }
        }
    )
    monkeypatch.setattr(shared, "settings", lambda: (settings, None))
    monkeypatch.setattr(shared, "airflow_api_url", lambda request: AIRFLOW)
    sub = FastAPI()
    sub.include_router(pages.router)
    sub.include_router(page.router)
    root = FastAPI()
    root.mount("/integrations", sub)
    with TestClient(root, follow_redirects=False) as test_client:
        yield test_client


def _auth(user: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{user}"}


def test_anonymous_and_unauthorised_users_are_refused(client: TestClient) -> None:
    assert client.get(f"{PAGE}/reconciliation").status_code == 303
    assert client.get(f"{PAGE}/reconciliation-day?outlet=out-1&day=2026-11-25").status_code == 303
    assert client.get(f"{PAGE}/api/reconciliation").status_code == 401
    assert client.post(f"{PAGE}/api/reconciliation/repost", json={"ids": [1]}).status_code == 401
    denied = client.get(f"{PAGE}/reconciliation", headers=_auth("sales"))
    assert denied.status_code == 403 and "Not allowed" in denied.text and "SI/JKT01" not in denied.text
    assert client.get(f"{PAGE}/api/reconciliation", headers=_auth("sales")).status_code == 403


def test_grid_shows_green_red_and_unchecked(client: TestClient) -> None:
    body = client.get(
        f"{PAGE}/api/reconciliation", params={"from": "2026-11-24", "to": "2026-11-25"}, headers=_auth()
    ).json()
    cells = {(row["outlet_id"], cell["day"]): cell for row in body["outlets"] for cell in row["cells"]}
    assert cells[("out-1", "2026-11-25")]["status"] == "red"
    assert cells[("out-1", "2026-11-25")]["differences"] == 3
    assert Decimal(cells[("out-1", "2026-11-25")]["amount"]) == Decimal("142501.00")
    assert cells[("out-2", "2026-11-25")]["status"] == "green"
    assert cells[("out-1", "2026-11-24")]["status"] == "unchecked"
    html = client.get(f"{PAGE}/reconciliation?from=2026-11-24&to=2026-11-25", cookies={"_token": "tok-admin"})
    assert html.status_code == 200
    assert 'data-status="red"' in html.text and 'data-status="green"' in html.text
    assert "Toko Kemang" in html.text and "reconciliation-day?outlet=out-1&amp;day=2026-11-25" in html.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "not a date"),
        ("from=2026-11-30&to=2026-11-01", "after"),
        ("from=2026-01-01&to=2026-12-31", "at most"),
    ],
)
def test_bad_ranges_are_refused_with_the_reason(client: TestClient, query: str, message: str) -> None:
    resp = client.get(f"{PAGE}/api/reconciliation?{query}", headers=_auth())
    assert resp.status_code == 400 and message in resp.json()["detail"]


def test_day_lists_differences_with_class_fix_and_actions(client: TestClient, filled) -> None:
    html = client.get(f"{PAGE}/reconciliation-day?outlet=out-1&day=2026-11-25", headers=_auth()).text
    assert "Missing in Accurate" in html and "Only in Accurate" in html and "Not synced yet" in html
    assert html.count('class="btn small primary repost"') == 1
    assert f'data-id="{filled["missing_in_accurate"]}">Re-post' in html
    assert "sync-status?q=SR%2FJKT01-3" in html
    day = client.get(f"{PAGE}/api/reconciliation/day?outlet=out-1&day=2026-11-25", headers=_auth()).json()
    assert [d["repostable"] for d in day["differences"] if d["class"] == "missing_in_accurate"] == [True]
    assert day["iseller"]["net_sales"] == "0.10"  # money stays exact in JSON


@respx.mock
def test_repost_triggers_the_dag_as_the_user_with_the_days_conf(client: TestClient, filled) -> None:
    route = respx.post(f"{AIRFLOW}/api/v2/dags/{DAG}/dagRuns").mock(
        return_value=httpx.Response(200, json={"dag_run_id": "manual__repost1"})
    )
    resp = client.post(
        f"{PAGE}/api/reconciliation/repost", json={"ids": [filled["missing_in_accurate"]]}, headers=_auth()
    )
    assert resp.status_code == 200 and resp.json()["ok"], resp.text
    sent = json.loads(route.calls[0].request.content)
    assert route.calls[0].request.headers["Authorization"] == "Bearer tok-admin"
    assert sent["conf"] == {
        "repost": [filled["missing_in_accurate"]],
        "date_from": "2026-11-25",
        "date_to": "2026-11-25",
        "outlet_ids": ["out-1"],
        "check_stock": False,
    }


@respx.mock
def test_repost_refuses_other_classes_forms_and_reports_airflows_refusal(client: TestClient, filled) -> None:
    other = client.post(
        f"{PAGE}/api/reconciliation/repost", json={"ids": [filled["only_in_accurate"]]}, headers=_auth()
    )
    assert other.status_code == 400
    form = client.post(f"{PAGE}/api/reconciliation/repost", data={"ids": "1"}, headers=_auth())
    assert form.status_code in (415, 422)
    too_many = client.post(
        f"{PAGE}/api/reconciliation/repost", json={"ids": list(range(1, 600))}, headers=_auth()
    )
    assert too_many.status_code == 422
    respx.post(f"{AIRFLOW}/api/v2/dags/{DAG}/dagRuns").mock(
        return_value=httpx.Response(403, json={"detail": "no trigger permission"})
    )
    refused = client.post(
        f"{PAGE}/api/reconciliation/repost", json={"ids": [filled["missing_in_accurate"]]}, headers=_auth()
    ).json()
    assert refused["ok"] is False and "may not" in refused["message"]


def test_the_plugin_adds_the_page_to_the_browse_menu() -> None:
    view = page.external_view()
    assert (view["name"], view["category"], view["destination"]) == ("Reconciliation", "browse", "nav")
    assert view["href"].endswith("/integrations/operator/reconciliation")


def test_a_red_day_alerts_once_per_outlet_and_day(filled, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the existing sync_alerts channel (a chat webhook here); a second run does not repeat it."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from include.iseller_accurate.reconciliation import run as recon

    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYNC_ALERTS",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}/h"}),
    )
    settings = SyncSettings.model_validate(
        {"outlets": {"out-1": {"name": "Toko Kemang", "branch": "B1", "warehouse": "W1"}}}
    )
    conn = connect(filled["dsn"], autocommit=True)
    try:
        ledger = Ledger(conn)
        outcome = recon.SalesOutcome(
            [DayResult("out-1", DAY, differences=[object()]), DayResult("out-2", DAY)]
        )  # type: ignore[list-item]
        assert recon.send_red_day_alerts(ledger, outcome, settings) == 1
        assert recon.send_red_day_alerts(ledger, outcome, settings) == 0  # once per outlet and day
        [message] = received
        assert "Toko Kemang 2026-11-25: 3 difference(s)" in message["text"]
        assert "/integrations/operator/reconciliation" in message["text"]
        # A day that turns green and later red again alerts again.
        store.save_days(conn, [DayResult("out-1", DAY)], None)
        red_again = DayResult("out-1", DAY)
        red_again.differences = [
            Difference("out-1", DAY, "only_in_accurate", "sales-invoice", "X", "by hand")
        ]
        store.save_days(conn, [red_again], None)
        assert recon.send_red_day_alerts(ledger, recon.SalesOutcome([red_again]), settings) == 1
    finally:
        conn.close()
        server.shutdown()
        server.server_close()
