"""The status vocabulary: what a row of the sync ledger (and of the webhook event log) can be in.

One home for these words and what they mean, so the ledger, the loader, the task notes and the
operator pages say the same thing. The values are stored as text; the migrations' ``CHECK``
constraints list the same values (``0001_ledger.sql`` for documents, ``0003_webhook_events.sql`` for
events), so a value is never renamed here without a migration.

A document (``sync.documents.status``) moves ``pending -> posting -> synced``, or to ``failed`` /
``blocked`` with a reason an operator can act on, or is ``skipped`` (nothing to post).
"""

from __future__ import annotations

# -- documents (sync.documents) ---------------------------------------------------------------
PENDING = "pending"
POSTING = "posting"
SYNCED = "synced"
FAILED = "failed"
BLOCKED = "blocked"
SKIPPED = "skipped"

#: What each document status means, as an operator reads it.
MEANINGS: dict[str, str] = {
    PENDING: "stored, not posted to Accurate yet (the run's load posts it)",
    POSTING: "a load is posting it now (marked before the call, so an unknown outcome is looked up"
    " by number in Accurate before anything is posted again)",
    SYNCED: "in Accurate, under the number shown",
    FAILED: "not in Accurate; the reason says what to repair (in iSeller or the settings); then refresh",
    BLOCKED: "not posted: it waits for another document (named in the reason) that is not in Accurate yet",
    SKIPPED: "nothing to post (e.g. a voided order); recorded so that nothing is lost silently",
}

#: Every document status, in the order the pages list them (what needs attention first).
DOCUMENT_STATUSES: tuple[str, ...] = (FAILED, BLOCKED, PENDING, POSTING, SYNCED, SKIPPED)
#: Statuses that need no more work.
DONE: tuple[str, ...] = (SYNCED, SKIPPED)
#: Statuses a load may (re-)attempt: everything not done. Also "not synced yet" for reconciliation.
OPEN: tuple[str, ...] = (PENDING, POSTING, FAILED, BLOCKED)
#: Statuses an operator must act on (the load task is red while its run has any).
ATTENTION: tuple[str, ...] = (FAILED, BLOCKED)
#: Statuses a load may claim for posting (``posting``: a crashed earlier attempt, settled by lookup).
CLAIMABLE: tuple[str, ...] = (PENDING, FAILED, BLOCKED, POSTING)
#: Statuses a re-extract may not overwrite: the row keeps its payload and number (never a second post).
KEPT_ON_REEXTRACT: tuple[str, ...] = (SYNCED, POSTING)


def satisfies(status: str, *, ordering_only: bool) -> bool:
    """Whether a prerequisite in ``status`` lets the document that needs it go.

    A prerequisite needed for its data (its Accurate number fills the document) must be synced; one
    that only orders (an earlier sale before a stock opname) is also satisfied when skipped.
    """
    return status == SYNCED or (ordering_only and status == SKIPPED)


def sql_list(statuses: tuple[str, ...]) -> str:
    """``'a', 'b'`` for an SQL ``IN (...)`` list of these (constant, trusted) statuses."""
    return ", ".join(f"'{status}'" for status in statuses)


# -- Accurate webhook events (sync.webhook_events) --------------------------------------------
EVENT_PENDING = "pending"
EVENT_PROCESSING = "processing"
EVENT_DONE = "done"
EVENT_FAILED = "failed"
EVENT_IGNORED = "ignored"

#: Every event status, in the order the pages list them.
EVENT_STATUSES: tuple[str, ...] = (EVENT_FAILED, EVENT_PENDING, EVENT_PROCESSING, EVENT_DONE, EVENT_IGNORED)
