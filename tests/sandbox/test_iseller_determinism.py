"""iSeller sandbox contract: the same seed gives the same data (ids included); another seed differs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sandbox.iseller_fixtures import IsellerApi, IsellerServer

pytest_plugins = ["tests.sandbox.iseller_fixtures"]
pytestmark = pytest.mark.sandbox

READS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v2/GetOrders", {"page_size": 200}),
    ("/api/v2/GetOrders", {"page": 2, "page_size": 40, "sort": "ModifiedDate", "sort_direction": "desc"}),
    ("/api/v2/GetRegisterShifts", {"page_size": 200}),
    ("/api/v2/GetProducts", {"page": 1, "page_size": 200}),
    ("/api/v2/GetStoreInfo", {}),
    ("/api/v3/GetOutlets", {}),
    ("/api/v3/GetCustomers", {}),
    ("/api/v3/GetTransfers", {}),
    ("/api/v3/GetStockTakes", {}),
]


def snapshot(api: IsellerApi) -> list[bytes]:
    """The raw bytes of every read."""
    answers = []
    for path, params in READS:
        response = api.raw(path, **params)
        assert response.status_code == 200
        answers.append(response.content)
    return answers


def test_same_seed_same_data_other_seed_other_data(
    iseller_start: Callable[..., contextlib.AbstractContextManager[IsellerServer]],
) -> None:
    with iseller_start(42) as first, iseller_start(42) as second, iseller_start(7) as other:
        apis = [server.api() for server in (first, second, other)]
        try:
            one, two, seven = (snapshot(api) for api in apis)
            assert one == two
            assert all(a != b for a, b in zip(one, seven, strict=True))

            # Objects created by control routes get the same ids too (only "now" differs).
            outlet = apis[0].call("/api/v3/GetOutlets")["outlets"][0]["id"]
            register = apis[0].call("/api/v2/GetRegisterShifts", outlet_id=outlet)["register_shifts"][0][
                "register_id"
            ]
            created = []
            for api in apis[:2]:
                order = api.control(
                    "POST",
                    "/_sandbox/orders",
                    json={
                        "outlet_id": outlet,
                        "register_id": register,
                        "lines": [{"sku": "BRG-0001", "quantity": 1}],
                    },
                )
                bulk = api.control("POST", "/_sandbox/orders/bulk", json={"count": 20, "include_ids": True})
                created.append(
                    (
                        order["order_id"],
                        order["order_reference"],
                        [line["order_detail_id"] for line in order["order_details"]],
                        bulk["order_ids"],
                    )
                )
            assert created[0] == created[1]
        finally:
            for api in apis:
                api.close()
