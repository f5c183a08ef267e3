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
- **Reads** are declared once, in ``READS`` of ``iseller_reads`` (path, result key, paging, ``time_zone``);
  ``read(name, **filters)`` reads any of them. Customers, transfers and stock takes are **assumed
  endpoints** (iSeller documents none), marked ``assumed`` there: real endpoints replace them in that row.

Connection ``iseller_api`` (type http): host = OAuth base URL (``https://isellershop.com``), login =
client id, password = client secret, extra ``timeout`` (seconds), ``time_zone_semantics``
(``auto``|``shifts``|``ignored``), ``first_page`` (0 or 1; default: found out) and ``page_size``.
"""

from __future__ import annotations

import json as jsonlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import requests

from include.iseller_accurate import jsonutil
from include.iseller_accurate.clients._hook import _ApiHook, normalise_url
from include.iseller_accurate.clients._transport import (
    DEFAULT_READ_TIMEOUT,
    CallSpec,
    CallState,
    body_snippet,
    is_retryable_status,
    load_json,
    mask_in_airflow_logs,
)
from include.iseller_accurate.clients.errors import ApiError, AuthError, IsellerBusinessError
from include.iseller_accurate.clients.iseller_reads import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    IsellerReads,
)
from include.iseller_accurate.clients.ratelimit import RateLimiter
from include.iseller_accurate.times import ACCURATE_TZ

log = logging.getLogger(__name__)

SERVICE = "iSeller"
TIME_ZONE_SEMANTICS = ("auto", "shifts", "ignored")
CREATE_TRANSFER = "api/v3/CreateTransfer"
#: Assumed (iSeller documents no such method): complete or cancel a pending supplier transfer.
UPDATE_TRANSFER = "api/v3/UpdateTransfer"


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


class IsellerHook(_ApiHook[_Settings]):
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
    hook_name = "iSeller"
    service = SERVICE
    envelope_key = "status"
    _api_log = log

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
        super().__init__(iseller_conn_id, "POST", max_retries, timeout, rate_limiter)
        if time_zone_semantics is not None and time_zone_semantics not in TIME_ZONE_SEMANTICS:
            raise ValueError(f"time_zone_semantics must be one of {TIME_ZONE_SEMANTICS}")
        if first_page not in (None, 0, 1):
            raise ValueError("first_page must be 0 or 1")
        self.shop_tz = shop_tz or ACCURATE_TZ
        self.iseller_conn_id = iseller_conn_id
        #: The reads, and what was found out about the server per method (first page, size, time_zone).
        self._reads = IsellerReads(self, first_page=first_page, time_zone_semantics=time_zone_semantics)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels of the connection form in the Airflow UI."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "OAuth URL", "login": "Client ID", "password": "Client secret"},
            "placeholders": {"host": "https://isellershop.com", "extra": jsonlib.dumps({"timeout": 30})},
        }

    # -- connection ----------------------------------------------------------------------------------
    def _load_settings(self) -> _Settings:
        conn = self.get_connection(self.iseller_conn_id)
        extra = conn.extra_dejson
        secret = conn.password or ""
        self._scrub.add(secret, extra.get("webhook_api_key"))
        mask_in_airflow_logs(secret)
        name = self._conn_label
        if not conn.host:
            raise AuthError(f"{name} has no host (the iSeller OAuth URL, e.g. https://isellershop.com)")
        if not conn.login or not secret:
            raise AuthError(f"{name} needs the iSeller client id (login) and client secret (password)")
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
            oauth_url=self._base_url(conn),
            client_id=conn.login,
            client_secret=secret,
            read_timeout=self._read_timeout(extra),
            time_zone_semantics=semantics,
            first_page=None if first_page in (None, "") else int(first_page),
            page_size=page_size,
        )

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
            response = self._send_once("POST", url, spec=spec, data=form, headers={})
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

        body = self._run(spec, attempt)
        access, refresh = str(body["access_token"]), body.get("refresh_token")
        self._scrub.add(access, refresh)
        mask_in_airflow_logs(access)
        mask_in_airflow_logs(refresh)
        resource_url = normalise_url(body.get("resource_url") or settings.oauth_url)
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
        payload = jsonutil.dumps(dict(body or {})).encode("utf-8")
        renewed = False

        def send(token: _Token) -> requests.Response:
            headers = {"Authorization": f"Bearer {token.access_token}", "Content-Type": "application/json"}
            return self._send_once(
                "POST", f"{token.resource_url}/{path}", spec=spec, headers=headers, data=payload
            )

        def attempt(state: CallState) -> dict[str, Any]:
            nonlocal renewed
            token = self.access_token()
            response = send(token)
            if response.status_code == 401 and not renewed:
                # An expired or revoked token was refused before anything happened: renew and try once more.
                renewed = True
                log.info("iSeller refused the access token; renewing it and trying %s again", spec.what)
                response = send(self.access_token(replacing=token.access_token))
            return self._parse(response, spec)

        return self._run(spec, attempt)

    def _auth_message(self, response: requests.Response, spec: CallSpec) -> str:
        return (
            f"iSeller refused the access token for {spec.what} (HTTP {response.status_code}: "
            f"{self._error_text(response) or 'no reason given'}). Check the client id and secret of "
            f"{self._conn_label} and the app's access to the store."
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

    def read(self, name: str, *, page_size: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """The items of read ``name`` of ``READS`` (``orders``, ``products``, ``transfers``, ...), all pages.

        Filters are body fields (None dropped, datetimes as UTC ISO-8601 without offset, or the shop's wall
        time where the server applies ``time_zone``); ``*_after`` inclusive, ``*_before`` exclusive.
        """
        return self._reads.read(name, page_size=page_size, **filters)

    def read_pages(
        self, name: str, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """The raw pages of read ``name`` (each with all its lists), every item once."""
        return self._reads.read_pages(name, page_size=page_size, **filters)

    def paginate(
        self, path: str, body: Mapping[str, Any] | None, items_key: str, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of ``items_key`` over all pages of any paged read method (``IsellerReads.pages``)."""
        for answer in self._reads.pages(path, body, (items_key,), page_size):
            yield from answer.get(items_key) or []

    # The reads the rest of the code names (filters: see ``READS`` and ``read``).
    def get_orders_pages(self, *, page_size: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Raw GetOrders pages (``orders`` and ``refunded_orders``); ``includes=None``: every nested list."""
        return self.read_pages("orders", page_size=page_size, **filters)

    def get_orders(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Orders (``created_after``, ``modified_before``, ``outlet_id``, ``order_id``, ``includes``, ...)."""
        return self.read("orders", **filters)

    def get_refunded_orders(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Refunds (``refunded_orders``) matching the same filters as ``get_orders``."""
        return self.read("refunded_orders", **filters)

    def get_register_shifts(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Register shifts (``outlet_id``, ``register_id``, ``register_shift_id``, date bounds)."""
        return self.read("register_shifts", **filters)

    def get_products(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Products (``modified_after``, ``track_inventory``, ...); a product's ``sku`` may be empty."""
        return self.read("products", **filters)

    def get_outlets(self) -> list[dict[str, Any]]:
        """Every outlet: ``id``, ``outlet_code``, ``name``, ``is_active``."""
        return list(self.read("outlets"))

    def get_store_info(self) -> dict[str, Any]:
        """The store's ``store_name`` and ``active_outlets`` (``GetStoreInfo``), whichever shape iSeller
        answers: flat, or wrapped in ``store_info`` (public doc); see :func:`store_info_of`."""
        return store_info_of(next(self.read("store_info")))

    def get_customers(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Customers (an assumed read, see ``READS``)."""
        return self.read("customers", **filters)

    def get_transfers(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Transfers, ``transfer_type`` ``outlet``, ``in`` or ``out`` (an assumed read, see ``READS``)."""
        return self.read("transfers", **filters)

    def get_stock_takes(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Stock takes (an assumed read, see ``READS``)."""
        return self.read("stock_takes", **filters)

    def create_transfer(self, payload: Mapping[str, Any]) -> TransferResult:
        """Create a supplier transfer in iSeller (``/api/v3/CreateTransfer``, goods in or returned out).

        A refusal (``status: false``) is a result, not an exception. Never re-sent once it may have
        reached iSeller: a lost answer raises ``OutcomeUnknownError`` (look it up by ``reference_code``).
        """
        return self._write_transfer(CREATE_TRANSFER, payload)

    def update_transfer(self, payload: Mapping[str, Any]) -> TransferResult:
        """Complete or cancel a pending supplier transfer (assumed ``/api/v3/UpdateTransfer``:
        ``{reference_code, status: "completed"|"cancelled", products: [{sku, quantity}]}``).

        Like :meth:`create_transfer`: a refusal is a result; a lost answer raises
        ``OutcomeUnknownError`` (look the transfer's status up by ``reference_code``).
        """
        return self._write_transfer(UPDATE_TRANSFER, payload)

    def _write_transfer(self, path: str, payload: Mapping[str, Any]) -> TransferResult:
        answer = self._post(path, payload, write=True)
        if answer.get("status") is False:
            message = str(answer.get("error_message") or "refused without a reason")
            return TransferResult(ok=False, response=answer, messages=[message])
        return TransferResult(ok=True, response=answer)

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection from the Airflow UI: get a token and read the store's info."""
        try:
            token = self.access_token()
            info = self.get_store_info()
        except Exception as exc:
            return False, self._scrub(str(exc))
        return True, f"Connected to iSeller store {info.get('store_name') or '?'} at {token.resource_url}"


def store_info_of(answer: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GetStoreInfo`` answer as one flat dict: the public doc wraps the fields in ``store_info``,
    older answers have them at the top (both: the wrapped ones win). Each of ``active_outlets`` carries
    both ``outlet_name`` (public doc) and ``name``, whichever the answer gave."""
    info = {key: value for key, value in answer.items() if key != "store_info"}
    wrapped = answer.get("store_info")
    if isinstance(wrapped, Mapping):
        info.update(wrapped)
    outlets = info.get("active_outlets")
    if isinstance(outlets, list):
        info["active_outlets"] = [
            {
                **outlet,
                "outlet_name": outlet.get("outlet_name") or outlet.get("name"),
                "name": outlet.get("name") or outlet.get("outlet_name"),
            }
            if isinstance(outlet, Mapping)
            else outlet
            for outlet in outlets
        ]
    return info
