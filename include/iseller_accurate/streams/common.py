"""What the iSeller-to-Accurate streams share: reading times and lines, dates for Accurate, outlets.

Sales, transfers and stock opname each read hostile iSeller records (see :mod:`checks`) and name
outlets the same way; these helpers are theirs. Nothing here knows one stream's documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from include.iseller_accurate.checks import FieldProblem, Reader, kind_of, read_time, to_decimal
from include.iseller_accurate.settings import OutletMapping, SyncSettings
from include.iseller_accurate.times import format_accurate_date

if TYPE_CHECKING:
    from include.iseller_accurate.ledger import Document
    from include.iseller_accurate.pipeline import Stream

#: Where an outlet's Accurate mapping lives in the settings Variable.
SETTINGS_PATH = "iseller_accurate_settings.outlets"
#: How a reason names a product's iSeller buying price used as an adjustment's unit cost.
UNIT_COST_FIELD = "unit cost (the product's buying price in iSeller)"


def readable_records(stream: Stream, records: Iterable[Any]) -> tuple[list[dict[str, Any]], list[Document]]:
    """The records a stream can map (objects with a usable key), and a failed document for each of
    the others ("it is not an iSeller transfer with a transfer_id")."""
    readable: list[dict[str, Any]] = []
    failed: list[Document] = []
    problem = f"it is not an iSeller {stream.record_name} with a {stream.key_field}"
    for record in records:
        if isinstance(record, dict) and not stream.record_key(record).startswith("unreadable:"):
            readable.append(record)
        else:
            failed.append(stream.unreadable(record, problem))
    return readable, failed


# -- times ---------------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime | None:
    """iSeller times: ISO-8601, offset-less meaning UTC. Returns an aware UTC datetime.

    Raises :class:`FieldProblem` (a ValueError) for anything else; mapping reads its times through
    :class:`checks.Reader` first, so that the reason names the document and the field.
    """
    return read_time(value, "time")


def first_time(record: Any, names: Sequence[str]) -> datetime:
    """The first readable time among fields ``names`` of a record (one that failed its check may
    hold anything); now when none is readable."""
    if isinstance(record, dict):
        for name in names:
            try:
                moment = read_time(record.get(name), name)
            except FieldProblem:
                continue
            if moment is not None:
                return moment
    return datetime.now(UTC)


def accurate_date(moment: datetime, settings: SyncSettings) -> str:
    """Accurate's ``dd/MM/yyyy`` for the shop's local date of ``moment``."""
    return format_accurate_date(moment, settings.tz)


# -- values --------------------------------------------------------------------------------------------
def decimal_of(value: Any) -> Decimal:
    """A quantity or amount as Decimal (None and "" are 0); raises :class:`FieldProblem` (a
    ValueError) for anything that is not a finite number. Mapping checks its fields first."""
    return to_decimal(value, "amount")


def safe_decimal(value: Any) -> Decimal | None:
    """:func:`decimal_of`, None for a value that is not a number."""
    try:
        return decimal_of(value)
    except ValueError:
        return None


def safe_identifier(record: dict[str, Any], name: str) -> str:
    """Identifying text ``name`` of a record, "" when it is missing or unusable (to name the record
    in a reason, whatever else is wrong with it)."""
    try:
        return Reader("").text(record.get(name), name, identifier=True)
    except FieldProblem:
        return ""


def source_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A record without the fields the extract attached (``_refunds``, ``_unit_costs``...)."""
    return {k: v for k, v in record.items() if not str(k).startswith("_")}


# -- lines ---------------------------------------------------------------------------------------------
def line_list(reader: Reader, value: Any, key: str) -> list[Any]:
    """A record's lines (``value`` of field ``key``; missing means none). Raises :class:`FieldProblem`
    when they are not a list."""
    lines = value or []
    if not isinstance(lines, list):
        raise reader.fail(key, f"{kind_of(lines)} where a list of lines is expected")
    return lines


def read_line(reader: Reader, line: Any, position: int, key: str, names: Sequence[str]) -> dict[str, Any]:
    """A copy of line ``position`` (from 1) with its SKU and the descriptive texts ``names`` checked;
    the reader is placed at the line for what the caller reads next."""
    reader.at(f"line {position}")
    if not isinstance(line, dict):
        raise reader.fail(key, f"{kind_of(line)} where a line is expected")
    clean = dict(line)
    clean["sku"] = reader.text(line.get("sku"), "sku", identifier=True)
    for name in names:
        clean[name] = reader.text(line.get(name), name)
    return clean


def no_sku_reason(position: int, name: Any) -> str:
    """The reason for a line whose product has no SKU."""
    return (
        f"line {position} ({name}) has no SKU in iSeller; set the product's SKU in iSeller to its"
        " Accurate item number, then refresh"
    )


# -- outlets and products ------------------------------------------------------------------------------
def outlet_label(outlet_id: str | None, code: str | None, mapping: OutletMapping | None) -> str:
    """How an operator names an outlet: its name in the settings, else its iSeller code or id."""
    return (mapping.name if mapping else None) or code or outlet_id or "unknown outlet"


def unmapped_reason(outlet_id: str | None, code: str | None) -> str:
    """The reason for an outlet that has no Accurate mapping in the settings."""
    return (
        f"outlet {code or outlet_id} ({outlet_id}) has no Accurate mapping; add its branch and warehouse"
        f" under {SETTINGS_PATH}.{outlet_id} in the settings Variable, then refresh"
    )


def unit_costs(iseller: Any, skus: Iterable[str]) -> dict[str, Any]:
    """iSeller buying price of each SKU among ``skus`` that has one (for adjustment unit costs)."""
    wanted = {sku for sku in skus if sku}
    costs: dict[str, Any] = {}  # Decimal, or the unreadable value (the document fails naming it)
    if not wanted:
        return costs
    for product in iseller.get_products():
        if not isinstance(product, dict):
            continue
        sku = str(product.get("sku") or "").strip()
        if sku not in wanted:
            continue
        cost = safe_decimal(product.get("buying_price"))
        if cost is None:
            costs[sku] = product.get("buying_price")  # unreadable: the document fails, naming it
        elif cost > 0:
            costs[sku] = cost
    return costs


def attach_unit_costs(iseller: Any, records: list[dict[str, Any]], lines_of: Any) -> None:
    """Set ``_unit_costs`` of each record: the buying prices of its lines' SKUs (one product read)."""
    costs = unit_costs(iseller, (str(line.get("sku") or "") for r in records for line in lines_of(r)))
    for record in records:
        skus = {str(line.get("sku") or "") for line in lines_of(record)}
        record["_unit_costs"] = {sku: cost for sku, cost in costs.items() if sku in skus}
