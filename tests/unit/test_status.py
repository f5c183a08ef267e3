"""The status vocabulary says what the database accepts: the same values as the migrations' CHECKs."""

from __future__ import annotations

import re

from include.iseller_accurate import status
from include.iseller_accurate.sync_db import MIGRATIONS_DIR


def _checked(migration: str) -> set[str]:
    sql = (MIGRATIONS_DIR / migration).read_text()
    found = re.search(r"CHECK \(status IN \(([^)]*)\)\)", sql)
    assert found, migration
    return {value.strip().strip("'") for value in found.group(1).split(",")}


def test_document_statuses_are_those_the_ledger_accepts() -> None:
    assert set(status.DOCUMENT_STATUSES) == _checked("0001_ledger.sql")
    assert set(status.MEANINGS) == set(status.DOCUMENT_STATUSES)
    assert set(status.DONE) | set(status.OPEN) == set(status.DOCUMENT_STATUSES)
    assert not set(status.DONE) & set(status.OPEN)


def test_event_statuses_are_those_the_event_log_accepts() -> None:
    assert set(status.EVENT_STATUSES) == _checked("0003_webhook_events.sql")


def test_a_skipped_prerequisite_satisfies_only_an_ordering() -> None:
    assert status.satisfies(status.SYNCED, ordering_only=False)
    assert status.satisfies(status.SKIPPED, ordering_only=True)
    assert not status.satisfies(status.SKIPPED, ordering_only=False)
    assert not any(
        status.satisfies(value, ordering_only=True) for value in status.OPEN
    )
