"""The Accurate Online sandbox as a FastAPI application (account host and data host in one).

Public facts (reference doc): discovery at ``/api/api-token.do`` (GET or POST) answering
``{"s": true, "d": {"data usaha": {"host", "id", "alias"}, "user": {...}}}``; data calls under
``{host}/accurate/api/<module>/<action>.do``; signed headers on every call (HTTP 401 naming the
problem); ``X-Language-Profile: ID|US``; HTTP 308 when the database moves (clients keep method,
body and headers); ``webhook-renew.do`` and ``webhook-history.do`` on the account host.

Assumptions (the public record is silent):
- one server plays both hosts; discovery answers the server's own base URL (from the request), or
  that URL plus ``moved_prefix`` once ``moved`` is on; the old prefix then answers 308 with an
  absolute ``Location`` (same path and query) and the new prefix is served all the time;
- order of checks: 308, rate limit (429), in-flight limit (429), auth (401), injected fault,
  then the call; business errors are HTTP 200 ``s: false``; a malformed JSON body is HTTP 400
  ``s: false``; an unknown module/action HTTP 404 ``s: false``; a wrong method HTTP 405 ``s: false``;
- read actions (``list``, ``detail``, ``get-stock``) accept GET and POST; ``save``/``bulk-save``
  POST (or PUT); ``delete`` POST or DELETE; parameters come from the query and the body (body wins).

Variants where public material disagrees are switches (``/_sandbox/config``): ``discovery_key``
(``data usaha`` | ``database`` | ``host``), ``max_page_size`` / ``page_size_over_max`` (``cap`` |
``error``), ``moved_to`` (a 308 to another origin, named by discovery), ``oauth`` (the session flow:
``db-list.do``, ``open-db.do``, ``db-refresh-session.do``, ``db-check-session.do``, ``X-Session-ID``;
one accepted access token ``DEFAULT_OAUTH_TOKEN``; an expired or unknown session is HTTP 401),
``session_ttl_seconds`` (sandbox clock), ``session_authority`` (a data host that also accepts the
sessions another sandbox, the account host, opened) and ``created_date`` (off: documents answer without
``createdDate`` and a filter on it matches none).

The hot path avoids pydantic: raw ``Request`` in, pre-encoded bytes out.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.accurate.clock import SandboxClock, format_timestamp, from_unix, parse_local_timestamp
from sandbox.accurate.database import BusinessError, Database
from sandbox.accurate.forms import RequestError, parse_form_pairs, parse_list_query
from sandbox.accurate.jsonio import decode, encode
from sandbox.accurate.messages import ID, Msg, language_of
from sandbox.accurate.modules import MODULES
from sandbox.accurate.signing import MAX_SKEW_SECONDS, SignatureVerifier, parse_api_timestamp
from sandbox.accurate.state import (
    ConfigError,
    Faults,
    RateLimiter,
    RequestLog,
    SandboxConfig,
    retry_after_header,
)
from sandbox.accurate.webhooks import WebhookDispatcher

DEFAULT_API_TOKEN = "sandbox-api-token"
DEFAULT_SIGNATURE_SECRET = "sandbox-signature-secret"
#: The OAuth access token the sandbox accepts for the session flow (switch ``oauth``).
DEFAULT_OAUTH_TOKEN = "sandbox-oauth-access-token"
OAUTH_ACCOUNT_ACTIONS = ("db-list", "open-db", "db-refresh-session", "db-check-session")
DEFAULT_SEED = 42
DATABASE_ALIAS = "Toko Nusantara Demo"
JSON = "application/json"
HISTORY_MAX_WINDOW = 24 * 3600
HISTORY_MAX_AGE = 30 * 86400
DATA_METHODS = ["GET", "POST", "PUT", "DELETE"]


class DroppedResponse(Response):
    """Starts an answer and never finishes it: the server closes the connection mid-response."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer encoded with Decimal-as-number."""
    return Response(encode(payload), status_code=status, media_type=JSON, headers=headers)


def _failure(status: int, lang: int, *messages: Msg, headers: dict[str, str] | None = None) -> Response:
    return json_response({"s": False, "d": [m.render(lang) for m in messages]}, status, headers)


