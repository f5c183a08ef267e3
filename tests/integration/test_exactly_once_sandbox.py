"""Exactly once against the real Accurate sandbox (real socket, real AccurateHook, real ledger).

The sandbox commits a bulk save and then drops the answer (the client sees a timeout): the loader
must find the documents by number instead of posting them again. A retry of the whole load, and a
second overlapping load, must not create anything either.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from include.iseller_accurate.clients import AccurateHook, LocalRateLimiter, clear_discovery_cache
from include.iseller_accurate.ledger import Document, RunRef
from include.iseller_accurate.pipeline import Loader
from sandbox.demo_shop import build_demo_shop
from tests.sandbox.accurate_fixtures import run_accurate_server

SHOP = build_demo_shop(42)
OUTLET = SHOP.outlets[0]
T0 = datetime(2026, 11, 16, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox():
    with run_accurate_server("--seed", "42") as server:
        yield server.base_url


@pytest.fixture(params=[True, False], ids=["createdDate", "no-createdDate"])
def accurate(sandbox, monkeypatch, request):
    """The hook on a reset sandbox; documents with ``createdDate`` and (a public integrator's report of
    real list records) without it: the confirm-by-number lookup must not depend on it."""
    httpx.post(f"{sandbox}/_sandbox/reset", json={"seed": 42}, timeout=10).raise_for_status()
    httpx.post(
        f"{sandbox}/_sandbox/config", json={"created_date": request.param}, timeout=10
    ).raise_for_status()
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACCURATE_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": sandbox,
                "password": "sandbox-api-token",
                "extra": {"signature_secret": "sandbox-signature-secret", "timeout": 2},
            }
        ),
    )
    clear_discovery_cache()
    return AccurateHook(rate_limiter=LocalRateLimiter(), max_retries=2)


def invoices(n: int) -> list[Document]:
    return [
        Document(
            "sales_invoice",
            f"o{i}",
            source_key=f"o{i}",
            source_date=T0 + timedelta(minutes=i),
            target_module="sales-invoice",
            target_number=f"SI/EO-{i}",
            payload={
                "number": f"SI/EO-{i}",
                "transDate": "16/11/2026",
                "customerNo": "UMUM",
                "branchName": OUTLET.branch_name,
                "detailItem": [
                    {
                        "itemNo": "BRG-0001",
                        "quantity": Decimal("1"),
                        "unitPrice": Decimal("65000.50"),
                        "warehouseName": OUTLET.warehouse_name,
                    }
                ],
            },
        )
        for i in range(n)
    ]


def stored_numbers(sandbox: str) -> list[str]:
    records = httpx.get(f"{sandbox}/_sandbox/records/sales-invoice", timeout=10).json()["d"]
    return sorted(r["number"] for r in records if str(r["number"]).startswith("SI/EO-"))


def lose_next_invoice_answer(sandbox: str) -> None:
    """The sandbox commits the next bulk save of invoices, then drops its answer (a 4 s timeout)."""
    httpx.post(
        f"{sandbox}/_sandbox/faults",
        timeout=10,
        json={
            "fail_next": 1,
            "fail_next_kind": "commit_then_timeout",
            "timeout_seconds": 4,
            "modules": ["sales-invoice"],
            "actions": ["bulk-save"],
        },
    ).raise_for_status()


def test_committed_save_whose_answer_is_lost_is_confirmed_not_reposted(sandbox, accurate, ledger):
    run = RunRef("iseller_sales_to_accurate", "manual__eo", "load")
    ledger.upsert(invoices(5), run)
    lose_next_invoice_answer(sandbox)

    report = Loader(ledger, accurate, run).load_run()

    assert not report.failed and not report.blocked
    assert report.confirmed == 5 and report.posted == 0  # found by number, never stored twice
    assert stored_numbers(sandbox) == [f"SI/EO-{i}" for i in range(5)]  # each exactly once
    rows = ledger.conn.execute("SELECT status, target_id FROM sync.documents").fetchall()
    assert {r["status"] for r in rows} == {"synced"} and all(r["target_id"] for r in rows)
    stored = httpx.get(f"{sandbox}/_sandbox/records/sales-invoice", timeout=10).json()["d"]
    line = next(r for r in stored if r["number"] == "SI/EO-0")["detailItem"][0]
    assert Decimal(str(line["unitPrice"])) == Decimal("65000.50")  # money arrived exact

    # A retry of the task and an overlapping second load change nothing in Accurate.
    again = Loader(ledger, accurate, RunRef("iseller_sales_to_accurate", "manual__eo", "load", try_number=2))
    assert again.load_run().posted == 0
    ledger.upsert(invoices(5), RunRef("iseller_sales_to_accurate", "manual__eo2", "load"))
    assert (
        Loader(ledger, accurate, RunRef("iseller_sales_to_accurate", "manual__eo2", "load")).load_run().posted
        == 0
    )
    assert stored_numbers(sandbox) == [f"SI/EO-{i}" for i in range(5)]


def test_number_already_in_accurate_is_confirmed_by_lookup(sandbox, accurate, ledger):
    # Someone (or a crashed worker) already stored SI/EO-1: the ledger learns it, nothing doubles.
    first = invoices(2)[1]
    assert accurate.save("sales-invoice", first.payload).ok
    run = RunRef("iseller_sales_to_accurate", "manual__dup", "load")
    ledger.upsert(invoices(2), run)
    report = Loader(ledger, accurate, run).load_run()
    assert not report.failed and report.posted == 1 and report.confirmed == 1
    assert stored_numbers(sandbox) == ["SI/EO-0", "SI/EO-1"]
