"""One health probe of the local stack; exit code 0 when healthy (used by scripts/stack.sh).

    python scripts/health.py url http://127.0.0.1:8181/_sandbox/health
    python scripts/health.py airflow [--components]   # GET /api/v2/monitor/health
    python scripts/health.py alive scheduler          # exit 1 only when Airflow answers and calls
                                                      # the component unhealthy (supervise.sh)

Standard library only, so it works before and after the virtualenv exists.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

AIRFLOW_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local URLs only)
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return 0, b""


def probe_url(url: str) -> int:
    status, _ = get(url)
    return 0 if 200 <= status < 300 else 1


def probe_airflow(components: bool) -> int:
    base = f"http://127.0.0.1:{os.environ.get('AIRFLOW_PORT', '8080')}"
    status, body = get(f"{base}/api/v2/monitor/health")
    if status != 200:
        print(f"api-server: no answer (HTTP {status or 'connection refused'})")
        return 1
    if not components:
        return 0
    try:
        health = json.loads(body)
    except ValueError:
        print("api-server: health answer is not JSON")
        return 1
    states = {name: (health.get(name) or {}).get("status") for name in AIRFLOW_COMPONENTS}
    print(" ".join(f"{name}={state}" for name, state in states.items()))
    return 0 if all(state == "healthy" for state in states.values()) else 1


def probe_alive(component: str) -> int:
    """1 when the API server answers and reports ``component`` unhealthy; 0 otherwise.

    No answer is no verdict: the API server may be the one restarting. The supervisor stops a
    component only on a clear "unhealthy".
    """
    base = f"http://127.0.0.1:{os.environ.get('AIRFLOW_PORT', '8080')}"
    status, body = get(f"{base}/api/v2/monitor/health", timeout=10.0)
    if status != 200:
        return 0
    try:
        state = (json.loads(body).get(component) or {}).get("status")
    except (ValueError, AttributeError):
        return 0
    if state == "unhealthy":
        print(f"{component}: unhealthy")
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "url":
        return probe_url(argv[1])
    if len(argv) >= 2 and argv[0] == "alive" and argv[1] in AIRFLOW_COMPONENTS:
        return probe_alive(argv[1])
    if argv and argv[0] == "airflow":
        return probe_airflow(components="--components" in argv)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
