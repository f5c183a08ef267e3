"""Write the simple auth manager's passwords file for docker-compose.yaml (run by airflow-init).

    python auth_passwords.py /opt/airflow/auth/simple_auth_manager_passwords.json

Environment:
- ``ADMIN_USER`` / ``ADMIN_PASSWORD``: the UI login. An empty password keeps the one already in the
  file, or generates one on the first start and prints it once.
- ``NOTES_USER`` / ``NOTES_PASSWORD``: the service account the sync tasks use to write task-instance
  notes (connection ``airflow_api``); its password always comes from the environment, so the
  connection and the file agree. It is never printed.

Other users already in the file are kept. The file is written atomically with mode 0600.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path


def update_passwords(path: Path, env: dict[str, str]) -> list[str]:
    """Update ``path``; returns the lines to print (logins, never the service password)."""
    admin_user = env.get("ADMIN_USER") or "admin"
    admin_password = env.get("ADMIN_PASSWORD") or ""
    notes_user = env.get("NOTES_USER") or ""
    notes_password = env.get("NOTES_PASSWORD") or ""
    if notes_user and not notes_password:
        raise SystemExit(f"NOTES_PASSWORD is empty: set AIRFLOW_NOTES_PASSWORD in .env for {notes_user!r}")
    if notes_user == admin_user:
        raise SystemExit("AIRFLOW_NOTES_USER must differ from AIRFLOW_ADMIN_USER")

    passwords: dict[str, str] = {}
    if path.exists() and path.stat().st_size:
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path} is not JSON ({exc}); remove it to start over") from exc
        if not isinstance(loaded, dict):
            raise SystemExit(f"{path} must hold a JSON object of user -> password")
        passwords = {str(k): str(v) for k, v in loaded.items()}

    said: list[str] = []
    if admin_password:
        passwords[admin_user] = admin_password
        said.append(f"Admin login: {admin_user} / (AIRFLOW_ADMIN_PASSWORD from .env)")
    elif admin_user not in passwords:
        passwords[admin_user] = secrets.token_urlsafe(18)
        said.append(f"Admin login (generated, shown once): {admin_user} / {passwords[admin_user]}")
    else:
        said.append(f"Admin login: {admin_user} / (unchanged)")
    if notes_user:
        passwords[notes_user] = notes_password
        said.append(f"Task-note service account: {notes_user} (role user; password from .env)")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(passwords, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return said


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for line in update_passwords(Path(argv[1]), dict(os.environ)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
