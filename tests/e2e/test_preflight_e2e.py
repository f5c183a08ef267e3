"""The go-live preflight on the running stack: the demo shop, three mistakes, the repairs.

The real scheduler runs ``iseller_accurate_preflight`` against the sandboxes three times: on the
demo shop as seeded (its own flaws are the baseline), with three deliberate mistakes (Toko Kemang's
warehouse misspelt, ``external_credit`` removed from Toko Dago's payment accounts, a product's SKU
changed in iSeller to one Accurate lacks), and after the repairs. The mistaken run lists exactly the
baseline plus those three, each with its fix, and its task log ends with them; repaired, the list is
the baseline again. The settings Variable and the product are restored whatever happens.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import httpx

from sandbox.demo_shop import build_demo_shop
from tests.e2e.airflow_api import AirflowAPI, iseller_sandbox_url

DAG_ID = "iseller_accurate_preflight"
SETTINGS = "iseller_accurate_settings"
SHOP = build_demo_shop(int(os.environ.get("DEMO_SEED", "42")))
KEMANG, DAGO = SHOP.outlets[0], SHOP.outlets[1]
RENAMED = SHOP.product_by_sku("BRG-0001")


def _run(airflow: AirflowAPI) -> tuple[str, str, list[dict[str, Any]]]:
    run_id = airflow.trigger_dag(DAG_ID)["dag_run_id"]
    state = airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    latest = airflow.call("GET", "/integrations/operator/api/preflight")["run"]
    assert latest["run_id"] == run_id, latest
    return run_id, state, latest["problems"]


def _keys(problems: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    # The webhook subscription may be renewed between two runs: it is not part of the comparison.
    return {(p["severity"], p["check"], p["subject"]) for p in problems if p["check"] != "webhook"}


def _rename(sku: str) -> None:
    url = f"{iseller_sandbox_url()}/_sandbox/products/{RENAMED.product_id}"
    httpx.patch(url, json={"sku": sku}, timeout=30).raise_for_status()


def test_three_mistakes_then_the_repairs(airflow: AirflowAPI) -> None:
    airflow.wait_for_dag(DAG_ID)
    airflow.unpause(DAG_ID)
    original = airflow.get_variable(SETTINGS, deserialize_json=True)
    _, state, baseline = _run(airflow)
    assert state == "failed"  # the demo's own SKU gap (BRG-0049)
    assert ("error", "sku_missing", 'SKU "BRG-0049"') in _keys(baseline)

    wrong = copy.deepcopy(original)
    wrong["outlets"][KEMANG.outlet_id]["warehouse"] = "Gudang Kemangg"
    del wrong["outlets"][DAGO.outlet_id]["payment_accounts"]["external_credit"]
    try:
        airflow.set_variable(SETTINGS, wrong)
        _rename("BRG-0001-X")
        run_id, state, mistaken = _run(airflow)
    finally:
        airflow.set_variable(SETTINGS, original)
        _rename(RENAMED.sku)
    assert state == "failed"
    assert _keys(mistaken) - _keys(baseline) == {
        ("error", "warehouse", f"outlet {KEMANG.name} ({KEMANG.outlet_id})"),
        ("error", "payment_type", f'outlet {DAGO.name} ({DAGO.outlet_id}) payment type "external_credit"'),
        ("error", "sku_missing", 'SKU "BRG-0001-X"'),
    }
    assert _keys(baseline) <= _keys(mistaken)
    log = airflow.task_log(DAG_ID, run_id, "preflight")
    tail = log[log.rindex("Preflight failed:") :]
    for problem in mistaken:
        assert (
            f"{problem['severity'].upper()} {problem['subject']}: {problem['message']} Fix: {problem['fix']}"
            in tail
        )
    assert '"Gudang Kemang" (the closest warehouse name in Accurate)' in tail

    _, _, repaired = _run(airflow)
    assert _keys(repaired) == _keys(baseline)
