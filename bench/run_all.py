"""``make bench``: run every ``bench/bench_*.py`` and print ONE table of their figures.

Each figure stands beside the floor or baseline measured in the same run (these machines are shared
and noisy, so absolute figures mean little alone), with the ratio, the goal and whether it holds.
The same goes to ``test-artifacts/bench.json`` together with the load average before and after, the
number of cores, and each benchmark's exit status and duration.

Sizes are environment variables (defaults fit a few minutes on a 2-core machine):

    BENCH_ORDERS [10000]         big day: orders through the sales pipeline (goal sizes 10000, 100000)
    BENCH_LEDGER_ROWS [100000]   pages at size: ledger rows (goal size 1000000)
    BENCH_DELIVERIES [3000]      webhook bursts: deliveries per target, 32 senders (BENCH_SENDERS)
    BENCH_RECON_DAYS [7]         reconciliation: days (documented run: 30)
    BENCH_RECON_OUTLETS [4]      reconciliation: outlets (documented run: 10)
    BENCH_REALTIME_ORDERS [20]   real time: orders rung up 1-3 s apart (goal size 50; needs the stack)
    BENCH_SHIFT_ORDERS [200]     shift close: orders in the shift (needs the stack)
    BENCH_ONLY                   comma-separated benchmark names to run (e.g. ``pages,sales_sync``)
    BENCH_TIMEOUT [1800]         seconds before one benchmark is stopped and reported as failed

Benchmarks that need the local stack (``make up`` with your ports) report "skipped" when it is not up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ORDER = [
    "bench_accurate_sandbox",
    "bench_pages",
    "bench_webhook_receiver",
    "bench_sales_sync",
    "bench_reconciliation",
    "bench_realtime",
]


#: The sizes make bench uses unless set (each script alone has its own documented default).
DEFAULTS = {
    # The goal's size, and more than one extract chunk (2,000), so the overlap of extract and load shows.
    "BENCH_ORDERS": "10000",
    "BENCH_LEDGER_ROWS": "100000",
    "BENCH_DELIVERIES": "3000",
    "BENCH_SENDERS": "32",
    "BENCH_RECON_DAYS": "7",
    "BENCH_RECON_OUTLETS": "4",
    "BENCH_REALTIME_ORDERS": "20",
    "BENCH_SHIFT_ORDERS": "200",
}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def scripts() -> list[Path]:
    found = {p.stem: p for p in sorted((REPO / "bench").glob("bench_*.py"))}
    names = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    only = {x.strip() for x in os.environ.get("BENCH_ONLY", "").split(",") if x.strip()}
    if only:
        names = [n for n in names if n in only or n.removeprefix("bench_") in only]
    return [found[n] for n in names]


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1 else f"{value:,.1f}".removesuffix(".0")
    return str(value)


def table(figures: list[dict[str, Any]]) -> str:
    header = ["benchmark", "figure", "value", "floor / baseline (same run)", "ratio", "goal", "holds"]
    rows = [header]
    for f in figures:
        floor = "-" if f["floor"] is None else f"{fmt(f['floor'])} {f['floor_label']}".strip()
        verdict = {True: "yes", False: "NO", None: "n/a"}[f["holds"]]
        skipped = f.get("note", "").startswith("skipped")
        rows.append(
            [
                f["benchmark"],
                f["figure"],
                "skipped" if skipped else f"{fmt(f['value'])} {f['unit']}",
                floor,
                "-" if f["ratio"] is None else f"{f['ratio']:.2f}",
                f["goal"],
                verdict,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(" | ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    started_at = datetime.now(UTC)
    load_before = load()
    timeout = int(os.environ.get("BENCH_TIMEOUT", "1800"))
    runs: list[dict[str, Any]] = []
    figures: list[dict[str, Any]] = []
    for script in scripts():
        print(f"\n== {script.relative_to(REPO)}  (load average {' '.join(map(str, load()))})", flush=True)
        with tempfile.NamedTemporaryFile(prefix="bench-", suffix=".json", delete=False) as tmp:
            out = Path(tmp.name)
        env = {**os.environ, "BENCH_FIGURES": str(out), "PYTHONPATH": str(REPO)}
        began = time.monotonic()
        status: int | str
        try:
            status = subprocess.run(
                [sys.executable, str(script)], cwd=REPO, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            status = f"timeout after {timeout} s"
        seconds = round(time.monotonic() - began, 1)
        got: dict[str, Any] = {}
        if out.exists() and out.stat().st_size:
            got = json.loads(out.read_text(encoding="utf-8"))
        out.unlink(missing_ok=True)
        figures.extend(got.get("figures", []))
        runs.append(
            {
                "benchmark": script.stem,
                "exit_status": status,
                "seconds": seconds,
                "load_average_after": load(),
                "details": got.get("details", {}),
            }
        )
    load_after = load()
    result = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "sizes": {
            k: v for k, v in sorted(os.environ.items()) if k.startswith("BENCH_") and k != "BENCH_FIGURES"
        },
        "figures": figures,
        "runs": runs,
    }
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "bench.json").write_text(json.dumps(result, indent=1), encoding="utf-8")

    print(
        f"\n== benchmarks: {os.cpu_count()} cores; load average (1/5/15 min)"
        f" before {load_before}, after {load_after}"
    )
    print(table(figures))
    for f in figures:
        if f.get("note"):
            print(f"  note, {f['benchmark']} / {f['figure']}: {f['note']}")
    failed = [r for r in runs if r["exit_status"] != 0]
    for r in runs:
        mark = "ok" if r["exit_status"] == 0 else f"FAILED ({r['exit_status']})"
        print(f"  {r['benchmark']}: {mark}, {r['seconds']} s")
    print(f"written: {(artifacts / 'bench.json').relative_to(REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
