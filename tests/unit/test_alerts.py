"""Failure alerts (sync_alerts connection) and the failure note / log table of sync tasks.

The channels are exercised over real sockets: a small SMTP server and a small HTTP server in
threads. Airflow's REST API (task notes) is faked at the HTTP transport with respx.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import respx

from include.iseller_accurate import alerts, notes
from include.iseller_accurate.alerts import SyncFailureNotifier, build_alert
from include.iseller_accurate.notes import RunOutcome

DAG_ID = "iseller_sales_to_accurate"
RUN_ID = "manual__2026-11-26T01:27:32+00:00"


def _context(
    task_id: str = "load", try_number: int = 3, exception: Exception | None = None
) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, map_index=-1, try_number=try_number)
    return {"ti": ti, "exception": exception or RuntimeError("3 of 120 not synced\nstatus ...")}


OUTCOME = RunOutcome(
    total=120,
    problems=[
        ("failed", "sales invoice SI/JKT01-1092", "Barang BRG-0049 tidak ditemukan"),
        ("blocked", "sales receipt SR/JKT01-1092", "waits for sales invoice SI/JKT01-1092"),
        ("failed", "sales invoice SI/JKT01-1100", "Gudang tidak dikenal"),
    ],
)


# -- the one-line note and the log table ----------------------------------------------------------
def test_note_is_one_line_with_the_first_reason() -> None:
    assert OUTCOME.note() == (
        "3 of 120 failed: sales invoice SI/JKT01-1092: Barang BRG-0049 tidak ditemukan (+2 more, 1 blocked)"
    )
    assert RunOutcome(total=120).note(try_number=2) == "All 120 documents synced (try 2)"
    assert RunOutcome(total=5, unfinished=5).note() == "5 of 5 documents not synced yet"
    long = RunOutcome(total=1, problems=[("failed", "x", "y" * 5000)])
    assert len(long.note()) == notes.MAX_NOTE_CHARS


def test_table_lists_status_document_and_reason() -> None:
    table = OUTCOME.table()
    lines = table.splitlines()
    assert lines[0].split() == ["status", "document", "reason"]
    assert lines[1].startswith("failed   sales invoice SI/JKT01-1092")
    assert lines[1].endswith("Barang BRG-0049 tidak ditemukan")
    many = RunOutcome(total=100, problems=[("failed", f"doc {i}", "r") for i in range(30)])
    assert many.table(limit=20).splitlines()[-1].startswith("... and 10 more")


def test_failure_headline_falls_back_to_the_exception() -> None:
    assert notes.failure_headline(_context(), OUTCOME) == OUTCOME.note()
    crashed = notes.failure_headline(_context(exception=ValueError("bad settings\nmore")), None)
    assert crashed == "Failed: bad settings"
    pending = notes.failure_headline(_context(exception=KeyError("x")), RunOutcome(total=4, unfinished=4))
    assert pending == "Failed: 'x' (4 of 4 documents not synced yet)"


def test_record_failure_sets_the_note_then_ends_the_log_with_the_table(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(notes, "_ledger_outcome", lambda dag_id, run_id: OUTCOME)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRFLOW_API",
        json.dumps({"conn_type": "http", "host": "http://airflow.test", "login": "svc", "password": "pw"}),
    )
    caplog.set_level(logging.INFO, logger=notes.__name__)
    with respx.mock(assert_all_called=True) as api:
        token = api.post("http://airflow.test/auth/token").mock(
            return_value=httpx.Response(201, json={"access_token": "jwt-svc"})
        )
        patch = api.patch(
            f"http://airflow.test/api/v2/dags/{DAG_ID}/dagRuns/manual__2026-11-26T01%3A27%3A32%2B00%3A00"
            "/taskInstances/load"
        ).mock(return_value=httpx.Response(200, json={}))
        notes.record_failure(_context())
    assert json.loads(token.calls[0].request.content) == {"username": "svc", "password": "pw"}
    request = patch.calls[0].request
    assert request.headers["Authorization"] == "Bearer jwt-svc"
    assert request.url.params["update_mask"] == "note"
    assert json.loads(request.content) == {"note": OUTCOME.note()}
    last = caplog.records[-1]
    assert last.levelno == logging.ERROR and last.getMessage().endswith(OUTCOME.table())


def test_notes_are_skipped_without_the_airflow_api_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_AIRFLOW_API", raising=False)
    monkeypatch.setattr(notes, "_ledger_outcome", lambda dag_id, run_id: OUTCOME)
    caplog.set_level(logging.INFO, logger=notes.__name__)
    with respx.mock(assert_all_called=False) as api:
        route = api.route().mock(return_value=httpx.Response(500))
        notes.record_failure(_context())
    assert not route.called
    assert any("Task note not set" in r.getMessage() for r in caplog.records)
    assert caplog.records[-1].getMessage().endswith(OUTCOME.table())


def test_record_success_replaces_a_failure_note_after_a_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notes, "_ledger_outcome", lambda dag_id, run_id: RunOutcome(total=120))
    sent: list[str] = []

    def fake_set_note(*args: Any, **kwargs: Any) -> bool:
        sent.append(args[4])
        return True

    monkeypatch.setattr(notes, "set_note", fake_set_note)
    notes.record_success(_context(try_number=1))
    assert sent == []  # first try: there was no failure note
    notes.record_success(_context(try_number=2))
    assert sent == ["All 120 documents synced (try 2)"]


def test_set_note_for_a_mapped_task_and_a_refusal() -> None:
    api = notes.AirflowApi(url="http://airflow.test", token="given")
    with respx.mock() as mock:
        route = mock.patch(url__regex=r".*/taskInstances/load/4\?").mock(
            return_value=httpx.Response(403, json={"detail": "Forbidden"})
        )
        assert notes.set_note(DAG_ID, "r1", "load", 4, "x", api=api) is False
    assert route.calls[0].request.headers["Authorization"] == "Bearer given"


# -- alerts -------------------------------------------------------------------------------------------
def test_alert_names_the_failure_and_links_where_to_act() -> None:
    alert = build_alert(_context(), OUTCOME, base_url="https://airflow.example.com/")
    assert alert.subject.startswith(f"[Airflow] {DAG_ID}.load failed: 3 of 120 failed")
    assert "Barang BRG-0049 tidak ditemukan" in alert.text
    run = "manual__2026-11-26T01%3A27%3A32%2B00%3A00"
    assert f"https://airflow.example.com/dags/{DAG_ID}/runs/{run}/tasks/load" in alert.text
    page = "https://airflow.example.com/plugin/sync-status/integrations/operator/sync-status?dag_id="
    assert page in alert.text
    assert "<pre>" in alert.html and "&lt;" not in alert.subject
    crashed = build_alert(
        _context(exception=RuntimeError("Accurate refused the credentials")), None, base_url=""
    )
    assert "Failed: Accurate refused the credentials" in crashed.subject


def test_alerts_are_off_without_the_connection(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SYNC_ALERTS", raising=False)
    monkeypatch.setattr(alerts, "_outcome", lambda context: pytest.fail("must not read the ledger"))
    caplog.set_level(logging.INFO, logger=alerts.__name__)
    SyncFailureNotifier().notify(_context())
    assert "Failure alerts are off" in caplog.text


class _ChatHandler(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _ChatHandler.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[str]:
    _ChatHandler.received = []
    server = HTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/sync"
    finally:
        server.shutdown()
        server.server_close()


def test_chat_webhook_alert(monkeypatch: pytest.MonkeyPatch, chat_server: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYNC_ALERTS",
        json.dumps(
            {
                "conn_type": "http",
                "host": chat_server,
                "password": "s3cret",
                "extra": {"payload_key": "content"},
            }
        ),
    )
    monkeypatch.setattr(alerts, "_outcome", lambda context: OUTCOME)
    SyncFailureNotifier().notify(_context())
    [(headers, payload)] = _ChatHandler.received
    assert headers["Authorization"] == "Bearer s3cret"
    assert list(payload) == ["content"]
    assert "3 of 120 failed: sales invoice SI/JKT01-1092" in payload["content"]


def test_a_failing_channel_never_raises(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYNC_ALERTS", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9"})
    )
    monkeypatch.setattr(alerts, "_outcome", lambda context: OUTCOME)
    SyncFailureNotifier().notify(_context())
    assert "could not be sent" in caplog.text


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message (EHLO/HELO, MAIL, RCPT, DATA, QUIT)."""

    messages: list[dict[str, Any]] = []

    def handle(self) -> None:
        message: dict[str, Any] = {"rcpt": []}
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "MAIL":
                message["from"] = command
                self.wfile.write(b"250 OK\r\n")
            elif verb == "RCPT":
                message["rcpt"].append(command)
                self.wfile.write(b"250 OK\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go\r\n")
                data = []
                while (row := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(row.decode())
                message["data"] = "".join(data)
                _SmtpHandler.messages.append(message)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture
def smtp_server() -> Iterator[int]:
    _SmtpHandler.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_email_alert(monkeypatch: pytest.MonkeyPatch, smtp_server: int) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYNC_ALERTS",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_server,
                "extra": {
                    "to": "ops@example.com, support@example.com",
                    "from_email": "airflow@example.com",
                    "disable_ssl": True,
                    "disable_tls": True,
                    "retry_limit": 1,
                },
            }
        ),
    )
    monkeypatch.setattr(alerts, "_outcome", lambda context: OUTCOME)
    SyncFailureNotifier().notify(_context())
    [message] = _SmtpHandler.messages
    assert [r.split(":", 1)[1].strip(" <>") for r in message["rcpt"]] == [
        "ops@example.com",
        "support@example.com",
    ]
    assert "airflow@example.com" in message["from"]
    assert "Subject: [Airflow] iseller_sales_to_accurate.load failed" in message["data"]
