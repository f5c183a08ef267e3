"""The generic extract -> map -> load machinery every sync DAG uses.

A data type is a :class:`Stream` (how to extract source records, how to re-read some of them, how to
map them to Accurate documents). This module does the rest, once for all streams:

- ``extract`` (the :class:`Stream` base and the extract steps live in :mod:`extract`, importable from
  here): read the run's source records (its window, or what its conf names), map them, store the
  documents in the ledger linked to the run, advance the stream's cursor. XCom gets counts only.
- ``load``: post the run's open documents to Accurate oldest first, prerequisites before the
  documents that need them, in bulk (100 per request, up to 8 in flight under the deployment-wide
  rate limit). Exactly once by construction: every document has a deterministic Accurate number, is
  marked ``posting`` before the call, and any unknown outcome (timeout, 5xx, crash, "number already
  exists") is settled by looking the number up in Accurate before anything is re-posted.
- A document that cannot be posted fails alone with a reason; documents that need it are
  ``blocked`` with a reason naming it; the rest go on. The load task fails when any document of its
  run is not in Accurate, so clearing it (the sync refresh) re-attempts exactly those: their source is
  re-read first (a repair made in iSeller counts), then they are re-mapped and posted.
- Blocked documents of earlier runs are released as soon as their prerequisites are synced, by
  whichever load syncs the last of them (prerequisites may cross streams: a stock opname waits for
  the outlet's earlier sales and transfers). A prerequisite may name a document no stream has read
  yet: the document waits for it ("awaited") and is linked when it is stored. Ordering-only
  prerequisites (``Document.after``) are also satisfied by a skipped document (a voided order).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from include.iseller_accurate.extract import (  # noqa: F401 - the pipeline's public names, as always
    ExtractContext,
    MapContext,
    Stream,
    extract_documents,
    give_back_memory,
    map_records,
    refresh_documents,
    run_window,
)
from include.iseller_accurate.kinds import number_field
from include.iseller_accurate.ledger import Ledger, LedgerRow, RunRef
from include.iseller_accurate.status import (
    ATTENTION,
    BLOCKED,
    DONE,
    FAILED,
    OPEN,
    PENDING,
    POSTING,
    SKIPPED,
    SYNCED,
    satisfies,
)

log = logging.getLogger(__name__)

BULK_SIZE = 100
MAX_IN_FLIGHT = 8
#: An :class:`EarlyPoster` posts stored chunks in rounds of at least this many documents (whole
#: chunks): a round ends when its last answer is recorded, so it also bounds what a stop waits for.
EARLY_ROUND = 10_000
#: How long a failing extract waits for the round under way before it ends (see :meth:`EarlyPoster.running`).
EARLY_ABANDON_WAIT = 60.0


class SyncFailed(Exception):
    """Some documents of the run are not in Accurate; the message lists them with reasons."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# ---------------------------------------------------------------------------------------------
# load


@dataclass
class LoadReport:
    """What a load did, for logs, XCom and the task note."""

    posted: int = 0
    confirmed: int = 0
    failed: list[LedgerRow] = field(default_factory=list)
    blocked: list[LedgerRow] = field(default_factory=list)
    total: int = 0

    def summary(self) -> str:
        """One line: "3 of 120 not synced: ..." or "120 synced"."""
        bad = self.failed + self.blocked
        if not bad:
            return (
                f"{self.total} documents synced ({self.posted} posted, {self.confirmed} already in Accurate)"
            )
        first = bad[0]
        return f"{len(bad)} of {self.total} not synced: {first.label}: {first.reason}"

    def table(self) -> str:
        """The failed and blocked documents with reasons, as a small text table."""
        lines = [f"{'status':8} {'document':40} reason"]
        for row in self.failed + self.blocked:
            lines.append(f"{row.status:8} {row.label[:40]:40} {row.reason}")
        return "\n".join(lines)


