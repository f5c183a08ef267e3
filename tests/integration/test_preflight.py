"""The go-live preflight against both sandboxes (real servers on real sockets) and a real ledger.

The demo shop has two deliberate flaws of its own (a product without SKU: a warning; SKU BRG-0049
with no Accurate item: an error). That is the baseline. Three more mistakes (a misspelt warehouse, a
payment type mapped to no account, a SKU Accurate lacks) must show as exactly three more problems,
each naming its outlet or key and the fix; repaired, the list is back to the baseline; with the
demo's own flaws repaired too, the preflight is clean. Nothing is written to either side.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from include.iseller_accurate.clients import (
    AccurateHook,
    IsellerHook,
    LocalRateLimiter,
    clear_discovery_cache,
)
from include.iseller_accurate.ledger import connect, migrate
from include.iseller_accurate.preflight import (
    PreflightResult,
    Problem,
    read_subscription,
    recent_results,
    run_preflight,
    save_result,
)
from include.iseller_accurate.settings import parse_settings
from sandbox.demo_shop import build_demo_shop

pytestmark = pytest.mark.sandbox

SHOP = build_demo_shop(42)
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)  # the seeded orders (16-20 Nov) are in the last 30 days
KEMANG, DAGO = SHOP.outlets[0], SHOP.outlets[1]
NO_SKU = next(p for p in SHOP.products if not p.sku)
NOT_IN_ACCURATE = next(p for p in SHOP.products if not p.in_accurate)
RENAMED = SHOP.product_by_sku("BRG-0001")


@pytest.fixture
def hooks(sandbox_connections: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    accurate_url, iseller_url = sandbox_connections
    accurate = AccurateHook(rate_limiter=LocalRateLimiter(), max_retries=2)
    iseller = IsellerHook()
    # Every iSeller call the preflight makes, with the hook's own read/write flag.
    calls: list[tuple[str, bool]] = []
    original = iseller._post

    def spy(path: str, body: Any, *, write: bool = False) -> dict[str, Any]:
        calls.append((path, write))
        return original(path, body, write=write)

    monkeypatch.setattr(iseller, "_post", spy)
    yield {
        "accurate": accurate,
        "iseller": iseller,
        "iseller_calls": calls,
        "accurate_url": accurate_url,
        "iseller_url": iseller_url,
    }
    accurate.close()
    iseller.close()


@pytest.fixture
def ledger(pg_dsn: str) -> Iterator[Any]:
    conn = connect(pg_dsn, autocommit=True)
    migrate(conn)
    # As accurate_webhook_maintenance leaves it: renewed, 7 days to go.
    conn.execute(
        "INSERT INTO sync.webhook_subscription (id, renewed_at, expires_at) VALUES (true, %s, %s)",
        (NOW - timedelta(minutes=5), NOW + timedelta(days=7)),
    )
    yield conn
    conn.close()


def preflight(hooks: dict[str, Any], ledger: Any, settings: dict[str, Any]) -> PreflightResult:
    return run_preflight(
        parse_settings(settings), hooks["accurate"], hooks["iseller"], lambda: read_subscription(ledger), NOW
    )


def keys(problems: list[Problem]) -> set[tuple[str, str, str]]:
    return {p.key for p in problems}


def assert_read_only(hooks: dict[str, Any], state_before: dict[str, Any]) -> None:
    requests = httpx.get(f"{hooks['accurate_url']}/_sandbox/requests", timeout=10).json()["requests"]
    assert requests, "the preflight read nothing from Accurate"
    # Host discovery (api-token.do) and list.do: nothing else, and never a save, bulk-save or delete.
    assert {(r["module"], r["action"]) for r in requests if r["action"] != "list"} == {
        ("account", "api-token")
    }
    assert all(r["method"] == "GET" for r in requests), requests
    assert hooks["iseller_calls"] and not any(write for _, write in hooks["iseller_calls"])
    assert {path for path, _ in hooks["iseller_calls"]} <= {
        "api/v3/GetOutlets",
        "api/v2/GetOrders",
        "api/v2/GetProducts",
    }
    state_after = httpx.get(f"{hooks['iseller_url']}/_sandbox/state", timeout=10).json()
    assert state_after == state_before


def begin(hooks: dict[str, Any]) -> dict[str, Any]:
    """Forget earlier requests; iSeller's state before the run."""
    httpx.delete(f"{hooks['accurate_url']}/_sandbox/requests", timeout=10).raise_for_status()
    hooks["iseller_calls"].clear()
    return httpx.get(f"{hooks['iseller_url']}/_sandbox/state", timeout=10).json()


