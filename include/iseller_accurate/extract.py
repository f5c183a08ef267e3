"""The extract half of the pipeline: the :class:`Stream` base every data type declares, and the
extract / refresh steps that map source records to ledger documents (see :mod:`pipeline` for the
whole flow; everything here is importable from there too).

- ``extract``: read the run's source records (its window, or what its conf names), map them and store
  the documents in the ledger linked to the run, a chunk of records at a time (``MAP_CHUNK``), then
  advance the stream's cursor. XCom gets counts only.
- A record whose mapping raises, or that gives no document, becomes a failed document alone, with the
  reason; the rest of the batch goes on. Nothing read is lost silently.
- ``refresh``: the sync refresh re-reads the source of documents not in Accurate yet by key, then maps
  and stores them again (a repair made in iSeller counts).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.iseller_accurate.checks import FieldProblem, Reader, storable
from include.iseller_accurate.ledger import Document, Ledger, RunRef
from include.iseller_accurate.settings import SyncSettings
from include.iseller_accurate.status import FAILED, PENDING
from include.iseller_accurate.times import as_utc, run_time

log = logging.getLogger(__name__)

#: How many source records are mapped and stored at a time (a stream's default ``map_chunk``). Only
#: one chunk's documents (and, for sales, its line table) are held at once: 100,000 orders mapped in
#: one go took the extract task to 2 GiB.
MAP_CHUNK = 2_000


@dataclass
class ExtractContext:
    """What a stream may read while extracting: settings, conf, window, clients."""

    settings: SyncSettings
    params: dict[str, Any]
    window_start: datetime
    window_end: datetime
    iseller: Any = None  # IsellerHook
    ledger: Ledger | None = None


@dataclass
class MapContext:
    """What mapping may consult besides the records: settings and the ledger's known pairings."""

    settings: SyncSettings
    known_numbers: Callable[[Sequence[tuple[str, str]]], dict[tuple[str, str], str]] = field(
        default=lambda keys: {}
    )


class Stream(ABC):
    """A data type's declaration: source, mapping and numbering live in its module."""

    #: Cursor name and log label, e.g. ``sales``.
    name: str
    #: How far before the cursor an incremental window starts (late/modified records).
    overlap: timedelta = timedelta(minutes=10)
    #: Window of a first run that has no cursor.
    initial_lookback: timedelta = timedelta(days=1)
    #: The ledger data types this stream produces; a refresh re-reads only these (empty: any).
    data_types: tuple[str, ...] = ()
    #: How many records :func:`extract_documents` maps and stores at a time. ``None``: the whole batch
    #: at once, for a stream whose mapping works across its records (ordering them, pairing them).
    map_chunk: int | None = MAP_CHUNK

    @abstractmethod
    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Source records of the run (its window or what its params name)."""

    @abstractmethod
    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Re-read source records by key (for the sync refresh)."""

    @abstractmethod
    def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
        """Map source records to ledger documents (failed ones carry status and reason)."""

    def uses_window(self, params: dict[str, Any]) -> bool:
        """Whether this run reads a time window (False when params name the records)."""
        return True

    # -- a record that cannot be mapped (see ``map_records``) ----------------------------------
    #: The source record's id field (``order_id``) and how operators name the record (``order``).
    key_field: str = "id"
    record_name: str = "record"

    def ignores(self, record: Any) -> bool:
        """Whether ``record`` is deliberately not a document yet (a draft order): no ledger row."""
        return False

    def record_key(self, record: Any) -> str:
        """The source key of a record; a record without a usable id gets a key from its content."""
        if isinstance(record, dict):
            try:
                key = Reader(self.record_name).text(
                    record.get(self.key_field), self.key_field, identifier=True
                )
            except FieldProblem:
                key = ""
            if key:
                return key
        digest = hashlib.sha256(repr(record).encode("utf-8", "replace")).hexdigest()[:16]
        return f"unreadable:{digest}"

    def unreadable_type(self, record: Any) -> tuple[str, str, str]:
        """The document standing for a record that cannot be mapped: (data type, Accurate module,
        source id suffix). Streams override it so the failure never lands on an already-synced row."""
        data_type = self.data_types[0] if self.data_types else self.name
        return data_type, "", ""

    def unreadable(self, record: Any, problem: str) -> Document:
        """A failed document for a source record that could not be mapped, with the reason."""
        key = self.record_key(record)
        data_type, module, suffix = self.unreadable_type(record)
        if isinstance(record, dict):
            try:
                fields = {k: v for k, v in record.items() if not str(k).startswith("_")}
                source, _ = storable(fields, "source", strict=False)
            except FieldProblem:
                source = {"record": repr(record)[:2000]}
        else:
            source = {"record": repr(record)[:2000]}
        label = f"{self.record_name} {key}"
        if key.startswith("unreadable:"):
            problem = f"a {self.record_name} without a usable {self.key_field}: {problem}"
        return Document(
            data_type,
            key + suffix,
            source_key=key,
            source_date=datetime.now(UTC),
            target_module=module or data_type,
            target_number=None,
            payload=None,
            source=source,
            status=FAILED,
            reason=f"{label}: {problem}",
        )

    def owns(self, data_type: str) -> bool:
        """Whether documents of ``data_type`` come from this stream (a run may also hold documents
        of other streams: blocked ones it released once their prerequisites synced)."""
        return not self.data_types or data_type in self.data_types


