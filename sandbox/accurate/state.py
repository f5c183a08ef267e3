"""Sandbox switches: configuration, fault injection, the rate limiter and the request log.

Public facts (reference doc): 8 requests per second and 8 in flight per the API-token documentation.

Assumptions (the public record is silent):
- the limit is global to the sandbox (one database, one token); beyond it the answer is HTTP 429
  with an integer ``Retry-After`` (seconds, at least 1) and an ``{"s": false, "d": [...]}`` body;
- the token bucket holds ``rate_limit_per_s`` tokens and refills at that rate; 0/null = unlimited;
- only ``/api/*`` and ``/accurate/*`` calls count; ``/_sandbox/*`` never does;
- injected faults: ``error`` answers 500 (or ``error_status`` 502/503, then with an HTML body like a
  gateway) without committing; ``timeout`` sleeps ``timeout_seconds`` then answers 504 without
  committing; ``commit_then_timeout`` commits, sleeps, then drops the connection without an answer;
  fault sleeps do not hold an in-flight slot; ``latency_ms`` adds a delay that does.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from sandbox.accurate.modules import DEFAULT_WEBHOOK_TYPES

FAULT_KINDS = ("error", "timeout", "commit_then_timeout")


class ConfigError(ValueError):
    """An invalid control-route value (answered with HTTP 400)."""


@dataclass
class SandboxConfig:
    """Behaviour switches set by ``POST /_sandbox/config``."""

    refuse_negative_stock: bool = False
    #: Answer data calls with 308 to ``moved_prefix`` + the same path.
    moved: bool = False
    moved_prefix: str = "/moved-db"
    #: ``processed``: the outer ``s`` of bulk-save is true whenever the batch was processed;
    #: ``all``: true only when every record succeeded.
    bulk_outer_s: str = "processed"
    #: ``sandbox``: signatures are checked against the sandbox clock; ``real``: the real clock.
    signature_clock: str = "sandbox"
    token_revoked: bool = False
    webhook_types: list[str] = field(default_factory=lambda: list(DEFAULT_WEBHOOK_TYPES))
    webhook_max_attempts: int = 5
    webhook_backoff_seconds: float = 1.0
    webhook_batch_window_ms: int = 100
    webhook_timeout_seconds: float = 10.0
    #: ``string`` (dd/MM/yyyy HH:mm:ss, Jakarta) or ``millis`` (epoch milliseconds).
    webhook_timestamp_format: str = "string"
    subscription_days: float = 7.0
    #: Key of the database object in the ``api-token.do`` answer: ``data usaha`` (the public guide),
    #: ``database`` (what most public clients read: ``d.database.host``) or ``host`` (a top-level
    #: ``d.host`` next to ``d.database``-less data).
    discovery_key: str = "data usaha"
    #: Largest ``sp.pageSize`` served; above it ``page_size_over_max`` decides: ``cap`` (serve the
    #: maximum and say so in ``sp.pageSize``) or ``error`` (``s: false``, nothing served).
    max_page_size: int = 100
    page_size_over_max: str = "cap"
    #: With ``moved``: the origin (``http://host:port``) the database moved to, served by another
    #: server; the 308 then points there and discovery names it. Empty: ``moved_prefix`` on this server.
    moved_to: str = ""
    #: Serve the OAuth session flow (``db-list.do``, ``open-db.do``, ``db-refresh-session.do`` and data
    #: calls with ``X-Session-ID``) besides the API-token method.
    oauth: bool = True
    #: Seconds (sandbox clock) a database session opened by ``open-db.do`` stays usable.
    session_ttl_seconds: float = 3600.0
    #: The origin of the account host whose sessions this server (a data host) accepts too: a data
    #: call whose ``X-Session-ID`` this server did not open is checked there (``db-check-session.do``
    #: with the call's access token). Empty: only sessions opened here. For a ``moved_to`` target.
    session_authority: str = ""
    #: Documents (transactions) carry ``createdDate`` in ``save.do``, ``detail.do`` and ``list.do``
    #: answers. Off (a public integrator reports real list records have none): the field is absent from
    #: every answer, as if the database had no such field: a filter on it matches no document (``EMPTY``
    #: matches all), a sort on it keeps the server's order.
    created_date: bool = True

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known keys from ``changes`` all or nothing (invalid ones raise :class:`ConfigError`)."""
        trial = replace(self)
        _update(trial, changes)
        trial.validate()
        self.__dict__.update(trial.__dict__)

    def validate(self) -> None:
        """Raise :class:`ConfigError` when a switch has an unsupported value."""
        if self.bulk_outer_s not in ("processed", "all"):
            raise ConfigError("bulk_outer_s must be 'processed' or 'all'")
        if self.signature_clock not in ("sandbox", "real"):
            raise ConfigError("signature_clock must be 'sandbox' or 'real'")
        if self.webhook_timestamp_format not in ("string", "millis"):
            raise ConfigError("webhook_timestamp_format must be 'string' or 'millis'")
        if self.discovery_key not in ("data usaha", "database", "host"):
            raise ConfigError("discovery_key must be 'data usaha', 'database' or 'host'")
        if self.max_page_size < 1:
            raise ConfigError("max_page_size must be at least 1")
        if self.page_size_over_max not in ("cap", "error"):
            raise ConfigError("page_size_over_max must be 'cap' or 'error'")
        for name in ("moved_to", "session_authority"):
            value = getattr(self, name)
            if value and not (value.startswith(("http://", "https://")) and value.count("/") == 2):
                raise ConfigError(f"{name} must be an origin such as 'http://127.0.0.1:9081' (or empty)")
        if self.session_ttl_seconds <= 0:
            raise ConfigError("session_ttl_seconds must be positive")
        if not self.moved_prefix.startswith("/") or self.moved_prefix.count("/") != 1:
            raise ConfigError("moved_prefix must be one path segment such as '/moved-db'")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)


