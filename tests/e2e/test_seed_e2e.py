"""scripts/seed.py --force against the running Airflow: it resets the accurate_api pool.

Airflow 3's ``PATCH /api/v2/pools/{name}`` checks the patched pool as a whole, so a body of only
``slots`` and ``description`` was refused (HTTP 422: ``pool`` and ``include_deferred`` missing) and
``seed.py --force`` stopped there.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_seed():
    spec = importlib.util.spec_from_file_location("seed_script", REPO / "scripts" / "seed.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_force_resets_the_pool_and_keeps_include_deferred(airflow):
    seed = load_seed()
    name = seed.POOL
    before = airflow.pool(name)
    # an operator changed the pool: fewer slots, deferred tasks counted
    airflow.call(
        "PATCH",
        f"/api/v2/pools/{name}",
        json={"pool": name, "slots": 3, "description": "changed", "include_deferred": True},
    )
    try:
        af = seed.Airflow(
            airflow.base_url,
            os.environ.get("AIRFLOW_ADMIN_USER", "admin"),
            os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"),
        )
        seed.seed_pool(af, force=True)  # raised SystemExit (HTTP 422) before the fix
        after = airflow.pool(name)
        assert after["slots"] == seed.POOL_SLOTS
        assert after["description"] == seed.POOL_DESCRIPTION
        assert after["include_deferred"] is True  # the operator's choice is kept
    finally:
        airflow.call(
            "PATCH",
            f"/api/v2/pools/{name}",
            json={
                "pool": name,
                "slots": before["slots"],
                "description": before.get("description"),
                "include_deferred": bool(before.get("include_deferred")),
            },
        )