def test_three_mistakes_are_listed_exactly_with_their_fixes(hooks: dict[str, Any], ledger: Any) -> None:
    settings = SHOP.settings()

    state = begin(hooks)
    baseline = preflight(hooks, ledger, settings)
    assert_read_only(hooks, state)
    # The demo's own deliberate flaws: the SKU gap fails the run, the product without SKU warns.
    assert keys(baseline.problems) == {
        ("error", "sku_missing", f'SKU "{NOT_IN_ACCURATE.sku}"'),
        ("warning", "no_sku", f'product "{NO_SKU.name}" ({NO_SKU.product_id})'),
    }
    assert baseline.status == "failed"
    assert baseline.facts["accurate_host"] == hooks["accurate_url"]

    # The three mistakes.
    wrong = copy.deepcopy(settings)
    wrong["outlets"][KEMANG.outlet_id]["warehouse"] = "Gudang Kemangg"
    del wrong["outlets"][DAGO.outlet_id]["payment_accounts"]["external_credit"]
    httpx.patch(
        f"{hooks['iseller_url']}/_sandbox/products/{RENAMED.product_id}",
        json={"sku": "BRG-0001-X"},
        timeout=10,
    ).raise_for_status()

    state = begin(hooks)
    mistaken = preflight(hooks, ledger, wrong)
    assert_read_only(hooks, state)
    new = [p for p in mistaken.problems if p.key not in keys(baseline.problems)]
    assert len(mistaken.problems) == len(baseline.problems) + 3
    by_check = {p.check: p for p in new}
    assert set(by_check) == {"warehouse", "payment_type", "sku_missing"}, new

    warehouse = by_check["warehouse"]
    assert warehouse.severity == "error"
    assert warehouse.subject == f"outlet {KEMANG.name} ({KEMANG.outlet_id})"
    assert '"Gudang Kemangg" does not exist in Accurate' in warehouse.message
    assert f"iseller_accurate_settings.outlets.{KEMANG.outlet_id}.warehouse" in warehouse.fix
    assert '"Gudang Kemang" (the closest warehouse name in Accurate)' in warehouse.fix

    payment = by_check["payment_type"]
    assert payment.severity == "error"
    assert payment.subject == f'outlet {DAGO.name} ({DAGO.outlet_id}) payment type "external_credit"'
    assert (
        f"iseller_accurate_settings.outlets.{DAGO.outlet_id}.payment_accounts.external_credit" in payment.fix
    )

    sku = by_check["sku_missing"]
    assert sku.severity == "error"
    assert sku.subject == 'SKU "BRG-0001-X"'
    assert RENAMED.name in sku.message
    assert 'create item "BRG-0001-X" in Accurate' in sku.fix and "correct the SKU in iSeller" in sku.fix

    report = mistaken.report()
    assert report.splitlines()[0] == "Preflight failed: 4 error(s), 1 warning(s)"
    for problem in new:
        assert problem.line() in report and "Fix: " in problem.line()
    assert mistaken.counts() == {"status": "failed", "errors": 4, "warnings": 1}

    # Stored for the page, newest first.
    save_result(ledger, baseline, "iseller_accurate_preflight", "baseline")
    save_result(ledger, mistaken, "iseller_accurate_preflight", "mistaken")
    latest = recent_results(ledger)[0]
    assert latest["run_id"] == "mistaken" and latest["errors"] == 4 and latest["warnings"] == 1
    assert {p["subject"] for p in latest["problems"]} >= {warehouse.subject, payment.subject, sku.subject}

    # Repaired: back to exactly the baseline.
    httpx.patch(
        f"{hooks['iseller_url']}/_sandbox/products/{RENAMED.product_id}", json={"sku": "BRG-0001"}, timeout=10
    ).raise_for_status()
    state = begin(hooks)
    repaired = preflight(hooks, ledger, settings)
    assert_read_only(hooks, state)
    assert keys(repaired.problems) == keys(baseline.problems)


