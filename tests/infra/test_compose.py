"""docker-compose.yaml, Dockerfile and .env.example, checked without a Docker engine.

- the compose file is valid against the Compose Specification JSON schema (vendored, see
  tests/infra/schemas/README.md);
- every host path it mounts or builds from exists in the repository;
- every variable it interpolates is documented in .env.example (and nothing stale is there);
- secrets have no default: they use ``${VAR:?...}`` and are empty in .env.example.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "compose_spec.json"
ENV_EXAMPLE = REPO / ".env.example"

# ${VAR}, ${VAR:-default}, ${VAR:?error}, $VAR; `$$` escapes a dollar for the container's shell.
VAR_REF = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$")
#: Secrets that may be empty on purpose: airflow-init generates a password when it is empty.
OPTIONAL_SECRETS = {"AIRFLOW_ADMIN_PASSWORD"}


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def interpolate_defaults(text: str) -> str:
    """Replace ${VAR:-default} by its default and other references by a placeholder."""

    def repl(match: re.Match[str]) -> str:
        rest = match.group(2) or ""
        if rest.startswith(":-") or rest.startswith("-"):
            return rest.split("-", 1)[1]
        return "value"

    return VAR_REF.sub(repl, text)


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_schema_rejects_an_invalid_file() -> None:
    """The vendored schema really validates (a typo in a service key is refused)."""
    schema = json.loads(SCHEMA_FILE.read_text())
    bad = {"services": {"web": {"image": "x", "helthcheck": {"test": ["CMD", "true"]}}}}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(bad))


def test_services_follow_the_airflow_layout(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
        "airflow-worker", "airflow-triggerer", "airflow-init", "flower", "accurate-sandbox",
        "iseller-sandbox",
    }  # fmt: skip
    assert expected <= set(services)
    assert services["flower"]["profiles"] == ["flower"]
    assert services["accurate-sandbox"]["profiles"] == ["sandbox"]
    assert services["iseller-sandbox"]["profiles"] == ["sandbox"]
    for name in expected - {"airflow-init"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW_CONN_SYNC_DB",
        "AIRFLOW_CONN_ACCURATE_API",
        "AIRFLOW_CONN_ISELLER_API",
    ):
        assert key in env, key
    for service in ("airflow-apiserver", "airflow-worker", "airflow-init"):
        assert services[service]["environment"]["AIRFLOW_CONN_SYNC_DB"] == env["AIRFLOW_CONN_SYNC_DB"]


def test_connections_are_json_with_the_contract_fields(compose: dict[str, Any]) -> None:
    env = compose["services"]["airflow-scheduler"]["environment"]
    sync_db = json.loads(interpolate_defaults(env["AIRFLOW_CONN_SYNC_DB"]))
    assert sync_db["conn_type"] == "postgres" and sync_db["schema"] == "sync_db"
    accurate = json.loads(interpolate_defaults(env["AIRFLOW_CONN_ACCURATE_API"]))
    assert accurate["conn_type"] == "http"
    assert set(accurate["extra"]) == {"signature_secret", "webhook_token"}
    iseller = json.loads(interpolate_defaults(env["AIRFLOW_CONN_ISELLER_API"]))
    assert iseller["conn_type"] == "http" and set(iseller["extra"]) == {"webhook_api_key"}


def host_paths(compose: dict[str, Any]) -> list[tuple[str, str]]:
    """(service, host path) of every bind mount and build context/Dockerfile."""
    found = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            spec = volume["source"] if isinstance(volume, dict) else volume
            source = interpolate_defaults(spec).split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                found.append((name, source))
        build = service.get("build")
        if isinstance(build, str):
            found.append((name, build))
        elif isinstance(build, dict):
            context = build.get("context", ".")
            found.append((name, context))
            found.append((name, str(Path(context) / build.get("dockerfile", "Dockerfile"))))
    return found


def test_every_mounted_or_built_host_path_exists(compose: dict[str, Any]) -> None:
    paths = host_paths(compose)
    assert ("airflow-scheduler", "./dags") in paths, "the parser is broken"
    missing = [(svc, p) for svc, p in paths if not (REPO / p).exists()]
    assert not missing, f"host paths missing in the repository: {missing}"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            spec = volume.get("source", "") if isinstance(volume, dict) else volume
            source = interpolate_defaults(spec).split(":", 1)[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} not declared"


def test_every_variable_is_documented_in_env_example(compose_text: str) -> None:
    used = {m.group(1) or m.group(3) for m in VAR_REF.finditer(compose_text)}
    documented = set(env_example())
    assert used, "no variables found: the parser is broken"
    assert not used - documented, f"not in .env.example: {sorted(used - documented)}"
    assert not documented - used, f"documented but not used by compose: {sorted(documented - used)}"


def test_secrets_have_no_default(compose_text: str) -> None:
    example = env_example()
    for match in VAR_REF.finditer(compose_text):
        name = match.group(1) or match.group(3)
        if not SECRET_NAME.search(name) or name in OPTIONAL_SECRETS:
            continue
        assert (match.group(2) or "").startswith(":?"), f"secret {name} must be ${{{name}:?...}}"
        assert example[name] == "", f".env.example must not hold a value for the secret {name}"
    # The local demo secrets never reach compose.
    for demo_secret in (
        "sandbox-api-token",
        "sandbox-signature-secret",
        "sandbox-secret",
        "demo-webhook-token",
    ):
        assert demo_secret not in compose_text
        assert demo_secret not in ENV_EXAMPLE.read_text()


def test_init_script_creates_the_ledger_database() -> None:
    sql = (REPO / "scripts/compose/postgres-init").glob("*.sql")
    assert any("CREATE DATABASE sync_db" in path.read_text() for path in sql)


def test_dockerfile_uses_the_pinned_airflow_version() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    pins = dict(
        line.strip().split("==", 1)
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    )
    assert f"apache/airflow:slim-{pins['apache-airflow']}-python3.11" in dockerfile
    for source in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile, flags=re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_image_installs_exactly_the_runtime_pins() -> None:
    """The image gets requirements.txt as it is (no development tools), then `pip check`."""
    dockerfile = (REPO / "Dockerfile").read_text()
    installs = re.findall(r"pip install [^\n]*", dockerfile)
    assert installs == ["pip install --no-cache-dir -r /tmp/build/requirements.txt \\"], installs
    assert "COPY --chown=airflow:0 requirements.txt /tmp/build/requirements.txt" in dockerfile
    assert "&& pip check" in dockerfile
    assert "requirements-dev" not in dockerfile.replace("(requirements-dev.txt)", "")
    runtime = {
        line.split("==")[0].lower()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert {"apache-airflow", "apache-airflow-providers-celery", "httpx", "pandas", "psycopg"} <= runtime
    assert not {"pytest", "mypy", "ruff", "playwright"} & runtime


def test_task_note_connection_signs_in_as_the_sync_operator_service_account(compose: dict[str, Any]) -> None:
    """``airflow_api`` (task notes) logs in as a FAB user that airflow-init gives role SyncOperator."""
    env = compose["services"]["airflow-worker"]["environment"]
    assert (
        env["AIRFLOW__CORE__AUTH_MANAGER"]
        == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    )
    conn = json.loads(interpolate_defaults(env["AIRFLOW_CONN_AIRFLOW_API"]))
    assert conn["conn_type"] == "http"
    assert conn["host"] == "http://airflow-apiserver:8080"
    assert "airflow-apiserver" in compose["services"]
    init_env = compose["services"]["airflow-init"]["environment"]
    assert interpolate_defaults(init_env["NOTES_USER"]) == conn["login"]
    assert "AIRFLOW_NOTES_PASSWORD:?" in init_env["NOTES_PASSWORD"]
    assert "AIRFLOW_NOTES_PASSWORD:?" in env["AIRFLOW_CONN_AIRFLOW_API"]
    assert "bash /opt/airflow/bin/fab_users.sh" in "\n".join(compose["services"]["airflow-init"]["command"])
    script = (REPO / "scripts" / "compose" / "fab_users.sh").read_text()
    assert "--role SyncOperator" in script and "--role Admin" in script
    assert "python -m include.iseller_accurate.roles" in script
    assert (
        "COPY --chown=airflow:0 scripts/compose/fab_users.sh /opt/airflow/bin/fab_users.sh"
        in (REPO / "Dockerfile").read_text()
    )


def _write_passwords(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = REPO / "scripts" / "compose" / "auth_passwords.py"
    return subprocess.run(
        [sys.executable, str(script), str(path)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_init_writes_the_passwords_file_for_both_accounts(tmp_path: Path) -> None:
    pwfile = tmp_path / "auth" / "passwords.json"
    notes = {"NOTES_USER": "sync-notes", "NOTES_PASSWORD": "n0tes-secret"}
    first = _write_passwords(pwfile, ADMIN_USER="admin", **notes)
    assert first.returncode == 0, first.stderr
    stored = json.loads(pwfile.read_text())
    assert stored["sync-notes"] == "n0tes-secret"
    assert len(stored["admin"]) >= 20
    assert f"admin / {stored['admin']}" in first.stdout  # generated: shown once
    assert "n0tes-secret" not in first.stdout + first.stderr  # the service password never printed
    assert pwfile.stat().st_mode & 0o777 == 0o600

    again = _write_passwords(pwfile, ADMIN_USER="admin", **notes)  # a restart keeps the admin password
    assert again.returncode == 0 and json.loads(pwfile.read_text())["admin"] == stored["admin"]
    assert stored["admin"] not in again.stdout

    stored["someone-else"] = "kept"
    pwfile.write_text(json.dumps(stored))
    rotated = _write_passwords(
        pwfile,
        ADMIN_USER="admin",
        ADMIN_PASSWORD="from-env",
        NOTES_USER="sync-notes",
        NOTES_PASSWORD="rotated",
    )
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(pwfile.read_text()) == {
        "admin": "from-env",
        "sync-notes": "rotated",
        "someone-else": "kept",
    }


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"ADMIN_USER": "admin", "NOTES_USER": "sync-notes", "NOTES_PASSWORD": ""}, "AIRFLOW_NOTES_PASSWORD"),
        ({"ADMIN_USER": "ops", "NOTES_USER": "ops", "NOTES_PASSWORD": "x"}, "must differ"),
    ],
)
def test_init_refuses_a_bad_notes_account(tmp_path: Path, env: dict[str, str], reason: str) -> None:
    result = _write_passwords(tmp_path / "passwords.json", **env)
    assert result.returncode != 0 and reason in result.stderr
    assert not (tmp_path / "passwords.json").exists()


def test_init_refuses_a_damaged_passwords_file(tmp_path: Path) -> None:
    pwfile = tmp_path / "passwords.json"
    pwfile.write_text("{not json")
    result = _write_passwords(pwfile, ADMIN_USER="admin", NOTES_USER="sync-notes", NOTES_PASSWORD="x")
    assert result.returncode != 0 and "remove it to start over" in result.stderr
    assert pwfile.read_text() == "{not json"
