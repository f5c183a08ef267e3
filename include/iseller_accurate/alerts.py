"""Failure alerts of the sync DAGs: an Airflow notifier configured by the ``sync_alerts`` connection.

Attached to every sync task through ``DEFAULT_ARGS["on_failure_callback"]``. When a task fails for
good (retries exhausted, or a failure that is not worth retrying), the people on call get one
message: which DAG and task, how many documents failed and the first reasons, and two links: the
Airflow task instance, and the Sync Status page filtered to the run (where Refresh is).

The connection decides the channel; without it alerts are off (one log line, nothing else):

- ``conn_type`` ``smtp`` (or ``email``): an e-mail through the SMTP provider's ``SmtpHook`` (host,
  port, login, password; ``extra``: ``to`` (list or comma-separated), ``from_email``, and the hook's
  own ``disable_ssl`` / ``disable_tls`` / ``timeout``).
- any other type (``http``, ``https``, ...): a JSON ``POST`` to a chat webhook. ``host`` is the full
  webhook URL (or ``extra.webhook_url``); the message goes in the field ``extra.payload_key``
  (default ``"text"``: Slack, Mattermost, Google Chat, Rocket.Chat; ``"content"`` for Discord);
  ``password``, when given, is sent as a bearer token; ``extra.headers`` adds headers.

Example (environment): ``AIRFLOW_CONN_SYNC_ALERTS='{"conn_type": "http",
"host": "https://chat.example.com/hooks/abc"}'``.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from airflow.sdk import BaseNotifier

from include.iseller_accurate.notes import RunOutcome, failure_headline, optional_connection, shorten

log = logging.getLogger(__name__)

ALERTS_CONN_ID = "sync_alerts"
EMAIL_TYPES = frozenset({"smtp", "email"})


@dataclass(frozen=True)
class Alert:
    """One failure message, in the forms the channels need."""

    subject: str
    text: str
    html: str


def _airflow_base_url() -> str:
    try:
        from airflow.sdk import conf

        return (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    except Exception:  # noqa: BLE001 - links become relative
        return ""


def build_alert(context: dict[str, Any], outcome: RunOutcome | None, base_url: str | None = None) -> Alert:
    """The message for a failed task: what failed, why, and where to act."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    try_number = getattr(ti, "try_number", None)
    base = _airflow_base_url() if base_url is None else base_url.rstrip("/")
    ti_url = (
        f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
    )
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        ti_url += f"/mapped/{map_index}"
    page = "webhook-log" if outcome and outcome.kind == "webhook_events" else "sync-status"
    page_name = "Webhook Log" if page == "webhook-log" else "Sync Status"
    # The page inside the Airflow UI (its navigation around it), filtered to this run.
    query = urlencode({"dag_id": dag_id, "run_id": run_id})
    page_url = f"{base}/plugin/{page}/integrations/operator/{page}?{query}"
    headline = failure_headline(context, outcome)
    table = outcome.table(limit=10) if outcome else ""
    subject = shorten(f"[Airflow] {dag_id}.{task_id} failed: {headline}", 200)
    lines = [
        f"Sync task failed: {dag_id} / {task_id}" + (f" (try {try_number})" if try_number else ""),
        f"Run: {run_id}",
        headline,
    ]
    if table:
        lines += ["", table]
    lines += [
        "",
        f"Airflow task: {ti_url}",
        f"{page_name}: {page_url}",
        "Repair the cause, then press Refresh on that page (or clear the task in Airflow).",
    ]
    text = "\n".join(lines)
    body = (
        f"<p><strong>Sync task failed:</strong> {html.escape(dag_id)} / {html.escape(task_id)}"
        f"{f' (try {try_number})' if try_number else ''}<br>Run: {html.escape(run_id)}</p>"
        f"<p>{html.escape(headline)}</p>"
        + (f"<pre>{html.escape(table)}</pre>" if table else "")
        + f'<p><a href="{html.escape(ti_url)}">Airflow task</a> · '
        f'<a href="{html.escape(page_url)}">{page_name}</a></p>'
        "<p>Repair the cause, then press Refresh on that page (or clear the task in Airflow).</p>"
    )
    return Alert(subject=subject, text=text, html=body)


class SyncFailureNotifier(BaseNotifier):
    """Sends a failure alert through the ``sync_alerts`` connection; does nothing when it is absent."""

    template_fields = ()

    def __init__(self, conn_id: str = ALERTS_CONN_ID) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        """Called by Airflow with the failed task's context."""
        conn = optional_connection(self.conn_id)
        if conn is None:
            log.info("Failure alerts are off (no %r connection)", self.conn_id)
            return
        outcome = _outcome(context)
        alert = build_alert(context, outcome)
        try:
            if (conn.conn_type or "").lower() in EMAIL_TYPES:
                recipients = send_email(self.conn_id, conn, alert)
                log.info("Failure alert e-mailed to %s", ", ".join(recipients))
            else:
                post_to_chat(conn, alert)
                log.info("Failure alert posted to the chat webhook of %r", self.conn_id)
        except Exception:  # noqa: BLE001 - an alert must never hide the task's own failure
            log.warning("Failure alert through %r could not be sent", self.conn_id, exc_info=True)


def _outcome(context: dict[str, Any]) -> RunOutcome | None:
    from include.iseller_accurate.notes import _ledger_outcome

    ti = context["ti"]
    try:
        return _ledger_outcome(ti.dag_id, ti.run_id)
    except Exception:  # noqa: BLE001 - alert with the exception instead
        log.warning("Could not read the sync ledger for the alert", exc_info=True)
        return None


def recipients_of(conn: Any) -> list[str]:
    """The ``to`` addresses of an e-mail alert connection."""
    raw = (conn.extra_dejson or {}).get("to") or []
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return [item.strip() for item in items if item and item.strip()]


def send_email(conn_id: str, conn: Any, alert: Alert) -> list[str]:
    """Send the alert with the SMTP provider's hook; returns the recipients."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = recipients_of(conn)
    if not recipients:
        raise ValueError(f"connection {conn_id!r} has no extra 'to' (the alert's recipients)")
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(
            to=recipients,
            subject=alert.subject,
            html_content=alert.html,
            from_email=(conn.extra_dejson or {}).get("from_email") or conn.login or "airflow@localhost",
        )
    return recipients


def webhook_url(conn: Any) -> str:
    """The chat webhook's URL: ``extra.webhook_url``, or ``host`` (a full URL, or host + schema/port)."""
    extra = conn.extra_dejson or {}
    if extra.get("webhook_url"):
        return str(extra["webhook_url"])
    host = conn.host or ""
    if "://" in host:
        return host
    if not host:
        raise ValueError("the alert connection has neither host nor extra 'webhook_url'")
    return f"{conn.schema or 'https'}://{host}" + (f":{conn.port}" if conn.port else "")


def post_to_chat(conn: Any, alert: Alert, client: httpx.Client | None = None) -> None:
    """POST the alert's text as JSON to the chat webhook of ``conn``."""
    extra = conn.extra_dejson or {}
    headers = {str(k): str(v) for k, v in (extra.get("headers") or {}).items()}
    if conn.password:
        headers.setdefault("Authorization", f"Bearer {conn.password}")
    payload = {str(extra.get("payload_key") or "text"): alert.text}
    http = client or httpx.Client(timeout=float(extra.get("timeout", 15)))
    try:
        resp = http.post(webhook_url(conn), json=payload, headers=headers)
        resp.raise_for_status()
    finally:
        if client is None:
            http.close()
