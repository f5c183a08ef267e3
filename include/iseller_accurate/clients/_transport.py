"""Plumbing shared by both hooks: sessions, timeouts, retry policy, secret scrubbing, JSON parsing.

Internal to ``clients``; the hooks are the public surface.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import requests
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from include.iseller_accurate.clients.errors import OutcomeUnknownError, TransientApiError

T = TypeVar("T")

#: Seconds allowed to open a TCP/TLS connection; the read timeout comes from the connection extra.
CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
#: A ``Retry-After`` longer than this is shortened: a task should fail and be retried by Airflow instead.
MAX_RETRY_AFTER = 120.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
USER_AGENT = "iseller-accurate-sync/1.0 (+Apache Airflow)"
REDACTED = "***"


def sleep(seconds: float) -> None:
    """Sleep between retries; a module-level seam so that tests can record the waits."""
    time.sleep(seconds)


def mask_in_airflow_logs(secret: str | None) -> None:
    """Register a secret with Airflow's log masker (no-op outside Airflow or for empty values)."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow is always installed in this project
        return
    mask_secret(secret)


class Scrubber:
    """Removes known secrets (and their URL-encoded forms) from text meant for logs and exceptions."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Remember more secrets to scrub (e.g. an access token obtained at run time)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= 3:
                    self._secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})

    def __call__(self, text: object) -> str:
        """Return ``text`` as a string with every secret replaced by ``***``."""
        out = str(text)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            out = out.replace(secret, REDACTED)
        return out

    def __repr__(self) -> str:
        return "Scrubber(<redacted>)"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(attempt_number: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so waits never collapse to 0."""
    ceiling = min(cap, base * 2 ** max(0, attempt_number - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def load_json(content: bytes) -> Any:
    """Parse a JSON answer keeping every non-integer number as ``Decimal`` (money never touches float)."""
    return json.loads(content, parse_float=Decimal)


def request_possibly_sent(exc: BaseException) -> bool:
    """Whether a failed request may have reached the server.

    Only a failure to *connect* (DNS, refused, connect timeout) proves that nothing was sent; a read
    timeout or a connection dropped mid-way may come after the server stored the write.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if not isinstance(exc, requests.ConnectionError):
        return True
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ConnectTimeoutError)):
            return False
        if isinstance(current, BaseException):
            pending.extend(current.args)
            pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return True


def describe_exception(exc: BaseException) -> str:
    """A short operator-readable description of a transport failure (no URL, no headers)."""
    name = type(exc).__name__
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out while connecting ({name})"
    if isinstance(exc, requests.Timeout):
        return f"timed out waiting for the answer ({name})"
    if isinstance(exc, requests.ConnectionError):
        if request_possibly_sent(exc):
            return f"connection lost ({name})"
        return f"could not connect ({name})"
    return f"transport error ({name})"


RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def is_retryable_status(status_code: int) -> bool:
    """429 and every 5xx are worth another try (after a wait)."""
    return status_code == 429 or 500 <= status_code <= 599


class RetryableFailure(Exception):
    """One attempt failed for a reason that may pass (internal to the retry loop)."""

    def __init__(
        self,
        description: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        possibly_sent: bool = False,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.status_code = status_code
        self.retry_after = retry_after
        self.possibly_sent = possibly_sent


@dataclass(frozen=True)
class CallSpec:
    """What a call is, for the retry policy and for messages."""

    service: str  # "Accurate" or "iSeller"
    what: str  # e.g. "sales-invoice/save", shown in messages and logs
    write: bool = False
    idempotent: bool = True
    module: str = ""
    number: str | None = None
    numbers: tuple[str, ...] = ()


@dataclass
class CallState:
    """Mutable facts about one logical call across its attempts."""

    attempts: int = 0
    possibly_sent: bool = False
    resent_after_unknown: bool = False


def _outcome_unknown(spec: CallSpec, failure: RetryableFailure, attempts: int) -> OutcomeUnknownError:
    key = spec.number or (", ".join(spec.numbers[:5]) + (" ..." if len(spec.numbers) > 5 else ""))
    subject = f"{spec.module} {key}".strip() if key else spec.module or spec.what
    message = (
        f"{spec.service} may or may not have stored {subject}: the answer was lost "
        f"({failure.description}, attempt {attempts}). Look the record up in {spec.service} before "
        f"sending it again."
    )
    return OutcomeUnknownError(
        message,
        module=spec.module or spec.what,
        number=spec.number,
        numbers=spec.numbers,
        status_code=failure.status_code,
    )


def run_with_retries(
    spec: CallSpec,
    attempt: Callable[[CallState], T],
    *,
    max_retries: int,
    log: logging.Logger,
) -> T:
    """Run ``attempt`` until it succeeds, retrying ``RetryableFailure`` with backoff and Retry-After.

    A write that is not idempotent is never re-sent once an attempt may have reached the server: that
    raises ``OutcomeUnknownError`` at once. Retries exhausted: ``OutcomeUnknownError`` if a write may have
    been stored by some attempt, else ``TransientApiError``.
    """
    state = CallState()

    def guarded() -> T:
        if state.possibly_sent:
            state.resent_after_unknown = True
        state.attempts += 1
        try:
            return attempt(state)
        except RetryableFailure as failure:
            if failure.possibly_sent:
                state.possibly_sent = True
                if spec.write and not spec.idempotent:
                    raise _outcome_unknown(spec, failure, state.attempts) from None
            raise

    def wait(retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetryableFailure) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER) + random.uniform(0, 0.25)
        return backoff_delay(retry_state.attempt_number)

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
            spec.service,
            spec.what,
            exc.description if isinstance(exc, RetryableFailure) else type(exc).__name__,
            delay,
            retry_state.attempt_number + 1,
            max_retries + 1,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max_retries + 1),
        retry=tenacity.retry_if_exception_type(RetryableFailure),
        wait=wait,
        sleep=lambda seconds: sleep(seconds),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(guarded)
    except RetryableFailure as failure:
        if spec.write and state.possibly_sent:
            raise _outcome_unknown(spec, failure, state.attempts) from None
        raise TransientApiError(
            f"{spec.service} {spec.what} failed after {state.attempts} attempts: {failure.description}. "
            f"The service seems unavailable; the sync will try again later.",
            status_code=failure.status_code,
            attempts=state.attempts,
        ) from None


class ThreadLocalSessions:
    """One ``requests.Session`` per thread (sessions are not thread-safe), each with its own pool."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        """The calling thread's session, created on first use (and again after a fork)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None or getattr(self._local, "pid", None) != os.getpid():
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json"
            self._local.session = session
            self._local.pid = os.getpid()
            with self._lock:
                self._all.add(session)
        return session

    def close(self) -> None:
        """Close every session this object created (their pooled connections)."""
        with self._lock:
            sessions = list(self._all)
            self._all = weakref.WeakSet()
        for session in sessions:
            session.close()
        self._local = threading.local()


def body_snippet(response: requests.Response, limit: int = 200) -> str:
    """The start of an answer's body, on one line, for error messages (scrub before use)."""
    try:
        text = response.text
    except Exception:  # pragma: no cover - defensive: undecodable body
        return ""
    return " ".join(text.split())[:limit]
