"""The soak driver's own judging (scripts/soak.py), without a stack: it must read amounts exactly.

The 2,000-document soak reported the order priced 99,999,999,999,999.99 as "posted as ...98": the
Accurate sandbox held the amount exactly, but the driver read the sandbox's JSON through ``float``.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def load_soak():
    spec = importlib.util.spec_from_file_location("soak_driver", REPO / "scripts" / "soak.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak_driver", module)
    spec.loader.exec_module(module)
    return module


def driver_with_sandbox_answer(soak, body: str):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"})

    driver = object.__new__(soak.Soak)  # no stack: only the HTTP plumbing is exercised
    driver.http = httpx.Client(transport=httpx.MockTransport(answer))
    driver.accurate_url = "http://accurate.test"
    driver.iseller_url = "http://iseller.test"
    return driver


def test_sandbox_amounts_are_read_as_decimal_not_float():
    soak = load_soak()
    body = '{"d": [{"number": "SI/1", "totalAmount": 99999999999999.99, "totalPayment": 0.1}]}'
    driver = driver_with_sandbox_answer(soak, body)
    for read in (driver.accurate, driver.iseller):
        record = read("GET", "records/sales-invoice")["d"][0]
        assert soak.money(record["totalAmount"]) == Decimal("99999999999999.99")
        assert soak.money(record["totalPayment"]) == Decimal("0.1")


def test_an_exact_huge_invoice_is_judged_ok():
    soak = load_soak()
    driver = driver_with_sandbox_answer(soak, '{"d": [{"number": "SI/1", "totalAmount": 99999999999999.99}]}')
    records = {"SI/1": driver.accurate("GET", "records/sales-invoice")["d"]}
    expected = soak.Expected("order", "o1", "#1")
    outcome = driver.check_one("sales_invoice", "SI/1", expected, records, {}, Decimal("99999999999999.99"))
    assert outcome.verdict == "ok", outcome.detail


def test_receipts_made_in_two_batches_get_distinct_numbers(monkeypatch):
    """The soak saves its Accurate receipts in two batches; the second reused the first's numbers, so
    Accurate answered "duplicate number", kept the first documents, and the verdict compared 20
    transfers with the lines of documents that were never saved ("unexplained")."""
    import random

    soak = load_soak()
    saved: dict[str, dict] = {}

    class Result:
        def __init__(self, duplicate: bool) -> None:
            self.ok, self.duplicate_number, self.reason = not duplicate, duplicate, ""

    class FakeHook:
        def save(self, module, record):
            duplicate = record["number"] in saved
            saved.setdefault(record["number"], record)
            return Result(duplicate)

    monkeypatch.setattr(soak, "AccurateHook", FakeHook)
    driver = object.__new__(soak.Soak)
    driver.rng, driver.tag, driver.expected = random.Random(1), "T", []
    driver.store_outlets = soak.SHOP.outlets[:2]
    driver.receipts(3)
    driver.receipts(3)
    numbers = [e.key for e in driver.expected]
    assert len(numbers) == len(set(numbers)) == 6
    for exp in driver.expected:  # what the verdict expects is what Accurate holds
        assert [(d["itemNo"], d["quantity"]) for d in saved[exp.key]["detailItem"]] == exp.data["lines"]


def test_the_receipt_of_an_order_that_failed_alone_is_failed_with_its_reason_not_lost():
    """An unreadable order is one failed ledger row (its invoice's); its receipt has no row of its own.
    The 2,000-document run counted those 9 receipts as lost although the order failed with a reason."""
    soak = load_soak()
    driver = object.__new__(soak.Soak)
    order = {
        "order_reference": "#JKT01-7",
        "total_amount": Decimal("15000"),
        "transactions": [{"type": "sale", "status": "success", "amount": Decimal("15000")}],
    }
    reason = "order #JKT01-7: line 1 field quantity: 'abc' is not a number"
    failed_row = {"status": "failed", "reason": reason}
    exp = soak.Expected("order", "o7", "#JKT01-7", hostile='quantity "abc"')
    outcomes = driver.judge_order(exp, order, {}, {"SI/JKT01-7": [failed_row]}, {})
    assert [o.verdict for o in outcomes] == ["failed_with_reason", "failed_with_reason"]
    assert "'abc'" in outcomes[1].detail
    # with no trace of the order at all, both are still lost
    outcomes = driver.judge_order(exp, order, {}, {}, {})
    assert [o.verdict for o in outcomes] == ["lost", "lost"]


def test_the_operator_stops_clearing_when_a_clear_changed_no_document(monkeypatch):
    """Clearing runs that fail for a reason of their own (hostile orders, a stock take behind one) again
    and again took a minute per round; once a round changed no document the next cannot either."""
    soak = load_soak()
    driver = object.__new__(soak.Soak)
    driver.expected, driver.hostile_trigger_refusals, driver.events = [], [], []
    driver.t0, driver.kills, driver.findings = 0.0, soak.Counter(), []
    cleared = []

    class FakeAirflow:
        def clear_task_instances(self, dag_id, run_id, **_):
            cleared.append(run_id)

    driver.airflow = FakeAirflow()
    driver.api = lambda fn, _what: fn()
    driver.failed_runs = lambda: [("iseller_sales_to_accurate", "manual__hostile")]
    driver.wait_quiet = lambda _label: None
    driver.not_synced = lambda: {("sales_invoice", "SI/JKT01-1096", "failed")}
    driver.repair_and_clear()
    assert cleared == ["manual__hostile"]  # one round, not three
    # a round that changed something is followed by another
    states = iter([{("a", "1", "failed")}, {("a", "1", "failed")}, set(), set(), set()])
    driver.not_synced = lambda: next(states)
    cleared.clear()
    driver.repair_and_clear()
    assert len(cleared) == 2


def test_stock_takes_keep_off_the_outlet_of_the_hostile_orders_and_off_sby01():
    """A soak stock take behind a hostile order stays blocked for good, and the stock opname end-to-end
    test that runs after the CI soak then saw its own run end red (its refresh lists every blocked one)."""
    soak = load_soak()
    driver = soak.Soak(50, 0.1, 1, 0.0)  # the constructor only sets attributes: no stack needed
    hostile = {driver.registers[0].outlet_id, driver.registers[1].outlet_id}
    codes = {o.outlet_code for o in driver.take_outlets}
    assert "SBY01" not in codes
    assert not hostile & {o.outlet_id for o in driver.take_outlets}
    assert driver.take_outlets  # still some outlet to count in


def test_receipts_are_found_by_reference_exactly_as_by_scanning_every_number() -> None:
    # The verdict scanned every Accurate number for each order (about 20 ms each: half an hour at
    # 100,000 orders); the index must find exactly what the scan found.
    soak = load_soak()
    numbers = [
        "SR/JKT01-1",
        "SR/JKT01-1-2",
        "SR/JKT01-10",
        "SR/JKT01-10-2",
        "SR/JKT01-100",
        "SI/JKT01-1",
        "SR/BDG01-1",
        "RT/JKT01-1",
    ]
    accurate = {number: [{"number": number}] for number in numbers}
    index = soak.receipts_by_reference(accurate)
    for reference in ("JKT01-1", "JKT01-10", "JKT01-100", "JKT01-1-2", "BDG01-1", "JKT01-2", "JKT01"):
        scanned = [
            r
            for n, rs in accurate.items()
            if n == f"SR/{reference}" or n.startswith(f"SR/{reference}-")
            for r in rs
        ]
        found = index.get(reference, [])
        assert sorted(r["number"] for r in found) == sorted(r["number"] for r in scanned), reference
