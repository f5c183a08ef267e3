"""scripts/supervise.sh and `stack.sh down`'s sweep, without Airflow (seconds, no real stack).

The full-stack versions (a real scheduler killed while a task runs, a real PostgreSQL restart) are in
tests/infra/test_stack_crashes.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUPERVISE = str(REPO / "scripts/supervise.sh")
STACK = str(REPO / "scripts/stack.sh")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    return run


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_supervisor_restarts_a_crashing_service_with_backoff_and_logs_it(
    run_dir: Path, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "svc.log"
    runs = tmp_path / "runs"
    env = {**os.environ, "SYNC_RUN_DIR": str(run_dir), "SUPERVISE_MAX_DELAY": "2"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", SUPERVISE, "svc", "bash", "-c", f"echo run >> {runs}; exit 3"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started.append(proc)
    restarts_file = run_dir / "svc.restarts"

    def restarted_twice() -> bool:
        words = restarts_file.read_text().split() if restarts_file.exists() else []
        return bool(words) and int(words[0]) >= 2 and "restart #2" in log.read_text()

    wait_for(restarted_twice, what="two restarts")
    restarts = restarts_file.read_text().split()
    assert restarts[2:] == ["exit", "code", "3"], restarts
    text = log.read_text()
    assert "exited unexpectedly (exit code 3)" in text and "restart #1 in 1s" in text
    assert "restart #2 in 2s" in text  # the pause doubles
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_supervisor_stops_on_term_and_stops_its_service(
    run_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    env = {**os.environ, "SYNC_RUN_DIR": str(run_dir)}
    proc = subprocess.Popen(["bash", SUPERVISE, "svc", "sleep", "300"], env=env)
    started.append(proc)
    wait_for(lambda: (run_dir / "svc.child").exists())
    child = int((run_dir / "svc.child").read_text())
    assert alive(child)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    wait_for(lambda: not alive(child), timeout=5)
    assert not (run_dir / "svc.restarts").exists()  # a requested stop is no restart


def test_supervisor_does_not_restart_after_the_stop_file(
    run_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    env = {**os.environ, "SYNC_RUN_DIR": str(run_dir)}
    proc = subprocess.Popen(["bash", SUPERVISE, "svc", "sleep", "300"], env=env)
    started.append(proc)
    wait_for(lambda: (run_dir / "svc.child").exists())
    child = int((run_dir / "svc.child").read_text())
    (run_dir / "svc.stop").touch()
    os.kill(child, signal.SIGKILL)
    assert proc.wait(timeout=10) == 0
    assert not (run_dir / "svc.restarts").exists()


def orphan(marker: str, tmp_path: Path, name: str) -> int:
    """A process that ignores SIGTERM, re-parented to init (its parent exited), carrying ``marker``."""
    pid_file = tmp_path / f"{name}.pid"
    script = f"(trap '' TERM; exec sleep 300) & echo $! > {pid_file}"
    subprocess.run(
        ["bash", "-c", script], env={**os.environ, "SYNC_STACK_ID": marker}, check=True, timeout=10
    )
    pid = int(pid_file.read_text())
    assert alive(pid)
    return pid


def test_down_stops_orphans_of_this_stack_only(tmp_path: Path) -> None:
    local = tmp_path / "local"
    ours = orphan(str(local), tmp_path, "ours")
    other_stack = orphan(str(tmp_path / "other/.local"), tmp_path, "other")
    try:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SYNC_", "AIRFLOW", "ACCURATE_", "ISELLER_"))
        }
        env.update(SYNC_LOCAL_DIR=str(local), STACK_STOP_TIMEOUT="2", SYNC_PG_PORT="1")
        result = subprocess.run(["bash", STACK, "down"], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        wait_for(lambda: not alive(ours), timeout=5, what="down to stop an orphan of this stack")
        assert alive(other_stack), "down stopped a process of another stack"
    finally:
        for pid in (ours, other_stack):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"metadatabase": {"status": "healthy"}, "scheduler": {"status": "unhealthy"}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_supervisor_restarts_a_component_airflow_calls_unhealthy(
    run_dir: Path, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """A scheduler whose process runs but no longer heartbeats (it hangs) is stopped and restarted."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = tmp_path / "svc.log"
    env = {
        **os.environ,
        "SYNC_RUN_DIR": str(run_dir),
        "AIRFLOW_PORT": str(server.server_address[1]),
        "SUPERVISE_LIVENESS_GRACE": "0",
        "SUPERVISE_LIVENESS_INTERVAL": "1",
        "SUPERVISE_LIVENESS_FAILURES": "2",
    }
    try:
        with log.open("wb") as out:
            # The "component" ignores SIGTERM, like a scheduler waiting for its tasks: SIGKILL follows.
            proc = subprocess.Popen(
                [
                    "bash",
                    SUPERVISE,
                    "--liveness",
                    "scheduler",
                    "svc",
                    "bash",
                    "-c",
                    "trap '' TERM; exec sleep 300",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        wait_for(lambda: (run_dir / "svc.child").exists(), what="the first start")
        first = int((run_dir / "svc.child").read_text())
        wait_for(lambda: (run_dir / "svc.restarts").exists(), timeout=60, what="a restart")
        assert "unhealthy" in (run_dir / "svc.restarts").read_text()
        assert not alive(first)
        assert "Airflow reported scheduler unhealthy 2 times in a row" in log.read_text()
    finally:
        server.shutdown()
        proc.kill()
        child = run_dir / "svc.child"
        if child.exists() and alive(int(child.read_text() or 0)):
            os.kill(int(child.read_text()), signal.SIGKILL)
