"""Reconciliation results in the ledger database (migration 0010), and the re-post of a deleted document.

A day checked again replaces its row and its differences in one transaction; other days stay, so
the grid shows history. Stock checks are kept per outlet and calendar day of the check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from include.iseller_accurate.kinds import number_field
from include.iseller_accurate.ledger import Ledger, LedgerRow, RunRef
from include.iseller_accurate.reconciliation.sales import DayResult, LedgerInfo
from include.iseller_accurate.reconciliation.stock import StockResult
from include.iseller_accurate.status import OPEN, sql_list

#: What a re-posted document's ledger row says until the load posts it.
REPOST_REASON = "re-post requested from Reconciliation: deleted in Accurate, checked gone by number"


def save_days(conn: Any, results: Iterable[DayResult], run: RunRef | None) -> None:
    """Store the outcome of each outlet and day (replacing an earlier check of the same day)."""
    dag_id, run_id = (run.dag_id, run.run_id) if run else (None, None)
    with conn.transaction():
        for result in results:
            conn.execute(
                "DELETE FROM sync.reconciliation_differences WHERE outlet_id = %s AND day = %s",
                (result.outlet_id, result.day),
            )
            conn.execute(
                "INSERT INTO sync.reconciliation_days (outlet_id, day, status, differences,"
                " difference_amount, iseller, accurate, reason, checked_at, dag_id, run_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, now(), %s, %s)"
                " ON CONFLICT (outlet_id, day) DO UPDATE SET status = EXCLUDED.status,"
                " differences = EXCLUDED.differences, difference_amount = EXCLUDED.difference_amount,"
                " iseller = EXCLUDED.iseller, accurate = EXCLUDED.accurate, reason = NULL,"
                " checked_at = now(), dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id,"
                # a day that turned green may alert again if it turns red later
                " alerted_at = CASE WHEN EXCLUDED.status = 'green' THEN NULL"
                " ELSE sync.reconciliation_days.alerted_at END",
                (
                    result.outlet_id,
                    result.day,
                    result.status,
                    len(result.differences),
                    result.difference_amount,
                    _json(result.iseller),
                    _json(result.accurate),
                    dag_id,
                    run_id,
                ),
            )
            if not result.differences:
                continue
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO sync.reconciliation_differences (outlet_id, day, class, data_type,"
                    " target_module, number, source_number, source_id, document_id, accurate_id,"
                    " expected_amount, accurate_amount, amount, detail, fix)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
                    " (SELECT id FROM sync.documents WHERE id = %s), %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            d.outlet_id,
                            d.day,
                            d.cls,
                            d.data_type,
                            d.module,
                            d.number,
                            d.source_number,
                            d.source_id,
                            d.document_id,
                            d.accurate_id,
                            d.expected_amount,
                            d.accurate_amount,
                            d.amount,
                            d.detail,
                            d.fix,
                        )
                        for d in result.differences
                    ],
                )


def save_error(conn: Any, outlet_id: str, day: date, reason: str, run: RunRef | None) -> None:
    """A day that could not be checked (a side could not be read): shown with the reason."""
    conn.execute(
        "INSERT INTO sync.reconciliation_days (outlet_id, day, status, reason, checked_at, dag_id, run_id)"
        " VALUES (%s, %s, 'error', %s, now(), %s, %s) ON CONFLICT (outlet_id, day) DO UPDATE SET"
        " status = 'error', reason = EXCLUDED.reason, checked_at = now(), dag_id = EXCLUDED.dag_id,"
        " run_id = EXCLUDED.run_id",
        (outlet_id, day, reason, run.dag_id if run else None, run.run_id if run else None),
    )


def save_stock(conn: Any, results: Iterable[StockResult], checked_on: date) -> None:
    """Store one stock check per outlet (a check the same day replaces the earlier one)."""
    with conn.transaction():
        for result in results:
            conn.execute(
                "DELETE FROM sync.reconciliation_stock_differences WHERE outlet_id = %s AND checked_on = %s",
                (result.outlet_id, checked_on),
            )
            conn.execute(
                "INSERT INTO sync.reconciliation_stock_checks (outlet_id, checked_on, warehouse,"
                " items_checked, differences, unexplained, checked_at) VALUES (%s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (outlet_id, checked_on) DO UPDATE SET warehouse = EXCLUDED.warehouse,"
                " items_checked = EXCLUDED.items_checked, differences = EXCLUDED.differences,"
                " unexplained = EXCLUDED.unexplained, checked_at = now()",
                (
                    result.outlet_id,
                    checked_on,
                    result.warehouse,
                    result.items_checked,
                    len(result.differences),
                    result.unexplained,
                ),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO sync.reconciliation_stock_differences (outlet_id, checked_on, item_no,"
                    " warehouse, iseller_qty, accurate_qty, explained_qty, explanation)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            result.outlet_id,
                            checked_on,
                            d.item_no,
                            d.warehouse,
                            d.iseller_qty,
                            d.accurate_qty,
                            d.explained_qty,
                            d.explanation,
                        )
                        for d in result.differences
                    ],
                )


def unalerted_red_days(conn: Any, keys: Sequence[tuple[str, date]]) -> list[dict[str, Any]]:
    """Red days among ``keys`` not alerted yet."""
    if not keys:
        return []
    return list(
        conn.execute(
            "SELECT d.outlet_id, d.day, d.differences, d.difference_amount FROM sync.reconciliation_days d"
            " JOIN unnest(%s::text[], %s::date[]) AS k(outlet_id, day) USING (outlet_id, day)"
            " WHERE d.status = 'red' AND d.alerted_at IS NULL ORDER BY d.day, d.outlet_id",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
    )


def mark_alerted(conn: Any, keys: Sequence[tuple[str, date]]) -> None:
    if keys:
        conn.execute(
            "UPDATE sync.reconciliation_days d SET alerted_at = now()"
            " FROM unnest(%s::text[], %s::date[]) AS k(outlet_id, day)"
            " WHERE d.outlet_id = k.outlet_id AND d.day = k.day",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )


# -- reading (the page) ---------------------------------------------------------------------------------
def grid(
    conn: Any, start: date, end: date, outlets: Sequence[str] | None = None
) -> dict[tuple[str, date], dict[str, Any]]:
    """``(outlet, day) -> day row`` for ``start``..``end`` inclusive."""
    rows = conn.execute(
        "SELECT outlet_id, day, status, differences, difference_amount, reason, checked_at"
        " FROM sync.reconciliation_days WHERE day BETWEEN %s AND %s"
        + (" AND outlet_id = ANY(%s)" if outlets else ""),
        (start, end, list(outlets)) if outlets else (start, end),
    ).fetchall()
    return {(row["outlet_id"], row["day"]): row for row in rows}


def day_detail(conn: Any, outlet_id: str, day: date) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The day row and its differences (with the ledger row's current status)."""
    row = conn.execute(
        "SELECT * FROM sync.reconciliation_days WHERE outlet_id = %s AND day = %s", (outlet_id, day)
    ).fetchone()
    diffs = conn.execute(
        "SELECT r.*, d.status AS ledger_status FROM sync.reconciliation_differences r"
        " LEFT JOIN sync.documents d ON d.id = r.document_id"
        " WHERE r.outlet_id = %s AND r.day = %s ORDER BY r.class, r.target_module, r.number, r.id",
        (outlet_id, day),
    ).fetchall()
    return row, list(diffs)


