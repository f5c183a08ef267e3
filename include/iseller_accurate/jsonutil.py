"""JSON that keeps money exact: Decimal in, Decimal out, never through binary floats."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_MARK = "\x00dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9.eE+-]+)"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send a non-finite amount: {value}")
        return f"{_MARK}{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """Serialise ``value``; every Decimal becomes a JSON number with exactly its digits."""
    text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(r"\1", text) if "\\u0000dec:" in text else text


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as Decimal."""
    return json.loads(text, parse_float=Decimal)
