"""iSeller Public API client, as an Airflow hook.

- **Auth.** OAuth client credentials at ``{host}/oauth/token`` answer an access token, a refresh token
  and ``resource_url`` (the store's own base URL); every call then goes to
  ``{resource_url}/api/v2/<Method>`` (or ``/api/v3/``) with ``Authorization: Bearer``. The token is
  cached per process and connection, refreshed shortly before it expires, and a 401 on a call gets a
  new token (refresh grant, else client credentials) and one more try.
- **Retries.** 429, 5xx, timeouts and connection errors are retried with backoff honouring
  ``Retry-After``. Reads are POSTs but safe to repeat; ``create_transfer`` is a write and is re-sent
  only when the failed attempt certainly never reached iSeller, else ``OutcomeUnknownError``.
- **Business errors.** HTTP 200 with ``status: false`` and ``error_message``: a read raises
  ``IsellerBusinessError`` (bad parameters are a configuration/programming error); ``create_transfer``
  returns a ``TransferResult`` with the reason.
- **Paging.** The public doc says only "index of the page": one server may count from 0, another from 1.
  A read starts at page 0; a refusal of page 0 restarts it at 1, and the first page learned is kept
  per method. Items are de-duplicated by id (a server that answers page 0 as page 1 repeats nothing),
  reading stops when ``has_next_item`` is false or a page is empty, and two pages in a row with nothing
  new while ``has_next_item`` stays true raise ``ApiError`` instead of looping. ``page_size`` is 200
  unless told; a server that refuses the size (``status: false`` naming ``page_size``) gets the size it
  names ("at most N") or half, on the first page of a read only, and the size is kept per method.
- **time_zone.** ``GetOrders`` and ``GetRegisterShifts`` always send ``time_zone``: the shop's UTC offset
  in hours (``shop_tz``, the settings' ``timezone``, at the window's start; Asia/Jakarta: 7). The public
  doc says the server applies it to the window and to the dates it answers; the sandbox (and perhaps a
  real store) may ignore it. Which one a server does is found out once per method (``auto``): the same
  record is read with ``time_zone`` 0 and with the shop's, and its date compared. When the server
  applies it, window bounds are sent as the shop's wall time and every ``*_date`` of the answer is
  turned back into UTC before anyone reads it. Connection extra ``time_zone_semantics`` (``auto``,
  ``shifts``, ``ignored``) skips the probe when known.
- **Dates** are sent as ISO-8601 without an offset (UTC, or the shop's wall time as above) and read
  with ``parse_iseller_datetime`` (``YYYY-MM-DD HH:MM:SS`` too).
- The reads of customers, transfers and stock takes are **assumed endpoints** (iSeller documents none);
  they live in ``IsellerAssumedReads`` only, so that real endpoints replace them in one place.

Connection ``iseller_api`` (type http): host = OAuth base URL (``https://isellershop.com``), login =
client id, password = client secret, extra ``timeout`` (seconds), ``time_zone_semantics``
(``auto``|``shifts``|``ignored``), ``first_page`` (0 or 1; default: found out) and ``page_size``.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

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
from include.iseller_accurate.clients.errors import ApiError, AuthError, IsellerBusinessError
from include.iseller_accurate.clients.ratelimit import RateLimiter
from include.iseller_accurate.times import (
    ACCURATE_TZ,
    format_iseller_datetime,
    format_iseller_local,
    hours_delta,
    iseller_local_to_utc,
    parse_iseller_datetime,
    time_zone_hours,
)

log = logging.getLogger(__name__)

SERVICE = "iSeller"
#: Page size asked for unless told (the sandbox's cap; the public doc's samples use 500).
DEFAULT_PAGE_SIZE = 200
#: Largest page size the client asks for.
MAX_PAGE_SIZE = 1000
TIME_ZONE_SEMANTICS = ("auto", "shifts", "ignored")
#: Fields that identify an item of each paged list (items are de-duplicated on them).
ITEM_IDS: dict[str, tuple[str, ...]] = {
    "orders": ("order_id",),
    "refunded_orders": ("order_id", "refund_id"),
    "register_shifts": ("register_shift_id",),
    "products": ("product_id",),
    "outlets": ("id", "outlet_id"),
    "customers": ("customer_id",),
    "transfers": ("transfer_id",),
    "stock_takes": ("stock_take_id",),
}
#: The zoned reads: method, list, id filter and id field, and the date compared by the probe.
_ZONED = {
    "api/v2/GetOrders": ("orders", "order_id", "order_date"),
    "api/v2/GetRegisterShifts": ("register_shifts", "register_shift_id", "open_date"),
}
_AT_MOST = re.compile(r"at most (\d+)")
_MAX_DATE_DEPTH = 6
DEFAULT_INCLUDES = ("OrderDetails", "Transactions", "DiscountDetails")

GET_ORDERS = "api/v2/GetOrders"
GET_REGISTER_SHIFTS = "api/v2/GetRegisterShifts"
GET_PRODUCTS = "api/v2/GetProducts"
GET_STORE_INFO = "api/v2/GetStoreInfo"
GET_OUTLETS = "api/v3/GetOutlets"
CREATE_TRANSFER = "api/v3/CreateTransfer"
#: Assumed (iSeller documents no such method): complete or cancel a pending supplier transfer.
UPDATE_TRANSFER = "api/v3/UpdateTransfer"


def iseller_filters(**filters: Any) -> dict[str, Any]:
    """Request body fields from keyword filters: None dropped, datetimes as UTC ISO-8601 without offset."""
    body: dict[str, Any] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = format_iseller_datetime(value)
        elif isinstance(value, tuple):
            value = list(value)
        body[name] = value
    return body


@dataclass(frozen=True)
class TransferResult:
    """Outcome of ``CreateTransfer``: created (``ok``) or refused with iSeller's ``error_message``."""

    ok: bool
    response: dict[str, Any]
    messages: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """The refusal as one line, for the ledger and the Webhook Log page."""
        return "; ".join(self.messages)

    @property
    def transfer_id(self) -> str | None:
        """iSeller's id of the created transfer, when known."""
        value = self.response.get("transfer_id") or (self.response.get("transfer") or {}).get("transfer_id")
        return str(value) if value not in (None, "") else None

    @property
    def transfer_number(self) -> str | None:
        """iSeller's number of the created transfer, when known."""
        value = self.response.get("transfer_number") or (self.response.get("transfer") or {}).get(
            "transfer_number"
        )
        return str(value) if value not in (None, "") else None


