"""Start a sandbox (``python -m sandbox.<name>``) as a real server process on a free port.

Shared by the sandbox contract tests, the client tests against the sandboxes, the integration tests
and the benchmarks: one way to start, wait for ``/_sandbox/health``, and stop (TERM, then KILL).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from include.iseller_accurate import jsonutil
from tests.pg import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SandboxProcess:
    """A running sandbox server."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_sandbox(
    module: str,
    *args: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    drop_env_prefixes: Sequence[str] = (),
    timeout: float = 30.0,
) -> Iterator[SandboxProcess]:
    """Run ``python -m <module> --host 127.0.0.1 --port <port> <args>`` until the block ends.

    ``drop_env_prefixes`` removes inherited variables (e.g. ``ACCURATE_``) so the server uses its own
    defaults unless ``env`` sets them.
    """
    port = port or free_port()
    command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), *args]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_env_prefixes))}
    full_env.update({"PYTHONPATH": str(REPO_ROOT), **(env or {})})
    label = module.rsplit(".", 1)[-1]
    log_file = tempfile.NamedTemporaryFile(prefix=f"{label}-sandbox-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = SandboxProcess(f"http://127.0.0.1:{port}", process, Path(log_file.name))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited early:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not come up within {timeout:.0f} s:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log_file.close()
        os.unlink(log_file.name)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it answers something truthy (and return that), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def decimal_json(response: httpx.Response) -> Any:
    """A response body with every JSON number that has a fraction read as ``Decimal``."""
    return jsonutil.loads(response.text)


@contextlib.contextmanager
def serve_in_thread(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