# ---------------------------------------------------------------------------------------------
# extract


def run_window(stream: Stream, ledger: Ledger, context: dict[str, Any]) -> tuple[datetime, datetime]:
    """The time window a run reads: explicit params, else from the cursor to the run's time.

    Never "now": the end is the run's data interval end / logical date / run_after, so re-running a
    run reads the same window.
    """
    params = context.get("params") or {}
    if params.get("window_start") and params.get("window_end"):
        return as_utc(params["window_start"]), as_utc(params["window_end"])
    end = _asset_run_end(context) or run_time(context)
    start = context.get("data_interval_start")
    if start is not None and context.get("data_interval_end") is not None and start < end:
        return as_utc(start), end
    cursor = ledger.cursor(stream.name)
    if cursor is None:
        return end - stream.initial_lookback, end
    return min(cursor - stream.overlap, end), end


def _asset_run_end(context: dict[str, Any]) -> datetime | None:
    """An asset-triggered run reads up to when it started, not only up to its ``run_after``.

    Airflow dates such a run by the first queued event (``run_after``) and hands it only the events up
    to that moment; webhooks that arrive before the run is created (while an earlier run is still
    active, ``max_active_runs=1``) queue no run of their own. Reading up to ``run_after`` left their
    orders for the next poll. The run's ``start_date`` comes after every such event and stays the same
    for the run's retries; a wider window only re-reads what the ledger already holds.
    """
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    started = getattr(dag_run, "start_date", None)
    if str(getattr(run_type, "value", run_type)) != "asset_triggered" or started is None:
        return None
    return max(as_utc(started), run_time(context))


def extract_documents(
    stream: Stream,
    ctx: ExtractContext,
    ledger: Ledger,
    run: RunRef,
    *,
    advance_cursor: bool,
    on_stored: Callable[[list[int]], None] | None = None,
) -> dict[str, Any]:
    """Extract, map and store the run's documents; returns counts for XCom (no data).

    Records are mapped and stored a chunk at a time (``stream.map_chunk``); each chunk's records and
    documents are dropped once stored, only their keys are kept. A document an earlier chunk stored
    (a customer that orders of several chunks name) is not stored again: the first mapping of it
    stands, as when the batch was mapped at once. The cursor moves only after every chunk is stored.

    ``on_stored`` receives the ledger ids of each stored chunk's ``pending`` documents as soon as the
    chunk is stored, in a run of more than one chunk only: a big run's documents are then posted while
    later chunks are mapped (see :class:`pipeline.EarlyPoster`); a run of one chunk (every shift close,
    every real-time run) is posted by the load task alone, as before.
    """
    records: list[Any] = stream.extract(ctx)  # stored chunks are set to None (released)
    map_ctx = MapContext(ctx.settings, ledger.synced_numbers)
    stored: set[tuple[str, str]] = set()  # every document key stored by this run
    by_status: dict[str, int] = defaultdict(int)
    count = 0
    size = stream.map_chunk or len(records) or 1
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        documents = map_records(stream, chunk, map_ctx)
        fresh = [doc for doc in documents if doc.key not in stored]
        ids = ledger.upsert(fresh, run)
        stored.update(ids)
        _check_every_record_stored(stream, chunk, documents, stored)
        if on_stored is not None and len(records) > size:  # a run of more than one chunk
            on_stored([ids[doc.key] for doc in fresh if doc.status == PENDING and doc.key in ids])
        count += len(fresh)
        for doc in fresh:
            by_status[doc.status] += 1
        # The chunk's records are stored: let them go, so the next chunks reuse their memory.
        records[start : start + size] = [None] * len(chunk)
        del chunk, documents, fresh
        give_back_memory()
    if advance_cursor:
        ledger.advance_cursor(stream.name, ctx.window_end)
    summary = {
        "records": len(records),
        "documents": count,
        "window_start": ctx.window_start.isoformat(),
        "window_end": ctx.window_end.isoformat(),
        **{f"mapped_{k}": v for k, v in sorted(by_status.items())},
    }
    log.info("%s: extracted %s", stream.name, summary)
    return summary


