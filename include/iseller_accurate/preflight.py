"""The go-live preflight: is everything the sync needs in place, before a document is posted?

A shop runs it (DAG ``iseller_accurate_preflight``) before the first sync and after every mapping
change. It **reads only**: Accurate ``api-token.do`` (host discovery) and ``list.do``; iSeller's token,
``GetOutlets``, ``GetProducts`` and ``GetOrders``; the ledger's webhook subscription row. It posts
nothing anywhere.

Each finding is a :class:`Problem`: an ``error`` is something that would make documents fail (a
warehouse Accurate does not know, a payment type with no account, a SKU Accurate lacks); a
``warning`` is worth repairing but fails nothing on its own (a product without SKU, which the sync
skips and reports). Every problem names its subject (the outlet, payment type or SKU) and the fix.

The checks are pure functions over what was read (:func:`check_outlets`, :func:`check_payment_types`,
:func:`check_items`, ...; in :mod:`preflight_checks`, importable from here); :func:`run_preflight` does
the reads and calls them. A read that fails
becomes an error naming what could not be checked, never a crash that hides the other checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.iseller_accurate.preflight_checks import (  # noqa: F401 - importable from here, as always
    MAX_LISTED_SKUS,
    PAYMENT_DAYS,
    AccurateMasters,
    Problem,
    Severity,
    check_items,
    check_outlets,
    check_payment_types,
    check_subscription,
    mapped_accounts,
    payment_types_seen,
    product_skus,
)
from include.iseller_accurate.settings import SyncSettings

log = logging.getLogger(__name__)


@dataclass
class PreflightResult:
    """Everything one preflight found, plus what it read (host, counts) for the page."""

    problems: list[Problem] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def status(self) -> str:
        """``failed`` (errors), ``warnings`` (warnings only) or ``clean``."""
        if self.errors:
            return "failed"
        return "warnings" if self.warnings else "clean"

    def counts(self) -> dict[str, Any]:
        """What goes to XCom: counts only."""
        return {"status": self.status, "errors": len(self.errors), "warnings": len(self.warnings)}

    def report(self) -> str:
        """The list that ends the task log: errors first, each naming its subject and the fix."""
        head = f"Preflight {self.status}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [head]
        for problem in sorted(self.problems, key=_order):
            lines.append(f"- {problem.line()}")
        if not self.problems:
            lines.append("- nothing to repair")
        return "\n".join(lines)


def _order(problem: Problem) -> tuple[int, str, str]:
    return (0 if problem.severity == "error" else 1, problem.check, problem.subject)


# -- the reads -----------------------------------------------------------------------------------------
class _Checks:
    """Runs one read-and-check step at a time; a failing read becomes an error naming the step."""

    def __init__(self, result: PreflightResult) -> None:
        self.result = result

    def step(self, what: str, fix: str, action: Callable[[], list[Problem]]) -> bool:
        try:
            self.result.problems.extend(action())
            return True
        except Exception as exc:  # noqa: BLE001 - a failed read is itself a finding
            log.warning("Preflight could not check %s: %s", what, exc)
            self.result.problems.append(
                Problem("error", "unchecked", what, f"could not be checked: {str(exc)[:300]}", fix)
            )
            return False


def run_preflight(
    settings: SyncSettings,
    accurate: Any,
    iseller: Any,
    subscription: Callable[[], Mapping[str, Any] | None],
    now: datetime | None = None,
) -> PreflightResult:
    """Read both sides and check everything; returns the problems (nothing is written anywhere)."""
    now = now or datetime.now(UTC)
    result = PreflightResult(facts={"checked_at": now.isoformat(), "outlets_mapped": len(settings.outlets)})
    checks = _Checks(result)
    retry = "run the preflight again; if it persists, read the task log"

    def accurate_login() -> list[Problem]:
        host = accurate.discover_host(refresh=True)
        database = accurate.database
        result.facts["accurate_host"] = host
        result.facts["accurate_database"] = str(database.get("alias") or database.get("id") or "")
        return []

    def iseller_login() -> list[Problem]:
        iseller.access_token()
        result.facts["iseller_login"] = "ok"
        return []

    accurate_ok = checks.step(
        "connection accurate_api",
        "correct the API token, signature secret or account URL of the Airflow"
        " connection accurate_api (Admin > Connections, Test)",
        accurate_login,
    )
    iseller_ok = checks.step(
        "connection iseller_api",
        "correct the client id/secret or host of the Airflow connection iseller_api (Admin > Connections)",
        iseller_login,
    )
    checks.step("Accurate webhook subscription", retry, lambda: check_subscription(subscription(), now))

    outlets: list[Mapping[str, Any]] = []
    if iseller_ok:

        def read_outlets() -> list[Problem]:
            outlets.extend(o for o in iseller.get_outlets() if isinstance(o, Mapping))
            result.facts["iseller_outlets"] = [
                {
                    "id": str(o.get("id") or o.get("outlet_id")),
                    "name": str(o.get("name") or ""),
                    "mapped": str(o.get("id") or o.get("outlet_id")) in settings.outlets,
                }
                for o in outlets
            ]
            return []

        iseller_ok = checks.step("iSeller outlets", retry, read_outlets)
    names = {str(o.get("id") or o.get("outlet_id")): str(o.get("name") or "") for o in outlets}

    if accurate_ok and iseller_ok:

        def outlet_checks() -> list[Problem]:
            masters = read_masters(accurate, settings)
            return check_outlets(settings, outlets, masters)

        checks.step("outlet mapping", retry, outlet_checks)

    if iseller_ok:

        def payment_checks() -> list[Problem]:
            orders = iseller.get_orders(
                created_after=now - timedelta(days=PAYMENT_DAYS),
                created_before=now,
                includes=("Transactions",),
            )
            seen = payment_types_seen(orders)
            result.facts["payment_types"] = {k: sorted(v) for k, v in sorted(seen.items())}
            return check_payment_types(settings, seen, names)

        checks.step(f"payment types of the last {PAYMENT_DAYS} days", retry, payment_checks)

        def product_checks() -> list[Problem]:
            by_sku, problems = product_skus(iseller.get_products())
            if accurate_ok:
                items = accurate.find_by_numbers("item", list(by_sku), field="no", fields=["itemType"])
                item_problems, counts = check_items(by_sku, items)
                problems += item_problems
                result.facts.update(counts)
            return problems

        checks.step("products and SKUs", retry, product_checks)
    return result


def read_masters(accurate: Any, settings: SyncSettings) -> AccurateMasters:
    """Branches and warehouses (all), and the accounts and customers the mapping names (list.do only)."""
    branches = frozenset(str(row.get("name")) for row in accurate.list("branch", fields=["name"]))
    warehouses = {
        str(row.get("name")): bool(row.get("suspended"))
        for row in accurate.list("warehouse", fields=["name", "suspended"])
    }
    accounts = accurate.find_by_numbers("glaccount", sorted(mapped_accounts(settings)), field="no")
    walk_ins = sorted({m.walk_in_customer for m in settings.outlets.values()})
    customers = accurate.find_by_numbers("customer", walk_ins, field="customerNo")
    return AccurateMasters(branches, warehouses, frozenset(accounts), frozenset(customers))


# -- the stored results (migration 0011) ---------------------------------------------------------------
def save_result(conn: Any, result: PreflightResult, dag_id: str, run_id: str) -> int:
    """Store one run's result (the page shows the latest); returns its id."""
    from psycopg.types.json import Jsonb

    row = conn.execute(
        "INSERT INTO sync.preflight_runs (dag_id, run_id, status, errors, warnings, facts, problems)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            dag_id,
            run_id,
            result.status,
            len(result.errors),
            len(result.warnings),
            Jsonb(result.facts),
            Jsonb([p.as_dict() for p in sorted(result.problems, key=_order)]),
        ),
    ).fetchone()
    return int(row["id"] if isinstance(row, Mapping) else row[0])


