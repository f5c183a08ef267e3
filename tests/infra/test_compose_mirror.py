"""docker-compose.yaml is the mirror of the local Celery lane (``make up EXECUTOR=celery``), issue 10.

No Docker engine runs here, so the mirror is checked on paper: every Airflow setting and connection
the Celery lane of ``scripts/env.sh`` sets (``AIRFLOW__*``, ``AIRFLOW_CONN_*``) is also set in the
environment every Airflow service of docker-compose.yaml shares, unless it is listed in
``LOCAL_ONLY`` with the reason; the other way round, compose's settings the lane lacks are listed in
``COMPOSE_ONLY``. Executor, auth manager and Celery settings must be equal; the connections hold the
same fields; the pool, the roles and the pins are the same.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.test_compose import interpolate_defaults

REPO = Path(__file__).resolve().parents[2]

#: Set by the local Celery lane, deliberately not by compose: why.
LOCAL_ONLY = {
    "AIRFLOW__CORE__DAGS_FOLDER": "the image's default /opt/airflow/dags; locally the checkout's dags/",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "the image's /opt/airflow/plugins; locally the checkout's plugins/",
    "AIRFLOW__CORE__PARALLELISM": "8 task slots for a 2-core development machine; compose keeps Airflow's 32",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "small pools on one machine; compose keeps Airflow's",
    "AIRFLOW__API__HOST": "the image's API server listens on 0.0.0.0 in its container; locally 127.0.0.1",
    "AIRFLOW__API__PORT": "the container port is 8080 (published as AIRFLOW_PORT); locally AIRFLOW_PORT",
    "AIRFLOW__API__WORKERS": "one API server worker on 2 cores; compose keeps Airflow's default",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "quick turnaround for development and tests",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2 cores locally; compose keeps Airflow's default",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "quieter local logs",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "quick turnaround for development and tests",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "quick turnaround for development and tests",
    "AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL": "quick turnaround for development and tests",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "quick turnaround for development and tests",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "quick turnaround for development and tests",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": (
        "90 s so the crash tests see a killed worker's task retried soon; production keeps Airflow's 300 s"
    ),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": (
        "5 s so the soak and crash tests see a dead task soon; production keeps Airflow's default"
    ),
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": (
        "30 s so tasks orphaned by a scheduler restart are adopted soon in tests; production keeps "
        "Airflow's default"
    ),
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": (
        "the local workers share one machine and get 127.0.1.i as hostname; each compose worker is a "
        "container with a hostname of its own"
    ),
}

#: Set by compose, deliberately not by the local lane: why.
COMPOSE_ONLY = {
    "AIRFLOW__CORE__FERNET_KEY": "encrypts connections at rest; the local ones live in the environment only",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "scheduler container healthcheck; locally /monitor/health",
}

#: Must be equal in both (after compose's ${VAR:-default} defaults).
SAME_VALUE = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
)


@pytest.fixture(scope="module")
def lane_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What scripts/env.sh sets for Airflow with EXECUTOR=celery (no inherited AIRFLOW* values)."""
    local = tmp_path_factory.mktemp("local")
    out = subprocess.run(
        ["bash", "-c", ". scripts/env.sh && env -0"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(local), "EXECUTOR": "celery", "SYNC_LOCAL_DIR": str(local)},
        capture_output=True,
        check=True,
    ).stdout.decode()
    env = dict(entry.split("=", 1) for entry in out.split("\0") if "=" in entry)
    return {k: v for k, v in env.items() if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}


@pytest.fixture(scope="module")
def compose_env() -> dict[str, str]:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    for name, service in compose["services"].items():
        if name.startswith("airflow-") or name == "flower":
            assert set(env) <= set(service["environment"]), f"{name} lacks the common Airflow environment"
    return {k: str(v) for k, v in env.items() if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}


