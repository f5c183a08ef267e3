"""The bad-input catalogue (docs/bad-input.md) names a test for every kind; each must exist.

A row whose test was renamed or deleted would claim a guarantee nothing checks any more.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "docs" / "bad-input.md"
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)(\[[^\]]*\])?`")


def _rows() -> list[str]:
    text = CATALOGUE.read_text(encoding="utf-8")
    section = text.split("\n## Catalogue", 1)[1]
    return [line for line in section.splitlines() if line.startswith("| ") and "`tests/" in line]


def _defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return names


def test_catalogue_has_at_least_25_kinds_across_every_area() -> None:
    rows = _rows()
    assert len(rows) >= 25
    areas = {row.split("|")[1].strip() for row in rows}
    assert {"documents", "settings / conf", "receivers / pages"} <= areas


def test_every_catalogue_row_names_a_test_that_exists() -> None:
    missing = []
    for row in _rows():
        ids = NODE_ID.findall(row)
        assert ids, f"catalogue row without a pytest node id: {row[:120]}"
        for path, name, _param in ids:
            file = REPO / path
            if not file.is_file() or name not in _defined_tests(file):
                missing.append(f"{path}::{name}")
    assert not missing, "catalogue rows name tests that do not exist:\n" + "\n".join(missing)