def recent_results(conn: Any, limit: int = 20) -> list[dict[str, Any]]:
    """The latest stored runs, newest first (problems included)."""
    rows = conn.execute(
        "SELECT id, dag_id, run_id, checked_at, status, errors, warnings, facts, problems"
        " FROM sync.preflight_runs ORDER BY checked_at DESC, id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [dict(row) for row in rows]


def read_subscription(conn: Any) -> Mapping[str, Any] | None:
    """The webhook subscription row kept by ``accurate_webhook_maintenance`` (None: never renewed)."""
    row = conn.execute("SELECT * FROM sync.webhook_subscription WHERE id").fetchone()
    return dict(row) if row else None


# -- the Airflow task ---------------------------------------------------------------------------------
DAG_ID = "iseller_accurate_preflight"


def headline(counts: Mapping[str, Any]) -> str:
    """One line for the task note and the page: ``Preflight failed: 3 errors, 1 warning``."""
    errors, warnings = int(counts.get("errors") or 0), int(counts.get("warnings") or 0)
    return (
        f"Preflight {counts.get('status')}: {errors} error{'' if errors == 1 else 's'},"
        f" {warnings} warning{'' if warnings == 1 else 's'}"
    )


def run_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """The DAG's one task: check, store the result, end the log with the list; fail on errors.

    XCom gets counts only. A run with errors fails without retries (``AirflowFailException``): the
    list is the exception's message, so it is also what the log ends with.
    """
    from include.iseller_accurate.clients import AccurateHook, IsellerHook, PostgresRateLimiter
    from include.iseller_accurate.ledger import connect, migrate
    from include.iseller_accurate.settings import require_settings

    settings = require_settings()
    ti = context["ti"]
    iseller = IsellerHook(shop_tz=settings.tz)
    accurate = AccurateHook(rate_limiter=PostgresRateLimiter.from_airflow_connection())
    try:
        with connect(autocommit=True) as conn:
            migrate(conn)
            result = run_preflight(settings, accurate, iseller, lambda: read_subscription(conn))
            save_result(conn, result, ti.dag_id, ti.run_id)
    finally:
        accurate.close()
        iseller.close()
    log.info("%s", result.report())
    if result.errors:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{headline(result.counts())}. Repair each error listed, then trigger {DAG_ID} again"
            " (Browse > Preflight shows the list too)."
        )
    return result.counts()


