"""`make soak`: drive the running local stack with a mixed, hostile workload under faults and kills,
then judge the outcome from the two sandboxes (not from the ledger).

    python scripts/soak.py [--docs 2000] [--faults 0.10] [--executor local] [--seed 1]
                           [--report test-artifacts/soak-report.json] [--timeout 3600]

Environment: the stack's (scripts/env.sh: AIRFLOW_PORT, ACCURATE_SANDBOX_PORT, ISELLER_SANDBOX_PORT,
SYNC_PG_PORT and the AIRFLOW_CONN_* connections). The stack must be running (`make soak` starts it).

What it does (docs/soak.md has the long version):

1. Faults on the Accurate sandbox at ``--faults`` (a seeded mix: 5xx, timeouts, commit-then-timeout,
   duplicate webhooks), plus timed 429 storms and a 308 database move.
2. The workload, in the three sales modes (shift close, real time, scheduled): orders rung up in the
   iSeller sandbox, some refunded; transfers between outlets (some received short); stock takes;
   Accurate receive items and purchase returns that must reach iSeller through webhooks; and hostile
   data among it (NUL in a product name, absurd quantities and prices, an item missing in Accurate,
   bad trigger conf).
3. Kills: ``kill -9`` of a running task process, a scheduler restart, one PostgreSQL restart, the
   webhook receivers away for a while.
4. As an operator would: the outage ends, the missing item is created in Accurate, failed tasks are
   cleared through the REST API, the webhook catch-up runs; wait until nothing moves.
5. The verdict, from the sandboxes: every iSeller document is in Accurate exactly once with the right
   amounts, or failed/blocked in the ledger with a reason; every Accurate receipt/return is in iSeller
   exactly once with the right quantities. Last line:
   ``soak: N documents, F faults, K kills, D duplicates, L lost, U unexplained`` (exit 1 unless D=L=U=0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from include.iseller_accurate.clients import AccurateHook, IsellerHook  # noqa: E402
from include.iseller_accurate.ledger import dsn_from_connection  # noqa: E402
from sandbox.demo_shop import MISSING_IN_ACCURATE_INDEX, build_demo_shop  # noqa: E402
from tests.e2e.airflow_api import AirflowAPI, AirflowAPIError  # noqa: E402

SALES = "iseller_sales_to_accurate"
TRANSFERS = "iseller_transfers_to_accurate"
OPNAME = "iseller_stock_opname_to_accurate"
INGEST = "accurate_webhooks_to_iseller"
MAINTENANCE = "accurate_webhook_maintenance"
DAGS = (SALES, TRANSFERS, OPNAME, INGEST, MAINTENANCE)
#: Orders per `orders/bulk` call of the iSeller sandbox.
BULK_CHUNK = 500
SETTINGS_KEY = "iseller_accurate_settings"
ACTIVE_RUN_STATES = ("queued", "running")
SHOP = build_demo_shop(int(os.environ.get("DEMO_SEED", "42")))
ZERO = Decimal(0)


def log(message: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


def read_json(answer: httpx.Response) -> Any:
    """A sandbox's JSON answer with every number that has a fraction as ``Decimal``.

    ``httpx``'s ``.json()`` reads them as ``float``, which turns 99999999999999.99 into
    99999999999999.98: the verdict would then blame Accurate for an amount it holds exactly.
    """
    return json.loads(answer.content, parse_float=Decimal)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def receipts_by_reference(accurate: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Accurate's sales receipts by the order reference they belong to: ``SR/<ref>`` and ``SR/<ref>-N``.

    Built once per verdict and handed to each order's judging (a scan of every number per order took
    about 20 ms: half an hour at 100,000 orders). A receipt is listed under its whole reference and
    under every part of it before a
    ``-``, exactly the numbers ``== SR/<ref>`` or starting ``SR/<ref>-``.
    """
    index: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for number, records in accurate.items():
        if not number.startswith("SR/"):
            continue
        base = number[3:]
        keys = {base} | {base[:at] for at, char in enumerate(base) if char == "-"}
        for key in keys:
            index[key].extend(records)
    return index


@dataclass
class Expected:
    """One source document the driver made, and how it must end."""

    kind: str  # order | refund | transfer | stock_take | receipt
    key: str  # iSeller id (order, transfer, stock take) or Accurate number (receipt)
    number: str  # what an operator knows it by
    mode: str = ""  # sales mode when it was made
    hostile: str = ""  # what is wrong with it, when it was made hostile on purpose
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """The verdict for one expected document."""

    kind: str
    number: str
    verdict: str  # ok | failed_with_reason | duplicate | lost | unexplained
    detail: str = ""


