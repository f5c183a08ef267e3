"""Run conf (trigger parameters) of the sync DAGs: what the API refuses, and what a run refuses.

Two layers, because Airflow's ``Param`` validation cannot say everything:

1. The params schema, checked by Airflow's REST API before a run exists (answer 400): types,
   ``minLength``/``maxLength`` and a ``pattern`` for times. The schema deliberately uses ``pattern``
   and not ``format: date-time``: Airflow 3.3 validates with jsonschema's ``FormatChecker``, whose
   ``date-time`` check only exists when the optional ``rfc3339-validator`` package is installed, so
   ``format`` alone lets ``"yesterday"`` through.
2. :func:`validate_run_conf`, run first by every task that reads conf: what crosses keys (both ends
   of a window, a shift with its register), and unknown keys (Airflow adds a conf key that matches
   no param as an extra param, without any check). It raises :class:`TriggerConfError`, which the
   task turns into ``AirflowFailException``: the run fails at once, without retries, naming the key,
   and the next run (a shift close) does not wait minutes behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from airflow.sdk import Param

from include.iseller_accurate.times import as_utc

#: ISO-8601 date and time, offset optional (offset-less means UTC): ``2026-11-16T03:00:00+07:00``.
DATE_TIME_PATTERN = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d"
    r"(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?$"
)
#: iSeller ids: no control characters, no surrounding spaces.
ID_PATTERN = r"^[^\x00-\x1f\x7f\s]([^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?$"
ID_MAX_LENGTH = 128


class TriggerConfError(ValueError):
    """The run's conf cannot be used; the message names the key and what to send instead."""


def time_param(description: str) -> Param:
    """An optional ISO-8601 date-time param, refused by the API when it is not one."""
    return Param(
        None,
        type=["null", "string"],
        pattern=DATE_TIME_PATTERN,
        maxLength=40,
        description=f"{description} ISO-8601 date and time, e.g. 2026-11-16T00:00:00+07:00.",
    )


def id_param(description: str) -> Param:
    """An optional iSeller id param (non-empty text without control characters)."""
    return Param(
        None,
        type=["null", "string"],
        minLength=1,
        maxLength=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description=description,
    )


def window_params(what: str = "source documents") -> dict[str, Param]:
    """``window_start``/``window_end``: backfill an explicit window (both or neither)."""
    return {
        "window_start": time_param(f"Backfill: read {what} from this time. Give window_end too."),
        "window_end": time_param(f"Backfill: read {what} up to this time. Give window_start too."),
    }


def _parse_time(key: str, value: Any) -> datetime:
    try:
        return as_utc(str(value))
    except ValueError:
        raise TriggerConfError(
            f"conf.{key}: {str(value)[:60]!r} is not a date and time as ISO-8601"
            " (e.g. 2026-11-16T00:00:00+07:00); trigger again with a valid value"
        ) from None


def validate_run_conf(conf: Mapping[str, Any] | None, declared: Iterable[str]) -> None:
    """Refuse conf the params schema could not refuse (see the module docstring)."""
    conf = dict(conf or {})
    allowed = set(declared)
    unknown = sorted(str(key) for key in conf if key not in allowed)
    if unknown:
        raise TriggerConfError(
            f"conf.{unknown[0]}: unknown key"
            + (f" (also {', '.join(unknown[1:])})" if len(unknown) > 1 else "")
            + f"; this DAG accepts {', '.join(sorted(allowed)) or 'no conf'}. Check the spelling and"
            " trigger again"
        )
    start, end = conf.get("window_start"), conf.get("window_end")
    if bool(start) != bool(end):
        given, missing = ("window_start", "window_end") if start else ("window_end", "window_start")
        raise TriggerConfError(
            f"conf.{missing}: missing; conf.{given} needs it (give both ends of the window, or neither)"
        )
    if start and end:
        begin, finish = _parse_time("window_start", start), _parse_time("window_end", end)
        if begin >= finish:
            raise TriggerConfError(
                f"conf.window_end: {end} is not after conf.window_start {start}; the window is empty or"
                " reversed"
            )
    shift_id, register_id = conf.get("register_shift_id"), conf.get("register_id")
    if shift_id and not register_id:
        raise TriggerConfError(
            "conf.register_id: missing; conf.register_shift_id needs the register the shift belongs to"
        )
    if register_id and not shift_id:
        raise TriggerConfError(
            "conf.register_shift_id: missing; conf.register_id names a register but not which of its"
            " shifts closed"
        )
    if conf.get("outlet_id") and not shift_id:
        raise TriggerConfError(
            "conf.register_shift_id: missing; conf.outlet_id is only used with a closed shift"
            " (register_id and register_shift_id)"
        )
    if shift_id and (start or end):
        raise TriggerConfError(
            "conf.window_start: not allowed with conf.register_shift_id (a shift run reads the shift's"
            " own open-to-close window); send one or the other"
        )
