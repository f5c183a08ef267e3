"""Every place the project reaches into Airflow's internals, each behind one function.

DAGs and tasks use the public Task SDK (``airflow.sdk``) and providers only. The plugin code here
runs inside Airflow's API server (webhook receivers, operator pages), where the Task SDK has no
supervisor to ask and some things have no public Python interface at all. Each function below says
which internal it calls and why no public interface fits. tests/unit/test_airflow_internals.py
imports every internal symbol named here and checks its signature, so an Airflow upgrade that moves
or changes one fails that test with the name of the function to fix, instead of failing at run time
in a webhook or a page.

Internals used (Airflow 3.3):

======================================================  =============================================
internal                                                 wrapper
======================================================  =============================================
``airflow.api_fastapi.core_api.security.get_user``        :func:`resolve_user`
``airflow.api_fastapi.app.get_auth_manager``              :func:`readable_task_instance_dag_ids`,
                                                         :func:`login_url`
``airflow.api_fastapi.auth.managers.models.``             :func:`readable_task_instance_dag_ids`
``resource_details.DagAccessEntity / DagDetails``
``airflow.api_fastapi.app.API_ROOT_PATH``                 :func:`api_root_path`
``airflow.models.variable.Variable``                      :func:`metastore_variable`
``airflow.models.connection.Connection``                  :func:`metastore_connection`
``airflow.assets.manager.asset_manager``,                 :func:`record_asset_event`
``airflow.models.asset.AssetModel``,
``airflow.utils.session.create_session``
======================================================  =============================================
"""

from __future__ import annotations

from typing import Any


async def resolve_user(request: Any, credentials: Any) -> Any:
    """The Airflow user of a request to a plugin route (UI ``_token`` cookie or bearer token).

    Internal: ``airflow.api_fastapi.core_api.security.get_user``. Plugin FastAPI apps are not
    protected by Airflow, and Airflow offers no public dependency for them; this is the function
    Airflow's own routes use, so the active auth manager (simple or FAB) decides, with the same
    token checks. Raises FastAPI's ``HTTPException`` (401 / 403) like Airflow's routes.
    """
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, credentials)


def readable_task_instance_dag_ids(user: Any) -> set[str]:
    """The DAG ids whose task instances ``user`` may read, as the active auth manager decides.

    Internal: ``airflow.api_fastapi.app.get_auth_manager`` and the auth manager's
    ``get_authorized_dag_ids`` / ``is_authorized_dag`` with ``DagAccessEntity.TASK_INSTANCE``. The
    REST API has no "which DAGs may I read task instances of" call; asking it per DAG over HTTP from
    inside the API server, for every page view, would cost a loopback request per DAG.
    """
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    return {
        dag_id
        for dag_id in manager.get_authorized_dag_ids(user=user, method="GET")
        if may_read_task_instances(user, dag_id)
    }


def may_read_task_instances(user: Any, dag_id: str) -> bool:
    """True when the active auth manager lets ``user`` read the task instances of ``dag_id``.

    Internal for the same reason as :func:`readable_task_instance_dag_ids` (one DAG's check; the
    Reconciliation and Preflight pages are each about one DAG).
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        get_auth_manager().is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.TASK_INSTANCE,
            details=DagDetails(id=dag_id),
            user=user,
        )
    )


def login_url(next_url: str) -> str:
    """Where the active auth manager signs users in (then back to ``next_url``).

    Internal: ``get_auth_manager().get_url_login``; the simple auth manager and FAB each have
    their own login page, and only the auth manager knows its address.
    """
    from airflow.api_fastapi.app import get_auth_manager

    return str(get_auth_manager().get_url_login(next_url=next_url))


def api_root_path() -> str:
    """Path prefix of Airflow's UI and API (``[api] base_url``'s path), ending with ``/``.

    Internal: ``airflow.api_fastapi.app.API_ROOT_PATH``, the value Airflow derived from
    ``[api] base_url`` at start. Outside the API server (unit tests): ``/``.
    """
    try:
        from airflow.api_fastapi.app import API_ROOT_PATH

        return API_ROOT_PATH or "/"
    except Exception:  # noqa: BLE001 - outside the API server
        return "/"


def metastore_variable(key: str) -> Any:
    """An Airflow Variable read in the API server (None when unset).

    Internal: ``airflow.models.variable.Variable.get``. The public ``airflow.sdk.Variable`` asks the
    task supervisor and, outside a task, only the secrets backends: it does not see a Variable stored
    in the metadata database from the API server (checked on Airflow 3.3).
    """
    from airflow.models.variable import Variable

    return Variable.get(key, default_var=None)


def metastore_connection(conn_id: str) -> Any:
    """An Airflow Connection read in the API server (secrets backends, environment, metadata database).

    Internal: ``airflow.models.connection.Connection.get_connection_from_secrets``. Inside a task the
    public ``airflow.sdk.BaseHook.get_connection`` is used (see ledger.get_connection); in the API
    server it cannot see connections stored in the metadata database.
    """
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def record_asset_event(asset_name: str, extra: dict[str, Any], *, only_if_scheduled: bool = False) -> bool:
    """Record an asset event on the asset named ``asset_name``, as an API-sourced event.

    Returns False, recording nothing, when no DAG declared the asset yet (or, with
    ``only_if_scheduled``, when no DAG schedules on it: the asset is not active).

    Internal: ``airflow.assets.manager.asset_manager.register_asset_change`` in a
    ``airflow.utils.session.create_session`` session, with ``airflow.models.asset.AssetModel``.
    The public interface is ``POST /api/v2/assets/events``. The webhook receivers run inside the API
    server and do not use it: they would need a stored service-account login and a loopback HTTP call
    (plus a token fetch) for every webhook, another way to fail while the one API worker is busy with
    the webhook itself; and the REST call cannot say "only if a DAG schedules on it" (real-time mode
    versus shift-close mode). docs/install-into-existing-airflow.md explains the choice.
    """
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetModel).where(AssetModel.name == asset_name)
        if only_if_scheduled:
            query = query.where(AssetModel.active.has())
        asset = session.scalar(query.limit(1))
        if asset is None:
            return False
        asset_manager.register_asset_change(asset=asset, extra=extra, session=session, source_is_api=True)
        return True
