"""Accurate Online API client (API-token method), as an Airflow hook.

What it takes care of, so that callers only see records and results:

- **Signing.** Every request carries ``Authorization: Bearer <token>``, ``X-Api-Timestamp`` and
  ``X-Api-Signature`` = HMAC-SHA256 of the exact timestamp string keyed with the app's signature secret
  (Base64 by default, hex with extra ``signature_encoding: hex``), recomputed for every attempt.
  The timestamp is **Unix milliseconds**: a plain integer has no timezone, locale or format to get wrong,
  and Accurate accepts it alongside ``dd/MM/yyyy HH:mm:ss`` and ISO-8601.
- **Two hosts.** The account host (connection ``host``) answers discovery (``api-token.do``), webhook
  renewal and webhook history; discovery names the data host of the company database, cached for
  ``DISCOVERY_TTL`` per process and per hook. A ``308``/``307`` on a data call is followed by hand, keeping
  method, body and every header (``requests`` would drop ``Authorization`` on a cross-host redirect), and
  the host is discovered again on the next call.
- **Retries.** 429 (honouring ``Retry-After``), 5xx, timeouts and connection errors are retried with
  exponential backoff and jitter; 401/403 and business refusals (``s: false``) never are. A save whose
  answer was lost is re-sent only when ``idempotent=True`` (deterministic ``number``); otherwise
  ``OutcomeUnknownError`` tells the caller to look the record up first.
- **Rate limit.** Every HTTP request (each attempt, each redirect hop) runs inside ``rate_limiter.slot()``.
- **Threads.** One ``requests.Session`` per thread, so a load task may run 8 calls at once.
- **Secrets** never reach logs, exception messages or reprs.

- **Variants of the public material.** Discovery reads the database under ``data usaha``, ``database``
  or a top-level ``host``. A redirect to another site is followed only when discovery, asked again,
  names that origin. ``list`` asks for 1000 rows, steps down (100, 20) when a size is refused, and pages
  with the size the server served, counting rows read so nothing is skipped or repeated.
- **OAuth session mode** (extra ``auth_mode: oauth``): password = OAuth access token; ``db-list.do`` /
  ``open-db.do`` give the data host and a session sent as ``X-Session-ID``; a 401 on a data call renews
  the session once (``db-refresh-session.do``, else ``open-db.do``) and re-sends the call.

Connection ``accurate_api`` (type http): host = account URL, password = API token, extra
``signature_secret`` (required), ``signature_encoding`` (``base64`` | ``hex``), ``timeout`` (seconds);
or ``auth_mode: oauth`` with the OAuth access token as password and optional ``database_id``.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import ipaddress
import json as jsonlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from airflow.providers.http.hooks.http import HttpHook

from include.iseller_accurate import jsonutil
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
    mask_in_airflow_logs,
    parse_retry_after,
    request_possibly_sent,
    run_with_retries,
)
from include.iseller_accurate.clients.errors import (
    AccurateBusinessError,
    ApiError,
    AuthError,
    OutcomeUnknownError,
)
from include.iseller_accurate.clients.ratelimit import RateLimiter
from include.iseller_accurate.times import format_accurate_date, format_accurate_datetime

log = logging.getLogger(__name__)

SERVICE = "Accurate"
#: How long a discovered data host is trusted before asking the account host again.
DISCOVERY_TTL = timedelta(days=30)
#: Accurate's limit for ``bulk-save.do``.
MAX_BULK_RECORDS = 100
#: Accurate allows at most 24 hours per ``webhook-history.do`` call.
WEBHOOK_HISTORY_WINDOW = timedelta(hours=24)
MAX_REDIRECTS = 5
SIGNATURE_ENCODINGS = ("base64", "hex")
AUTH_MODES = ("api_token", "oauth")
#: Where public material puts the database in the ``api-token.do`` answer, in the order tried.
DISCOVERY_KEYS = ("data usaha", "database")
#: Page sizes ``list`` asks for, largest first: a server that refuses one is asked the next
#: (1000 was honoured by the real API per a public integrator; 20 is the documented default).
LIST_PAGE_SIZES = (1000, 100, 20)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# "Sudah ada data lain dengan No Form # X" (and the same for masters), or an English profile's wording.
_DUPLICATE = re.compile(
    r"sudah ada data lain|sudah ada|sudah digunakan|sudah dipakai|already exist|already (been )?used"
    r"|duplicate",
    re.IGNORECASE,
)
# Keys that identify a record, for messages and OutcomeUnknownError.number.
_RECORD_KEYS = ("number", "customerNo", "vendorNo", "no", "transferNo", "name", "id")


def sign_timestamp(secret: str, timestamp: str, encoding: str = "base64") -> str:
    """HMAC-SHA256 of ``timestamp`` keyed with ``secret``, encoded as Base64 (default) or lowercase hex."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8"), hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    raise ValueError(f"unknown signature encoding {encoding!r} (use one of {SIGNATURE_ENCODINGS})")


