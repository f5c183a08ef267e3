"""The sync ledger in PostgreSQL: documents, statuses, reasons, prerequisites, cursors.

Every source document gets one row keyed by ``(data_type, source_id)``. Its status moves
``pending -> posting -> synced`` or to ``failed`` / ``blocked`` (with a reason an operator can act
on) or ``skipped`` (nothing to post, e.g. a voided order). Rows are never duplicated: re-extracting a
document updates the row unless it is already ``synced`` or being posted.

The ledger lives in its own database (connection ``sync_db``), never in Airflow's metadata tables;
opening it and migrating its schema live in :mod:`sync_db` (importable from here too).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg

from include.iseller_accurate.kinds import label_of
from include.iseller_accurate.ledger_clean import json_text, storable_document
from include.iseller_accurate.status import (  # noqa: F401 - DONE, OPEN importable from here
    BLOCKED,
    CLAIMABLE,
    DONE,
    KEPT_ON_REEXTRACT,
    OPEN,
    PENDING,
    POSTING,
    SKIPPED,
    SYNCED,
    satisfies,
    sql_list,
)
from include.iseller_accurate.sync_db import (  # noqa: F401 - importable from here, as they always were
    SYNC_DB_CONN_ID,
    connect,
    dsn_from_connection,
    get_connection,
    migrate,
    migrated,
)

#: Advisory lock id held while prerequisites are linked, so that a document stored by one DAG and an
#: awaited prerequisite on it stored by another at the same moment always meet (see ``_link``).
_LINK_LOCK = 7_301_943



@dataclass(frozen=True)
class RunRef:
    """The Airflow task instance doing the work (recorded on every row it touches)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1


@dataclass
class Document:
    """A mapped source document, ready to be stored in the ledger and posted to Accurate."""

    data_type: str
    source_id: str
    source_key: str
    source_date: datetime
    target_module: str
    target_number: str | None
    payload: dict[str, Any] | None
    source_number: str | None = None
    outlet_id: str | None = None
    source: dict[str, Any] | None = None
    #: Prerequisites as (data_type, source_id): needed for their data, satisfied only once synced.
    #: They may name documents not in the ledger yet (another stream has not read them): the document
    #: then waits for them (see ``waiting_notes``).
    requires: list[tuple[str, str]] = field(default_factory=list)
    #: Ordering-only prerequisites: must be synced before this one, or deliberately skipped (a voided
    #: order). A stock opname comes after the outlet's earlier sales and transfers.
    after: list[tuple[str, str]] = field(default_factory=list)
    #: How to name, in a blocked reason, a prerequisite that is not in the ledger yet, e.g.
    #: ``"sales invoice SI/JKT01-1001 (order #JKT01-1001), not yet read by the sales sync"``.
    waiting_notes: dict[tuple[str, str], str] = field(default_factory=dict)
    #: payload field -> (data_type, source_id) whose Accurate number fills it at post time.
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: For records Accurate numbers itself: {"field": ..., "value": ...} to find them again.
    lookup: dict[str, str] | None = None
    status: str = PENDING
    reason: str | None = None
    #: What was cleaned out of the source text (``order #X: line 1 field product_name: NUL
    #: character removed``); stored in the ``cleaned`` column and shown as the synced row's note.
    cleaned: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.data_type, self.source_id)

    @property
    def label(self) -> str:
        number = self.target_number or self.source_number or self.source_id
        return f"{label_of(self.data_type)} {number}"


@dataclass(slots=True)  # a big day's load holds 200,000 of them (light): no __dict__ each
class LedgerRow:
    """A document as stored, with what the loader needs."""

    id: int
    data_type: str
    source_id: str
    source_key: str
    source_number: str | None
    source_date: datetime
    target_module: str
    target_number: str | None
    target_id: int | None
    status: str
    reason: str | None
    attempts: int
    payload: dict[str, Any] | None
    refs: dict[str, list[str]] | None
    lookup: dict[str, str] | None
    transient: bool = False
    #: Only when read as a prerequisite: the link just orders, so a skipped row satisfies it too.
    ordering_only: bool = False

    @property
    def label(self) -> str:
        """How an operator names this document: type and number."""
        number = self.target_number or self.source_number or self.source_id
        return f"{label_of(self.data_type)} {number}"