class Sandbox:
    """All state of one sandbox server; rebuilt in place by ``reset``."""

    def __init__(self, seed: int, api_token: str, signature_secret: str) -> None:
        self.api_token = api_token
        self.verifier = SignatureVerifier(signature_secret)
        self.log = RequestLog()
        self.limiter = RateLimiter()
        #: Bumped by ``reset``: calls still sleeping from before a reset are not logged after it.
        self.generation = 0
        self.oauth_token = DEFAULT_OAUTH_TOKEN
        #: Open database sessions of the OAuth flow: session id -> expiry (sandbox clock, Unix seconds).
        self.sessions: dict[str, float] = {}
        self._build(seed)

    def _build(self, seed: int) -> None:
        self.seed = seed
        self.database_id = 100000 + seed
        self.clock = SandboxClock()
        self.config = SandboxConfig()
        self.faults = Faults()
        self.fault_rng = random.Random(f"faults-{seed}")
        #: What the sandbox did to API calls, by kind (error, timeout, commit_then_timeout,
        #: rate_limited = 429, moved = 308): ``GET /_sandbox/fault-counts``.
        self.fault_counts: dict[str, int] = {}
        self.limiter.configure(self.faults.rate_limit_per_s)
        self.db = Database(seed, self.clock, self.config)
        self.webhooks = WebhookDispatcher(
            self.clock, self.config, self.faults, self.database_id, random.Random(f"webhooks-{seed}")
        )
        self.db.on_change = self.webhooks.on_change
        self.sessions = {}

    async def reset(self, seed: int | None = None) -> None:
        """Rebuild everything (data, clock, faults, config, webhooks, request log)."""
        await self.webhooks.close()
        self.generation += 1
        self.log.clear()
        self._build(self.seed if seed is None else seed)

    # ------------------------------------------------------------------ API pipeline

    def auth_problem(self, request: Request, module: str = "", action: str = "") -> Msg | None:
        """Why the signed headers are refused, or ``None`` when they are fine.

        OAuth (switch ``oauth``): the session routes take the access token alone; a data call with
        ``X-Session-ID`` takes the access token and a session opened by ``open-db.do``.
        """
        headers = request.headers
        if module == "account" and action in OAUTH_ACCOUNT_ACTIONS:
            return self.oauth_problem(request, session=False)
        if module != "account" and "x-session-id" in headers:
            return self.oauth_problem(request, session=True)
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() != "bearer " or not authorization[7:].strip():
            return Msg("auth_missing_token")
        if authorization[7:].strip() != self.api_token or self.config.token_revoked:
            return Msg("auth_unknown_token")
        timestamp = headers.get("x-api-timestamp")
        if not timestamp:
            return Msg("auth_missing_timestamp")
        moment = parse_api_timestamp(timestamp)
        if moment is None:
            return Msg("auth_bad_timestamp", value=timestamp[:40])
        signature = headers.get("x-api-signature")
        if not signature:
            return Msg("auth_missing_signature")
        if not self.verifier.verify(timestamp, signature):
            return Msg("auth_bad_signature")
        now = self.clock.time() if self.config.signature_clock == "sandbox" else time.time()
        if abs(now - moment) > MAX_SKEW_SECONDS:
            return Msg("auth_skew", skew=int(abs(now - moment)))
        return None

    async def api_call(self, request: Request, module: str, action: str, *, moved: bool = False) -> Response:
        """Run one ``/api`` or ``/accurate/api`` call through limits, auth, faults and the handler."""
        started = time.perf_counter()
        generation = self.generation
        entry: dict[str, Any] = {
            "time": self.clock.now().isoformat(),
            "method": request.method,
            "path": request.url.path,
            "module": module,
            "action": action,
            "status_code": None,
            "s": None,
            "fault": None,
        }
        lang = language_of(request.headers.get("x-language-profile"))
        held = False
        response: Response
        try:
            if module != "account" and self.config.moved and not moved:
                response = self._redirect(request)
                return response
            wait = self.limiter.take()
            if wait is not None:
                rate = self.limiter.rate or 0
                retry = retry_after_header(wait)
                response = _failure(
                    429,
                    lang,
                    Msg("rate_limited", rate=f"{rate:g}", retry=retry),
                    headers={"Retry-After": retry},
                )
                return response
            limit = self.faults.max_in_flight
            if limit and self.limiter.in_flight >= limit:
                response = _failure(
                    429, lang, Msg("too_many_in_flight", limit=limit), headers={"Retry-After": "1"}
                )
                return response
            self.limiter.in_flight += 1
            held = True
            problem = self.auth_problem(request, module, action)
            if problem is not None and problem.code == "session_missing" and self.config.session_authority:
                problem = await self.authority_problem(request)
            if problem is not None:
                response = _failure(401, lang, problem, headers={"WWW-Authenticate": "Bearer"})
                return response
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            fault = self.faults.roll(module, action, self.fault_rng)
            entry["fault"] = fault
            if fault == "error":
                response = self._error_response(lang)
                return response
            if fault == "timeout":
                self.limiter.in_flight -= 1
                held = False
                await asyncio.sleep(self.faults.timeout_seconds)
                response = _failure(504, lang, Msg("gateway_timeout"))
                return response
            try:
                payload, status = await self._dispatch(request, module, action, lang)
            except RequestError as error:
                payload, status = {"s": False, "d": [m.render(lang) for m in error.messages]}, error.status
            entry["s"] = payload.get("s")
            _note_saved(entry, action, payload)
            body = encode(payload)
            if fault == "commit_then_timeout":
                self.limiter.in_flight -= 1
                held = False
                await asyncio.sleep(self.faults.timeout_seconds)
                response = DroppedResponse()
                return response
            response = Response(body, status_code=status, media_type=JSON)
            return response
        finally:
            if held:
                self.limiter.in_flight -= 1
            entry["status_code"] = 0 if entry["fault"] == "commit_then_timeout" else response.status_code
            kind = entry["fault"] or {429: "rate_limited", 308: "moved"}.get(entry["status_code"])
            if kind:
                self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            if generation == self.generation:
                self.log.add(entry)

    def oauth_problem(self, request: Request, *, session: bool) -> Msg | None:
        """Why an OAuth call is refused (unknown token, unknown or expired session), or ``None``."""
        if not self.config.oauth:
            return Msg("oauth_disabled")
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() != "bearer " or not authorization[7:].strip():
            return Msg("auth_missing_token")
        if authorization[7:].strip() != self.oauth_token or self.config.token_revoked:
            return Msg("oauth_unknown_token")
        if not session:
            return None
        expires = self.sessions.get(request.headers.get("x-session-id", "").strip())
        if expires is None:
            return Msg("session_missing")
        if self.clock.time() >= expires:
            return Msg("session_expired")
        return None

    async def authority_problem(self, request: Request) -> Msg | None:
        """A session opened elsewhere: valid when ``session_authority`` (the account host) says so."""
        url = f"{self.config.session_authority.rstrip('/')}/api/db-check-session.do"
        session = request.headers.get("x-session-id", "").strip()
        if not session:
            return Msg("session_missing")
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.get(
                    url,
                    params={"session": session},
                    headers={"Authorization": request.headers.get("authorization", "")},
                )
            valid = answer.status_code == 200 and decode(answer.content).get("d") is True
        except (httpx.HTTPError, ValueError, AttributeError):
            valid = False
        return None if valid else Msg("session_expired")

    def data_host(self, request: Request) -> str:
        """The data host discovery and ``open-db.do`` name (follows ``moved``/``moved_to``)."""
        if self.config.moved and self.config.moved_to:
            return self.config.moved_to.rstrip("/")
        host = str(request.base_url).rstrip("/")
        return host + self.config.moved_prefix if self.config.moved else host

    def open_session(self) -> str:
        """A new database session valid for ``session_ttl_seconds`` of sandbox time."""
        session = uuid.uuid4().hex
        self.sessions[session] = self.clock.time() + self.config.session_ttl_seconds
        return session

    def _redirect(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        location = f"{base}{self.config.moved_prefix}{request.url.path}"
        if self.config.moved_to:
            location = f"{self.config.moved_to.rstrip('/')}{request.url.path}"
        if request.url.query:
            location = f"{location}?{request.url.query}"
        return Response(
            encode({"s": False, "d": [f"Moved Permanently: {location}"]}),
            status_code=308,
            media_type=JSON,
            headers={"Location": location},
        )

    def _error_response(self, lang: int) -> Response:
        status = self.faults.error_status
        if status == 500:
            return _failure(500, lang, Msg("server_error"))
        title = "502 Bad Gateway" if status == 502 else "503 Service Temporarily Unavailable"
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return Response(html, status_code=status, media_type="text/html")

    async def _read_body(self, request: Request) -> tuple[Any, list[tuple[str, str]]]:
        raw = await request.body()
        if not raw.strip():
            return {}, []
        content_type = request.headers.get("content-type", "").lower()
        if "application/x-www-form-urlencoded" in content_type:
            pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return parse_form_pairs(pairs), pairs
        if "multipart/form-data" in content_type:
            form = await request.form()
            pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            return parse_form_pairs(pairs), pairs
        try:
            return decode(raw), []
        except ValueError as error:
            raise RequestError(Msg("malformed_body", reason=str(error)[:200]), status=400) from None

    async def _params(self, request: Request) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Scalar parameters (query, then body on top) and every raw name/value pair."""
        body, body_pairs = await self._read_body(request)
        query_pairs = request.query_params.multi_items()
        params: dict[str, Any] = dict(query_pairs)
        pairs = list(query_pairs) + body_pairs
        if isinstance(body, dict):
            params.update(body)
            if not body_pairs:  # JSON body: scalar members also act as list parameters
                for key, value in body.items():
                    if isinstance(value, list) and key == "fields":
                        pairs.append((key, ",".join(str(v) for v in value)))
                    elif not isinstance(value, (dict, list)):
                        pairs.append((key, str(value)))
        return params, pairs

    async def _dispatch(
        self, request: Request, module: str, action: str, lang: int
    ) -> tuple[dict[str, Any], int]:
        if module == "account":
            return await self._account(request, action, lang)
        if module not in MODULES:
            return {"s": False, "d": [Msg("unknown_module", module=module).render(lang)]}, 404
        method = request.method
        if action in ("save", "bulk-save"):
            if method not in ("POST", "PUT"):
                return {
                    "s": False,
                    "d": [Msg("method_not_allowed", method=method, action=action).render(lang)],
                }, 405
            body, _ = await self._read_body(request)
            if action == "save":
                if not isinstance(body, dict) or (not body and request.query_params):
                    body = parse_form_pairs(request.query_params.multi_items()) if not body else body
                return self.db.save(module, body, lang), 200
            records = body.get("data") if isinstance(body, dict) else body
            return self.db.bulk_save(module, records, lang), 200
        if action == "delete":
            if method not in ("POST", "DELETE"):
                return {
                    "s": False,
                    "d": [Msg("method_not_allowed", method=method, action=action).render(lang)],
                }, 405
            params, _ = await self._params(request)
            return self.db.delete(module, params, lang), 200
        if action not in ("list", "detail", "get-stock") or (action == "get-stock" and module != "item"):
            return {"s": False, "d": [Msg("unknown_action", module=module, action=action).render(lang)]}, 404
        if method not in ("GET", "POST"):
            return {
                "s": False,
                "d": [Msg("method_not_allowed", method=method, action=action).render(lang)],
            }, 405
        params, pairs = await self._params(request)
        if action == "list":
            query = parse_list_query(
                pairs, max_page_size=self.config.max_page_size, over_max=self.config.page_size_over_max
            )
            return self.db.list_rows(module, query), 200
        if action == "detail":
            return self.db.detail(module, params, lang), 200
        return self.db.get_stock(params, lang), 200

    async def _account(self, request: Request, action: str, lang: int) -> tuple[dict[str, Any], int]:
        if action == "api-token":
            host = self.data_host(request)
            database = {"host": host, "id": self.database_id, "alias": DATABASE_ALIAS}
            user = {"id": 1, "name": "Pemilik Toko Demo", "email": "pemilik@contoh.id"}
            key = self.config.discovery_key
            if key == "host":  # top-level d.host, no database object
                return {"s": True, "d": {**database, "user": user}}, 200
            return {"s": True, "d": {key: database, "user": user}}, 200
        if action in OAUTH_ACCOUNT_ACTIONS:
            return await self._oauth_account(request, action, lang)
        if action == "webhook-renew":
            expires = self.webhooks.renew()
            if expires is None:
                return {"s": False, "d": [Msg("webhook_none").render(lang)]}, 200
            return {"s": True, "d": {"expiredDate": format_timestamp(from_unix(expires))}}, 200
        if action == "webhook-history":
            params, _ = await self._params(request)
            start = parse_local_timestamp(str(params.get("from") or ""))
            end = parse_local_timestamp(str(params.get("to") or ""))
            if start is None or end is None:
                return {"s": False, "d": [Msg("history_params").render(lang)]}, 200
            if start > end:
                return {"s": False, "d": [Msg("history_order").render(lang)]}, 200
            if (end - start).total_seconds() > HISTORY_MAX_WINDOW:
                return {"s": False, "d": [Msg("history_window").render(lang)]}, 200
            if start.timestamp() < self.clock.time() - HISTORY_MAX_AGE:
                return {"s": False, "d": [Msg("history_too_old").render(lang)]}, 200
            rows = self.webhooks.history(start.timestamp(), end.timestamp())
            page, size = (
                _int_param(params.get("sp.page"), 1),
                min(_int_param(params.get("sp.pageSize"), 100), 100),
            )
            sp = {"page": page, "pageSize": size, "pageCount": -(-len(rows) // size), "rowCount": len(rows)}
            return {"s": True, "d": rows[(page - 1) * size : page * size], "sp": sp}, 200
        return {"s": False, "d": [Msg("unknown_action", module="api", action=action).render(lang)]}, 404

    async def _oauth_account(self, request: Request, action: str, lang: int) -> tuple[dict[str, Any], int]:
        """``db-list.do``, ``open-db.do``, ``db-check-session.do`` and ``db-refresh-session.do``."""
        database = {"id": self.database_id, "alias": DATABASE_ALIAS, "trial": False, "expired": False}
        if action == "db-list":
            return {"s": True, "d": [database]}, 200
        params, _ = await self._params(request)
        if str(params.get("id") or "") != str(self.database_id) and action != "db-check-session":
            unknown = Msg("db_unknown", id=str(params.get("id") or "")[:40])
            return {"s": False, "d": [unknown.render(lang)]}, 200
        host = self.data_host(request)
        if action == "open-db":
            session = self.open_session()
            return {"s": True, "host": host, "session": session, "admin": True, "d": [DATABASE_ALIAS]}, 200
        current = str(params.get("session") or "")
        expires = self.sessions.get(current)
        if action == "db-check-session":
            return {"s": True, "d": expires is not None and self.clock.time() < expires}, 200
        if expires is None:
            return {"s": False, "d": [Msg("session_missing").render(lang)]}, 200
        if self.clock.time() >= expires:
            self.sessions.pop(current, None)
            current = self.open_session()
        return {"s": True, "d": {"session": current, "host": host}}, 200


def _int_param(value: Any, default: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        return default
    return number if number >= 1 else default


def _note_saved(entry: dict[str, Any], action: str, payload: dict[str, Any]) -> None:
    """Put the ids/numbers a write call stored into its request-log entry."""
    if action == "save" and payload.get("s") and "r" in payload:
        entry["saved"] = [_ident(payload["r"])]
    elif action == "bulk-save" and isinstance(payload.get("d"), list):
        entry["saved"] = [_ident(r["r"]) for r in payload["d"] if isinstance(r, dict) and r.get("s")]
        entry["failed"] = sum(1 for r in payload["d"] if isinstance(r, dict) and not r.get("s"))
    elif action == "delete" and payload.get("s"):
        entry["deleted"] = [payload.get("r", {}).get("id")]


def _ident(record: dict[str, Any]) -> dict[str, Any]:
    number = record.get("number")
    if number is None:
        number = record.get("customerNo") or record.get("vendorNo") or record.get("no") or record.get("name")
    return {"id": record.get("id"), "number": number}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    value = decode(raw)
    if not isinstance(value, dict):
        raise ValueError("body must be a JSON object")
    return value


def create_app(
    seed: int = DEFAULT_SEED,
    api_token: str = DEFAULT_API_TOKEN,
    signature_secret: str = DEFAULT_SIGNATURE_SECRET,
) -> FastAPI:
    """Build the sandbox application (``app.state.sandbox`` holds its :class:`Sandbox`)."""
    sandbox = Sandbox(seed, api_token, signature_secret)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await sandbox.webhooks.close()

    app = FastAPI(
        title="Accurate Online sandbox",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox

    # ------------------------------------------------------------------ the Accurate API
    @app.api_route("/api/{name}.do", methods=["GET", "POST"], include_in_schema=False)
    async def account_call(request: Request, name: str) -> Response:
        return await sandbox.api_call(request, "account", name)

    @app.api_route("/accurate/api/{module}/{action}.do", methods=DATA_METHODS, include_in_schema=False)
    async def data_call(request: Request, module: str, action: str) -> Response:
        return await sandbox.api_call(request, module, action)

    @app.api_route(
        "/{prefix}/accurate/api/{module}/{action}.do", methods=DATA_METHODS, include_in_schema=False
    )
    async def moved_data_call(request: Request, prefix: str, module: str, action: str) -> Response:
        if f"/{prefix}" != sandbox.config.moved_prefix:
            return _failure(404, ID, Msg("unknown_module", module=f"{prefix}/{module}"))
        return await sandbox.api_call(request, module, action, moved=True)

    # ------------------------------------------------------------------ control routes
    def bad_request(message: str) -> Response:
        return json_response({"s": False, "d": [message]}, 400)

    @app.get("/_sandbox/health")
    async def health() -> Response:
        """Readiness probe."""
        return json_response(
            {
                "status": "ok",
                "seed": sandbox.seed,
                "databaseId": sandbox.database_id,
                "now": sandbox.clock.now().isoformat(),
            }
        )

    @app.get("/_sandbox/clock")
    async def get_clock() -> Response:
        """Sandbox time."""
        return json_response(_clock_view(sandbox.clock))

    @app.post("/_sandbox/clock")
    async def move_clock(request: Request) -> Response:
        """``{"advance_seconds": N}`` or ``{"now": "<ISO-8601>"}``: move sandbox time forward."""
        try:
            body = await _json_body(request)
            if "advance_seconds" in body:
                sandbox.clock.advance(float(body["advance_seconds"]))
            elif "now" in body:
                moment = datetime.fromisoformat(str(body["now"]))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                sandbox.clock.set_now(moment)
            else:
                return bad_request("send advance_seconds or now")
        except (ValueError, TypeError) as error:
            return bad_request(str(error))
        return json_response(_clock_view(sandbox.clock))

    @app.get("/_sandbox/faults")
    async def get_faults() -> Response:
        """Current fault injection and limits."""
        return json_response(sandbox.faults.as_dict())

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request) -> Response:
        """Change the given fault settings (others keep their value)."""
        try:
            body = await _json_body(request)
            seed = body.pop("seed", None) if isinstance(body, dict) else None
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ConfigError("seed must be an integer")
            sandbox.faults.update(body)
        except (ValueError, ConfigError) as error:
            return bad_request(str(error))
        if seed is not None:  # the same seed rolls the same faults for the same sequence of calls
            sandbox.fault_rng = random.Random(f"faults-{seed}")
        if "rate_limit_per_s" in body:
            sandbox.limiter.configure(sandbox.faults.rate_limit_per_s)
        return json_response(sandbox.faults.as_dict())

    @app.get("/_sandbox/fault-counts")
    async def get_fault_counts() -> Response:
        """How many API calls got each fault since the start (or the last DELETE / reset)."""
        return json_response(dict(sandbox.fault_counts))

    @app.delete("/_sandbox/fault-counts")
    async def clear_fault_counts() -> Response:
        """Start counting again from zero."""
        sandbox.fault_counts.clear()
        return json_response({})

    @app.delete("/_sandbox/faults")
    async def clear_faults() -> Response:
        """Back to no faults and the default limits (8/s, 8 in flight)."""
        sandbox.faults.__init__()  # type: ignore[misc]
        sandbox.limiter.configure(sandbox.faults.rate_limit_per_s)
        return json_response(sandbox.faults.as_dict())

    @app.get("/_sandbox/config")
    async def get_config() -> Response:
        """Behaviour switches."""
        return json_response(sandbox.config.as_dict())

    @app.post("/_sandbox/config")
    async def set_config(request: Request) -> Response:
        """Change the given switches (``refuse_negative_stock``, ``moved``, ...)."""
        try:
            sandbox.config.update(await _json_body(request))
        except (ValueError, ConfigError) as error:
            return bad_request(str(error))
        return json_response(sandbox.config.as_dict())

    @app.get("/_sandbox/requests")
    async def get_requests(
        module: str | None = None, action: str | None = None, limit: int | None = None
    ) -> Response:
        """The request log, oldest first (``limit`` keeps the newest N)."""
        return json_response({"requests": sandbox.log.query(module, action, limit)})

    @app.delete("/_sandbox/requests")
    async def clear_requests() -> Response:
        """Forget the request log."""
        sandbox.log.clear()
        return json_response({"s": True})

    @app.get("/_sandbox/webhook-target")
    async def get_webhook_target() -> Response:
        """The subscription."""
        return json_response(sandbox.webhooks.subscription())

    @app.post("/_sandbox/webhook-target")
    async def set_webhook_target(request: Request) -> Response:
        """``{"url": "..."}`` registers the app's webhook (7 days of sandbox time); ``null`` clears it."""
        try:
            body = await _json_body(request)
        except ValueError as error:
            return bad_request(str(error))
        url = body.get("url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return bad_request("url must be an http(s) URL or null")
        return json_response(sandbox.webhooks.register(url))

    @app.get("/_sandbox/webhook-deliveries")
    async def get_deliveries() -> Response:
        """Every delivery with its attempts, plus events skipped for want of an active subscription."""
        return json_response(
            {
                "subscription": sandbox.webhooks.subscription(),
                "deliveries": sandbox.webhooks.deliveries,
                "skipped": sandbox.webhooks.skipped,
            }
        )

    @app.post("/_sandbox/reset")
    async def reset(request: Request) -> Response:
        """Rebuild everything, optionally with another ``seed``."""
        try:
            body = await _json_body(request)
            seed_value = body.get("seed")
            await sandbox.reset(None if seed_value is None else int(seed_value))
        except (ValueError, TypeError) as error:
            return bad_request(str(error))
        return json_response({"status": "ok", "seed": sandbox.seed})

    @app.post("/_sandbox/items")
    async def put_items(request: Request) -> Response:
        """Create/patch items by ``no`` unsigned (one object or a list); ``stock`` sets quantities."""
        try:
            raw = await request.body()
            body = decode(raw) if raw.strip() else {}
        except ValueError as error:
            return bad_request(str(error))
        items = body if isinstance(body, list) else [body]
        saved = []
        for fields in items:
            if not isinstance(fields, dict):
                return bad_request("each item must be an object")
            try:
                saved.append(sandbox.db.put_item(dict(fields)))
            except BusinessError as error:
                return json_response({"s": False, "d": [m.render(ID) for m in error.messages]}, 400)
        return json_response({"s": True, "r": saved if isinstance(body, list) else saved[0]})

    @app.get("/_sandbox/stock")
    async def get_stock(itemNo: str = "", warehouseName: str = "") -> Response:  # noqa: N803
        """On-hand stock per item and warehouse, and goods in transit per transfer-out."""
        return json_response(sandbox.db.stock_dump(itemNo, warehouseName))

    @app.get("/_sandbox/records/{module}")
    async def get_records(module: str) -> Response:
        """Every stored record of a module, unsigned (inspection helper)."""
        if module not in MODULES:
            return json_response({"s": False, "d": [f"unknown module {module}"]}, 404)
        return json_response({"s": True, "d": list(sandbox.db.tables[module].records.values())})

    return app


def _clock_view(clock: SandboxClock) -> dict[str, Any]:
    now = clock.now()
    return {
        "now": now.isoformat(),
        "jakarta": format_timestamp(now),
        "unix": clock.time(),
        "offset_seconds": clock.offset_seconds,
    }
