"""The **Reconciliation** page (Browse menu): outlets x days, green where iSeller and Accurate agree.

Served next to Sync Status and Webhook Log (same plugin app, same sign-in, same look). A red cell
shows how many differences and how much; it opens the day's differences with their class, the
documents behind them and the fix. A "missing in Accurate" difference offers **Re-post**, which
triggers ``iseller_accurate_reconciliation`` through Airflow's REST API with the signed-in user's
own token (so Airflow checks their permission to trigger it and audits it under their name); the run
re-posts exactly once (see :func:`include.iseller_accurate.reconciliation.store.repost`) and checks
the day again.

Who may see it: users who may read the task instances of DAG ``iseller_accurate_reconciliation``.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from include.iseller_accurate.airflow_internals import may_read_task_instances
from include.iseller_accurate.reconciliation import CLASSES, store
from include.iseller_accurate.reconciliation.run import MAX_DAYS
from include.iseller_accurate.reconciliation.tasks import DAG_ID, MAX_REPOST
from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.web import auth, refresh, shared

router = APIRouter(prefix=shared.PAGES_PREFIX)
DEFAULT_DAYS = 14


def external_view() -> dict[str, Any]:
    """The navigation entry (Browse menu), next to Sync Status and Webhook Log."""
    return shared.nav_view("Reconciliation", "reconciliation", "reconciliation")


def _check_access(user: Any) -> None:
    """403 unless ``user`` may read the reconciliation DAG's task instances."""
    if not may_read_task_instances(user, DAG_ID):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"You may not read the task instances of {DAG_ID}.")


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name}: not a date (YYYY-MM-DD): {value[:40]!r}"
        ) from None


def _range(settings: SyncSettings, date_from: str | None, date_to: str | None) -> tuple[date, date]:
    today = datetime.now(settings.tz).date()
    end = _day(date_to, "to") or today
    start = _day(date_from, "from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "from: after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"show at most {MAX_DAYS} days at once")
    return start, end


def _money(value: Any) -> str:
    if value is None:
        return ""
    number = Decimal(str(value))
    return f"{number:,.2f}"


def _outlet_names(settings: SyncSettings, outlet_ids: set[str]) -> list[tuple[str, str]]:
    named = [(oid, shared.outlet_name(settings, oid)) for oid in set(settings.outlets) | outlet_ids]
    return sorted(named, key=lambda pair: (pair[1].casefold(), pair[0]))


def grid_data(conn: Any, settings: SyncSettings, start: date, end: date) -> dict[str, Any]:
    """Outlets x days with each cell's status, count and amount (also the JSON API's answer)."""
    cells = store.grid(conn, start, end)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    outlets = _outlet_names(settings, {key[0] for key in cells})
    rows = []
    for outlet_id, name in outlets:
        row_cells = []
        for day in days:
            cell = cells.get((outlet_id, day))
            row_cells.append(
                {
                    "day": day.isoformat(),
                    "status": cell["status"] if cell else "unchecked",
                    "differences": cell["differences"] if cell else 0,
                    "amount": str(cell["difference_amount"]) if cell else "0",
                    "amount_label": _money(cell["difference_amount"]) if cell else "",
                    "reason": cell["reason"] if cell else None,
                    "checked_at": cell["checked_at"].isoformat() if cell else None,
                }
            )
        rows.append({"outlet_id": outlet_id, "name": name, "cells": row_cells})
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": [d.isoformat() for d in days],
        "outlets": rows,
        "timezone": settings.timezone,
    }


def _difference_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}
    for key in ("expected_amount", "accurate_amount", "amount"):
        out[key] = None if row.get(key) is None else str(row[key])
    out["class_label"] = CLASSES.get(row["class"], row["class"])
    out["repostable"] = row["class"] == "missing_in_accurate" and row.get("ledger_status") == "synced"
    out["sync_status_link"] = (
        f"sync-status?{urlencode({'q': row['number'] or row['source_number'] or ''})}"
        if row["class"] == "not_synced"
        else None
    )
    return out


