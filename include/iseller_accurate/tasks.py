"""Airflow task entry points: the one place where Airflow meets the sync's code.

- :func:`sync_tasks`: the ``extract`` and ``load`` tasks every iSeller-to-Accurate DAG is made of;
- :func:`run_webhook_events`, :func:`run_renewal`, :func:`run_catch_up`: the tasks of the Accurate
  to iSeller DAGs (the work itself is in ``purchases/``);
- one client factory per API (:func:`iseller_client`, :func:`accurate_client`), one failure
  (:class:`SyncFailed`) and one way to end a task on it (:func:`end_task`), the window params.

DAG files stay thin: they declare schedule, params and docs, then call these. Nothing below this
module imports it. XCom carries counts only; documents and events live in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from airflow.sdk import Param, task

from include.iseller_accurate.alerts import SyncFailureNotifier
from include.iseller_accurate.conf import TriggerConfError, validate_run_conf, window_params
from include.iseller_accurate.ledger import Ledger, RunRef, dsn_from_connection
from include.iseller_accurate.notes import record_failure, record_success
from include.iseller_accurate.pipeline import (
    EarlyPoster,
    ExtractContext,
    Loader,
    Stream,
    SyncFailed,
    extract_documents,
    failure_message,
    refresh_documents,
    rows_by_source_key,
    run_window,
)
from include.iseller_accurate.settings import SyncSettings, require_settings
from include.iseller_accurate.times import as_utc, run_time

log = logging.getLogger(__name__)

ACCURATE_POOL = "accurate_api"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "iseller-accurate",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    # Alert (connection sync_alerts; off without it), then end the log with the failed documents and
    # set the task note to a one-line summary; after a retry or refresh succeeds, update that note.
    "on_failure_callback": [SyncFailureNotifier(), record_failure],
    "on_success_callback": [record_success],
}

#: Run-time options shared by the window-based DAGs (backfill a window explicitly). The API refuses
#: a value that is not an ISO-8601 date-time (``pattern``; see ``conf.py`` for why not ``format``).
WINDOW_PARAMS: dict[str, Param] = window_params()
#: The same options for DAG ``accurate_webhook_maintenance``: re-read a window of webhook history.
HISTORY_WINDOW_PARAMS: dict[str, Param] = window_params("Accurate's webhook history")


def run_ref(context: dict[str, Any]) -> RunRef:
    """The task instance of ``context`` as recorded in the ledger."""
    ti = context["ti"]
    return RunRef(
        dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
        map_index=getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1,
        try_number=getattr(ti, "try_number", 1) or 1,
    )


def check_conf(context: dict[str, Any]) -> None:
    """Fail the task at once (no retries) when the run's conf is unusable, naming the key."""
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    if dag is None or dag_run is None:
        return
    try:
        validate_run_conf(getattr(dag_run, "conf", None), dag.params.keys())
    except TriggerConfError as error:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(error)) from None


def check_run(context: dict[str, Any]) -> SyncSettings:
    """First thing every sync task does: settings and conf usable, or fail at once (no retries).

    Neither a bad settings Variable nor a bad trigger conf can be repaired by retrying: both fail the
    task with ``AirflowFailException`` naming the key, so the run is red within seconds and the next
    run (a shift close waiting behind ``max_active_runs=1``) starts at once.
    """
    settings = require_settings()
    check_conf(context)
    return settings


def iseller_client(settings: SyncSettings | None = None) -> Any:
    """The iSeller client; reads that take ``time_zone`` send the shop's (settings ``timezone``)."""
    from include.iseller_accurate.clients import IsellerHook

    return IsellerHook(shop_tz=settings.tz if settings is not None else None)


def accurate_client(dsn: str | None = None) -> Any:
    """The Accurate client, its requests spaced by the limiter shared with every other task.

    The limiter's database is ``dsn`` (a task that also opens the ledger reads the ``sync_db``
    connection once and passes it), else the ``sync_db`` connection, its extras (``sslmode`` ...) kept.
    """
    from include.iseller_accurate.clients import AccurateHook, PostgresRateLimiter

    return AccurateHook(rate_limiter=PostgresRateLimiter(dsn or dsn_from_connection()))


def end_task(failure: SyncFailed) -> NoReturn:
    """End the task on ``failure``: Airflow retries a transient one by itself; any other fails at
    once, without retries (a repair is needed first; then clearing the task re-runs exactly it)."""
    if failure.transient:
        raise failure
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(str(failure)) from None