@dataclass
class _Token:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    resource_url: str
    expires_at: float  # time.time()
    refresh_at: float  # renew from this time on, before it expires

    def fresh(self, now: float) -> bool:
        return now < self.refresh_at


_TOKENS: dict[tuple[str, str, str], _Token] = {}
_TOKEN_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_TOKENS_GUARD = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached iSeller token of this process (tests, or after a credential change)."""
    with _TOKENS_GUARD:
        _TOKENS.clear()


def _token_lock(key: tuple[str, str, str]) -> threading.Lock:
    with _TOKENS_GUARD:
        return _TOKEN_LOCKS.setdefault(key, threading.Lock())


@dataclass(frozen=True)
class _Settings:
    oauth_url: str
    client_id: str
    client_secret: str = field(repr=False)
    read_timeout: float = DEFAULT_READ_TIMEOUT
    time_zone_semantics: str = "auto"
    first_page: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE


class IsellerHook(HttpHook):
    """iSeller: OAuth token handling, paging, retries and error parsing for the store's API.

    :param iseller_conn_id: Airflow connection (default ``iseller_api``).
    :param max_retries: retries after the first attempt for 429/5xx/timeouts/connection errors.
    :param timeout: read timeout in seconds (default: extra ``timeout``, else 30); connect timeout is 10 s.
    :param rate_limiter: optional limiter every request goes through (iSeller documents no limit).
    :param shop_tz: the shop's time zone (settings ``timezone``), whose offset is sent as ``time_zone``
        (default Asia/Jakarta).
    :param time_zone_semantics: ``auto`` (find out), ``shifts`` (the server applies ``time_zone``, the
        public doc) or ``ignored``; default: connection extra, else ``auto``.
    :param first_page: 0 or 1 when known; default: connection extra, else found out.
    """

    conn_name_attr = "iseller_conn_id"
    default_conn_name = "iseller_api"
    conn_type = "http"
    hook_name = "iSeller"

    def __init__(
        self,
        iseller_conn_id: str = default_conn_name,
        *,
        max_retries: int = 6,
        timeout: float | None = None,
        rate_limiter: RateLimiter | None = None,
        shop_tz: tzinfo | None = None,
        time_zone_semantics: str | None = None,
        first_page: int | None = None,
    ) -> None:
        super().__init__(method="POST", http_conn_id=iseller_conn_id)
        if time_zone_semantics is not None and time_zone_semantics not in TIME_ZONE_SEMANTICS:
            raise ValueError(f"time_zone_semantics must be one of {TIME_ZONE_SEMANTICS}")
        if first_page not in (None, 0, 1):
            raise ValueError("first_page must be 0 or 1")
        self.shop_tz = shop_tz or ACCURATE_TZ
        self._time_zone_semantics = time_zone_semantics
        self._first_page = first_page
        #: What was found out about the server, per method: first page, page size, time_zone applied.
        self._page_start: dict[str, int] = {}
        self._page_sizes: dict[str, int] = {}
        self._shifts_dates: dict[str, bool] = {}
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.iseller_conn_id = iseller_conn_id
        self.max_retries = max_retries
        self.rate_limiter = rate_limiter
        self._timeout = timeout
        self._settings: _Settings | None = None
        self._settings_lock = threading.Lock()
        self._sessions = ThreadLocalSessions()
        self._scrub = Scrubber()
        self.assumed = IsellerAssumedReads(self)

    def __repr__(self) -> str:
        return f"IsellerHook(iseller_conn_id={self.iseller_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels of the connection form in the Airflow UI."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "OAuth URL", "login": "Client ID", "password": "Client secret"},
            "placeholders": {"host": "https://isellershop.com", "extra": jsonlib.dumps({"timeout": 30})},
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
        conn = self.get_connection(self.iseller_conn_id)
        extra = conn.extra_dejson
        secret = conn.password or ""
        self._scrub.add(secret, extra.get("webhook_api_key"))
        mask_in_airflow_logs(secret)
        name = f"Airflow connection '{self.iseller_conn_id}'"
        if not conn.host:
            raise AuthError(f"{name} has no host (the iSeller OAuth URL, e.g. https://isellershop.com)")
        if not conn.login or not secret:
            raise AuthError(f"{name} needs the iSeller client id (login) and client secret (password)")
        host = conn.host.strip().rstrip("/")
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port and not urlsplit(host).port:
            host = f"{host}:{conn.port}"
        timeout = self._timeout if self._timeout is not None else extra.get("timeout", DEFAULT_READ_TIMEOUT)
        semantics = str(extra.get("time_zone_semantics") or "auto").strip().lower()
        if semantics not in TIME_ZONE_SEMANTICS:
            choices = ", ".join(TIME_ZONE_SEMANTICS)
            raise AuthError(f"{name}: extra time_zone_semantics must be one of {choices}")
        first_page = extra.get("first_page")
        if first_page not in (None, "", 0, 1, "0", "1"):
            raise AuthError(f"{name}: extra first_page must be 0 or 1")
        page_size = extra.get("page_size") or DEFAULT_PAGE_SIZE
        try:
            page_size = int(page_size)
        except (TypeError, ValueError):
            raise AuthError(f"{name}: extra page_size must be a whole number") from None
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise AuthError(f"{name}: extra page_size must be between 1 and {MAX_PAGE_SIZE}")
        return _Settings(
            oauth_url=host,
            client_id=conn.login,
            client_secret=secret,
            read_timeout=float(timeout),
            time_zone_semantics=semantics,
            first_page=None if first_page in (None, "") else int(first_page),
            page_size=page_size,
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The calling thread's ``requests.Session`` (never with the connection's extra as headers)."""
        session = self._sessions.get()
        if headers:
            session.headers.update(headers)
        return session

    def close(self) -> None:
        """Close the pooled HTTP connections of every thread."""
        self._sessions.close()

    # -- token ---------------------------------------------------------------------------------------
    def _token_key(self) -> tuple[str, str, str]:
        settings = self.settings
        return (self.iseller_conn_id, settings.oauth_url, settings.client_id)

    def access_token(self, *, replacing: str | None = None) -> _Token:
        """A valid token (cached per process and connection, renewed before it expires).

        ``replacing``: a token the API just refused; a new one is fetched unless another thread already
        replaced it.
        """
        key = self._token_key()
        with _token_lock(key):
            now = time.time()
            current = _TOKENS.get(key)
            if current is not None and current.fresh(now) and current.access_token != replacing:
                self._scrub.add(current.access_token, current.refresh_token)
                return current
            token: _Token | None = None
            if current is not None and current.refresh_token:
                try:
                    token = self._fetch_token(
                        {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
                    )
                except (AuthError, ApiError) as exc:
                    log.info("iSeller refused the token refresh (%s); asking for a new token", exc)
            if token is None:
                token = self._fetch_token({"grant_type": "client_credentials"})
            with _TOKENS_GUARD:
                _TOKENS[key] = token
            return token

    def _fetch_token(self, grant: dict[str, str]) -> _Token:
        settings = self.settings
        form = {**grant, "client_id": settings.client_id, "client_secret": settings.client_secret}
        url = f"{settings.oauth_url}/oauth/token"
        spec = CallSpec(SERVICE, f"oauth/token ({grant['grant_type']})")

        def attempt(state: CallState) -> dict[str, Any]:
            response = self._send("POST", url, spec=spec, data=form, headers={})
            status = response.status_code
            if is_retryable_status(status):
                raise self._retryable(response)
            try:
                body = load_json(response.content)
            except ValueError:
                body = None
            if status >= 400 or not isinstance(body, Mapping) or not body.get("access_token"):
                error = None
                if isinstance(body, Mapping):
                    error = body.get("error_description") or body.get("error")
                detail = error or body_snippet(response) or "no reason given"
                raise AuthError(
                    self._scrub(
                        f"iSeller refused the {grant['grant_type']} token request of Airflow connection "
                        f"'{self.iseller_conn_id}' (HTTP {status}: {detail}). Check the client id and secret."
                    ),
                    status_code=status,
                )
            return dict(body)

        body = run_with_retries(spec, attempt, max_retries=self.max_retries, log=log)
        access, refresh = str(body["access_token"]), body.get("refresh_token")
        self._scrub.add(access, refresh)
        mask_in_airflow_logs(access)
        mask_in_airflow_logs(refresh)
        resource_url = str(body.get("resource_url") or settings.oauth_url).strip().rstrip("/")
        if "://" not in resource_url:
            resource_url = f"https://{resource_url}"
        lifetime = float(body.get("expires_in") or 3600)
        now = time.time()
        return _Token(
            access_token=access,
            refresh_token=str(refresh) if refresh else None,
            resource_url=resource_url,
            expires_at=now + lifetime,
            refresh_at=now + lifetime - min(300.0, lifetime * 0.1),
        )

    # -- transport -----------------------------------------------------------------------------------
    def _slot(self) -> AbstractContextManager[None]:
        return self.rate_limiter.slot() if self.rate_limiter is not None else nullcontext()

    def _send(
        self,
        method: str,
        url: str,
        *,
        spec: CallSpec,
        headers: dict[str, str],
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> requests.Response:
        session = self.get_conn()
        payload: bytes | Mapping[str, str] | None = data
        if json_body is not None:
            headers = {**headers, "Content-Type": "application/json"}
            payload = jsonutil.dumps(json_body).encode("utf-8")
        started = time.monotonic()
        try:
            with self._slot():
                response = session.request(
                    method,
                    url,
                    data=payload,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, self.settings.read_timeout),
                    allow_redirects=False,
                )
        except RETRYABLE_EXCEPTIONS as exc:
            raise RetryableFailure(
                self._scrub(describe_exception(exc)), possibly_sent=request_possibly_sent(exc)
            ) from None
        except requests.RequestException as exc:
            raise ApiError(
                self._scrub(f"iSeller {spec.what}: request failed ({type(exc).__name__})")
            ) from None
        log.debug("iSeller %s -> %s in %.2f s", spec.what, response.status_code, time.monotonic() - started)
        return response

    @staticmethod
    def _retryable(response: requests.Response) -> RetryableFailure:
        status = response.status_code
        return RetryableFailure(
            "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})",
            status_code=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            possibly_sent=status != 429,
        )

    def _post(self, path: str, body: Mapping[str, Any] | None, *, write: bool = False) -> dict[str, Any]:
        """POST a method with the bearer token; one token renewal on 401; retries. Returns the JSON body."""
        path = path.strip("/")
        spec = CallSpec(
            SERVICE,
            path.rsplit("/", 1)[-1],
            write=write,
            idempotent=not write,
            module=path.rsplit("/", 1)[-1],
            number=str(body.get("reference_code")) if write and body and body.get("reference_code") else None,
        )
        renewed = False

        def attempt(state: CallState) -> dict[str, Any]:
            nonlocal renewed
            token = self.access_token()
            response = self._send(
                "POST",
                f"{token.resource_url}/{path}",
                spec=spec,
                headers={"Authorization": f"Bearer {token.access_token}"},
                json_body=dict(body or {}),
            )
            if response.status_code == 401 and not renewed:
                # An expired or revoked token was refused before anything happened: renew and try once more.
                renewed = True
                log.info("iSeller refused the access token; renewing it and trying %s again", spec.what)
                token = self.access_token(replacing=token.access_token)
                response = self._send(
                    "POST",
                    f"{token.resource_url}/{path}",
                    spec=spec,
                    headers={"Authorization": f"Bearer {token.access_token}"},
                    json_body=dict(body or {}),
                )
            return self._parse(response, spec)

        return run_with_retries(spec, attempt, max_retries=self.max_retries, log=log)

    def _parse(self, response: requests.Response, spec: CallSpec) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise AuthError(
                self._scrub(
                    f"iSeller refused the access token for {spec.what} (HTTP {status}: "
                    f"{self._error_text(response) or 'no reason given'}). Check the client id and secret of "
                    f"Airflow connection '{self.iseller_conn_id}' and the app's access to the store."
                ),
                status_code=status,
            )
        if is_retryable_status(status):
            raise self._retryable(response)
        try:
            body = load_json(response.content)
        except ValueError:
            if 200 <= status < 300:
                raise RetryableFailure(
                    f"HTTP {status} with an answer that is not JSON", status_code=status, possibly_sent=True
                ) from None
            body = None
        if isinstance(body, dict) and (200 <= status < 300 or "status" in body):
            return body
        if 200 <= status < 300:
            raise RetryableFailure(
                f"HTTP {status} with an unexpected answer", status_code=status, possibly_sent=True
            )
        raise ApiError(
            self._scrub(f"iSeller {spec.what}: HTTP {status}: {body_snippet(response)}"), status_code=status
        )

    @staticmethod
    def _error_text(response: requests.Response) -> str:
        try:
            body = load_json(response.content)
        except ValueError:
            return body_snippet(response)
        if isinstance(body, Mapping):
            return str(body.get("error_message") or body.get("error_description") or body.get("error") or "")
        return ""

    # -- API -----------------------------------------------------------------------------------------
    def call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call a read method (``"api/v2/GetOrders"``) and return its JSON body (fractions as Decimal).

        ``status: false`` raises ``IsellerBusinessError`` with iSeller's ``error_message``.
        """
        answer = self._post(path, body)
        if answer.get("status") is False:
            message = str(answer.get("error_message") or "no reason given")
            raise IsellerBusinessError(
                self._scrub(f"iSeller refused {path.strip('/').rsplit('/', 1)[-1]}: {message}"),
                messages=[message],
            )
        return answer

    def paginate_pages(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        items_keys: Sequence[str],
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Raw pages of a paged read, every item once, until ``has_next_item`` is false.

        Starts at page 0 unless the first page is known (a refusal of page 0 restarts at 1); drops
        items already answered (by their ids, ``ITEM_IDS``); stops on an empty page; adapts
        ``page_size`` to a server that refuses it (first page only). See the module docstring.
        """
        if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        key = path.strip("/")
        size = self._page_sizes.get(key) or page_size or self.settings.page_size
        known = self._first_page if self._first_page is not None else self.settings.first_page
        page = known if known is not None else self._page_start.get(key, 0)
        seen: dict[str, set[tuple[str, ...]]] = {name: set() for name in items_keys}
        first_ids: set[tuple[str, ...]] | None = None
        stale = 0
        fetched = 0
        while True:
            try:
                answer = self.call(key, {**dict(body or {}), "page": page, "page_size": size})
            except (IsellerBusinessError, ApiError) as exc:
                retry = self._after_refusal(key, exc, fetched, page, size, known)
                if retry is None:
                    raise
                page, size = retry
                continue
            fetched += 1
            if fetched == 1 and known is None:
                self._page_start.setdefault(key, page)
            new = 0
            ids_here: set[tuple[str, ...]] = set()
            cleaned = dict(answer)
            for name in items_keys:
                items = answer.get(name) or []
                if not isinstance(items, list):
                    continue
                kept = []
                for item in items:
                    ident = _item_id(name, item)
                    if ident is not None:
                        ids_here.add((name, *ident))
                        if ident in seen[name]:
                            continue
                        seen[name].add(ident)
                    kept.append(item)
                new += len(kept)
                cleaned[name] = kept
            if fetched == 1:
                first_ids = ids_here
            elif fetched == 2 and page == 1 and ids_here and ids_here == first_ids and known is None:
                # Page 0 was answered as page 1: this server counts from 1; start there next time.
                self._page_start[key] = 1
            empty = all(not answer.get(name) for name in items_keys)
            yield cleaned
            if not answer.get("has_next_item") or empty:
                return
            stale = stale + 1 if new == 0 else 0
            if stale >= 2:
                raise ApiError(
                    f"iSeller {key.rsplit('/', 1)[-1]} answered nothing new on pages {page - 1} and {page} "
                    "while saying more items follow; paging is not working, stopping instead of looping"
                )
            page += 1

    def _after_refusal(
        self, key: str, exc: Exception, fetched: int, page: int, size: int, known: int | None
    ) -> tuple[int, int] | None:
        """The page and size to try after a refusal of the first page, or None to give up."""
        if fetched:
            return None
        if not isinstance(exc, IsellerBusinessError) and getattr(exc, "status_code", None) != 400:
            return None
        text = str(exc).lower()
        if "page_size" in text:
            limit = _AT_MOST.search(text)
            smaller = int(limit.group(1)) if limit else size // 2
            if 1 <= smaller < size:
                log.info("iSeller refused page_size %d for %s; using %d", size, key, smaller)
                self._page_sizes[key] = smaller
                return page, smaller
            return None
        if page == 0 and known is None and "page" in text:
            log.info("iSeller refused page 0 for %s; its pages start at 1", key)
            self._page_start[key] = 1
            return 1, size
        return None

    def paginate(
        self, path: str, body: Mapping[str, Any] | None, items_key: str, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of ``items_key`` over all pages of a paged read."""
        for answer in self.paginate_pages(path, body, (items_key,), page_size):
            yield from answer.get(items_key) or []

    def get_orders_pages(
        self,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        outlet_id: str | None = None,
        register_id: str | None = None,
        order_id: str | None = None,
        includes: Iterable[str] | None = DEFAULT_INCLUDES,
        *,
        page_size: int | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Raw GetOrders pages (each with ``orders`` and ``refunded_orders``), every page fetched once.

        ``*_after`` bounds are inclusive, ``*_before`` exclusive (sandbox convention). Sorted ascending by
        ModifiedDate when only modified bounds are given, else by CreatedDate, so paging is stable.
        ``includes=None`` lets iSeller answer every nested list. Other filters (``customer_id``,
        ``payment_status``, ...) pass through.
        """
        only_modified = (modified_after or modified_before) and not (created_after or created_before)
        raw: dict[str, Any] = dict(
            created_after=created_after,
            created_before=created_before,
            modified_after=modified_after,
            modified_before=modified_before,
            outlet_id=outlet_id,
            register_id=register_id,
            order_id=order_id,
            includes=list(includes) if includes is not None else None,
            sort="ModifiedDate" if only_modified else "CreatedDate",
            sort_direction="asc",
        )
        raw.update(filters)
        yield from self._zoned_pages(GET_ORDERS, raw, ("orders", "refunded_orders"), page_size)

    # -- time_zone -----------------------------------------------------------------------------------
    def _zoned_pages(
        self, path: str, filters: dict[str, Any], items_keys: Sequence[str], page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """A paged read that takes ``time_zone``: the shop's offset at the window's start is sent,
        the window written and the answer's dates read the way the server applies it."""
        anchor = next(
            (v for k, v in sorted(filters.items()) if k.endswith("_after") and isinstance(v, datetime)),
            None,
        ) or datetime.now(UTC)
        hours = time_zone_hours(self.shop_tz, anchor)
        offset = hours_delta(hours) if self._server_shifts(path, hours) else None
        body: dict[str, Any] = {}
        for name, value in filters.items():
            if isinstance(value, datetime) and offset is not None:
                body[name] = format_iseller_local(value, offset)
            else:
                body.update(iseller_filters(**{name: value}))
        body["time_zone"] = hours
        for page in self.paginate_pages(path, body, items_keys, page_size):
            if offset is not None:
                for name in items_keys:
                    if isinstance(page.get(name), list):
                        page[name] = [_dates_to_utc(item, offset) for item in page[name]]
            yield page

    def _server_shifts(self, path: str, hours: int | Decimal) -> bool:
        """Whether the server applies ``time_zone`` to windows and dates of ``path`` (see the module
        docstring). Found out once per method by reading one record with ``time_zone`` 0 and with
        ``hours``; an offset of 0 makes no difference either way."""
        semantics = self._time_zone_semantics or self.settings.time_zone_semantics
        if semantics != "auto":
            return semantics == "shifts"
        if path in self._shifts_dates:
            return self._shifts_dates[path]
        if not hours:
            return False
        items_key, id_field, date_field = _ZONED[path]
        light: dict[str, Any] = {"includes": []} if path == GET_ORDERS else {}

        def first(body: dict[str, Any]) -> dict[str, Any] | None:
            for page in self.paginate_pages(path, {**light, **body}, (items_key,), 1):
                items = page.get(items_key) or []
                return items[0] if items and isinstance(items[0], dict) else None
            return None

        record = first({"time_zone": 0})
        if record is None or not record.get(id_field) or not isinstance(record.get(date_field), str):
            return False  # nothing to compare yet (an empty store reads nothing wrong); ask next time
        again = first({"time_zone": hours, id_field: record[id_field]})
        if again is None or not isinstance(again.get(date_field), str):
            return False
        try:
            plain = parse_iseller_datetime(record[date_field])
            zoned = parse_iseller_datetime(again[date_field])
        except ValueError:
            return False
        moved = zoned - plain
        if moved == hours_delta(hours):
            shifts = True
        elif moved == timedelta(0):
            shifts = False
        else:
            raise ApiError(
                f"iSeller {path.rsplit('/', 1)[-1]} moved {id_field} {record[id_field]}'s {date_field} by "
                f"{moved} when asked for time_zone {hours}: neither applied nor ignored. Set the iSeller "
                "connection's extra time_zone_semantics to shifts or ignored after checking one order"
            )
        log.info(
            "iSeller %s %s time_zone", path.rsplit("/", 1)[-1], "applies" if shifts else "ignores"
        )
        self._shifts_dates[path] = shifts
        return shifts

    def get_orders(
        self,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        outlet_id: str | None = None,
        register_id: str | None = None,
        order_id: str | None = None,
        includes: Iterable[str] | None = DEFAULT_INCLUDES,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Orders matching the filters (see ``get_orders_pages``); refunds: ``get_refunded_orders``."""
        for page in self.get_orders_pages(
            created_after,
            created_before,
            modified_after,
            modified_before,
            outlet_id,
            register_id,
            order_id,
            includes,
            **filters,
        ):
            yield from page.get("orders") or []

    def get_refunded_orders(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Refunds (``refunded_orders``) matching the same filters as ``get_orders``."""
        for page in self.get_orders_pages(**filters):
            yield from page.get("refunded_orders") or []

    def get_register_shifts(
        self,
        outlet_id: str | None = None,
        register_id: str | None = None,
        register_shift_id: str | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Register shifts (``GetRegisterShifts``); date filters such as ``created_after`` pass through."""
        raw = dict(
            outlet_id=outlet_id, register_id=register_id, register_shift_id=register_shift_id, **filters
        )
        for page in self._zoned_pages(GET_REGISTER_SHIFTS, raw, ("register_shifts",)):
            yield from page.get("register_shifts") or []

    def get_products(
        self,
        modified_after: datetime | None = None,
        track_inventory: bool | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Products (``GetProducts``); note that a product's ``sku`` may be empty."""
        body = iseller_filters(modified_after=modified_after, track_inventory=track_inventory, **filters)
        return self.paginate(GET_PRODUCTS, body, "products")

    def get_outlets(self) -> list[dict[str, Any]]:
        """Every outlet (``/api/v3/GetOutlets``): ``id``, ``outlet_code``, ``name``, ``is_active``."""
        return list(self.paginate(GET_OUTLETS, {}, "outlets"))

    def get_store_info(self) -> dict[str, Any]:
        """The store's name and ``active_outlets`` (``GetStoreInfo``)."""
        return self.call(GET_STORE_INFO, {})

    def get_customers(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Customers (assumed endpoint, see ``IsellerAssumedReads``)."""
        return self.assumed.get_customers(**filters)

    def get_transfers(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Transfers (assumed endpoint, see ``IsellerAssumedReads``)."""
        return self.assumed.get_transfers(**filters)

    def get_stock_takes(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Stock takes (assumed endpoint, see ``IsellerAssumedReads``)."""
        return self.assumed.get_stock_takes(**filters)

    def create_transfer(self, payload: Mapping[str, Any]) -> TransferResult:
        """Create a supplier transfer in iSeller (``/api/v3/CreateTransfer``, goods in or returned out).

        A refusal (``status: false``) is a result, not an exception. Never re-sent once it may have
        reached iSeller: a lost answer raises ``OutcomeUnknownError`` (look it up by ``reference_code``).
        """
        answer = self._post(CREATE_TRANSFER, payload, write=True)
        if answer.get("status") is False:
            return TransferResult(
                ok=False,
                response=answer,
                messages=[str(answer.get("error_message") or "refused without a reason")],
            )
        return TransferResult(ok=True, response=answer)

    def update_transfer(self, payload: Mapping[str, Any]) -> TransferResult:
        """Complete or cancel a pending supplier transfer (assumed ``/api/v3/UpdateTransfer``:
        ``{reference_code, status: "completed"|"cancelled", products: [{sku, quantity}]}``).

        Like :meth:`create_transfer`: a refusal is a result; a lost answer raises
        ``OutcomeUnknownError`` (look the transfer's status up by ``reference_code``).
        """
        answer = self._post(UPDATE_TRANSFER, payload, write=True)
        if answer.get("status") is False:
            return TransferResult(
                ok=False,
                response=answer,
                messages=[str(answer.get("error_message") or "refused without a reason")],
            )
        return TransferResult(ok=True, response=answer)

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection from the Airflow UI: get a token and read the store's info."""
        try:
            token = self.access_token()
            info = self.get_store_info()
        except Exception as exc:
            return False, self._scrub(str(exc))
        return True, f"Connected to iSeller store {info.get('store_name') or '?'} at {token.resource_url}"


def _item_id(items_key: str, item: Any) -> tuple[str, ...] | None:
    """The id of an item of a paged list (None: it has none, it is never dropped as a repeat)."""
    fields = ITEM_IDS.get(items_key)
    if not fields or not isinstance(item, Mapping):
        return None
    values = tuple(str(item.get(name)) if item.get(name) not in (None, "") else "" for name in fields)
    return values if any(values) else None


def _dates_to_utc(value: Any, offset: timedelta, depth: int = 0) -> Any:
    """A copy of an answered record with every ``*_date`` string read as the wall time at UTC+offset
    and written back in UTC (a value that is not a date is left for the mapping to refuse)."""
    if depth > _MAX_DATE_DEPTH:
        return value
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if isinstance(key, str) and key.endswith("_date") and isinstance(item, str) and item.strip():
                try:
                    item = iseller_local_to_utc(item, offset)
                except ValueError:
                    pass
            elif isinstance(item, dict | list):
                item = _dates_to_utc(item, offset, depth + 1)
            result[key] = item
        return result
    if isinstance(value, list):
        return [_dates_to_utc(item, offset, depth + 1) for item in value]
    return value


class IsellerAssumedReads:
    """The reads iSeller does not document (customers, transfers, stock takes): the one seam to replace.

    The paths, item keys and filters below are the project's assumptions, served by the sandbox in the
    same style as GetOrders (``page``/``page_size``, ``has_next_item``, ``*_after``/``*_before``).
    """

    CUSTOMERS = ("api/v3/GetCustomers", "customers")
    TRANSFERS = ("api/v3/GetTransfers", "transfers")
    STOCK_TAKES = ("api/v3/GetStockTakes", "stock_takes")

    def __init__(self, hook: IsellerHook) -> None:
        self.hook = hook

    def get_customers(
        self,
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        customer_id: str | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Customers, with ``customer_number`` (their ID number) when they have one."""
        body = iseller_filters(
            modified_after=modified_after, modified_before=modified_before, customer_id=customer_id, **filters
        )
        return self.hook.paginate(self.CUSTOMERS[0], body, self.CUSTOMERS[1])

    def get_transfers(
        self,
        transfer_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Transfers; ``transfer_type`` is ``outlet``, ``in`` or ``out``.

        Sandbox filters: ``status``, ``outlet_id``, ``reference_code``, ``transfer_id`` and date bounds.
        """
        body = iseller_filters(
            type=transfer_type,
            created_after=created_after,
            created_before=created_before,
            modified_after=modified_after,
            modified_before=modified_before,
            **filters,
        )
        return self.hook.paginate(self.TRANSFERS[0], body, self.TRANSFERS[1])

    def get_stock_takes(
        self,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        outlet_id: str | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Stock takes with system and counted quantities per line."""
        body = iseller_filters(
            created_after=created_after, created_before=created_before, outlet_id=outlet_id, **filters
        )
        return self.hook.paginate(self.STOCK_TAKES[0], body, self.STOCK_TAKES[1])
