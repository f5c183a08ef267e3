"""What every benchmark hands to ``bench/run_all.py``: its figures, each beside the floor or baseline
measured in the same run, the ratio, the goal, and whether the goal holds.

A benchmark calls :func:`emit` once at its end. Run alone it just prints the figures; under
``run_all.py`` (``make bench``) they are also written to the file named by ``BENCH_FIGURES`` and
end up in the one table and in ``test-artifacts/bench.json``.

Not a benchmark itself (the leading underscore keeps ``run_all.py`` from running it).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Figure:
    """One measured figure.

    ``floor`` is what the same machine reached in the same run without our code in the way (the
    limiter's own best rate, bare inserts, a do-nothing DAG, ...); ``ratio`` = value / floor.
    ``holds`` is None when the run cannot judge the goal (e.g. the goal is stated for a size the run
    did not use).
    """

    benchmark: str
    figure: str
    value: float
    unit: str
    floor: float | None = None
    floor_label: str = ""
    ratio: float | None = None
    goal: str = ""
    holds: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        self.value = round(float(self.value), 3)
        if self.floor is not None:
            self.floor = round(float(self.floor), 3)
            if self.ratio is None and self.floor:
                self.ratio = round(self.value / self.floor, 3)
        if self.ratio is not None:
            self.ratio = round(float(self.ratio), 3)


def env_int(name: str, default: int) -> int:
    """A size parameter from the environment (``BENCH_ORDERS=...``), else the default."""
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def emit(figures: list[Figure], details: dict[str, Any] | None = None) -> None:
    """Print the figures and hand them to ``run_all.py`` (file ``$BENCH_FIGURES``) when it runs us."""
    for f in figures:
        floor = f" | floor {f.floor:g} {f.floor_label}" if f.floor is not None else ""
        ratio = f" | ratio {f.ratio:.2f}" if f.ratio is not None else ""
        verdict = {True: "holds", False: "MISSED", None: "n/a"}[f.holds]
        print(f"  [{f.benchmark}] {f.figure}: {f.value:g} {f.unit}{floor}{ratio} | goal {f.goal}: {verdict}")
    target = os.environ.get("BENCH_FIGURES")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            json.dump({"figures": [asdict(f) for f in figures], "details": details or {}}, out, indent=1)
