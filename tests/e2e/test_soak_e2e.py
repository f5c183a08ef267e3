"""The CI-sized soak on the running stack (`make test`): a few thousand documents, 10 % Accurate faults,
one kill of each kind (kill -9 of a task, scheduler restart, PostgreSQL restart, receivers away), then
the verdict from both sandboxes: no duplicate, no lost and no unexplained document.

It runs scripts/soak.py as `make soak` does, with small numbers (``SOAK_CI_DOCS``, default 2000;
``SOAK_CI_FAULTS``, default 0.10), and reads its JSON report. Marked ``slow``: skip it with
``-m "not slow"``. The driver restores what it changed (faults, settings Variable, webhook targets)
and brings back every component it stopped, so the other end-to-end tests can run after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.airflow_api import stack_is_up

REPO = Path(__file__).resolve().parents[2]

CI_TIMEOUT = float(os.environ.get("SOAK_CI_TIMEOUT", "1500"))
# The project's default pytest timeout (300 s) is far too short for a soak; the driver has its own deadline.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(CI_TIMEOUT + 1200)]


def test_ci_sized_soak_loses_nothing_and_duplicates_nothing(
    airflow, accurate_sandbox_url, iseller_sandbox_url
):
    report_path = REPO / "test-artifacts" / "soak-ci-report.json"
    report_path.unlink(missing_ok=True)
    docs = os.environ.get("SOAK_CI_DOCS", "2000")
    faults = os.environ.get("SOAK_CI_FAULTS", "0.10")
    log_path = REPO / "test-artifacts" / "soak-ci.log"
    timeout = CI_TIMEOUT
    with log_path.open("w") as log:  # progress is readable there while the soak runs
        done = subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "soak.py"),
                "--docs",
                docs,
                "--faults",
                faults,
                "--report",
                str(report_path),
                "--timeout",
                str(timeout),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout + 900,
        )
    output = log_path.read_text()
    print(output[-6000:])
    assert report_path.exists(), f"no report; exit {done.returncode}; {output[-4000:]}"
    report = json.loads(report_path.read_text())
    last = output.strip().splitlines()[-1]
    assert last.startswith("soak: ") and " documents, " in last, last
    # one kill of each kind, and faults injected at the asked rate
    for kind in ("task_kill9", "scheduler_restart", "postgres_restart", "receivers_away"):
        assert report["kills"].get(kind, 0) >= 1, report["kills"]
    assert report["faults_total"] > 0, report["faults"]
    assert report["documents"] >= int(docs) * 0.9
    problems = "\n".join(
        f"{p['verdict']}: {p['kind']} {p['number']}: {p['detail']}" for p in report["problems"][:40]
    )
    assert (report["duplicates"], report["lost"], report["unexplained"]) == (0, 0, 0), (
        f"{last}\n{problems}\nfindings: {report['findings']}"
    )
    assert done.returncode == 0, last
    # the stack is usable for the next tests
    assert stack_is_up() is None
