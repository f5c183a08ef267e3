#!/usr/bin/env python3
"""Trigger the go-live preflight on the running local stack (run once by `make demo`).

Waits (up to ``--wait`` seconds) for the DAG ``iseller_accurate_preflight`` to be parsed, unpauses it,
triggers one run through Airflow's REST API and prints where to read the result. Never fails the
caller: a problem is printed and the exit status is 0 unless ``--strict``.
"""

from __future__ import annotations

import argparse
import sys
import time

import httpx
from seed import Airflow, env  # scripts/ is on sys.path when run as scripts/run_preflight.py

DAG_ID = "iseller_accurate_preflight"


def say(message: str) -> None:
    print(f"[preflight] {message}", file=sys.stderr, flush=True)


def trigger(af: Airflow, wait_seconds: float) -> str:
    deadline = time.monotonic() + wait_seconds
    while af.request("GET", f"/api/v2/dags/{DAG_ID}").status_code == 404:
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the DAG {DAG_ID} was not parsed within {wait_seconds:.0f} s")
        time.sleep(2)
    af.check(af.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}))
    run = af.check(af.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None}))
    return str(run["dag_run_id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the DAG to be parsed")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the run cannot be triggered")
    args = parser.parse_args(argv)
    airflow_url = f"http://127.0.0.1:{env('AIRFLOW_PORT', '8080')}"
    ui = env("AIRFLOW__API__BASE_URL", airflow_url).rstrip("/")
    try:
        af = Airflow(airflow_url, env("AIRFLOW_ADMIN_USER", "admin"), env("AIRFLOW_ADMIN_PASSWORD", "admin"))
        run_id = trigger(af, args.wait)
    except (RuntimeError, SystemExit, httpx.HTTPError) as exc:
        say(f"could not trigger {DAG_ID}: {exc}; trigger it from the Airflow UI")
        return 1 if args.strict else 0
    say(f"triggered {DAG_ID} (run {run_id}); result: Browse > Preflight,")
    say(f"  {ui}/integrations/operator/preflight  or the task log of {ui}/dags/{DAG_ID}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
