"""The benchmark harness (``make bench``): figures beside their floors, one table, one JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run_all
from bench._report import Figure, emit, percentile


def test_a_figure_is_compared_with_the_floor_of_the_same_run() -> None:
    figure = Figure("big day", "documents/s", 540.0, "docs/s", floor=720.0, goal=">= 0.97 x", holds=False)
    assert figure.ratio == 0.75
    assert Figure("pages", "p95", 12.5, "ms").ratio is None  # no floor, no ratio


def test_emit_hands_the_figures_to_run_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "figures.json"
    monkeypatch.setenv("BENCH_FIGURES", str(out))
    emit([Figure("webhook bursts", "lost after SIGKILL", 0, "of 10", goal="0", holds=True)], {"acked": 10})
    data = json.loads(out.read_text())
    assert data["figures"][0]["holds"] is True and data["details"] == {"acked": 10}


def test_the_table_says_which_goals_hold() -> None:
    rows = [
        Figure("a", "held", 1.0, "s", floor=2.0, floor_label="s floor", goal="<= 2 s", holds=True),
        Figure("b", "missed", 9.0, "s", goal="<= 5 s", holds=False),
        Figure("c", "not judged", 3.0, "s", goal="at 1,000,000 rows", holds=None),
    ]
    from dataclasses import asdict

    lines = run_all.table([asdict(f) for f in rows]).splitlines()
    assert lines[0].split(" | ")[-1].strip() == "holds"
    assert [line.rsplit("|", 1)[1].strip() for line in lines[2:]] == ["yes", "NO", "n/a"]
    assert "2 s floor" in lines[2] and "0.50" in lines[2]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.95) == 7.0


def test_a_skipped_figure_says_so_instead_of_a_value() -> None:
    from dataclasses import asdict

    skipped = Figure("real time", "p95", 0, "s", goal="<= 5 s", note="skipped: stack not up")
    row = run_all.table([asdict(skipped)]).splitlines()[2]
    assert "skipped" in row and "0 s" not in row
