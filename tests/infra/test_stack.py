"""The running local stack as `make up` / `make test` leave it (skipped without a stack, except in CI)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.airflow_api import (
    AirflowAPI,
    AirflowAPIError,
    airflow_base_url,
    skip_or_fail,
    stack_is_up,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api() -> Iterator[AirflowAPI]:
    reason = stack_is_up()
    if reason:
        skip_or_fail(reason)
    client = AirflowAPI()
    yield client
    client.close()


def test_every_airflow_component_is_healthy(api: AirflowAPI) -> None:
    health = api.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health


def test_local_login_is_admin_admin(api: AirflowAPI) -> None:
    # admin / admin unless AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD say otherwise (CI sets a long one).
    user = os.environ.get("AIRFLOW_ADMIN_USER", "admin")
    assert api.get_token(user, os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"))
    with pytest.raises(AirflowAPIError) as refused:
        api.get_token(user, "not-the-password")
    assert refused.value.status_code == 401


def test_api_refuses_requests_without_a_token(api: AirflowAPI) -> None:
    assert httpx.get(f"{airflow_base_url()}/api/v2/dags", timeout=10).status_code == 401


def test_seeded_pool_and_settings(api: AirflowAPI) -> None:
    pool = api.pool("accurate_api")
    assert pool["slots"] == 8
    settings = api.get_variable("iseller_accurate_settings")
    assert settings is not None, "scripts/seed.py did not set iseller_accurate_settings"
    assert isinstance(json.loads(settings).get("outlets"), dict)


def test_variable_round_trip(api: AirflowAPI) -> None:
    key = "infra_test_variable"
    try:
        api.set_variable(key, {"a": [1, 2]})
        assert api.get_variable(key, deserialize_json=True) == {"a": [1, 2]}
        api.set_variable(key, "plain")
        assert api.get_variable(key) == "plain"
    finally:
        api.delete_variable(key)
    assert api.get_variable(key) is None
