"""The operators' pages inside the Airflow UI: **Sync Status** and **Webhook Log**, and their JSON API.

Served by the project's plugin under ``/integrations/operator/`` and shown in Airflow's navigation as
external views (an iframe inside the Airflow UI, same origin). Shop operators see every document
with its status and the reason it failed, filter and page through them, follow a link to the Airflow
task instance that handled it, and press **Refresh** on a failed or blocked one after repairing the
cause.

Who may see what, and how they sign in: ``web/auth.py``. Refresh (clearing the owning task instance
through Airflow's REST API as the user): ``web/refresh.py``, whose route is part of :data:`router`.
The ledger queries behind the lists: ``web/listing.py``. Static files: ``web/static.py``.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.web import auth, listing, refresh, shared
from include.iseller_accurate.web.listing import ATTENTION, DOCUMENTS, WEBHOOK_EVENTS, ListFilter, TableSpec

router = APIRouter(prefix=shared.PAGES_PREFIX)
router.include_router(refresh.router)
PageSize = Annotated[int, Query(ge=1, le=listing.MAX_PAGE_SIZE)]


# -- navigation entries (the plugin's external_views) -------------------------------------------------
def external_views() -> list[dict[str, Any]]:
    """The Airflow UI entries: two pages in the navigation and a tab on every DAG run."""
    return [
        shared.nav_view("Sync Status", "sync-status", "sync-status"),
        shared.nav_view("Webhook Log", "webhook-log", "webhook-log"),
        {
            "name": "Sync documents",
            "href": shared.pages_path("run?dag_id={DAG_ID}&run_id={RUN_ID}"),
            "url_route": "sync-documents",
            "destination": "dag_run",
        },
    ]


# -- filters from the query string -----------------------------------------------------------------------
#: Longest value accepted for a text filter (a search, a DAG or run id); real ones are far shorter.
MAX_PARAM_LENGTH = 250
#: Most row ids one request may name.
MAX_IDS = listing.MAX_PAGE_SIZE
#: The filters of a list page, by their query-string names (the JSON API adds ``ids``).
FILTER_PARAMS = ("status", "type", "outlet", "from", "to", "q", "dag_id", "run_id")


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


def _filter_from(spec: TableSpec, tz: tzinfo, params: Mapping[str, str | None]) -> ListFilter:
    """The list filter chosen by ``params`` (query-string names), or 400 naming the bad one."""
    status_, type_ = _text_param(params.get("status"), "status"), _text_param(params.get("type"), "type")
    outlet, q = _text_param(params.get("outlet"), "outlet"), _text_param(params.get("q"), "q")
    ids = _text_param(params.get("ids"), "ids")
    dag_id, run_id = _text_param(params.get("dag_id"), "dag_id"), _text_param(params.get("run_id"), "run_id")
    if status_ and status_ != ATTENTION and status_ not in spec.statuses:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"status: one of {', '.join(spec.statuses)} or {ATTENTION}"
        )
    day_from, day_to = _parse_day(params.get("from"), "from"), _parse_day(params.get("to"), "to")
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
def task_instance_path(row: dict[str, Any]) -> str | None:
    """Airflow UI path of the task instance that last handled ``row``."""
    if not (row.get("dag_id") and row.get("run_id") and row.get("task_id")):
        return None
    return shared.airflow_ui_path(row["dag_id"], row["run_id"], row["task_id"], row.get("map_index"))


def _status_label(status_: str) -> str:
    return shared.STATUS_LABELS.get(status_, shared.humanize(status_))


def _local(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def present(row: dict[str, Any], spec: TableSpec, settings: SyncSettings) -> dict[str, Any]:
    """A ledger row as the page and the JSON API show it."""
    tz = settings.tz
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    out["status_label"] = _status_label(row["status"])
    out["refreshable"] = row["status"] in spec.refreshable and spec.owned(row)
    out["ti_url"] = task_instance_path(row)
    out["last_attempt_local"] = _local(row.get("last_attempt_at"), tz)
    if spec is DOCUMENTS:
        out["type_label"] = shared.type_label(row["data_type"])
        out["date_local"] = _local(row["source_date"], tz)
        out["outlet_name"] = shared.outlet_name(settings, row["outlet_id"]) if row.get("outlet_id") else ""
    else:
        out["type_label"] = shared.humanize(row["event_type"])
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
def _render_list(
    user: Any,
    spec: TableSpec,
    params: dict[str, str | None],
    after: str | None,
    before: str | None,
    size: int,
) -> Response:
    settings, problem = shared.settings()
    try:
        scope = auth.list_scope(user, spec)
    except HTTPException as exc:
        return shared.denied(exc.detail, exc.status_code)
    flt = _filter_from(spec, settings.tz, params)
    started = time.perf_counter()
    with shared.ledger() as conn:
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
        (outlet_id, shared.outlet_name(settings, outlet_id))
        for outlet_id in sorted(set(outlets) | set(settings.outlets))
    ]
    return shared.render(
        "sync_status.html" if spec is DOCUMENTS else "webhook_log.html",
        spec=spec,
        rows=[present(row, spec, settings) for row in page.rows],
        page=page,
        params=kept,
        statuses=[(s, _status_label(s)) for s in spec.statuses if s != "posting"],
        attention=ATTENTION,
        types=[(t, shared.type_label(t)) for t in types],
        outlets=outlet_options,
        timezone=settings.timezone,
        problem=problem,
        newer_link=link(before=page.newer, after=None) if page.newer else None,
        older_link=link(after=page.older, before=None) if page.older else None,
        newest_link=link(after=None, before=None) if (after or before) else None,
        status_link=lambda s: link(status=s, after=None, before=None),
        elapsed_ms=elapsed_ms,
        size=size,
        user_name=shared.user_name(user),
    )


def _list_page(spec: TableSpec, doc: str) -> Any:
    async def page(
        request: Request,
        after: str | None = None,
        before: str | None = None,
        size: PageSize = listing.DEFAULT_PAGE_SIZE,
    ) -> Response:
        """A list page for the signed-in user (rendered off the event loop), or the login redirect."""
        params = {name: request.query_params.get(name) for name in FILTER_PARAMS}
        return await auth.signed_in_page(request, _render_list, spec, params, after, before, size)

    page.__doc__ = doc
    return page


for _path, _spec, _name, _doc in (
    ("/sync-status", DOCUMENTS, "operator_sync_status", "Sync Status: iSeller-to-Accurate documents."),
    ("/webhook-log", WEBHOOK_EVENTS, "operator_webhook_log", "Webhook Log: Accurate-to-iSeller events."),
):
    router.add_api_route(
        _path, _list_page(_spec, _doc), methods=["GET"], response_class=HTMLResponse, name=_name
    )


@router.get("/run", name="operator_run_documents")
async def run_documents(request: Request, dag_id: str, run_id: str) -> Response:
    """The DAG-run tab: the list (documents or webhook events) filtered to that run."""
    user = await auth.user_or_none(request)
    if user is None:
        return auth.login_redirect(request)
    page = "webhook-log" if dag_id in auth.HOME_DAGS[WEBHOOK_EVENTS.kind] else "sync-status"
    return RedirectResponse(f"{page}?{urlencode({'dag_id': dag_id, 'run_id': run_id})}", status_code=303)


# -- JSON API ------------------------------------------------------------------------------------------------
def _list_json(
    user: Any,
    spec: TableSpec,
    params: Mapping[str, str | None],
    after: str | None,
    before: str | None,
    size: int,
) -> dict[str, Any]:
    settings, _ = shared.settings()
    scope = auth.list_scope(user, spec)
    flt = _filter_from(spec, settings.tz, params)
    with shared.ledger() as conn:
        try:
            page = listing.list_page(
                conn, spec, flt, scope, size=size, after=after, before=before, with_totals=not flt.ids
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return _page_json(page, spec, settings)


def _list_endpoint(spec: TableSpec) -> Any:
    def endpoint(
        user: auth.ApiUser,
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
        size: PageSize = listing.DEFAULT_PAGE_SIZE,
    ) -> dict[str, Any]:
        params = {"status": status_, "type": type_, "outlet": outlet, "from": date_from, "to": date_to}
        params |= {"q": q, "dag_id": dag_id, "run_id": run_id, "ids": ids}
        return _list_json(user, spec, params, after, before, size)

    endpoint.__doc__ = f"A page of {spec.kind.replace('_', ' ')}, newest first (keyset paging: after/before)."
    return endpoint


router.add_api_route(
    "/api/documents", _list_endpoint(DOCUMENTS), methods=["GET"], name="operator_api_documents"
)
router.add_api_route(
    "/api/webhook-events", _list_endpoint(WEBHOOK_EVENTS), methods=["GET"], name="operator_api_webhook_events"
)
