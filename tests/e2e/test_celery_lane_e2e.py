"""The Celery lane of the local stack (``make test EXECUTOR=celery``): workers crash, nothing is lost.

Runs only when the stack runs the CeleryExecutor (scripts/env.sh with EXECUTOR=celery); skipped on
the default LocalExecutor lane. What it checks, through the real API server and the sandboxes' APIs:

- tasks are spread over both workers: the ``hostname`` of task instances (worker i records
  ``127.0.1.i``, include/iseller_accurate/hostname.py) names both;
- ``kill -9`` of the worker (the Celery worker and every process under it) that runs the ``load`` of
  a shift of a few thousand orders: Airflow fails the orphaned try after the heartbeat timeout and
  retries it; the run ends ``success`` and Accurate holds every invoice of the shift exactly once,
  counted by number through the Accurate sandbox's ``/_sandbox/records/sales-invoice``;
- a worker stopped (SIGSTOP) for a minute while it runs a ``load``, then continued (SIGCONT);
- Redis killed (``kill -9``) mid-run and started again by its supervisor.

Every test prints its counts (expected, in Accurate, duplicates) in the pytest output (``-s``) and
in test-artifacts/celery-lane-counts.json.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.demo_shop import build_demo_shop

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "iseller_sales_to_accurate"
SHOP = build_demo_shop(42)
#: Orders of the shift whose worker is killed ("a few thousand").
KILL_ORDERS = int(os.environ.get("CELERY_LANE_KILL_ORDERS") or 2000)
#: Orders of the shifts of the other two crash tests.
OTHER_ORDERS = int(os.environ.get("CELERY_LANE_ORDERS") or 600)
RUN_TIMEOUT = float(os.environ.get("CELERY_LANE_RUN_TIMEOUT") or 1500)
WORKER_HOST = re.compile(r"^127\.0\.1\.(\d+)$")

pytestmark = pytest.mark.skipif(
    os.environ.get("AIRFLOW__CORE__EXECUTOR", "") != "CeleryExecutor",
    reason="the stack does not run the CeleryExecutor (make test EXECUTOR=celery)",
)

COUNTS: dict[str, dict[str, Any]] = {}


def _run_dir() -> Path:
    return Path(os.environ.get("SYNC_RUN_DIR") or REPO / ".local" / "run")


def _child(service: str) -> int:
    pid = int((_run_dir() / f"{service}.child").read_text().strip())
    os.kill(pid, 0)
    return pid


def _tree(root: int) -> list[int]:
    """``root`` and every process under it (from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _signal_tree(root: int, sig: int) -> list[int]:
    pids = _tree(root)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def _register(index: int) -> Any:
    return SHOP.registers[index]


def _sandbox(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    answer = httpx.request(method, f"{url}{path}", json=body, timeout=300)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


def _shift_of_orders(
    iseller_sandbox_url: str, register: Any, count: int, seed: int
) -> tuple[list[str], dict]:
    """``count`` orders rung up on ``register``, its shift closed; the invoice numbers and the shift."""
    made = _sandbox(
        iseller_sandbox_url,
        "POST",
        "/_sandbox/orders/bulk",
        {"count": count, "register_id": register.register_id, "outlet_id": register.outlet_id, "seed": seed},
    )
    first = made["first_order_reference"].lstrip("#")
    last = made["last_order_reference"].lstrip("#")
    prefix, start = first.rsplit("-", 1)
    end = int(last.rsplit("-", 1)[1])
    numbers = [f"SI/{prefix}-{k}" for k in range(int(start), end + 1)]
    assert len(numbers) == count, (first, last, count)
    shift = _sandbox(iseller_sandbox_url, "POST", f"/_sandbox/registers/{register.register_id}/close-shift")
    return numbers, shift


def _start_run(airflow, shift: dict[str, Any]) -> str:
    hook = shift.get("hook")
    if hook and hook.get("success"):
        return str(hook["body"]["dag_run_id"])
    conf = {k: shift[k] for k in ("outlet_id", "register_id", "register_shift_id")}
    return str(airflow.trigger_dag(DAG_ID, conf=conf)["dag_run_id"])


def _task(airflow, run_id: str, task_id: str) -> dict[str, Any]:
    return next(ti for ti in airflow.task_instances(DAG_ID, run_id) if ti["task_id"] == task_id)


def _wait_running(airflow, run_id: str, task_id: str = "load", timeout: float = 600) -> dict[str, Any]:
    """The task instance once it runs on a worker (state running, hostname set)."""
    deadline = time.monotonic() + timeout
    while True:
        ti = _task(airflow, run_id, task_id)
        if ti["state"] == "running" and WORKER_HOST.match(ti.get("hostname") or ""):
            return ti
        assert ti["state"] not in ("success", "failed", "upstream_failed"), ti
        assert time.monotonic() < deadline, f"{task_id} never ran: {ti['state']}"
        time.sleep(0.5)


def _count(name: str, accurate_sandbox_url: str, numbers: list[str]) -> dict[str, Any]:
    """Expected, in Accurate, duplicates: by number through the Accurate sandbox's own API."""
    records = _sandbox(accurate_sandbox_url, "GET", "/_sandbox/records/sales-invoice")["d"]
    seen = Counter(str(r.get("number")) for r in records)
    counts = {
        "expected": len(numbers),
        "in_accurate": sum(1 for n in numbers if seen[n] >= 1),
        "duplicates": sum(seen[n] - 1 for n in numbers if seen[n] > 1),
        "missing": [n for n in numbers if seen[n] == 0][:10],
    }
    COUNTS[name] = counts
    print(f"\n[celery lane] {name}: {counts}")
    return counts


@pytest.fixture(scope="module", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    if COUNTS:
        out = REPO / "test-artifacts"
        out.mkdir(exist_ok=True)
        (out / "celery-lane-counts.json").write_text(json.dumps(COUNTS, indent=2) + "\n")


@pytest.fixture(scope="module")
def sales_dag(airflow):
    airflow.wait_for_dag(DAG_ID)
    airflow.unpause(DAG_ID)
    return DAG_ID


def test_workers_answer_and_tasks_spread_over_both(airflow, sales_dag, iseller_sandbox_url):
    workers = int(os.environ.get("WORKERS") or 2)
    assert workers >= 2, "the Celery lane's test needs at least 2 workers"
    seen: set[str] = set()
    runs: list[str] = []
    for attempt in range(3):
        for index in range(4):
            register = _register((index + attempt) % len(SHOP.registers))
            _numbers, shift = _shift_of_orders(
                iseller_sandbox_url, register, 3, seed=100 + 10 * attempt + index
            )
            runs.append(_start_run(airflow, shift))
        for run_id in runs[-4:]:
            assert airflow.wait_for_run(DAG_ID, run_id, timeout=600) == "success"
            seen.update(ti.get("hostname") or "" for ti in airflow.task_instances(DAG_ID, run_id))
        if {f"127.0.1.{i}" for i in (1, 2)} <= seen:
            break
    print(f"\n[celery lane] task hostnames over {len(runs)} runs: {sorted(seen)}")
    assert {"127.0.1.1", "127.0.1.2"} <= seen, seen


def test_worker_killed_during_load_nothing_lost_nothing_twice(
    airflow, sales_dag, accurate_sandbox_url, iseller_sandbox_url
):
    numbers, shift = _shift_of_orders(iseller_sandbox_url, _register(0), KILL_ORDERS, seed=7)
    run_id = _start_run(airflow, shift)
    ti = _wait_running(airflow, run_id)
    worker = int(WORKER_HOST.match(ti["hostname"]).group(1))  # type: ignore[union-attr]
    time.sleep(5)  # well into the load: some invoices posted, most not
    killed = _signal_tree(_child(f"celery-worker{worker}"), signal.SIGKILL)
    print(f"\n[celery lane] kill -9 of celery-worker{worker} during load (try {ti['try_number']}): {killed}")

    assert airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT) == "success"
    load = _task(airflow, run_id, "load")
    assert load["try_number"] > ti["try_number"], "the killed try was not retried by Airflow"
    counts = _count("worker kill -9 during load", accurate_sandbox_url, numbers)
    assert counts["in_accurate"] == counts["expected"] and counts["duplicates"] == 0, counts


def test_worker_stopped_for_a_minute_then_continued(
    airflow, sales_dag, accurate_sandbox_url, iseller_sandbox_url
):
    numbers, shift = _shift_of_orders(iseller_sandbox_url, _register(1), OTHER_ORDERS, seed=8)
    run_id = _start_run(airflow, shift)
    ti = _wait_running(airflow, run_id)
    worker = int(WORKER_HOST.match(ti["hostname"]).group(1))  # type: ignore[union-attr]
    stopped = _signal_tree(_child(f"celery-worker{worker}"), signal.SIGSTOP)
    try:
        time.sleep(60)
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT) == "success"
    counts = _count("worker stopped for 60 s", accurate_sandbox_url, numbers)
    assert counts["in_accurate"] == counts["expected"] and counts["duplicates"] == 0, counts


def test_redis_restarted_mid_run(airflow, sales_dag, accurate_sandbox_url, iseller_sandbox_url):
    numbers, shift = _shift_of_orders(iseller_sandbox_url, _register(2), OTHER_ORDERS, seed=9)
    run_id = _start_run(airflow, shift)
    deadline = time.monotonic() + 300
    while _task(airflow, run_id, "extract")["state"] not in ("queued", "running", "success"):
        assert time.monotonic() < deadline, "extract was never queued"
        time.sleep(0.2)
    # The run's first task is on its way through Redis, its load (and its messages) still to come.
    old = _child("redis")
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:  # its supervisor starts it again
        try:
            if _child("redis") != old:
                break
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "Redis was not started again"
        time.sleep(0.5)
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT) == "success"
    counts = _count("Redis kill -9 mid-run", accurate_sandbox_url, numbers)
    assert counts["in_accurate"] == counts["expected"] and counts["duplicates"] == 0, counts
