"""scripts/airflow_with_password.py hands any password to `airflow users ...`, even one beginning with "-".

secrets.token_urlsafe() starts with "-" about once in 64 draws; given as a separate argument after
`--password`, argparse reads it as an unknown option ("expected one argument"), which once failed CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
from airflow.providers.fab.cli.definition import USERS_COMMANDS

REPO = Path(__file__).resolve().parents[2]


def _users_parser(command: str) -> argparse.ArgumentParser:
    """`airflow users <command>` as the FAB provider defines it."""
    (definition,) = [c for c in USERS_COMMANDS if c.name == command]
    parser = argparse.ArgumentParser(prog=f"airflow users {command}", exit_on_error=False)
    for arg in definition.args:
        arg.add_to_parser(parser)
    return parser


def _argv_of_wrapper(monkeypatch: pytest.MonkeyPatch, password: str, *args: str) -> list[str]:
    """The argv the wrapper hands to Airflow's CLI (its main() is replaced by a recorder)."""
    spec = importlib.util.spec_from_file_location(
        "airflow_with_password", REPO / "scripts" / "airflow_with_password.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen: list[list[str]] = []
    monkeypatch.setattr("airflow.__main__.main", lambda: seen.append(list(sys.argv)))
    monkeypatch.setenv("SYNC_CLI_PASSWORD", password)
    monkeypatch.setattr(sys, "argv", ["airflow_with_password.py", *args])
    module.main()
    return seen[0]


@pytest.mark.parametrize("password", ["-IVDwWp9i4r40b8xueq5FfF8", "--help", "plain-Password_1", "-"])
def test_a_password_starting_with_a_dash_reaches_users_create(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    argv = _argv_of_wrapper(
        monkeypatch, password,
        "users", "create", "--username", "admin", "--firstname", "A", "--lastname", "B",
        "--email", "a@example.invalid", "--role", "Admin",
    )  # fmt: skip
    assert argv[:3] == ["airflow", "users", "create"]
    parsed = _users_parser("create").parse_args(argv[3:])
    assert parsed.password == password
    assert parsed.username == "admin"


def test_the_password_leaves_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:

    _argv_of_wrapper(monkeypatch, "-secret", "users", "reset-password", "--username", "admin")
    assert "SYNC_CLI_PASSWORD" not in os.environ


def test_the_compose_init_script_passes_passwords_as_one_argument() -> None:
    """fab_users.sh: every `--password` is `"--password=$VAR"`, never `--password "$VAR"`."""
    script = (REPO / "scripts" / "compose" / "fab_users.sh").read_text()
    uses = re.findall(r"\S*--password\S*", script)
    assert uses, "fab_users.sh no longer sets passwords: update this test"
    assert all(use.startswith('"--password=$') for use in uses), uses
