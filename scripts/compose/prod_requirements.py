"""Print requirements.txt without the development-only packages (scripts/compose/dev-requirements.txt).

Used by the Dockerfile:  python prod_requirements.py requirements.txt dev-requirements.txt > req.txt
Standard library only (runs in the bare build stage).
"""

from __future__ import annotations

import re
import sys


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def names(path: str) -> set[str]:
    with open(path) as f:
        return {canonical(line.strip()) for line in f if line.strip() and not line.startswith("#")}


def prod_lines(requirements: str, dev: str) -> list[str]:
    dev_names = names(dev)
    kept = []
    with open(requirements) as f:
        for line in f:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name = re.split(r"[\s=<>!~;\[]", stripped, maxsplit=1)[0]
            if canonical(name) not in dev_names:
                kept.append(stripped)
    return kept


if __name__ == "__main__":
    print("\n".join(prod_lines(sys.argv[1], sys.argv[2])))