class Loader:
    """Posts ledger documents to Accurate exactly once (see the module docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        accurate: Any,
        run: RunRef,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        refresh: Callable[[list[LedgerRow]], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.accurate = accurate
        self.run = run
        self.max_in_flight = max_in_flight
        self.refresh = refresh
        self.report = LoadReport()

    def load_run(self) -> LoadReport:
        """Post every open document of the run, then any blocked document now released.

        Rows are read light (no payload, refs or lookup: a payload reads as ``{}`` or None, so "has
        nothing to post" keeps its meaning); a chunk's JSON is read just before it is sent and
        dropped once its outcome is recorded, so memory does not grow with the size of the run.
        """
        open_rows = self.ledger.run_rows(self.run, light=True)
        retried = [row for row in open_rows if row.attempts > 0 or row.status in ATTENTION]
        if retried and self.refresh is not None:
            self.refresh(retried)  # needs the source keys and data types only
            open_rows = self.ledger.run_rows(self.run, light=True)  # re-mapped: read them again
        self._process(open_rows)
        while released := [i for i in self.ledger.released() if i]:
            self.ledger.attach_to_run(released, self.run)
            before = self.report.posted + self.report.confirmed
            self._process(self.ledger.rows(released, light=True))
            if self.report.posted + self.report.confirmed == before:
                break
        final = self.ledger.run_rows(self.run, statuses=OPEN, light=True)
        self.report.failed = [r for r in final if r.status != BLOCKED]
        self.report.blocked = [r for r in final if r.status == BLOCKED]
        self.report.total = sum(self.ledger.counts(self.run).values())
        return self.report

    def post_stored(self, ids: list[int]) -> None:
        """Post these just-stored documents where everything they need is synced, and nothing else.

        The early half of a big run (see :class:`EarlyPoster`): a document attempted before, or not
        ``pending`` any more, is left to the load task (which re-reads its source first), and a
        document whose prerequisites are not synced yet is left open, never marked blocked; the load
        task posts the rest and says why anything is not synced.
        """
        rows = self.ledger.rows(ids, light=True)
        self._process([row for row in rows if row.status == PENDING and not row.attempts], block=False)

    # Streaming, not waves: a document is sent as soon as everything it needs is synced, so the
    # receipts of the first 100 invoices go while later invoices are still in flight, and the
    # in-flight budget never drains between data types.
    def _process(self, rows: list[LedgerRow], *, block: bool = True) -> None:
        pending = {row.id: row for row in rows if row.status not in DONE}
        if not pending:
            return
        prereqs = self.ledger.prerequisites(pending, known=pending)
        awaited = self.ledger.awaited(pending)
        dependents: dict[int, list[int]] = defaultdict(list)
        for doc_id, needs in prereqs.items():
            for need in needs:
                if need.id in pending:
                    dependents[need.id].append(doc_id)

        def live(need: LedgerRow) -> LedgerRow:
            return pending.get(need.id, need)

        def satisfied(need: LedgerRow) -> bool:
            return satisfies(live(need).status, ordering_only=need.ordering_only)

        with ThreadPoolExecutor(max_workers=self.max_in_flight) as pool:
            sender = _Sender(self, pool, prereqs, pending)

            def ready(row: LedgerRow) -> bool:
                if row.payload is None or awaited.get(row.id) or row.id in sender.handed:
                    return False
                return all(satisfied(need) for need in prereqs.get(row.id, []))

            settled = sender.enqueue([row for row in pending.values() if ready(row)])
            while True:
                candidates = {dep for doc_id in settled for dep in dependents.get(doc_id, ())}
                now_ready = [pending[c] for c in sorted(candidates) if ready(pending[c])]
                settled = sender.enqueue(now_ready)
                if settled:
                    continue
                if not sender.busy:
                    break
                settled = sender.collect()
        if block:
            self._block_the_rest(pending, sender.handed, prereqs, awaited, satisfied)

    def _block_the_rest(
        self,
        pending: dict[int, LedgerRow],
        started: set[int],
        prereqs: dict[int, list[LedgerRow]],
        awaited: dict[int, list[str]],
        satisfied: Callable[[LedgerRow], bool],
    ) -> None:
        """Everything never sent waits for something that failed or is not there: say what.

        Reasons are given prerequisites first, so a chain names the document to repair first.
        """
        waiting = sorted(
            (row for row in pending.values() if row.id not in started and row.payload is not None),
            key=lambda row: (row.source_date, row.id),
        )
        waiting_ids = {row.id for row in waiting}
        reasons: dict[int, str] = {}
        progressed = True
        while progressed:
            progressed = False
            for row in waiting:
                if row.id in reasons:
                    continue
                if awaited.get(row.id):
                    reasons[row.id] = _awaiting_reason(awaited[row.id])
                    progressed = True
                    continue
                unmet = [need for need in prereqs.get(row.id, []) if not satisfied(need)]
                if any(need.id in waiting_ids and need.id not in reasons for need in unmet):
                    continue  # its own prerequisites get their reason first
                stuck = [
                    replace(pending.get(need.id, need), status=BLOCKED, reason=reasons[need.id])
                    if need.id in reasons
                    else pending.get(need.id, need)
                    for need in unmet
                ]
                reasons[row.id] = _blocked_reason(stuck) if stuck else "waits for a document not synced yet"
                progressed = True
        for row in waiting:
            reasons.setdefault(row.id, "waits for documents that wait for each other; check the ledger")
            row.status, row.reason = BLOCKED, reasons[row.id]
        self.ledger.mark(BLOCKED, list(reasons.items()))

    def _send_chunk(self, module: str, chunk: list[LedgerRow]) -> Any:
        try:
            return self.accurate.bulk_save(module, [row.payload for row in chunk], idempotent=True)
        except Exception as exc:  # noqa: BLE001 - every failure is settled by a lookup below
            return exc

    def _record_chunk(self, chunk: list[LedgerRow], outcome: Any) -> None:
        synced: list[tuple[int, str | None, int | None, str | None]] = []
        failed: list[tuple[int, str]] = []
        unsure: list[LedgerRow] = []
        if isinstance(outcome, Exception):
            if _is_auth_error(outcome):
                reason = str(outcome)  # the client's message names the refusal and what to check
                self.ledger.mark(FAILED, [(r.id, reason) for r in chunk])
                for row in chunk:
                    row.status, row.reason = FAILED, reason
                return
            unsure = chunk
        else:
            for row, result in zip(chunk, outcome, strict=True):
                if result.ok:
                    record = result.record or {}
                    row.status, row.target_number = SYNCED, _number_of(row, record)
                    synced.append((row.id, row.target_number, _id_of(record), None))
                    self.report.posted += 1
                elif result.duplicate_number:
                    unsure.append(row)
                else:
                    row.status, row.reason = FAILED, _refused_reason(row, result.reason)
                    failed.append((row.id, row.reason))
        self.ledger.mark_synced(synced)
        self.ledger.mark(FAILED, failed)
        if unsure:
            still_missing = self._confirm_existing(unsure)
            reason = (
                f"Accurate did not confirm the save ({outcome}); it will be retried"
                if isinstance(outcome, Exception)
                else "Accurate reported the number as taken but no such document was found; check Accurate"
            )
            self.ledger.mark(
                FAILED,
                [(row.id, reason) for row in still_missing],
                transient=isinstance(outcome, Exception),
            )
            for row in still_missing:
                row.status, row.reason = FAILED, reason

    def _confirm_existing(self, rows: list[LedgerRow]) -> list[LedgerRow]:
        """Mark synced the rows whose number is already in Accurate; return the others."""
        if not rows:
            return []
        found: dict[str, dict[str, Any]] = {}
        by_module: dict[str, list[LedgerRow]] = defaultdict(list)
        for row in rows:
            by_module[row.target_module].append(row)
        for module, module_rows in by_module.items():
            numbers = [row.target_number for row in module_rows if row.target_number]
            field_name = number_field(module)
            for i in range(0, len(numbers), BULK_SIZE):
                chunk = numbers[i : i + BULK_SIZE]
                found.update(self.accurate.find_by_numbers(module, chunk, field=field_name))
        confirmed = []
        missing = []
        for row in rows:
            record = found.get(row.target_number or "")
            if record is not None:
                note = "already in Accurate (confirmed)"
                confirmed.append((row.id, row.target_number, _id_of(record), note))
                row.status = SYNCED  # the number is the one looked up
                self.report.confirmed += 1
            else:
                missing.append(row)
        self.ledger.mark_synced(confirmed)
        return missing

    def _send_unnumbered(self, row: LedgerRow) -> tuple[str, Any]:
        """A record Accurate numbers itself (a customer without ID): find it first, post once.

        Runs in a worker thread: talks to Accurate only; the outcome is recorded by the caller.
        """
        try:
            existing = self._lookup(row)
            if existing is not None:
                return "found", existing
        except Exception as exc:  # noqa: BLE001 - cannot look: do not post blind
            return "error", exc
        try:
            return "saved", self.accurate.save(row.target_module, row.payload, idempotent=False)
        except Exception as exc:  # noqa: BLE001 - the save may have landed: look again
            try:
                existing = self._lookup(row)
            except Exception:  # noqa: BLE001
                existing = None
            return ("found_after_error", existing) if existing is not None else ("error", exc)

    def _record_unnumbered(self, row: LedgerRow, kind: str, value: Any) -> None:
        self._settle_unnumbered(row, kind, value)
        fresh = self.ledger.statuses([row.id]).get(row.id)
        if fresh:
            row.status, row.reason, row.target_number = fresh

    def _settle_unnumbered(self, row: LedgerRow, kind: str, value: Any) -> None:
        if kind in ("found", "found_after_error"):
            note = "already in Accurate" if kind == "found" else None
            self.ledger.mark_synced([(row.id, _number_of(row, value), _id_of(value), note)])
            if kind == "found":
                self.report.confirmed += 1
            else:
                self.report.posted += 1
        elif kind == "error":
            reason = f"Accurate did not confirm the save ({value}); it will be retried"
            self.ledger.mark(FAILED, [(row.id, reason)], transient=not _is_auth_error(value))
        elif value.ok:
            record = value.record or {}
            self.ledger.mark_synced([(row.id, _number_of(row, record), _id_of(record), None)])
            self.report.posted += 1
        else:
            self.ledger.mark(FAILED, [(row.id, _refused_reason(row, value.reason))])

    def _lookup(self, row: LedgerRow) -> dict[str, Any] | None:
        lookup = row.lookup or {}
        if not lookup.get("field"):
            return None
        field_name = number_field(row.target_module)
        for record in self.accurate.list(
            row.target_module,
            fields=["id", field_name, lookup["field"]],
            filters={lookup["field"]: lookup["value"]},
        ):
            return dict(record)
        return None


class EarlyPoster:
    """Posts a big run's stored documents while its extract still maps and stores the later chunks.

    The extract task hands it the ids of each stored chunk of a run of more than one chunk
    (``on_stored`` of :func:`extract_documents`). A thread with its own ledger connection and Accurate
    client posts them in rounds of whole chunks with :meth:`Loader.post_stored`: the same claims,
    numbers and lookups as the load task, under the same deployment-wide rate limit, so exactly-once
    does not depend on which task posts a document. The extract ends once the thread has posted what
    it was handed; the load task then posts whatever is still open and reports the run as before.

    Nothing here fails the extract: a document it cannot post stays open with its reason, and the load
    task re-reads its source, tries it again, then reports it; if the thread stops on an error, the
    load task posts everything left (a claimed document is looked up in Accurate first). A run of one
    chunk (every shift close, every real-time run) never starts the thread.
    """

    def __init__(
        self, open_loader: Callable[[], AbstractContextManager[Loader]], *, round_size: int = EARLY_ROUND
    ) -> None:
        self._open_loader = open_loader
        self._round_size = round_size
        self._queue: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.report = LoadReport()
        self.error: BaseException | None = None

    @classmethod
    @contextmanager
    def running(
        cls, open_loader: Callable[[], AbstractContextManager[Loader]], *, round_size: int = EARLY_ROUND
    ) -> Iterator[EarlyPoster]:
        """An early poster for one extract: on a normal exit it posts everything it was handed; when
        the extract fails, only the round under way ends (``EARLY_ABANDON_WAIT`` at most: a document
        left ``posting`` is looked up in Accurate by the load task before anything is posted again)."""
        early = cls(open_loader, round_size=round_size)
        try:
            yield early
        except BaseException:
            early.finish(abandon=True, timeout=EARLY_ABANDON_WAIT)
            raise
        early.finish()

    def stored(self, ids: list[int]) -> None:
        """Take a stored chunk's postable document ids (called by the extract, in its thread)."""
        if not ids or self._stop.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="early-poster", daemon=True)
            self._thread.start()
        self._queue.put(ids)

    def finish(self, *, abandon: bool = False, timeout: float | None = None) -> LoadReport:
        """Post everything handed over, then stop; with ``abandon`` only the round under way ends.

        ``timeout`` bounds the wait (an abandoned round whose answers hang): a document then left
        ``posting`` is looked up in Accurate by the load task before anything is posted again.
        """
        if self._thread is not None:
            if abandon:
                self._stop.set()
            self._queue.put(None)
            self._thread.join(timeout)
        return self.report

    def summary(self) -> dict[str, int]:
        """Counts for the extract task's XCom."""
        return {"posted_early": self.report.posted, "confirmed_early": self.report.confirmed}

    def _run(self) -> None:
        try:
            with self._open_loader() as loader:
                loader.report = self.report
                backlog: deque[list[int]] = deque()
                finished = False
                while not self._stop.is_set():
                    finished = self._take(backlog, wait=not backlog and not finished) or finished
                    if not backlog:
                        if finished:
                            return
                        continue
                    ids = backlog.popleft()
                    while backlog and len(ids) + len(backlog[0]) <= self._round_size:
                        ids = ids + backlog.popleft()
                    loader.post_stored(ids)
                    give_back_memory()
        except Exception as exc:  # noqa: BLE001 - the load task posts what is left; extract goes on
            self.error = exc
            log.exception("Posting during the extract stopped; the load task posts what is left")

    def _take(self, backlog: deque[list[int]], *, wait: bool) -> bool:
        """Move what was handed over into ``backlog`` (waiting for it only when ``wait``); True once
        the extract has said it is finished."""
        while True:
            try:
                item = self._queue.get(block=wait)
            except queue.Empty:
                return False
            if item is None:
                return True
            backlog.append(item)
            wait = False