def test_clean_once_the_demo_flaws_are_repaired_too(hooks: dict[str, Any], ledger: Any) -> None:
    httpx.patch(
        f"{hooks['iseller_url']}/_sandbox/products/{NO_SKU.product_id}", json={"sku": "BRG-0048"}, timeout=10
    ).raise_for_status()
    items = [
        {"no": "BRG-0048", "name": NO_SKU.name, "itemType": "INVENTORY", "unit1Name": NO_SKU.unit},
        {
            "no": NOT_IN_ACCURATE.sku,
            "name": NOT_IN_ACCURATE.name,
            "itemType": "INVENTORY",
            "unit1Name": NOT_IN_ACCURATE.unit,
        },
    ]
    httpx.post(f"{hooks['accurate_url']}/_sandbox/items", json=items, timeout=10).raise_for_status()

    state = begin(hooks)
    result = preflight(hooks, ledger, SHOP.settings())
    assert_read_only(hooks, state)
    assert result.problems == []
    assert result.status == "clean"
    assert result.report().splitlines() == [
        "Preflight clean: 0 error(s), 0 warning(s)",
        "- nothing to repair",
    ]
    assert result.facts["skus_missing"] == 0 and result.facts["skus"] == len(SHOP.products)


def test_a_non_inventory_item_tracked_in_iseller_and_bad_credentials(
    hooks: dict[str, Any], ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpx.post(
        f"{hooks['accurate_url']}/_sandbox/items", json={"no": "BRG-0002", "itemType": "SERVICE"}, timeout=10
    ).raise_for_status()
    result = preflight(hooks, ledger, SHOP.settings())
    typed = [p for p in result.problems if p.check == "item_type"]
    assert [p.subject for p in typed] == ['SKU "BRG-0002"']
    assert "inventory item" in typed[0].fix

    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": hooks["accurate_url"],
                "password": "wrong-token",
                "extra": {"signature_secret": "sandbox-signature-secret"},
            }
        ),
    )
    clear_discovery_cache()
    bad = run_preflight(
        parse_settings(SHOP.settings()),
        AccurateHook(max_retries=0),
        hooks["iseller"],
        lambda: read_subscription(ledger),
        NOW,
    )
    assert bad.status == "failed"
    login = [p for p in bad.problems if p.check == "unchecked"]
    assert [p.subject for p in login] == ["connection accurate_api"]
    assert "wrong-token" not in bad.report()
    # iSeller's checks still ran: the product without SKU is still reported.
    assert any(p.check == "no_sku" for p in bad.problems)


def test_the_dag_task_fails_on_errors_stores_the_list_and_sends_counts_only(
    hooks: dict[str, Any], pg_dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from include.iseller_accurate.preflight import note_outcome, run_task

    info = conninfo_to_dict(pg_dsn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYNC_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": info.get("host"),
                "port": int(info.get("port") or 5432),
                "schema": info.get("dbname"),
                "login": info.get("user"),
                "password": info.get("password") or "",
            }
        ),
    )
    wrong = SHOP.settings()
    wrong["outlets"][KEMANG.outlet_id]["warehouse"] = "Gudang Kemangg"
    monkeypatch.setenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", json.dumps(wrong))
    ti = type(
        "TI",
        (),
        {
            "dag_id": "iseller_accurate_preflight",
            "run_id": "manual__1",
            "task_id": "preflight",
            "map_index": -1,
        },
    )()
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as failed:
        run_task({"ti": ti})
    assert str(failed.value).startswith("Preflight failed: 2 errors, 2 warnings.")
    caplog.clear()
    with caplog.at_level("INFO"):
        note_outcome({"ti": ti, "exception": failed.value})
    last = caplog.records[-1].getMessage()  # the callback ends the log with the list
    assert last.splitlines()[0] == "Preflight failed: 2 error(s), 2 warning(s)"
    assert f'ERROR outlet {KEMANG.name} ({KEMANG.outlet_id}): warehouse "Gudang Kemangg"' in last
    # No renewal recorded in this fresh ledger: a warning, named with its fix.
    assert "WARNING Accurate webhook subscription: no renewal recorded yet" in last

    with connect(pg_dsn, autocommit=True) as conn:
        (row,) = recent_results(conn)
    assert (row["run_id"], row["status"], row["errors"], row["warnings"]) == ("manual__1", "failed", 2, 2)

    # Only warnings: the run succeeds and XCom gets counts, nothing else.
    monkeypatch.setenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", json.dumps(SHOP.settings()))
    httpx.post(
        f"{hooks['accurate_url']}/_sandbox/items",
        json={
            "no": NOT_IN_ACCURATE.sku,
            "name": NOT_IN_ACCURATE.name,
            "itemType": "INVENTORY",
        },
        timeout=10,
    ).raise_for_status()
    ti.run_id = "manual__2"
    assert run_task({"ti": ti}) == {"status": "warnings", "errors": 0, "warnings": 2}