def test_every_setting_of_the_celery_lane_is_in_compose_or_a_listed_difference(lane_env, compose_env) -> None:
    missing = sorted(set(lane_env) - set(compose_env) - set(LOCAL_ONLY))
    assert not missing, f"set by the Celery lane, not in docker-compose.yaml nor in LOCAL_ONLY: {missing}"
    stale = sorted(set(LOCAL_ONLY) & set(compose_env))
    assert not stale, f"listed as local only but set in compose too: {stale}"
    extra = sorted(set(compose_env) - set(lane_env) - set(COMPOSE_ONLY))
    assert not extra, f"set in docker-compose.yaml, not by the Celery lane nor in COMPOSE_ONLY: {extra}"
    assert not set(COMPOSE_ONLY) & set(lane_env)
    assert all(reason.strip() for reason in (*LOCAL_ONLY.values(), *COMPOSE_ONLY.values()))


def test_executor_auth_manager_and_celery_settings_are_equal(lane_env, compose_env) -> None:
    assert lane_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert lane_env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".FabAuthManager")
    for key in SAME_VALUE:
        assert str(lane_env[key]).lower() == interpolate_defaults(compose_env[key]).lower(), key
    assert lane_env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert compose_env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    for env in (lane_env, compose_env):
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("/airflow")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def _conn(value: str) -> dict[str, Any]:
    return json.loads(interpolate_defaults(value))


def test_connections_hold_the_same_fields(lane_env, compose_env) -> None:
    conns = sorted(k for k in lane_env if k.startswith("AIRFLOW_CONN_"))
    assert conns == [
        "AIRFLOW_CONN_ACCURATE_API",
        "AIRFLOW_CONN_AIRFLOW_API",
        "AIRFLOW_CONN_ISELLER_API",
        "AIRFLOW_CONN_SYNC_DB",
    ]
    for key in conns:
        local, prod = _conn(lane_env[key]), _conn(compose_env[key])
        assert local["conn_type"] == prod["conn_type"], key
        assert set(local) == set(prod), key
        assert set(local.get("extra") or {}) == set(prod.get("extra") or {}), key


def test_same_pool_roles_and_pins() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    init = "\n".join(compose["services"]["airflow-init"]["command"])
    pool = re.search(r"airflow pools set accurate_api (\d+)", init)
    seed = (REPO / "scripts" / "seed.py").read_text()
    assert pool and re.search(rf"^POOL_SLOTS = {pool.group(1)}$", seed, re.M), "pool differs from seed.py"
    # Roles: the same set-up on both sides.
    assert "fab_roles.py" in (REPO / "scripts" / "stack.sh").read_text()
    assert (
        "python -m include.iseller_accurate.roles"
        in (REPO / "scripts" / "compose" / "fab_users.sh").read_text()
    )
    # Pins: the image installs requirements.txt over the Airflow base image of the same version.
    pins = (REPO / "requirements.txt").read_text()
    airflow = re.search(r"^apache-airflow==([\d.]+)$", pins, re.M)
    docker = (REPO / "Dockerfile").read_text()
    assert airflow and f"apache/airflow:slim-{airflow.group(1)}-" in docker
    assert "-r /tmp/build/requirements.txt" in docker
    assert re.search(r"^celery==", pins, re.M) and re.search(r"^apache-airflow-providers-fab==", pins, re.M)


def _env_of(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["bash", "-c", ". scripts/env.sh && env -0"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SYNC_LOCAL_DIR": str(tmp_path), **extra},
        capture_output=True,
    )


def test_default_lane_stays_local_and_a_bad_executor_is_refused(tmp_path: Path) -> None:
    out = _env_of(tmp_path)
    env = dict(entry.split("=", 1) for entry in out.stdout.decode().split("\0") if "=" in entry)
    assert env["EXECUTOR"] == "local"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert not [k for k in env if k.startswith("AIRFLOW__CELERY__")]
    assert "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in env
    bad = _env_of(tmp_path, EXECUTOR="kubernetes")
    assert bad.returncode != 0
    assert b"EXECUTOR=kubernetes is neither local nor celery" in bad.stderr


def test_worker_hostname_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from include.iseller_accurate.hostname import get_hostname

    monkeypatch.delenv("SYNC_WORKER_HOSTNAME", raising=False)
    assert get_hostname() == socket.getfqdn()
    monkeypatch.setenv("SYNC_WORKER_HOSTNAME", "127.0.1.2")
    assert get_hostname() == "127.0.1.2"
