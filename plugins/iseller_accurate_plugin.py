"""The project's Airflow plugin: webhook receivers and the operator pages (Sync Status, Webhook Log),
served by the API server under ``/integrations`` and linked from the Airflow UI's navigation."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI

from include.iseller_accurate.web.accurate_webhook import router as accurate_router
from include.iseller_accurate.web.iseller_webhook import router as iseller_router
from include.iseller_accurate.web.pages import external_views as operator_views
from include.iseller_accurate.web.pages import router as operator_pages_router
from include.iseller_accurate.web.preflight import external_views as preflight_views
from include.iseller_accurate.web.preflight import router as preflight_router
from include.iseller_accurate.web.reconciliation import external_view as reconciliation_view
from include.iseller_accurate.web.reconciliation import router as reconciliation_router
from include.iseller_accurate.web.static import mount as mount_static

integrations = FastAPI(
    title="iSeller-Accurate integration",
    description="Webhook receivers of the iSeller-Accurate sync.",
)
integrations.include_router(iseller_router)
integrations.include_router(accurate_router)
integrations.include_router(operator_pages_router)
integrations.include_router(reconciliation_router)
integrations.include_router(preflight_router)
mount_static(integrations)


class IsellerAccuratePlugin(AirflowPlugin):
    """Registers the integration endpoints in the Airflow API server."""

    name = "iseller_accurate"
    fastapi_apps = [
        {"app": integrations, "url_prefix": "/integrations", "name": "iSeller-Accurate integration"},
    ]
    # Browse > Sync Status, Webhook Log, Reconciliation, Preflight; a "Sync documents" tab on each DAG run.
    external_views = [*operator_views(), reconciliation_view(), *preflight_views()]
