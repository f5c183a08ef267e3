"""The FAB role definitions (include/iseller_accurate/roles.py): confined to the sync DAGs.

The roles are exercised against a real FAB auth manager in tests/e2e/test_fab_roles_e2e.py; these
checks pin what they may never hold, whatever edit comes later.
"""

from __future__ import annotations

from pathlib import Path

from include.iseller_accurate.roles import (
    OPERATOR_ROLE,
    SYNC_DAG_IDS,
    VIEWER_ROLE,
    dag_resource,
    role_permissions,
)

DAGS = Path(__file__).resolve().parents[2] / "dags"
#: Never in a sync role (but as a menu entry): other DAGs (global "DAGs"), secrets, settings, administration.
FORBIDDEN = {
    "DAGs", "Connections", "Variables", "Configurations", "Pools", "Users", "Roles", "Passwords",
    "Permissions", "Permission Views", "View Menus", "Plugins", "Providers", "XComs", "Audit Logs",
    "Admin", "Backfills", "Assets",
}  # fmt: skip


def _dag_ids_in_dags_folder() -> set[str]:
    """Every DAG id the files in dags/ define, as a real DagBag parses them."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return set(bag.dag_ids)


def test_the_roles_name_every_dag_of_the_project() -> None:
    assert set(SYNC_DAG_IDS) == _dag_ids_in_dags_folder()


def test_no_role_touches_connections_variables_or_other_dags() -> None:
    for name, perms in role_permissions().items():
        # "menu_access" on "DAGs" is the navigation entry; any other action on "DAGs" is every DAG.
        resources = {resource for action, resource in perms if action != "menu_access"}
        assert not resources & FORBIDDEN, (name, resources & FORBIDDEN)
        dag_resources = {r for r in resources if r.startswith("DAG:")}
        assert dag_resources == {dag_resource(d) for d in SYNC_DAG_IDS}, name


def test_the_viewer_may_read_but_not_clear() -> None:
    viewer = role_permissions()[VIEWER_ROLE]
    assert {("can_read", "Task Instances"), ("can_read", "DAG Runs"), ("can_read", "Task Logs")} <= viewer
    edits = {resource for action, resource in viewer if action not in ("can_read", "menu_access")}
    assert edits == {"My Profile", "My Password"}


def test_the_operator_is_the_viewer_plus_what_clearing_needs() -> None:
    roles = role_permissions()
    extra = roles[OPERATOR_ROLE] - roles[VIEWER_ROLE]
    assert roles[VIEWER_ROLE] < roles[OPERATOR_ROLE]
    assert extra == {("can_edit", "Task Instances"), ("can_edit", "DAG Runs")} | {
        ("can_edit", dag_resource(d)) for d in SYNC_DAG_IDS
    }
