"""Ledger queries behind the operator pages: filtered, permission-scoped, keyset-paged lists.

Two lists share one shape: **Sync Status** reads ``sync.documents`` (iSeller to Accurate) and
**Webhook Log** reads ``sync.webhook_events`` (Accurate to iSeller). Both are shown newest first and
paged by keyset on ``(date, id)``, never by OFFSET, so page 2,000 of a million rows costs what page 1
costs. The total is counted up to :data:`COUNT_CAP` only, which bounds every answer's cost whatever
the table's size (the page then says "100,000+").

Everything here is plain SQL over a psycopg connection: no Airflow import, so it is unit-testable
against any PostgreSQL holding the ledger.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

#: Totals are counted up to this many rows; beyond, the page shows "COUNT_CAP+".
COUNT_CAP = 100_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: The status filter value meaning "every status an operator must act on".
ATTENTION = "attention"


@dataclass(frozen=True)
class TableSpec:
    """What differs between the two lists."""

    kind: str  # "documents" | "webhook_events" (API and URL name)
    table: str  # sync.<table>
    date_column: str  # newest first on (date_column, id)
    type_column: str  # data_type | event_type
    columns: tuple[str, ...]  # what a row carries to the page
    statuses: tuple[str, ...]  # every status, in the order the filter lists them
    attention: tuple[str, ...]  # statuses that need an operator (the default filter)
    refreshable: tuple[str, ...]  # statuses the Refresh action accepts
    open_statuses: tuple[str, ...]  # statuses counted in the summary chips
    search_columns: tuple[str, ...]
    outlet_column: str | None = None
    #: Documents: a run is responsible for the rows linked in sync.run_documents. Events: the
    #: run that last touched them.
    run_link_table: str | None = None

    @staticmethod
    def owned(row: dict[str, Any]) -> bool:
        """Whether an Airflow task has handled the row (a run to clear for its Refresh)."""
        return bool(row.get("dag_id") and row.get("run_id"))


#: Last columns of both lists: when the row last changed and the task instance that last handled it.
_OWNER_COLUMNS = ("updated_at", "dag_id", "run_id", "task_id", "map_index", "try_number")

DOCUMENTS = TableSpec(
    kind="documents",
    table="documents",
    date_column="source_date",
    type_column="data_type",
    columns=(
        "id",
        "data_type",
        "source_id",
        "source_number",
        "outlet_id",
        "source_date",
        "target_module",
        "target_number",
        "status",
        "reason",
        "transient",
        "attempts",
        "last_attempt_at",
        "synced_at",
        *_OWNER_COLUMNS,
    ),
    statuses=("failed", "blocked", "pending", "posting", "synced", "skipped"),
    attention=("failed", "blocked"),
    # pending/posting too: a document left so by a task that crashed is re-attempted by clearing it
    refreshable=("failed", "blocked", "pending", "posting"),
    open_statuses=("failed", "blocked", "pending", "posting"),
    search_columns=("source_number", "target_number", "source_id"),
    outlet_column="outlet_id",
    run_link_table="run_documents",
)

WEBHOOK_EVENTS = TableSpec(
    kind="webhook_events",
    table="webhook_events",
    date_column="received_at",
    type_column="event_type",
    columns=(
        "id",
        "uuid",
        "event_type",
        "action",
        "accurate_number",
        "received_at",
        "event_timestamp",
        "status",
        "reason",
        "attempts",
        "last_attempt_at",
        "processed_at",
        "iseller_reference",
        *_OWNER_COLUMNS,
    ),
    statuses=("failed", "pending", "processing", "done", "ignored"),
    attention=("failed",),
    refreshable=("failed", "pending", "processing"),
    open_statuses=("failed", "pending", "processing"),
    search_columns=("accurate_number", "iseller_reference", "uuid"),
)

SPECS = {spec.kind: spec for spec in (DOCUMENTS, WEBHOOK_EVENTS)}


@dataclass(frozen=True)
class Scope:
    """Which rows the signed-in user may see: those of the DAGs whose task instances they can read.

    ``dag_ids=None`` means every DAG (no restriction). ``unowned`` admits rows no task has touched
    yet (no ``dag_id``), e.g. a webhook event waiting for its first run.
    """

    dag_ids: frozenset[str] | None = None
    unowned: bool = True


@dataclass(frozen=True)
class ListFilter:
    """The filters of a list, as chosen on the page (all optional)."""

    status: str | None = None  # one status, ATTENTION, or None for all
    type: str | None = None  # data_type / event_type
    outlet_id: str | None = None
    date_from: datetime | None = None  # inclusive
    date_to: datetime | None = None  # exclusive
    search: str | None = None  # part of a source / Accurate number
    dag_id: str | None = None  # with run_id: the rows of one DAG run
    run_id: str | None = None
    ids: tuple[int, ...] = ()


@dataclass
class Page:
    """One page of a list and how to reach its neighbours."""

    rows: list[dict[str, Any]]
    newer: str | None = None  # cursor of the previous (newer) page, if any
    older: str | None = None  # cursor of the next (older) page, if any
    total: int = 0
    total_capped: bool = False
    counts: dict[str, int] = field(default_factory=dict)


# -- cursors ----------------------------------------------------------------------------------------
def encode_cursor(when: datetime, row_id: int) -> str:
    """Opaque, URL-safe keyset position of a row."""
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position encoded by :func:`encode_cursor`; ValueError when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        when, _, row_id = text.rpartition("|")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a page cursor: {cursor!r}") from exc


# -- query building ---------------------------------------------------------------------------------
def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(
    spec: TableSpec, flt: ListFilter, scope: Scope, *, with_status: bool = True
) -> tuple[sql.Composable, list[Any]]:
    """WHERE clause (alias ``d``) and its parameters."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    col = lambda name: sql.SQL("d.") + sql.Identifier(name)  # noqa: E731 - tiny local helper
    if scope.dag_ids is not None:
        parts.append(sql.SQL("(d.dag_id = ANY(%s) OR (d.dag_id IS NULL AND %s))"))
        params += [sorted(scope.dag_ids), scope.unowned]
    if with_status and flt.status:
        statuses = list(spec.attention) if flt.status == ATTENTION else [flt.status]
        if flt.status == "pending" and "posting" in spec.statuses:
            statuses.append("posting")  # "posting" is pending with a call in flight
        parts.append(sql.SQL("d.status = ANY(%s)"))
        params.append(statuses)
    if flt.type:
        parts.append(col(spec.type_column) + sql.SQL(" = %s"))
        params.append(flt.type)
    if flt.outlet_id and spec.outlet_column:
        parts.append(col(spec.outlet_column) + sql.SQL(" = %s"))
        params.append(flt.outlet_id)
    if flt.date_from:
        parts.append(col(spec.date_column) + sql.SQL(" >= %s"))
        params.append(flt.date_from)
    if flt.date_to:
        parts.append(col(spec.date_column) + sql.SQL(" < %s"))
        params.append(flt.date_to)
    if flt.search:
        # The same expression as the trigram index of migration 0006 (so the index serves it).
        parts.append(sql.SQL("(") + search_expression(spec) + sql.SQL(") ILIKE %s"))
        params.append(_like(flt.search.strip()))
    if flt.dag_id and flt.run_id:
        if spec.run_link_table:
            parts.append(
                sql.SQL(
                    "EXISTS (SELECT 1 FROM sync.{} r WHERE r.document_id = d.id"
                    " AND r.dag_id = %s AND r.run_id = %s)"
                ).format(sql.Identifier(spec.run_link_table))
            )
        else:
            parts.append(sql.SQL("d.dag_id = %s AND d.run_id = %s"))
        params += [flt.dag_id, flt.run_id]
    if flt.ids:
        parts.append(sql.SQL("d.id = ANY(%s)"))
        params.append(list(flt.ids))
    if not parts:
        return sql.SQL("TRUE"), params
    return sql.SQL(" AND ").join(parts), params


