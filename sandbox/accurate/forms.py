"""Request decoding: indexed form fields, JSON bodies, list paging, ``fields=`` and filters.

Public facts (reference doc): bodies are JSON or form fields with indexed names such as
``detailItem[0].itemNo`` (bulk: ``data[n].field``); lists page with ``sp.page`` (from 1) and
``sp.pageSize`` (default 20), return only the ``fields=`` asked for (unknown ones silently ignored)
and filter with ``filter.<field>.op`` / ``filter.<field>.val[n]``.

Assumptions (the public record is silent):
- ``sp.pageSize`` above 100 is capped at 100 (switches ``max_page_size`` and ``page_size_over_max``:
  a public integrator saw 1000 honoured); a page past the end is an empty list;
- EQUAL with several values matches any of them, NOT_EQUAL none of them; ``filter.<field>=v`` is
  shorthand for EQUAL; BETWEEN takes ``val[0]`` and ``val[1]`` inclusive; CONTAIN is a
  case-insensitive substring match; values compare as dates when both sides are ``dd/MM/yyyy``
  (with optional time), as numbers when both are numeric, otherwise as text;
- ``sp.sort=<field>|asc|desc`` sorts (default: by id ascending);
- without ``fields=`` a list row holds ``id`` and the module's key (``number``, ``customerNo``...);
- the special filter field ``keywords`` (CONTAIN) searches number/no/name fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.accurate.clock import parse_local_timestamp
from sandbox.accurate.messages import Msg

_TOKEN = re.compile(r"([^\[\].]+)|\[(\d+)\]")
_VAL = re.compile(r"^(.+)\.val(?:\[(\d+)\])?$")
FILTER_OPS = {
    "EQUAL",
    "NOT_EQUAL",
    "BETWEEN",
    "GREATER_THAN",
    "LESS_THAN",
    "GREATER_EQUAL_THAN",
    "LESS_EQUAL_THAN",
    "CONTAIN",
    "NOT_CONTAIN",
    "EMPTY",
    "NOT_EMPTY",
}
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
KEYWORD_FIELDS = ("number", "no", "customerNo", "vendorNo", "name", "description")


class RequestError(Exception):
    """A request-level problem answered with ``s: false`` (HTTP 200 unless ``status`` says otherwise)."""

    def __init__(self, *messages: Msg, status: int = 200) -> None:
        super().__init__(messages)
        self.messages = list(messages)
        self.status = status


def _tokens(name: str) -> list[str | int]:
    return [int(index) if index else word for word, index in _TOKEN.findall(name)]


def _compact(node: Any) -> Any:
    """Turn dicts keyed by list indexes into lists, in index order (sparse indexes close up)."""
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_compact(node[k]) for k in sorted(node)]
        return {k: _compact(v) for k, v in node.items()}
    return node


def parse_form_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build a nested object from form fields named like ``data[0].detailItem[1].quantity``."""
    root: dict[Any, Any] = {}
    for name, value in pairs:
        path = _tokens(name)
        if not path:
            continue
        node = root
        for step in path[:-1]:
            child = node.get(step)
            if not isinstance(child, dict):
                child = {}
                node[step] = child
            node = child
        node[path[-1]] = value
    result = _compact(root)
    return result if isinstance(result, dict) else {}


# ----------------------------------------------------------------------------- list queries


