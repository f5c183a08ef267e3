"""Sales, register shifts: reading the orders of one closed shift, or of every closed shift no run read.

In ``shift_close`` mode the POS triggers a run per closed shift (its conf names the shift); a shift
whose trigger never arrived is read by the next shift sweep. Which shifts were read is kept in
``sync.register_shifts_read``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from include.iseller_accurate.ledger import Ledger, RunRef
from include.iseller_accurate.pipeline import ExtractContext
from include.iseller_accurate.streams.common import parse_time

#: Internal param set by ``plan_run``: this run sweeps closed shifts instead of reading a window.
SHIFT_SWEEP = "_shift_sweep"
#: Bookmark (``sync.cursors``) of the shift sweep: the run time of the last complete sweep.
SHIFT_SWEEP_CURSOR = "sales_shift_sweep"
#: The sweep lists shifts closed since its bookmark minus this (an offline POS uploads a shift late).
SHIFT_SWEEP_OVERLAP = timedelta(days=1)
#: At most this many shifts per sweep run; the rest are read by the next sweep.
MAX_SWEEP_SHIFTS = 200

#: A shift read by a run: (the shift, how many orders, read by "trigger" or "sweep").
ShiftRead = tuple[dict[str, Any], int, str]


def in_shift(order: Any, start: datetime, end: datetime) -> bool:
    """Whether an order iSeller listed for a shift's register and times belongs to that shift.

    An order whose ``order_date`` is missing or unreadable is kept: dropping it here would lose it
    without a trace, and raising would fail the whole shift. Kept, it reaches the per-document
    check, which fails that order alone with a reason naming its ``order_date``.
    """
    if not isinstance(order, dict):
        return True
    try:
        moment = parse_time(order.get("order_date"))
    except ValueError:  # FieldProblem
        return True
    return moment is None or start <= moment <= end


def shift_bounds(shift: dict[str, Any]) -> tuple[datetime, datetime]:
    opened, closed = parse_time(shift.get("open_date")), parse_time(shift.get("closed_date"))
    if opened is None or closed is None:
        raise ValueError(f"register shift {shift.get('register_shift_id')} is not closed")
    return opened, closed


def shifts_already_read(ledger: Ledger, shift_ids: Sequence[str]) -> set[str]:
    """Which of ``shift_ids`` a run has already read (table ``sync.register_shifts_read``)."""
    if not shift_ids:
        return set()
    rows = ledger.conn.execute(
        "SELECT register_shift_id FROM sync.register_shifts_read WHERE register_shift_id = ANY(%s)",
        (list(shift_ids),),
    ).fetchall()
    return {row["register_shift_id"] if isinstance(row, dict) else row[0] for row in rows}


def record_shifts_read(ledger: Ledger, shifts: Sequence[ShiftRead], run: RunRef) -> None:
    """Remember shifts whose orders are now stored in the ledger (by a trigger or by the sweep)."""
    if not shifts:
        return
    with ledger.conn.transaction():
        for shift, orders, read_by in shifts:
            ledger.conn.execute(
                "INSERT INTO sync.register_shifts_read (register_shift_id, register_id, outlet_id,"
                " open_date, closed_date, orders, read_by, dag_id, run_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (register_shift_id) DO UPDATE SET orders = EXCLUDED.orders,"
                " closed_date = EXCLUDED.closed_date, dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id,"
                " last_read_at = now()",
                (
                    str(shift.get("register_shift_id")),
                    str(shift.get("register_id") or ""),
                    shift.get("outlet_id"),
                    parse_time(shift.get("open_date")),
                    parse_time(shift.get("closed_date")),
                    orders,
                    read_by,
                    run.dag_id,
                    run.run_id,
                ),
            )


def find_shift(ctx: ExtractContext) -> dict[str, Any]:
    """The closed shift the trigger's conf names; conf that cannot name one fails the run at once."""
    from include.iseller_accurate.clients.errors import IsellerBusinessError
    from include.iseller_accurate.conf import TriggerConfError

    params = ctx.params
    shift_id, register_id = params["register_shift_id"], params.get("register_id")
    try:
        shifts = list(
            ctx.iseller.get_register_shifts(
                register_id=register_id, outlet_id=params.get("outlet_id"), register_shift_id=shift_id
            )
        )
    except IsellerBusinessError as error:  # e.g. "Register not found": retrying cannot help
        raise TriggerConfError(
            f"conf.register_id/conf.outlet_id: iSeller refused them ({error}); check the trigger's conf"
        ) from None
    for shift in shifts:
        if str(shift.get("register_shift_id")) != str(shift_id):
            continue
        if parse_time(shift.get("open_date")) is None:
            raise TriggerConfError(f"conf.register_shift_id: shift {shift_id} has no open date in iSeller")
        if parse_time(shift.get("closed_date")) is None:
            raise TriggerConfError(
                f"conf.register_shift_id: shift {shift_id} is still open in iSeller; it is synced by"
                " the next shift sweep after it closes (or trigger again once it is closed)"
            )
        return {"register_id": register_id, "outlet_id": params.get("outlet_id"), **shift}
    raise TriggerConfError(
        f"conf.register_shift_id: shift {shift_id} of register {register_id} was not found in iSeller;"
        " check the register_shift_id in the trigger's conf"
    )


def unread_closed_shifts(ctx: ExtractContext, lookback: timedelta) -> tuple[list[dict[str, Any]], bool]:
    """Every closed shift no run has read (the POS trigger never arrived, or failed), oldest first, at
    most :data:`MAX_SWEEP_SHIFTS` of them; and whether that is all of them.

    Lists the shifts closed since the last sweep (minus a day of overlap, for shifts an offline POS
    uploads late; ``lookback`` before the run's time on the first sweep) up to the run's time, and
    keeps those not in ``sync.register_shifts_read``.
    """
    if ctx.ledger is None:
        raise RuntimeError("the shift sweep needs the ledger")
    cursor = ctx.ledger.cursor(SHIFT_SWEEP_CURSOR)
    end = ctx.window_end
    since = min(cursor - SHIFT_SWEEP_OVERLAP if cursor else end - lookback, end)
    closed = [
        shift
        for shift in ctx.iseller.get_register_shifts(
            closed_after=since, closed_before=end + timedelta(seconds=1)
        )
        if (moment := parse_time(shift.get("closed_date"))) is not None
        and since <= moment <= end
        and parse_time(shift.get("open_date")) is not None
    ]
    known = shifts_already_read(ctx.ledger, [str(s.get("register_shift_id")) for s in closed])
    unread = sorted(
        (s for s in closed if str(s.get("register_shift_id")) not in known),
        key=lambda s: parse_time(s.get("closed_date")) or end,
    )
    return unread[:MAX_SWEEP_SHIFTS], len(unread) <= MAX_SWEEP_SHIFTS
