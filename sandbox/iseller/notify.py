"""Outgoing calls of the iSeller sandbox: order webhooks and the shift-close hook.

Order webhooks follow the public notes (``iseller-api.md``): one URL per notification type (the
sandbox has the Order one), headers ``Timestamp`` (ISO-8601 with fraction and ``Z``) and
``Signature`` = uppercase hex SHA-256 of ``api_key + raw body + timestamp``, and a small payload of
ids and statuses. Delivery is asynchronous with a couple of retries; every attempt is logged for
``GET /_sandbox/webhook-deliveries``. The sandbox notifies on order creation, refund and void.

The shift-close hook is the sandbox's own (iSeller has no known shift-closed event): it plays a
POS-side script that calls Airflow's REST API
(``POST /api/v2/dags/iseller_sales_to_accurate/dagRuns``) when a register closes, optionally getting
a bearer token from Airflow 3's ``/auth/token`` first.
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

    def public(self) -> dict[str, Any]:
        """The configuration without the password."""
        return {
            "url": self.url,
            "token_url": self.token_url,
            "username": self.username,
            "headers": sorted(self.headers),
        }


class Notifier:
    """Sends order webhooks in the background and calls the shift-close hook."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.webhook = WebhookConfig()
        self.hook: ShiftCloseHookConfig | None = None
        self.deliveries: list[dict[str, Any]] = []
        self.hook_calls: list[dict[str, Any]] = []
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def clear_logs(self) -> None:
        """Forget delivery and hook logs (configuration stays)."""
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
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for attempt in range(1, len(RETRY_DELAYS) + 2):
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
                    response = await client.post(
                        url,
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            "Timestamp": timestamp,
                            "Signature": signature,
                        },
                    )
                    record["status_code"] = response.status_code
                    record["success"] = response.is_success
                except httpx.HTTPError as error:
                    record["error"] = f"{type(error).__name__}: {error}"
                self.deliveries.append(record)
                if record["success"] or attempt > len(RETRY_DELAYS):
                    return
                await asyncio.sleep(RETRY_DELAYS[attempt - 1])

    async def stop(self) -> None:
        """Cancel the pending deliveries and retries (on shutdown, so a stop never hangs)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ----------------------------------------------------------------- shift-close hook
    async def shift_closed(self, conf: dict[str, Any]) -> dict[str, Any] | None:
        """Announce a closed shift to the configured hook; returns the recorded outcome (or None)."""
        hook = self.hook
        if hook is None:
            return None
        outcome: dict[str, Any] = {
            "url": hook.url,
            "called_at": datetime.now(UTC).replace(microsecond=0),
            "request": {"logical_date": None, "conf": conf},
            "token_status_code": None,
            "status_code": None,
            "body": None,
            "error": None,
            "success": False,
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
                        self.hook_calls.append(outcome)
                        return outcome
                    headers["Authorization"] = f"Bearer {token['access_token']}"
                response = await client.post(
                    hook.url, content=dumps(outcome["request"]).encode(), headers=headers
                )
                outcome["status_code"] = response.status_code
                outcome["body"] = _response_body(response)
                outcome["success"] = response.is_success
        except httpx.HTTPError as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
        self.hook_calls.append(outcome)
        return outcome
