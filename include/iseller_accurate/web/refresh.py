"""Acting through Airflow's REST API as the signed-in user: **Refresh** (and the calls Re-post shares).

**Refresh** on Sync Status or Webhook Log clears the task instance that owns a row through Airflow's
public REST API (``POST /api/v2/dags/{dag_id}/clearTaskInstances``) with the signed-in user's own
token, so Airflow checks their permission to clear it and records the action in its audit log under
their name. The Reconciliation page's **Re-post** triggers a DAG run the same way (see
``web/reconciliation.py``) with the helpers below.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from include.iseller_accurate.web import auth, listing, shared
from include.iseller_accurate.web.listing import DOCUMENTS, TableSpec

router = APIRouter()
#: Most rows one Refresh may name (a page at most).
MAX_REFRESH = listing.MAX_PAGE_SIZE


class RefreshRequest(BaseModel):
    """Refresh these rows: clear the failed task instances that own them."""

    kind: str = Field(pattern="^(documents|webhook_events)$")
    ids: list[int] = Field(min_length=1, max_length=MAX_REFRESH)


@router.post("/api/refresh", name="operator_api_refresh")
def refresh(body: RefreshRequest, request: Request, actor: auth.Actor) -> JSONResponse:
    """Clear, as the signed-in user, the failed task instances owning the selected rows."""
    auth.require_json(request, "refresh")
    spec = listing.SPECS[body.kind]
    scope = auth.list_scope(actor.user, spec)
    with shared.ledger() as conn:
        rows = listing.rows_by_id(conn, spec, body.ids, scope)
    api_url = shared.airflow_api_url(request)
    result = clear_owners(rows, spec, api_url, actor.token, page_name=page_title(spec))
    return JSONResponse(result, status_code=refused_status(result))


def refused_status(result: dict[str, Any]) -> int:
    """The HTTP status of a Refresh: 403 when Airflow refused the user every run asked of it.

    A Refresh may touch several DAG runs; it answers 200 with each run's outcome unless the user may
    clear none of them, the case of a viewer: then 403, with the refusal as ``detail`` (what the page
    shows) beside the same per-run outcomes.
    """
    runs = result["runs"]
    if runs and all(run.get("status_code") in (401, 403) for run in runs):
        result["detail"] = runs[0]["message"]
        return 403
    return 200


def page_title(spec: TableSpec) -> str:
    return "Sync Status" if spec is DOCUMENTS else "Webhook Log"


# -- calls to Airflow's REST API -------------------------------------------------------------------------
@contextmanager
def api_client(client: httpx.Client | None = None) -> Iterator[httpx.Client]:
    """``client`` as given (left open), or a new one closed afterwards."""
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=60.0) as own:
        yield own


def unreachable(exc: httpx.HTTPError) -> str:
    return f"Airflow's API could not be reached ({exc.__class__.__name__})"


def listed(names: Sequence[str], prefix: str) -> str:
    """A note for Airflow: ``prefix: a, b, c and 2 more`` (at most 1,000 characters)."""
    text = f"{prefix}: {', '.join(names[:3])}" + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return text[:1000]


def refusal(resp: httpx.Response, dag_id: str, run_id: str) -> str:
    """Airflow's refusal of a call, in the operator's words."""
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = resp.text[:300]
    if resp.status_code in (401, 403):
        return f"Airflow refused: you may not clear tasks of DAG {dag_id} ({detail})."
    if resp.status_code == 404:
        return f"Airflow does not know run {run_id} of DAG {dag_id} any more ({detail})."
    return f"Airflow answered HTTP {resp.status_code}: {detail}"


# -- clearing the owners of rows ---------------------------------------------------------------------------
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
    skipped: list[dict[str, Any]] = []
    unowned: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["status"] not in spec.refreshable:
            label = shared.STATUS_LABELS.get(row["status"], row["status"])
            skipped.append({"id": row["id"], "reason": f"{label}: nothing to refresh"})
        elif not spec.owned(row):
            unowned.append({"id": row["id"], "reason": "no Airflow task has handled it yet"})
        else:
            groups[(row["dag_id"], row["run_id"])].append(row)
    with api_client(client) as http:
        runs = [
            _clear_run(http, api_url, token, dag_id, run_id, members, spec, page_name)
            for (dag_id, run_id), members in groups.items()
        ]
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
    note = listed([_row_label(row, spec) for row in members], f"Refresh from {page_name}")
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
            "note": note,
        }
        if attempt_task_ids:
            body["task_ids"] = attempt_task_ids
        try:
            resp = http.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome.update(ok=False, message=unreachable(exc))
            return outcome
        if resp.status_code != 200:
            outcome.update(ok=False, status_code=resp.status_code, message=refusal(resp, dag_id, run_id))
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


def _row_label(row: dict[str, Any], spec: TableSpec) -> str:
    if spec is DOCUMENTS:
        return str(row.get("target_number") or row.get("source_number") or row.get("source_id"))
    return f"{shared.humanize(row.get('event_type'))} {row.get('accurate_number') or row.get('uuid')}".strip()