# -- pages ---------------------------------------------------------------------------------------------
def _grid_page(user: Any, date_from: str | None, date_to: str | None) -> Response:
    settings, problem = shared.settings()
    try:
        _check_access(user)
    except HTTPException as exc:
        return shared.denied(exc.detail, exc.status_code)
    start, end = _range(settings, date_from, date_to)
    started = time.perf_counter()
    with shared.ledger() as conn:
        data = grid_data(conn, settings, start, end)
        checks, stock_diffs = store.latest_stock(conn)
    names = dict(_outlet_names(settings, {c["outlet_id"] for c in checks}))
    span = end - start + timedelta(days=1)
    return shared.render(
        "reconciliation.html",
        data=data,
        problem=problem,
        stock=[
            {
                **check,
                "name": names.get(check["outlet_id"], check["outlet_id"]),
                "rows": stock_diffs.get(check["outlet_id"], []),
            }
            for check in checks
        ],
        earlier=_range_link(start - span, start - timedelta(days=1)),
        later=_range_link(end + timedelta(days=1), end + span),
        day_link=lambda outlet, day: f"reconciliation-day?{urlencode({'outlet': outlet, 'day': day})}",
        elapsed_ms=(time.perf_counter() - started) * 1000,
        user_name=shared.user_name(user),
    )


