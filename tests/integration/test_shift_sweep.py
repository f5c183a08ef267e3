"""The shift sweep: a closed shift whose POS trigger never arrived is still synced, exactly once.

Real pieces throughout: the DAG file loaded by a real DagBag, its ``extract`` and ``load`` task
callables, both sandboxes on real sockets (in-process servers), the ledger on a real PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest

from include.iseller_accurate.clients.accurate import clear_discovery_cache
from include.iseller_accurate.clients.iseller import clear_token_cache
from sandbox.demo_shop import build_demo_shop
from tests.integration.test_webhook_receiver import ServerThread, connection_json

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "iseller_sales_to_accurate"
SHOP = build_demo_shop(42)


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch, pg_dsn: str) -> Iterator[tuple[str, str]]:
    from sandbox.accurate.app import create_app as accurate_app
    from sandbox.iseller.app import create_app as iseller_app

    with ServerThread(accurate_app(seed=42)) as accurate, ServerThread(iseller_app(seed=42)) as iseller:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ACCURATE_API",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": accurate.url,
                    "password": "sandbox-api-token",
                    "extra": {"signature_secret": "sandbox-signature-secret"},
                }
            ),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_ISELLER_API",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": iseller.url,
                    "login": "sandbox-client",
                    "password": "sandbox-secret",
                }
            ),
        )
        monkeypatch.setenv("AIRFLOW_CONN_SYNC_DB", connection_json(pg_dsn))
        monkeypatch.setenv("AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS", json.dumps(SHOP.settings()))
        clear_discovery_cache()
        clear_token_cache()
        yield accurate.url, iseller.url


@pytest.fixture
def dag(sandboxes: tuple[str, str]) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    assert "0 * * * *" in repr(dag.timetable)  # shift_close mode: the hourly sweep
    return dag


def run_dag(dag: Any, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run of the DAG: its real extract then load callables, as the worker would call them."""
    conf = conf or {}
    now = datetime.now(UTC) + timedelta(seconds=2)
    run_id = f"{'manual' if conf else 'scheduled'}__{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {}
    for task_id in ("extract", "load"):
        context = {
            "dag": dag,
            "dag_run": SimpleNamespace(conf=conf, run_after=now),
            "params": {**{k: None for k in dag.params.keys()}, **conf},
            "logical_date": now,
            "ti": SimpleNamespace(dag_id=DAG_ID, run_id=run_id, task_id=task_id, map_index=-1, try_number=1),
        }
        args = [results.get("extract")] if task_id == "load" else []
        results[task_id] = dag.get_task(task_id).python_callable(*args, **context)
    return results


def sell_and_close(
    iseller_url: str, register_index: int, skus: list[str]
) -> tuple[dict[str, Any], list[str]]:
    register = SHOP.registers[register_index]
    numbers = []
    for sku in skus:
        product = SHOP.product_by_sku(sku)
        body = {
            "outlet_id": register.outlet_id,
            "register_id": register.register_id,
            "lines": [{"sku": sku, "quantity": 1, "price": str(product.price)}],
            "payments": [{"gateway": "cash", "amount": str(product.price)}],
        }
        order = httpx.post(f"{iseller_url}/_sandbox/orders", json=body, timeout=30)
        assert order.status_code == 200, order.text
        numbers.append("SI/" + order.json()["order_reference"].lstrip("#"))
    shift = httpx.post(f"{iseller_url}/_sandbox/registers/{register.register_id}/close-shift", timeout=30)
    assert shift.status_code == 200, shift.text
    return shift.json(), numbers


def saves_of(accurate_url: str, number: str) -> int:
    log = httpx.get(f"{accurate_url}/_sandbox/requests", params={"module": "sales-invoice"}, timeout=30)
    return sum(
        1
        for entry in log.json()["requests"]
        for saved in entry.get("saved") or []
        if saved.get("number") == number
    )


def baseline(pg_dsn: str, dag: Any) -> None:
    """Whatever the seed holds counts as synced before the test: a first sweep reads it (seed 42 has
    no shift closed in the last day, so it reads nothing), then the bookmark is set to now."""
    run_dag(dag)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE sync.cursors SET position = now() WHERE stream = 'sales_shift_sweep'")


def test_shift_whose_trigger_never_arrived_is_synced_by_the_sweep_once(
    dag: Any, sandboxes: tuple[str, str], pg_dsn: str
) -> None:
    accurate_url, iseller_url = sandboxes
    baseline(pg_dsn, dag)
    # The DAG was unavailable: the shift closes, no trigger ever arrives.
    shift, numbers = sell_and_close(iseller_url, 0, ["BRG-0001", "BRG-0002"])
    swept = run_dag(dag)
    assert swept["extract"]["shifts_read"] == 1 and swept["extract"]["shift_ids"] == [
        shift["register_shift_id"]
    ]
    assert swept["load"]["posted"] >= 2
    assert [saves_of(accurate_url, n) for n in numbers] == [1, 1]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT read_by, orders FROM sync.register_shifts_read WHERE register_shift_id = %s",
            (shift["register_shift_id"],),
        ).fetchone()
    assert row == ("sweep", 2)

    # The next sweep finds nothing new; the late trigger re-reads the shift and posts nothing twice.
    again = run_dag(dag)
    assert again["extract"]["shifts_read"] == 0 and again["load"]["posted"] == 0
    late = run_dag(dag, {k: shift[k] for k in ("outlet_id", "register_id", "register_shift_id")})
    assert late["extract"]["shifts_read"] == 1 and late["load"]["posted"] == 0
    assert [saves_of(accurate_url, n) for n in numbers] == [1, 1]


def test_shift_synced_by_its_trigger_is_not_read_by_the_sweep(
    dag: Any, sandboxes: tuple[str, str], pg_dsn: str
) -> None:
    accurate_url, iseller_url = sandboxes
    baseline(pg_dsn, dag)
    shift, numbers = sell_and_close(iseller_url, 1, ["BRG-0003"])
    triggered = run_dag(dag, {k: shift[k] for k in ("outlet_id", "register_id", "register_shift_id")})
    assert triggered["load"]["posted"] >= 1 and saves_of(accurate_url, numbers[0]) == 1
    # An open shift's orders are not swept (shift_close mode posts closed shifts only).
    register = SHOP.registers[2]
    product = SHOP.product_by_sku("BRG-0004")
    httpx.post(
        f"{iseller_url}/_sandbox/orders",
        timeout=30,
        json={
            "outlet_id": register.outlet_id,
            "register_id": register.register_id,
            "lines": [{"sku": "BRG-0004", "quantity": 1, "price": str(product.price)}],
            "payments": [{"gateway": "cash", "amount": str(product.price)}],
        },
    ).raise_for_status()
    swept = run_dag(dag)
    assert swept["extract"]["shifts_read"] == 0 and swept["extract"]["records"] == 0
    assert saves_of(accurate_url, numbers[0]) == 1


def test_unknown_shift_fails_at_once_naming_the_key(dag: Any, sandboxes: tuple[str, str]) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    register = SHOP.registers[0]
    conf = {"outlet_id": register.outlet_id, "register_id": register.register_id, "register_shift_id": "nope"}
    with pytest.raises(AirflowFailException) as info:
        run_dag(dag, conf)
    assert "conf.register_shift_id: shift nope of register" in str(info.value)
    unknown_register = {**conf, "register_id": "no-such-register"}
    with pytest.raises(AirflowFailException) as info:
        run_dag(dag, unknown_register)
    assert "conf.register_id" in str(info.value)