def _comparable(value: Any) -> tuple[int, Any] | None:
    """A sortable/comparable form: (0, datetime) for dates, (1, Decimal) for numbers, (2, str)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return (2, "true" if value else "false")
    if isinstance(value, (int, Decimal)):
        return (1, Decimal(value))
    if isinstance(value, float):
        return (1, Decimal(str(value)))
    text = str(value).strip()
    if len(text) >= 10 and text[2:3] == "/" and text[5:6] == "/":
        moment = parse_local_timestamp(text)
        if moment is not None:
            return (0, moment)
    try:
        return (1, Decimal(text))
    except InvalidOperation:
        return (2, text)


def _compare_pair(left: Any, right: Any) -> tuple[Any, Any] | None:
    a, b = _comparable(left), _comparable(right)
    if a is None or b is None:
        return None
    if a[0] == b[0]:
        return a[1], b[1]
    return str(left), str(right)


def field_value(record: dict[str, Any], field: str) -> Any:
    """A record field, following dots into nested objects (``customer.customerNo``)."""
    if field in record:
        return record[field]
    node: Any = record
    for part in field.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class Filter:
    """One ``filter.<field>`` condition."""

    __slots__ = ("field", "op", "values", "_equal_set")

    def __init__(self, field: str, op: str, values: list[str]) -> None:
        self.field = field
        self.op = op
        self.values = values
        self._equal_set = set(values) if op in ("EQUAL", "NOT_EQUAL") else set()

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` satisfies this condition."""
        if self.field == "keywords":
            needle = self.values[0].lower() if self.values else ""
            return any(needle in str(record.get(f, "")).lower() for f in KEYWORD_FIELDS)
        value = field_value(record, self.field)
        op = self.op
        if op == "EMPTY":
            return value in (None, "", [])
        if op == "NOT_EMPTY":
            return value not in (None, "", [])
        if op in ("EQUAL", "NOT_EQUAL"):
            hit = self._equals_any(value)
            return hit if op == "EQUAL" else not hit
        if op in ("CONTAIN", "NOT_CONTAIN"):
            text = "" if value is None else str(value).lower()
            hit = any(v.lower() in text for v in self.values)
            return hit if op == "CONTAIN" else not hit
        if op == "BETWEEN":
            low = _compare_pair(value, self.values[0])
            high = _compare_pair(value, self.values[-1])
            return low is not None and high is not None and low[0] >= low[1] and high[0] <= high[1]
        pair = _compare_pair(value, self.values[0])
        if pair is None:
            return False
        left, right = pair
        try:
            if op == "GREATER_THAN":
                return bool(left > right)
            if op == "LESS_THAN":
                return bool(left < right)
            if op == "GREATER_EQUAL_THAN":
                return bool(left >= right)
            return bool(left <= right)
        except TypeError:
            return False

    def _equals_any(self, value: Any) -> bool:
        if value is None:
            return "" in self._equal_set
        if isinstance(value, str):
            if value in self._equal_set:
                return True
        elif isinstance(value, bool):
            return ("true" if value else "false") in {v.lower() for v in self.values}
        for candidate in self.values:
            pair = _compare_pair(value, candidate)
            if pair is not None and pair[0] == pair[1]:
                return True
        return False


class ListQuery:
    """Decoded ``list.do`` parameters."""

    __slots__ = ("page", "page_size", "fields", "filters", "sort_field", "sort_desc")

    def __init__(self) -> None:
        self.page = 1
        self.page_size = DEFAULT_PAGE_SIZE
        self.fields: list[str] | None = None
        self.filters: list[Filter] = []
        self.sort_field: str | None = None
        self.sort_desc = False


def _positive_int(field: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise RequestError(Msg("bad_paging", field=field, value=value)) from None
    if number < 1:
        raise RequestError(Msg("bad_paging", field=field, value=value))
    return number


def parse_list_query(
    pairs: Iterable[tuple[str, str]], *, max_page_size: int = MAX_PAGE_SIZE, over_max: str = "cap"
) -> ListQuery:
    """Decode ``sp.*``, ``fields`` and ``filter.*`` parameters (raises :class:`RequestError`).

    A ``sp.pageSize`` above ``max_page_size`` is capped (``over_max="cap"``) or refused (``"error"``).
    """
    query = ListQuery()
    ops: dict[str, str] = {}
    values: dict[str, list[tuple[int, int, str]]] = {}
    order = 0
    for key, value in pairs:
        order += 1
        if key == "sp.page":
            query.page = _positive_int(key, value)
        elif key == "sp.pageSize":
            size = _positive_int(key, value)
            if size > max_page_size and over_max == "error":
                raise RequestError(Msg("page_size_too_big", max=max_page_size))
            query.page_size = min(size, max_page_size)
        elif key == "sp.sort":
            field, _, direction = value.partition("|")
            query.sort_field = field.strip() or None
            query.sort_desc = direction.strip().lower() == "desc"
        elif key == "fields":
            names = [f.strip() for f in value.split(",") if f.strip()]
            query.fields = (query.fields or []) + names
        elif key.startswith("filter."):
            rest = key[7:]
            if rest.endswith(".op"):
                ops[rest[:-3]] = value.strip().upper()
                continue
            match = _VAL.match(rest)
            if match:
                field, index = match.group(1), match.group(2)
                values.setdefault(field, []).append((int(index) if index else 10**9, order, value))
            else:
                values.setdefault(rest, []).append((10**9, order, value))
    for field in dict.fromkeys([*ops, *values]):
        op = ops.get(field, "EQUAL")
        if op not in FILTER_OPS:
            raise RequestError(Msg("bad_filter_op", field=field, op=op))
        field_values = [v for _, _, v in sorted(values.get(field, []))]
        if not field_values and op not in ("EMPTY", "NOT_EMPTY"):
            raise RequestError(Msg("filter_missing_value", field=field))
        query.filters.append(Filter(field, op, field_values))
    return query


def sort_key_for(field: str) -> Any:
    """A key function sorting records by ``field`` (missing values first)."""

    def key(record: dict[str, Any]) -> tuple[int, Any]:
        comparable = _comparable(field_value(record, field))
        if comparable is None:
            return (-1, "")
        kind, value = comparable
        if kind == 0 and isinstance(value, datetime):
            return (0, value.timestamp())
        if kind == 1:
            return (1, value)
        return (2, str(value))

    return key
