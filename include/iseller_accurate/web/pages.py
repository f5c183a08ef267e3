"""The operators' pages inside the Airflow UI: **Sync Status** and **Webhook Log**.

Served by the project's plugin under ``/integrations/operator/`` and shown in Airflow's navigation as
external views (an iframe inside the Airflow UI, same origin). Shop operators see every document
with its status and the reason it failed, filter and page through them, follow a link to the Airflow
task instance that handled it, and press **Refresh** on a failed or blocked one after repairing the
cause.

Authentication and permissions are Airflow's own:

- The Airflow UI keeps its JWT in the ``_token`` cookie, sent with every same-origin request (the
  pages are same-origin). API clients may send ``Authorization: Bearer <token>`` instead. Both are
  resolved by Airflow's own ``get_user`` (see airflow_internals.resolve_user); plugin apps are not
  protected by default, so every route here depends on it. Anonymous: the JSON endpoints answer
  401, the pages redirect to Airflow's login.
- A user sees only the rows of DAGs whose task instances the auth manager lets them read.
- **Refresh** clears the task instance that owns a row through Airflow's public REST API
  (``POST /api/v2/dags/{dag_id}/clearTaskInstances``) with the signed-in user's own token, so Airflow
  checks their permission to clear it and records the action in its audit log under their name.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections import defaultdict
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from include.iseller_accurate.airflow_internals import (
    api_root_path,
    login_url,
    metastore_variable,
    readable_task_instance_dag_ids,
    resolve_user,
)
from include.iseller_accurate.ledger import connect, dsn_from_connection, migrate
from include.iseller_accurate.settings import SETTINGS_VARIABLE, SyncSettings, parse_settings
from include.iseller_accurate.web import listing
from include.iseller_accurate.web.listing import (
    ATTENTION,
    DOCUMENTS,
    WEBHOOK_EVENTS,
    ListFilter,
    Scope,
    TableSpec,
)

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
#: Where the plugin mounts the project's FastAPI app, and this module's routes inside it.
APP_PREFIX = "/integrations"
PAGES_PREFIX = "/operator"

#: The DAGs whose rows each list holds before any task touched them (see Scope.unowned).
HOME_DAGS = {
    DOCUMENTS.kind: (
        "iseller_sales_to_accurate",
        "iseller_transfers_to_accurate",
        "iseller_stock_opname_to_accurate",
    ),
    WEBHOOK_EVENTS.kind: ("accurate_webhooks_to_iseller",),
}
#: Most rows one Refresh may name (a page at most).
MAX_REFRESH = listing.MAX_PAGE_SIZE
COOKIE_NAME_JWT_TOKEN = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN

router = APIRouter(prefix=PAGES_PREFIX)
_bearer = HTTPBearer(auto_error=False)
_templates = Environment(
    loader=FileSystemLoader(WEB_DIR / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

STATUS_LABELS = {
    "failed": "Failed",
    "blocked": "Blocked",
    "pending": "Pending",
    "posting": "Posting",
    "synced": "Synced",
    "skipped": "Skipped",
    "processing": "Processing",
    "done": "Done",
    "ignored": "Ignored",
    ATTENTION: "Needs attention",
}


# -- navigation entries (the plugin's external_views) -------------------------------------------------
def airflow_root_path() -> str:
    """Path prefix of Airflow's UI and API (``[api] base_url``'s path), ending with ``/``."""
    return api_root_path()


def external_views() -> list[dict[str, Any]]:
    """The Airflow UI entries: two pages in the navigation and a tab on every DAG run."""
    base = f"{airflow_root_path()}{APP_PREFIX.strip('/')}{PAGES_PREFIX}"
    static = f"{base}/static"
    return [
        {
            "name": "Sync Status",
            "href": f"{base}/sync-status",
            "url_route": "sync-status",
            "destination": "nav",
            "category": "browse",
            "icon": f"{static}/sync-status.svg",
            "icon_dark_mode": f"{static}/sync-status-dark.svg",
        },
        {
            "name": "Webhook Log",
            "href": f"{base}/webhook-log",
            "url_route": "webhook-log",
            "destination": "nav",
            "category": "browse",
            "icon": f"{static}/webhook-log.svg",
            "icon_dark_mode": f"{static}/webhook-log-dark.svg",
        },
        {
            "name": "Sync documents",
            "href": f"{base}/run?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "url_route": "sync-documents",
            "destination": "dag_run",
        },
    ]


# -- authentication and permissions ------------------------------------------------------------------
async def _user_or_none(request: Request) -> Any:
    """The signed-in Airflow user (cookie or bearer token), or None."""
    credentials = await _bearer(request)
    try:
        return await resolve_user(request, credentials)
    except HTTPException:
        return None


async def _api_user(request: Request) -> Any:
    """Dependency of the JSON endpoints: Airflow's own resolution; 401/403 when it fails."""
    return await resolve_user(request, await _bearer(request))


