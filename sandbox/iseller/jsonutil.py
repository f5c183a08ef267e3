"""JSON and date helpers for the iSeller sandbox.

Public facts (``shared/reference/iseller-api.md``): iSeller writes dates as ISO-8601 **without an
offset**, in UTC, and money as JSON numbers. The sandbox keeps money as ``Decimal`` end to end, so
its JSON writer prints a ``Decimal`` digit for digit (``65000.00`` stays ``65000.00``); no value ever
goes through ``float``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from starlette.responses import Response

_encode_str = json.encoder.encode_basestring_ascii


def format_dt(value: datetime | None) -> str | None:
    """Write a datetime the way iSeller does: UTC, ISO-8601, whole seconds, no offset."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def parse_dt(text: str) -> datetime:
    """Read an ISO-8601 date or datetime; no offset means UTC, an offset is converted to UTC.

    Raises ``ValueError`` on anything else.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty date")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        out.append(format(value, "f"))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(json.dumps(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_encode_str(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, datetime):
        out.append(_encode_str(format_dt(value) or ""))
    elif isinstance(value, date):
        out.append(_encode_str(value.isoformat()))
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Serialize to compact JSON; ``Decimal`` becomes an exact JSON number, datetimes iSeller dates."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


class SandboxJSONResponse(Response):
    """A JSON response written by :func:`dumps` (exact decimals, iSeller dates)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as UTF-8 JSON."""
        return dumps(content).encode("utf-8")