def messages_of(value: Any) -> builtins.list[str]:
    """Accurate's ``d`` of a refusal or confirmation as a list of strings (it may be a list, str or dict)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        return [f"{k}: {v}" if not isinstance(k, int) else str(v) for k, v in value.items()]
    if isinstance(value, Iterable):
        out: builtins.list[str] = []
        for item in value:
            out.extend(messages_of(item))
        return out
    return [str(value)]


def record_key(record: Mapping[str, Any] | None) -> str | None:
    """The business key of a record (``number``, ``customerNo``, item ``no``, ...) if it has one."""
    if not record:
        return None
    for key in _RECORD_KEYS:
        value = record.get(key)
        if value not in (None, ""):
            return str(value)
    return None


@dataclass(frozen=True)
class SaveResult:
    """Outcome of saving one record: stored (``ok``, ``record`` = Accurate's ``r``) or refused (``messages``).

    ``resent`` is True when the answer came from a re-send after an attempt whose outcome was unknown:
    a ``duplicate_number`` refusal then most likely means that the first attempt was stored.
    """

    ok: bool
    record: dict[str, Any] | None
    messages: builtins.list[str] = field(default_factory=builtins.list)
    resent: bool = False

    @property
    def duplicate_number(self) -> bool:
        """Accurate refused the record because its number (or master key) already exists."""
        return not self.ok and any(_DUPLICATE.search(message) for message in self.messages)

    @property
    def reason(self) -> str:
        """The messages as one line, for the ledger and the Sync Status page."""
        return "; ".join(self.messages)

    @property
    def id(self) -> int | None:
        """Accurate's id of the stored record, when known."""
        value = (self.record or {}).get("id")
        return int(value) if value is not None else None

    @property
    def number(self) -> str | None:
        """The stored record's number (or master key), when known."""
        return record_key(self.record)


@dataclass(frozen=True)
class _Settings:
    account_url: str
    token: str = field(repr=False)
    signature_secret: str = field(repr=False)
    signature_encoding: str = "base64"
    read_timeout: float = DEFAULT_READ_TIMEOUT
    auth_mode: str = "api_token"
    database_id: str = ""


@dataclass
class _Discovered:
    host: str
    database: dict[str, Any]
    expires_at: float  # time.time()
    #: OAuth mode: the database session from ``open-db.do`` (sent as ``X-Session-ID``).
    session: str = field(default="", repr=False)


@dataclass(frozen=True)
class _Answer:
    body: dict[str, Any]
    resent: bool


_DISCOVERY_CACHE: dict[tuple[str, str], _Discovered] = {}
_DISCOVERY_LOCK = threading.Lock()


def clear_discovery_cache() -> None:
    """Forget every discovered data host of this process (tests, or after a database move)."""
    with _DISCOVERY_LOCK:
        _DISCOVERY_CACHE.clear()


def _filter_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_accurate_datetime(value)
    if isinstance(value, date):
        return format_accurate_date(value)
    return str(value)


def encode_filters(filters: Mapping[str, Any] | None) -> dict[str, str]:
    """Accurate list filters as query parameters.

    ``{field: value}`` and ``{field: [v1, v2]}`` mean EQUAL (any of the values);
    ``{field: (op, values)}`` uses ``op`` (``BETWEEN``, ``GREATER_THAN``, ...) with one or more values.
    Dates become ``dd/MM/yyyy``, aware datetimes ``dd/MM/yyyy HH:mm:ss`` in Jakarta time.
    """
    params: dict[str, str] = {}
    for name, spec in (filters or {}).items():
        if not _NAME.match(name.replace(".", "_")):
            raise ValueError(f"invalid filter field {name!r}")
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(f"filter {name!r}: a tuple must be (operator, values)")
            operator, values = spec
        else:
            operator, values = "EQUAL", spec
        if isinstance(values, (builtins.list, tuple, set, frozenset)):
            values = builtins.list(values)
        else:
            values = [values]
        if not values:
            raise ValueError(f"filter {name!r} has no values")
        params[f"filter.{name}.op"] = str(operator).upper()
        for index, value in enumerate(values):
            params[f"filter.{name}.val[{index}]"] = _filter_value(value)
    return params


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _normalise_host(value: Any) -> str:
    host = str(value or "").strip().rstrip("/")
    if host and "://" not in host:
        host = f"https://{host}"
    return host


def discovered_database(answer: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The data host and database of an ``api-token.do`` ``d``, wherever public material puts them.

    ``d["data usaha"].host`` (Accurate's guide), ``d.database.host`` (most public clients) or a top-level
    ``d.host``; ``("", {})`` when none holds a host.
    """
    for key in DISCOVERY_KEYS:
        database = _mapping(answer.get(key))
        if database.get("host"):
            return _normalise_host(database["host"]), dict(database)
    if answer.get("host") and not isinstance(answer.get("host"), Mapping):
        return _normalise_host(answer["host"]), {k: v for k, v in answer.items() if k != "user"}
    return "", {}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _same_site(known: str, target: str) -> bool:
    """``target`` is the same host as ``known``, or shares its parent domain (zeus -> hera.accurate.id)."""
    if known == target:
        return True
    if _is_ip(known) or _is_ip(target):
        return False
    parent = ".".join(known.split(".")[-2:])
    return target == parent or target.endswith("." + parent)


def _stock_quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    if isinstance(value, Mapping):
        for key in ("availableStock", "quantity", "stock", "balance", "onHand", "qty", "quantityInAllUnit"):
            if key in value:
                found = _stock_quantity(value[key])
                if found is not None:
                    return found
    if isinstance(value, builtins.list) and len(value) == 1:
        return _stock_quantity(value[0])
    return None


class AccurateHook(HttpHook):
    """Accurate Online: signed, rate-limited, retried calls to the account host and the data host.

    :param accurate_conn_id: Airflow connection (default ``accurate_api``).
    :param rate_limiter: shared limiter every request goes through (``PostgresRateLimiter`` in
        production); None: no limiting.
    :param max_retries: retries after the first attempt for 429/5xx/timeouts/connection errors.
    :param timeout: read timeout in seconds (default: extra ``timeout``, else 30); connect timeout is 10 s.
    """

    conn_name_attr = "accurate_conn_id"
    default_conn_name = "accurate_api"
    conn_type = "http"
    hook_name = "Accurate Online"

    def __init__(
        self,
        accurate_conn_id: str = default_conn_name,
        *,
        rate_limiter: RateLimiter | None = None,
        max_retries: int = 6,
        timeout: float | None = None,
    ) -> None:
        super().__init__(method="GET", http_conn_id=accurate_conn_id)
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.accurate_conn_id = accurate_conn_id
        self.rate_limiter = rate_limiter
        self.max_retries = max_retries
        self._timeout = timeout
        self._settings: _Settings | None = None
        self._settings_lock = threading.Lock()
        self._host: _Discovered | None = None
        self._host_lock = threading.RLock()
        self._sessions = ThreadLocalSessions()
        self._scrub = Scrubber()

    def __repr__(self) -> str:
        return f"AccurateHook(accurate_conn_id={self.accurate_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels of the connection form in the Airflow UI."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "Account URL", "password": "API token"},
            "placeholders": {
                "host": "https://account.accurate.id",
                "extra": jsonlib.dumps(
                    {
                        "auth_mode": "api_token",
                        "signature_secret": "...",
                        "signature_encoding": "base64",
                        "timeout": 30,
                    }
                ),
            },
        }

    # -- connection ----------------------------------------------------------------------------------
    @property
    def settings(self) -> _Settings:
        """The connection's settings, read once (secrets are registered for scrubbing and log masking)."""
        if self._settings is None:
            with self._settings_lock:
                if self._settings is None:
                    self._settings = self._load_settings()
        return self._settings

    def _load_settings(self) -> _Settings:
        conn = self.get_connection(self.accurate_conn_id)
        extra = conn.extra_dejson
        token = conn.password or ""
        secret = str(extra.get("signature_secret") or "")
        self._scrub.add(token, secret, extra.get("webhook_token"))
        for value in (token, secret):
            mask_in_airflow_logs(value)
        name = f"Airflow connection '{self.accurate_conn_id}'"
        if not conn.host:
            raise AuthError(
                f"{name} has no host (the Accurate account URL, e.g. https://account.accurate.id)"
            )
        auth_mode = str(extra.get("auth_mode") or "api_token").lower()
        if auth_mode not in AUTH_MODES:
            raise AuthError(f"{name}: auth_mode must be one of {', '.join(AUTH_MODES)}")
        if auth_mode == "oauth" and not token:
            raise AuthError(f"{name} has no password (the OAuth access token of the Accurate app)")
        if not token:
            raise AuthError(f"{name} has no password (the Accurate API token)")
        if auth_mode == "api_token" and not secret:
            raise AuthError(f"{name} has no signature_secret in its extra")
        database_id = str(extra.get("database_id") or "").strip()
        encoding = str(extra.get("signature_encoding") or "base64").lower()
        if encoding not in SIGNATURE_ENCODINGS:
            raise AuthError(f"{name}: signature_encoding must be one of {', '.join(SIGNATURE_ENCODINGS)}")
        host = conn.host.strip().rstrip("/")
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port and not urlsplit(host).port:
            host = f"{host}:{conn.port}"
        timeout = self._timeout if self._timeout is not None else extra.get("timeout", DEFAULT_READ_TIMEOUT)
        return _Settings(
            account_url=host,
            token=token,
            signature_secret=secret,
            signature_encoding=encoding,
            read_timeout=float(timeout),
            auth_mode=auth_mode,
            database_id=database_id,
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The calling thread's ``requests.Session``.

        Unlike ``HttpHook.get_conn`` it never copies the connection's extra into headers (that would send
        the signature secret) nor sets basic auth; signing is done per request.
        """
        session = self._sessions.get()
        if headers:
            session.headers.update(headers)
        return session

    def close(self) -> None:
        """Close the pooled HTTP connections of every thread."""
        self._sessions.close()

    # -- signing -------------------------------------------------------------------------------------
    def sign(self, timestamp: str) -> str:
        """Signature of ``timestamp`` with this connection's secret and encoding (pure; no I/O after load)."""
        settings = self.settings
        return sign_timestamp(settings.signature_secret, timestamp, settings.signature_encoding)

    @staticmethod
    def make_timestamp() -> str:
        """The ``X-Api-Timestamp`` value: Unix time in milliseconds."""
        return str(time.time_ns() // 1_000_000)

    def signed_headers(self) -> dict[str, str]:
        """Fresh authentication headers for one attempt."""
        if self.settings.auth_mode == "oauth":
            return {"Authorization": f"Bearer {self.settings.token}"}
        timestamp = self.make_timestamp()
        return {
            "Authorization": f"Bearer {self.settings.token}",
            "X-Api-Timestamp": timestamp,
            "X-Api-Signature": self.sign(timestamp),
        }

    # -- host discovery ------------------------------------------------------------------------------
    def discover_host(self, *, refresh: bool = False) -> str:
        """The data host of the connection's database (``https://zeus.accurate.id``), cached.

        Asks the account host's ``api-token.do`` when nothing is cached, the cache is older than
        ``DISCOVERY_TTL``, a redirect showed the database moved, or ``refresh`` is True.
        """
        with self._host_lock:
            now = time.time()
            if not refresh and self._host is not None and now < self._host.expires_at:
                return self._host.host
            key = (self.accurate_conn_id, self.settings.account_url)
            if not refresh:
                with _DISCOVERY_LOCK:
                    cached = _DISCOVERY_CACHE.get(key)
                if cached is not None and now < cached.expires_at:
                    self._host = cached
                    return cached.host
            discovered = self._discover()
            with _DISCOVERY_LOCK:
                _DISCOVERY_CACHE[key] = discovered
            self._host = discovered
            log.info(
                "Accurate database %s is served by %s", discovered.database.get("alias"), discovered.host
            )
            return discovered.host

    def _forget_host(self) -> None:
        with self._host_lock:
            self._host = None
            with _DISCOVERY_LOCK:
                _DISCOVERY_CACHE.pop((self.accurate_conn_id, self.settings.account_url), None)

    def _discover(self) -> _Discovered:
        if self.settings.auth_mode == "oauth":
            return self._open_database()
        url = f"{self.settings.account_url}/api/api-token.do"
        spec = CallSpec(SERVICE, "api-token (host discovery)")
        try:
            body = self._request("GET", url, spec=spec).body
        except ApiError as exc:
            if exc.status_code != 405:
                raise
            body = self._request("POST", url, spec=spec).body
        if not body.get("s"):
            reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
            raise AuthError(self._scrub(f"Accurate refused host discovery for this API token: {reason}"))
        host, database = discovered_database(_mapping(body.get("d")))
        if not host:
            raise ApiError(
                "Accurate host discovery answered without a data host (looked for d['data usaha'].host, "
                "d.database.host and d.host)"
            )
        info = {k: v for k, v in database.items() if k in ("id", "alias", "host")}
        return _Discovered(host=host, database=info, expires_at=time.time() + DISCOVERY_TTL.total_seconds())

    # -- OAuth session flow --------------------------------------------------------------------------
    def _only_database_id(self) -> tuple[str, str]:
        """The id and alias of the one database the OAuth token reaches (``db-list.do``)."""
        body = self._account_call("db-list")
        if not body.get("s"):
            reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
            raise AuthError(
                self._scrub(f"Accurate refused to list the databases of this OAuth token: {reason}")
            )
        answer = body.get("d")
        rows: builtins.list[Any] = answer if isinstance(answer, builtins.list) else []
        found = [r for r in rows if isinstance(r, Mapping) and r.get("id") not in (None, "")]
        if len(found) != 1:
            names = ", ".join(f"{r.get('id')} ({r.get('alias')})" for r in found[:10]) or "none"
            raise AuthError(
                f"The OAuth token of Airflow connection '{self.accurate_conn_id}' reaches {len(found)} "
                f"Accurate databases ({names}); set database_id in the connection's extra."
            )
        return str(found[0]["id"]), str(found[0].get("alias") or "")

    def _open_database(self) -> _Discovered:
        """Open the database with ``open-db.do``: its data host and a session for ``X-Session-ID``."""
        database_id, alias = self.settings.database_id, ""
        if not database_id:
            database_id, alias = self._only_database_id()
        body = self._account_call("open-db", {"id": database_id})
        if not body.get("s"):
            reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
            raise AuthError(self._scrub(f"Accurate refused to open database {database_id}: {reason}"))
        inner = _mapping(body.get("d"))
        host = _normalise_host(body.get("host") or inner.get("host"))
        session = str(body.get("session") or inner.get("session") or "").strip()
        if not host or not session:
            raise ApiError(
                f"Accurate open-db.do answered without a host and a session for database {database_id}"
            )
        self._scrub.add(session)
        database = {"id": database_id, "alias": alias, "host": host}
        return _Discovered(
            host=host,
            database=database,
            expires_at=time.time() + DISCOVERY_TTL.total_seconds(),
            session=session,
        )

    def _session_of(self, url: str) -> str | None:
        """OAuth mode, data call: the session to send as ``X-Session-ID`` (None otherwise)."""
        if self.settings.auth_mode != "oauth" or "/accurate/api/" not in urlsplit(url).path:
            return None
        self.discover_host()
        with self._host_lock:
            return self._host.session if self._host is not None else None

    def _renew_session(self, used: str) -> None:
        """Replace an expired session: ``db-refresh-session.do``, else a fresh ``open-db.do``."""
        with self._host_lock:
            current = self._host
            if current is not None and current.session and current.session != used:
                return  # another thread renewed it already
            renewed: _Discovered | None = None
            if current is not None:
                body = self._account_call(
                    "db-refresh-session", {"id": current.database.get("id"), "session": used}
                )
                inner = _mapping(body.get("d"))
                session = str(inner.get("session") or body.get("session") or "").strip()
                if body.get("s") and session:
                    self._scrub.add(session)
                    host = _normalise_host(inner.get("host") or body.get("host")) or current.host
                    renewed = _Discovered(
                        host=host,
                        database={**current.database, "host": host},
                        expires_at=time.time() + DISCOVERY_TTL.total_seconds(),
                        session=session,
                    )
            if renewed is None:
                renewed = self._open_database()
            with _DISCOVERY_LOCK:
                _DISCOVERY_CACHE[(self.accurate_conn_id, self.settings.account_url)] = renewed
            self._host = renewed
            log.info("Accurate database session renewed (database %s)", renewed.database.get("id"))

    @property
    def database(self) -> dict[str, Any]:
        """``id``, ``alias`` and ``host`` of the database, from discovery."""
        self.discover_host()
        return dict(self._host.database) if self._host else {}

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection from the Airflow UI: discover the data host with a signed call."""
        try:
            host = self.discover_host(refresh=True)
        except Exception as exc:
            return False, self._scrub(str(exc))
        alias = self.database.get("alias") or self.database.get("id") or "?"
        return True, f"Connected to Accurate database {alias} at {host}"

    # -- transport -----------------------------------------------------------------------------------
    def _slot(self) -> AbstractContextManager[None]:
        return self.rate_limiter.slot() if self.rate_limiter is not None else nullcontext()

    def _request(
        self,
        method: str,
        url: str,
        *,
        spec: CallSpec,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> _Answer:
        """Send with signing, rate limit, redirects and retries; answer the parsed JSON envelope."""

        target = url

        def attempt(state: CallState) -> _Answer:
            nonlocal target
            session = self._session_of(target)
            response = self._send(
                method, target, spec=spec, params=params, json_body=json_body, session=session
            )
            if response.status_code == 401 and session is not None:
                # OAuth: the database session expired (a 401 is refused before any processing, so
                # re-sending a write is safe); renew it once and send again, to the host it names.
                self._renew_session(session)
                target = self._data_url_like(target)
                session = self._session_of(target)
                response = self._send(
                    method, target, spec=spec, params=params, json_body=json_body, session=session
                )
            return _Answer(self._parse(response, spec), state.resent_after_unknown)

        return run_with_retries(spec, attempt, max_retries=self.max_retries, log=log)

    def _send(
        self,
        method: str,
        url: str,
        *,
        spec: CallSpec,
        params: Mapping[str, Any] | None,
        json_body: Any,
        session: str | None = None,
    ) -> requests.Response:
        http = self.get_conn()
        data = jsonutil.dumps(json_body).encode("utf-8") if json_body is not None else None
        timeout = (CONNECT_TIMEOUT, self.settings.read_timeout)
        current, current_params = url, dict(params) if params else None
        # Signed once per attempt and sent unchanged on every hop: a redirect to another host keeps
        # Authorization, the timestamp and its signature (and the OAuth session).
        headers = self.signed_headers()
        if session is not None:
            headers["X-Session-ID"] = session
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        for _hop in range(MAX_REDIRECTS + 1):
            started = time.monotonic()
            try:
                with self._slot():
                    response = http.request(
                        method,
                        current,
                        params=current_params,
                        data=data,
                        headers=headers,
                        timeout=timeout,
                        allow_redirects=False,
                    )
            except RETRYABLE_EXCEPTIONS as exc:
                raise RetryableFailure(
                    self._scrub(describe_exception(exc)), possibly_sent=request_possibly_sent(exc)
                ) from None
            except requests.RequestException as exc:
                raise ApiError(
                    self._scrub(f"Accurate {spec.what}: request failed ({type(exc).__name__})")
                ) from None
            log.debug(
                "Accurate %s %s -> %s in %.2f s",
                method,
                spec.what,
                response.status_code,
                time.monotonic() - started,
            )
            if response.status_code not in (307, 308):
                return response
            current, current_params = self._redirect_target(response, current, current_params)
        raise ApiError(f"Accurate {spec.what}: more than {MAX_REDIRECTS} redirects")

    def _redirect_target(
        self, response: requests.Response, current: str, params: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any] | None]:
        location = response.headers.get("Location")
        if not location:
            raise ApiError(f"Accurate answered HTTP {response.status_code} without a Location")
        target = urljoin(response.url or current, location)
        known = {_host_of(current), _host_of(self.settings.account_url)}
        target_host = _host_of(target)
        if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
            raise ApiError("Accurate redirected from https to plain http; not followed")
        if any(_same_site(host, target_host) for host in known if host):
            self._forget_host()
        elif "/accurate/api/" not in urlsplit(current).path or not self._discovery_names(target):
            # Another site: followed only when the account host (discovery) confirms the database
            # is served there now, so credentials never go to a host Accurate did not name.
            raise ApiError(
                self._scrub(
                    f"Accurate redirected to an unexpected host {target_host!r} that host discovery does "
                    "not confirm; not followed"
                )
            )
        log.info("Accurate moved the database (HTTP %s to %s); following", response.status_code, target_host)
        parts = urlsplit(target)
        if parts.query:
            return target, None  # the Location carries the full query already
        # A Location without a query: keep ours (method, body and headers are kept too).
        return urlunsplit(parts._replace(query="")), params

    def _parse(self, response: requests.Response, spec: CallSpec) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise AuthError(self._auth_message(response), status_code=status)
        if is_retryable_status(status):
            what = "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})"
            raise RetryableFailure(
                what,
                status_code=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                possibly_sent=status != 429,
            )
        try:
            body = load_json(response.content)
        except ValueError:
            if 200 <= status < 300:
                raise RetryableFailure(
                    f"HTTP {status} with an answer that is not JSON", status_code=status, possibly_sent=True
                ) from None
            raise ApiError(
                self._scrub(f"Accurate {spec.what}: HTTP {status}: {body_snippet(response)}"),
                status_code=status,
            ) from None
        if isinstance(body, dict) and (200 <= status < 300 or "s" in body):
            return body  # business refusals come as s: false, sometimes with a 4xx status
        if 200 <= status < 300:
            raise RetryableFailure(
                f"HTTP {status} with an unexpected answer", status_code=status, possibly_sent=True
            )
        raise ApiError(
            self._scrub(f"Accurate {spec.what}: HTTP {status}: {body_snippet(response)}"), status_code=status
        )

    def _auth_message(self, response: requests.Response) -> str:
        try:
            body = load_json(response.content)
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            parts = messages_of(body.get("d")) or messages_of(
                body.get("error_description") or body.get("message") or body.get("error")
            )
            detail = "; ".join(parts)
        else:
            detail = body_snippet(response)
        return self._scrub(
            f"Accurate refused the credentials of Airflow connection '{self.accurate_conn_id}' "
            f"(HTTP {response.status_code}: {detail or 'no reason given'}). "
            + (
                "Check the OAuth access token (expired? put a fresh one in the connection)."
                if self._settings is not None and self._settings.auth_mode == "oauth"
                else "Check the API token (not revoked?), the signature secret and the server clock."
            )
        )

    def _discovery_names(self, target: str) -> bool:
        """Discover the data host again; whether it is the origin of ``target``."""
        try:
            host = self.discover_host(refresh=True)
        except (ApiError, AuthError) as exc:
            log.warning("Accurate redirect not confirmed: host discovery failed (%s)", self._scrub(exc))
            return False
        return _origin(host) == _origin(target) and urlsplit(target).path.startswith(
            urlsplit(host).path.rstrip("/") + "/"
        )

    def _data_url_like(self, url: str) -> str:
        """``url`` (a data call) on the data host known now (after a session renewal or a move)."""
        path = urlsplit(url).path
        rest = path[path.index("/accurate/api/") :]
        query = urlsplit(url).query
        return f"{self.discover_host()}{rest}" + (f"?{query}" if query else "")

    def _data_url(self, module: str, action: str) -> str:
        if not _NAME.match(module) or not _NAME.match(action):
            raise ValueError(f"invalid Accurate module/action {module!r}/{action!r}")
        return f"{self.discover_host()}/accurate/api/{module}/{action}.do"

    def _account_call(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.settings.account_url}/api/{path}.do"
        spec = CallSpec(SERVICE, path)
        try:
            return self._request("GET", url, spec=spec, params=params).body
        except ApiError as exc:
            if exc.status_code != 405:
                raise
            return self._request("POST", url, spec=spec, params=params).body

    # -- API -----------------------------------------------------------------------------------------
    def call(
        self,
        module: str,
        action: str,
        *,
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Call ``{host}/accurate/api/<module>/<action>.do`` and return the raw envelope (``s``, ``d``, ...).

        Numbers with a fraction are ``Decimal``. A non-GET call is a write for the retry policy:
        with ``idempotent=False`` it is never re-sent once it may have reached Accurate.
        """
        write = method.upper() != "GET"
        spec = CallSpec(
            SERVICE,
            f"{module}/{action}",
            write=write,
            idempotent=idempotent,
            module=module,
            number=record_key(json) if isinstance(json, Mapping) else None,
        )
        url = self._data_url(module, action)
        return self._request(method.upper(), url, spec=spec, params=params, json_body=json).body

    def save(self, module: str, record: Mapping[str, Any], *, idempotent: bool = True) -> SaveResult:
        """Create (no ``id``) or update (with ``id``) one record with ``save.do``.

        Returns a ``SaveResult``; a refusal (``s: false``) is a result, not an exception. Use
        ``idempotent=False`` for records Accurate numbers itself (blank ``number``/``customerNo``): a lost
        answer then raises ``OutcomeUnknownError`` instead of risking a second record.
        """
        spec = CallSpec(
            SERVICE,
            f"{module}/save",
            write=True,
            idempotent=idempotent,
            module=module,
            number=record_key(record),
        )
        answer = self._request("POST", self._data_url(module, "save"), spec=spec, json_body=dict(record))
        body = answer.body
        stored = body.get("r")
        return SaveResult(
            ok=bool(body.get("s")),
            record=dict(stored) if isinstance(stored, Mapping) else None,
            messages=messages_of(body.get("d")),
            resent=answer.resent,
        )

    def bulk_save(
        self, module: str, records: Sequence[Mapping[str, Any]], *, idempotent: bool = True
    ) -> builtins.list[SaveResult]:
        """Save up to 100 records with one ``bulk-save.do``; one ``SaveResult`` per record, in input order.

        Each record stands on its own (the outer ``s`` is not trusted). More than 100 records: ValueError.
        """
        records = builtins.list(records)
        if len(records) > MAX_BULK_RECORDS:
            raise ValueError(
                f"Accurate bulk-save takes at most {MAX_BULK_RECORDS} records, got {len(records)}"
            )
        if not records:
            return []
        numbers = tuple(key for key in (record_key(r) for r in records) if key)
        spec = CallSpec(
            SERVICE, f"{module}/bulk-save", write=True, idempotent=idempotent, module=module, numbers=numbers
        )
        answer = self._request(
            "POST",
            self._data_url(module, "bulk-save"),
            spec=spec,
            json_body={"data": [dict(r) for r in records]},
        )
        body, results = answer.body, answer.body.get("d")
        if (
            isinstance(results, builtins.list)
            and len(results) == len(records)
            and all(isinstance(item, Mapping) for item in results)
        ):
            return [
                SaveResult(
                    ok=bool(item.get("s")),
                    record=dict(item["r"]) if isinstance(item.get("r"), Mapping) else None,
                    messages=messages_of(item.get("d")),
                    resent=answer.resent,
                )
                for item in results
            ]
        if not body.get("s"):
            reason = messages_of(results) or ["Accurate refused the bulk save without a reason"]
            return [SaveResult(ok=False, record=None, messages=reason, resent=answer.resent) for _ in records]
        raise OutcomeUnknownError(
            f"Accurate answered a bulk save of {len(records)} {module} records in an unexpected shape; "
            "look the records up before sending them again.",
            module=module,
            numbers=numbers,
        )

    def detail(self, module: str, **key: Any) -> dict[str, Any] | None:
        """One record by ``id``, ``number`` or master key (``detail(module, number="SI.1")``); None if absent.

        Accurate answers "not found" with ``s: false``; any ``s: false`` answers None (its messages are
        logged at debug level).
        """
        if not key:
            raise ValueError("detail() needs a key, e.g. id=... or number=...")
        body = self.call(module, "detail", params=key)
        if not body.get("s"):
            log.debug("Accurate %s detail %s: %s", module, key, "; ".join(messages_of(body.get("d"))))
            return None
        found = body.get("d")
        return dict(found) if isinstance(found, Mapping) else None

    def list(
        self,
        module: str,
        *,
        fields: Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        sort: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``list.do`` matching ``filters`` (see ``encode_filters``), page by page.

        ``fields`` limits the columns; ``sort`` is passed as ``sp.sort`` (e.g. ``"id|asc"``). A refusal
        raises ``AccurateBusinessError``.

        Page size: ``page_size`` if given, else the largest of ``LIST_PAGE_SIZES``. A server that refuses
        the size on the first page is asked the next smaller one; a server that serves fewer rows than
        asked (a silent cap, told in ``sp.pageSize`` or not) is paged with the size it served. Paging
        counts the rows already read, so a changed size neither skips nor repeats rows.
        """
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be positive")
        sizes = [page_size] if page_size is not None else builtins.list(LIST_PAGE_SIZES)
        base: dict[str, Any] = {}
        if fields:
            base["fields"] = ",".join(fields)
        if sort:
            base["sp.sort"] = sort
        base.update(encode_filters(filters))
        size = sizes[0]
        offset = 0  # rows already yielded
        first = True
        while True:
            page = offset // size + 1
            body = self.call(module, "list", params={**base, "sp.pageSize": size, "sp.page": page})
            if not body.get("s"):
                smaller = [s for s in sizes if s < size]
                if first and smaller:
                    log.info(
                        "Accurate refused to list %s %s rows per page (%s); asking for %s",
                        module,
                        size,
                        "; ".join(messages_of(body.get("d"))) or "no reason given",
                        smaller[0],
                    )
                    size = smaller[0]
                    continue
                reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
                raise AccurateBusinessError(
                    f"Accurate refused to list {module}: {reason}", messages=messages_of(body.get("d"))
                )
            rows = body.get("d") or []
            if not isinstance(rows, builtins.list):
                raise ApiError(f"Accurate {module}/list answered something other than a list of rows")
            paging = _mapping(body.get("sp"))
            served = _positive(paging.get("pageSize"))
            if served is None and first and 0 < len(rows) < size:
                served = len(rows)  # no sp: maybe a silent cap; the next page shows whether more exist
            served = served or size
            # Rows of this answer start at (page - 1) * served; skip those already yielded.
            skip = offset - (page - 1) * served
            if skip < 0:
                raise ApiError(
                    f"Accurate {module}/list answered page {page} with {served} rows per page, which "
                    f"would skip rows after row {offset}; the list was not completed"
                )
            fresh = rows[skip:]
            for row in fresh:
                if isinstance(row, Mapping):
                    yield dict(row)
            offset += len(fresh)
            first = False
            if not fresh:
                return
            row_count = _positive(paging.get("rowCount"))
            if row_count is not None and offset >= row_count:
                return
            if row_count is None and "pageCount" in paging and page >= int(paging["pageCount"] or 0):
                return
            if not paging and len(rows) < served:
                return
            size = served

    def find_by_numbers(
        self,
        module: str,
        numbers: Iterable[str],
        field: str = "number",
        *,
        fields: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The records among ``numbers`` that exist, keyed by number: one list call per 100 numbers.

        Rows hold ``id`` and ``field`` plus any ``fields`` asked for.
        """
        wanted = builtins.list(dict.fromkeys(str(n) for n in numbers if n not in (None, "")))
        columns = builtins.list(dict.fromkeys(["id", field, *(fields or [])]))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), MAX_BULK_RECORDS):
            chunk = wanted[start : start + MAX_BULK_RECORDS]
            chunk_set = set(chunk)
            for row in self.list(module, fields=columns, filters={field: chunk}, page_size=MAX_BULK_RECORDS):
                key = row.get(field)
                if key is not None and str(key) in chunk_set:
                    found[str(key)] = row
        return found

    def get_stock(self, item_no: str, warehouse_name: str | None = None) -> Decimal:
        """Quantity of ``item_no`` in ``warehouse_name`` (``item/get-stock.do``; None: all warehouses)."""
        params = {"no": item_no}
        if warehouse_name:
            params["warehouseName"] = warehouse_name
        where = f" in {warehouse_name}" if warehouse_name else ""
        body = self.call("item", "get-stock", params=params)
        if not body.get("s"):
            reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
            raise AccurateBusinessError(
                f"Accurate refused the stock of {item_no}{where}: {reason}",
                messages=messages_of(body.get("d")),
            )
        quantity = _stock_quantity(body.get("d"))
        if quantity is None:
            raise ApiError(f"Accurate answered the stock of {item_no}{where} without a quantity")
        return quantity

    def webhook_renew(self) -> dict[str, Any]:
        """Extend the app's webhook subscription (it lapses after 7 days); the envelope holds the expiry."""
        body = self._account_call("webhook-renew")
        if not body.get("s"):
            reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
            raise AccurateBusinessError(
                f"Accurate refused to renew the webhook: {reason}", messages=messages_of(body.get("d"))
            )
        return body

    def webhook_history(self, start: datetime, end: datetime) -> builtins.list[dict[str, Any]]:
        """Past webhook deliveries between ``start`` and ``end`` (aware datetimes), in 24-hour windows.

        Windows share their boundary second, so a delivery seen twice (same ``uuid``) is kept once.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("webhook_history needs timezone-aware datetimes")
        deliveries: builtins.list[dict[str, Any]] = []
        seen: set[str] = set()
        window_start = start
        while window_start < end:
            window_end = min(window_start + WEBHOOK_HISTORY_WINDOW, end)
            page = 1
            while True:
                params: dict[str, Any] = {
                    "from": format_accurate_datetime(window_start),
                    "to": format_accurate_datetime(window_end),
                }
                if page > 1:
                    params["sp.page"] = page
                body = self._account_call("webhook-history", params)
                if not body.get("s"):
                    reason = "; ".join(messages_of(body.get("d"))) or "no reason given"
                    raise AccurateBusinessError(
                        f"Accurate refused the webhook history: {reason}", messages=messages_of(body.get("d"))
                    )
                rows = body.get("d") or []
                for row in rows if isinstance(rows, builtins.list) else []:
                    if not isinstance(row, Mapping):
                        continue
                    key = str(row.get("uuid") or jsonlib.dumps(row, sort_keys=True, default=str))
                    if key not in seen:
                        seen.add(key)
                        deliveries.append(dict(row))
                paging = _mapping(body.get("sp"))
                if rows and page < int(paging.get("pageCount") or 0):
                    page += 1
                    continue
                break
            window_start = window_end
        return deliveries