ApiUser = Annotated[Any, Depends(_api_user)]


def _scope(user: Any, spec: TableSpec) -> Scope:
    """The rows ``user`` may see: those of DAGs whose task instances they can read."""
    readable = readable_task_instance_dag_ids(user)
    home = HOME_DAGS[spec.kind]
    if not readable:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not read the task instances of any sync DAG.")
    return Scope(dag_ids=frozenset(readable), unowned=any(dag_id in readable for dag_id in home))


def _request_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN)


# -- ledger and settings --------------------------------------------------------------------------------
_migrated = threading.Event()
_settings_cache: tuple[float, SyncSettings, str | None] | None = None
_SETTINGS_TTL = 30.0


def _ledger() -> Any:
    """A ledger connection (migrated once per process)."""
    conn = connect(dsn_from_connection(), autocommit=True)
    if not _migrated.is_set():
        migrate(conn)
        _migrated.set()
    return conn


def _settings() -> tuple[SyncSettings, str | None]:
    """The operator settings (time zone, outlet names), cached briefly; a problem is reported."""
    global _settings_cache
    now = time.monotonic()
    if _settings_cache and now - _settings_cache[0] < _SETTINGS_TTL:
        return _settings_cache[1], _settings_cache[2]
    problem = None
    try:
        settings = parse_settings(metastore_variable(SETTINGS_VARIABLE))
    except Exception as exc:  # noqa: BLE001 - the pages still work with defaults; say why
        settings, problem = SyncSettings(), f"Settings not readable, showing defaults: {exc}"
    _settings_cache = (now, settings, problem)
    return settings, problem


# -- filters from the query string -----------------------------------------------------------------------
#: Longest value accepted for a text filter (a search, a DAG or run id); real ones are far shorter.
MAX_PARAM_LENGTH = 250
#: Most row ids one request may name.
MAX_IDS = listing.MAX_PAGE_SIZE


def _text_param(value: str | None, field: str) -> str | None:
    """A text filter as given, or 400 naming the problem: control characters (NUL...) or too long.

    PostgreSQL cannot compare text holding a NUL character, and no number, SKU or id holds a control
    character, so such a value is refused (never passed on) with a reason the operator can act on.
    """
    if not value:
        return None
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if bad is not None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{field}: contains the control character {bad.encode('unicode_escape').decode('ascii')}"
            " (e.g. NUL); remove it from the search and try again",
        )
    if len(value) > MAX_PARAM_LENGTH:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{field}: longer than {MAX_PARAM_LENGTH} characters ({len(value)}); search for part of it",
        )
    return value


def _parse_day(value: str | None, field: str) -> date | None:
    value = _text_param(value, field)
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{field}: not a date (YYYY-MM-DD): {value!r}"
        ) from None
    if not 1900 <= day.year <= 9998:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{field}: a date between 1900 and 9998: {value!r}")
    return day


