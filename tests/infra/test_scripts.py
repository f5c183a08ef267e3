"""The set-up scripts: syntax, CI entry point, the environment they export, the embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_shell_script_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scripts_are_executable() -> None:
    for script in [*SCRIPTS, REPO / "scripts/seed.py", REPO / ".ci/run"]:
        if script.name not in ("env.sh", "stack_run.sh"):  # sourced, not run
            assert os.access(script, os.X_OK), f"{script} is not executable"


def test_ci_runs_make_test() -> None:
    ci = (REPO / ".ci/run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert any(re.fullmatch(r"make test( </dev/null)?( \|\| rc=1)?", line) for line in commands), commands
    # The second lane: the Celery lane, with state of its own; the job fails when either lane failed.
    assert any(line.startswith("make test EXECUTOR=celery ") for line in commands), commands
    assert "SYNC_LOCAL_DIR=.local-celery" in ci
    assert commands[-1] == '[ "$rc" = 0 ] && [ "${rc2:-0}" = 0 ]'


def test_makefile_has_the_contract_targets() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    assert {"venv", "demo", "up", "down", "test", "lint", "bench", "clean", "browser"} <= targets


def sourced_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment after `. scripts/env.sh`, starting from an almost empty one."""
    base = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SYNC_LOCAL_DIR": str(tmp_path / "local")}
    dump = f"{sys.executable} -c 'import json, os; print(json.dumps(dict(os.environ)))'"
    out = subprocess.run(
        ["bash", "-c", f". {REPO}/scripts/env.sh && {dump}"],
        env={**base, **overrides},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_env_defaults_follow_the_contract(tmp_path: Path) -> None:
    env = sourced_env(tmp_path)
    assert env["AIRFLOW_PORT"] == "8080"
    assert env["ACCURATE_SANDBOX_PORT"] == "8181"
    assert env["ISELLER_SANDBOX_PORT"] == "8182"
    assert env["SYNC_PG_PORT"] == "5433"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "local/airflow")
    assert env["PYTHONPATH"].split(":")[0] == str(REPO)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO / "plugins")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://airflow:airflow@127.0.0.1:5433/airflow"
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["SYNC_TEST_DSN"] == "postgresql://airflow:airflow@127.0.0.1:5433/postgres"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64
    assert json.loads(env["AIRFLOW_CONN_SYNC_DB"]) == {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5433,
        "schema": "sync_db",
        "login": "airflow",
        "password": "airflow",
    }
    assert json.loads(env["AIRFLOW_CONN_ACCURATE_API"]) == {
        "conn_type": "http",
        "host": "http://127.0.0.1:8181",
        "password": "sandbox-api-token",
        "extra": {"signature_secret": "sandbox-signature-secret", "webhook_token": "demo-webhook-token"},
    }
    assert json.loads(env["AIRFLOW_CONN_ISELLER_API"]) == {
        "conn_type": "http",
        "host": "http://127.0.0.1:8182",
        "login": "sandbox-client",
        "password": "sandbox-secret",
        "extra": {"webhook_api_key": "sandbox-webhook-key"},
    }