def sync_tasks(stream_factory: Callable[[], Stream]) -> None:
    """Add ``extract >> load`` for one stream to the DAG being defined."""

    @task(task_id="extract")
    def extract(**context: Any) -> dict[str, Any]:
        """Read the run's source documents, map them, store them in the ledger (counts to XCom)."""
        settings = check_run(context)
        stream = stream_factory()
        params = dict(context.get("params") or {})
        plan = getattr(stream, "plan_run", None)
        if plan is not None:  # e.g. sales in shift_close mode: a scheduled run sweeps closed shifts
            params = plan(settings, params)
        iseller = iseller_client(settings)
        run = run_ref(context)
        dsn = dsn_from_connection()
        with Ledger.open(dsn) as ledger, posting_early(dsn, run) as early:
            windowed = stream.uses_window(params)
            start, end = run_window(stream, ledger, context)
            ctx = ExtractContext(settings, params, start, end, iseller=iseller, ledger=ledger)
            # An explicit backfill window must not move the incremental bookmark.
            advance = windowed and not params.get("window_start")
            try:
                summary = extract_documents(
                    stream, ctx, ledger, run, advance_cursor=advance, on_stored=early.stored
                )
                early.finish()
                summary.update(early.summary())
                if early.report.posted or early.report.confirmed:
                    log.info("Posted to Accurate during the extract: %s", early.summary())
            except TriggerConfError as error:  # e.g. a shift iSeller does not know
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(str(error)) from None
            # Only now that the documents are stored: remember what was read (shifts, sweep bookmark).
            mark_read = getattr(stream, "mark_read", None)
            if mark_read is not None:
                summary.update(mark_read(ctx, ledger, run))
            return summary

    @task(task_id="load", pool=ACCURATE_POOL)
    def load(extracted: Any, **context: Any) -> dict[str, Any]:
        """Post the run's open documents to Accurate; fail when any is not synced (refresh = clear)."""
        settings = check_run(context)
        stream = stream_factory()
        dsn = dsn_from_connection()
        iseller, accurate = iseller_client(settings), accurate_client(dsn)
        run = run_ref(context)
        with Ledger.open(dsn) as ledger:
            loader = Loader(ledger, accurate, run, refresh=_refresher(stream, settings, iseller, ledger, run))
            report = loader.load_run()
        log.info("%s", report.summary())
        if report.failed or report.blocked:
            log.error("Documents not synced:\n%s", report.table())
            end_task(failure_message(report))
        return {"posted": report.posted, "confirmed": report.confirmed, "total": report.total}

    load(extract())


def posting_early(dsn: str, run: RunRef) -> AbstractContextManager[EarlyPoster]:
    """The extract's :class:`EarlyPoster`: a big run's stored chunks are posted while later ones are
    mapped, by a thread with its own ledger connection and Accurate client (opened only then)."""

    @contextmanager
    def open_loader() -> Iterator[Loader]:
        with Ledger.open(dsn) as ledger:
            yield Loader(ledger, accurate_client(dsn), run)

    return EarlyPoster.running(open_loader)


def _refresher(
    stream: Stream, settings: SyncSettings, iseller: Any, ledger: Ledger, run: RunRef
) -> Callable[[list[Any]], None]:
    """Before a retry: re-read the failed documents' sources (repairs made in iSeller count)."""

    def refresh(rows: list[Any]) -> None:
        # Released documents of other streams (a stock opname released by a sales run) keep their payload.
        keys = rows_by_source_key(row for row in rows if stream.owns(row.data_type))
        if not keys:
            return
        log.info("Re-reading %d source records of %d documents before retrying", len(keys), len(rows))
        now = datetime.now(UTC)  # refetch reads by key; the window is not used
        ctx = ExtractContext(settings, {}, now, now, iseller, ledger)
        refresh_documents(stream, ctx, ledger, run, keys)

    return refresh


# ---------------------------------------------------------------------------------------------
# Accurate to iSeller: the tasks of DAGs accurate_webhooks_to_iseller and accurate_webhook_maintenance


def run_webhook_events(context: dict[str, Any]) -> dict[str, Any]:
    """Task ``process_events`` of DAG ``accurate_webhooks_to_iseller``: apply the pending Accurate
    purchase events to iSeller; the task fails when any event failed (see :func:`end_task`)."""
    from include.iseller_accurate.purchases.processor import WebhookProcessor, process_run
    from include.iseller_accurate.purchases.store import WebhookEventLedger

    settings = check_run(context)  # an invalid settings Variable or conf fails at once, naming the key
    run = run_ref(context)
    dsn = dsn_from_connection()
    accurate, iseller = accurate_client(dsn), iseller_client(settings)
    with WebhookEventLedger.open(dsn) as ledger:
        try:
            return process_run(ledger, WebhookProcessor(ledger, accurate, iseller, settings, run), run)
        except SyncFailed as failure:
            end_task(failure)


def run_renewal() -> dict[str, Any]:
    """Task ``renew_subscription``: renew Accurate's webhook subscription, record the new expiry.

    It reads no settings Variable: an invalid Variable must not let the subscription lapse."""
    from include.iseller_accurate.purchases.maintenance import renew_subscription
    from include.iseller_accurate.purchases.store import WebhookEventLedger

    dsn = dsn_from_connection()
    accurate = accurate_client(dsn)
    with WebhookEventLedger.open(dsn) as ledger:
        result = renew_subscription(accurate, ledger)
    log.info(
        "Accurate webhook subscription renewed; it now expires %s (Accurate's time)", result["expires_text"]
    )
    return result


def run_catch_up(context: dict[str, Any]) -> dict[str, Any]:
    """Task ``catch_up``: store the deliveries of ``webhook-history.do`` since the bookmark (or the
    window given in the run's params), then move the bookmark to the end of the window read."""
    from include.iseller_accurate.purchases.maintenance import (
        advance_history_cursor,
        catch_up,
        history_cursor,
        history_window,
    )
    from include.iseller_accurate.purchases.store import WebhookEventLedger

    check_conf(context)  # a bad backfill window fails at once, naming the key
    params = dict(context.get("params") or {})
    if bool(params.get("window_start")) != bool(params.get("window_end")):
        raise ValueError("give both window_start and window_end, or neither")
    explicit = bool(params.get("window_start"))
    dsn = dsn_from_connection()
    accurate = accurate_client(dsn)
    with WebhookEventLedger.open(dsn) as ledger:
        start, end = history_window(
            history_cursor(ledger.conn),
            run_time(context),
            as_utc(params["window_start"]) if explicit else None,
            as_utc(params["window_end"]) if explicit else None,
        )
        summary = catch_up(accurate, ledger, start, end)
        if not explicit:
            advance_history_cursor(ledger.conn, end)
    return summary
