"""What a failed sync task says inside Airflow: a table at the end of its log, and its note.

Attached to every sync task through ``DEFAULT_ARGS`` (see :mod:`include.iseller_accurate.tasks`):

- :func:`record_failure` (``on_failure_callback``): reads from the ledger which documents (or webhook
  events) of the run are not synced and why, logs them as a short table (the callback runs after the
  task failed, so the table ends the task's log) and sets the task instance's note to one line:
  ``"3 of 120 failed: sales invoice SI/JKT01-1092: ... (+2 more)"``. The note is what the Airflow
  grid and the task-instance page show first, without opening the log.
- :func:`record_success` (``on_success_callback``): after a retry or a sync refresh (try 2 and up),
  replaces that note with the outcome, so a stale failure note does not outlive the repair.

Airflow 3.3's Task SDK cannot set a task instance's note from the task (the execution API has no
such call), so the note goes through Airflow's public REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}``) with the credentials of
the ``airflow_api`` connection (host = the API server's URL, login/password exchanged at
``POST /auth/token``, or ``extra.token``). Without that connection the note is skipped (the log table
is still written). Nothing here ever makes the task fail differently: errors are logged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from include.iseller_accurate.kinds import label_of

log = logging.getLogger(__name__)

AIRFLOW_API_CONN_ID = "airflow_api"
#: Airflow refuses longer notes.
MAX_NOTE_CHARS = 1000
#: Rows of the log table (the full list is on the Sync Status page).
TABLE_ROWS = 20


@dataclass
class RunOutcome:
    """What a run's documents (or webhook events) look like in the ledger."""

    total: int = 0
    #: (status, document, reason) of every failed or blocked one, failed first, oldest first.
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    #: How many are still pending (never attempted, e.g. the task crashed before posting them).
    unfinished: int = 0
    kind: str = "documents"

    @property
    def what(self) -> str:
        return "documents" if self.kind == "documents" else "webhook events"

    @property
    def blocked(self) -> int:
        return sum(1 for status, _, _ in self.problems if status == "blocked")

    def note(self, try_number: int | None = None) -> str:
        """One line for the task-instance note: ``"3 of 120 failed: <first>: <reason> (+2 more)"``."""
        if not self.problems:
            if self.unfinished:
                return f"{self.unfinished} of {self.total} {self.what} not synced yet"
            done = f"All {self.total} {self.what} synced"
            return done + (f" (try {try_number})" if try_number and try_number > 1 else "")
        _, label, reason = self.problems[0]
        line = f"{len(self.problems)} of {self.total} failed: {label}: {reason}"
        extra = []
        if len(self.problems) > 1:
            extra.append(f"+{len(self.problems) - 1} more")
        if self.blocked:
            extra.append(f"{self.blocked} blocked")
        if self.unfinished:
            extra.append(f"{self.unfinished} not attempted")
        if extra:
            line += f" ({', '.join(extra)})"
        return shorten(line, MAX_NOTE_CHARS)

    def table(self, limit: int = TABLE_ROWS) -> str:
        """The problems as a fixed-width text table (at most ``limit`` rows)."""
        if not self.problems:
            return ""
        width = min(44, max(len("document"), *(len(label) for _, label, _ in self.problems[:limit])))
        lines = [f"{'status':8} {'document':{width}} reason"]
        for status, label, reason in self.problems[:limit]:
            lines.append(f"{status:8} {shorten(label, width):{width}} {shorten(reason, 160)}")
        if len(self.problems) > limit:
            lines.append(
                f"... and {len(self.problems) - limit} more (Sync Status page, filtered by this run)"
            )
        return "\n".join(lines)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


#: Where a run's outcome is read: its documents, else (the webhook DAG) its events. Each query gives
#: status, code (data or event type), number and reason; the label names one row in a note.
_OUTCOME_SOURCES: tuple[tuple[str, str, Callable[[str], str]], ...] = (
    (
        "documents",
        "SELECT d.status, d.data_type AS code,"
        " coalesce(d.target_number, d.source_number, d.source_id) AS number,"
        " coalesce(d.reason, '') AS reason"
        " FROM sync.documents d JOIN sync.run_documents r ON r.document_id = d.id"
        " WHERE r.dag_id = %s AND r.run_id = %s"
        " ORDER BY (d.status = 'failed') DESC, d.source_date, d.id",
        label_of,
    ),
    (
        "webhook_events",
        "SELECT e.status, e.event_type AS code, coalesce(e.accurate_number, e.uuid) AS number,"
        " coalesce(e.reason, '') AS reason FROM sync.webhook_events e"
        " WHERE e.dag_id = %s AND e.run_id = %s ORDER BY e.received_at, e.id",
        str.lower,
    ),
)


def run_outcome(conn: Any, dag_id: str, run_id: str) -> RunOutcome | None:
    """The run's documents (or, for the webhook DAG, its events) as the ledger has them; None if none."""
    for kind, query, label in _OUTCOME_SOURCES:
        rows = conn.execute(query, (dag_id, run_id)).fetchall()
        if rows:
            return _outcome(rows, kind, label)
    return None