def test_env_secrets_are_generated_once(tmp_path: Path) -> None:
    first = sourced_env(tmp_path)
    second = sourced_env(tmp_path)
    assert first["AIRFLOW__API_AUTH__JWT_SECRET"] == second["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert first["AIRFLOW__API__SECRET_KEY"] == second["AIRFLOW__API__SECRET_KEY"]
    assert (tmp_path / "local/secrets.env").stat().st_mode & 0o077 == 0


def test_env_overrides_win(tmp_path: Path) -> None:
    env = sourced_env(
        tmp_path,
        AIRFLOW_PORT="9090",
        SYNC_PG_PORT="6543",
        ACCURATE_SANDBOX_PORT="9181",
        ACCURATE_API_TOKEN="other-token",
        AIRFLOW__CORE__PARALLELISM="3",
        AIRFLOW_CONN_ISELLER_API='{"conn_type": "http", "host": "http://elsewhere"}',
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9090/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:6543/airflow")
    assert env["SYNC_TEST_DSN"] == "postgresql://airflow:airflow@127.0.0.1:6543/postgres"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3"
    accurate = json.loads(env["AIRFLOW_CONN_ACCURATE_API"])
    assert accurate["host"] == "http://127.0.0.1:9181" and accurate["password"] == "other-token"
    assert json.loads(env["AIRFLOW_CONN_ISELLER_API"])["host"] == "http://elsewhere"


def test_health_probe_reports_a_dead_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/health.py"), "url", f"http://127.0.0.1:{port}/_sandbox/health"]
    )
    assert result.returncode == 1


def test_seed_script_parses_its_options() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/seed.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "--unpause" in result.stdout and "--force" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_embedded_postgres_start_is_idempotent_and_stops(tmp_path: Path) -> None:
    """scripts/postgres.sh on a free port in a scratch directory: role, databases, restart, stop."""
    port = free_port()
    env = {**os.environ, "SYNC_LOCAL_DIR": str(tmp_path / "local"), "SYNC_PG_PORT": str(port)}
    env.pop("SYNC_PG_DIR", None)
    script = str(REPO / "scripts/postgres.sh")
    real_dir = None
    try:
        subprocess.run(["bash", script, "start"], env=env, check=True, capture_output=True, timeout=120)
        pg_dir = tmp_path / "local/pg"
        real_dir = pg_dir.resolve()
        subprocess.run(["bash", script, "start"], env=env, check=True, capture_output=True, timeout=60)
        dsn = f"postgresql://airflow:airflow@127.0.0.1:{port}/postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'airflow'").fetchone()
        assert {"airflow", "sync_db"} <= names
        assert superuser == (True,)
        assert subprocess.run(["bash", script, "status"], env=env, capture_output=True).returncode == 0
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=120)
        if real_dir is not None and real_dir != tmp_path / "local/pg":
            shutil.rmtree(real_dir, ignore_errors=True)
    assert subprocess.run(["bash", script, "status"], env=env, capture_output=True).returncode == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://airflow:airflow@127.0.0.1:{port}/postgres", connect_timeout=2)


def test_env_detects_dead_tasks_quickly_with_options_airflow_knows(tmp_path: Path) -> None:
    """A kill -9'd task (or one whose scheduler restarted) is noticed in a minute, not after 300 s.

    The options must be real Airflow 3.3 options (a misspelt AIRFLOW__ variable is silently ignored)
    and the timeout must stay well above the workers' heartbeat interval, so live tasks are not cut.
    """
    from airflow.configuration import conf

    env = sourced_env(tmp_path)
    options = {
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": (
            "scheduler",
            "task_instance_heartbeat_timeout",
        ),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": (
            "scheduler",
            "task_instance_heartbeat_timeout_detection_interval",
        ),
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": ("scheduler", "orphaned_tasks_check_interval"),
    }
    for variable, (section, key) in options.items():
        assert variable in env, variable
        assert conf.has_option(section, key), (section, key)
    timeout = int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
    heartbeat = conf.getint("workers", "min_heartbeat_interval")
    assert timeout <= 60
    assert timeout >= 10 * heartbeat
    assert float(env["AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL"]) <= 30


def test_stack_one_service_commands_take_celery_workers_only(tmp_path: Path) -> None:
    """`stack.sh stop-service` / `start-service` name one Celery worker; anything else is refused, clearly.

    Nothing runs here: every call is refused before it touches a process.
    """
    base = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SYNC_LOCAL_DIR": str(tmp_path / "local")}
    stack = str(REPO / "scripts/stack.sh")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", stack, *args], env={**base, **env}, capture_output=True, text=True, timeout=60
        )

    usage = run("no-such-command")
    assert usage.returncode == 2
    assert "stop-service celery-worker<i>" in usage.stderr
    assert "start-service celery-worker<i>" in usage.stderr
    for command in ("stop-service", "start-service"):
        for name, env in (
            ("api-server", {"EXECUTOR": "celery"}),
            ("celery-worker3", {"EXECUTOR": "celery", "WORKERS": "2"}),
            ("celery-worker1", {"EXECUTOR": "local"}),
        ):
            refused = run(command, name, **env)
            assert refused.returncode == 1, (command, name, refused.stderr)
            assert f"{command}: '{name}' is not a Celery worker of this stack" in refused.stderr
        assert run(command, **{"EXECUTOR": "celery"}).returncode == 1  # no name
    assert not (tmp_path / "local/run").exists()  # refused before anything was started or stopped
