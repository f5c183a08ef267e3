"""The local stack after crashes (scripts/stack.sh, scripts/postgres.sh): a stack of its own.

These tests kill processes and restart PostgreSQL, so they never touch the stack `make up` / `make
test` run: the module starts a second, throwaway stack (scratch SYNC_LOCAL_DIR, free ports, a DAG
folder with one sleeping DAG) and stops it at the end. It takes a few minutes.

Covered (issue 9, defect 9):
- `stack.sh up` after a partial crash keeps the other users of the passwords file;
- after a PostgreSQL restart (stop + start, or kill -9 of the postmaster) the Airflow components
  come back by themselves;
- after kill -9 of the scheduler while a task runs, `stack.sh down` leaves nothing running: no
  orphaned LocalExecutor worker, task supervisor or task process (even one that ignores SIGTERM).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.airflow_api import AirflowAPI

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
STACK = str(REPO / "scripts/stack.sh")
POSTGRES = str(REPO / "scripts/postgres.sh")
DAG_ID = "infra_crash_sleeper"
SLEEPER_DAG = f'''
import signal
import time

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def sleeper():
    @task
    def nap():
        # A task that ignores SIGTERM, like a worker stuck in a call: only SIGKILL stops it.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(900)

    nap()


sleeper()
'''
# Variables of the caller's own stack that must not leak into the throwaway one.
LEAKING_PREFIXES = ("AIRFLOW", "SYNC_", "ACCURATE_", "ISELLER_", "SPT_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree = children_map()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Stack:
    local: Path
    env: dict[str, str]
    dags: Path
    seen: set[int] = field(default_factory=set)

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
            )
        return result

    def pid_of(self, service: str) -> int:
        return int((self.local / "run" / f"{service}.pid").read_text().strip())

    def process(self, service: str, words: tuple[str, ...]) -> int:
        """The service's own process (its command line has ``words``), under whatever supervises it."""
        root = self.pid_of(service)
        for pid in [root, *descendants(root)]:
            line = cmdline(pid)
            if all(word in line for word in words) and not line.startswith(("bash ", "/bin/bash ")):
                return pid
        raise AssertionError(f"no {' '.join(words)} process under {service} (pid {root})")

    def tree(self, service: str) -> list[int]:
        root = self.pid_of(service)
        return [root, *descendants(root)]

    def api(self) -> AirflowAPI:
        # This stack's own login (the caller's AIRFLOW_* variables are not passed to it).
        return AirflowAPI(
            base_url=f"http://127.0.0.1:{self.env['AIRFLOW_PORT']}",
            username=self.env.get("AIRFLOW_ADMIN_USER", "admin"),
            password=self.env.get("AIRFLOW_ADMIN_PASSWORD", "admin"),
        )

    def healthy(self) -> bool:
        probe = subprocess.run(
            [sys.executable, str(REPO / "scripts/health.py"), "airflow", "--components"],
            env=self.env,
            capture_output=True,
        )
        status = self.run(STACK, "status", check=False)
        return probe.returncode == 0 and status.returncode == 0

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                status = self.run(STACK, "status", check=False)
                raise AssertionError(
                    f"the stack did not come back healthy within {timeout}s by itself:\n{status.stdout}"
                    f"{status.stderr}"
                )
            time.sleep(3)


def marked_processes(local: Path) -> list[int]:
    """Processes carrying this stack's environment marker."""
    marker = f"SYNC_STACK_ID={local}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if not sys.platform.startswith("linux"):
        pytest.skip("the crash tests read /proc")
    venv = os.environ.get("VENV") or sys.prefix
    if not (Path(venv) / "bin/airflow").exists():
        pytest.skip(f"no airflow in {venv}")
    # Not pytest's basetemp: other pytest sessions on the machine rotate it away, logs included.
    base = Path(tempfile.mkdtemp(prefix="sync-crash-stack-"))
    local = base / "local"
    dags = base / "dags"
    dags.mkdir()
    (dags / "infra_crash_sleeper.py").write_text(SLEEPER_DAG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKING_PREFIXES)}
    env.update(
        VENV=venv,
        SYNC_LOCAL_DIR=str(local),
        AIRFLOW_PORT=str(free_port()),
        ACCURATE_SANDBOX_PORT=str(free_port()),
        ISELLER_SANDBOX_PORT=str(free_port()),
        SYNC_PG_PORT=str(free_port()),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        STACK_STOP_TIMEOUT="10",
        STACK_START_TIMEOUT="300",
    )
    st = Stack(local=local, env=env, dags=dags)
    try:
        st.run(STACK, "up")
        yield st
    finally:
        st.run(STACK, "down", check=False, timeout=300)
        for pid in [*st.seen, *marked_processes(local)]:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        pg = local / "pg"
        if pg.is_symlink():
            shutil.rmtree(pg.resolve(), ignore_errors=True)
        if not os.environ.get("SYNC_KEEP_CRASH_STACK"):  # set it to keep the logs
            shutil.rmtree(base, ignore_errors=True)