class _Sender:
    """Claims, fills and sends documents for a :class:`Loader`, and records what came back.

    Documents of one module are sent 100 per bulk request; a partial batch waits while enough other
    requests are queued, so requests stay full. Claimed documents wait as light rows (in ``buffers``,
    then as formed requests in ``backlog``); at most ``2 x max_in_flight`` requests are handed to the
    pool, and their JSON is read (several requests per query) just before, on the calling thread,
    which also records every result and then drops the JSON again.
    """

    def __init__(
        self,
        loader: Loader,
        pool: ThreadPoolExecutor,
        prereqs: dict[int, list[LedgerRow]],
        pending: dict[int, LedgerRow],
    ) -> None:
        self.loader = loader
        self.pool = pool
        self.prereqs = prereqs
        self.pending = pending
        self.buffers: dict[str, list[LedgerRow]] = defaultdict(list)
        self.backlog: deque[tuple[str, str, list[LedgerRow]]] = deque()
        self.futures: dict[Future[Any], tuple[str, list[LedgerRow]]] = {}
        self.handed: set[int] = set()

    @property
    def busy(self) -> bool:
        return bool(self.futures) or bool(self.backlog) or any(self.buffers.values())

    def enqueue(self, rows: list[LedgerRow]) -> list[int]:
        """Hand ``rows`` over; returns the ids settled at once (taken elsewhere, or found in Accurate)."""
        if not rows:
            return self._pump()
        loader = self.loader
        self.handed.update(row.id for row in rows)
        claimed = set(loader.ledger.claim([row.id for row in rows], loader.run))
        settled = []
        for row in rows:
            if row.id not in claimed:  # another load holds or finished it: its outcome is theirs
                row.status = POSTING
                settled.append(row.id)
        rows = [row for row in rows if row.id in claimed]
        # Anything attempted before may already be in Accurate: look before posting again.
        retried = [row for row in rows if row.target_number and row.attempts > 0]
        loader._confirm_existing(retried)
        settled.extend(row.id for row in retried if row.status == SYNCED)
        for row in rows:
            if row.status == SYNCED:
                continue
            if row.target_number:
                buffer = self.buffers[row.target_module]
                buffer.append(row)
                if len(buffer) >= BULK_SIZE:
                    self.backlog.append(("chunk", row.target_module, buffer[:BULK_SIZE]))
                    del buffer[:BULK_SIZE]
            else:
                self.backlog.append(("single", row.target_module, [row]))
        settled.extend(self._pump())
        return settled

    def _pump(self) -> list[int]:
        """Flush a partial batch if the pipe would drain, and send what the pool can take."""
        self._flush_partial()
        return self._send()

    def _flush_partial(self) -> None:
        if len(self.futures) + len(self.backlog) >= self.loader.max_in_flight:
            return  # enough queued: let the batches fill up
        for module, buffer in self.buffers.items():
            if buffer:
                self.backlog.append(("chunk", module, list(buffer)))
                buffer.clear()

    def _send(self) -> list[int]:
        """Read the JSON of the next requests in one query and submit them; returns ids dropped.

        Refills only once the pool's queue is down to ``max_in_flight`` requests, up to twice that,
        so one query reads several requests and the workers never wait for it.
        """
        limit = self.loader.max_in_flight
        if not self.backlog or len(self.futures) > limit:
            return []
        batch: list[tuple[str, str, list[LedgerRow]]] = []
        while self.backlog and len(self.futures) + len(batch) < 2 * limit:
            batch.append(self.backlog.popleft())
        dropped = self._hydrate([row for _, _, rows in batch for row in rows])
        for kind, module, rows in batch:
            rows = [row for row in rows if row.id not in dropped]
            if rows:
                self._submit(kind, module, rows)
        return sorted(dropped)

    def _hydrate(self, rows: list[LedgerRow]) -> set[int]:
        """Give claimed light rows their payload, refs and lookup, and fill in their prerequisites'
        Accurate numbers (all synced by now: a row is claimed only once they are). Returns the ids of
        rows with nothing to post any more (re-mapped to a failure while waiting): marked failed."""
        ledger = self.loader.ledger
        heavy = ledger.heavy([row.id for row in rows])
        dropped: list[tuple[int, str]] = []
        for row in rows:
            stored = heavy.get(row.id)
            if stored is None or stored["payload"] is None:
                reason = (stored or {}).get("reason") or "it has nothing to post any more; it will be retried"
                row.status, row.reason, row.payload = FAILED, reason, None
                dropped.append((row.id, reason))
                continue
            row.payload, row.refs, row.lookup = stored["payload"], stored["refs"], stored["lookup"]
            _fill_refs(row, [self.pending.get(need.id, need) for need in self.prereqs.get(row.id, [])])
        ledger.mark(FAILED, dropped)
        return {doc_id for doc_id, _ in dropped}

    def _submit(self, kind: str, module: str, rows: list[LedgerRow]) -> None:
        loader = self.loader
        if kind == "chunk":
            future = self.pool.submit(loader._send_chunk, module, rows)
        else:
            future = self.pool.submit(loader._send_unnumbered, rows[0])
        self.futures[future] = (kind, rows)

    def collect(self) -> list[int]:
        """Wait for at least one request; record it; return the ids whose attempt is over."""
        settled = self._pump()
        if not self.futures:
            return settled
        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        for future in done:
            kind, rows = self.futures.pop(future)
            if kind == "chunk":
                self.loader._record_chunk(rows, future.result())
            else:
                self.loader._record_unnumbered(rows[0], *future.result())
            for row in rows:  # sent: back to a light row ("{}" still means it had a payload)
                row.payload, row.refs, row.lookup = {}, None, None
            settled.extend(row.id for row in rows)
        settled.extend(self._pump())
        return settled


