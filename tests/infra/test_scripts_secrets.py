"""The scripts never print a secret: a terminal or a CI job log is a log too.

``scripts/stack.sh up`` and ``make demo`` tell the login. The local default password (``admin``) is
shown; any other one (set in ``AIRFLOW_ADMIN_PASSWORD``, e.g. in CI) is named, never printed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Variables holding a secret (scripts/env.sh); only env.sh may expand them (to build the connections).
SECRET_VARIABLES = (
    "AIRFLOW_ADMIN_PASSWORD",
    "ACCURATE_API_TOKEN",
    "ACCURATE_SIGNATURE_SECRET",
    "ACCURATE_WEBHOOK_TOKEN",
    "ISELLER_CLIENT_SECRET",
    "ISELLER_WEBHOOK_API_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)
SCRIPTS = [s for s in sorted((REPO / "scripts").glob("*.sh")) if s.name != "env.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_no_script_but_env_sh_expands_a_secret(script: Path) -> None:
    text = script.read_text()
    for name in SECRET_VARIABLES:
        expansion = re.compile(r"\$\{?" + re.escape(name) + r"\b")
        # Handing the secret to one command's environment (`VAR="$SECRET" command`) neither prints it
        # nor puts it on a command line; anything else (echo, printf, an argument) does.
        handed_over = re.compile(r'\b[A-Z_]+="\$\{?' + re.escape(name) + r'\}?"\s')
        lines = [
            n
            for n, line in enumerate(text.splitlines(), 1)
            if expansion.search(handed_over.sub("", line))
        ]
        assert not lines, (
            f"{script.name} expands ${name} on lines {lines}: use sync_login_hint to show a login, "
            "or hand the secret to one command's environment"
        )


def _login_hint(tmp_path: Path, **env: str) -> str:
    base = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SYNC_LOCAL_DIR": str(tmp_path / "local")}
    return subprocess.run(
        ["bash", "-c", f". {REPO}/scripts/env.sh && sync_login_hint"],
        env={**base, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_the_login_hint_shows_the_local_default_password(tmp_path: Path) -> None:
    assert _login_hint(tmp_path) == "admin / admin"


def test_the_login_hint_never_shows_a_configured_password(tmp_path: Path) -> None:
    hint = _login_hint(tmp_path, AIRFLOW_ADMIN_USER="ops", AIRFLOW_ADMIN_PASSWORD="Corr3ct-H0rse-Battery")
    assert "Corr3ct-H0rse-Battery" not in hint
    assert hint == "ops / (the password in AIRFLOW_ADMIN_PASSWORD)"
