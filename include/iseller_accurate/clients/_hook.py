"""``_ApiHook``: what the Accurate and iSeller hooks share, written once.

The connection's settings read once (under a lock), the connection host made a base URL, one
``requests.Session`` per thread, the rate slot around every request, one request sent (transport
failures sorted into retryable or not), the answer's status read with the retry policy, and
``run_with_retries`` with the hook's retry count. A hook adds its own authentication (Accurate: signing,
discovery and the OAuth session; iSeller: OAuth tokens) and its API.

Internal to ``clients``; the hooks are the public surface.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook

from include.iseller_accurate.clients._transport import (
    CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    RETRYABLE_EXCEPTIONS,
    CallSpec,
    CallState,
    RetryableFailure,
    Scrubber,
    ThreadLocalSessions,
    body_snippet,
    describe_exception,
    is_retryable_status,
    load_json,
    parse_retry_after,
    request_possibly_sent,
    run_with_retries,
)
from include.iseller_accurate.clients.errors import ApiError, AuthError
from include.iseller_accurate.clients.ratelimit import RateLimiter

T = TypeVar("T")


class _HasReadTimeout(Protocol):
    @property
    def read_timeout(self) -> float: ...


S = TypeVar("S", bound=_HasReadTimeout)


def normalise_url(value: Any, scheme: str = "https") -> str:
    """``value`` as a base URL without a trailing slash (``scheme://`` added when it has none)."""
    url = str(value or "").strip().rstrip("/")
    if url and "://" not in url:
        url = f"{scheme}://{url}"
    return url


class _ApiHook(HttpHook, Generic[S]):
    """Shared plumbing of ``AccurateHook`` and ``IsellerHook`` (see the module docstring).

    A subclass sets ``service`` (the name in messages), ``envelope_key`` (the key a refusal's JSON
    answer carries whatever its HTTP status) and ``_api_log``, and implements ``_load_settings`` and
    ``_auth_message``.
    """

    conn_type = "http"
    service: ClassVar[str]
    envelope_key: ClassVar[str]
    _api_log: ClassVar[logging.Logger]

    def __init__(
        self,
        conn_id: str,
        method: str,
        max_retries: int,
        timeout: float | None,
        rate_limiter: RateLimiter | None,
    ) -> None:
        super().__init__(method=method, http_conn_id=conn_id)
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.rate_limiter = rate_limiter
        self.max_retries = max_retries
        self._timeout = timeout
        self._settings: S | None = None
        self._settings_lock = threading.Lock()
        self._sessions = ThreadLocalSessions()
        self._scrub = Scrubber()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.http_conn_id!r})"

    # -- connection ----------------------------------------------------------------------------------
    @property
    def settings(self) -> S:
        """The connection's settings, read once (secrets are registered for scrubbing and log masking)."""
        if self._settings is None:
            with self._settings_lock:
                if self._settings is None:
                    self._settings = self._load_settings()
        return self._settings

    def _load_settings(self) -> S:
        raise NotImplementedError

    @property
    def _conn_label(self) -> str:
        return f"Airflow connection '{self.http_conn_id}'"

    @staticmethod
    def _base_url(conn: Any) -> str:
        """The connection's host as a base URL: its schema (else https) and port added when missing."""
        host = normalise_url(conn.host, conn.schema or "https")
        if conn.port and not urlsplit(host).port:
            host = f"{host}:{conn.port}"
        return host

    def _read_timeout(self, extra: Mapping[str, Any]) -> float:
        """The read timeout: the hook's ``timeout`` argument, else extra ``timeout``, else 30 s."""
        return float(
            self._timeout if self._timeout is not None else extra.get("timeout", DEFAULT_READ_TIMEOUT)
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The calling thread's ``requests.Session``.

        Unlike ``HttpHook.get_conn`` it never copies the connection's extra into headers (that would send
        a secret) nor sets basic auth; each hook authenticates per request.
        """
        session = self._sessions.get()
        if headers:
            session.headers.update(headers)
        return session

    def close(self) -> None:
        """Close the pooled HTTP connections of every thread."""
        self._sessions.close()

    # -- transport -----------------------------------------------------------------------------------
    def _slot(self) -> AbstractContextManager[None]:
        return self.rate_limiter.slot() if self.rate_limiter is not None else nullcontext()

    def _run(self, spec: CallSpec, attempt: Callable[[CallState], T]) -> T:
        """``attempt`` under the retry policy (see ``run_with_retries``) with this hook's retry count."""
        return run_with_retries(spec, attempt, max_retries=self.max_retries, log=self._api_log)

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        spec: CallSpec,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        data: Any = None,
    ) -> requests.Response:
        """One HTTP request inside the rate slot, redirects not followed.

        A transport failure worth another try raises ``RetryableFailure`` (saying whether the request may
        have reached the server); any other raises ``ApiError``. Messages never hold a secret.
        """
        started = time.monotonic()
        try:
            with self._slot():
                response = self.get_conn().request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=dict(headers),
                    timeout=(CONNECT_TIMEOUT, self.settings.read_timeout),
                    allow_redirects=False,
                )
        except RETRYABLE_EXCEPTIONS as exc:
            raise RetryableFailure(
                self._scrub(describe_exception(exc)), possibly_sent=request_possibly_sent(exc)
            ) from None
        except requests.RequestException as exc:
            raise ApiError(
                self._scrub(f"{self.service} {spec.what}: request failed ({type(exc).__name__})")
            ) from None
        self._api_log.debug(
            "%s %s %s -> %s in %.2f s",
            self.service,
            method,
            spec.what,
            response.status_code,
            time.monotonic() - started,
        )
        return response

    @staticmethod
    def _retryable(response: requests.Response) -> RetryableFailure:
        """A 429 (nothing was done) or 5xx (something may have been) as a failure worth another try."""
        status = response.status_code
        return RetryableFailure(
            "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})",
            status_code=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            possibly_sent=status != 429,
        )

    def _parse(self, response: requests.Response, spec: CallSpec) -> dict[str, Any]:
        """The JSON object of an answer, or the exception its status calls for.

        401/403: ``AuthError``. 429/5xx: retryable. A 2xx that is not a JSON object: retryable (the write
        may have been stored). Another status: its JSON object when it carries ``envelope_key`` (a
        refusal), else ``ApiError``.
        """
        status = response.status_code
        if status in (401, 403):
            raise AuthError(self._scrub(self._auth_message(response, spec)), status_code=status)
        if is_retryable_status(status):
            raise self._retryable(response)
        success = 200 <= status < 300
        try:
            body = load_json(response.content)
        except ValueError:
            if success:
                raise RetryableFailure(
                    f"HTTP {status} with an answer that is not JSON", status_code=status, possibly_sent=True
                ) from None
            body = None
        if isinstance(body, dict) and (success or self.envelope_key in body):
            return body
        if success:
            raise RetryableFailure(
                f"HTTP {status} with an unexpected answer", status_code=status, possibly_sent=True
            )
        raise ApiError(
            self._scrub(f"{self.service} {spec.what}: HTTP {status}: {body_snippet(response)}"),
            status_code=status,
        )

    def _auth_message(self, response: requests.Response, spec: CallSpec) -> str:
        """What to tell the operator when the service refused the credentials (401/403)."""
        raise NotImplementedError
