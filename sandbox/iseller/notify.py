"""Outgoing calls of the iSeller sandbox: order webhooks and the shift-close hook.

Order webhooks follow the public notes (``iseller-api.md``): one URL per notification type (the
sandbox has the Order one), headers ``Timestamp`` (ISO-8601 with fraction and ``Z``) and
``Signature`` = uppercase hex SHA-256 of ``api_key + raw body + timestamp``, and a small payload of
ids and statuses. Delivery is asynchronous with a couple of retries; every attempt is logged for
``GET /_sandbox/webhook-deliveries``. The sandbox notifies on order creation, refund and void.

The shift-close hook is the sandbox's own (iSeller has no known shift-closed event): it plays a
POS-side script that calls Airflow's REST API
(``POST /api/v2/dags/iseller_sales_to_accurate/dagRuns``) when a register closes, optionally getting
a bearer token from Airflow 3's ``/auth/token`` first. Like a real POS integration it retries what
may pass later (connection errors, timeouts, 404 while the DAG is not loaded, 408, 425, 429, 5xx)
in the background with growing delays (``HOOK_RETRY_DELAYS``, about two and a half minutes in all),
and never retries a refusal (400 invalid conf, 401/403, 409, 422). The close-shift answer carries
the first attempt; ``GET /_sandbox/shift-close-hook`` lists every attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from .jsonutil import dumps

#: Seconds to wait before each retry of a failed webhook delivery.
RETRY_DELAYS = (0.5, 1.5)
#: Seconds before each retry of the shift-close hook (bounded: 7 attempts over about 2.5 minutes).
HOOK_RETRY_DELAYS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
#: Order webhooks in flight at once. iSeller's own sending rate is not published (an assumption):
#: without a bound, ringing up thousands of orders at once opened thousands of connections to the
#: receiver and starved the sandbox's own API (its next request timed out after 120 s).
MAX_DELIVERIES_IN_FLIGHT = 16
#: Answers of Airflow that may pass later: the DAG is not loaded yet (404), overload, server errors.
RETRIABLE_STATUS = frozenset({404, 408, 425, 429}) | frozenset(range(500, 600))


def retriable_status(status_code: int) -> bool:
    """Whether an answer of the token or dagRuns endpoint is worth another attempt."""
    return status_code in RETRIABLE_STATUS


def webhook_timestamp() -> str:
    """The ``Timestamp`` header: ISO-8601 UTC with milliseconds and ``Z``."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def webhook_signature(api_key: str, body: bytes, timestamp: str) -> str:
    """Uppercase hex SHA-256 of ``api_key + raw body + timestamp``."""
    return hashlib.sha256(api_key.encode("utf-8") + body + timestamp.encode("utf-8")).hexdigest().upper()


def _response_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


@dataclass
class WebhookConfig:
    """Where order notifications go and the key that signs them."""

    order_url: str | None = None
    api_key: str = ""


@dataclass
class ShiftCloseHookConfig:
    """Where a closed shift is announced (Airflow's dagRuns endpoint) and how to authenticate."""

    url: str
    token_url: str | None = None
    username: str | None = None
    password: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds before each retry; ``[]`` turns retries off.
    retry_delays: tuple[float, ...] = HOOK_RETRY_DELAYS

    def public(self) -> dict[str, Any]:
        """The configuration without the password."""
        return {
            "url": self.url,
            "token_url": self.token_url,
            "username": self.username,
            "headers": sorted(self.headers),
            "retry_delays": list(self.retry_delays),
        }


