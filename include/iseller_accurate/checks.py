"""Reading hostile source values one field at a time.

iSeller data can hold anything: a quantity ``"abc"`` or ``"NaN"``, a date ``31/12/2026``, a list
where a name should be, a product name with a NUL character (which PostgreSQL cannot store in text
or ``jsonb``), a quantity of 10^12. Mapping reads every value it uses through these functions. A value
that cannot be used raises :class:`FieldProblem` naming the field and what is wrong; the stream turns
it into a failed document whose reason names the document too, so one bad value fails one document
and never the batch.

Text is treated in two ways:

- descriptive text (product names, customer names, notes) is *cleaned*: NUL characters are removed,
  other C0 control characters except tab and newline become a space, and unpaired surrogates
  (invalid Unicode) become U+FFFD. What was cleaned is recorded on the document.
- identifying text (SKUs, order references, customer numbers: values Accurate looks things up by or
  that become document numbers) is never changed: a control character there fails the document.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from include.iseller_accurate.times import parse_iseller_datetime

#: Largest amount Accurate stores (999 billion) and its decimal places.
ACCURATE_MAX_AMOUNT = Decimal("999999999999")
ACCURATE_PLACES = 6
#: Dates outside this range are refused (Accurate's ``dd/MM/yyyy`` and the shop's time zone must
#: hold them; a year 1 or 9999 is a data error, never a sale).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: Longest text read from a single field (a 1 MB "product name" is refused, not stored).
MAX_TEXT = 10_000

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Identifiers take no control character at all (tab and line breaks included).
_NOT_IDENTIFIER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
DEFAULT_FIX = "correct it in iSeller, then refresh"


class FieldProblem(ValueError):
    """A source value that cannot be used; ``str()`` is ``field <name>: <problem>; <what to do>``."""

    def __init__(self, field: str, problem: str, fix: str = DEFAULT_FIX, where: str = "") -> None:
        self.field, self.problem, self.fix, self.where = field, problem, fix, where
        prefix = f"{where} " if where else ""
        super().__init__(f"{prefix}field {field}: {problem}; {fix}")

    def located(self, where: str) -> FieldProblem:
        """The same problem placed (``line 2``, ``payment 1``), unless it already is."""
        if self.where or not where:
            return self
        return FieldProblem(self.field, self.problem, self.fix, where)


def kind_of(value: Any) -> str:
    """How a value's type is named in a reason."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, int | float | Decimal):
        return "a number"
    return f"a {type(value).__name__}"