def _filter_from(
    spec: TableSpec,
    tz: tzinfo,
    *,
    status_: str | None,
    type_: str | None,
    outlet: str | None,
    date_from: str | None,
    date_to: str | None,
    q: str | None,
    dag_id: str | None,
    run_id: str | None,
    ids: str | None = None,
) -> ListFilter:
    status_, type_ = _text_param(status_, "status"), _text_param(type_, "type")
    outlet, q, ids = _text_param(outlet, "outlet"), _text_param(q, "q"), _text_param(ids, "ids")
    dag_id, run_id = _text_param(dag_id, "dag_id"), _text_param(run_id, "run_id")
    if status_ and status_ != ATTENTION and status_ not in spec.statuses:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"status: one of {', '.join(spec.statuses)} or {ATTENTION}"
        )
    day_from, day_to = _parse_day(date_from, "from"), _parse_day(date_to, "to")
    start = datetime.combine(day_from, datetime.min.time(), tz) if day_from else None
    # "to" is the last day shown: rows before the next local midnight.
    end = datetime.combine(day_to + timedelta(days=1), datetime.min.time(), tz) if day_to else None
    try:
        id_list = tuple(int(part) for part in (ids or "").split(",") if part.strip())
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "ids: comma-separated row ids") from None
    if len(id_list) > MAX_IDS or any(not 0 < i < 2**63 for i in id_list):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"ids: at most {MAX_IDS} row ids, each a positive whole number"
        )
    return ListFilter(
        status=status_ or None,
        type=type_ or None,
        outlet_id=outlet or None,
        date_from=start,
        date_to=end,
        search=(q or "").strip() or None,
        dag_id=dag_id or None,
        run_id=run_id or None,
        ids=id_list,
    )


# -- presentation -----------------------------------------------------------------------------------------
def humanize(code: str | None) -> str:
    """``sales_invoice`` / ``RECEIVE_ITEM`` -> ``Sales invoice`` / ``Receive item``."""
    if not code:
        return ""
    text = code.replace("_", " ").replace("-", " ").lower()
    return text[:1].upper() + text[1:]


def task_instance_path(row: dict[str, Any]) -> str | None:
    """Airflow UI path of the task instance that last handled ``row``."""
    if not (row.get("dag_id") and row.get("run_id") and row.get("task_id")):
        return None
    path = (
        f"{airflow_root_path()}dags/{quote(row['dag_id'], safe='')}/runs/{quote(row['run_id'], safe='')}"
        f"/tasks/{quote(row['task_id'], safe='')}"
    )
    map_index = row.get("map_index")
    if map_index is not None and map_index >= 0:
        path += f"/mapped/{map_index}"
    return path


