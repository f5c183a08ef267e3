"""What every operator page shares: where it lives in Airflow, its templates, the ledger, the settings.

The pages (Sync Status, Webhook Log, Reconciliation, Preflight) are served by the project's plugin
app under ``/integrations/operator/``. Everything they link to in Airflow is built here from one
reading of Airflow's base URL (:func:`airflow_root_path` for links in the UI, :func:`airflow_api_url`
for calls to its REST API), so a deployment under a path prefix needs no second place changed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from include.iseller_accurate import status as st
from include.iseller_accurate.airflow_internals import api_root_path, metastore_variable
from include.iseller_accurate.kinds import label_of
from include.iseller_accurate.ledger import connect, dsn_from_connection, migrate
from include.iseller_accurate.settings import SETTINGS_VARIABLE, SyncSettings, parse_settings
from include.iseller_accurate.web.listing import ATTENTION

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
#: Where the plugin mounts the project's FastAPI app, and the operator pages inside it.
APP_PREFIX = "/integrations"
PAGES_PREFIX = "/operator"


# -- where things are in Airflow -----------------------------------------------------------------------
def airflow_root_path() -> str:
    """Path prefix of Airflow's UI and API (``[api] base_url``'s path), ending with ``/``."""
    return api_root_path()


def pages_path(page: str = "") -> str:
    """Absolute path of an operator page (or of ``static/<file>``) as the browser reaches it."""
    return f"{airflow_root_path()}{APP_PREFIX.strip('/')}{PAGES_PREFIX}/{page}"


def nav_view(name: str, route: str, icon: str) -> dict[str, Any]:
    """A Browse-menu entry of the Airflow UI (an external view) for the page ``route``."""
    return {
        "name": name,
        "href": pages_path(route),
        "url_route": route,
        "destination": "nav",
        "category": "browse",
        "icon": pages_path(f"static/{icon}.svg"),
        "icon_dark_mode": pages_path(f"static/{icon}-dark.svg"),
    }


def airflow_ui_path(
    dag_id: str,
    run_id: str | None = None,
    task_id: str | None = None,
    map_index: int | None = None,
) -> str:
    """Airflow UI path of a DAG, one of its runs, or a task instance of that run."""
    path = f"{airflow_root_path()}dags/{quote(dag_id, safe='')}"
    if run_id is not None:
        path += f"/runs/{quote(run_id, safe='')}"
        if task_id is not None:
            path += f"/tasks/{quote(task_id, safe='')}"
            if map_index is not None and map_index >= 0:
                path += f"/mapped/{map_index}"
    return path


def airflow_api_url(request: Request) -> str:
    """Where this API server answers Airflow's REST API: ``[api] base_url``, else this request's."""
    try:
        from airflow.sdk import conf

        configured = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # noqa: BLE001
        configured = ""
    base = configured or str(request.base_url).removesuffix(f"{APP_PREFIX.strip('/')}/")
    return base.rstrip("/")


# -- words -------------------------------------------------------------------------------------------------
STATUS_LABELS = {
    **{status: status.capitalize() for status in st.DOCUMENT_STATUSES + st.EVENT_STATUSES},
    ATTENTION: "Needs attention",
}


def type_label(data_type: str | None) -> str:
    """A document kind as the pages name it: ``sales_invoice`` -> ``Sales invoice`` (from its kind)."""
    text = label_of(data_type)
    return text[:1].upper() + text[1:]


def humanize(code: str | None) -> str:
    """``sales_invoice`` / ``RECEIVE_ITEM`` -> ``Sales invoice`` / ``Receive item``."""
    if not code:
        return ""
    text = code.replace("_", " ").replace("-", " ").lower()
    return text[:1].upper() + text[1:]


# -- templates -------------------------------------------------------------------------------------------
templates = Environment(
    loader=FileSystemLoader(WEB_DIR / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page from ``templates/<template>``."""
    return HTMLResponse(templates.get_template(template).render(**values), status_code=status_code)


def denied(message: Any, status_code: int = status.HTTP_403_FORBIDDEN) -> HTMLResponse:
    """The "Not allowed" page, saying why."""
    return render("denied.html", status_code, message=message)


def user_name(user: Any) -> str:
    """The signed-in user's name for the footnote ("signed in as ...")."""
    return str(getattr(user, "get_name", lambda: "")())


# -- ledger and settings ---------------------------------------------------------------------------------
_migrated = threading.Event()
_settings_cache: tuple[float, SyncSettings, str | None] | None = None
_SETTINGS_TTL = 30.0


def ledger() -> Any:
    """A ledger connection (migrated once per process)."""
    conn = connect(dsn_from_connection(), autocommit=True)
    if not _migrated.is_set():
        migrate(conn)
        _migrated.set()
    return conn


def settings() -> tuple[SyncSettings, str | None]:
    """The operator settings (time zone, outlet names), cached briefly; a problem is reported."""
    global _settings_cache
    now = time.monotonic()
    if _settings_cache and now - _settings_cache[0] < _SETTINGS_TTL:
        return _settings_cache[1], _settings_cache[2]
    problem = None
    try:
        current = parse_settings(metastore_variable(SETTINGS_VARIABLE))
    except Exception as exc:  # noqa: BLE001 - the pages still work with defaults; say why
        current, problem = SyncSettings(), f"Settings not readable, showing defaults: {exc}"
    _settings_cache = (now, current, problem)
    return current, problem


def outlet_name(current: SyncSettings, outlet_id: str) -> str:
    """The outlet's display name from the settings (``outlets.<id>.name``), else its id."""
    outlet = current.outlet(outlet_id)
    return (outlet.name if outlet else None) or outlet_id