def start_a_task(stack: Stack, attempts: int = 3) -> int:
    """Trigger the sleeping DAG; return the pid of its task process once that runs the task.

    On a loaded machine the API server can answer a task's first call slower than the task's HTTP
    client waits; the task then fails before it starts. That is no subject of these tests: trigger
    another run (up to ``attempts``).
    """
    api = stack.api()
    try:
        api.wait_for_dag(DAG_ID, timeout=180)
        api.unpause(DAG_ID)
        for _attempt in range(attempts):
            api.trigger_dag(DAG_ID)
            # The task process titles itself "airflow worker -- <task instance id>" once it runs
            # the task (its LocalExecutor worker: "airflow worker -- LocalExecutor: ...").
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                for pid in descendants(stack.process("scheduler", ("airflow", "scheduler"))):
                    line = cmdline(pid)
                    if line.startswith("airflow worker -- ") and "LocalExecutor" not in line:
                        time.sleep(3)  # it sets its SIGTERM handler first thing
                        return pid
                time.sleep(1)
    finally:
        api.close()
    raise AssertionError(f"the task did not start in {attempts} runs")


def test_down_leaves_nothing_running_after_the_scheduler_was_killed(stack: Stack) -> None:
    task = start_a_task(stack)
    scheduler = stack.process("scheduler", ("airflow", "scheduler"))
    workers = descendants(scheduler)
    assert any("nap" in cmdline(pid) or "task" in cmdline(pid) for pid in workers) or len(workers) >= 2, [
        cmdline(pid) for pid in workers
    ]
    everything = {
        pid
        for svc in (
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
            "accurate-sandbox",
            "iseller-sandbox",
        )
        for pid in stack.tree(svc)
    }
    stack.seen |= everything | set(workers) | {task}
    os.kill(scheduler, signal.SIGKILL)
    time.sleep(2)
    stack.run(STACK, "down", timeout=300)
    survivors = {pid: cmdline(pid) for pid in stack.seen if alive(pid)}
    assert not survivors, f"`stack.sh down` left these running: {survivors}"
    marked = {pid: cmdline(pid) for pid in marked_processes(stack.local)}
    assert not marked, f"processes of this stack still running after down: {marked}"
    assert stack.run(STACK, "status", check=False).returncode != 0


def test_up_after_a_partial_crash_keeps_the_other_users(stack: Stack) -> None:
    if stack.run(STACK, "status", check=False).returncode != 0:
        stack.run(STACK, "up")  # the test before stopped it
    passwords = stack.local / "airflow/simple_auth_manager_passwords.json"
    users = json.loads(passwords.read_text())
    users["ops"] = "ops-password"
    passwords.write_text(json.dumps(users))
    # Partial crash: the scheduler and everything it started die at once; the rest keeps running.
    for pid in stack.tree("scheduler"):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    # Where PID 1 does not reap orphans the killed scheduler stays a zombie: it is not running.
    status = stack.run(STACK, "status", check=False)
    assert status.returncode != 0, f"status calls a killed scheduler running:\n{status.stdout}"
    stack.run(STACK, "up")
    after = json.loads(passwords.read_text())
    assert after.get("ops") == "ops-password", f"`stack.sh up` dropped the other users: {sorted(after)}"
    admin = stack.env.get("AIRFLOW_ADMIN_USER", "admin")
    assert after.get(admin) == stack.env.get("AIRFLOW_ADMIN_PASSWORD", "admin")
    assert passwords.stat().st_mode & 0o077 == 0
    stack.wait_healthy(timeout=120)


@pytest.mark.parametrize("how", ["stop-start", "kill-9-postmaster"])
def test_components_come_back_after_a_database_restart(stack: Stack, how: str) -> None:
    if stack.run(STACK, "status", check=False).returncode != 0:
        stack.run(STACK, "up")  # the test before stopped it
    scheduler_before = stack.process("scheduler", ("airflow", "scheduler"))
    if how == "stop-start":
        stack.run(POSTGRES, "stop")
        # Long enough for the scheduler, dag-processor and triggerer to notice and exit.
        deadline = time.monotonic() + 60
        while alive(scheduler_before) and time.monotonic() < deadline:
            time.sleep(1)
        stack.run(POSTGRES, "start")
    else:
        data = (stack.local / "pg").resolve() / "data"
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while alive(scheduler_before) and time.monotonic() < deadline:
            time.sleep(1)
    # No `stack.sh up`: the stack must heal by itself.
    stack.wait_healthy(timeout=240)
    status = stack.run(STACK, "status").stdout
    # What healed is visible: a component or the server counts a restart.
    assert re.search(r"\b[1-9][0-9]* restarts?\b", status), status
