"""Secrets never leak: after the other end-to-end tests, scan everything the stack wrote for every secret.

The file name sorts last in tests/e2e, so that ``pytest tests/e2e`` runs it after the tests that make
traffic. Run alone, it first drives a little traffic itself: a shift close whose sync fails on one
order (an item missing in Accurate) and an Accurate webhook delivery processed into iSeller.

What is scanned (tests/secret_scan.py explains the forms looked for):

- the stack's own log files: ``$SYNC_LOG_DIR`` (every service, PostgreSQL's log included) and all of
  ``$AIRFLOW_HOME`` (task logs, dag-processor logs), except the two files whose job is to hold a secret:
  the simple auth manager's passwords file (the admin password) and ``airflow.cfg`` (Airflow's own
  generated keys, e.g. the Fernet key);
- both databases, every text/varchar/json/jsonb/xml/array/bytea column of every table: ``airflow``
  (XCom, rendered task fields, DAG run conf, Variables, audit log, ...) and ``sync_db`` (the ledger);
- the operator pages as an operator sees them: Sync Status and Webhook Log (HTML, every status filter,
  every page) and their JSON endpoints (every page).

Secrets: the connections' passwords and secret extras (from the ``AIRFLOW_CONN_*`` variables), the
values scripts/env.sh builds them from, Airflow's JWT and API secret keys (environment) and the keys
in airflow.cfg, every OAuth token the iSeller sandbox handed out, and the Airflow token of this test.
The Accurate sandbox (API-token method) hands out no session: its discovered host and database id are
not secrets. Values shorter than 8 characters (the local ``admin`` / ``airflow`` passwords, equal to
their user names) cannot be told apart from ordinary text: they are listed as skipped.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from include.iseller_accurate.clients import AccurateHook
from include.iseller_accurate.ledger import dsn_from_connection
from sandbox.demo_shop import MISSING_IN_ACCURATE_INDEX, build_demo_shop
from tests.secret_scan import Secret, SecretScanner

SALES = "iseller_sales_to_accurate"
INGEST = "accurate_webhooks_to_iseller"
SHOP = build_demo_shop(int(os.environ.get("DEMO_SEED", "42")))
#: Environment variables holding a secret of the stack (scripts/env.sh).
SECRET_VARIABLES = (
    "ACCURATE_API_TOKEN",
    "ACCURATE_SIGNATURE_SECRET",
    "ACCURATE_WEBHOOK_TOKEN",
    "ISELLER_CLIENT_SECRET",
    "ISELLER_WEBHOOK_API_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
)
_SECRET_KEY = re.compile(r"(?i)secret|token|password|api_key|apikey|private")
#: airflow.cfg keys holding a secret: (section, key).
CFG_SECRETS = (("core", "fernet_key"), ("api", "secret_key"), ("api_auth", "jwt_secret"))
PAGE_SIZE = 500


# -- the secrets ----------------------------------------------------------------------------------------
def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path(os.environ["SYNC_LOCAL_DIR"]) / "airflow")


def issued_tokens(iseller_sandbox_url: str) -> list[dict[str, str]]:
    """Every OAuth token pair the running iSeller sandbox handed out."""
    answer = httpx.get(f"{iseller_sandbox_url}/_sandbox/tokens/issued", timeout=30)
    assert answer.status_code == 200, (
        f"the iSeller sandbox does not list its tokens (HTTP {answer.status_code}): "
        "restart it from this checkout"
    )
    return list(answer.json()["tokens"])


def configured_secrets(iseller_sandbox_url: str, airflow_token: str) -> list[Secret]:
    found: list[Secret] = []
    for name in SECRET_VARIABLES:
        if os.environ.get(name):
            found.append(Secret(name, os.environ[name]))
    for name, value in sorted(os.environ.items()):
        if not name.startswith("AIRFLOW_CONN_"):
            continue
        try:
            conn = json.loads(value)
        except ValueError:
            continue  # URI form: its password is the variable the URI was built from
        if conn.get("password"):
            found.append(Secret(f"{name}.password", str(conn["password"])))
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra or "{}")
        for key, item in extra.items():
            if _SECRET_KEY.search(key) and item:
                found.append(Secret(f"{name}.extra.{key}", str(item)))
    cfg = _airflow_home() / "airflow.cfg"
    if cfg.exists():
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read(cfg)
        for section, key in CFG_SECRETS:
            value = parser.get(section, key, fallback="")
            if value:
                found.append(Secret(f"airflow.cfg [{section}] {key}", value))
    issued = issued_tokens(iseller_sandbox_url)
    for i, token in enumerate(issued, start=1):
        found.append(Secret(f"iSeller access token #{i}", token["access_token"]))
        found.append(Secret(f"iSeller refresh token #{i}", token["refresh_token"]))
    found.append(Secret("Airflow API token of this test", airflow_token))
    unique: dict[str, Secret] = {}
    for secret in found:
        unique.setdefault(secret.value, secret)
    return list(unique.values())


# -- traffic, when this test runs alone ----------------------------------------------------------------------
def _airflow_dsn() -> str:
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _count(dsn: str, query: str, *params: Any) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _failed_sales_tries() -> int:
    return _count(
        _airflow_dsn(),
        "SELECT (SELECT count(*) FROM task_instance WHERE dag_id = %s AND state = 'failed')"
        " + (SELECT count(*) FROM task_instance_history WHERE dag_id = %s AND state = 'failed')",
        SALES,
        SALES,
    )


def _processed_webhook_events() -> int:
    return _count(dsn_from_connection(), "SELECT count(*) FROM sync.webhook_events WHERE status <> 'pending'")


def _drive_a_failing_shift_close(airflow: Any, iseller_sandbox_url: str) -> str:
    airflow.wait_for_dag(SALES)
    airflow.unpause(SALES)
    register = SHOP.registers[1]
    missing = SHOP.products[MISSING_IN_ACCURATE_INDEX]
    for skus in (["BRG-0004"], [missing.sku, "BRG-0008"]):
        body = {
            "outlet_id": register.outlet_id,
            "register_id": register.register_id,
            "lines": [{"sku": sku, "quantity": 1} for sku in skus],
        }
        answer = httpx.post(f"{iseller_sandbox_url}/_sandbox/orders", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
    shift = httpx.post(
        f"{iseller_sandbox_url}/_sandbox/registers/{register.register_id}/close-shift", timeout=60
    ).json()
    hook = shift.get("hook")
    if hook and hook.get("success"):
        run_id = hook["body"]["dag_run_id"]
    else:
        conf = {k: shift[k] for k in ("outlet_id", "register_id", "register_shift_id")}
        run_id = airflow.trigger_dag(SALES, conf=conf)["dag_run_id"]
    return airflow.wait_for_run(SALES, run_id, timeout=300)


def _drive_a_webhook_delivery(airflow: Any) -> str:
    airflow.wait_for_dag(INGEST)
    airflow.unpause(INGEST)
    outlet = next(o for o in SHOP.outlets if not o.is_warehouse)
    number = f"RI.SCAN.{uuid.uuid4().hex[:6].upper()}"
    result = AccurateHook().save(
        "receive-item",
        {
            "number": number,
            "receiveNumber": f"SJ-{number}",
            "vendorNo": "V.0001",
            "branchName": outlet.branch_name,
            "warehouseName": outlet.warehouse_name,
            "detailItem": [{"itemNo": "BRG-0001", "quantity": 1}],
        },
    )
    assert result.ok, result.reason
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline:
        with psycopg.connect(dsn_from_connection(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT status FROM sync.webhook_events WHERE accurate_number = %s", (number,)
            ).fetchone()
        status = row[0] if row else None
        if status in ("done", "failed", "ignored"):
            return str(status)
        time.sleep(1)
    raise AssertionError(f"the webhook event of {number} was not processed within 180 s (status {status})")


# -- pages ----------------------------------------------------------------------------------------------
def _scan_pages(airflow: Any, scanner: SecretScanner) -> dict[str, int]:
    """Every page of Sync Status and Webhook Log (HTML, per status filter) and of their JSON endpoints."""
    base = "/integrations/operator"
    counted = {"html": 0, "json": 0, "rows": 0}
    lists = {
        "documents": ("sync-status", ("failed", "blocked", "pending", "posting", "synced", "skipped")),
        "webhook-events": ("webhook-log", ("failed", "pending", "processing", "done", "ignored")),
    }
    for endpoint, (page, statuses) in lists.items():
        for status in (None, "attention", *statuses):
            params: dict[str, Any] = {"size": PAGE_SIZE}
            if status:
                params["status"] = status
            after = None
            while True:
                query = {**params, **({"after": after} if after else {})}
                answer = airflow.request("GET", f"{base}/api/{endpoint}", params=query)
                assert answer.status_code == 200, answer.text[:500]
                scanner.scan_text(answer.text, f"GET {answer.request.url}")
                counted["json"] += 1
                counted["rows"] += len(answer.json()["rows"])
                html = airflow.request("GET", f"{base}/{page}", params=query)
                assert html.status_code == 200 and "<html" in html.text.lower(), html.text[:500]
                scanner.scan_text(html.text, f"GET {html.request.url}")
                counted["html"] += 1
                after = answer.json()["older"]
                if not after:
                    break
    return counted


# -- the test -------------------------------------------------------------------------------------------
@pytest.mark.timeout(900)
def test_no_configured_secret_appears_anywhere(airflow, iseller_sandbox_url, accurate_sandbox_url, capsys):
    primed: list[str] = []
    # No token from this iSeller sandbox (restarted since the last sync): sync once to have some.
    if _failed_sales_tries() == 0 or not issued_tokens(iseller_sandbox_url):
        primed.append(f"shift close sync: {_drive_a_failing_shift_close(airflow, iseller_sandbox_url)}")
    if _processed_webhook_events() == 0:
        primed.append(f"Accurate webhook event: {_drive_a_webhook_delivery(airflow)}")

    secrets = configured_secrets(iseller_sandbox_url, airflow.login())
    scanner = SecretScanner(secrets)
    assert any(s.name.startswith("iSeller access token") for s in scanner.secrets), (
        "the iSeller sandbox handed out no token: nothing was synchronised"
    )

    # Log files.
    home = _airflow_home()
    passwords_file = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    by_design = [
        Path(passwords_file) if passwords_file else home / "simple_auth_manager_passwords.json",
        home / "airflow.cfg",
    ]
    log_dir = Path(os.environ["SYNC_LOG_DIR"])
    files = scanner.scan_tree(log_dir, exclude=by_design) + scanner.scan_tree(home, exclude=by_design)
    task_logs = [f for f in files if "dag_id=" in str(f)]

    # Databases.
    db_counts: dict[str, dict[str, int]] = {}
    for label, dsn in (("airflow", _airflow_dsn()), ("sync_db", dsn_from_connection())):
        before = (scanner.stats.tables, scanner.stats.rows, scanner.stats.cells)
        with psycopg.connect(dsn, autocommit=True) as conn:
            scanner.scan_database(conn, label)
        db_counts[label] = {
            "tables": scanner.stats.tables - before[0],
            "rows": scanner.stats.rows - before[1],
            "cells": scanner.stats.cells - before[2],
        }
    with psycopg.connect(_airflow_dsn(), autocommit=True) as conn:
        xcoms = conn.execute("SELECT count(*) FROM xcom").fetchone()
        rendered = conn.execute("SELECT count(*) FROM rendered_task_instance_fields").fetchone()

    # Control: the scan sees a secret where one is by design (airflow.cfg holds Airflow's Fernet key).
    control = SecretScanner(s for s in secrets if s.name.startswith("airflow.cfg"))
    if control.secrets:
        control.scan_file(home / "airflow.cfg")
        assert control.findings, "the scanner found no key in airflow.cfg: the scan itself is broken"

    # Operator pages.
    pages = _scan_pages(airflow, scanner)

    databases = "; ".join(
        f"{name}: {c['tables']} tables, {c['rows']} rows, {c['cells']} text cells"
        for name, c in db_counts.items()
    )
    report = [
        f"{len(scanner.secrets)} secrets looked for; too short, skipped: "
        f"{', '.join(scanner.skipped) or 'none'}",
        f"primed: {'; '.join(primed) or 'no (the other e2e tests left data)'}",
        f"files: {len(files)} ({len(task_logs)} task logs, {scanner.stats.file_bytes / 1e6:.1f} MB) under "
        f"{log_dir} and {home}; not scanned by design: {', '.join(p.name for p in by_design)}",
        f"databases: {databases} (XCom rows {xcoms[0] if xcoms else 0}, "
        f"rendered-field rows {rendered[0] if rendered else 0})",
        f"pages: {pages['html']} HTML + {pages['json']} JSON ({pages['rows']} rows listed)",
        f"findings: {len(scanner.findings)}",
    ]
    with capsys.disabled():
        print("\n" + "\n".join(f"[secret scan] {line}" for line in report))
        for finding in scanner.findings[:50]:
            print(f"[secret scan] LEAK {finding}")
    assert not scanner.findings, f"{len(scanner.findings)} leaks, first: " + "\n".join(
        str(f) for f in scanner.findings[:20]
    )