def latest_stock(conn: Any) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The newest stock check of each outlet and its differences."""
    checks = conn.execute(
        "SELECT DISTINCT ON (outlet_id) * FROM sync.reconciliation_stock_checks"
        " ORDER BY outlet_id, checked_on DESC"
    ).fetchall()
    diffs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in checks:
        for row in conn.execute(
            "SELECT * FROM sync.reconciliation_stock_differences WHERE outlet_id = %s AND checked_on = %s"
            " ORDER BY (accurate_qty - iseller_qty <> explained_qty) DESC, item_no",
            (check["outlet_id"], check["checked_on"]),
        ).fetchall():
            diffs[check["outlet_id"]].append(row)
    return list(checks), dict(diffs)


def differences_by_id(conn: Any, ids: Sequence[int]) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT * FROM sync.reconciliation_differences WHERE id = ANY(%s) ORDER BY id", (list(ids),)
        ).fetchall()
    )


# -- ledger reads ---------------------------------------------------------------------------------------
_INFO_COLUMNS = (
    "id, data_type, source_id, source_number, outlet_id, source_date, target_module, target_number,"
    " status, reason, payload"
)


def ledger_rows(
    conn: Any, data_types: Sequence[str], outlets: Sequence[str], start: datetime, end: datetime
) -> list[LedgerInfo]:
    """Ledger rows of ``data_types`` and ``outlets`` with a source date in ``[start, end)``."""
    rows = conn.execute(
        f"SELECT {_INFO_COLUMNS} FROM sync.documents WHERE data_type = ANY(%s) AND outlet_id = ANY(%s)"
        " AND source_date >= %s AND source_date < %s",
        (list(data_types), list(outlets), start, end),
    ).fetchall()
    return [LedgerInfo(**row) for row in rows]


def ledger_by_numbers(conn: Any, keys: Sequence[tuple[str, str]]) -> list[LedgerInfo]:
    """Ledger rows by (Accurate module, number), without their payloads (only where they belong)."""
    if not keys:
        return []
    rows = conn.execute(
        f"SELECT {_INFO_COLUMNS.replace('payload', 'NULL::jsonb AS payload')} FROM sync.documents d"
        " JOIN unnest(%s::text[], %s::text[]) AS k(target_module, target_number)"
        " USING (target_module, target_number)",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return [LedgerInfo(**row) for row in rows]


def open_rows(conn: Any, outlets: Sequence[str]) -> tuple[list[LedgerInfo], dict[int, dict[str, Any] | None]]:
    """The outlets' documents not in Accurate yet (for the stock explanations), with their sources."""
    rows = conn.execute(
        f"SELECT {_INFO_COLUMNS}, source FROM sync.documents"
        f" WHERE status IN ({sql_list(OPEN)}) AND outlet_id = ANY(%s)",
        (list(outlets),),
    ).fetchall()
    sources = {row["id"]: row.pop("source") for row in rows}
    return [LedgerInfo(**row) for row in rows], sources


