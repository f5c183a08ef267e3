"""Fixtures for the iSeller sandbox contract tests: real servers on real sockets.

Test modules load them with ``pytest_plugins = ["tests.sandbox.iseller_fixtures"]`` and import
names from here only under ``TYPE_CHECKING`` (helpers come through fixtures), so pytest can rewrite
the asserts of this module. Every fixture is prefixed ``iseller_`` so it cannot clash with the
Accurate sandbox's fixtures.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.iseller.variants import ZONED_METHODS
from tests.sandbox_process import decimal_json, run_sandbox, serve_in_thread, wait_until

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"


@dataclass
class IsellerServer:
    """A running ``python -m sandbox.iseller`` subprocess."""

    base_url: str
    seed: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client for this server."""
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def log(self) -> str:
        """What the server printed (for failure messages)."""
        return self.log_path.read_text(errors="replace")

    def api(self) -> IsellerApi:
        """An authenticated test client (close it after use)."""
        return IsellerApi(self)


@contextlib.contextmanager
def run_iseller_server(seed: int = 42, token_ttl: int | None = None, *extra: str) -> Iterator[IsellerServer]:
    """Start the sandbox on a free port, wait for ``/_sandbox/health``, stop it afterwards."""
    args = ["--seed", str(seed), "--log-level", "warning", *extra]
    if token_ttl is not None:
        args += ["--token-ttl", str(token_ttl)]
    with run_sandbox("sandbox.iseller", *args, drop_env_prefixes=("ISELLER_CLIENT_",)) as server:
        yield IsellerServer(server.base_url, seed, server.process, server.log_path)


def get_token(client: httpx.Client) -> dict[str, Any]:
    """A client-credentials token answer."""
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


class IsellerApi:
    """A tiny iSeller client for the tests: bearer token, form or JSON body, JSON answer."""

    def __init__(self, server: IsellerServer) -> None:
        self.server = server
        self.http = server.client()
        self.token = get_token(self.http)["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    def raw(self, path: str, **params: Any) -> httpx.Response:
        """POST a JSON body to an API method (``time_zone`` 0 where iSeller requires it, unless given)."""
        if path in ZONED_METHODS:
            params.setdefault("time_zone", 0)
        return self.http.post(path, json=params, headers=self.headers)

    def call(self, path: str, **params: Any) -> dict[str, Any]:
        """POST a JSON body; answer the decoded body (decimals exact), asserting HTTP 200."""
        response = self.raw(path, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = decimal_json(response)
        return body

    def all_pages(self, path: str, key: str, page_size: int = 200, **params: Any) -> list[dict[str, Any]]:
        """Every record of a list method, paging until ``has_next_item`` is false."""
        records: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.call(path, page=page, page_size=page_size, **params)
            assert body["status"] is True, body
            records.extend(body[key])
            if not body["has_next_item"]:
                return records
            page += 1
            assert page < 10_000

    def control(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """Call a control route, asserting the HTTP status."""
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, response.text
        return decimal_json(response)

    def deliveries(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """The sandbox's webhook delivery log."""
        params = {"order_id": order_id} if order_id else {}
        body = self.control("GET", "/_sandbox/webhook-deliveries", params=params)
        rows: list[dict[str, Any]] = body["deliveries"]
        return rows

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


@dataclass
class ReceivedRequest:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Receiver:
    """A small threading HTTP server that records requests and answers scripted responses."""

    base_url: str
    requests: list[ReceivedRequest] = field(default_factory=list)
    #: path -> responses (status, JSON body) answered in order; the last one repeats.
    script: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, path: str) -> tuple[int, Any]:
        """The next scripted answer for ``path`` (default 200 ``{"ok": true}``)."""
        with self.lock:
            queue = self.script.get(path)
            if not queue:
                return 200, {"ok": True}
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        """The requests received so far (to ``path`` only, if given)."""
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Wait until ``count`` requests (to ``path``) arrived; answer them."""
        return wait_until(lambda: (r := self.received(path)) and len(r) >= count and r, timeout)

    def reset(self) -> None:
        """Forget requests and script."""
        with self.lock:
            self.requests.clear()
            self.script.clear()


@contextlib.contextmanager
def run_receiver() -> Iterator[Receiver]:
    """Run a :class:`Receiver` on a free port in a thread."""
    receiver = Receiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(ReceivedRequest("POST", self.path, dict(self.headers.items()), body))
            status, answer = receiver.answer_for(self.path)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_in_thread(Handler) as base_url:
        receiver.base_url = base_url
        yield receiver


@pytest.fixture(scope="module")
def iseller_server() -> Iterator[IsellerServer]:
    """A sandbox with seed 42 and the default token lifetime, shared by a test module."""
    with run_iseller_server(seed=42) as server:
        yield server


@pytest.fixture(scope="module")
def iseller_api(iseller_server: IsellerServer) -> Iterator[IsellerApi]:
    """An authenticated test client for :func:`iseller_server`."""
    api = IsellerApi(iseller_server)
    yield api
    api.close()


@pytest.fixture
def iseller_fresh(iseller_api: IsellerApi) -> IsellerApi:
    """The module's client after resetting the sandbox to seed 42 and removing outgoing calls."""
    iseller_api.control("POST", "/_sandbox/reset", json={"seed": 42})
    iseller_api.control("POST", "/_sandbox/webhooks", json={"order_url": None})
    iseller_api.control("POST", "/_sandbox/shift-close-hook", json={"url": None})
    return iseller_api


@pytest.fixture(scope="module")
def iseller_receiver() -> Iterator[Receiver]:
    """A recording HTTP receiver (webhooks, Airflow's token and dagRuns endpoints)."""
    with run_receiver() as receiver:
        yield receiver


@pytest.fixture
def iseller_clean_receiver(iseller_receiver: Receiver) -> Receiver:
    """The module's receiver with no requests and no script."""
    iseller_receiver.reset()
    return iseller_receiver


@pytest.fixture(scope="session")
def iseller_start() -> Callable[..., contextlib.AbstractContextManager[IsellerServer]]:
    """``run_iseller_server(seed, token_ttl, *extra_args)``: start more sandboxes in a test."""
    return run_iseller_server


@pytest.fixture(scope="session")
def iseller_wait() -> Callable[..., Any]:
    """``wait_until(predicate, timeout=10)``: poll until the predicate answers something truthy."""
    return wait_until