def _outcome(rows: list[dict[str, Any]], kind: str, label: Callable[[str], str]) -> RunOutcome:
    problems = [
        (r["status"], f"{label(r['code'])} {r['number']}", r["reason"])
        for r in rows
        if r["status"] in ("failed", "blocked")
    ]
    unfinished = sum(1 for r in rows if r["status"] in ("pending", "posting", "processing"))
    return RunOutcome(total=len(rows), problems=problems, unfinished=unfinished, kind=kind)


def _ledger_outcome(dag_id: str, run_id: str) -> RunOutcome | None:
    from include.iseller_accurate.ledger import connect, dsn_from_connection

    with connect(dsn_from_connection(), autocommit=True) as conn:
        return run_outcome(conn, dag_id, run_id)


# -- callbacks ---------------------------------------------------------------------------------------------
def record_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback``: end the log with the failed documents, set the one-line note."""
    ti = context["ti"]
    try:
        outcome = _ledger_outcome(ti.dag_id, ti.run_id)
    except Exception:  # noqa: BLE001 - the ledger may be what failed
        log.warning("Could not read the sync ledger for the failure summary", exc_info=True)
        outcome = None
    note = failure_headline(context, outcome)
    set_note(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), note)
    if outcome and outcome.problems:  # last, so the table ends the task's log
        log.error("Sync failed: %s\n%s", note, outcome.table())


def failure_headline(context: dict[str, Any], outcome: RunOutcome | None) -> str:
    """One line saying why the task failed: its documents' summary, else the exception."""
    if outcome and outcome.problems:
        return outcome.note()
    # Nothing failed document by document: the task itself broke (credentials, settings, a crash).
    line = f"Failed: {exception_line(context.get('exception'))}"
    if outcome and outcome.unfinished:
        line += f" ({outcome.note()})"
    return shorten(line, MAX_NOTE_CHARS)


def record_success(context: dict[str, Any]) -> None:
    """``on_success_callback``: after a retry or a refresh, replace the failure note with the outcome."""
    ti = context["ti"]
    try_number = getattr(ti, "try_number", 1) or 1
    if try_number <= 1:
        return  # a first-try success never had a failure note
    try:
        outcome = _ledger_outcome(ti.dag_id, ti.run_id)
    except Exception:  # noqa: BLE001
        log.warning("Could not read the sync ledger for the task note", exc_info=True)
        outcome = None
    note = outcome.note(try_number) if outcome else f"Succeeded on try {try_number}"
    set_note(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), note)


def exception_line(exc: BaseException | str | None) -> str:
    """The first line of an exception's message (its type when it has none)."""
    if exc is None:
        return "see the task log"
    text = str(exc).strip().splitlines()
    return shorten(text[0] if text else type(exc).__name__, 300)


# -- Airflow's REST API -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AirflowApi:
    """Where and as whom to call Airflow's REST API (from the ``airflow_api`` connection)."""

    url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None

    def bearer(self, http: httpx.Client) -> str:
        """A JWT: the configured one, or one from ``POST /auth/token``."""
        if self.token:
            return self.token
        resp = http.post(
            f"{self.url}/auth/token", json={"username": self.username, "password": self.password}
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])


def optional_connection(conn_id: str) -> Any:
    """Airflow connection ``conn_id``, or None when it is not defined (or cannot be read: logged)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception:  # noqa: BLE001 - a secrets backend problem must not break the callback
        log.warning("Connection %r could not be read", conn_id, exc_info=True)
        return None


def airflow_api(conn_id: str = AIRFLOW_API_CONN_ID) -> AirflowApi | None:
    """The REST API settings of connection ``conn_id``, or None when it is not configured."""
    conn = optional_connection(conn_id)
    if conn is None:
        return None
    extra = conn.extra_dejson or {}
    host = (conn.host or "").rstrip("/")
    if not host:
        from airflow.sdk import conf

        host = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not host:
        return None
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}" + (f":{conn.port}" if conn.port else "")
    return AirflowApi(url=host, token=extra.get("token"), username=conn.login, password=conn.password)


def set_note(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None,
    note: str,
    *,
    api: AirflowApi | None = None,
    client: httpx.Client | None = None,
) -> bool:
    """Set a task instance's note through the REST API; False (logged) when it cannot."""
    api = api or airflow_api()
    if api is None:
        log.info("Task note not set (no %r connection to Airflow's REST API): %s", AIRFLOW_API_CONN_ID, note)
        return False
    path = (
        f"{api.url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        f"/taskInstances/{quote(task_id, safe='')}"
    )
    if map_index is not None and map_index >= 0:
        path += f"/{map_index}"
    http = client or httpx.Client(timeout=15.0)
    try:
        token = api.bearer(http)
        resp = http.patch(
            path,
            params={"update_mask": "note"},
            json={"note": shorten(note, MAX_NOTE_CHARS)},
            headers={"Authorization": f"Bearer {token}"},
        )
        if resp.status_code >= 400:
            log.warning("Task note not set: HTTP %s %s", resp.status_code, resp.text[:300])
            return False
        log.info("Task note: %s", note)
        return True
    except httpx.HTTPError as exc:
        log.warning("Task note not set: Airflow's API at %s not reachable (%s)", api.url, exc)
        return False
    finally:
        if client is None:
            http.close()
