"""Accurate Online: signing, the two hosts and host discovery, the OAuth session mode, and the transport
of every call (``AccurateAccess``; ``AccurateHook`` adds the modules' calls).

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
- **Variants of the public material.** Discovery reads the database under ``data usaha``, ``database``
  or a top-level ``host``. A redirect to another site is followed only when discovery, asked again,
  names that origin.
- **OAuth session mode** (extra ``auth_mode: oauth``): password = OAuth access token; ``db-list.do`` /
  ``open-db.do`` give the data host and a session sent as ``X-Session-ID``; a 401 on a data call renews
  the session once (``db-refresh-session.do``, else ``open-db.do``) and re-sends the call.
- **Secrets** never reach logs, exception messages or reprs.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json as jsonlib
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from include.iseller_accurate import jsonutil
from include.iseller_accurate.clients._hook import _ApiHook, normalise_url
from include.iseller_accurate.clients._transport import (
    DEFAULT_READ_TIMEOUT,
    CallSpec,
    CallState,
    body_snippet,
    load_json,
    mask_in_airflow_logs,
)
from include.iseller_accurate.clients.accurate_answers import (
    as_mapping,
    discovered_database,
    host_of,
    messages_of,
    origin,
    reason_of,
    same_site,
)
from include.iseller_accurate.clients.errors import ApiError, AuthError
from include.iseller_accurate.clients.ratelimit import RateLimiter

log = logging.getLogger(__name__)

SERVICE = "Accurate"
#: How long a discovered data host is trusted before asking the account host again.
DISCOVERY_TTL = timedelta(days=30)
MAX_REDIRECTS = 5
SIGNATURE_ENCODINGS = ("base64", "hex")
AUTH_MODES = ("api_token", "oauth")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def sign_timestamp(secret: str, timestamp: str, encoding: str = "base64") -> str:
    """HMAC-SHA256 of ``timestamp`` keyed with ``secret``, encoded as Base64 (default) or lowercase hex."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8"), hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    raise ValueError(f"unknown signature encoding {encoding!r} (use one of {SIGNATURE_ENCODINGS})")


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


class AccurateAccess(_ApiHook[_Settings]):
    """How a call reaches Accurate: the connection, signing, host discovery, the OAuth session, redirects
    and the answer's status. ``AccurateHook`` adds the modules' calls (its docstring lists the parameters).
    """

    conn_name_attr = "accurate_conn_id"
    default_conn_name = "accurate_api"
    hook_name = "Accurate Online"
    service = SERVICE
    envelope_key = "s"
    _api_log = log

    def __init__(
        self,
        accurate_conn_id: str = default_conn_name,
        *,
        rate_limiter: RateLimiter | None = None,
        max_retries: int = 6,
        timeout: float | None = None,
    ) -> None:
        super().__init__(accurate_conn_id, "GET", max_retries, timeout, rate_limiter)
        self.accurate_conn_id = accurate_conn_id
        self._host: _Discovered | None = None
        self._host_lock = threading.RLock()

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
    def _load_settings(self) -> _Settings:
        conn = self.get_connection(self.accurate_conn_id)
        extra = conn.extra_dejson
        token = conn.password or ""
        secret = str(extra.get("signature_secret") or "")
        self._scrub.add(token, secret, extra.get("webhook_token"))
        for value in (token, secret):
            mask_in_airflow_logs(value)
        name = self._conn_label
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
        return _Settings(
            account_url=self._base_url(conn),
            token=token,
            signature_secret=secret,
            signature_encoding=encoding,
            read_timeout=self._read_timeout(extra),
            auth_mode=auth_mode,
            database_id=database_id,
        )

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
        body = self._account_call("api-token", what="api-token (host discovery)")
        if not body.get("s"):
            reason = reason_of(body)
            raise AuthError(self._scrub(f"Accurate refused host discovery for this API token: {reason}"))
        host, database = discovered_database(as_mapping(body.get("d")))
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
            reason = reason_of(body)
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
            reason = reason_of(body)
            raise AuthError(self._scrub(f"Accurate refused to open database {database_id}: {reason}"))
        inner = as_mapping(body.get("d"))
        host = normalise_url(body.get("host") or inner.get("host"))
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
                inner = as_mapping(body.get("d"))
                session = str(inner.get("session") or body.get("session") or "").strip()
                if body.get("s") and session:
                    self._scrub.add(session)
                    host = normalise_url(inner.get("host") or body.get("host")) or current.host
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

        return self._run(spec, attempt)

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
        data = jsonutil.dumps(json_body).encode("utf-8") if json_body is not None else None
        current, current_params = url, dict(params) if params else None
        # Signed once per attempt and sent unchanged on every hop: a redirect to another host keeps
        # Authorization, the timestamp and its signature (and the OAuth session).
        headers = self.signed_headers()
        if session is not None:
            headers["X-Session-ID"] = session
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send_once(
                method, current, spec=spec, params=current_params, data=data, headers=headers
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
        known = {host_of(current), host_of(self.settings.account_url)}
        target_host = host_of(target)
        if urlsplit(current).scheme == "https" and urlsplit(target).scheme != "https":
            raise ApiError("Accurate redirected from https to plain http; not followed")
        if any(same_site(host, target_host) for host in known if host):
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

    def _auth_message(self, response: requests.Response, spec: CallSpec) -> str:
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
        return origin(host) == origin(target) and urlsplit(target).path.startswith(
            urlsplit(host).path.rstrip("/") + "/"
        )

    def _data_url_like(self, url: str) -> str:
        """``url`` (a data call) on the data host known now (after a session renewal or a move)."""
        path = urlsplit(url).path
        rest = path[path.index("/accurate/api/") :]
        query = urlsplit(url).query
        return f"{self.discover_host()}{rest}" + (f"?{query}" if query else "")

    def _data_url(self, module: str, action: str) -> str:
        if not NAME.match(module) or not NAME.match(action):
            raise ValueError(f"invalid Accurate module/action {module!r}/{action!r}")
        return f"{self.discover_host()}/accurate/api/{module}/{action}.do"

    def _account_call(
        self, path: str, params: Mapping[str, Any] | None = None, *, what: str | None = None
    ) -> dict[str, Any]:
        """A call to the account host (``api/<path>.do``): GET, or POST where GET is not allowed."""
        url = f"{self.settings.account_url}/api/{path}.do"
        spec = CallSpec(SERVICE, what or path)
        try:
            return self._request("GET", url, spec=spec, params=params).body
        except ApiError as exc:
            if exc.status_code != 405:
                raise
            return self._request("POST", url, spec=spec, params=params).body