def _local(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _outlet_name(settings: SyncSettings, outlet_id: str) -> str:
    """The outlet's display name from the settings (``outlets.<id>.name``), else its id."""
    outlet = settings.outlet(outlet_id)
    return (outlet.name if outlet else None) or outlet_id


def present(row: dict[str, Any], spec: TableSpec, settings: SyncSettings) -> dict[str, Any]:
    """A ledger row as the page and the JSON API show it."""
    tz = settings.tz
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    out["status_label"] = STATUS_LABELS.get(row["status"], humanize(row["status"]))
    out["refreshable"] = row["status"] in spec.refreshable and bool(row.get("dag_id") and row.get("run_id"))
    out["ti_url"] = task_instance_path(row)
    out["last_attempt_local"] = _local(row.get("last_attempt_at"), tz)
    if spec is DOCUMENTS:
        out["type_label"] = humanize(row["data_type"])
        out["date_local"] = _local(row["source_date"], tz)
        out["outlet_name"] = _outlet_name(settings, row["outlet_id"]) if row.get("outlet_id") else ""
    else:
        out["type_label"] = humanize(row["event_type"])
        out["date_local"] = _local(row["received_at"], tz)
    return out


def _page_json(page: listing.Page, spec: TableSpec, settings: SyncSettings) -> dict[str, Any]:
    return {
        "kind": spec.kind,
        "rows": [present(row, spec, settings) for row in page.rows],
        "newer": page.newer,
        "older": page.older,
        "total": page.total,
        "total_capped": page.total_capped,
        "counts": page.counts,
        "timezone": settings.timezone,
    }


# -- pages ------------------------------------------------------------------------------------------------
def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(login_url(target), status_code=status.HTTP_303_SEE_OTHER)


def _render_list(
    request: Request,
    user: Any,
    spec: TableSpec,
    params: dict[str, str | None],
    after: str | None,
    before: str | None,
    size: int,
) -> Response:
    settings, problem = _settings()
    try:
        scope = _scope(user, spec)
    except HTTPException as exc:
        return HTMLResponse(
            _templates.get_template("denied.html").render(message=exc.detail), status_code=exc.status_code
        )
    flt = _filter_from(
        spec,
        settings.tz,
        status_=params.get("status"),
        type_=params.get("type"),
        outlet=params.get("outlet"),
        date_from=params.get("from"),
        date_to=params.get("to"),
        q=params.get("q"),
        dag_id=params.get("dag_id"),
        run_id=params.get("run_id"),
    )
    started = time.perf_counter()
    with _ledger() as conn:
        try:
            page = listing.list_page(conn, spec, flt, scope, size=size, after=after, before=before)
        except ValueError as exc:  # a stale or edited cursor
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        types = listing.distinct_values(conn, spec, spec.type_column)
        outlets = listing.distinct_values(conn, spec, spec.outlet_column) if spec.outlet_column else []
    elapsed_ms = (time.perf_counter() - started) * 1000
    kept = {k: v for k, v in params.items() if v}

    def link(**changes: str | None) -> str:
        query = {**kept, **changes}
        return "?" + urlencode({k: v for k, v in query.items() if v})

    outlet_options = [
        (outlet_id, _outlet_name(settings, outlet_id))
        for outlet_id in sorted(set(outlets) | set(settings.outlets))
    ]
    template = "sync_status.html" if spec is DOCUMENTS else "webhook_log.html"
    html = _templates.get_template(template).render(
        spec=spec,
        rows=[present(row, spec, settings) for row in page.rows],
        page=page,
        params=kept,
        statuses=[(s, STATUS_LABELS.get(s, humanize(s))) for s in spec.statuses if s != "posting"],
        attention=ATTENTION,
        types=[(t, humanize(t)) for t in types],
        outlets=outlet_options,
        timezone=settings.timezone,
        problem=problem,
        newer_link=link(before=page.newer, after=None) if page.newer else None,
        older_link=link(after=page.older, before=None) if page.older else None,
        newest_link=link(after=None, before=None) if (after or before) else None,
        status_link=lambda s: link(status=s, after=None, before=None),
        elapsed_ms=elapsed_ms,
        size=size,
        user_name=getattr(user, "get_name", lambda: "")(),
    )
    return HTMLResponse(html)


def _page_params(request: Request) -> dict[str, str | None]:
    names = ("status", "type", "outlet", "from", "to", "q", "dag_id", "run_id")
    return {name: request.query_params.get(name) for name in names}


async def _list_page(
    request: Request, spec: TableSpec, after: str | None, before: str | None, size: int
) -> Response:
    """A list page for the signed-in user (rendered off the event loop), or the login redirect."""
    user = await _user_or_none(request)
    if user is None:
        return _login_redirect(request)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(
        _render_list, request, user, spec, _page_params(request), after, before, size
    )


@router.get("/sync-status", response_class=HTMLResponse, name="operator_sync_status")
async def sync_status_page(
    request: Request,
    after: str | None = None,
    before: str | None = None,
    size: Annotated[int, Query(ge=1, le=listing.MAX_PAGE_SIZE)] = listing.DEFAULT_PAGE_SIZE,
) -> Response:
    """Sync Status: iSeller-to-Accurate documents."""
    return await _list_page(request, DOCUMENTS, after, before, size)


@router.get("/webhook-log", response_class=HTMLResponse, name="operator_webhook_log")
async def webhook_log_page(
    request: Request,
    after: str | None = None,
    before: str | None = None,
    size: Annotated[int, Query(ge=1, le=listing.MAX_PAGE_SIZE)] = listing.DEFAULT_PAGE_SIZE,
) -> Response:
    """Webhook Log: Accurate-to-iSeller events."""
    return await _list_page(request, WEBHOOK_EVENTS, after, before, size)


@router.get("/run", name="operator_run_documents")
async def run_documents(request: Request, dag_id: str, run_id: str) -> Response:
    """The DAG-run tab: the list (documents or webhook events) filtered to that run."""
    user = await _user_or_none(request)
    if user is None:
        return _login_redirect(request)
    page = "webhook-log" if dag_id in HOME_DAGS[WEBHOOK_EVENTS.kind] else "sync-status"
    return RedirectResponse(f"{page}?{urlencode({'dag_id': dag_id, 'run_id': run_id})}", status_code=303)


# -- JSON API ------------------------------------------------------------------------------------------------
def _list_json(
    user: Any,
    spec: TableSpec,
    status_: str | None,
    type_: str | None,
    outlet: str | None,
    date_from: str | None,
    date_to: str | None,
    q: str | None,
    dag_id: str | None,
    run_id: str | None,
    ids: str | None,
    after: str | None,
    before: str | None,
    size: int,
) -> dict[str, Any]:
    settings, _ = _settings()
    scope = _scope(user, spec)
    flt = _filter_from(
        spec,
        settings.tz,
        status_=status_,
        type_=type_,
        outlet=outlet,
        date_from=date_from,
        date_to=date_to,
        q=q,
        dag_id=dag_id,
        run_id=run_id,
        ids=ids,
    )
    with _ledger() as conn:
        try:
            page = listing.list_page(
                conn, spec, flt, scope, size=size, after=after, before=before, with_totals=not flt.ids
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return _page_json(page, spec, settings)


def _list_endpoint(spec: TableSpec) -> Any:
    def endpoint(
        user: ApiUser,
        status_: Annotated[str | None, Query(alias="status")] = None,
        type_: Annotated[str | None, Query(alias="type")] = None,
        outlet: str | None = None,
        date_from: Annotated[str | None, Query(alias="from")] = None,
        date_to: Annotated[str | None, Query(alias="to")] = None,
        q: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        ids: str | None = None,
        after: str | None = None,
        before: str | None = None,
        size: Annotated[int, Query(ge=1, le=listing.MAX_PAGE_SIZE)] = listing.DEFAULT_PAGE_SIZE,
    ) -> dict[str, Any]:
        return _list_json(
            user,
            spec,
            status_,
            type_,
            outlet,
            date_from,
            date_to,
            q,
            dag_id,
            run_id,
            ids,
            after,
            before,
            size,
        )

    endpoint.__doc__ = f"A page of {spec.kind.replace('_', ' ')}, newest first (keyset paging: after/before)."
    return endpoint


router.add_api_route(
    "/api/documents", _list_endpoint(DOCUMENTS), methods=["GET"], name="operator_api_documents"
)
router.add_api_route(
    "/api/webhook-events", _list_endpoint(WEBHOOK_EVENTS), methods=["GET"], name="operator_api_webhook_events"
)


class RefreshRequest(BaseModel):
    """Refresh these rows: clear the failed task instances that own them."""

    kind: str = Field(pattern="^(documents|webhook_events)$")
    ids: list[int] = Field(min_length=1, max_length=MAX_REFRESH)


@router.post("/api/refresh", name="operator_api_refresh")
def refresh(
    body: RefreshRequest,
    request: Request,
    user: ApiUser,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> JSONResponse:
    """Clear, as the signed-in user, the failed task instances owning the selected rows."""
    # A JSON body only: a cross-site HTML form cannot send one without a CORS preflight.
    if "application/json" not in request.headers.get("content-type", ""):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the refresh request as JSON")
    spec = listing.SPECS[body.kind]
    token = _request_token(request, credentials)
    if not token:  # pragma: no cover - get_user succeeded, so a credential was there
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
    scope = _scope(user, spec)
    with _ledger() as conn:
        rows = listing.rows_by_id(conn, spec, body.ids, scope)
    result = clear_owners(rows, spec, airflow_api_url(request), token, page_name=_page_title(spec))
    return JSONResponse(result)


def _page_title(spec: TableSpec) -> str:
    return "Sync Status" if spec is DOCUMENTS else "Webhook Log"


def airflow_api_url(request: Request) -> str:
    """Where this API server answers Airflow's REST API: ``[api] base_url``, else this request's."""
    try:
        from airflow.sdk import conf

        configured = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # noqa: BLE001
        configured = ""
    base = configured or str(request.base_url).removesuffix(f"{APP_PREFIX.strip('/')}/")
    return base.rstrip("/")


def clear_owners(
    rows: list[dict[str, Any]],
    spec: TableSpec,
    api_url: str,
    token: str,
    *,
    page_name: str,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Clear the failed task instances of the rows' runs through Airflow's REST API, as ``token``'s user.

    Rows are grouped by DAG run. The task instance recorded on the rows is cleared; when it is not a
    failed one (e.g. a document that failed while being mapped is recorded on ``extract``, which
    succeeded), the run's failed task instances are cleared instead: that is what re-attempts them.
    """
    skipped = [
        {"id": row["id"], "reason": f"{STATUS_LABELS.get(row['status'], row['status'])}: nothing to refresh"}
        for row in rows
        if row["status"] not in spec.refreshable
    ]
    unowned = [
        {"id": row["id"], "reason": "no Airflow task has handled it yet"}
        for row in rows
        if row["status"] in spec.refreshable and not (row.get("dag_id") and row.get("run_id"))
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["status"] in spec.refreshable and row.get("dag_id") and row.get("run_id"):
            groups[(row["dag_id"], row["run_id"])].append(row)
    runs = []
    own = client is None
    http = client or httpx.Client(timeout=60.0)
    try:
        for (dag_id, run_id), members in groups.items():
            runs.append(_clear_run(http, api_url, token, dag_id, run_id, members, spec, page_name))
    finally:
        if own:
            http.close()
    return {"runs": runs, "skipped": skipped + unowned, "requested": len(rows)}


def _clear_run(
    http: httpx.Client,
    api_url: str,
    token: str,
    dag_id: str,
    run_id: str,
    members: list[dict[str, Any]],
    spec: TableSpec,
    page_name: str,
) -> dict[str, Any]:
    labels = [_row_label(row, spec) for row in members]
    note = f"Refresh from {page_name}: {', '.join(labels[:3])}" + (
        f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    )
    task_ids = sorted({row["task_id"] for row in members if row.get("task_id")})
    url = f"{api_url}/api/v2/dags/{quote(dag_id, safe='')}/clearTaskInstances"
    headers = {"Authorization": f"Bearer {token}"}
    outcome: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id, "ids": [row["id"] for row in members]}
    cleared: list[dict[str, Any]] = []
    for attempt_task_ids in (task_ids or None, None):
        body: dict[str, Any] = {
            "dry_run": False,
            "dag_run_id": run_id,
            "only_failed": True,
            "reset_dag_runs": True,
            "note": note[:1000],
        }
        if attempt_task_ids:
            body["task_ids"] = attempt_task_ids
        try:
            resp = http.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome.update(ok=False, message=f"Airflow's API could not be reached ({exc.__class__.__name__})")
            return outcome
        if resp.status_code != 200:
            outcome.update(ok=False, status_code=resp.status_code, message=_refusal(resp, dag_id, run_id))
            return outcome
        cleared = resp.json().get("task_instances", [])
        if cleared or not attempt_task_ids:
            break
    if not cleared:
        outcome.update(
            ok=False,
            message=f"No failed task in run {run_id}: it may already be running again. Nothing was cleared.",
        )
        return outcome
    names = sorted({ti["task_id"] for ti in cleared})
    outcome.update(
        ok=True,
        cleared=[{"task_id": ti["task_id"], "map_index": ti.get("map_index", -1)} for ti in cleared],
        message=f"Cleared {', '.join(names)} of run {run_id}; Airflow runs it again now.",
    )
    return outcome


def _refusal(resp: httpx.Response, dag_id: str, run_id: str) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = resp.text[:300]
    if resp.status_code in (401, 403):
        return f"Airflow refused: you may not clear tasks of DAG {dag_id} ({detail})."
    if resp.status_code == 404:
        return f"Airflow does not know run {run_id} of DAG {dag_id} any more ({detail})."
    return f"Airflow answered HTTP {resp.status_code}: {detail}"


def _row_label(row: dict[str, Any], spec: TableSpec) -> str:
    if spec is DOCUMENTS:
        return str(row.get("target_number") or row.get("source_number") or row.get("source_id"))
    return f"{humanize(row.get('event_type'))} {row.get('accurate_number') or row.get('uuid')}".strip()


# -- static files (icons, style, script: no data, no login needed) -------------------------------------------
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get("/static/{name}", name="operator_static", include_in_schema=False)
def static_file(name: str) -> Response:
    """Files of ``web/static`` (flat; names are checked against the directory listing)."""
    files = {path.name: path for path in STATIC_DIR.iterdir() if path.suffix in _STATIC_TYPES}
    path = files.get(name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return Response(
        path.read_bytes(),
        media_type=_STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=300"},
    )
