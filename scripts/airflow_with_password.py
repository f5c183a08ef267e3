"""Run one `airflow` CLI command that needs `--password`, without the password on a command line.

`airflow users create/reset-password` take the password as an argument, which every local user can
read in the process list (/proc/<pid>/cmdline). This wrapper reads it from the environment variable
SYNC_CLI_PASSWORD and adds it to the CLI's arguments inside this process only:

    SYNC_CLI_PASSWORD="..." python scripts/airflow_with_password.py users create --username admin ...
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    password = os.environ.pop("SYNC_CLI_PASSWORD", "")
    if not password:
        sys.exit("airflow_with_password.py: SYNC_CLI_PASSWORD is empty")
    from airflow.__main__ import main as airflow_main

    # One argument, `--password=<value>`: a password that begins with "-" (secrets.token_urlsafe
    # makes one about 1 time in 64) would otherwise be read by argparse as an option of its own.
    sys.argv = ["airflow", *sys.argv[1:], f"--password={password}"]
    airflow_main()


if __name__ == "__main__":
    main()
