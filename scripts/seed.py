"""Seed the running local stack (run by scripts/stack.sh up; `make demo` adds --unpause).

- Airflow pool ``accurate_api`` (8 slots) unless it exists;
- Airflow Variable ``iseller_accurate_settings`` = ``build_demo_shop(DEMO_SEED).settings()`` unless it
  exists (``--force`` overwrites both);
- the Accurate sandbox's webhook target -> Airflow's receiver, the iSeller sandbox's order webhook ->
  Airflow's receiver, the iSeller shift-close hook -> Airflow's REST API (trigger a sales run);
- ``--unpause``: wait for the DAGs to be parsed, then unpause every DAG.

Talks to Airflow through its REST API (token from ``POST /auth/token``). Reads the ports and the
local demo secrets from the environment set by scripts/env.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

POOL = "accurate_api"
POOL_SLOTS = 8
POOL_DESCRIPTION = (
    "Calls to the Accurate API: caps concurrent Accurate tasks (Accurate allows 8 requests in flight)"
)
SETTINGS_VARIABLE = "iseller_accurate_settings"
#: The DAG ids of the contract; --unpause waits (a while) for these to be parsed.
EXPECTED_DAGS = (
    "iseller_sales_to_accurate",
    "iseller_transfers_to_accurate",
    "iseller_stock_opname_to_accurate",
    "accurate_webhooks_to_iseller",
)


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def say(message: str) -> None:
    print(f"[seed] {message}", file=sys.stderr, flush=True)


class Airflow:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        resp = self.http.post("/auth/token", json={"username": username, "password": password})
        if resp.status_code not in (200, 201):
            raise SystemExit(
                f"[seed] login to Airflow as {username} failed: HTTP {resp.status_code} {resp.text}"
            )
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def check(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise SystemExit(
                f"[seed] {resp.request.method} {resp.request.url.path}: HTTP {resp.status_code} {resp.text}"
            )
        return resp.json() if resp.content else None


def seed_pool(af: Airflow, force: bool) -> None:
    resp = af.request("GET", f"/api/v2/pools/{POOL}")
    body = {"slots": POOL_SLOTS, "description": POOL_DESCRIPTION}
    if resp.status_code == 404:
        af.check(af.request("POST", "/api/v2/pools", json={"name": POOL, **body}))
        say(f"pool {POOL} created ({POOL_SLOTS} slots)")
    elif force:
        # Airflow 3's PATCH checks the patched pool as a whole (pool name and include_deferred
        # included), so send every field; include_deferred keeps the pool's current choice.
        current = af.check(resp) or {}
        whole = {"pool": POOL, **body, "include_deferred": bool(current.get("include_deferred", False))}
        af.check(af.request("PATCH", f"/api/v2/pools/{POOL}", json=whole))
        say(f"pool {POOL} reset to {POOL_SLOTS} slots")
    else:
        af.check(resp)
        say(f"pool {POOL} exists ({resp.json().get('slots')} slots): kept")


def demo_settings(seed: int) -> dict[str, Any]:
    from sandbox.demo_shop import build_demo_shop

    return build_demo_shop(seed).settings()


def seed_variable(af: Airflow, seed: int, force: bool) -> None:
    resp = af.request("GET", f"/api/v2/variables/{SETTINGS_VARIABLE}")
    if resp.status_code != 404 and not force:
        af.check(resp)
        say(f"variable {SETTINGS_VARIABLE} exists: kept (--force to overwrite)")
        return
    value = json.dumps(demo_settings(seed), indent=2, sort_keys=True)
    body = {
        "key": SETTINGS_VARIABLE,
        "value": value,
        "description": f"Operator settings of the iSeller/Accurate sync (demo shop, seed {seed})",
    }
    if resp.status_code == 404:
        af.check(af.request("POST", "/api/v2/variables", json=body))
        say(f"variable {SETTINGS_VARIABLE} set from the demo shop (seed {seed})")
    else:
        af.check(af.request("PATCH", f"/api/v2/variables/{SETTINGS_VARIABLE}", json=body))
        say(f"variable {SETTINGS_VARIABLE} overwritten from the demo shop (seed {seed})")


def sandbox_post(name: str, url: str, payload: dict[str, Any]) -> bool:
    try:
        resp = httpx.post(url, json=payload, timeout=10.0)
    except httpx.HTTPError as exc:
        say(f"WARNING: {name} sandbox not reachable at {url} ({exc.__class__.__name__}): skipped")
        return False
    if resp.status_code in (404, 405):
        say(f"WARNING: {name} sandbox has no route {url} yet (HTTP {resp.status_code}): skipped")
        return False
    if resp.status_code >= 400:
        raise SystemExit(f"[seed] {name} sandbox {url}: HTTP {resp.status_code} {resp.text}")
    return True


def register_webhooks(airflow_url: str) -> None:
    accurate = f"http://127.0.0.1:{env('ACCURATE_SANDBOX_PORT', '8181')}"
    iseller = f"http://127.0.0.1:{env('ISELLER_SANDBOX_PORT', '8182')}"
    webhook_token = env("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
    target = f"{airflow_url}/integrations/accurate/webhook?token={webhook_token}"
    if sandbox_post("Accurate", f"{accurate}/_sandbox/webhook-target", {"url": target}):
        say("Accurate sandbox webhooks -> Airflow /integrations/accurate/webhook")
    order_hook = {
        "order_url": f"{airflow_url}/integrations/iseller/webhook",
        "api_key": env("ISELLER_WEBHOOK_API_KEY", "sandbox-webhook-key"),
    }
    if sandbox_post("iSeller", f"{iseller}/_sandbox/webhooks", order_hook):
        say("iSeller sandbox order webhook -> Airflow /integrations/iseller/webhook")
    shift_hook = {
        "url": f"{airflow_url}/api/v2/dags/iseller_sales_to_accurate/dagRuns",
        "token_url": f"{airflow_url}/auth/token",
        "username": env("AIRFLOW_ADMIN_USER", "admin"),
        "password": env("AIRFLOW_ADMIN_PASSWORD", "admin"),
    }
    if sandbox_post("iSeller", f"{iseller}/_sandbox/shift-close-hook", shift_hook):
        say("iSeller sandbox shift close -> Airflow POST /api/v2/dags/iseller_sales_to_accurate/dagRuns")


def list_dags(af: Airflow) -> list[dict[str, Any]]:
    dags: list[dict[str, Any]] = []
    while True:
        page = af.check(af.request("GET", "/api/v2/dags", params={"limit": 100, "offset": len(dags)}))
        dags.extend(page["dags"])
        if not page["dags"] or len(dags) >= page["total_entries"]:
            return dags


def unpause_all(af: Airflow, wait_seconds: float) -> None:
    has_dag_files = any((REPO / "dags").glob("*.py"))
    deadline = time.monotonic() + (wait_seconds if has_dag_files else 0)
    while True:
        found = {d["dag_id"] for d in list_dags(af)}
        missing = [d for d in EXPECTED_DAGS if d not in found]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(2)
    if missing and has_dag_files:
        say(f"WARNING: DAGs not (yet) parsed: {', '.join(missing)}")
        errors = af.check(af.request("GET", "/api/v2/importErrors", params={"limit": 20}))
        for err in errors.get("import_errors", []):
            say(f"  import error in {err.get('filename')}: {str(err.get('stack_trace', '')).strip()[-400:]}")
    for dag_id in sorted(found):
        af.check(af.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}))
    say(f"unpaused {len(found)} DAG(s): {', '.join(sorted(found)) or '-'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="overwrite the pool and the settings Variable")
    parser.add_argument("--unpause", action="store_true", help="unpause every DAG (demo)")
    parser.add_argument(
        "--dag-wait", type=float, default=120.0, help="seconds to wait for the DAGs (--unpause)"
    )
    parser.add_argument("--seed", type=int, default=int(env("DEMO_SEED", "42")))
    args = parser.parse_args(argv)

    airflow_url = f"http://127.0.0.1:{env('AIRFLOW_PORT', '8080')}"
    af = Airflow(airflow_url, env("AIRFLOW_ADMIN_USER", "admin"), env("AIRFLOW_ADMIN_PASSWORD", "admin"))
    seed_pool(af, args.force)
    seed_variable(af, args.seed, args.force)
    register_webhooks(airflow_url)
    if args.unpause:
        unpause_all(af, args.dag_wait)
    return 0


if __name__ == "__main__":
    sys.exit(main())