class Soak:
    def __init__(self, docs: int, fault_rate: float, seed: int, deadline: float) -> None:
        self.docs = docs
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        self.seed = seed
        self.deadline = deadline
        self.tag = uuid.uuid4().hex[:6].upper()
        self.airflow = AirflowAPI(timeout=60.0)
        self.accurate_url = f"http://127.0.0.1:{os.environ.get('ACCURATE_SANDBOX_PORT', '8181')}"
        self.iseller_url = f"http://127.0.0.1:{os.environ.get('ISELLER_SANDBOX_PORT', '8182')}"
        self.http = httpx.Client(timeout=120.0)
        self.expected: list[Expected] = []
        self.kills: Counter[str] = Counter()
        self.events: list[str] = []
        self.findings: list[str] = []
        self.original_settings: Any = None
        self.original_webhook_target: str | None = None
        self.original_order_hook: dict[str, Any] | None = None
        self.started_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        self.t0 = time.monotonic()
        self.phase_times: dict[str, float] = {}
        self.registers = [r for r in SHOP.registers]
        self.store_outlets = [o for o in SHOP.outlets if not o.is_warehouse]
        self.hostile_trigger_refusals: list[dict[str, Any]] = []
        # Stock takes stay off SBY01: the stock opname end-to-end test counts there, and a stock take of
        # the soak still blocked at the end would hold that test's stock take back. They stay off the
        # outlet of the hostile orders (all on registers[0] and [1]) too: a stock take there waits for
        # orders that must stay failed, so it stays blocked, and every later stock opname load (the
        # end-to-end test's refresh included) would list it and end red.
        hostile_outlets = {self.registers[0].outlet_id, self.registers[1].outlet_id}
        self.take_outlets = [
            o for o in SHOP.outlets if o.outlet_code != "SBY01" and o.outlet_id not in hostile_outlets
        ]

    # ------------------------------------------------------------------ plumbing
    def note(self, message: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:7.1f}s {message}")
        log(message)

    def iseller(self, method: str, route: str, body: Any = None, expect: int = 200) -> Any:
        answer = self.http.request(method, f"{self.iseller_url}/_sandbox/{route}", json=body)
        if answer.status_code != expect:
            raise RuntimeError(
                f"iSeller sandbox {method} {route}: HTTP {answer.status_code} {answer.text[:500]}"
            )
        return read_json(answer)

    def accurate(self, method: str, route: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.accurate_url}/_sandbox/{route}", json=body)
        if answer.status_code != 200:
            raise RuntimeError(
                f"Accurate sandbox {method} {route}: HTTP {answer.status_code} {answer.text[:500]}"
            )
        return read_json(answer)

    def api(self, fn: Callable[[], Any], what: str, attempts: int = 60) -> Any:
        """Call Airflow's REST API, riding out its own restarts (PostgreSQL, scheduler)."""
        for attempt in range(attempts):
            try:
                return fn()
            except (httpx.HTTPError, AirflowAPIError) as exc:
                status = getattr(exc, "status_code", None)
                if status is not None and status < 500:
                    raise
                if attempt == attempts - 1:
                    raise
                time.sleep(2)
        raise AssertionError(what)

    def ledger(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        for attempt in range(30):
            try:
                with psycopg.connect(dsn_from_connection(), row_factory=dict_row, connect_timeout=5) as conn:
                    return conn.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                if attempt == 29:
                    raise
                time.sleep(2)
        return []

    def settings(self, **changes: Any) -> None:
        value = {**(self.original_settings or {}), **changes}
        self.api(lambda: self.airflow.set_variable(SETTINGS_KEY, value), "set settings")

    def wait_for_details(self, check: Callable[[dict[str, Any]], bool], timeout: float = 180) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            details = self.api(lambda: self.airflow.call("GET", f"/api/v2/dags/{SALES}/details"), "details")
            if check(details):
                return True
            time.sleep(2)
        return False

    # ------------------------------------------------------------------ set up and tear down
    def setup(self) -> None:
        self.note(f"soak {self.tag}: {self.docs} documents, fault rate {self.fault_rate}, seed {self.seed}")
        self.original_settings = self.airflow.get_variable(SETTINGS_KEY, deserialize_json=True)
        self.original_webhook_target = self.accurate("GET", "webhook-target").get("url")
        for dag_id in DAGS:
            self.airflow.wait_for_dag(dag_id, timeout=180)
            self.airflow.unpause(dag_id)
        if (self.original_settings or {}).get("sales_sync_mode", "shift_close") != "shift_close":
            self.settings(sales_sync_mode="shift_close")
        self.accurate("DELETE", "fault-counts")
        self.set_faults()

    def set_faults(self, **extra: Any) -> None:
        f = self.fault_rate
        self.accurate(
            "POST",
            "faults",
            {
                "seed": self.seed,
                "error_rate": round(f * 0.5, 4),
                "timeout_rate": round(f * 0.2, 4),
                "commit_then_timeout_rate": round(f * 0.2, 4),
                "duplicate_webhook_rate": round(f * 0.5, 4),
                "timeout_seconds": 2,
                "error_status": self.rng.choice((500, 502, 503)),
                **extra,
            },
        )

    def restore(self) -> None:
        """Leave the stack as the other tests expect it: no faults, settings and receivers restored."""
        for what, fn in (
            ("faults", lambda: self.accurate("DELETE", "faults")),
            ("moved", lambda: self.accurate("POST", "config", {"moved": False})),
            ("webhook target", lambda: self.restore_receivers()),
            (
                "settings",
                lambda: self.api(
                    lambda: self.airflow.set_variable(SETTINGS_KEY, self.original_settings or {}), "settings"
                ),
            ),
        ):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - restore as much as possible, say what failed
                self.findings.append(f"restore {what} failed: {exc}")

    # ------------------------------------------------------------------ workload
    def budget(self) -> dict[str, int]:
        n = self.docs
        plan = {
            "receipts": max(4, n * 2 // 100),
            "transfers": max(4, n * 3 // 100),
            "stock_takes": max(3, n // 100),
            "refunds": max(3, n * 3 // 100),
        }
        orders = max(30, n - sum(plan.values()) - 8)
        plan["orders_shift"] = orders * 45 // 100
        plan["orders_realtime"] = orders * 30 // 100
        plan["orders_scheduled"] = orders - plan["orders_shift"] - plan["orders_realtime"]
        return plan

    def bulk_orders(self, count: int, mode: str, webhooks: bool = False) -> list[str]:
        """``count`` random valid orders spread over the registers; their ids."""
        ids: list[str] = []
        registers = self.registers
        per = max(1, count // len(registers))
        left = count
        for index, register in enumerate(registers):
            size = left if index == len(registers) - 1 else min(per, left)
            if size <= 0:
                break
            left -= size
            while size > 0:  # in chunks: one sandbox call stays short at any SOAK_DOCS
                chunk = min(size, BULK_CHUNK)
                size -= chunk
                answer = self.iseller(
                    "POST",
                    "orders/bulk",
                    {
                        "count": chunk,
                        "register_id": register.register_id,
                        "outlet_id": register.outlet_id,
                        "seed": self.rng.randrange(1 << 30),
                        "send_webhooks": webhooks,
                        "include_ids": True,
                    },
                )
                for order_id in answer["order_ids"]:
                    self.expected.append(Expected("order", order_id, "", mode))
                    ids.append(order_id)
        return ids

    def order(
        self, register: Any, lines: list[dict[str, Any]], mode: str, hostile: str = "", **extra: Any
    ) -> dict[str, Any]:
        body = {"outlet_id": register.outlet_id, "register_id": register.register_id, "lines": lines, **extra}
        order = self.iseller("POST", "orders", body)
        self.expected.append(Expected("order", order["order_id"], order["order_reference"], mode, hostile))
        return order

    def hostile_orders(self, mode: str) -> None:
        """Hostile data among the orders; each must end in Accurate right, or failed with a reason."""
        register = self.registers[0]
        good = [p for p in SHOP.products if p.sku and p.in_accurate][:6]
        nul = good[0]
        original_name = nul.name
        self.iseller("PATCH", f"products/{nul.product_id}", {"name": f"{original_name}\x00\x01 soak"})
        try:
            self.order(
                register,
                [{"sku": nul.sku, "quantity": 1}],
                mode,
                "NUL and control characters in a product name",
            )
        finally:
            self.iseller("PATCH", f"products/{nul.product_id}", {"name": original_name})
        self.order(self.registers[1], [{"sku": good[1].sku, "quantity": "1e12"}], mode, "quantity 1e12")
        self.order(
            self.registers[1],
            [{"sku": good[2].sku, "quantity": 1, "price": "99999999999999.99"}],
            mode,
            "price 99,999,999,999,999.99",
        )
        self.order(self.registers[1], [{"sku": good[3].sku, "quantity": "0.0001"}], mode, "quantity 0.0001")
        missing = SHOP.products[MISSING_IN_ACCURATE_INDEX]
        if not self.accurate_item_exists(missing.sku):
            self.order(
                self.registers[1],
                [{"sku": missing.sku, "quantity": 1}, {"sku": good[4].sku, "quantity": 2}],
                mode,
                f"item {missing.sku} missing in Accurate (repaired at the end)",
            )
        else:
            self.findings.append(
                f"item {missing.sku} already in Accurate: the business error a repair fixes was not played"
            )
        # Values iSeller should never send, shown by GetOrders instead of the real ones: these orders
        # have no right amount, so they must end failed with a reason (posting them is a defect).
        raw_cases = [
            ({"order_details.0.quantity": "abc"}, 'quantity "abc"'),
            ({"order_details.0.quantity": "NaN"}, 'quantity "NaN"'),
            ({"order_details.0.quantity": "-3"}, "quantity -3"),
            ({"order_details.0.base_price": "Infinity"}, 'price "Infinity"'),
            ({"order_date": "31/02/2026", "closed_date": "31/02/2026"}, 'order date "31/02/2026"'),
            ({"order_date": "not a date", "closed_date": None}, 'order date "not a date"'),
            ({"total_amount": "1e400"}, 'total "1e400"'),
        ]
        for index, (values, what) in enumerate(raw_cases):
            # All on one register: each one can fail the read of its whole shift (one run, not four).
            register = self.registers[0]
            order = self.order(register, [{"sku": good[index % 6].sku, "quantity": 1}], mode, what)
            try:
                self.iseller("POST", f"orders/{order['order_id']}/raw", {"set": values})
            except RuntimeError as exc:  # an iSeller sandbox without the raw route
                self.expected[-1].hostile = ""
                self.findings.append(f"hostile {what} not played: {exc}")
                continue
            self.expected[-1].data["must_fail"] = True
        customer = next((c for c in SHOP.customers if c.customer_number), None)
        if customer is not None:
            original = {"first_name": customer.first_name}
            try:
                self.iseller("PATCH", f"customers/{customer.customer_id}", {"first_name": "Budi\x00\x07"})
                self.order(
                    self.registers[3],
                    [{"sku": good[5].sku, "quantity": 1}],
                    mode,
                    "NUL and control characters in a customer name",
                    customer_id=customer.customer_id,
                )
            except RuntimeError as exc:
                self.findings.append(f"customer-name hostile order not played: {exc}")
            finally:
                try:
                    self.iseller("PATCH", f"customers/{customer.customer_id}", original)
                except RuntimeError:
                    pass

    def accurate_item_exists(self, sku: str) -> bool:
        items = self.accurate("GET", "records/item")["d"]
        return any(str(i.get("no")) == sku for i in items)

    def hostile_triggers(self) -> None:
        """Bad trigger conf: refused by the API (400), or a run that fails/does nothing; never a loss."""
        bodies = [
            {"register_shift_id": 42},
            {"outlet_id": ""},
            {"outlet_id": "x" * 5000},
            {"window_start": "31/02/2026", "window_end": "2026-13-01T00:00:00"},
            {"window_start": "2026-11-30T00:00:00Z"},
            {"outlet_id": "no-such-outlet\x00", "register_id": "r", "register_shift_id": "s"},
        ]
        for conf in bodies:
            answer = self.api(
                lambda conf=conf: self.airflow.post_dag_run(SALES, {"logical_date": None, "conf": conf}),
                "post",
            )
            row = {"conf": repr(conf)[:80], "status": answer.status_code}
            if answer.status_code < 300:
                row["run_id"] = answer.json()["dag_run_id"]
            self.hostile_trigger_refusals.append(row)
        self.note(f"bad trigger conf: {[r['status'] for r in self.hostile_trigger_refusals]}")

    def settle_bad_triggers(self) -> None:
        """An accepted run with bad conf: once its task has failed with its reason (failed or waiting for
        a retry that cannot help), the operator marks the run failed so the queue behind it moves on."""
        for row in self.hostile_trigger_refusals:
            run_id = row.get("run_id")
            if not run_id or row.get("settled"):
                continue
            tis = self.api(lambda run_id=run_id: self.airflow.task_instances(SALES, run_id), "tis")
            states = {t["task_id"]: t["state"] for t in tis}
            run = self.api(lambda run_id=run_id: self.airflow.dag_run(SALES, run_id), "run")
            if run["state"] in ("success", "failed"):
                row["settled"], row["run_state"], row["task_states"] = True, run["state"], states
            elif any(state in ("failed", "up_for_retry") for state in states.values()):
                self.api(
                    lambda run_id=run_id: self.airflow.call(
                        "PATCH", f"/api/v2/dags/{SALES}/dagRuns/{run_id}", json={"state": "failed"}
                    ),
                    "mark failed",
                )
                row["settled"], row["run_state"], row["task_states"] = True, "marked failed", states
                self.note(f"bad trigger conf run {run_id} ({states}): marked failed by the operator")

    def refunds(self, count: int, mode: str) -> None:
        orders = [e for e in self.expected if e.kind == "order" and not e.hostile]
        for exp in self.rng.sample(orders, min(count, len(orders))):
            try:
                refund = self.iseller("POST", f"orders/{exp.key}/refund", {})
            except RuntimeError as exc:
                self.findings.append(f"refund of {exp.key} not played: {exc}")
                continue
            self.expected.append(
                Expected(
                    "refund",
                    exp.key,
                    refund.get("order_reference", ""),
                    mode,
                    data={"refund_id": refund.get("refund_id")},
                )
            )

    def close_all_shifts(self) -> list[str]:
        runs = []
        for register in self.registers:
            try:
                shift = self.iseller("POST", f"registers/{register.register_id}/close-shift")
            except RuntimeError as exc:  # no open shift on this register
                if "no open" not in str(exc).lower() and "not open" not in str(exc).lower():
                    self.findings.append(f"close shift {register.register_id}: {exc}")
                continue
            hook = shift.get("hook") or {}
            if hook.get("success"):
                runs.append(hook["body"]["dag_run_id"])
            else:
                conf = {k: shift[k] for k in ("outlet_id", "register_id", "register_shift_id")}
                self.findings.append(
                    f"shift-close hook failed for {register.register_id}: {str(hook)[:200]}; run by hand"
                )
                runs.append(
                    self.api(lambda conf=conf: self.airflow.trigger_dag(SALES, conf=conf), "trigger")[
                        "dag_run_id"
                    ]
                )
        return runs

    def transfers(self, count: int) -> None:
        outlets = SHOP.outlets
        skus = [p.sku for p in SHOP.products if p.sku and p.in_accurate][:20]
        for index in range(count):
            source, target = self.rng.sample(outlets, 2)
            lines = [{"sku": s, "quantity": self.rng.randrange(1, 5)} for s in self.rng.sample(skus, 2)]
            record = self.iseller(
                "POST",
                "transfers",
                {"from_outlet_id": source.outlet_id, "to_outlet_id": target.outlet_id, "lines": lines},
            )
            exp = Expected("transfer", record["transfer_id"], record["transfer_number"])
            kind = index % 4
            if kind in (0, 1):
                self.iseller("POST", f"transfers/{record['transfer_id']}/receive", {})
                exp.data["received"] = "full"
            elif kind == 2:
                short = [{"sku": lines[0]["sku"], "received_quantity": max(0, lines[0]["quantity"] - 1)}]
                self.iseller("POST", f"transfers/{record['transfer_id']}/receive", {"lines": short})
                exp.data["received"] = "short"
            else:
                exp.data["received"] = "no"
            self.expected.append(exp)

    def stock_takes(self, count: int) -> None:
        skus = [p.sku for p in SHOP.products if p.sku and p.in_accurate][:20]
        for _ in range(count):
            outlet = self.rng.choice(self.take_outlets)
            lines = [
                {"sku": s, "counted_quantity": self.rng.randrange(0, 30)} for s in self.rng.sample(skus, 3)
            ]
            take = self.iseller("POST", "stock-takes", {"outlet_id": outlet.outlet_id, "lines": lines})
            self.expected.append(Expected("stock_take", take["stock_take_id"], take["stock_take_number"]))

    def receipts(self, count: int) -> None:
        """Receive items and purchase returns saved in Accurate (signed API, through the faults)."""
        hook = AccurateHook()
        skus = [p.sku for p in SHOP.products if p.sku and p.in_accurate][:20]
        # Numbered on from the receipts already made: this is called twice, and a number used again
        # is answered "duplicate number" by Accurate (the first document stays, with other lines).
        first = getattr(self, "receipt_numbers_used", 0)
        self.receipt_numbers_used = first + count
        for index in range(first, first + count):
            outlet = self.rng.choice(self.store_outlets)
            lines = [(s, self.rng.randrange(1, 6)) for s in self.rng.sample(skus, 2)]
            module = "purchase-return" if index % 5 == 4 else "receive-item"
            number = f"SOAK-{self.tag}-{index:05d}"
            record: dict[str, Any] = {
                "number": number,
                "vendorNo": "V.0001",
                "branchName": outlet.branch_name,
                "warehouseName": outlet.warehouse_name,
                "detailItem": [{"itemNo": s, "quantity": q} for s, q in lines],
            }
            if module == "receive-item":
                record["receiveNumber"] = f"SJ-{number}"
            saved = False
            for _attempt in range(8):
                try:
                    result = hook.save(module, record)
                except Exception as exc:  # noqa: BLE001 - a possibly-sent save: look it up by number
                    found = hook.find_by_numbers(module, [number]) if self._safe(lambda: True) else {}
                    if found:
                        saved = True
                        break
                    self.note(f"saving {module} {number} failed ({exc.__class__.__name__}); retrying")
                    time.sleep(1)
                    continue
                if result.ok or result.duplicate_number:
                    saved = True
                    break
                self.findings.append(f"{module} {number} refused by Accurate: {result.reason}")
                break
            if saved:
                prefix = "ACC-PRT" if module == "purchase-return" else "ACC-RI"
                self.expected.append(
                    Expected(
                        "receipt",
                        number,
                        f"{prefix}-{number}",
                        data={"module": module, "outlet": outlet.outlet_id, "lines": lines},
                    )
                )

    @staticmethod
    def _safe(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:  # noqa: BLE001
            return None

    # ------------------------------------------------------------------ kills and outages
    def own_processes(self) -> dict[int, str]:
        """pid -> command line of every process of this stack (descendants of its pid files)."""
        run_dir = Path(os.environ.get("SYNC_RUN_DIR", REPO / ".local" / "run"))
        roots = set()
        for pidfile in run_dir.glob("*.pid"):
            try:
                roots.add(int(pidfile.read_text().strip()))
            except ValueError:
                continue
        table = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        parent: dict[int, int] = {}
        args: dict[int, str] = {}
        for line in table.splitlines():
            parts = line.split(None, 2)
            if len(parts) < 2:
                continue
            pid, ppid = int(parts[0]), int(parts[1])
            parent[pid] = ppid
            args[pid] = parts[2] if len(parts) > 2 else ""
        own = {}
        for pid in parent:
            p = pid
            for _ in range(20):
                if p in roots:
                    own[pid] = args[pid]
                    break
                p = parent.get(p, 0)
                if p <= 1:
                    break
        return own

    def kill_running_task(self, timeout: float = 240) -> bool:
        """``kill -9`` one running task process of this stack (``airflow worker -- <ti id>``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid, args in self.own_processes().items():
                # The task process itself (``airflow worker -- <ti id>``), not its supervisor
                # (``airflow worker -- LocalExecutor: <task>``).
                if args.startswith("airflow worker -- ") and "LocalExecutor" not in args:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.kills["task_kill9"] += 1
                    self.note(f"kill -9 task process {pid} ({args})")
                    return True
            time.sleep(0.3)
        self.findings.append("no running task process found to kill within the time allowed")
        return False

    def restart_scheduler(self) -> None:
        pidfile = Path(os.environ.get("SYNC_RUN_DIR", REPO / ".local" / "run")) / "scheduler.pid"
        pid = int(pidfile.read_text().strip())
        os.killpg(pid, signal.SIGTERM)
        for _ in range(60):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            os.killpg(pid, signal.SIGKILL)
        self.kills["scheduler_restart"] += 1
        self.note(f"scheduler (pid {pid}) stopped; starting it again with scripts/stack.sh up")
        self.stack_up()

    def stack_up(self) -> None:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "stack.sh"), "up"], capture_output=True, text=True, timeout=900
        )
        if out.returncode != 0:
            raise RuntimeError(f"scripts/stack.sh up failed: {out.stderr[-2000:]}")

    def stack_status(self) -> dict[str, str]:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "stack.sh"), "status"], capture_output=True, text=True, timeout=60
        )
        status = {}
        for line in out.stdout.splitlines():
            if ":" in line:
                name, state = line.split(":", 1)
                status[name.strip()] = state.strip()
        return status

    def restart_postgres(self) -> None:
        script = str(REPO / "scripts" / "postgres.sh")
        subprocess.run(["bash", script, "stop"], capture_output=True, text=True, timeout=120, check=True)
        time.sleep(3)
        subprocess.run(["bash", script, "start"], capture_output=True, text=True, timeout=300, check=True)
        self.kills["postgres_restart"] += 1
        self.note("PostgreSQL restarted")
        time.sleep(20)  # let the components notice
        down = [name for name, state in self.stack_status().items() if not state.startswith("running")]
        if down:
            self.findings.append(
                f"after the PostgreSQL restart these were down: {down}; restarted with scripts/stack.sh up"
            )
            self.note(f"components down after the PostgreSQL restart: {down}; scripts/stack.sh up")
            self.stack_up()

    def receivers_away(self) -> None:
        dead = "http://127.0.0.1:9/unreachable"
        token = os.environ.get("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
        self.original_webhook_target = self.original_webhook_target or (
            f"{self.airflow.base_url}/integrations/accurate/webhook?token={token}"
        )
        self.accurate("POST", "webhook-target", {"url": dead})
        self.iseller(
            "POST",
            "webhooks",
            {"order_url": dead, "api_key": os.environ.get("ISELLER_WEBHOOK_API_KEY", "sandbox-webhook-key")},
        )
        self.kills["receivers_away"] += 1
        self.note("webhook receivers away (both sandboxes deliver to a dead address)")

    def restore_receivers(self) -> None:
        token = os.environ.get("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
        target = (
            self.original_webhook_target
            or f"{self.airflow.base_url}/integrations/accurate/webhook?token={token}"
        )
        self.accurate("POST", "webhook-target", {"url": target})
        self.iseller(
            "POST",
            "webhooks",
            {
                "order_url": f"{self.airflow.base_url}/integrations/iseller/webhook",
                "api_key": os.environ.get("ISELLER_WEBHOOK_API_KEY", "sandbox-webhook-key"),
            },
        )

    def storm_429(self, seconds: float) -> None:
        self.accurate("POST", "faults", {"rate_limit_per_s": 1})
        self.note(f"429 storm: Accurate rate limit 1/s for {seconds:.0f}s")
        time.sleep(seconds)
        self.accurate("POST", "faults", {"rate_limit_per_s": 8})

    def move_database(self, seconds: float) -> None:
        self.accurate("POST", "config", {"moved": True})
        self.note(f"Accurate database moved (308) for {seconds:.0f}s")
        time.sleep(seconds)
        self.accurate("POST", "config", {"moved": False})

    # ------------------------------------------------------------------ waiting
    def active_runs(self) -> dict[str, int]:
        active: dict[str, int] = {}
        for dag_id in DAGS:
            for state in ACTIVE_RUN_STATES:
                runs = self.api(
                    lambda dag_id=dag_id, state=state: self.airflow.call(
                        "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"state": state, "limit": 1}
                    ),
                    "runs",
                )
                if runs["total_entries"]:
                    active[dag_id] = active.get(dag_id, 0) + runs["total_entries"]
        return active

    def wait_quiet(self, label: str, timeout: float = 1800) -> None:
        """Until no DAG run is queued or running, three checks in a row (ledger counts are logged)."""
        started = time.monotonic()
        deadline = min(started + timeout, self.deadline)
        quiet = 0
        last = ""
        while time.monotonic() < deadline:
            active = self.active_runs()
            moving = self.ledger(
                "SELECT count(*) AS n FROM sync.documents WHERE status IN ('pending', 'posting')"
                " AND first_seen_at >= %s",
                self.started_at,
            )[0]["n"]
            events = self.ledger(
                "SELECT count(*) AS n FROM sync.webhook_events WHERE status IN ('pending', 'processing')"
                " AND received_at >= %s",
                self.started_at,
            )[0]["n"]
            self.settle_bad_triggers()
            state = (
                f"runs {active or 'none'}, ledger pending/posting {moving}, webhook events pending {events}"
            )
            if state != last:
                log(f"waiting ({label}): {state}")
                last = state
            if not active:
                quiet += 1
                if quiet >= 3:
                    self.phase_times[f"wait {label}"] = round(time.monotonic() - started, 1)
                    return
            else:
                quiet = 0
            time.sleep(3)
        self.findings.append(f"not quiet after {time.monotonic() - started:.0f}s ({label}): {last}")

    # ------------------------------------------------------------------ operator
    def failed_runs(self) -> list[tuple[str, str]]:
        found = []
        for dag_id in DAGS:
            runs = self.api(
                lambda dag_id=dag_id: self.airflow.call(
                    "GET",
                    f"/api/v2/dags/{dag_id}/dagRuns",
                    params={"state": "failed", "limit": 200, "run_after_gte": iso(self.started_at)},
                ),
                "runs",
            )
            found.extend((dag_id, r["dag_run_id"]) for r in runs["dag_runs"])
        return found

    def failed_tasks(self) -> list[dict[str, Any]]:
        """Task instances still failed at the end (runs since the start), with the run's conf."""
        found = []
        for dag_id, run_id in self.failed_runs():
            try:
                for ti in self.airflow.task_instances(dag_id, run_id):
                    if ti["state"] in ("failed", "upstream_failed"):
                        found.append(
                            {
                                "dag_id": dag_id,
                                "run_id": run_id,
                                "task_id": ti["task_id"],
                                "state": ti["state"],
                                "try_number": ti["try_number"],
                            }
                        )
            except (httpx.HTTPError, AirflowAPIError) as exc:
                found.append({"dag_id": dag_id, "run_id": run_id, "error": str(exc)[:200]})
        return found

    def repair_and_clear(self, rounds: int = 3) -> None:
        missing = SHOP.products[MISSING_IN_ACCURATE_INDEX]
        if any(e.hostile.startswith(f"item {missing.sku}") for e in self.expected):
            self.accurate(
                "POST",
                "items",
                {
                    "no": missing.sku,
                    "name": missing.name,
                    "itemType": "INVENTORY",
                    "unit1Name": missing.unit,
                    "unitPrice": str(missing.price),
                    "stock": {w.warehouse_name: 100 for w in SHOP.outlets},
                },
            )
            self.note(f"repair: created item {missing.sku} in Accurate")
        bad_trigger_runs = {r.get("run_id") for r in self.hostile_trigger_refusals}
        before = self.not_synced()
        for round_no in range(1, rounds + 1):
            failed = [(d, r) for d, r in self.failed_runs() if r not in bad_trigger_runs]
            if not failed:
                break
            if round_no > 1 and self.not_synced() == before:
                # The last clear changed no document: what still fails, fails for its own reason
                # (hostile data, a stock take behind it), and clearing again cannot change that.
                self.note(f"clear round {round_no} skipped: the last one changed no document")
                break
            before = self.not_synced()
            self.note(
                f"clear round {round_no}: {len(failed)} failed runs: clearing their failed tasks (REST API)"
            )
            for dag_id, run_id in failed:
                try:
                    self.api(
                        lambda dag_id=dag_id, run_id=run_id: self.airflow.clear_task_instances(
                            dag_id, run_id, only_failed=True, include_downstream=True, reset_dag_runs=True
                        ),
                        "clear",
                    )
                    self.kills["cleared_runs"] += 0  # counted in the report, not as a kill
                except AirflowAPIError as exc:
                    self.findings.append(f"clearing {dag_id} {run_id}: {exc}")
            self.wait_quiet(f"after clear round {round_no}")
        self.cleared_rounds = round_no

    def not_synced(self) -> set[tuple[str, str, str]]:
        """The soak's documents the ledger does not hold as synced: (type, number, status)."""
        return {
            (row["data_type"], row["target_number"] or row["source_key"], row["status"])
            for row in self.ledger(
                "SELECT data_type, target_number, source_key, status FROM sync.documents"
                " WHERE status <> 'synced' AND first_seen_at >= %s",
                self.started_at - timedelta(minutes=5),
            )
        }

    def accurate_clock_offset(self) -> timedelta:
        """How far the Accurate sandbox's clock is ahead of ours (other e2e tests move it forward)."""
        return timedelta(seconds=float(self.accurate("GET", "clock").get("offset_seconds") or 0))

    def catch_up(self) -> None:
        """What an operator does after an outage: the webhook catch-up, and a sales/transfer refresh."""
        # Accurate's history is dated by Accurate's clock. The scheduled catch-up reads windows of our
        # clock, which real Accurate shares; when an earlier test moved the sandbox's clock forward, the
        # operator backfills the soak's window in Accurate's time instead (the DAG's window conf).
        offset = self.accurate_clock_offset()
        history_conf: dict[str, str] = {}
        if offset > timedelta(minutes=5):
            history_conf = {
                "window_start": iso(self.started_at + offset - timedelta(hours=1)),
                "window_end": iso(datetime.now(UTC) + offset + timedelta(minutes=5)),
            }
            self.note(f"Accurate's clock is {offset} ahead: webhook catch-up over {history_conf}")
        runs = [
            (
                MAINTENANCE,
                self.api(lambda: self.airflow.trigger_dag(MAINTENANCE, conf=history_conf), "trigger")[
                    "dag_run_id"
                ],
            ),
        ]
        window = {
            "window_start": iso(self.started_at),
            "window_end": iso(datetime.now(UTC) + timedelta(seconds=5)),
        }
        for dag_id in (SALES, TRANSFERS, OPNAME):
            runs.append(
                (
                    dag_id,
                    self.api(lambda dag_id=dag_id: self.airflow.trigger_dag(dag_id, conf=window), "trigger")[
                        "dag_run_id"
                    ],
                )
            )
        self.note(f"operator catch-up runs: {[d for d, _ in runs]}")
        self.wait_quiet("catch-up")

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        plan = self.budget()
        self.setup()
        self.note(f"plan: {plan}")
        try:
            self.play(plan)
        finally:
            self.restore()
        return self.verdict(plan)

    def play(self, plan: dict[str, int]) -> None:
        t = time.monotonic()
        # 1. shift close mode, hostile data among it, bad trigger conf, a kill -9 of a running task
        self.hostile_orders("shift_close")
        self.bulk_orders(plan["orders_shift"], "shift_close")
        self.refunds(plan["refunds"] // 2, "shift_close")
        runs = self.close_all_shifts()
        self.note(f"shift close: {len(runs)} runs triggered by the POS hook")
        self.kill_running_task()
        self.storm_429(12)
        # 2. transfers and stock takes, then the scheduler restart while their runs are queued
        self.transfers(plan["transfers"])
        self.stock_takes(plan["stock_takes"])
        for dag_id in (TRANSFERS, OPNAME):
            self.api(lambda dag_id=dag_id: self.airflow.trigger_dag(dag_id, conf={}), "trigger")
        self.restart_scheduler()
        self.phase_times["shift close, transfers, stock takes"] = round(time.monotonic() - t, 1)
        # 3. real time: order webhooks; Accurate receipts through webhooks; receivers away for a while
        t = time.monotonic()
        self.settings(sales_sync_mode="realtime")
        if not self.wait_for_details(
            lambda d: "iseller_order_notifications" in json.dumps(d.get("asset_expression") or {})
        ):
            self.findings.append("the sales DAG was not re-parsed in real-time mode within 180 s")
        half = plan["orders_realtime"] // 2
        self.bulk_orders(half, "realtime", webhooks=True)
        self.receipts(plan["receipts"] // 2)
        self.receivers_away()
        self.bulk_orders(plan["orders_realtime"] - half, "realtime", webhooks=True)
        self.receipts(plan["receipts"] - plan["receipts"] // 2)
        self.move_database(10)
        time.sleep(5)
        self.restore_receivers()
        self.note("webhook receivers back")
        self.kill_running_task(timeout=60)
        self.restart_postgres()
        self.phase_times["real time, receipts, outages"] = round(time.monotonic() - t, 1)
        # 4. scheduled mode: the sync times set to the next minutes (shop time)
        # (one sales run at a time: the queue of shift-close runs drains first, else no scheduled run starts)
        self.wait_quiet("shift close and real time")
        t = time.monotonic()
        tz = ZoneInfo((self.original_settings or {}).get("timezone", "Asia/Jakarta"))
        now = datetime.now(tz)
        times = sorted({(now + timedelta(minutes=m)).strftime("%H:%M") for m in (2, 3, 4)})
        self.settings(sales_sync_mode="scheduled", sales_sync_times=times)
        self.bulk_orders(plan["orders_scheduled"], "scheduled")
        self.refunds(plan["refunds"] - plan["refunds"] // 2, "scheduled")
        scheduled = self.wait_for_scheduled_run(timeout=300)
        self.note(
            f"scheduled mode: {'a scheduled run' if scheduled else 'no scheduled run in 300 s'} ({times})"
        )
        if not scheduled:
            self.findings.append(f"no scheduled sales run within 300 s of setting sales_sync_times={times}")
        self.phase_times["scheduled"] = round(time.monotonic() - t, 1)
        # 5. back to shift close; the last shifts close; the outage ends; the operator's work
        t = time.monotonic()
        self.settings(sales_sync_mode="shift_close")
        self.wait_quiet("workload")
        # bad trigger conf at the end of the day: refused by the API, or a run the operator marks failed
        self.hostile_triggers()
        self.wait_quiet("bad trigger conf")
        self.accurate(
            "POST",
            "faults",
            {
                "error_rate": 0,
                "timeout_rate": 0,
                "commit_then_timeout_rate": 0,
                "duplicate_webhook_rate": 0,
                "rate_limit_per_s": 8,
            },
        )
        self.note("faults off (the outage is over)")
        self.repair_and_clear()
        self.catch_up()
        self.repair_and_clear()
        self.phase_times["repair and catch-up"] = round(time.monotonic() - t, 1)

    def wait_for_scheduled_run(self, timeout: float) -> bool:
        deadline = min(time.monotonic() + timeout, self.deadline)
        while time.monotonic() < deadline:
            runs = self.api(
                lambda: self.airflow.call(
                    "GET",
                    f"/api/v2/dags/{SALES}/dagRuns",
                    params={"run_type": "scheduled", "run_after_gte": iso(self.started_at), "limit": 5},
                ),
                "runs",
            )
            if runs["total_entries"]:
                return True
            time.sleep(5)
        return False

    # ------------------------------------------------------------------ the verdict
    def verdict(self, plan: dict[str, int]) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        log("verdict: reading both sandboxes")
        outcomes = self.judge()
        counts = Counter(o.verdict for o in outcomes)
        faults = self.accurate("GET", "fault-counts")
        report: dict[str, Any] = {
            "tag": self.tag,
            "documents": len(self.expected),
            "by_kind": dict(Counter(e.kind for e in self.expected)),
            "hostile": sum(1 for e in self.expected if e.hostile),
            "fault_rate": self.fault_rate,
            "faults": faults,
            "faults_total": sum(faults.values()),
            "kills": dict(self.kills),
            "kills_total": sum(v for k, v in self.kills.items() if k != "cleared_runs"),
            "verdicts": dict(counts),
            "duplicates": counts["duplicate"],
            "lost": counts["lost"],
            "unexplained": counts["unexplained"],
            # True: the deadline cut the waiting short, so "lost" may hold documents still on their way.
            "timed_out": time.monotonic() >= self.deadline,
            "wall_seconds": round(wall, 1),
            "documents_per_second": round(len(self.expected) / wall, 2) if wall else None,
            "load_average": os.getloadavg(),
            "plan": plan,
            "phases_seconds": self.phase_times,
            "bad_trigger_conf": self.hostile_trigger_refusals,
            "findings": self.findings,
            "failed_tasks_at_end": self.failed_tasks(),
            "events": self.events,
            "problems": [o.__dict__ for o in outcomes if o.verdict in ("duplicate", "lost", "unexplained")][
                :500
            ],
            "failed_with_reason": [o.__dict__ for o in outcomes if o.verdict == "failed_with_reason"][:200],
        }
        return report

    def judge(self) -> list[Outcome]:
        accurate: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for module in ("sales-invoice", "sales-receipt", "sales-return", "item-transfer", "item-adjustment"):
            for record in self.accurate("GET", f"records/{module}")["d"]:
                accurate[str(record.get("number"))].append(record)
        rows = self.ledger(
            "SELECT data_type, source_id, source_key, source_number, target_number, status, reason"
            " FROM sync.documents WHERE first_seen_at >= %s",
            self.started_at - timedelta(minutes=5),
        )
        by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_source_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            if row["target_number"]:
                by_target[row["target_number"]].append(row)
            by_source_key[row["source_key"]].append(row)
        outcomes: list[Outcome] = []
        orders = self.read_orders()
        receipts = receipts_by_reference(accurate)
        for exp in self.expected:
            if exp.kind == "order":
                outcomes.extend(
                    self.judge_order(exp, orders.get(exp.key), accurate, by_target, by_source_key, receipts)
                )
            elif exp.kind == "refund":
                outcomes.extend(
                    self.judge_refund(exp, orders.get(exp.key), accurate, by_target, by_source_key)
                )
            elif exp.kind == "transfer":
                outcomes.extend(self.judge_transfer(exp, accurate, by_target, by_source_key))
            elif exp.kind == "stock_take":
                outcomes.extend(self.judge_stock_take(exp, accurate, by_target, by_source_key))
            elif exp.kind == "receipt":
                outcomes.append(self.judge_receipt(exp))
        return outcomes

    def read_orders(self) -> dict[str, dict[str, Any]]:
        hook = IsellerHook()
        found = {}
        for order in hook.get_orders(created_after=self.started_at - timedelta(minutes=1)):
            found[str(order["order_id"])] = order
        for exp in self.expected:
            if exp.kind == "order" and exp.key not in found:
                for order in hook.get_orders(order_id=exp.key):
                    found[str(order["order_id"])] = order
        return found

    @staticmethod
    def explain(number: str, exp: Expected, rows: list[dict[str, Any]], kind: str) -> Outcome:
        """A document not in Accurate: failed/blocked/skipped with a reason, else lost or unexplained."""
        if not rows:
            return Outcome(
                kind,
                number,
                "lost",
                f"not in Accurate and not in the ledger{' (' + exp.hostile + ')' if exp.hostile else ''}",
            )
        row = rows[0]
        if row["status"] in ("failed", "blocked", "skipped") and (row["reason"] or "").strip():
            return Outcome(kind, number, "failed_with_reason", f"{row['status']}: {row['reason'][:300]}")
        if row["status"] == "synced":
            return Outcome(kind, number, "lost", "synced in the ledger but not in Accurate")
        return Outcome(kind, number, "unexplained", f"ledger status {row['status']} reason {row['reason']!r}")

    def check_one(
        self,
        kind: str,
        number: str,
        exp: Expected,
        accurate: dict[str, list[dict[str, Any]]],
        by_target: dict[str, list[dict[str, Any]]],
        amount: Decimal | None = None,
        amount_field: str = "totalAmount",
    ) -> Outcome:
        records = accurate.get(number, [])
        if len(records) > 1:
            return Outcome(kind, number, "duplicate", f"{len(records)} records in Accurate")
        if not records:
            return self.explain(number, exp, by_target.get(number, []), kind)
        if amount is not None:
            got = money(records[0].get(amount_field))
            if got != amount:
                return Outcome(
                    kind, number, "unexplained", f"{amount_field} {got} in Accurate, expected {amount}"
                )
        return Outcome(kind, number, "ok")

    def judge_order(
        self,
        exp: Expected,
        order: dict[str, Any] | None,
        accurate: Any,
        by_target: Any,
        by_key: Any,
        receipts_by_ref: dict[str, list[dict[str, Any]]] | None = None,
    ) -> list[Outcome]:
        if order is None:
            return [
                Outcome("order", exp.key, "unexplained", "the order is not in iSeller's GetOrders any more")
            ]
        reference = str(order["order_reference"]).lstrip("#")
        invoice_no = f"SI/{reference}"
        rounding = money(order.get("rounding_amount"))
        total = money(order.get("total_amount")) - max(rounding, ZERO)
        outcomes = [self.check_one("sales_invoice", invoice_no, exp, accurate, by_target, total)]
        paid = sum(
            (
                money(t.get("amount"))
                for t in order.get("transactions") or []
                if str(t.get("type", "sale")).lower() == "sale"
                and str(t.get("status", "success")).lower() == "success"
            ),
            ZERO,
        )
        if receipts_by_ref is None:
            receipts_by_ref = receipts_by_reference(accurate)
        receipts = receipts_by_ref.get(reference, [])
        if paid > 0:
            if receipts:
                got = sum((money(r.get("totalPayment", r.get("totalAmount"))) for r in receipts), ZERO)
                dups = len(receipts) - len({r.get("number") for r in receipts})
                if dups:
                    outcomes.append(
                        Outcome("sales_receipt", f"SR/{reference}", "duplicate", f"{len(receipts)} receipts")
                    )
                elif got != paid:
                    outcomes.append(
                        Outcome(
                            "sales_receipt",
                            f"SR/{reference}",
                            "unexplained",
                            f"receipts {got} in Accurate, paid {paid}",
                        )
                    )
                else:
                    outcomes.append(Outcome("sales_receipt", f"SR/{reference}", "ok"))
            elif not by_target.get(f"SR/{reference}") and outcomes[0].verdict == "failed_with_reason":
                # An order that cannot be read fails as one ledger row, its invoice's: the receipt is
                # not a separate document yet, and it is made once the order is corrected.
                outcomes.append(
                    Outcome(
                        "sales_receipt",
                        f"SR/{reference}",
                        "failed_with_reason",
                        f"its order failed: {outcomes[0].detail}"[:300],
                    )
                )
            else:
                outcomes.append(
                    self.explain(
                        f"SR/{reference}", exp, by_target.get(f"SR/{reference}", []), "sales_receipt"
                    )
                )
        if exp.data.get("must_fail") and outcomes[0].verdict == "ok":
            outcomes[0].verdict = "unexplained"
            outcomes[
                0
            ].detail = f"hostile ({exp.hostile}) posted to Accurate instead of failing with a reason"
        elif exp.hostile and outcomes[0].verdict == "ok":
            outcomes[0].detail = f"hostile ({exp.hostile}) accepted and posted"
        return outcomes

    def judge_refund(
        self, exp: Expected, order: dict[str, Any] | None, accurate: Any, by_target: Any, by_key: Any
    ) -> list[Outcome]:
        if order is None:
            return [Outcome("sales_return", exp.key, "unexplained", "order not in iSeller")]
        reference = str(order["order_reference"]).lstrip("#")
        number = f"RT/{reference}"
        return [self.check_one("sales_return", number, exp, accurate, by_target)]

    def judge_transfer(self, exp: Expected, accurate: Any, by_target: Any, by_key: Any) -> list[Outcome]:
        numbers = [f"TO/{exp.number}"]
        if exp.data.get("received") in ("full", "short"):
            numbers.append(f"TI/{exp.number}")
        if exp.data.get("received") == "short":
            numbers.append(f"TD/{exp.number}")
        return [self.check_one("item_transfer", n, exp, accurate, by_target, None) for n in numbers]

    def judge_stock_take(self, exp: Expected, accurate: Any, by_target: Any, by_key: Any) -> list[Outcome]:
        number = f"SO/{exp.number}"
        records = accurate.get(number, [])
        if not records:
            rows = by_target.get(number, []) or [r for r in by_key.get(exp.key, [])]
            return [self.explain(number, exp, rows, "stock_opname")]
        return [self.check_one("stock_opname", number, exp, accurate, by_target, None)]

    def judge_receipt(self, exp: Expected) -> Outcome:
        hook = IsellerHook()
        transfers = [
            t for t in hook.get_transfers(reference_code=exp.number) if t.get("reference_code") == exp.number
        ]
        if len(transfers) > 1:
            return Outcome(
                "iseller_transfer", exp.number, "duplicate", f"{len(transfers)} transfers in iSeller"
            )
        if not transfers:
            rows = self.ledger(
                "SELECT status, reason FROM sync.webhook_events WHERE accurate_number = %s ORDER BY id",
                exp.key,
            )
            reasons = [
                r for r in rows if r["status"] in ("failed", "ignored") and (r["reason"] or "").strip()
            ]
            if reasons:
                return Outcome(
                    "iseller_transfer", exp.number, "failed_with_reason", reasons[-1]["reason"][:300]
                )
            if not rows:
                return Outcome(
                    "iseller_transfer",
                    exp.number,
                    "lost",
                    "no transfer in iSeller and no webhook event in the ledger",
                )
            return Outcome(
                "iseller_transfer", exp.number, "unexplained", f"event statuses {[r['status'] for r in rows]}"
            )
        got: Counter[str] = Counter()
        for line in transfers[0].get("products") or []:
            got[str(line.get("sku"))] += int(money(line.get("quantity")))
        want: Counter[str] = Counter()
        for sku, quantity in exp.data["lines"]:
            want[sku] += quantity
        if got != want:
            return Outcome(
                "iseller_transfer",
                exp.number,
                "unexplained",
                f"quantities {dict(got)} in iSeller, expected {dict(want)}",
            )
        return Outcome("iseller_transfer", exp.number, "ok")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=int(os.environ.get("SOAK_DOCS") or 2000))
    parser.add_argument("--faults", type=float, default=float(os.environ.get("SOAK_FAULTS") or 0.10))
    parser.add_argument("--executor", default=os.environ.get("EXECUTOR") or "local")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED") or 1))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("SOAK_TIMEOUT") or 3 * 3600))
    parser.add_argument("--report", default=str(REPO / "test-artifacts" / "soak-report.json"))
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.executor.lower() not in ("local", "localexecutor"):
        print(
            f"soak: EXECUTOR={args.executor} is not supported by the local stack (LocalExecutor only)",
            file=sys.stderr,
        )
        return 2
    if not 0 <= args.faults <= 1 or args.docs < 50:
        print("soak: SOAK_FAULTS must be between 0 and 1 and SOAK_DOCS at least 50", file=sys.stderr)
        return 2
    soak = Soak(args.docs, args.faults, args.seed, time.monotonic() + args.timeout)

    def stop(signum: int, frame: Any) -> None:  # SIGTERM (timeout, CI): restore the stack on the way out
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the restore short
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    report = soak.run()
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for finding in report["findings"]:
        log(f"finding: {finding}")
    for problem in report["problems"][:30]:
        log(f"{problem['verdict']}: {problem['kind']} {problem['number']}: {problem['detail']}")
    load = " ".join(f"{x:.1f}" for x in report["load_average"])
    print(
        f"soak: wall time {report['wall_seconds']}s, {report['documents_per_second']} documents/s,"
        f" load average {load}; faults by kind {report['faults']}; kills {report['kills']}; report {path}"
    )
    print(
        f"soak: {report['documents']} documents, {report['faults_total']} faults,"
        f" {report['kills_total']} kills,"
        f" {report['duplicates']} duplicates, {report['lost']} lost, {report['unexplained']} unexplained"
    )
    return 0 if report["duplicates"] == report["lost"] == report["unexplained"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
