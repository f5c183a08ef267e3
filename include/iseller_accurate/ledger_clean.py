"""Before a document is stored in the ledger: cleaned, or failed alone with its reason.

The streams check every field they read (see :mod:`checks`); this is the net under them, used by
:meth:`Ledger.upsert <include.iseller_accurate.ledger.Ledger.upsert>` on every document, so that no
value can make the whole batch's transaction fail.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from include.iseller_accurate import jsonutil
from include.iseller_accurate.checks import FieldProblem, clean_text, storable
from include.iseller_accurate.status import FAILED

if TYPE_CHECKING:
    from include.iseller_accurate.ledger import Document

_TEXT_COLUMNS = ("source_id", "source_key", "source_number", "outlet_id", "target_number", "reason")


def storable_document(doc: Document) -> Document:
    """The document as PostgreSQL can store it, decided for this document alone.

    The streams check their fields first (see ``checks``); this is the net under them, so that no
    value can make the whole batch's transaction fail. Text columns and the source record are
    cleaned (NUL removed, other control characters replaced; what changed is recorded). A payload
    that would have to change, or that cannot be written as JSON, is not posted: the document fails
    with the reason naming the field.
    """
    changes: dict[str, Any] = {}
    for name in _TEXT_COLUMNS:
        value = getattr(doc, name)
        if isinstance(value, str):
            text, note = clean_text(value)
            if note:
                changes[name] = text
    cleaned = list(doc.cleaned)
    label = replace(doc, **changes).label
    try:
        source, changed = (None, []) if doc.source is None else storable(doc.source, "source", strict=False)
        json_text(source)
    except (FieldProblem, TypeError, ValueError, RecursionError) as exc:
        source, changed = {"unstorable": repr(doc.source)[:2000]}, [f"source ({exc})"]
    if changed and not cleaned:
        cleaned.append(
            f"{label}: {', '.join(changed[:5])}: changed before storing (text cleaned, or nesting"
            " deeper than 32 levels left out)"
        )
    changes["source"] = source
    for name in ("refs", "lookup"):
        value = getattr(doc, name)
        if value:
            changes[name] = storable(value, name, strict=False)[0]
    problem = None
    if doc.payload is not None:
        try:
            payload, bad = storable(doc.payload, "payload")
            json_text(payload)
        except FieldProblem as exc:
            problem = f"{exc.field} is {exc.problem.split(' is ', 1)[-1]}"
        except (TypeError, ValueError, RecursionError) as exc:
            problem = f"payload cannot be written as JSON ({exc})"
        else:
            if bad:
                problem = (
                    f"{', '.join(bad[:5])} holds characters Accurate and the ledger cannot take"
                    " (NUL, control characters or invalid Unicode)"
                )
    if problem:
        changes.update(
            payload=None,
            status=FAILED,
            reason=f"{label}: {problem}; correct the source in iSeller, then refresh",
        )
    if cleaned != doc.cleaned:
        changes["cleaned"] = cleaned
    return replace(doc, **changes) if changes else doc


def json_text(value: Any) -> str | None:
    """A JSON column's value as text (Decimal kept exactly), or None."""
    return None if value is None else jsonutil.dumps(value)