def shown(value: Any, limit: int = 40) -> str:
    """A value as quoted in a reason: short, and with control characters made visible."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clean_text(text: str) -> tuple[str, str | None]:
    """Text PostgreSQL and Accurate can hold, and a note of what was changed (None: nothing)."""
    if not _UNSTORABLE.search(text):
        return text, None
    notes = []
    if "\x00" in text:
        notes.append("NUL character removed")
        text = text.replace("\x00", "")
    if _CONTROL.search(text):
        notes.append("control characters replaced by spaces")
        text = _CONTROL.sub(" ", text)
    if _SURROGATE.search(text):
        notes.append("invalid Unicode replaced by \ufffd")
        text = _SURROGATE.sub("\ufffd", text)
    return text, ", ".join(notes)


class Reader:
    """Reads the fields of one document; collects what was cleaned (``cleaned``) on the way."""

    def __init__(self, label: str) -> None:
        self.label = label
        #: Where in the document the fields being read are (``line 2``); part of every reason.
        self.where = ""
        self.cleaned: list[str] = []

    def at(self, where: str) -> Reader:
        """Read the next fields at ``where`` (``line 2``, ``payment 1``, "" for the header)."""
        self.where = where
        return self

    def _located(self, problem: FieldProblem) -> FieldProblem:
        return problem.located(self.where)

    # -- text ---------------------------------------------------------------------------------
    def text(self, value: Any, field: str, *, identifier: bool = False, required: bool = False) -> str:
        """A text field (None is ""). Identifiers with control characters are refused, other text
        is cleaned and the cleaning recorded."""
        try:
            return self._text(value, field, identifier=identifier, required=required)
        except FieldProblem as problem:
            raise self._located(problem) from None

    def _text(self, value: Any, field: str, *, identifier: bool, required: bool) -> str:
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        elif isinstance(value, int | Decimal) and not isinstance(value, bool):
            text = str(value)
        else:
            raise FieldProblem(field, f"{kind_of(value)} where text is expected ({shown(value)})")
        if len(text) > MAX_TEXT:
            raise FieldProblem(field, f"{len(text)} characters long (at most {MAX_TEXT} are read)")
        if identifier:
            text = text.strip()
            if _NOT_IDENTIFIER.search(text):
                raise FieldProblem(
                    field,
                    f"{shown(text)} holds control characters (NUL, line breaks...) or invalid Unicode,"
                    " which Accurate cannot look up",
                    "remove them in iSeller, then refresh",
                )
        else:
            text, note = clean_text(text)
            if note:
                where = f"{self.where} " if self.where else ""
                self.cleaned.append(f"{self.label}: {where}field {field}: {note}")
        if required and not text:
            raise FieldProblem(field, "is empty")
        return text

    # -- numbers ------------------------------------------------------------------------------
    def number(
        self,
        value: Any,
        field: str,
        *,
        negative: bool = False,
        maximum: Decimal = ACCURATE_MAX_AMOUNT,
        limit_name: str | None = None,
        places: bool = False,
    ) -> Decimal:
        """A finite decimal (None and "" are 0) within Accurate's range.

        ``negative`` allows values below 0; ``maximum`` (named ``limit_name`` in the reason when it
        is a settings limit) caps the absolute value; ``places`` refuses more than Accurate's 6
        decimal places (quantities: Accurate would round the stock; amounts are left to Accurate's
        rounding, a millionth of a rupiah).
        """
        try:
            return self._number(value, field, negative, maximum, limit_name, places)
        except FieldProblem as problem:
            raise self._located(problem) from None

    def _number(
        self, value: Any, field: str, negative: bool, maximum: Decimal, limit_name: str | None, places: bool
    ) -> Decimal:
        result = to_decimal(value, field)
        if result < 0 and not negative:
            raise FieldProblem(field, f"{result} is negative")
        if result.copy_abs() > maximum:
            where = (
                f"the limit {maximum} ({limit_name})"
                if limit_name
                else f"{maximum}, the most Accurate stores"
            )
            fix = (
                f"correct it in iSeller, or raise {limit_name} in the settings Variable if it is real;"
                " then refresh"
                if limit_name
                else DEFAULT_FIX
            )
            raise FieldProblem(field, f"{_plain(result)} is above {where}", fix)
        if places:
            check_places(result, field)
        return result

    def quantity(self, value: Any, field: str, limits: Any) -> Decimal:
        """A line quantity: more than 0, within ``limits`` (the settings' ``limits``)."""
        try:
            return self._quantity(value, field, limits)
        except FieldProblem as problem:
            raise self._located(problem) from None

    def _quantity(self, value: Any, field: str, limits: Any) -> Decimal:
        quantity = self.number(
            value,
            field,
            maximum=limits.max_line_quantity,
            limit_name="limits.max_line_quantity",
            places=False,
        )
        if quantity == 0:
            raise FieldProblem(field, "is 0")
        if quantity < limits.min_line_quantity:
            raise FieldProblem(
                field,
                f"{_plain(quantity)} is below the smallest quantity {limits.min_line_quantity}"
                " (limits.min_line_quantity)",
                "correct it in iSeller, or lower limits.min_line_quantity in the settings Variable;"
                " then refresh",
            )
        check_places(quantity, field)
        return quantity

    # -- times --------------------------------------------------------------------------------
    def moment(self, value: Any, field: str) -> datetime | None:
        """An ISO-8601 time (offset-less means UTC) between 2000 and 2099; None when absent."""
        try:
            return read_time(value, field)
        except FieldProblem as problem:
            raise self._located(problem) from None

    def amount_limit(self, amount: Decimal, field: str, limits: Any, key: str, what: str) -> None:
        """Refuse a computed amount (a line amount, a document total) above the settings limit
        ``limits.<key>``."""
        maximum = getattr(limits, key)
        if amount > maximum:
            raise self._located(
                FieldProblem(
                    field,
                    f"{what} {_plain(amount)} is above the limit {maximum} (limits.{key})",
                    f"correct it in iSeller, or raise limits.{key} in the settings Variable if it is real;"
                    " then refresh",
                )
            )

    def fail(self, field: str, problem: str, fix: str = DEFAULT_FIX) -> FieldProblem:
        """A problem at the current place, to raise."""
        return FieldProblem(field, problem, fix, self.where)


def check_places(value: Decimal, field: str) -> None:
    """Refuse a value (at most Accurate's maximum) with more decimal places than Accurate keeps."""
    if value != value.quantize(Decimal(1).scaleb(-ACCURATE_PLACES)):
        raise FieldProblem(
            field,
            f"{_plain(value)} has more than {ACCURATE_PLACES} decimal places"
            f" (Accurate keeps {ACCURATE_PLACES})",
        )


def to_decimal(value: Any, field: str) -> Decimal:
    """Any finite number (int, Decimal, finite float, numeric text) as Decimal; None and "" are 0."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise FieldProblem(field, f"{kind_of(value)} where a number is expected ({shown(value)})")
    if isinstance(value, str):
        text = value.strip()
        if text.lower().lstrip("+-") in ("nan", "snan", "inf", "infinity"):
            raise FieldProblem(field, f"{shown(value)} is not a finite number")
        if not _NUMBER.match(text):
            raise FieldProblem(field, f"{shown(value)} is not a number (digits and a decimal point)")
        value = text
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise FieldProblem(field, f"{shown(value)} is not a number") from None
    if not result.is_finite():
        raise FieldProblem(field, f"{shown(value)} is not a finite number")
    return result


def read_time(value: Any, field: str) -> datetime | None:
    """An iSeller time: ISO-8601, offset-less meaning UTC, as an aware UTC datetime (parsed by
    :func:`times.parse_iseller_datetime`); a value that is not one raises :class:`FieldProblem`."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) > 64:
        raise FieldProblem(field, f"{shown(value)} is not an ISO-8601 time")
    if not isinstance(value, str | datetime):
        raise FieldProblem(field, f"{kind_of(value)} where a time is expected ({shown(value)})")
    try:
        parsed = parse_iseller_datetime(value)
    except OverflowError:
        raise FieldProblem(field, f"{shown(value)} is out of range (2000 to 2099)") from None
    except ValueError:
        raise FieldProblem(
            field, f"{shown(value)} is not an ISO-8601 time such as 2026-12-31T10:00:00"
        ) from None
    if not EARLIEST <= parsed < LATEST:
        raise FieldProblem(field, f"{shown(value)} is out of range (2000 to 2099)")
    return parsed


def storable(value: Any, path: str, depth: int = 0, *, strict: bool = True) -> tuple[Any, list[str]]:
    """A copy of a JSON-like value PostgreSQL can store, and the paths whose text was changed.

    Text is cleaned (see :func:`clean_text`), keys too; values nested deeper than 32 levels are
    replaced by a note. A non-finite number raises :class:`FieldProblem` when ``strict`` (a payload),
    else it is kept as text (a source record, kept for the operator).
    """
    changed: list[str] = []
    if isinstance(value, str):
        text, note = clean_text(value)
        if note:
            changed.append(path)
        return text, changed
    if depth > 32:
        return "(nested too deep: left out)", [path]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            name, note = clean_text(str(key))
            if note:
                changed.append(f"{path}.{name}")
            result[name], inner = storable(item, f"{path}.{name}", depth + 1, strict=strict)
            changed += inner
        return result, changed
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            cleaned, inner = storable(item, f"{path}[{index}]", depth + 1, strict=strict)
            items.append(cleaned)
            changed += inner
        return items, changed
    if (isinstance(value, Decimal) and not value.is_finite()) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        if strict:
            raise FieldProblem(path, f"{value} is not a finite number")
        return str(value), [path]
    if not isinstance(value, str | int | float | Decimal | bool | type(None) | datetime | date):
        if strict:
            raise FieldProblem(path, f"{kind_of(value)} cannot be sent to Accurate")
        return repr(value)[:200], [path]
    return value, changed


def _plain(value: Decimal) -> str:
    """A Decimal as written by a person (no exponent unless it is huge)."""
    if abs(value.adjusted()) > 30:
        return f"{value:E}"
    return f"{value:f}"
