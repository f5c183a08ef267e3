"""Reconciliation of 30 days x 10 outlets: time, and the Accurate requests it uses (they count against
Accurate's limit of 8 requests per second, shared with the sync).

Starts a throwaway PostgreSQL (the ledger) and the Accurate sandbox on a free port. The demo shop has
4 outlets, so the benchmark makes 10: it adds the missing branches and warehouses to Accurate
through its API, maps 10 outlets in the settings, and generates the iSeller side (orders with lines,
payments and taxes, ``--orders`` per outlet and day) served by an in-process stand-in of the iSeller
client (the iSeller API's own speed is not what is measured here). Then:

1. the sync: the orders are mapped and posted into Accurate by the normal pipeline (not timed in the
   result; it makes the books agree);
2. the reconciliation of the 30 days and 10 outlets: timed, with Accurate's requests counted from the
   sandbox's request log;
3. the stock check of the 10 outlets (``get-stock.do`` per tracked item and outlet): timed, counted.

Prints time, requests, the time the requests need at Accurate's limit alone, and the load average
(the machine may be shared). Run from the repository root:
``python bench/bench_reconciliation.py [--days 30] [--outlets 10] [--orders 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import Figure, emit, env_int  # noqa: E402
from tests.pg import TempPostgres  # noqa: E402
from tests.sandbox_process import run_sandbox  # noqa: E402

ACCURATE_TOKEN = "sandbox-api-token"
ACCURATE_SECRET = "sandbox-signature-secret"
ACCURATE_RATE = 8  # requests per second


class FakeIseller:
    """The iSeller reads the reconciliation makes, answered from generated data."""

    def __init__(self, orders: list[dict[str, Any]], products: list[dict[str, Any]]) -> None:
        self.orders, self.products, self.requests = orders, products, 0

    def get_orders_pages(
        self, created_after: datetime, created_before: datetime, **_: Any
    ) -> Iterator[dict[str, Any]]:
        chosen = [
            o
            for o in self.orders
            if created_after <= datetime.fromisoformat(o["order_date"]) < created_before
        ]
        for start in range(0, max(len(chosen), 1), 200):
            self.requests += 1
            yield {"orders": chosen[start : start + 200], "refunded_orders": [], "has_next_item": False}

    def get_products(self, **_: Any) -> list[dict[str, Any]]:
        self.requests += 1
        return self.products


def generate(
    outlets: list[str], days: list[date], per_day: int, skus: list[str], prices: dict[str, Decimal]
) -> list[dict[str, Any]]:
    rng = random.Random(7)
    orders = []
    for o_index, outlet in enumerate(outlets):
        for day in days:
            for n in range(per_day):
                when = datetime(day.year, day.month, day.day, 2, tzinfo=UTC) + timedelta(minutes=5 * n)
                lines, total = [], Decimal(0)
                for position in range(rng.randint(1, 3)):
                    sku = skus[rng.randrange(len(skus))]
                    quantity = Decimal(rng.randint(1, 3))
                    lines.append(
                        {
                            "order_detail_id": f"{position}",
                            "sku": sku,
                            "product_name": sku,
                            "quantity": quantity,
                            "base_price": prices[sku],
                            "discount_amount": Decimal(0),
                            "tax_percentage": Decimal(11),
                        }
                    )
                    total += quantity * prices[sku]
                tax = (total * Decimal(11) / Decimal(111)).quantize(Decimal("0.01"))
                reference = f"O{o_index:02d}-{day:%m%d}-{n:03d}"
                orders.append(
                    {
                        "order_id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "order_reference": f"#{reference}",
                        "status": "completed",
                        "outlet_id": outlet,
                        "order_date": when.isoformat(),
                        "closed_date": when.isoformat(),
                        "modified_date": when.isoformat(),
                        "tax_inclusive": True,
                        "total_amount": total,
                        "total_tax_amount": tax,
                        "total_discount_amount": Decimal(0),
                        "rounding_amount": Decimal(0),
                        "order_details": lines,
                        "transactions": [
                            {
                                "type": "sale",
                                "status": "success",
                                "gateway": "cash",
                                "amount": total,
                                "transaction_date": when.isoformat(),
                            }
                        ],
                    }
                )
    return orders


class Timed:
    """Wall time spent inside Accurate calls (waiting for the server and the rate limiter)."""

    def __init__(self, hook: Any) -> None:
        import threading

        self.hook, self.seconds, self.lock = hook, 0.0, threading.Lock()
        original = hook.call

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds += time.perf_counter() - started

        hook.call = call

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def accurate_requests(base_url: str) -> int:
    return len(httpx.get(f"{base_url}/_sandbox/requests", timeout=60).json()["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=env_int("BENCH_RECON_DAYS", 30))
    parser.add_argument("--outlets", type=int, default=env_int("BENCH_RECON_OUTLETS", 10))
    parser.add_argument("--orders", type=int, default=20, help="orders per outlet and day")
    args = parser.parse_args()

    from include.iseller_accurate.clients import AccurateHook, LocalRateLimiter, clear_discovery_cache
    from include.iseller_accurate.ledger import Ledger, RunRef, connect, migrate
    from include.iseller_accurate.pipeline import Loader, MapContext
    from include.iseller_accurate.reconciliation import run as recon
    from include.iseller_accurate.settings import parse_settings
    from include.iseller_accurate.streams.sales import SalesStream
    from sandbox.demo_shop import build_demo_shop

    shop = build_demo_shop(42)
    products = [p for p in shop.products if p.sku and p.in_accurate]
    skus = [p.sku for p in products]
    prices = {p.sku: Decimal(p.price) for p in products}
    outlets = [f"outlet-{i:02d}" for i in range(args.outlets)]
    first = date(2026, 10, 1)
    days = [first + timedelta(days=i) for i in range(args.days)]
    pg = TempPostgres().start()
    try:
        with run_sandbox(
            "sandbox.accurate", "--seed", "42", drop_env_prefixes=("ACCURATE_",), timeout=60
        ) as acc:
            os.environ["AIRFLOW_CONN_ACCURATE_API"] = json.dumps(
                {
                    "conn_type": "http",
                    "host": acc.base_url,
                    "password": ACCURATE_TOKEN,
                    "extra": {"signature_secret": ACCURATE_SECRET},
                }
            )
            clear_discovery_cache()
            accurate = AccurateHook(rate_limiter=LocalRateLimiter())
            for i in range(args.outlets):
                for module in ("branch", "warehouse"):
                    accurate.save(module, {"name": f"Bench {module} {i:02d}"})
            settings = parse_settings(
                {
                    "outlets": {
                        o: {
                            "name": f"Toko {i:02d}",
                            "branch": f"Bench branch {i:02d}",
                            "warehouse": f"Bench warehouse {i:02d}",
                            "cash_account": "110101",
                        }
                        for i, o in enumerate(outlets)
                    },
                }
            )
            orders = generate(outlets, days, args.orders, skus, prices)
            stock = {o: {sku: Decimal(0) for sku in skus} for o in outlets}
            for order in orders:
                for line in order["order_details"]:
                    stock[order["outlet_id"]][line["sku"]] -= line["quantity"]
            catalogue = [
                {
                    "sku": p.sku,
                    "name": p.name,
                    "track_inventory": True,
                    "inventories": [{"outlet_id": o, "unit_in_stock": stock[o][p.sku]} for o in outlets],
                }
                for p in products
            ]
            iseller = FakeIseller(orders, catalogue)
            conn = connect(pg.dsn, autocommit=True)
            migrate(conn)
            ledger = Ledger(conn)

            # 1. the sync (makes the books agree; its requests are not the reconciliation's)
            started = time.perf_counter()
            records = SalesStream().group_orders([{"orders": orders, "refunded_orders": []}])
            documents = SalesStream().map(records, MapContext(settings, ledger.synced_numbers))
            run = RunRef("iseller_sales_to_accurate", "bench", "load")
            ledger.upsert(documents, run)
            report = Loader(ledger, accurate, run).load_run()
            sync_s = time.perf_counter() - started
            assert not report.failed and not report.blocked, report.table()
            httpx.delete(f"{acc.base_url}/_sandbox/requests", timeout=30)
            timed = Timed(accurate)

            # 2. the reconciliation
            started = time.perf_counter()
            outcome = recon.reconcile_sales(settings, ledger, iseller, accurate, days, outlets, None)
            recon_s = time.perf_counter() - started
            recon_wait = timed.take()
            recon_requests = accurate_requests(acc.base_url)
            httpx.delete(f"{acc.base_url}/_sandbox/requests", timeout=30)
            iseller_requests = iseller.requests

            # 3. the stock check
            started = time.perf_counter()
            results = recon.check_outlet_stock(settings, ledger, iseller, accurate, outlets, days[-1])
            stock_s = time.perf_counter() - started
            stock_wait = timed.take()
            stock_requests = accurate_requests(acc.base_url)
            conn.close()
    finally:
        pg.stop()

    load1, load5, _ = os.getloadavg()
    summary = outcome.summary()
    print(
        f"reconciliation of {args.days} days x {args.outlets} outlets, {len(orders):,} orders,"
        f" {report.posted:,} documents in Accurate (posted by the sync in {sync_s:.1f} s)"
    )
    print(
        f"  sales:  {recon_s:6.1f} s ({recon_wait:.1f} s waiting for Accurate),"
        f" {recon_requests:4d} Accurate requests"
        f" (>= {recon_requests / ACCURATE_RATE:.1f} s at {ACCURATE_RATE}/s),"
        f" {iseller_requests} iSeller pages;"
        f" {summary['days']} outlet days, {summary['red']} red"
    )
    print(
        f"  stock:  {stock_s:6.1f} s ({stock_wait:.1f} s in Accurate calls, 8 at a time),"
        f" {stock_requests:4d} Accurate requests"
        f" (>= {stock_requests / ACCURATE_RATE:.1f} s at {ACCURATE_RATE}/s);"
        f" {sum(r.items_checked for r in results)} item x outlet pairs,"
        f" {sum(len(r.differences) for r in results)} differing"
    )
    print(f"  load average {load1:.2f} / {load5:.2f} (1 / 5 min) on {os.cpu_count()} CPUs")
    size = f"{args.days} days x {args.outlets} outlets"
    emit(
        [
            Figure(
                "reconciliation",
                f"sales part ({size}, {recon_requests} requests)",
                recon_s,
                "s",
                floor=recon_requests / ACCURATE_RATE,
                floor_label="s its requests need at 8/s",
                goal="(no goal in issue 13)",
            ),
            Figure(
                "reconciliation",
                f"stock part ({args.outlets} outlets, {stock_requests} requests)",
                stock_s,
                "s",
                floor=stock_requests / ACCURATE_RATE,
                floor_label="s its requests need at 8/s",
                goal="(no goal in issue 13)",
            ),
        ],
        {"orders": len(orders), "sync_seconds": round(sync_s, 1), "red": summary["red"]},
    )
    if summary["red"] or any(r.differences for r in results):
        raise SystemExit("unexpected differences: the generated books should agree")


if __name__ == "__main__":
    main()
