"""Reconciliation pieces on plain data: amounts, hostile Accurate rows, the range, the settings key."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from include.iseller_accurate.reconciliation.run import days_between
from include.iseller_accurate.reconciliation.sales import (
    AccurateDoc,
    Expected,
    LedgerInfo,
    compare,
    posted_amount,
)
from include.iseller_accurate.reconciliation.stock import check_stock, pending_effects
from include.iseller_accurate.settings import SettingsError, parse_settings

DAY = date(2026, 11, 25)
TZ = ZoneInfo("Asia/Jakarta")


def test_posted_amount_follows_accurates_rules():
    lines = [{"itemNo": "A", "quantity": Decimal(2), "unitPrice": Decimal("10000.50"), "itemCashDiscount": 1}]
    assert posted_amount("sales-invoice", {"detailItem": lines}) == Decimal("20000.00")
    taxed = {"detailItem": lines, "taxable": True, "inclusiveTax": False, "cashDiscount": Decimal(0)}
    assert posted_amount("sales-invoice", taxed) == Decimal("22200.00")
    assert posted_amount("sales-invoice", {**taxed, "inclusiveTax": True}) == Decimal("20000.00")
    assert posted_amount("sales-receipt", {"chequeAmount": "15000"}) == Decimal("15000.00")
    assert posted_amount("sales-invoice", None) is None


@pytest.mark.parametrize(
    "bad_line",
    [{"quantity": "NaN", "unitPrice": 1}, {"quantity": "x", "unitPrice": 1}, "not a line", {"quantity": 1}],
)
def test_posted_amount_of_a_malformed_payload_is_unknown_not_an_error(bad_line):
    assert posted_amount("sales-invoice", {"detailItem": [bad_line]}) is None


def _ledger(status: str, number: str) -> LedgerInfo:
    return LedgerInfo(
        1,
        "sales_invoice",
        "o1",
        "#A-1",
        "out",
        datetime(2026, 11, 25, 3, tzinfo=UTC),
        "sales-invoice",
        number,
        status,
        None,
        None,
    )


def test_hostile_accurate_rows_do_not_break_the_day():
    """A row with a malformed date, a huge or non-numeric amount, control characters: never a crash."""
    rows = [
        AccurateDoc.from_row(
            "sales-invoice",
            {
                "id": "x",
                "number": "SI\x00EVIL",
                "transDate": "99/99/9999",
                "branchName": "B",
                "totalAmount": "1e999999",
            },
        ),
        AccurateDoc.from_row(
            "sales-invoice",
            {"id": 7, "number": "HAND-1", "transDate": "25/11/2026", "branchName": "B", "totalAmount": "abc"},
        ),
    ]
    assert rows[0].day is None and rows[0].id is None
    assert rows[1].amount is None
    results = compare([], rows, {"out": "B"}, [DAY], lambda module, numbers: {}, {})
    day = results[("out", DAY)]
    assert [(d.cls, d.number) for d in day.differences] == [("only_in_accurate", "HAND-1")]
    assert day.difference_amount == 0


def test_synced_document_moved_to_another_day_is_changed_not_missing():
    exp = Expected(
        "sales_invoice",
        "o1",
        "sales-invoice",
        "SI/A-1",
        "out",
        DAY,
        "#A-1",
        Decimal(10),
        ledger=_ledger("synced", "SI/A-1"),
    )
    moved = AccurateDoc("sales-invoice", 5, "SI/A-1", date(2026, 11, 26), "B", Decimal(10))
    results = compare([exp], [], {"out": "B"}, [DAY], lambda m, n: {"SI/A-1": moved}, {})
    [diff] = results[("out", DAY)].differences
    assert diff.cls == "changed_in_accurate" and "dated 2026-11-26" in diff.detail


def test_range_is_bounded_and_ordered():
    assert len(days_between(date(2026, 11, 1), date(2026, 11, 30))) == 30
    with pytest.raises(ValueError, match="before"):
        days_between(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(ValueError, match="at most"):
        days_between(date(2026, 1, 1), date(2026, 12, 31))


def test_reconciliation_time_setting():
    assert parse_settings(None).reconciliation_time == "23:30"
    assert parse_settings({"reconciliation_time": "01:15"}).reconciliation_time == "01:15"
    with pytest.raises(SettingsError, match="reconciliation_time"):
        parse_settings({"reconciliation_time": "24:00"})


def test_stock_difference_explained_by_unsynced_sale_only_up_to_its_quantity():
    row = LedgerInfo(
        3,
        "sales_invoice",
        "o",
        "#A",
        "out",
        datetime(2026, 11, 25, tzinfo=UTC),
        "sales-invoice",
        "SI/A",
        "failed",
        "no SKU",
        {"detailItem": [{"itemNo": "A", "quantity": 2}]},
    )
    effects = pending_effects([row], {})
    results = check_stock(
        {"out": {"A": Decimal(8), "B": Decimal(5)}},
        {"out": "W"},
        {"A", "B"},
        lambda item, wh: {"A": Decimal(10), "B": Decimal(4)}[item],
        effects,
    )
    diffs = {d.item_no: d for d in results[0].differences}
    assert not diffs["A"].unexplained and "SI/A (failed): +2" in diffs["A"].explanation
    assert diffs["B"].unexplained and diffs["B"].difference == Decimal(-1)


def test_unknown_outlet_in_conf_is_refused_by_name():
    from include.iseller_accurate.reconciliation.run import outlets_of

    settings = parse_settings({"outlets": {"o1": {"branch": "B", "warehouse": "W"}}})
    assert outlets_of(settings, None) == ["o1"]
    with pytest.raises(ValueError, match="nope"):
        outlets_of(settings, ["o1", "nope"])
