"""Reading iSeller-style parameters: query string, form or JSON body, all alike.

iSeller methods are RPC-style POSTs with a form (or JSON) body; the sandbox also accepts the same
parameters in the query string of a GET. A bad value answers HTTP 200 with ``status: false`` and an
``error_message`` (public fact), which :class:`ParamError` carries.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from .jsonutil import parse_dt

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class ParamError(Exception):
    """A parameter the method refuses; answered as ``{"status": false, "error_message": ...}``."""


async def read_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (decimals kept exact) or form fields; ``{}`` when empty."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        result: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            result[key] = values if len(values) > 1 else (values[0] if values else None)
        return result
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError as error:
        raise ParamError(f"The request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ParamError("The request body must be a JSON object")
    return data


async def read_params(request: Request) -> Params:
    """Query parameters overlaid by body fields."""
    merged: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        merged[key] = values if len(values) > 1 else values[0]
    merged.update(await read_body(request))
    return Params(merged)


class Params:
    """Typed access to a method's parameters; every reader raises :class:`ParamError`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        #: Offset-less dates are the wall time at UTC + this (``time_zone`` applied); None: UTC.
        self.local_offset: timedelta | None = None
        #: ``page`` numbering (``1``, ``0``, ``1-lenient``) and the largest ``page_size`` accepted.
        self.page_start = "1"
        self.max_page_size = MAX_PAGE_SIZE

    def _scalar(self, name: str) -> Any:
        value = self.data.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def text(self, name: str) -> str | None:
        """A string parameter, or None when absent or empty."""
        value = self._scalar(name)
        return None if value is None else str(value).strip()

    def date(self, name: str) -> datetime | None:
        """An ISO-8601 date/datetime parameter as aware UTC (no offset means UTC)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            parsed = parse_dt(value)
            if self.local_offset is not None and datetime.fromisoformat(value).tzinfo is None:
                parsed -= self.local_offset
            return parsed
        except ValueError:
            raise ParamError(
                f"Invalid date for {name}: {value!r} (use ISO-8601, e.g. 2026-11-16T03:12:00)"
            ) from None

    def integer(
        self,
        name: str,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
    ) -> int | None:
        """An integer parameter within bounds."""
        value = self._scalar(name)
        if value is None:
            if required:
                raise ParamError(f"{name} is required")
            return default
        if isinstance(value, bool):
            raise ParamError(f"{name} must be an integer")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ParamError(f"{name} must be an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ParamError(f"{name} must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ParamError(f"{name} must be at most {maximum}, got {number}")
        return number

    def boolean(self, name: str) -> bool | None:
        """A true/false parameter (``true``/``false``/``1``/``0``)."""
        value = self._scalar(name)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ParamError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, options: dict[str, str], default: str | None = None) -> str | None:
        """One of ``options`` (keys compared case-insensitively; the value is answered)."""
        value = self.text(name)
        if value is None:
            return default
        found = options.get(value.lower())
        if found is None:
            raise ParamError(f"{name} must be one of {sorted(set(options.values()))}, got {value!r}")
        return found

    def names(self, name: str) -> list[str] | None:
        """A list parameter: JSON list, repeated field, or comma-separated text."""
        value = self.data.get(name)
        if value is None:
            return None
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    def paging(self, required: bool = False) -> tuple[int, int]:
        """``page`` (counted from 1, see ``page_start``) and ``page_size`` (default 50, at most
        ``max_page_size``); the page returned always counts from 1."""
        zero_based = self.page_start == "0"
        first = 0 if self.page_start in ("0", "1-lenient") else 1
        page = self.integer("page", first, minimum=first, required=required)
        size = self.integer(
            "page_size", DEFAULT_PAGE_SIZE, minimum=1, maximum=self.max_page_size, required=required
        )
        assert page is not None
        assert size is not None
        if zero_based:
            page += 1
        elif page == 0:  # 1-lenient: page 0 is page 1
            page = 1
        return page, size

    def date_range(self, prefix: str) -> tuple[datetime | None, datetime | None]:
        """``<prefix>_after`` (inclusive) and ``<prefix>_before`` (exclusive)."""
        after = self.date(f"{prefix}_after")
        before = self.date(f"{prefix}_before")
        if after is not None and before is not None and before < after:
            raise ParamError(f"{prefix}_before is earlier than {prefix}_after")
        return after, before
