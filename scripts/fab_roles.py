#!/usr/bin/env python3
"""Create or update the FAB roles SyncOperator and SyncViewer (idempotent).

    python scripts/fab_roles.py          # make both roles hold exactly their permissions
    python scripts/fab_roles.py --check  # change nothing; exit 1 when a role differs

Needs the Airflow environment of the deployment (AIRFLOW_HOME / AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)
and the FAB provider. The permissions are in include/iseller_accurate/roles.py; an Airflow that got
only dags/, plugins/ and include/ runs ``python -m include.iseller_accurate.roles`` instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from include.iseller_accurate.roles import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
