"""The preflight's pure checks: hostile product data, long SKU lists, the subscription's states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.iseller_accurate.preflight import (
    MAX_LISTED_SKUS,
    AccurateMasters,
    check_items,
    check_outlets,
    check_subscription,
    payment_types_seen,
    product_skus,
)
from include.iseller_accurate.settings import parse_settings

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_hostile_products_fail_alone_with_the_product_named() -> None:
    products = [
        {"product_id": "p1", "name": "Kopi", "sku": "BRG-1"},
        {"product_id": "p2", "name": "Teh", "sku": "BRG\x00-2"},
        {"product_id": "p3", "name": "Gula", "sku": 12345},
        {"product_id": "p4", "name": "Susu", "sku": ""},
        {"product_id": "p5", "name": "Old", "sku": "", "is_active": False},
        "not a product",
        {"product_id": "p6", "name": "x" * 500, "sku": " BRG-6"},
    ]
    by_sku, problems = product_skus(products)
    assert list(by_sku) == ["BRG-1"]
    assert [(p.severity, p.check, p.subject[:20]) for p in problems] == [
        ("error", "bad_sku", 'product "Teh" (p2)'),
        ("error", "bad_sku", 'product "Gula" (p3)'),
        ("warning", "no_sku", 'product "Susu" (p4)'),
        ("error", "bad_sku", 'product "xxxxxxxxxxx'),
    ]
    assert "'BRG\\x00-2'" in problems[0].message  # the NUL is shown, not printed
    assert len(problems[3].subject) < 120  # a huge name is shortened


def test_missing_skus_beyond_fifty_are_counted() -> None:
    by_sku = {f"S{i:03d}": {"name": f"P{i}", "track_inventory": True} for i in range(120)}
    items = {"S000": {"itemType": "SERVICE"}}
    problems, counts = check_items(by_sku, items)
    missing = [p for p in problems if p.check == "sku_missing"]
    assert len(missing) == MAX_LISTED_SKUS + 1
    assert missing[-1].subject == "69 more SKUs" and "119 SKUs in all" in missing[-1].message
    assert counts == {"skus": 120, "skus_missing": 119, "not_inventory": 1}
    assert [p.subject for p in problems if p.check == "item_type"] == ['SKU "S000"']


def test_subscription_states() -> None:
    assert [p.severity for p in check_subscription(None, NOW)] == ["warning"]
    fine = {"renewed_at": NOW, "expires_at": NOW + timedelta(days=7)}
    assert check_subscription(fine, NOW) == []
    expired = {"renewed_at": NOW - timedelta(days=8), "expires_at": NOW - timedelta(days=1)}
    assert [p.severity for p in check_subscription(expired, NOW)] == ["error"]
    failing = {**fine, "last_error": "401 token revoked", "last_error_at": NOW + timedelta(minutes=1)}
    (problem,) = check_subscription(failing, NOW)
    assert problem.severity == "error" and "401 token revoked" in problem.message


def test_unmapped_outlet_and_payment_types_of_hostile_orders() -> None:
    settings = parse_settings({"outlets": {"o1": {"branch": "B", "warehouse": "W", "cash_account": "1"}}})
    masters = AccurateMasters(frozenset({"B"}), {"W": False}, frozenset({"1"}), frozenset({"UMUM"}))
    outlets = [{"id": "o1", "name": "One"}, {"id": "o2", "name": "Two"}, {"id": "o3", "is_active": False}]
    problems = check_outlets(settings, outlets, masters)
    assert [(p.severity, p.check, p.subject) for p in problems] == [
        ("warning", "account", "outlet One (o1) adjustment_account"),
        ("error", "outlet", "outlet Two (o2)"),
    ]
    assert "iseller_accurate_settings.outlets.o2" in problems[1].fix
    orders = [
        {"outlet_id": "o1", "transactions": [{"gateway": "cash"}, {"gateway": "qris", "status": "failed"}]},
        {"outlet_id": "o1", "transactions": "junk"},
        {"outlet_id": ["o1"], "transactions": []},
        None,
        {
            "outlet_id": "o2",
            "transactions": [None, {"gateway": {"deep": 1}}, {"type": "refund", "gateway": "x"}],
        },
    ]
    assert payment_types_seen(orders) == {"o1": {"cash"}, "o2": {"{'deep': 1}"}}