_ROW_COLUMN_NAMES = (
    "id", "data_type", "source_id", "source_key", "source_number", "source_date", "target_module",
    "target_number", "target_id", "status", "reason", "attempts", "payload", "refs", "lookup", "transient",
)


_HEAVY = {"payload", "refs", "lookup"}


def _columns(alias: str = "d", *, light: bool = False) -> str:
    """The LedgerRow columns; ``light`` leaves the JSON out (a prerequisite's payload only matters as
    present or absent, so it reads as ``{}`` or NULL)."""
    if not light:
        return ", ".join(f"{alias}.{name}" for name in _ROW_COLUMN_NAMES)
    parts = []
    for name in _ROW_COLUMN_NAMES:
        if name == "payload":
            parts.append(f"CASE WHEN {alias}.payload IS NULL THEN NULL ELSE '{{}}'::jsonb END AS payload")
        elif name in _HEAVY:
            parts.append(f"NULL::jsonb AS {name}")
        else:
            parts.append(f"{alias}.{name}")
    return ", ".join(parts)


class Ledger:
    """Ledger operations on one connection (not thread-safe: one per thread)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    @contextmanager
    def open(cls, dsn: str | None = None) -> Iterator[Ledger]:
        """A ledger on a new connection, migrated, closed on exit."""
        with migrated(dsn) as conn:
            yield cls(conn)

    # -- storing documents -------------------------------------------------------------------
    def upsert(self, documents: Sequence[Document], run: RunRef | None) -> dict[tuple[str, str], int]:
        """Store documents (new rows, or refresh rows not yet synced) and link them to ``run``.

        A row already ``synced`` or ``posting`` keeps its status, payload and numbers: re-extracting
        can never cause a second post. Returns the row id of every document.
        """
        if not documents:
            return {}
        originals, documents = documents, [storable_document(doc) for doc in documents]
        ids: dict[tuple[str, str], int] = {}
        run_cols = (
            (run.dag_id, run.run_id, run.task_id, run.map_index, run.try_number) if run else (None,) * 5
        )
        with self.conn.transaction(), self.conn.cursor() as cur:
            # Bulk path: COPY into a staging table, then one INSERT ... ON CONFLICT. Thousands of
            # documents cost one round trip instead of one each.
            cur.execute(
                "CREATE TEMP TABLE incoming_documents (ord int, data_type text, source_id text,"
                " source_key text, source_number text, outlet_id text, source_date timestamptz,"
                " target_module text, target_number text, payload text, refs text, lookup text,"
                " source text, status text, reason text, cleaned text) ON COMMIT DROP"
            )
            with cur.copy(
                "COPY incoming_documents (ord, data_type, source_id, source_key, source_number, outlet_id,"
                " source_date, target_module, target_number, payload, refs, lookup, source, status, reason,"
                " cleaned) FROM STDIN"
            ) as copy:
                for ord_, doc in enumerate(documents):
                    copy.write_row((
                        ord_, doc.data_type, doc.source_id, doc.source_key, doc.source_number, doc.outlet_id,
                        doc.source_date, doc.target_module, doc.target_number,
                        json_text(doc.payload),
                        json_text({k: list(v) for k, v in doc.refs.items()} if doc.refs else None),
                        json_text(doc.lookup or None),
                        json_text(doc.source),
                        doc.status, doc.reason, "; ".join(doc.cleaned) or None,
                    ))
            cur.execute(
                f"""
                INSERT INTO sync.documents AS d (data_type, source_id, source_key, source_number, outlet_id,
                    source_date, target_module, target_number, payload, refs, lookup, source, status, reason,
                    cleaned, dag_id, run_id, task_id, map_index, try_number)
                SELECT DISTINCT ON (data_type, source_id) data_type, source_id, source_key, source_number,
                    outlet_id, source_date, target_module, target_number, payload::jsonb, refs::jsonb,
                    lookup::jsonb, source::jsonb, status, reason, cleaned, %s, %s, %s, %s, %s
                FROM incoming_documents ORDER BY data_type, source_id, ord DESC
                ON CONFLICT (data_type, source_id) DO UPDATE SET
                    source_key = EXCLUDED.source_key, source_number = EXCLUDED.source_number,
                    outlet_id = EXCLUDED.outlet_id, source_date = EXCLUDED.source_date,
                    target_module = EXCLUDED.target_module, target_number = EXCLUDED.target_number,
                    payload = EXCLUDED.payload, refs = EXCLUDED.refs, lookup = EXCLUDED.lookup,
                    source = EXCLUDED.source, status = EXCLUDED.status, reason = EXCLUDED.reason,
                    cleaned = EXCLUDED.cleaned, transient = false, updated_at = now(),
                    dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id, task_id = EXCLUDED.task_id,
                    map_index = EXCLUDED.map_index, try_number = EXCLUDED.try_number
                WHERE d.status NOT IN ({sql_list(KEPT_ON_REEXTRACT)})
                RETURNING id, data_type, source_id
                """,
                run_cols,
            )
            for row in cur.fetchall():
                ids[(row["data_type"], row["source_id"])] = row["id"]
            written = set(ids)
            missing = [doc.key for doc in documents if doc.key not in ids]
            if missing:  # rows kept as they were (synced/posting): look their ids up
                for row in self._ids_of(cur, missing):
                    ids[(row["data_type"], row["source_id"])] = row["id"]
            self._link(cur, [doc for doc in documents if doc.key in written], ids)
            for original, stored in zip(originals, documents, strict=True):
                if original.key != stored.key and stored.key in ids:  # a key had to be cleaned
                    ids[original.key] = ids[stored.key]
            if run is not None:
                cur.execute(
                    "INSERT INTO sync.run_documents (dag_id, run_id, document_id)"
                    " SELECT %s, %s, unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
                    (run.dag_id, run.run_id, list(dict.fromkeys(ids[doc.key] for doc in documents))),
                )
        return ids

    @staticmethod
    def _link(
        cur: psycopg.Cursor[Any], documents: Sequence[Document], ids: dict[tuple[str, str], int]
    ) -> None:
        """Replace the prerequisites of the (re)written ``documents``; resolve awaited ones.

        A prerequisite not in the ledger yet is kept as *awaited* with its label. Whenever any
        document is stored, awaited prerequisites naming it become real ones. The advisory lock makes
        "store a document" and "await it" serialise, so neither side misses the other.
        """
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LINK_LOCK,))
        rewritten = list(dict.fromkeys(ids[doc.key] for doc in documents))
        if rewritten:  # a re-mapped document's prerequisites are those of its new mapping
            cur.execute("DELETE FROM sync.prerequisites WHERE document_id = ANY(%s)", (rewritten,))
            cur.execute("DELETE FROM sync.awaited_prerequisites WHERE document_id = ANY(%s)", (rewritten,))
        wanted: dict[tuple[tuple[str, str], tuple[str, str]], bool] = {}
        notes: dict[tuple[tuple[str, str], tuple[str, str]], str] = {}
        for doc in documents:
            for req in doc.after:
                wanted.setdefault((doc.key, req), True)
            for req in doc.requires:
                wanted[(doc.key, req)] = False  # a need for data is stricter than an order
            for req, note in doc.waiting_notes.items():
                notes[(doc.key, req)] = note
        unknown = sorted({req for _, req in wanted if req not in ids})
        if unknown:
            for row in Ledger._ids_of(cur, unknown):
                ids[(row["data_type"], row["source_id"])] = row["id"]
        links = [
            (ids[doc], ids[req], only)
            for (doc, req), only in wanted.items()
            if req in ids and ids[req] != ids[doc]
        ]
        if links:
            cur.execute(
                "INSERT INTO sync.prerequisites (document_id, requires_id, ordering_only)"
                " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::boolean[])"
                " ON CONFLICT (document_id, requires_id) DO UPDATE"
                " SET ordering_only = sync.prerequisites.ordering_only AND EXCLUDED.ordering_only",
                ([link[0] for link in links], [link[1] for link in links], [link[2] for link in links]),
            )
        awaited = [
            (ids[doc], req[0], req[1], notes.get((doc, req)) or _default_note(req), only)
            for (doc, req), only in wanted.items()
            if req not in ids
        ]
        if awaited:
            cur.executemany(
                "INSERT INTO sync.awaited_prerequisites"
                " (document_id, data_type, source_id, label, ordering_only)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                awaited,
            )
        # Documents stored by now (by this call or by any other stream) resolve what awaited them.
        cur.execute(
            "WITH moved AS ("
            "  DELETE FROM sync.awaited_prerequisites a USING sync.documents d"
            "  WHERE d.data_type = a.data_type AND d.source_id = a.source_id"
            "  RETURNING a.document_id, d.id AS requires_id, a.ordering_only)"
            " INSERT INTO sync.prerequisites (document_id, requires_id, ordering_only)"
            " SELECT document_id, requires_id, bool_and(ordering_only) FROM moved"
            " WHERE document_id <> requires_id GROUP BY document_id, requires_id"
            " ON CONFLICT (document_id, requires_id) DO UPDATE"
            " SET ordering_only = sync.prerequisites.ordering_only AND EXCLUDED.ordering_only"
        )

    @staticmethod
    def _ids_of(cur: psycopg.Cursor[Any], keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        cur.execute(
            "SELECT d.id, d.data_type, d.source_id FROM sync.documents d"
            " JOIN unnest(%s::text[], %s::text[]) AS k(data_type, source_id)"
            " USING (data_type, source_id)",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
        return cur.fetchall()

    def attach_to_run(self, document_ids: Iterable[int], run: RunRef) -> None:
        """Make ``run`` responsible for these documents too (e.g. released blocked ones)."""
        self.conn.execute(
            "INSERT INTO sync.run_documents (dag_id, run_id, document_id)"
            " SELECT %s, %s, unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
            (run.dag_id, run.run_id, list(document_ids)),
        )

    # -- reading -------------------------------------------------------------------------------
    def run_rows(
        self, run: RunRef, statuses: Sequence[str] = OPEN, *, light: bool = False
    ) -> list[LedgerRow]:
        """Documents of ``run`` in ``statuses``, oldest first (``light``: without their JSON, see
        :meth:`heavy`)."""
        cursor = self._stream(
            f"SELECT {_columns(light=light)}"
            " FROM sync.documents d JOIN sync.run_documents r ON r.document_id = d.id"
            " WHERE r.dag_id = %s AND r.run_id = %s AND d.status = ANY(%s)"
            " ORDER BY d.source_date, d.id",
            (run.dag_id, run.run_id, list(statuses)),
        )
        return _ledger_rows(cursor)

    def rows(self, ids: Iterable[int], *, light: bool = False) -> list[LedgerRow]:
        """Documents by id, oldest first (``light``: without their JSON, see :meth:`heavy`)."""
        cursor = self._stream(
            f"SELECT {_columns(light=light)} FROM sync.documents d WHERE d.id = ANY(%s)"
            " ORDER BY d.source_date, d.id",
            (list(ids),),
        )
        return _ledger_rows(cursor)

    def _stream(self, query: str, params: Sequence[Any]) -> Iterator[dict[str, Any]]:
        """Rows of a big read as they arrive, a thousand at a time: neither libpq nor Python holds the
        whole result beside the rows built from it."""
        with self.conn.cursor() as cur:
            yield from cur.stream(query, params, size=1000)

    def heavy(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """``id -> {payload, refs, lookup, reason}``: what a light row leaves out, read just before
        the document is sent (one query for several chunks), so a big run never holds every payload."""
        rows = self.conn.execute(
            "SELECT id, payload, refs, lookup, reason FROM sync.documents WHERE id = ANY(%s)", (list(ids),)
        ).fetchall()
        return {row.pop("id"): row for row in rows}

    def prerequisites(
        self, ids: Iterable[int], *, known: Mapping[int, LedgerRow] | None = None
    ) -> dict[int, list[LedgerRow]]:
        """For each document id, the rows it requires (light). A prerequisite among ``known`` (rows
        the caller holds already) shares that row's values, only ``ordering_only`` being its own: on a
        big day most links join two documents of the same run, and 200,000 copies cost ~150 MiB."""
        known = known or {}
        result: dict[int, list[LedgerRow]] = {}
        cursor = self._stream(
            f"SELECT p.document_id AS for_id, p.ordering_only, {_columns(light=True)}"
            " FROM sync.prerequisites p JOIN sync.documents d ON d.id = p.requires_id"
            " WHERE p.document_id = ANY(%s)",
            (list(ids),),
        )
        for row in cursor:  # one at a time, as in _ledger_rows
            for_id = row.pop("for_id")
            held = known.get(row["id"])
            need = replace(held, ordering_only=row["ordering_only"]) if held else _ledger_row(row)
            result.setdefault(for_id, []).append(need)
        return result

    def awaited(self, ids: Iterable[int]) -> dict[int, list[str]]:
        """For each document id, the labels of its prerequisites not in the ledger yet."""
        result: dict[int, list[str]] = {}
        rows = self.conn.execute(
            "SELECT document_id, label FROM sync.awaited_prerequisites WHERE document_id = ANY(%s)"
            " ORDER BY document_id, data_type, source_id",
            (list(ids),),
        ).fetchall()
        for row in rows:
            result.setdefault(row["document_id"], []).append(row["label"])
        return result

    def released(self, limit: int = 10_000) -> list[int]:
        """Blocked documents (of any run) whose prerequisites are now all satisfied, oldest first."""
        rows = self.conn.execute(
            f"SELECT d.id FROM sync.documents d WHERE d.status = '{BLOCKED}' AND NOT EXISTS ("
            "  SELECT 1 FROM sync.prerequisites p JOIN sync.documents q ON q.id = p.requires_id"
            f"  WHERE p.document_id = d.id AND q.status <> '{SYNCED}'"
            f"  AND NOT (p.ordering_only AND q.status = '{SKIPPED}'))"  # see status.satisfies
            " AND NOT EXISTS (SELECT 1 FROM sync.awaited_prerequisites a WHERE a.document_id = d.id)"
            " ORDER BY d.source_date, d.id LIMIT %s",
            (limit,),
        ).fetchall()
        return [row["id"] for row in rows]

    def known(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Status of the documents among ``keys`` that are in the ledger, by (data_type, source_id)."""
        if not keys:
            return {}
        rows = self.conn.execute(
            "SELECT d.data_type, d.source_id, d.status FROM sync.documents d"
            " JOIN unnest(%s::text[], %s::text[]) AS k(data_type, source_id) USING (data_type, source_id)",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
        return {(r["data_type"], r["source_id"]): r["status"] for r in rows}

    def history_start(self, outlet_id: str, data_types: Sequence[str]) -> datetime | None:
        """The oldest source date of the outlet's documents of ``data_types``: where the sync's
        history of that outlet starts for those streams (None before they stored any)."""
        row = self.conn.execute(
            "SELECT min(source_date) AS start FROM sync.documents"
            " WHERE outlet_id = %s AND data_type = ANY(%s)",
            (outlet_id, list(data_types)),
        ).fetchone()
        return row["start"] if row else None

    def synced_numbers(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Accurate numbers of already-synced documents, by (data_type, source_id)."""
        if not keys:
            return {}
        rows = self.conn.execute(
            "SELECT d.data_type, d.source_id, d.target_number FROM sync.documents d"
            " JOIN unnest(%s::text[], %s::text[]) AS k(data_type, source_id) USING (data_type, source_id)"
            f" WHERE d.status = '{SYNCED}'",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
        return {(r["data_type"], r["source_id"]): r["target_number"] for r in rows}

    def counts(self, run: RunRef) -> dict[str, int]:
        """How many documents of ``run`` are in each status."""
        rows = self.conn.execute(
            "SELECT d.status, count(*) AS n FROM sync.documents d"
            " JOIN sync.run_documents r ON r.document_id = d.id"
            " WHERE r.dag_id = %s AND r.run_id = %s GROUP BY d.status",
            (run.dag_id, run.run_id),
        ).fetchall()
        return {row["status"]: row["n"] for row in rows}

    # -- status changes ------------------------------------------------------------------------
    def claim(self, ids: Sequence[int], run: RunRef) -> list[int]:
        """Mark documents ``posting`` (attempt + 1) unless another loader holds or finished them."""
        if not ids:
            return []
        rows = self.conn.execute(
            f"UPDATE sync.documents SET status = '{POSTING}', attempts = attempts + 1,"
            " last_attempt_at = now(), updated_at = now(), dag_id = %s, run_id = %s, task_id = %s,"
            " map_index = %s, try_number = %s"
            f" WHERE id = ANY(%s) AND status IN ({sql_list(CLAIMABLE)})"
            " RETURNING id",
            (run.dag_id, run.run_id, run.task_id, run.map_index, run.try_number, list(ids)),
        ).fetchall()
        return [row["id"] for row in rows]

    def mark_synced(self, results: Iterable[tuple[int, str | None, int | None, str | None]]) -> None:
        """``(id, accurate number, accurate id, note)`` for each document now in Accurate."""
        params = list(results)
        if not params:
            return
        self.conn.execute(
            f"UPDATE sync.documents d SET status = '{SYNCED}',"
            " target_number = COALESCE(u.number, d.target_number),"
            " target_id = COALESCE(u.target_id, d.target_id), reason = COALESCE(u.note, d.cleaned),"
            " transient = false,"
            " synced_at = now(), updated_at = now()"
            " FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::text[])"
            " AS u(id, number, target_id, note)"
            " WHERE d.id = u.id",
            ([p[0] for p in params], [p[1] for p in params], [p[2] for p in params], [p[3] for p in params]),
        )

    def mark(self, status: str, results: Iterable[tuple[int, str]], *, transient: bool = False) -> None:
        """Set ``status`` (failed/blocked/pending) with a reason on each ``(id, reason)``."""
        params = list(results)
        if not params:
            return
        self.conn.execute(
            "UPDATE sync.documents d SET status = %s, reason = u.reason, transient = %s, updated_at = now()"
            " FROM unnest(%s::bigint[], %s::text[]) AS u(id, reason)"
            f" WHERE d.id = u.id AND d.status <> '{SYNCED}'",
            (status, transient, [p[0] for p in params], [p[1] for p in params]),
        )

    def reopen(self, ids: Sequence[int], reason: str) -> list[int]:
        """Make synced documents postable again (``pending``), e.g. one deleted by hand in Accurate.

        Only for documents the caller has just checked to be absent from Accurate by number: the
        load then posts them under their own number, and still looks the number up first (their
        ``attempts`` are above zero), so a document that came back meanwhile is confirmed, not posted
        twice. Returns the ids reopened (rows no longer ``synced`` are left alone).
        """
        if not ids:
            return []
        rows = self.conn.execute(
            f"UPDATE sync.documents SET status = '{PENDING}', reason = %s, transient = false,"
            " attempts = GREATEST(attempts, 1), updated_at = now()"
            f" WHERE id = ANY(%s) AND status = '{SYNCED}' RETURNING id",
            (reason, list(ids)),
        ).fetchall()
        return [row["id"] for row in rows]

    def statuses(self, ids: Iterable[int]) -> dict[int, tuple[str, str | None, str | None]]:
        """``id -> (status, reason, accurate number)``: what a wave changed, without the payloads."""
        rows = self.conn.execute(
            "SELECT id, status, reason, target_number FROM sync.documents WHERE id = ANY(%s)", (list(ids),)
        ).fetchall()
        return {r["id"]: (r["status"], r["reason"], r["target_number"]) for r in rows}

    # -- cursors -------------------------------------------------------------------------------
    def cursor(self, stream: str) -> datetime | None:
        """The bookmark of ``stream``, or None before its first run."""
        row = self.conn.execute("SELECT position FROM sync.cursors WHERE stream = %s", (stream,)).fetchone()
        return row["position"] if row else None

    def advance_cursor(self, stream: str, position: datetime) -> None:
        """Move the bookmark forward (never backwards)."""
        self.conn.execute(
            "INSERT INTO sync.cursors (stream, position) VALUES (%s, %s) ON CONFLICT (stream) DO UPDATE"
            " SET position = GREATEST(sync.cursors.position, EXCLUDED.position), updated_at = now()",
            (stream, position),
        )


def _ledger_rows(cursor: Iterable[dict[str, Any]]) -> list[LedgerRow]:
    """Rows built one at a time as they are read (not from ``fetchall``): a big day's load reads
    200,000 light rows, and a list of them as dicts beside the rows doubled its memory."""
    return [_ledger_row(row) for row in cursor]


def _ledger_row(row: dict[str, Any]) -> LedgerRow:
    for name in ("data_type", "target_module", "status"):  # the same few words on every row: share them
        row[name] = sys.intern(row[name])
    return LedgerRow(**row)


def _default_note(key: tuple[str, str]) -> str:
    return f"{label_of(key[0])} {key[1]}, which is not in the sync ledger yet"
