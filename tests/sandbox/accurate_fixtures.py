"""Fixtures for the Accurate sandbox contract tests: real servers on real sockets.

Test modules load them with ``pytest_plugins = ["tests.sandbox.accurate_fixtures"]`` and import
names from here only under ``TYPE_CHECKING``. Every fixture is prefixed ``accurate_``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.accurate.signing import make_headers
from tests.pg import free_port
from tests.sandbox_process import decimal_json, run_sandbox, serve_in_thread, wait_until

TOKEN = "sandbox-api-token"
SECRET = "sandbox-signature-secret"
#: Seeded names the tests rely on (from sandbox/demo_shop.py).
JAKARTA_BRANCH = "Cabang Jakarta"
KEMANG = "Gudang Kemang"
DAGO = "Gudang Dago"
CENTRAL = "Gudang Pusat"
CENTRAL_BRANCH = "Kantor Pusat"


@dataclass
class AccurateServer:
    """A running ``python -m sandbox.accurate`` subprocess."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_accurate_server(
    *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[AccurateServer]:
    """Start the sandbox on a free port (or ``ACCURATE_SANDBOX_PORT`` from ``env``), wait, stop it."""
    if env and "ACCURATE_SANDBOX_PORT" in env:
        port = int(env["ACCURATE_SANDBOX_PORT"])
    with run_sandbox(
        "sandbox.accurate", *args, port=port, env=env, drop_env_prefixes=("ACCURATE_",)
    ) as server:
        yield AccurateServer(server.base_url, server.process, server.log_path)


