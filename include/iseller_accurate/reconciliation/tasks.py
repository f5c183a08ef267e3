"""The tasks of DAG ``iseller_accurate_reconciliation``: ``repost >> reconcile >> check_stock``.

- ``repost`` (only when the run's conf names differences): the documents of "missing in Accurate"
  differences are checked gone by number, reopened in the ledger and posted by the normal loader
  under their own numbers (see :func:`.store.repost`).
- ``reconcile``: the sales of each mapped outlet (or ``outlet_ids``) and local day of the range:
  ``date_from``..``date_to``, by default the run's local day and the day before (a late sync or a
  late edit is still seen the next day). Red days are alerted once each. A red day is not a task
  failure: the task fails only when a side could not be read.
- ``check_stock``: iSeller's on-hand against Accurate's stock, per outlet warehouse (``check_stock``
  false skips it).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from airflow.sdk import Param, task

from include.iseller_accurate.ledger import Ledger, dsn_from_connection
from include.iseller_accurate.pipeline import failure_message
from include.iseller_accurate.reconciliation import run as recon
from include.iseller_accurate.settings import SyncSettings, require_settings
from include.iseller_accurate.tasks import ACCURATE_POOL, accurate_client, iseller_client, run_ref
from include.iseller_accurate.times import run_time

log = logging.getLogger(__name__)

DAG_ID = "iseller_accurate_reconciliation"
#: Most differences one run may re-post (a page of them).
MAX_REPOST = 500

PARAMS: dict[str, Param] = {
    "date_from": Param(
        None,
        type=["null", "string"],
        format="date",
        description="First local day to reconcile (YYYY-MM-DD). Default: the day before the run's day.",
    ),
    "date_to": Param(
        None,
        type=["null", "string"],
        format="date",
        description="Last local day to reconcile (YYYY-MM-DD). Default: the run's day.",
    ),
    "outlet_ids": Param(
        None,
        type=["null", "array"],
        items={"type": "string", "minLength": 1},
        maxItems=1000,
        description="Only these iSeller outlet ids (default: every outlet mapped in the settings).",
    ),
    "repost": Param(
        None,
        type=["null", "array"],
        items={"type": "integer", "minimum": 1},
        maxItems=MAX_REPOST,
        description="Re-post the documents of these 'missing in Accurate' differences (the page's Re-post).",
    ),
    "check_stock": Param(True, type="boolean", description="Also compare stock per outlet warehouse."),
}


def day_range(params: dict[str, Any], context: dict[str, Any], settings: SyncSettings) -> list[date]:
    """The local days a run reconciles (see the module docstring)."""
    today = run_time(context).astimezone(settings.tz).date()
    try:
        start = date.fromisoformat(params["date_from"]) if params.get("date_from") else None
        end = date.fromisoformat(params["date_to"]) if params.get("date_to") else None
    except (TypeError, ValueError):
        raise ValueError("date_from / date_to: give local days as YYYY-MM-DD") from None
    if start is None and end is None:
        start, end = today - timedelta(days=1), today
    elif start is None:
        start = end
    elif end is None:
        end = start
    assert start is not None and end is not None
    return recon.days_between(start, end)


def reconciliation_tasks() -> None:
    """Add the three tasks to the DAG being defined."""

    @task(task_id="repost", pool=ACCURATE_POOL)
    def repost(**context: Any) -> dict[str, Any]:
        """Re-post, exactly once, the documents of the differences named in conf ``repost``."""
        ids = [int(i) for i in (context.get("params") or {}).get("repost") or []]
        if not ids:
            return {"reopened": 0}
        run = run_ref(context)
        dsn = dsn_from_connection()
        accurate = accurate_client(dsn)
        with Ledger.open(dsn) as ledger:
            outcome, report = recon.repost_and_load(ledger, accurate, ids, run)
            for refusal in outcome["refused"]:
                log.warning("Not re-posted: %s", refusal)
        log.info("%s", report.summary())
        if report.failed or report.blocked:
            raise failure_message(report)
        return {
            "reopened": len(outcome["reopened"]),
            "refused": len(outcome["refused"]),
            "posted": report.posted,
            "confirmed": report.confirmed,
        }

    @task(task_id="reconcile", pool=ACCURATE_POOL)
    def reconcile(_: Any, **context: Any) -> dict[str, Any]:
        """Compare iSeller, Accurate and the ledger for each outlet and day; alert new red days."""
        params = dict(context.get("params") or {})
        settings = require_settings()
        days = day_range(params, context, settings)
        outlets = recon.outlets_of(settings, params.get("outlet_ids"))
        if not outlets:
            log.warning("No outlet is mapped in the settings: nothing to reconcile")
            return {"days": 0}
        run = run_ref(context)
        dsn = dsn_from_connection()
        with Ledger.open(dsn) as ledger:
            iseller, accurate = iseller_client(settings), accurate_client(dsn)
            outcome = recon.reconcile_sales(settings, ledger, iseller, accurate, days, outlets, run)
            alerted = recon.send_red_day_alerts(ledger, outcome, settings)
        summary = {**outcome.summary(), "alerted": alerted}
        for day in outcome.red:
            log.warning(
                "%s %s: %d difference(s), %s",
                day.outlet_id,
                day.day,
                len(day.differences),
                day.difference_amount,
            )
            for diff in day.differences[:20]:
                log.warning("  %s: %s", diff.label, diff.detail)
        log.info("Reconciliation: %s", summary)
        return summary

    @task(task_id="check_stock", pool=ACCURATE_POOL)
    def check_stock(_: Any, **context: Any) -> dict[str, Any]:
        """iSeller's on-hand per outlet against Accurate's stock per warehouse."""
        params = dict(context.get("params") or {})
        if not params.get("check_stock", True):
            return {"outlets": 0}
        settings = require_settings()
        outlets = recon.outlets_of(settings, params.get("outlet_ids"))
        checked_on = run_time(context).astimezone(settings.tz).date()
        dsn = dsn_from_connection()
        with Ledger.open(dsn) as ledger:
            iseller, accurate = iseller_client(settings), accurate_client(dsn)
            results = recon.check_outlet_stock(settings, ledger, iseller, accurate, outlets, checked_on)
        for result in results:
            for diff in result.differences:
                log.warning(
                    "%s %s in %s: iSeller %s, Accurate %s (%s)",
                    result.outlet_id,
                    diff.item_no,
                    diff.warehouse,
                    diff.iseller_qty,
                    diff.accurate_qty,
                    diff.explanation,
                )
        return {
            "outlets": len(results),
            "items_checked": sum(r.items_checked for r in results),
            "differences": sum(len(r.differences) for r in results),
            "unexplained": sum(r.unexplained for r in results),
        }

    check_stock(reconcile(repost()))
