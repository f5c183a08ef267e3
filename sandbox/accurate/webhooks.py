"""Webhook subscription, deliveries and history.

Public facts (reference doc): one target URL per app; a subscription stays active for at most
7 days, then stops silently; ``webhook-renew.do`` extends it and answers the new expiry;
``webhook-history.do?from=&to=`` (window of at most 24 h, last month only) lists past deliveries;
a delivery is a POST whose JSON body is an array of events ``{databaseId, type, timestamp, uuid,
data: [{<kind>Id, <kind>No, action}]}``; no signature header; deliveries may be lost, duplicated
and reordered.

Assumptions (the public record is silent):
- events of saves made within ``webhook_batch_window_ms`` (100 ms) travel in one delivery; each
  saved record is its own event with one ``data`` entry;
- a delivery failing (connection error, timeout or non-2xx) is retried up to
  ``webhook_max_attempts`` (5) times with exponential backoff (``webhook_backoff_seconds`` x 2^n,
  real time), keeping the same body and uuids; ``duplicate_webhook_rate`` re-sends a delivered body;
- the event ``timestamp`` is ``dd/MM/yyyy HH:mm:ss`` Jakarta time (``webhook_timestamp_format:
  millis`` switches to epoch milliseconds), sandbox clock;
- events raised while no subscription is active are not generated at all (so not in the history;
  ``GET /_sandbox/webhook-deliveries`` lists them under ``skipped``);
- ``webhook-renew.do`` answers ``{"s": true, "d": {"expiredDate": "dd/MM/yyyy HH:mm:ss"}}``;
- history is per event: ``{uuid, type, timestamp, data, sentDate, status, statusCode, attempts}``
  with ``status`` SUCCESS or FAILED (PENDING only before the first attempt ends); the window filters
  on the time the event was generated; "last month" means 30 days.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx

from sandbox.accurate.clock import SandboxClock, format_timestamp, from_unix
from sandbox.accurate.jsonio import encode
from sandbox.accurate.modules import MODULES
from sandbox.accurate.state import Faults, SandboxConfig

MAX_EVENTS_PER_DELIVERY = 100


class WebhookDispatcher:
    """Turns saves into events and delivers them asynchronously to the registered URL."""

    def __init__(
        self, clock: SandboxClock, config: SandboxConfig, faults: Faults, database_id: int, rng: random.Random
    ) -> None:
        self.clock = clock
        self.config = config
        self.faults = faults
        self.database_id = database_id
        self.rng = rng
        self.url: str | None = None
        self.expires_at: float | None = None
        self.pending: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # ---------------------------------------------------------------- subscription

    def register(self, url: str | None) -> dict[str, Any]:
        """Set (or clear, with ``None``) the target; the subscription lasts ``subscription_days``."""
        self.url = url or None
        self.expires_at = self.clock.time() + self.config.subscription_days * 86400 if self.url else None
        return self.subscription()

    def renew(self) -> float | None:
        """Extend the subscription to sandbox-now + ``subscription_days``; ``None`` without a target."""
        if not self.url:
            return None
        self.expires_at = self.clock.time() + self.config.subscription_days * 86400
        return self.expires_at

    def active(self) -> bool:
        """Whether a target is registered and its subscription has not expired (sandbox time)."""
        return bool(self.url) and self.expires_at is not None and self.clock.time() < self.expires_at

    def subscription(self) -> dict[str, Any]:
        """The subscription as the control routes show it."""
        expired = None
        if self.expires_at is not None:
            expired = format_timestamp(from_unix(self.expires_at))
        return {
            "url": self.url,
            "active": self.active(),
            "expiredDate": expired,
            "expires_at": self.expires_at,
        }

    # ---------------------------------------------------------------- events

    def on_change(self, module: str, record: dict[str, Any], action: str) -> None:
        """Database listener: raise one event for a saved/deleted record of a subscribed type."""
        spec = MODULES[module]
        if spec.webhook_type is None or spec.webhook_type not in self.config.webhook_types:
            return
        now = self.clock.time()
        timestamp: Any = (
            int(now * 1000)
            if self.config.webhook_timestamp_format == "millis"
            else format_timestamp(from_unix(now))
        )
        event = {
            "databaseId": self.database_id,
            "type": spec.webhook_type,
            "timestamp": timestamp,
            "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "data": [
                {
                    f"{spec.webhook_kind}Id": record["id"],
                    f"{spec.webhook_kind}No": record[spec.key],
                    "action": action,
                }
            ],
        }
        if not self.active():
            reason = "no webhook target registered" if not self.url else "subscription expired"
            self.skipped.append({"event": event, "reason": reason, "generated_at": now})
            return
        self.pending.append({"event": event, "generated_at": now})
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.config.webhook_batch_window_ms / 1000, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        loop = asyncio.get_running_loop()
        while self.pending:
            batch, self.pending = (
                self.pending[:MAX_EVENTS_PER_DELIVERY],
                self.pending[MAX_EVENTS_PER_DELIVERY:],
            )
            delivery: dict[str, Any] = {
                "id": len(self.deliveries) + 1,
                "url": self.url,
                "events": [entry["event"] for entry in batch],
                "generated_at": batch[0]["generated_at"],
                "status": "PENDING",
                "statusCode": None,
                "sentDate": None,
                "attempts": [],
            }
            self.deliveries.append(delivery)
            task = loop.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, delivery: dict[str, Any], body: bytes, duplicate: bool) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.webhook_timeout_seconds)
        attempt: dict[str, Any] = {
            "time": format_timestamp(self.clock.now()),
            "statusCode": None,
            "error": None,
            "duplicate": duplicate,
        }
        try:
            response = await self._client.post(
                delivery["url"],
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": "Accurate-Sandbox-Webhook/1.0"},
            )
            attempt["statusCode"] = response.status_code
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as error:
            attempt["error"] = f"{type(error).__name__}: {error}"
            ok = False
        delivery["attempts"].append(attempt)
        if not duplicate:
            delivery["statusCode"] = attempt["statusCode"]
            delivery["sentDate"] = attempt["time"]
        return ok

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        body = encode(delivery["events"])
        attempts = max(1, self.config.webhook_max_attempts)
        for number in range(attempts):
            if await self._post(delivery, body, duplicate=False):
                delivery["status"] = "SUCCESS"
                if (
                    self.faults.duplicate_webhook_rate
                    and self.rng.random() < self.faults.duplicate_webhook_rate
                ):
                    await self._post(delivery, body, duplicate=True)
                return
            delivery["status"] = "FAILED"
            if number + 1 < attempts:
                await asyncio.sleep(self.config.webhook_backoff_seconds * (2**number))

    # ---------------------------------------------------------------- history

    def history(self, start: float, end: float) -> list[dict[str, Any]]:
        """Every event generated in ``[start, end]`` (sandbox Unix time) with its delivery status."""
        rows = []
        for delivery in self.deliveries:
            if not start <= delivery["generated_at"] <= end:
                continue
            for event in delivery["events"]:
                rows.append(
                    {
                        "uuid": event["uuid"],
                        "type": event["type"],
                        "timestamp": event["timestamp"],
                        "data": event["data"],
                        "sentDate": delivery["sentDate"],
                        "status": delivery["status"],
                        "statusCode": delivery["statusCode"],
                        "attempts": len([a for a in delivery["attempts"] if not a["duplicate"]]),
                    }
                )
        return rows

    async def close(self) -> None:
        """Cancel pending work and close the HTTP client (reset/shutdown)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