def note_outcome(context: Mapping[str, Any]) -> None:
    """Success and failure callback: the task note says the outcome in one line."""
    from include.iseller_accurate.notes import set_note

    ti = context["ti"]
    try:
        from include.iseller_accurate.ledger import connect

        with connect(autocommit=True) as conn:
            row = conn.execute(
                "SELECT status, errors, warnings, facts, problems FROM sync.preflight_runs"
                " WHERE dag_id = %s AND run_id = %s"
                " ORDER BY id DESC LIMIT 1",
                (ti.dag_id, ti.run_id),
            ).fetchone()
    except Exception:  # noqa: BLE001 - the ledger may be what failed
        log.warning("Could not read the preflight result for the task note", exc_info=True)
        row = None
    if row:
        note = headline(row)
    else:
        from include.iseller_accurate.notes import exception_line

        note = f"Preflight could not run: {exception_line(context.get('exception'))}"
    set_note(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), note)
    if row:  # last, so that the list is what the task's log ends with
        log.log(logging.ERROR if row["errors"] else logging.INFO, "%s", result_from_row(row).report())


def result_from_row(row: Mapping[str, Any]) -> PreflightResult:
    """A stored run as a result again (problems with unexpected fields are skipped)."""
    problems = []
    for item in row.get("problems") or []:
        try:
            severity: Severity = "error" if item["severity"] == "error" else "warning"
            fields = [str(item[k]) for k in ("check", "subject", "message", "fix")]
        except (KeyError, TypeError):
            continue
        problems.append(Problem(severity, *fields))
    return PreflightResult(problems=problems, facts=dict(row.get("facts") or {}))
