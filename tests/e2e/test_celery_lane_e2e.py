"""The Celery lane of the local stack (``make test EXECUTOR=celery``): workers crash, nothing is lost.

Runs only when the stack runs the CeleryExecutor (scripts/env.sh with EXECUTOR=celery); skipped on
the default LocalExecutor lane. What it checks, through the real API server and the sandboxes' APIs:

- tasks are spread over both workers: the ``hostname`` of task instances (worker i records
  ``127.0.1.i``, include/iseller_accurate/hostname.py) names both;
- ``kill -9`` of the worker (the Celery worker and every process under it) that runs the ``load`` of
  a shift of a few thousand orders: Airflow fails the orphaned try after the heartbeat timeout and
  retries it; the run ends ``success`` and Accurate holds every invoice of the shift exactly once,
  counted by number through the Accurate sandbox's ``/_sandbox/records/sales-invoice``;
- the worker that runs a ``load`` stopped (``scripts/stack.sh stop-service``: TERM, Celery's warm
  shutdown, then KILL of what is left) for a minute, then started again (``start-service``): the run
  ends ``success``, every invoice once in Accurate, the worker answers ``celery inspect ping``;
- a worker paused (SIGSTOP) for a minute while it runs a ``load``, then continued (SIGCONT);
- Redis killed (``kill -9``) mid-run and started again by its supervisor;
- task logs of both workers read through the REST API, while the task runs (served by a log server
  at the worker's hostname) and once it is done, and each worker's own log server on its own port.

Every test prints its counts (expected, in Accurate, duplicates) in the pytest output (``-s``) and
in test-artifacts/celery-lane-counts.json.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox.demo_shop import build_demo_shop

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "iseller_sales_to_accurate"
SHOP = build_demo_shop(42)
#: Orders of the shift whose worker is killed ("a few thousand").
KILL_ORDERS = int(os.environ.get("CELERY_LANE_KILL_ORDERS") or 2000)
#: Orders of the shift whose worker is stopped and started again (its load must still run at the stop).
STOP_ORDERS = int(os.environ.get("CELERY_LANE_STOP_ORDERS") or 1000)
#: Orders of the shifts of the other crash tests.
OTHER_ORDERS = int(os.environ.get("CELERY_LANE_ORDERS") or 600)
RUN_TIMEOUT = float(os.environ.get("CELERY_LANE_RUN_TIMEOUT") or 1500)
#: Orders of each shift of the log test (its loads must run long enough to be read while running).
LOG_ORDERS = int(os.environ.get("CELERY_LANE_LOG_ORDERS") or 300)
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


def _stack(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``bash scripts/stack.sh ARGS`` with this session's environment (the stack's own scripts/env.sh)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts/stack.sh"), *args], capture_output=True, text=True, timeout=timeout
    )
    print(f"\n[celery lane] stack.sh {' '.join(args)} -> {done.returncode}\n{done.stderr[-1500:]}")
    return done


def _celery_ping() -> str:
    """What ``celery inspect ping`` (Airflow's Celery app, as ``stack.sh`` asks it) answers."""
    venv = os.environ.get("VENV")
    celery = Path(venv) / "bin/celery" if venv else Path(sys.executable).parent / "celery"
    app = "airflow.providers.celery.executors.celery_executor.app"
    done = subprocess.run(
        [str(celery), "--app", app, "inspect", "ping", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


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
    """Issue 10: the worker running ``load`` is stopped for a minute and started again; nothing lost.

    ``stack.sh stop-service`` stops it as ``make down`` would: TERM to the worker and every process
    under it (Celery's warm shutdown: no new task; the task process gets TERM too, which a Python task
    ignores (``on_kill``), so the load goes on), then KILL of whatever still runs after
    STACK_STOP_TIMEOUT (30 s). A load that outlives that is killed mid-way, stops heartbeating, and
    after the heartbeat timeout the scheduler fails that try and Airflow retries it on a worker that
    runs (the other one, or this one once started again); the retry posts only what Accurate lacks.
    A load that ends within the warm shutdown succeeds in its first try. Either way must hold: the run
    ends ``success``, ``load`` ends ``success``, every invoice once in Accurate, and the restarted
    worker answers ``celery inspect ping`` under its own name.
    """
    numbers, shift = _shift_of_orders(iseller_sandbox_url, _register(1), STOP_ORDERS, seed=8)
    run_id = _start_run(airflow, shift)
    ti = _wait_running(airflow, run_id)
    worker = int(WORKER_HOST.match(ti["hostname"]).group(1))  # type: ignore[union-attr]
    service = f"celery-worker{worker}"
    time.sleep(1)  # into the load: some invoices posted, most not
    assert _task(airflow, run_id, "load")["state"] == "running", "the load ended before the stop"
    started_at = time.monotonic()
    stopped = _stack("stop-service", service)
    stop_seconds = round(time.monotonic() - started_at, 1)
    assert stopped.returncode == 0, stopped.stderr
    assert f"{service}: stopped" in _stack("status").stdout
    assert f"worker{worker}@" not in _celery_ping()
    at_stop = _task(airflow, run_id, "load")
    try:
        time.sleep(60)
        after_minute = _task(airflow, run_id, "load")
    finally:
        restarted = _stack("start-service", service)  # never leave the lane one worker short
    assert restarted.returncode == 0, restarted.stderr
    assert f"{service}: running" in _stack("status").stdout
    ping = _celery_ping()
    assert f"worker{worker}@" in ping, ping

    assert airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT) == "success"
    load = _task(airflow, run_id, "load")
    assert load["state"] == "success", load
    tries = airflow.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load/tries")[
        "task_instances"
    ]
    states = {t["try_number"]: t["state"] for t in tries}
    killed = "still running after" in stopped.stderr  # stack.sh's KILL after STACK_STOP_TIMEOUT
    print(
        f"\n[celery lane] {service} stopped in {stop_seconds}s during load try {ti['try_number']} "
        f"({'killed after STACK_STOP_TIMEOUT' if killed else 'warm shutdown'}); "
        f"load right after: {at_stop['state']} (try {at_stop['try_number']}), a minute later: "
        f"{after_minute['state']} (try {after_minute['try_number']}); tries: {states}"
    )
    if killed:
        # The load outlived the warm shutdown and was killed: Airflow failed that try after the
        # heartbeat timeout and retried it; the last try did the rest.
        assert states.get(ti["try_number"]) != "success", states
        assert load["try_number"] > ti["try_number"], states
    else:
        # The worker left on its own: Celery's warm shutdown let the running load finish first.
        assert states == {ti["try_number"]: "success"}, states
        assert at_stop["state"] == "success", at_stop
    counts = _count("worker stopped for 60 s, then started again", accurate_sandbox_url, numbers)
    counts.update(
        stop_seconds=stop_seconds,
        killed_after_stop_timeout=killed,
        stopped_try=ti["try_number"],
        final_try=load["try_number"],
        tries={str(k): v for k, v in sorted(states.items())},
    )
    assert counts["in_accurate"] == counts["expected"] and counts["duplicates"] == 0, counts


def test_worker_paused_for_a_minute_then_continued(
    airflow, sales_dag, accurate_sandbox_url, iseller_sandbox_url
):
    """A frozen worker (SIGSTOP, no exit): its task's heartbeats stop for 60 s, less than the heartbeat
    timeout, so the try must not be failed and run a second time beside the one that goes on."""
    numbers, shift = _shift_of_orders(iseller_sandbox_url, _register(1), OTHER_ORDERS, seed=10)
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
    counts = _count("worker paused (SIGSTOP) for 60 s", accurate_sandbox_url, numbers)
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


def _own_log_server(worker: int, run_id: str, task_id: str, try_number: int) -> httpx.Response:
    """The task's log file from worker ``worker``'s own log server (127.0.1.i, WORKER_LOG_PORT_BASE + i - 1).

    Asked the way the API server asks a log server (airflow.utils.log.file_task_handler): a token
    signed with ``[api] secret_key``, audience ``task-instance-logs``, naming the file.
    """
    from airflow.api_fastapi.auth.tokens import JWTGenerator, get_signing_key

    base = int(os.environ.get("WORKER_LOG_PORT_BASE") or 8793)
    rel_path = f"dag_id={DAG_ID}/run_id={run_id}/task_id={task_id}/attempt={try_number}.log"
    token = JWTGenerator(
        secret_key=get_signing_key("api", "secret_key"),
        algorithm="HS512",
        private_key=None,  # type: ignore[arg-type]
        issuer=None,
        valid_for=30,
        audience="task-instance-logs",
    ).generate({"filename": rel_path})
    url = f"http://127.0.1.{worker}:{base + worker - 1}/log/{quote(rel_path)}"
    return httpx.get(url, headers={"Authorization": token}, timeout=30)


def test_task_logs_served_for_both_workers(airflow, sales_dag, iseller_sandbox_url):
    """The log of a task of worker 1 and of a task of worker 2, through the REST API and from each worker.

    What Airflow 3.3 reads (FileTaskHandler._read) and so what this can check:

    - a RUNNING task: the API server reads the local log folder AND asks the log server at
      ``http://<task hostname>:<[logging] worker_log_server_port of the API server>/log/...``; it
      lists that URL under "Log message source details" only when the log server answered with a
      non-empty log. The API server has ONE port for every worker (WORKER_LOG_PORT_BASE), so a task
      of worker 2 is asked at 127.0.1.2:<base>, which is worker 1's log server (it listens on every
      address of this machine and serves the same shared log folder), not worker 2's own port.
    - a FINISHED task: read from the local log folder only (the API server and the workers share
      $AIRFLOW_HOME/logs on this machine); no log server is asked.
    - so each worker's own log server (worker i on WORKER_LOG_PORT_BASE + i - 1) is checked directly,
      with the token the API server would send, for that worker's finished ``load``.
    """
    api_port = int(os.environ.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT") or 8793)
    running: dict[int, str] = {}  # worker -> its running load's log, as the REST API serves it
    finished: dict[int, tuple[str, int]] = {}  # worker -> (run id, try) of a load it finished
    for attempt in range(4):
        runs = []
        for index in range(2):
            register = _register((2 * attempt + index) % len(SHOP.registers))
            _numbers, shift = _shift_of_orders(
                iseller_sandbox_url, register, LOG_ORDERS, seed=300 + 10 * attempt + index
            )
            runs.append(_start_run(airflow, shift))
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            done = 0
            for run_id in runs:
                load = _task(airflow, run_id, "load")
                match = WORKER_HOST.match(load.get("hostname") or "")
                worker = int(match.group(1)) if match else 0
                if load["state"] == "running" and worker and worker not in running:
                    text = airflow.task_log(DAG_ID, run_id, "load", load["try_number"])
                    # The load's first line of its own (the Accurate client), and the log server asked.
                    assert "Could not read served logs" not in text, text[:2000]
                    if "is served by http" in text and f"http://127.0.1.{worker}:{api_port}/log/" in text:
                        running[worker] = text
                elif load["state"] == "success" and worker:
                    finished.setdefault(worker, (run_id, load["try_number"]))
                if load["state"] in ("success", "failed", "upstream_failed"):
                    done += 1
            if done == len(runs):
                break
            assert time.monotonic() < deadline, f"runs {runs} did not end"
            time.sleep(0.3)
        for run_id in runs:
            assert airflow.wait_for_run(DAG_ID, run_id, timeout=300) == "success", run_id
        if {1, 2} <= running.keys() and {1, 2} <= finished.keys():
            break
    print(
        f"\n[celery lane] running loads read through the REST API on workers {sorted(running)}, "
        f"finished loads on workers {sorted(finished)}"
    )
    for worker, text in sorted(running.items()):
        print(f"[celery lane] worker {worker}'s running load, log sources:\n{text[:600]}")
    assert {1, 2} <= finished.keys(), f"no load finished on each worker: {finished}"
    for worker in (1, 2):
        run_id, try_number = finished[worker]
        # Finished: read from the shared local log folder (no log server asked).
        text = airflow.task_log(DAG_ID, run_id, "load", try_number)
        assert "documents synced (" in text, text[-2000:]
        # Worker i's own log server, on its own port, serves the same file.
        answer = _own_log_server(worker, run_id, "load", try_number)
        assert answer.status_code == 200, (worker, answer.status_code, answer.text[:300])
        assert "documents synced (" in answer.text, answer.text[-2000:]
    assert {1, 2} <= running.keys(), (
        f"a running load's log was read through a log server only for workers {sorted(running)}"
    )
