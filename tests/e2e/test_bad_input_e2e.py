"""Bad trigger conf and a bad settings Variable on the real stack (REST API, scheduler, sandboxes).

- conf the params can describe is refused by the REST API (400); an unknown key is accepted by
  Airflow, and the run fails at once (first try, no retry), naming the key;
- an invalid settings Variable keeps the sales DAG (the POS hook's trigger answers 200, not 404 "Dag
  not found"); the run fails at once naming the key; after the repair a sweep run (the scheduled
  run of shift_close mode, started here by hand) syncs the shift whose run failed, exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.demo_shop import build_demo_shop

DAG_ID = "iseller_sales_to_accurate"
SETTINGS_KEY = "iseller_accurate_settings"
SHOP = build_demo_shop(42)


def _wait(check: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def _details(airflow) -> dict[str, Any]:
    return airflow.call("GET", f"/api/v2/dags/{DAG_ID}/details")


def _saves_of(accurate_sandbox_url: str, number: str) -> int:
    log = httpx.get(
        f"{accurate_sandbox_url}/_sandbox/requests", params={"module": "sales-invoice"}, timeout=30
    )
    return sum(
        1
        for entry in log.json()["requests"]
        for saved in entry.get("saved") or []
        if saved.get("number") == number
    )


@pytest.fixture(scope="module")
def sales_dag(airflow):
    airflow.wait_for_dag(DAG_ID)
    airflow.unpause(DAG_ID)
    yield DAG_ID


def test_bad_conf_is_refused_or_fails_at_once(airflow, sales_dag):
    answer = airflow.post_dag_run(
        DAG_ID,
        {"logical_date": None, "conf": {"window_start": "yesterday", "window_end": "2026-11-16T00:00:00Z"}},
    )
    assert answer.status_code == 400, answer.text
    assert "window_start" in answer.text

    register = SHOP.registers[0]
    conf = {"outlet_idd": register.outlet_id, "register_id": register.register_id, "register_shift_id": "x"}
    run_id = airflow.trigger_dag(DAG_ID, conf=conf)["dag_run_id"]
    started = time.monotonic()
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=180) == "failed"
    [extract] = [t for t in airflow.task_instances(DAG_ID, run_id) if t["task_id"] == "extract"]
    assert (extract["state"], extract["try_number"]) == ("failed", 1)  # no retry
    assert "conf.outlet_idd: unknown key" in airflow.task_log(DAG_ID, run_id, "extract")
    print(f"\nunknown conf key: run failed {time.monotonic() - started:.0f} s after the trigger")


def test_invalid_settings_keep_the_dag_and_the_sweep_syncs_the_shift(
    airflow, sales_dag, iseller_sandbox_url, accurate_sandbox_url
):
    original = airflow.get_variable(SETTINGS_KEY, deserialize_json=True) or {}
    assert original.get("sales_sync_mode", "shift_close") == "shift_close"
    airflow.set_variable(SETTINGS_KEY, {**original, "sales_sync_modee": "realtime"})
    try:
        _wait(
            lambda: "settings Variable is invalid" in (_details(airflow).get("doc_md") or ""),
            "the DAG re-parsed with the invalid Variable",
        )
        assert not [e for e in airflow.import_errors() if DAG_ID in str(e.get("filename"))]
        register = SHOP.registers[5]
        order = httpx.post(
            f"{iseller_sandbox_url}/_sandbox/orders",
            json={
                "outlet_id": register.outlet_id,
                "register_id": register.register_id,
                "lines": [{"sku": "BRG-0005", "quantity": 1}],
            },
            timeout=30,
        )
        assert order.status_code == 200, order.text
        number = "SI/" + order.json()["order_reference"].lstrip("#")
        shift = httpx.post(
            f"{iseller_sandbox_url}/_sandbox/registers/{register.register_id}/close-shift", timeout=60
        ).json()
        hook = shift["hook"]
        assert hook and hook["success"], hook  # the DAG is still there: no 404 "Dag not found"
        run_id = hook["body"]["dag_run_id"]
        assert airflow.wait_for_run(DAG_ID, run_id, timeout=180) == "failed"
        [extract] = [t for t in airflow.task_instances(DAG_ID, run_id) if t["task_id"] == "extract"]
        assert extract["try_number"] == 1
        assert "iseller_accurate_settings.sales_sync_modee: unknown key" in airflow.task_log(
            DAG_ID, run_id, "extract"
        )
    finally:
        airflow.set_variable(SETTINGS_KEY, original)
    _wait(
        lambda: "settings Variable is invalid" not in (_details(airflow).get("doc_md") or ""),
        "the DAG re-parsed with the repaired Variable",
    )
    # The hourly sweep of shift_close mode; a manual run without conf does the same, now.
    sweep = airflow.trigger_dag(DAG_ID, conf={})["dag_run_id"]
    assert airflow.wait_for_run(DAG_ID, sweep, timeout=300) == "success"
    assert _saves_of(accurate_sandbox_url, number) == 1
    again = airflow.trigger_dag(DAG_ID, conf={})["dag_run_id"]
    assert airflow.wait_for_run(DAG_ID, again, timeout=300) == "success"
    assert _saves_of(accurate_sandbox_url, number) == 1  # not posted twice
