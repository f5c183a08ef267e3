"""The Airflow internals the plugin code relies on are where, and what, airflow_internals.py expects.

Each check names the wrapper to fix when an Airflow upgrade moves or changes an internal. Also: no
module of include/ or plugins/ imports an Airflow internal outside airflow_internals.py (only the Task
SDK, providers and the plugin base class are allowed elsewhere).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WRAPPERS = "include/iseller_accurate/airflow_internals.py"
#: Airflow modules any project file may import: the public Task SDK, providers, the plugin base class.
PUBLIC = ("airflow.sdk", "airflow.providers.", "airflow.plugins_manager")


def _symbol(module: str, name: str, wrapper: str) -> object:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"Airflow moved {module}.{name} ({exc}); fix {wrapper}() in {WRAPPERS}, which calls it",
            pytrace=False,
        )


def _params(func: object, wrapper: str, *needed: str) -> None:
    signature = inspect.signature(func)  # type: ignore[arg-type]
    missing = [name for name in needed if name not in signature.parameters]
    if missing:
        pytest.fail(
            f"{func!r} has no parameter {missing} any more (signature {signature}); "
            f"fix {wrapper}() in {WRAPPERS}",
            pytrace=False,
        )


def test_get_user_for_resolve_user() -> None:
    get_user = _symbol("airflow.api_fastapi.core_api.security", "get_user", "resolve_user")
    assert inspect.iscoroutinefunction(get_user), "get_user is no longer async: fix resolve_user()"
    # called positionally: (request, oauth token, bearer credentials)
    assert list(inspect.signature(get_user).parameters)[:3] == [
        "request",
        "_oauth_token",
        "bearer_credentials",
    ], f"get_user's parameters changed ({inspect.signature(get_user)}): fix resolve_user() in {WRAPPERS}"


def test_auth_manager_for_readable_task_instance_dag_ids_and_login_url() -> None:
    _symbol("airflow.api_fastapi.app", "get_auth_manager", "readable_task_instance_dag_ids")
    entity = _symbol(
        "airflow.api_fastapi.auth.managers.models.resource_details",
        "DagAccessEntity",
        "readable_task_instance_dag_ids",
    )
    details = _symbol(
        "airflow.api_fastapi.auth.managers.models.resource_details",
        "DagDetails",
        "readable_task_instance_dag_ids",
    )
    assert hasattr(entity, "TASK_INSTANCE"), (
        "DagAccessEntity.TASK_INSTANCE is gone: fix readable_task_instance_dag_ids()"
    )
    _params(details, "readable_task_instance_dag_ids", "id")
    base = _symbol(
        "airflow.api_fastapi.auth.managers.base_auth_manager",
        "BaseAuthManager",
        "readable_task_instance_dag_ids",
    )
    _params(base.get_authorized_dag_ids, "readable_task_instance_dag_ids", "user", "method")  # type: ignore[attr-defined]
    _params(
        base.is_authorized_dag, "readable_task_instance_dag_ids", "method", "user", "access_entity", "details"
    )  # type: ignore[attr-defined]
    _params(base.get_url_login, "login_url", "kwargs")  # type: ignore[attr-defined]


def test_api_root_path() -> None:
    root = _symbol("airflow.api_fastapi.app", "API_ROOT_PATH", "api_root_path")
    assert isinstance(root, str), f"API_ROOT_PATH is a {type(root)} now: fix api_root_path() in {WRAPPERS}"


def test_variable_for_metastore_variable() -> None:
    variable = _symbol("airflow.models.variable", "Variable", "metastore_variable")
    _params(variable.get, "metastore_variable", "key", "default_var")  # type: ignore[attr-defined]


def test_connection_for_metastore_connection() -> None:
    connection = _symbol("airflow.models.connection", "Connection", "metastore_connection")
    _params(connection.get_connection_from_secrets, "metastore_connection", "conn_id")  # type: ignore[attr-defined]


def test_asset_manager_for_record_asset_event() -> None:
    manager = _symbol("airflow.assets.manager", "asset_manager", "record_asset_event")
    _params(manager.register_asset_change, "record_asset_event", "asset", "extra", "session", "source_is_api")  # type: ignore[attr-defined]
    asset_model = _symbol("airflow.models.asset", "AssetModel", "record_asset_event")
    for column in ("name", "active"):
        assert hasattr(asset_model, column), (
            f"AssetModel.{column} is gone: fix record_asset_event() in {WRAPPERS}"
        )
    create_session = _symbol("airflow.utils.session", "create_session", "record_asset_event")
    assert callable(create_session)


def test_the_wrappers_module_imports_and_names_each_wrapper() -> None:
    module = importlib.import_module("include.iseller_accurate.airflow_internals")
    for name in (
        "resolve_user",
        "readable_task_instance_dag_ids",
        "login_url",
        "api_root_path",
        "metastore_variable",
        "metastore_connection",
        "record_asset_event",
    ):
        assert callable(getattr(module, name)), name


def _airflow_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name == "airflow" or name.startswith("airflow.")]
    return found


def test_no_airflow_internal_is_imported_outside_the_wrappers_module() -> None:
    offenders = []
    for path in sorted(
        [*REPO.glob("include/**/*.py"), *REPO.glob("plugins/**/*.py"), *REPO.glob("dags/**/*.py")]
    ):
        relative = path.relative_to(REPO).as_posix()
        if relative == WRAPPERS:
            continue
        for line, module in _airflow_imports(path):
            if not (module.startswith(PUBLIC) or module == "airflow.sdk"):
                offenders.append(f"{relative}:{line} imports {module}")
    assert not offenders, (
        "Airflow internals imported outside "
        + WRAPPERS
        + " (put each behind one function there):\n"
        + "\n".join(offenders)
    )