class Notifier:
    """Sends order webhooks in the background and calls the shift-close hook."""

    def __init__(self, timeout: float = 10.0, in_flight: int = MAX_DELIVERIES_IN_FLIGHT) -> None:
        self.webhook = WebhookConfig()
        self._slots = asyncio.Semaphore(in_flight)
        self.hook: ShiftCloseHookConfig | None = None
        self.deliveries: list[dict[str, Any]] = []
        self.hook_calls: list[dict[str, Any]] = []
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._hook_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._hook_tasks: set[asyncio.Task[None]] = set()
        #: One HTTP client for the webhooks, per event loop (its pool is reused by every delivery).
        self._client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def clear_logs(self) -> None:
        """Forget delivery and hook logs, and stop pending hook retries (configuration stays)."""
        self.cancel_hook_retries()
        self.deliveries.clear()
        self.hook_calls.clear()

    # ----------------------------------------------------------------- order webhooks
    def notify_order(self, event: str, payload: dict[str, Any]) -> None:
        """Schedule an order notification (no-op without a configured URL)."""
        if not self.webhook.order_url:
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(next(self._ids), event, self.webhook.order_url, self.webhook.api_key, payload)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, delivery_id: int, event: str, url: str, api_key: str, payload: dict[str, Any]
    ) -> None:
        body = dumps(payload).encode("utf-8")
        for attempt in range(1, len(RETRY_DELAYS) + 2):
            async with self._slots:  # the Timestamp is taken once a slot is free: never stale on arrival
                record = await self._attempt(delivery_id, attempt, event, url, api_key, payload, body)
            self.deliveries.append(record)
            if record["success"] or attempt > len(RETRY_DELAYS):
                return
            await asyncio.sleep(RETRY_DELAYS[attempt - 1])

    async def _attempt(
        self,
        delivery_id: int,
        attempt: int,
        event: str,
        url: str,
        api_key: str,
        payload: dict[str, Any],
        body: bytes,
    ) -> dict[str, Any]:
        timestamp = webhook_timestamp()
        signature = webhook_signature(api_key, body, timestamp)
        record: dict[str, Any] = {
            "delivery_id": delivery_id,
            "attempt": attempt,
            "event": event,
            "order_id": payload.get("order_id"),
            "url": url,
            "timestamp": timestamp,
            "signature": signature,
            "payload": payload,
            "status_code": None,
            "error": None,
            "success": False,
        }
        try:
            response = await self._webhook_client().post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "Timestamp": timestamp, "Signature": signature},
            )
            record["status_code"] = response.status_code
            record["success"] = response.is_success
        except httpx.HTTPError as error:
            record["error"] = f"{type(error).__name__}: {error}"
        return record

    def cancel_hook_retries(self) -> None:
        """Stop retrying earlier shift closes (the hook was reconfigured or the sandbox reset)."""
        for task in list(self._hook_tasks):
            task.cancel()

    def _webhook_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop or self._client[1].is_closed:
            self._client = (loop, httpx.AsyncClient(timeout=self.timeout))
        return self._client[1]

    async def stop(self) -> None:
        """Cancel the pending deliveries and retries (on shutdown, so a stop never hangs)."""
        tasks = list(self._tasks) + list(self._hook_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None and self._client[0] is asyncio.get_running_loop():
            await self._client[1].aclose()
        self._client = None

    # ----------------------------------------------------------------- shift-close hook
    async def shift_closed(self, conf: dict[str, Any]) -> dict[str, Any] | None:
        """Announce a closed shift to the configured hook; returns the first attempt's outcome (or None).

        A retriable failure is retried in the background (``will_retry`` is then true); each attempt
        is recorded with the same ``call_id`` and its ``attempt`` number.
        """
        hook = self.hook
        if hook is None:
            return None
        call_id = next(self._hook_ids)
        outcome = await self._call_hook(hook, conf, call_id, 1)
        if outcome["will_retry"]:
            task = asyncio.get_running_loop().create_task(self._retry_hook(hook, conf, call_id))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)
        return outcome

    async def _retry_hook(self, hook: ShiftCloseHookConfig, conf: dict[str, Any], call_id: int) -> None:
        for attempt, delay in enumerate(hook.retry_delays, start=2):
            await asyncio.sleep(delay)
            if self.hook is not hook:  # reconfigured or removed meanwhile: the old target is gone
                return
            outcome = await self._call_hook(hook, conf, call_id, attempt)
            if not outcome["will_retry"]:
                return

    async def _call_hook(
        self, hook: ShiftCloseHookConfig, conf: dict[str, Any], call_id: int, attempt: int
    ) -> dict[str, Any]:
        outcome: dict[str, Any] = {
            "call_id": call_id,
            "attempt": attempt,
            "url": hook.url,
            "called_at": datetime.now(UTC).replace(microsecond=0),
            "request": {"logical_date": None, "conf": conf},
            "token_status_code": None,
            "status_code": None,
            "body": None,
            "error": None,
            "success": False,
            "retriable": False,
            "will_retry": False,
        }
        headers = {"Content-Type": "application/json", **hook.headers}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                if hook.token_url:
                    token_response = await client.post(
                        hook.token_url, json={"username": hook.username, "password": hook.password}
                    )
                    outcome["token_status_code"] = token_response.status_code
                    token = _response_body(token_response)
                    if (
                        not token_response.is_success
                        or not isinstance(token, dict)
                        or not token.get("access_token")
                    ):
                        outcome["error"] = "could not get a token from token_url"
                        outcome["body"] = token
                        outcome["retriable"] = retriable_status(token_response.status_code)
                        return self._record(hook, outcome)
                    headers["Authorization"] = f"Bearer {token['access_token']}"
                response = await client.post(
                    hook.url, content=dumps(outcome["request"]).encode(), headers=headers
                )
                outcome["status_code"] = response.status_code
                outcome["body"] = _response_body(response)
                outcome["success"] = response.is_success
                outcome["retriable"] = not response.is_success and retriable_status(response.status_code)
        except httpx.HTTPError as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
            outcome["retriable"] = True  # connection refused, timeout: Airflow may be restarting
        return self._record(hook, outcome)

    def _record(self, hook: ShiftCloseHookConfig, outcome: dict[str, Any]) -> dict[str, Any]:
        outcome["will_retry"] = outcome["retriable"] and outcome["attempt"] <= len(hook.retry_delays)
        self.hook_calls.append(outcome)
        return outcome