def give_back_memory() -> None:
    """Hand the heap memory freed so far back to the system (glibc's ``malloc_trim``; elsewhere a
    no-op). A released chunk's records and a finished posting round leave free blocks in several
    malloc arenas (one per thread that allocated); without this they stay resident and the next
    chunk or round is allocated beside them, so the task's peak grows with the run."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def map_records(stream: Stream, records: list[Any], ctx: MapContext) -> list[Document]:
    """Map a batch; a record whose mapping raises becomes a failed document alone.

    Streams check every field they read (see :mod:`checks`), so this is the net under them: an
    unexpected value costs its own record, never the batch. Then every record the stream does not
    deliberately ignore must have at least one document; one that has none gets a failed one.
    """
    try:
        documents = stream.map(records, ctx)
    except Exception:  # noqa: BLE001 - find the record(s) that break it, map the others
        log.exception("%s: mapping the batch failed; mapping record by record", stream.name)
        documents = []
        for record in records:
            try:
                documents.extend(stream.map([record], ctx))
            except Exception as exc:  # noqa: BLE001 - that record fails alone, with the reason
                reason = f"could not be read ({type(exc).__name__}: {str(exc)[:300]}); check it in iSeller"
                documents.append(stream.unreadable(record, reason))
        unique: dict[tuple[str, str], Document] = {}
        for doc in documents:
            unique.setdefault(doc.key, doc)
        documents = list(unique.values())
    covered = {doc.source_key for doc in documents}
    for record in records:
        if _ignored(stream, record):
            continue
        key = stream.record_key(record)
        if key not in covered:
            documents.append(
                stream.unreadable(record, "it gave no document to post; check it in iSeller, then refresh")
            )
            covered.add(key)
    return documents


def _ignored(stream: Stream, record: Any) -> bool:
    try:
        return stream.ignores(record)
    except Exception:  # noqa: BLE001 - cannot tell: it must show up in the ledger
        return False


def _check_every_record_stored(
    stream: Stream, records: list[Any], documents: list[Document], stored: Container[tuple[str, str]]
) -> None:
    """Nothing read is lost silently: every document has a ledger row (its key is in ``stored``), and
    so has every record that is not deliberately ignored."""
    missing = [doc.key for doc in documents if doc.key not in stored]
    covered = {doc.source_key for doc in documents if doc.key in stored}
    keys = (stream.record_key(r) for r in records if not _ignored(stream, r))
    lost = [key for key in keys if key not in covered]
    if missing or lost:
        raise RuntimeError(
            f"{stream.name}: {len(missing)} documents and {len(lost)} source records have no ledger row"
            f" (first: {(missing or lost)[0]}); nothing was lost in iSeller: run the task again"
        )


def refresh_documents(
    stream: Stream, ctx: ExtractContext, ledger: Ledger, run: RunRef, keys: list[str]
) -> None:
    """The sync refresh: re-read source records by key, map them again and store them.

    A record stored under ``unreadable:<digest>`` (no usable id) cannot be read by key: it is read
    again by the next run's window. When re-reading the batch fails, each key is re-read alone, so
    one record iSeller will not answer for keeps its failed row and reason, and the others go on.
    """
    keys = [key for key in keys if not key.startswith("unreadable:")]
    if not keys:
        return
    try:
        records = stream.refetch(ctx, keys)
    except Exception:  # noqa: BLE001 - find the key(s) iSeller will not answer for
        log.exception("%s: re-reading %d records failed; re-reading them one by one", stream.name, len(keys))
        records = []
        for key in keys:
            try:
                records.extend(stream.refetch(ctx, [key]))
            except Exception:  # noqa: BLE001 - it stays failed with its reason; the load reports it
                log.exception("%s: could not re-read %s from iSeller; it keeps its row", stream.name, key)
    documents = map_records(stream, records, MapContext(ctx.settings, ledger.synced_numbers))
    ledger.upsert(documents, run)
