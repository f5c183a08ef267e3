"""Sign-in and scope of the operator pages: Airflow's own authentication and permissions.

- The Airflow UI keeps its JWT in the ``_token`` cookie, sent with every same-origin request (the
  pages are same-origin). API clients may send ``Authorization: Bearer <token>`` instead. Both are
  resolved by Airflow's own ``get_user`` (see airflow_internals.resolve_user); plugin apps are not
  protected by default, so every route depends on it. Anonymous: the JSON endpoints answer 401, the
  pages redirect to Airflow's login.
- A user sees only the rows of DAGs whose task instances the auth manager lets them read.
- Actions (Refresh, Re-post) call Airflow's REST API with the signed-in user's own token
  (:data:`Actor`), so Airflow checks their permission and audits the action under their name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from include.iseller_accurate.airflow_internals import login_url, readable_task_instance_dag_ids, resolve_user
from include.iseller_accurate.web.listing import DOCUMENTS, WEBHOOK_EVENTS, Scope, TableSpec

COOKIE_NAME_JWT_TOKEN = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
#: The DAGs whose rows each list holds before any task touched them (see Scope.unowned).
HOME_DAGS = {
    DOCUMENTS.kind: (
        "iseller_sales_to_accurate",
        "iseller_transfers_to_accurate",
        "iseller_stock_opname_to_accurate",
    ),
    WEBHOOK_EVENTS.kind: ("accurate_webhooks_to_iseller",),
}

bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def user_or_none(request: Request) -> Any:
    """The signed-in Airflow user (cookie or bearer token), or None."""
    credentials = await bearer(request)
    try:
        return await resolve_user(request, credentials)
    except HTTPException:
        return None


async def api_user(request: Request) -> Any:
    """Dependency of the JSON endpoints: Airflow's own resolution; 401/403 when it fails."""
    return await resolve_user(request, await bearer(request))


ApiUser = Annotated[Any, Depends(api_user)]


def login_redirect(request: Request) -> RedirectResponse:
    """To Airflow's login, then back to this page."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(login_url(target), status_code=status.HTTP_303_SEE_OTHER)


async def signed_in_page(request: Request, render: Callable[..., Response], *args: Any) -> Response:
    """``render(user, *args)`` for the signed-in user (off the event loop), else the login redirect."""
    user = await user_or_none(request)
    if user is None:
        return login_redirect(request)
    return await run_in_threadpool(render, user, *args)


def require_json(request: Request, what: str) -> None:
    """415 unless the body is JSON: a cross-site HTML form cannot send one without a CORS preflight."""
    if "application/json" not in request.headers.get("content-type", ""):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"send the {what} request as JSON")


@dataclass(frozen=True)
class Acting:
    """The signed-in user and their own token (bearer header, else the UI's cookie), to act as them."""

    user: Any
    token: str


async def _acting(request: Request, user: ApiUser, credentials: Credentials) -> Acting:
    if credentials and credentials.scheme.lower() == "bearer":
        token: str | None = credentials.credentials
    else:
        token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:  # pragma: no cover - get_user succeeded, so a credential was there
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
    return Acting(user, token)


#: Dependency of the actions (Refresh, Re-post): 401/403 like :data:`ApiUser`.
Actor = Annotated[Acting, Depends(_acting)]


def list_scope(user: Any, spec: TableSpec) -> Scope:
    """The rows of a list ``user`` may see: those of DAGs whose task instances they can read."""
    readable = readable_task_instance_dag_ids(user)
    home = HOME_DAGS[spec.kind]
    if not readable:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not read the task instances of any sync DAG.")
    return Scope(dag_ids=frozenset(readable), unowned=any(dag_id in readable for dag_id in home))
