"""The iSeller client against the sandbox in every variant of the points the public doc leaves open.

Each switch of ``sandbox/iseller/variants.py`` is tested in both (or all) directions against one
sandbox server on a real socket; the expected records are read from the same server in its default
mode with plain HTTP, so a client that skips, repeats or shifts anything fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from include.iseller_accurate.clients import IsellerHook
from include.iseller_accurate.times import parse_iseller_datetime
from tests.sandbox_process import run_sandbox

pytestmark = pytest.mark.sandbox

#: Jakarta's business hours of 17 November 2026 (09:00 to 13:00 WIB) in UTC.
AFTER = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)
BEFORE = datetime(2026, 11, 17, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """One iSeller sandbox for the module; each test sets the switches it needs."""
    with run_sandbox("sandbox.iseller", "--seed", "42", timeout=60) as server:
        yield server.base_url


@pytest.fixture
def variants(url: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """Set sandbox switches for one test (every switch back to its default afterwards)."""

    def set_variants(**switches: Any) -> dict[str, Any]:
        response = requests.post(f"{url}/_sandbox/variants", json=switches, timeout=10)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    requests.post(f"{url}/_sandbox/variants", json={"reset": True}, timeout=10)
    yield set_variants
    requests.post(f"{url}/_sandbox/variants", json={"reset": True}, timeout=10)


def _connect(monkeypatch: pytest.MonkeyPatch, url: str, **extra: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ISELLER_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": url,
                "login": "sandbox-client",
                "password": "sandbox-secret",
                "extra": extra,
            }
        ),
    )


@pytest.fixture
def hook(url: str, monkeypatch: pytest.MonkeyPatch, variants: Any) -> Iterator[IsellerHook]:
    """A hook with the defaults an operator gets (shop in Asia/Jakarta), bodies it sends recorded."""
    _connect(monkeypatch, url)
    made = IsellerHook()
    sent: list[tuple[str, dict[str, Any]]] = []
    original = made.call

    def recording(path: str, body: Any = None) -> dict[str, Any]:
        sent.append((path, dict(body or {})))
        return original(path, body)

    monkeypatch.setattr(made, "call", recording)
    made.sent = sent  # type: ignore[attr-defined]
    yield made
    made.close()


def _raw(url: str, method: str, **body: Any) -> dict[str, Any]:
    """A read in the sandbox's default mode, with plain HTTP (the expected answer): dates in UTC
    (``time_zone`` 0 where the method requires it)."""
    if method in ("GetOrders", "GetRegisterShifts"):
        body.setdefault("time_zone", 0)
    token = requests.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
        timeout=10,
    ).json()["access_token"]
    answer: dict[str, Any] = requests.post(
        f"{url}/api/v2/{method}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    assert answer.get("status") is True, answer
    return answer


def _expected_orders(url: str) -> dict[str, datetime]:
    answer = _raw(
        url, "GetOrders", created_after=AFTER.isoformat(), created_before=BEFORE.isoformat(), page_size=200
    )
    assert not answer["has_next_item"]
    orders = {o["order_id"]: parse_iseller_datetime(o["order_date"]) for o in answer["orders"]}
    assert len(orders) >= 3  # the window holds a morning's sales
    return orders


# -------------------------------------------------------------------------------- time_zone
@pytest.mark.parametrize("semantics", ["ignored", "shifts"])
@pytest.mark.parametrize("date_format", ["iso", "space"])
def test_orders_window_and_dates_are_right_whether_time_zone_is_applied_or_ignored(
    url: str, hook: IsellerHook, variants: Any, semantics: str, date_format: str
) -> None:
    expected = _expected_orders(url)
    variants(time_zone_semantics=semantics, date_format=date_format)
    got: dict[str, datetime] = {}
    for page in hook.get_orders_pages(created_after=AFTER, created_before=BEFORE, page_size=2):
        for order in page["orders"]:
            assert order["order_id"] not in got, "an order was answered twice"
            got[order["order_id"]] = parse_iseller_datetime(order["order_date"])
            for line in order.get("transactions") or []:
                assert AFTER <= parse_iseller_datetime(line["transaction_date"]) < BEFORE + (BEFORE - AFTER)
    assert got == expected
    reads = [body for path, body in hook.sent if path.endswith("GetOrders") and "created_after" in body]
    assert reads and all(body["time_zone"] == 7 for body in reads)  # Asia/Jakarta at the window


@pytest.mark.parametrize("semantics", ["ignored", "shifts"])
def test_register_shifts_window_and_dates_whether_time_zone_is_applied_or_ignored(
    url: str, hook: IsellerHook, variants: Any, semantics: str
) -> None:
    window = {"created_after": "2026-11-16T00:00:00", "created_before": "2026-11-18T00:00:00"}
    expected = {
        s["register_shift_id"]: (s["open_date"], s["closed_date"])
        for s in _raw(url, "GetRegisterShifts", page_size=200, **window)["register_shifts"]
    }
    assert expected
    variants(time_zone_semantics=semantics)
    got = {
        s["register_shift_id"]: (s["open_date"], s["closed_date"])
        for s in hook.get_register_shifts(
            created_after=datetime(2026, 11, 16, tzinfo=UTC),
            created_before=datetime(2026, 11, 18, tzinfo=UTC),
        )
    }
    assert got == expected
    reads = [b for path, b in hook.sent if path.endswith("GetRegisterShifts") and "created_after" in b]
    assert reads and all(body["time_zone"] == 7 for body in reads)


def test_shifts_mode_refuses_a_read_without_time_zone(url: str, variants: Any) -> None:
    variants(time_zone_semantics="shifts")
    token = requests.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
        timeout=10,
    ).json()["access_token"]
    answer = requests.post(
        f"{url}/api/v2/GetOrders", json={"page": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert answer == {"status": False, "error_message": "time_zone is required"}


# -------------------------------------------------------------------------------- paging
@pytest.mark.parametrize("page_start", ["1", "0", "1-lenient"])
def test_paging_neither_skips_nor_repeats_whatever_the_first_page(
    url: str, hook: IsellerHook, variants: Any, page_start: str
) -> None:
    expected = [p["product_id"] for p in _raw(url, "GetProducts", page=1, page_size=200)["products"]]
    assert len(expected) > 14
    variants(page_start=page_start)
    got = [p["product_id"] for p in hook.paginate("api/v2/GetProducts", {}, "products", page_size=7)]
    assert got == expected
    # The first page learned is kept: a second read sends no refused or repeated page.
    hook.sent.clear()  # type: ignore[attr-defined]
    assert [p["product_id"] for p in hook.paginate("api/v2/GetProducts", {}, "products", 7)] == expected
    pages = [body["page"] for _, body in hook.sent]  # type: ignore[attr-defined]
    first = 0 if page_start == "0" else 1
    assert pages == list(range(first, first + len(pages)))


@pytest.mark.parametrize("page_start", ["1", "0"])
def test_order_paging_over_a_window_in_every_variant(
    url: str, hook: IsellerHook, variants: Any, page_start: str
) -> None:
    expected = _expected_orders(url)
    variants(page_start=page_start, time_zone_semantics="shifts")
    ids = [o["order_id"] for o in hook.get_orders(created_after=AFTER, created_before=BEFORE, page_size=1)]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))


# -------------------------------------------------------------------------------- page sizes
@pytest.mark.parametrize("max_page_size", [200, 50, 500])
def test_page_size_adapts_to_what_the_server_accepts(
    url: str, hook: IsellerHook, variants: Any, max_page_size: int
) -> None:
    expected = [p["product_id"] for p in _raw(url, "GetProducts", page=1, page_size=200)["products"]]
    variants(max_page_size=max_page_size)
    assert [p["product_id"] for p in hook.get_products()] == expected
    sizes = {body["page_size"] for _, body in hook.sent}  # type: ignore[attr-defined]
    assert max(sizes) == 200 and (max_page_size >= 200 or min(sizes) == max_page_size)


def test_page_size_500_of_the_public_doc(url: str, monkeypatch: pytest.MonkeyPatch, variants: Any) -> None:
    variants(max_page_size=500)
    _connect(monkeypatch, url, page_size=500)
    hook = IsellerHook()
    products = list(hook.paginate("api/v2/GetProducts", {}, "products"))
    assert products and len(products) == len({p["product_id"] for p in products})


# -------------------------------------------------------------------------------- shapes
def test_sandbox_answers_the_public_docs_order_line_product_and_store_info_fields(url: str) -> None:
    order = _raw(url, "GetOrders", created_after=AFTER.isoformat(), page_size=1)["orders"][0]
    assert order["total_order_amount"] == order["total_amount"] and order["total_promotion_amount"] == 0
    assert order["fulfillment_status"] in ("fulfilled", "partial", "none")
    assert "cashier_id" in order and "notes" in order
    line = order["order_details"][0]
    assert "discount_order_amount" in line and line["subtotal"] > 0
    assert "buying_price" in _raw(url, "GetProducts", page=1, page_size=1)["products"][0]
    info = _raw(url, "GetStoreInfo")["store_info"]
    assert info["store_name"] and all(o["outlet_name"] for o in info["active_outlets"])
    none = _raw(url, "GetOrders", fulfillment_status="none", page_size=200)["orders"]
    assert all(o["status"] != "completed" for o in none)


@pytest.mark.parametrize("shape", ["both", "wrapped"])
def test_store_info_is_read_flat_or_wrapped(url: str, hook: IsellerHook, variants: Any, shape: str) -> None:
    from sandbox.demo_shop import build_demo_shop

    shop = build_demo_shop(42)
    variants(store_info_shape=shape)
    answer = _raw(url, "GetStoreInfo")
    assert ("store_name" in answer) is (shape == "both") and answer["store_info"]["store_name"]
    info = hook.get_store_info()
    assert info["store_name"] == shop.store_name
    assert [(o["outlet_id"], o["outlet_name"], o["name"]) for o in info["active_outlets"]] == [
        (o.outlet_id, o.name, o.name) for o in shop.outlets
    ]
    ok, message = hook.test_connection()
    assert ok and f"Connected to iSeller store {shop.store_name} at " in message, message


def test_variants_refuse_unknown_switches_and_values(url: str, variants: Any) -> None:
    for body in ({"page_start": "2"}, {"time_zone_semantics": "maybe"}, {"colour": 1}, {"max_page_size": 0}):
        response = requests.post(f"{url}/_sandbox/variants", json=body, timeout=10)
        assert response.status_code == 400 and response.json()["status"] is False
    assert requests.get(f"{url}/_sandbox/variants", timeout=10).json()["page_start"] == "1"


# -------------------------------------------------------------------------------- sales, end to end
def _sales_documents(hook: IsellerHook, params: dict[str, Any]) -> dict[Any, tuple[str, Any]]:
    from include.iseller_accurate.pipeline import ExtractContext, MapContext
    from include.iseller_accurate.settings import parse_settings
    from include.iseller_accurate.streams.sales import SalesStream
    from sandbox.demo_shop import build_demo_shop

    settings = parse_settings(build_demo_shop(42).settings())
    stream = SalesStream()
    records = stream.extract(ExtractContext(settings, params, AFTER, BEFORE, iseller=hook))
    docs = stream.map(records, MapContext(settings))
    return {d.key: (d.status, d.payload, d.source_date) for d in docs}


@pytest.mark.parametrize("semantics", ["ignored", "shifts"])
def test_sales_documents_of_a_window_and_a_shift_are_the_same_in_every_time_zone_variant(
    url: str, monkeypatch: pytest.MonkeyPatch, variants: Any, semantics: str
) -> None:
    _connect(monkeypatch, url)
    shift = _raw(url, "GetRegisterShifts", page_size=1, status="closed")["register_shifts"][0]
    trigger = {"register_shift_id": shift["register_shift_id"], "register_id": shift["register_id"]}
    expected = {
        name: _sales_documents(IsellerHook(), params)
        for name, params in (("window", {}), ("shift", trigger))
    }
    variants(time_zone_semantics=semantics, page_start="0", date_format="space")
    for name, params in (("window", {}), ("shift", trigger)):
        got = _sales_documents(IsellerHook(), params)
        assert got == expected[name], name
        invoices = [v for k, v in got.items() if k[0] == "sales_invoice"]
        assert invoices and all(status == "pending" for status, _, _ in invoices)  # totals agree