def _day_page(user: Any, outlet: str, day_text: str) -> Response:
    settings, problem = shared.settings()
    try:
        _check_access(user)
    except HTTPException as exc:
        return shared.denied(exc.detail, exc.status_code)
    day = _day(day_text, "day")
    assert day is not None
    with shared.ledger() as conn:
        row, diffs = store.day_detail(conn, outlet[:200], day)
    return shared.render(
        "reconciliation_day.html",
        outlet_id=outlet,
        outlet_name=shared.outlet_name(settings, outlet),
        day=day.isoformat(),
        row=row,
        totals=_totals(row),
        differences=[_difference_json(d) for d in diffs],
        problem=problem,
        money=_money,
        back="reconciliation"
        + _range_link(
            day - timedelta(days=DEFAULT_DAYS // 2),
            min(day + timedelta(days=DEFAULT_DAYS // 2 - 1), datetime.now(settings.tz).date()),
        ),
        task_link=_task_link(row),
    )


def _range_link(start: date, end: date) -> str:
    return f"?{urlencode({'from': start.isoformat(), 'to': end.isoformat()})}"


def _task_link(row: dict[str, Any] | None) -> str | None:
    if not row or not row.get("run_id"):
        return None
    return shared.airflow_ui_path(DAG_ID, row["run_id"], "reconcile")


def _totals(row: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(figure, iSeller, Accurate) lines of the day's summary."""
    if not row or not row.get("iseller") or not row.get("accurate"):
        return []
    i, a = row["iseller"], row["accurate"]
    lines = [
        (
            "Sales (orders / invoices)",
            f"{i.get('orders', 0)}: {_money(i.get('net_sales'))}",
            f"{a.get('invoices', 0)}: {_money(a.get('invoice_amount'))}",
        ),
        ("Tax (PPN)", _money(i.get("tax")), ""),
        ("Discounts", _money(i.get("discounts")), ""),
        (
            "Refunds / returns",
            f"{i.get('refunds', 0)}: {_money(i.get('refund_amount'))}",
            f"{a.get('returns', 0)}: {_money(a.get('return_amount'))}",
        ),
    ]
    payments = i.get("payments") or {}
    accounts = a.get("receipts_by_account") or {}
    lines.append(
        (
            "Payments / receipts",
            "; ".join(f"{k} {_money(v)}" for k, v in payments.items()) or "0",
            "; ".join(f"{k} {_money(v)}" for k, v in accounts.items()) or "0",
        )
    )
    return lines


@router.get("/reconciliation", response_class=HTMLResponse, name="operator_reconciliation")
async def reconciliation_page(request: Request) -> Response:
    """The grid: outlets x days, and the latest stock check."""
    q = request.query_params
    return await auth.signed_in_page(request, _grid_page, q.get("from"), q.get("to"))


@router.get("/reconciliation-day", response_class=HTMLResponse, name="operator_reconciliation_day")
async def reconciliation_day_page(request: Request, outlet: str, day: str) -> Response:
    """One outlet and day: its differences, their class and the fix."""
    return await auth.signed_in_page(request, _day_page, outlet, day)


# -- JSON API ------------------------------------------------------------------------------------------
@router.get("/api/reconciliation", name="operator_api_reconciliation")
def reconciliation_json(
    user: auth.ApiUser,
    date_from: Annotated[str | None, Query(alias="from")] = None,
    date_to: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The grid as JSON."""
    _check_access(user)
    settings, _ = shared.settings()
    start, end = _range(settings, date_from, date_to)
    with shared.ledger() as conn:
        return grid_data(conn, settings, start, end)


@router.get("/api/reconciliation/day", name="operator_api_reconciliation_day")
def reconciliation_day_json(user: auth.ApiUser, outlet: str, day: str) -> dict[str, Any]:
    """One outlet and day as JSON."""
    _check_access(user)
    parsed = _day(day, "day")
    assert parsed is not None
    with shared.ledger() as conn:
        row, diffs = store.day_detail(conn, outlet[:200], parsed)
    return {
        "outlet_id": outlet,
        "day": parsed.isoformat(),
        "status": row["status"] if row else "unchecked",
        "iseller": _exact(row["iseller"]) if row else None,
        "accurate": _exact(row["accurate"]) if row else None,
        "differences": [_difference_json(d) for d in diffs],
    }


def _exact(value: Any) -> Any:
    """Amounts as decimal strings in JSON (never binary floats)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


class RepostRequest(BaseModel):
    """Re-post the documents of these "missing in Accurate" differences."""

    ids: list[int] = Field(min_length=1, max_length=MAX_REPOST)


@router.post("/api/reconciliation/repost", name="operator_api_reconciliation_repost")
def repost(body: RepostRequest, request: Request, actor: auth.Actor) -> JSONResponse:
    """Trigger the reconciliation DAG, as the signed-in user, to re-post and check those days again."""
    auth.require_json(request, "re-post")
    _check_access(actor.user)
    with shared.ledger() as conn:
        diffs = store.differences_by_id(conn, body.ids)
    wrong = [d["id"] for d in diffs if d["class"] != "missing_in_accurate"]
    if wrong or len(diffs) != len(set(body.ids)):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "only current 'missing in Accurate' differences can be re-posted; reload the page",
        )
    return JSONResponse(trigger_repost(diffs, shared.airflow_api_url(request), actor.token))


def trigger_repost(
    diffs: list[dict[str, Any]], api_url: str, token: str, client: httpx.Client | None = None
) -> dict[str, Any]:
    """One run of the reconciliation DAG re-posting ``diffs`` and checking their outlets and days."""
    days = sorted({d["day"] for d in diffs})
    numbers = [str(d["number"]) for d in diffs]
    conf = {
        "repost": [d["id"] for d in diffs],
        "date_from": days[0].isoformat(),
        "date_to": days[-1].isoformat(),
        "outlet_ids": sorted({d["outlet_id"] for d in diffs}),
        "check_stock": False,
    }
    note = refresh.listed(numbers, "Re-post from Reconciliation")
    try:
        with refresh.api_client(client) as http:
            resp = http.post(
                f"{api_url}/api/v2/dags/{quote(DAG_ID, safe='')}/dagRuns",
                json={"logical_date": None, "conf": conf, "note": note},
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        return {"ok": False, "message": refresh.unreachable(exc)}
    if resp.status_code not in (200, 201):
        return {
            "ok": False,
            "status_code": resp.status_code,
            "message": refresh.refusal(resp, DAG_ID, "(new)"),
        }
    run_id = resp.json().get("dag_run_id")
    return {
        "ok": True,
        "dag_run_id": run_id,
        "message": f"Run {run_id} re-posts {', '.join(numbers[:3])} and checks the day again;"
        " reload in a minute.",
    }