def _fill_refs(row: LedgerRow, prereqs: list[LedgerRow]) -> None:
    if not row.refs or row.payload is None:
        return
    numbers = {(p.data_type, p.source_id): p.target_number for p in prereqs}
    for field_name, key in row.refs.items():
        number = numbers.get((key[0], key[1]))
        if number:
            row.payload[field_name] = number


def _number_of(row: LedgerRow, record: dict[str, Any]) -> str | None:
    field_name = number_field(row.target_module)
    value = record.get(field_name) or record.get("number")
    return str(value) if value else row.target_number


def _id_of(record: dict[str, Any]) -> int | None:
    value = record.get("id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


_REASON_ORDER = {FAILED: 0, BLOCKED: 1, SKIPPED: 2}


def _blocked_reason(stuck: list[LedgerRow]) -> str:
    """Why a document waits: the prerequisite to repair first (failed before blocked, oldest first)."""
    first = sorted(stuck, key=lambda p: (_REASON_ORDER.get(p.status, 3), p.source_date, p.id))[0]
    if first.status == FAILED and first.reason:
        reason = f"waits for {first.label}, which failed: {first.reason}"
    elif first.status == BLOCKED and first.reason:
        reason = f"waits for {first.label}, which is blocked: {first.reason}"
    elif first.status == SKIPPED:
        reason = f"needs {first.label}, which was skipped: {first.reason}"
    else:
        reason = f"waits for {first.label} ({first.status}, not in Accurate yet)"
    if len(stuck) > 1:
        reason += f" (and {len(stuck) - 1} more earlier documents not in Accurate yet)"
    return reason


def _awaiting_reason(labels: list[str]) -> str:
    reason = f"waits for {labels[0]}"
    if len(labels) > 1:
        reason += f" (and {len(labels) - 1} more earlier documents not read from iSeller yet)"
    return reason


def _refused_reason(row: LedgerRow, reason: str) -> str:
    return f"Accurate refused {row.label}: {reason}"


def _is_auth_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "AuthError"


def failure_message(report: LoadReport) -> SyncFailed:
    """The exception that makes the load task fail, with the reasons in its message."""
    transient = bool(report.failed) and all(row.transient for row in report.failed) and not report.blocked
    return SyncFailed(f"{report.summary()}\n{report.table()}", transient=transient)


def rows_by_source_key(rows: Iterable[LedgerRow]) -> list[str]:
    """Distinct source keys of rows, in order."""
    return list(dict.fromkeys(row.source_key for row in rows))