def search_expression(spec: TableSpec) -> sql.Composable:
    """The searched text of a row: its numbers, space-separated."""
    return sql.SQL(" || ' ' || ").join(
        sql.SQL("coalesce(d.{}, '')").format(sql.Identifier(c)) for c in spec.search_columns
    )


def _select(spec: TableSpec) -> sql.Composable:
    return sql.SQL("SELECT {} FROM sync.{} d").format(
        sql.SQL(", ").join(sql.SQL("d.") + sql.Identifier(c) for c in spec.columns),
        sql.Identifier(spec.table),
    )


def list_page(
    conn: psycopg.Connection[Any],
    spec: TableSpec,
    flt: ListFilter,
    scope: Scope,
    *,
    size: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    before: str | None = None,
    with_totals: bool = True,
) -> Page:
    """One page of rows, newest first: after ``after`` (older rows) or before ``before`` (newer)."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    where, params = _where(spec, flt, scope)
    date = sql.SQL("d.") + sql.Identifier(spec.date_column)
    key = sql.SQL("({}, d.id)").format(date)
    clauses = [where]
    key_params: list[Any] = []
    newest_first = True
    if after:
        clauses.append(key + sql.SQL(" < (%s, %s)"))
        key_params += list(decode_cursor(after))
    elif before:
        clauses.append(key + sql.SQL(" > (%s, %s)"))
        key_params += list(decode_cursor(before))
        newest_first = False
    order = sql.SQL("DESC") if newest_first else sql.SQL("ASC")
    query = sql.SQL("{} WHERE {} ORDER BY {} {}, d.id {} LIMIT %s").format(
        _select(spec), sql.SQL(" AND ").join(clauses), date, order, order
    )
    rows = conn.execute(query, [*params, *key_params, size + 1]).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    if not newest_first:
        rows.reverse()
    page = Page(rows=[dict(r) for r in rows])
    if rows:
        first, last = rows[0], rows[-1]
        if newest_first:
            page.older = encode_cursor(last[spec.date_column], last["id"]) if more else None
            has_newer = bool(after) and _exists(conn, spec, where, params, key, ">", first)
            page.newer = encode_cursor(first[spec.date_column], first["id"]) if has_newer else None
        else:
            page.newer = encode_cursor(first[spec.date_column], first["id"]) if more else None
            has_older = _exists(conn, spec, where, params, key, "<", last)
            page.older = encode_cursor(last[spec.date_column], last["id"]) if has_older else None
    if with_totals:
        page.total, page.total_capped = count(conn, spec, flt, scope)
        page.counts = status_counts(conn, spec, flt, scope)
    return page


def _exists(
    conn: psycopg.Connection[Any],
    spec: TableSpec,
    where: sql.Composable,
    params: list[Any],
    key: sql.Composable,
    op: str,
    row: dict[str, Any],
) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM sync.{} d WHERE {} AND {} {} (%s, %s))").format(
        sql.Identifier(spec.table), where, key, sql.SQL(op)
    )
    found = conn.execute(query, [*params, row[spec.date_column], row["id"]]).fetchone()
    return bool(found and next(iter(found.values())))


def count(
    conn: psycopg.Connection[Any], spec: TableSpec, flt: ListFilter, scope: Scope, cap: int = COUNT_CAP
) -> tuple[int, bool]:
    """How many rows match, counted up to ``cap``; ``(n, True)`` when there are more."""
    where, params = _where(spec, flt, scope)
    query = sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM sync.{} d WHERE {} LIMIT %s) s").format(
        sql.Identifier(spec.table), where
    )
    found = conn.execute(query, [*params, cap + 1]).fetchone()
    n = int(next(iter(found.values()))) if found else 0
    return (cap, True) if n > cap else (n, False)


def status_counts(
    conn: psycopg.Connection[Any], spec: TableSpec, flt: ListFilter, scope: Scope
) -> dict[str, int]:
    """Rows per open status (failed, blocked, pending...) under the other filters.

    Only the statuses that need attention are counted: they are few, and the status index finds
    them without reading the synced rows.
    """
    where, params = _where(spec, replace(flt, status=None), scope, with_status=False)
    query = sql.SQL(
        "SELECT d.status, count(*) AS n FROM sync.{} d WHERE {} AND d.status = ANY(%s) GROUP BY d.status"
    ).format(sql.Identifier(spec.table), where)
    rows = conn.execute(query, [*params, list(spec.open_statuses)]).fetchall()
    counts = {status: 0 for status in spec.open_statuses}
    for row in rows:
        values = list(row.values())
        counts[str(values[0])] = int(values[1])
    if "posting" in counts:  # shown together with pending
        counts["pending"] = counts.get("pending", 0) + counts.pop("posting")
    return counts


def distinct_values(conn: psycopg.Connection[Any], spec: TableSpec, column: str) -> list[str]:
    """Distinct non-null values of an indexed column, by a skip scan (one index probe per value)."""
    if column not in (spec.type_column, spec.outlet_column):
        raise ValueError(f"{column} is not a filter column of {spec.table}")
    ident = sql.Identifier(column)
    table = sql.Identifier(spec.table)
    query = sql.SQL(
        "WITH RECURSIVE v(x) AS ("
        " (SELECT {c} FROM sync.{t} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT {c} FROM sync.{t} WHERE {c} > v.x ORDER BY {c} LIMIT 1) FROM v WHERE v.x IS NOT NULL"
        ") SELECT x FROM v WHERE x IS NOT NULL"
    ).format(c=ident, t=table)
    return [str(next(iter(row.values()))) for row in conn.execute(query).fetchall()]


def rows_by_id(
    conn: psycopg.Connection[Any], spec: TableSpec, ids: Sequence[int], scope: Scope
) -> list[dict[str, Any]]:
    """The rows with these ids that ``scope`` lets the user see."""
    if not ids:
        return []
    page = list_page(
        conn, spec, ListFilter(ids=tuple(ids)), scope, size=min(len(ids), MAX_PAGE_SIZE), with_totals=False
    )
    return page.rows
