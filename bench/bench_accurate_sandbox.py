"""Benchmark: can the Accurate sandbox serve Accurate's full rate without being the bottleneck?

Runs ``python -m sandbox.accurate`` as a subprocess and measures three phases:

1. ``paced@limit``: 8 clients each send one ``sales-invoice/bulk-save.do`` of 100 invoices (1-3 lines)
   per second, staggered by 1/8 s, for ``--seconds`` (default 10) with the default limits
   (8 requests/s, 8 in flight): the load the real Accurate allows.
2. ``capacity``: the same bulk-saves back to back from 8 clients with the limits lifted, to show the
   headroom above the 800 invoices/s the real limit permits.
3. ``echo baseline``: the paced schedule of phase 1 against ``GET /_sandbox/health`` (a trivial
   endpoint in the same process), the floor of HTTP + event-loop cost.

For each phase: requests/s, invoices saved/s, p50/p95 latency, HTTP 429 count and the sandbox
process CPU (user+system seconds per wall second, i.e. a fraction of one core, via psutil).

Run from the repository root: ``python bench/bench_accurate_sandbox.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._report import Figure, emit  # noqa: E402
from sandbox.accurate.signing import make_headers  # noqa: E402
from sandbox.demo_shop import build_demo_shop  # noqa: E402
from tests.pg import free_port  # noqa: E402
from tests.sandbox_process import run_sandbox  # noqa: E402

BULK_PATH = "/accurate/api/sales-invoice/bulk-save.do"
ECHO_PATH = "/_sandbox/health"
INVOICES_PER_BULK = 100


@dataclass
class PhaseResult:
    """What one phase measured."""

    name: str
    wall_seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    documents: int = 0
    cpu_seconds: float = 0.0

    def row(self) -> list[str]:
        """The table row of this phase."""
        ordered = sorted(self.latencies) or [0.0]
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        return [
            self.name,
            f"{len(self.statuses) / self.wall_seconds:.1f}",
            f"{self.documents / self.wall_seconds:.0f}",
            f"{statistics.median(ordered) * 1000:.1f}",
            f"{p95 * 1000:.1f}",
            str(self.statuses.count(429)),
            str(sum(1 for s in self.statuses if s not in (200, 429))),
            f"{self.cpu_seconds / self.wall_seconds:.3f}",
        ]


class BodyFactory:
    """Pre-encoded bulk-save bodies of 100 sales invoices, each with unique numbers."""

    def __init__(self, seed: int = 1) -> None:
        shop = build_demo_shop(42)
        self.items = [(p.sku, str(p.price)) for p in shop.products if p.sku and p.in_accurate]
        self.outlets = [(o.branch_name, o.warehouse_name) for o in shop.outlets if not o.is_warehouse]
        self.rng = random.Random(seed)
        self.counter = 0

    def body(self, prefix: str) -> bytes:
        """One ``{"data": [...100 invoices...]}`` body."""
        records = []
        for _ in range(INVOICES_PER_BULK):
            self.counter += 1
            branch, warehouse = self.rng.choice(self.outlets)
            lines = [
                {
                    "itemNo": sku,
                    "quantity": self.rng.randint(1, 3),
                    "unitPrice": price,
                    "warehouseName": warehouse,
                    "itemUnitName": "",
                }
                for sku, price in self.rng.sample(self.items, self.rng.randint(1, 3))
            ]
            records.append(
                {
                    "number": f"{prefix}-{self.counter:07d}",
                    "transDate": "20/11/2026",
                    "customerNo": "UMUM",
                    "branchName": branch,
                    "taxable": True,
                    "inclusiveTax": True,
                    "description": "bench",
                    "detailItem": lines,
                }
            )
        return json.dumps({"data": records}).encode()


async def _send(client: httpx.AsyncClient, result: PhaseResult, body: bytes | None) -> None:
    started = time.perf_counter()
    if body is None:
        response = await client.get(ECHO_PATH)
    else:
        headers = {**make_headers(timestamp_format="millis"), "Content-Type": "application/json"}
        response = await client.post(BULK_PATH, content=body, headers=headers)
    result.latencies.append(time.perf_counter() - started)
    result.statuses.append(response.status_code)
    if body is not None and response.status_code == 200:
        answer = response.json()
        result.documents += sum(1 for record in answer.get("d", []) if record.get("s"))


async def paced_phase(
    base_url: str, name: str, bodies: list[bytes] | None, clients: int, seconds: int, process: psutil.Process
) -> PhaseResult:
    """``clients`` clients, each one request per second, staggered evenly."""
    result = PhaseResult(name, float(seconds))
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        cpu_before = sum(process.cpu_times()[:2])
        start = time.perf_counter() + 0.2

        async def one_client(index: int) -> None:
            for second in range(seconds):
                delay = start + second + index / clients - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = bodies[second * clients + index] if bodies is not None else None
                await _send(client, result, body)

        await asyncio.gather(*(one_client(i) for i in range(clients)))
        result.wall_seconds = time.perf_counter() - start
        result.cpu_seconds = sum(process.cpu_times()[:2]) - cpu_before
    return result


async def capacity_phase(
    base_url: str, bodies: list[bytes], clients: int, seconds: float, process: psutil.Process
) -> PhaseResult:
    """Bulk-saves back to back from ``clients`` clients for ``seconds``."""
    result = PhaseResult("capacity (no limit)", seconds)
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        cpu_before = sum(process.cpu_times()[:2])
        start = time.perf_counter()

        async def one_client() -> None:
            while queue and time.perf_counter() - start < seconds:
                await _send(client, result, queue.pop())

        await asyncio.gather(*(one_client() for _ in range(clients)))
        result.wall_seconds = time.perf_counter() - start
        result.cpu_seconds = sum(process.cpu_times()[:2]) - cpu_before
    return result


def print_table(results: list[PhaseResult]) -> None:
    """Print the figures as a small aligned table."""
    header = ["phase", "req/s", "invoices/s", "p50 ms", "p95 ms", "429s", "errors", "CPU (cores)"]
    rows = [header, *[r.row() for r in results]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    """Run the three phases and print the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of the paced phases")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    args = parser.parse_args()

    factory = BodyFactory()
    paced_bodies = [factory.body("PACED") for _ in range(args.seconds * args.clients)]
    capacity_bodies = [factory.body("CAP") for _ in range(int(args.capacity_seconds * 80))]
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with run_sandbox("sandbox.accurate", "--seed", "42", port=port) as sandbox:
        process = psutil.Process(sandbox.process.pid)
        time.sleep(1.1)  # a full token bucket
        paced = asyncio.run(
            paced_phase(base_url, "paced@limit (8/s)", paced_bodies, args.clients, args.seconds, process)
        )
        httpx.post(f"{base_url}/_sandbox/faults", json={"rate_limit_per_s": None, "max_in_flight": None})
        capacity = asyncio.run(
            capacity_phase(base_url, capacity_bodies, args.clients, args.capacity_seconds, process)
        )
        echo = asyncio.run(
            paced_phase(base_url, "echo baseline (health)", None, args.clients, args.seconds, process)
        )

    print(
        f"Accurate sandbox benchmark: {args.clients} clients, bulk-save of {INVOICES_PER_BULK} "
        f"sales invoices (1-3 lines), {os.cpu_count()} CPUs"
    )
    print_table([paced, capacity, echo])
    target = args.clients * INVOICES_PER_BULK
    cpu_paced = paced.cpu_seconds / paced.wall_seconds
    cpu_echo = echo.cpu_seconds / echo.wall_seconds
    capacity_docs = capacity.documents / capacity.wall_seconds
    paced_docs = paced.documents / paced.wall_seconds
    print()
    print(
        f"paced load: {paced_docs:.0f} of {target} invoices/s target, "
        f"sandbox CPU {cpu_paced:.1%} of one core"
    )
    print(
        f"headroom: capacity {capacity_docs:.0f} invoices/s = {capacity_docs / target:.1f}x the "
        f"rate-limited load; CPU per paced bulk request {cpu_paced / args.clients * 1000:.1f} ms"
    )
    cpu_ratio = cpu_paced / cpu_echo if cpu_echo else float("inf")
    latency_ratio = statistics.median(paced.latencies) / statistics.median(echo.latencies)
    print(
        f"baseline ratio: paced bulk CPU / echo CPU = {cpu_ratio:.1f}x; "
        f"p50 latency bulk / echo = {latency_ratio:.1f}x"
    )
    emit(
        [
            Figure(
                "accurate sandbox",
                "invoices/s served at Accurate's limit (8 x 100/s)",
                paced_docs,
                "docs/s",
                floor=target,
                floor_label="docs/s the paced clients sent",
                goal=">= 0.97 x sent (never the bottleneck)",
                holds=paced_docs >= 0.97 * target,
            ),
            Figure(
                "accurate sandbox",
                "capacity without the limit",
                capacity_docs,
                "docs/s",
                floor=target,
                floor_label="docs/s the limit allows",
                goal=">= 2 x limit (headroom)",
                holds=capacity_docs >= 2 * target,
                note=f"sandbox CPU {cpu_paced:.1%} of a core at the limit",
            ),
        ],
        {"paced": paced.row(), "capacity": capacity.row(), "echo": echo.row()},
    )


if __name__ == "__main__":
    main()