@dataclass
class Faults:
    """Fault injection and limits set by ``POST /_sandbox/faults``."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    commit_then_timeout_rate: float = 0.0
    duplicate_webhook_rate: float = 0.0
    rate_limit_per_s: float | None = 8.0
    max_in_flight: int | None = 8
    timeout_seconds: float = 35.0
    error_status: int = 500
    latency_ms: float = 0.0
    modules: list[str] | None = None
    actions: list[str] | None = None
    fail_next: int = 0
    fail_next_kind: str = "error"

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known keys from ``changes`` all or nothing (invalid ones raise :class:`ConfigError`)."""
        trial = replace(self)
        _update(trial, changes)
        trial.validate()
        self.__dict__.update(trial.__dict__)

    def validate(self) -> None:
        """Raise :class:`ConfigError` when a setting is out of range."""
        for name in ("error_rate", "timeout_rate", "commit_then_timeout_rate", "duplicate_webhook_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} must be between 0 and 1")
        if self.error_status not in (500, 502, 503):
            raise ConfigError("error_status must be 500, 502 or 503")
        if self.fail_next_kind not in FAULT_KINDS:
            raise ConfigError(f"fail_next_kind must be one of {FAULT_KINDS}")
        if self.fail_next < 0 or self.timeout_seconds < 0 or self.latency_ms < 0:
            raise ConfigError("fail_next, timeout_seconds and latency_ms must not be negative")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)

    def applies_to(self, module: str, action: str) -> bool:
        """Whether the ``modules``/``actions`` restriction lets faults hit this call."""
        return (not self.modules or module in self.modules) and (not self.actions or action in self.actions)

    def roll(self, module: str, action: str, rng: random.Random) -> str | None:
        """The fault to inject into this call, if any (``fail_next`` first, then the rates)."""
        if not self.applies_to(module, action):
            return None
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.fail_next_kind
        if self.error_rate and rng.random() < self.error_rate:
            return "error"
        if self.timeout_rate and rng.random() < self.timeout_rate:
            return "timeout"
        if self.commit_then_timeout_rate and rng.random() < self.commit_then_timeout_rate:
            return "commit_then_timeout"
        return None


def _update(target: Any, changes: dict[str, Any]) -> None:
    known = {f.name: f for f in fields(target)}
    for name, value in changes.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}; known: {sorted(known)}")
        current = getattr(target, name)
        if isinstance(value, Decimal):  # control bodies are decoded with floats as Decimal
            value = float(value)
        if value is None or isinstance(current, (list, type(None))) or isinstance(value, list):
            setattr(target, name, value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false")
            setattr(target, name, value)
        elif (
            isinstance(current, (int, float))
            and not isinstance(value, bool)
            and isinstance(value, (int, float))
        ):
            setattr(target, name, type(current)(value) if isinstance(current, float) else int(value))
        elif isinstance(current, str) and isinstance(value, str):
            setattr(target, name, value)
        else:
            raise ConfigError(f"{name} has the wrong type")


class RateLimiter:
    """Token bucket (capacity = rate, refill = rate per second) plus an in-flight counter."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.rate: float | None = None
        self.updated = time.monotonic()
        self.in_flight = 0

    def configure(self, rate: float | None) -> None:
        """(Re)start the bucket full at ``rate`` requests per second (0/None = unlimited)."""
        self.rate = rate if rate else None
        self.tokens = float(rate or 0)
        self.updated = time.monotonic()

    def take(self) -> float | None:
        """Take one token: ``None`` when allowed, else the seconds until a token is available."""
        rate = self.rate
        if rate is None:
            return None
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / rate


def retry_after_header(wait_seconds: float) -> str:
    """``Retry-After`` as whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_seconds)))


class RequestLog:
    """The most recent API calls, for ``GET /_sandbox/requests``."""

    def __init__(self, size: int = 20000) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.sequence = 0

    def add(self, entry: dict[str, Any]) -> None:
        """Append one call (gets a running ``seq``)."""
        self.sequence += 1
        entry["seq"] = self.sequence
        self.entries.append(entry)

    def query(
        self, module: str | None = None, action: str | None = None, limit: int | None = None
    ) -> list[Any]:
        """Entries (oldest first) matching ``module``/``action``; ``limit`` keeps the newest N."""
        rows = [
            e
            for e in self.entries
            if (not module or e.get("module") == module) and (not action or e.get("action") == action)
        ]
        return rows[-limit:] if limit else rows

    def clear(self) -> None:
        """Forget every entry."""
        self.entries.clear()