# -- re-post ----------------------------------------------------------------------------------------------
def repost(ledger: Ledger, accurate: Any, difference_ids: Sequence[int], run: RunRef) -> dict[str, Any]:
    """Post again, exactly once, the documents of "missing in Accurate" differences.

    For each: the ledger row must still be ``synced``; Accurate is asked by number whether the
    document is really gone (found: nothing is done, the next check turns the day green). Only the
    rows checked gone go back to ``pending``, linked to ``run``; the caller then runs the normal
    :class:`~include.iseller_accurate.pipeline.Loader` for ``run``, which looks each number up once
    more before posting it under that same number.
    """
    diffs = differences_by_id(ledger.conn, difference_ids)
    outcome: dict[str, Any] = {"reopened": [], "refused": []}
    found_ids = {d["id"] for d in diffs}
    for missing in sorted(set(difference_ids) - found_ids):
        outcome["refused"].append(
            {"difference": missing, "reason": "no such difference (checked again since?)"}
        )
    candidates: list[tuple[dict[str, Any], LedgerRow]] = []
    rows = {row.id: row for row in ledger.rows([d["document_id"] for d in diffs if d["document_id"]])}
    for diff in diffs:
        row = rows.get(diff["document_id"]) if diff["document_id"] else None
        if diff["class"] != "missing_in_accurate":
            outcome["refused"].append(
                {
                    "difference": diff["id"],
                    "reason": f"{diff['class']}: only a document missing in Accurate can be re-posted",
                }
            )
        elif row is None or row.status != "synced" or not row.target_number:
            outcome["refused"].append(
                {
                    "difference": diff["id"],
                    "reason": "the ledger row is not synced with a number any more; see Sync Status",
                }
            )
        else:
            candidates.append((diff, row))
    by_module: dict[str, list[LedgerRow]] = defaultdict(list)
    for _, row in candidates:
        by_module[row.target_module].append(row)
    gone: list[int] = []
    for module, module_rows in by_module.items():
        numbers = [row.target_number for row in module_rows if row.target_number]
        present = accurate.find_by_numbers(module, numbers, field=number_field(module))
        for row in module_rows:
            if row.target_number in present:
                outcome["refused"].append(
                    {
                        "document": row.id,
                        "number": row.target_number,
                        "reason": "Accurate has this number again: nothing to re-post",
                    }
                )
            else:
                gone.append(row.id)
    reopened = ledger.reopen(gone, REPOST_REASON)
    if reopened:
        ledger.attach_to_run(reopened, run)
    outcome["reopened"] = reopened
    return outcome


def _json(value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)
