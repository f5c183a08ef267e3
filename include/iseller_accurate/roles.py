"""The shop's Airflow roles under the FAB auth manager: ``SyncOperator`` and ``SyncViewer``.

``Admin`` is FAB's own. The two roles here give exactly what the operator pages need and nothing
else (no connections, variables, pools, configuration, or DAGs other than the sync DAGs):

- **SyncViewer** reads the sync DAGs, their runs, task instances and task logs, and so sees the Sync
  Status and Webhook Log pages (which show the rows of the DAGs whose task instances the user may
  read). Refresh is refused: clearing a task instance needs *edit*.
- **SyncOperator** is SyncViewer plus *edit* on the sync DAGs' runs and task instances, which is
  what ``POST /api/v2/dags/{dag_id}/clearTaskInstances`` (Refresh) asks of the FAB auth manager.

How FAB decides (apache-airflow-providers-fab, ``FabAuthManager.is_authorized_dag``): a request on a
DAG's task instances needs the action on the global resources ``DAG Runs`` *and* ``Task Instances``,
and the action on the DAG itself, either the global ``DAGs`` resource (every DAG: not given here) or
the per-DAG resource ``DAG:<dag_id>``. Reading maps to ``can_read``, clearing (PUT) to ``can_edit``.
So the per-DAG resources are what confine both roles to the sync DAGs. FAB has no narrower action
than ``can_edit`` on ``DAG:<dag_id>``: a SyncOperator may therefore also pause or unpause the sync
DAGs (documented in docs/production.md).

Run ``python -m include.iseller_accurate.roles`` (or ``scripts/fab_roles.py``) with the Airflow
environment of the deployment, after ``airflow db migrate``. It is idempotent: each role ends with
exactly the permissions below, whatever it held before; running it twice changes nothing the second
time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

#: The project's DAGs (dags/*.py); a role is confined to these through ``DAG:<dag_id>`` resources.
SYNC_DAG_IDS: tuple[str, ...] = (
    "iseller_sales_to_accurate",
    "iseller_transfers_to_accurate",
    "iseller_stock_opname_to_accurate",
    "accurate_webhooks_to_iseller",
    "accurate_webhook_maintenance",
    "iseller_accurate_reconciliation",
    "iseller_accurate_preflight",
)

OPERATOR_ROLE = "SyncOperator"
VIEWER_ROLE = "SyncViewer"

# FAB's action and resource names (airflow.providers.fab.www.security.permissions); spelled out here
# so this module imports without the FAB provider (the pages and unit tests do not need it).
CAN_READ = "can_read"
CAN_EDIT = "can_edit"
MENU_ACCESS = "menu_access"
DAG_PREFIX = "DAG:"
DAG_RUNS = "DAG Runs"
TASK_INSTANCES = "Task Instances"
TASK_LOGS = "Task Logs"

Permission = tuple[str, str]


def dag_resource(dag_id: str) -> str:
    """FAB's per-DAG resource name (``permissions.resource_name(dag_id, "DAGs")``)."""
    return f"{DAG_PREFIX}{dag_id}"


def _viewer_permissions(dag_ids: Iterable[str]) -> frozenset[Permission]:
    perms: set[Permission] = {(CAN_READ, dag_resource(dag_id)) for dag_id in dag_ids}
    perms |= {
        # the sync DAGs' runs, task instances and logs (DagAccessEntity RUN, TASK_INSTANCE, TASK_LOGS)
        (CAN_READ, DAG_RUNS),
        (CAN_READ, TASK_INSTANCES),
        (CAN_READ, TASK_LOGS),
        # what the Airflow UI shows about those DAGs: code, versions, warnings, dependencies
        (CAN_READ, "DAG Code"),
        (CAN_READ, "DAG Versions"),
        (CAN_READ, "DAG Warnings"),
        (CAN_READ, "DAG Dependencies"),
        # the UI itself, the navigation entries, and the user's own profile and password
        (CAN_READ, "Website"),
        (CAN_READ, "My Profile"),
        (CAN_EDIT, "My Profile"),
        (CAN_READ, "My Password"),
        (CAN_EDIT, "My Password"),
        (MENU_ACCESS, "DAGs"),
        (MENU_ACCESS, "Browse"),
        (MENU_ACCESS, DAG_RUNS),
        (MENU_ACCESS, TASK_INSTANCES),
    }
    return frozenset(perms)


def _operator_permissions(dag_ids: Iterable[str]) -> frozenset[Permission]:
    dag_ids = tuple(dag_ids)
    # Refresh = clearTaskInstances = PUT on DagAccessEntity.TASK_INSTANCE: can_edit on DAG Runs and
    # Task Instances, and can_edit on the DAG (here: each sync DAG, never the global "DAGs").
    return _viewer_permissions(dag_ids) | {
        (CAN_EDIT, DAG_RUNS),
        (CAN_EDIT, TASK_INSTANCES),
        *((CAN_EDIT, dag_resource(dag_id)) for dag_id in dag_ids),
    }


def role_permissions(dag_ids: Iterable[str] = SYNC_DAG_IDS) -> dict[str, frozenset[Permission]]:
    """Each role's exact permission set."""
    dag_ids = tuple(dag_ids)
    return {VIEWER_ROLE: _viewer_permissions(dag_ids), OPERATOR_ROLE: _operator_permissions(dag_ids)}


def apply_roles(security_manager: Any, roles: dict[str, frozenset[Permission]]) -> dict[str, dict[str, list]]:
    """Make each role hold exactly its permissions (FAB security manager); return what changed."""
    changes: dict[str, dict[str, list]] = {}
    for name, wanted in roles.items():
        role = security_manager.find_role(name) or security_manager.add_role(name)
        held = {(perm.action.name, perm.resource.name): perm for perm in role.permissions}
        added, removed = [], []
        for action, resource in sorted(wanted - held.keys()):
            # create_permission makes the action and resource when missing (e.g. DAG:<id> before the
            # DAG was first parsed) and returns the existing permission otherwise.
            perm = security_manager.create_permission(action, resource)
            security_manager.add_permission_to_role(role, perm)
            added.append([action, resource])
        for key in sorted(held.keys() - wanted):
            security_manager.remove_permission_from_role(role, held[key])
            removed.append(list(key))
        changes[name] = {"added": added, "removed": removed}
    return changes


def read_roles(security_manager: Any, names: Iterable[str]) -> dict[str, set[Permission]]:
    """The permissions each named role holds now (missing role: empty set)."""
    out: dict[str, set[Permission]] = {}
    for name in names:
        role = security_manager.find_role(name)
        out[name] = {(p.action.name, p.resource.name) for p in role.permissions} if role else set()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a role differs")
    args = parser.parse_args(argv)
    try:
        from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    except ImportError:
        print(
            "The FAB auth manager is not installed: pip install apache-airflow-providers-fab "
            "(the version pinned in requirements.txt).",
            file=sys.stderr,
        )
        return 2
    wanted = role_permissions()
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        if args.check:
            held = read_roles(sm, wanted)
            diff = {
                name: {
                    "missing": sorted(wanted[name] - held[name]),
                    "extra": sorted(held[name] - wanted[name]),
                }
                for name in wanted
            }
            print(json.dumps(diff, indent=2))
            return 0 if all(not d["missing"] and not d["extra"] for d in diff.values()) else 1
        changes = apply_roles(sm, wanted)
    for name, change in changes.items():
        print(f"{name}: {len(change['added'])} permission(s) added, {len(change['removed'])} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