class AccurateApi:
    """A signed test client for the sandbox, plus shortcuts to its control routes."""

    def __init__(
        self, base_url: str, token: str = TOKEN, secret: str = SECRET, timeout: float = 15.0
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.secret = secret
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        #: Seconds the sandbox clock was moved; signatures follow it.
        self.clock_offset = 0.0

    def headers(
        self, timestamp_format: str = "local", encoding: str = "base64", **extra: str
    ) -> dict[str, str]:
        """Signed headers for now (sandbox time)."""
        headers = make_headers(
            self.token, self.secret, timestamp_format, encoding=encoding, now=time.time() + self.clock_offset
        )
        headers.update(extra)
        return headers

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A signed request to any path."""
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def data(self, module: str, action: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
        """A signed data call ``/accurate/api/<module>/<action>.do``."""
        return self.request(method, f"/accurate/api/{module}/{action}.do", **kwargs)

    def ok(self, response: httpx.Response) -> Any:
        """Assert HTTP 200 and answer the body (decimals exact)."""
        assert response.status_code == 200, response.text
        return decimal_json(response)

    def save(self, module: str, record: dict[str, Any], **headers: str) -> Any:
        """``save.do`` with a JSON body."""
        return self.ok(self.data(module, "save", "POST", json=_jsonable(record), headers=headers))

    def save_form(self, module: str, fields: dict[str, Any]) -> Any:
        """``save.do`` with a form body (indexed names)."""
        return self.ok(self.data(module, "save", "POST", data={k: str(v) for k, v in fields.items()}))

    def bulk(self, module: str, records: list[dict[str, Any]]) -> Any:
        """``bulk-save.do`` with ``{"data": [...]}``."""
        return self.ok(self.data(module, "bulk-save", "POST", json={"data": _jsonable(records)}))

    def detail(self, module: str, **params: Any) -> Any:
        """``detail.do``."""
        return self.ok(self.data(module, "detail", params=params))

    def list(self, module: str, params: Any = None) -> Any:
        """``list.do`` (``params`` a dict or a list of pairs)."""
        return self.ok(self.data(module, "list", params=params))

    def delete(self, module: str, **params: Any) -> Any:
        """``delete.do`` (POST form)."""
        return self.ok(self.data(module, "delete", "POST", data={k: str(v) for k, v in params.items()}))

    def stock(self, item_no: str, warehouse: str) -> Decimal:
        """Quantity through ``item/get-stock.do``."""
        body = self.ok(self.data("item", "get-stock", params={"no": item_no, "warehouseName": warehouse}))
        assert body["s"] is True, body
        return Decimal(body["d"]["availableStock"])

    def control(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """Call ``/_sandbox/<path>`` unsigned, asserting the status."""
        response = self.http.request(method, f"/_sandbox/{path}", **kwargs)
        assert response.status_code == expect, response.text
        return decimal_json(response)

    def faults(self, **settings: Any) -> Any:
        """``POST /_sandbox/faults``."""
        return self.control("POST", "faults", json=settings)

    def config(self, **settings: Any) -> Any:
        """``POST /_sandbox/config``."""
        return self.control("POST", "config", json=settings)

    def advance_clock(self, seconds: float) -> Any:
        """Move the sandbox clock and keep signing in step with it."""
        answer = self.control("POST", "clock", json={"advance_seconds": seconds})
        self.clock_offset += seconds
        return answer

    def reset(self) -> None:
        """Rebuild the sandbox; lift the rate limits so ordinary tests run at full speed."""
        self.control("POST", "reset", json={"seed": 42})
        self.clock_offset = 0.0
        self.faults(rate_limit_per_s=None, max_in_flight=None)

    @staticmethod
    def invoice(
        number: str = "",
        *,
        customer: str = "UMUM",
        branch: str = JAKARTA_BRANCH,
        lines: builtins.list[tuple[str, Any]] | None = None,
        warehouse: str = KEMANG,
        **extra: Any,
    ) -> dict[str, Any]:
        """A sales-invoice record; ``lines`` holds ``(itemNo, quantity)``."""
        record: dict[str, Any] = {
            "customerNo": customer,
            "branchName": branch,
            "transDate": "20/11/2026",
            "detailItem": [
                {"itemNo": no, "quantity": qty, "warehouseName": warehouse}
                for no, qty in (lines or [("BRG-0001", 1)])
            ],
        }
        if number:
            record["number"] = number
        record.update(extra)
        return record

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class Delivery:
    """One webhook POST the receiver got."""

    body: bytes
    headers: dict[str, str]
    status: int

    def events(self) -> Any:
        """The JSON array of events."""
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A threaded HTTP receiver; answers ``fail_first`` requests with HTTP 500, then 200."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    fail_first: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Delivery]:
        """Deliveries so far."""
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Wait until ``count`` deliveries arrived."""
        return wait_until(lambda: len(r := self.received()) >= count and r, timeout)

    def clear(self, fail_first: int = 0) -> None:
        """Forget deliveries; fail the next ``fail_first`` ones."""
        with self.lock:
            self.deliveries.clear()
            self.fail_first = fail_first


@contextlib.contextmanager
def run_webhook_receiver() -> Iterator[WebhookReceiver]:
    """Run a :class:`WebhookReceiver` on a free port in a thread."""
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                status = 500 if receiver.fail_first > 0 else 200
                receiver.fail_first = max(0, receiver.fail_first - 1)
                receiver.deliveries.append(Delivery(body, dict(self.headers.items()), status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    with serve_in_thread(Handler) as base_url:
        receiver.url = f"{base_url}/integrations/accurate/webhook?token=t"
        yield receiver


@pytest.fixture(scope="session")
def accurate_server() -> Iterator[AccurateServer]:
    """One sandbox (seed 42, default token and secret) shared by the whole session."""
    with run_accurate_server("--seed", "42") as server:
        yield server


@pytest.fixture
def accurate(accurate_server: AccurateServer) -> Iterator[AccurateApi]:
    """A signed client on a freshly reset sandbox, with the rate limits lifted."""
    api = AccurateApi(accurate_server.base_url)
    api.reset()
    yield api
    api.close()


@pytest.fixture(scope="session")
def accurate_receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver shared by the session (cleared by :func:`accurate_clean_receiver`)."""
    with run_webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def accurate_clean_receiver(accurate_receiver: WebhookReceiver) -> WebhookReceiver:
    """The receiver with no deliveries and no scripted failures."""
    accurate_receiver.clear()
    return accurate_receiver


@pytest.fixture(scope="session")
def accurate_free_port() -> Callable[[], int]:
    """``free_port()``: a TCP port nobody listens on."""
    return free_port


@pytest.fixture(scope="session")
def accurate_wait() -> Callable[..., Any]:
    """``wait_until(predicate, timeout=10)``."""
    return wait_until


@pytest.fixture(scope="session")
def accurate_start() -> Callable[..., contextlib.AbstractContextManager[AccurateServer]]:
    """``run_accurate_server(*args, env=...)``: start another sandbox in a test."""
    return run_accurate_server
