"""The project's Airflow plugin: webhook receivers served by the API server under ``/integrations``."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI

from include.iseller_accurate.web.iseller_webhook import router as iseller_router

integrations = FastAPI(
    title="iSeller-Accurate integration",
    description="Webhook receivers of the iSeller-Accurate sync.",
)
integrations.include_router(iseller_router)


class IsellerAccuratePlugin(AirflowPlugin):
    """Registers the integration endpoints in the Airflow API server."""

    name = "iseller_accurate"
    fastapi_apps = [{"app": integrations, "url_prefix": "/integrations", "name": "iSeller-Accurate integration"}]
