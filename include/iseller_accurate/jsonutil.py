"""JSON that keeps money exact: Decimal in, Decimal out, never through binary floats.

Also the checks every JSON body from outside gets before it is parsed or stored: how deeply it nests
(:func:`check_depth`; a 100,000-deep array would otherwise exhaust the parser's recursion) and whether
PostgreSQL can store its text at all (:func:`unstorable`: NUL characters and lone UTF-16 surrogates
are refused by ``text`` and ``jsonb`` columns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_MARK = "\x00dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9.eE+-]+)"')

#: Deepest nesting accepted from outside (webhook bodies); real payloads nest 3 or 4 levels.
MAX_DEPTH = 64
#: A JSON string literal (escapes included), as bytes; its brackets do not count for the depth.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class JsonTooDeep(ValueError):
    """The JSON text nests arrays/objects deeper than the limit."""


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


#: Largest decimal exponent accepted in a number (``1e1000``); ``1e999999999`` would be written out
#: with a billion digits by :func:`dumps` and overflows PostgreSQL's numeric.
MAX_EXPONENT = 1000


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if value.is_finite() and value and abs(value.adjusted()) > MAX_EXPONENT:
        raise ValueError(f"number {text[:40]} is out of range (exponent beyond +/-{MAX_EXPONENT})")
    return value


def to_jsonable(value: Any) -> Any:
    """A plain JSON-able copy of ``value`` (a source record): Decimal kept, datetimes as ISO text."""
    return json.loads(dumps(value), parse_float=Decimal)


def loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as Decimal.

    Nesting too deep for the parser is a ValueError (:class:`JsonTooDeep`), never a RecursionError;
    so is a number with an absurd exponent (``1e999999999``).
    """
    try:
        return json.loads(text, parse_float=_decimal)
    except RecursionError:
        raise JsonTooDeep("JSON nested too deeply to parse") from None


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`JsonTooDeep` when ``text`` nests arrays/objects deeper than ``limit``.

    A linear scan without parsing (string literals skipped), cheap enough to run on every body
    before :func:`loads`: the refusal comes before any recursion.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise JsonTooDeep(f"JSON nested deeper than {limit} levels")
        else:
            depth -= 1


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (not valid Unicode text)"
    return None


def unstorable(value: Any, where: str = "") -> str | None:
    """Where and why PostgreSQL cannot store ``value`` (parsed JSON), or None when it can.

    E.g. ``"data[0].receiveItemNo contains a NUL character (\\u0000)"``. Keys are checked too.
    """
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = _unstorable_text(item)
            if problem:
                return f"{path or 'the value'} {problem}"
        elif isinstance(item, Mapping):
            for key, child in item.items():
                key_text = str(key)
                problem = _unstorable_text(key_text)
                label = f"{path}.{key_text}" if path else key_text
                if problem:
                    return f"the key '{printable(key_text, 60)}' under {path or 'the top level'} {problem}"
                stack.append((label, child))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                stack.append((f"{path}[{index}]", child))
    return None


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe for a reason or a log line: control characters (NUL...) escaped, cut at ``limit``."""
    cleaned = "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
