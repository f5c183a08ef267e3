"""Bad settings and bad trigger conf, on the real DAG files loaded by a real DagBag.

- An invalid settings Variable never makes a DAG vanish (its REST trigger would answer 404 and a POS
  shift close would be lost): every DAG file parses, on a fallback schedule, and every task that
  reads the settings fails at once (``AirflowFailException``: no retries) naming the key.
- Conf the params schema can express is refused before a run exists, by the same ``ParamsDict``
  validation Airflow's REST API runs (``deep_merge(conf).validate()`` -> 400); the rest fails the
  first task at once, naming the key.

The Variable comes from ``AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS``, the environment secrets backend
Airflow reads before its metadata database.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = {
    "iseller_sales_to_accurate": "iseller_sales_to_accurate.py",
    "iseller_transfers_to_accurate": "iseller_transfers_to_accurate.py",
    "iseller_stock_opname_to_accurate": "iseller_stock_opname_to_accurate.py",
    "accurate_webhooks_to_iseller": "accurate_webhooks_to_iseller.py",
    "accurate_webhook_maintenance": "accurate_webhook_maintenance.py",
}
SETTINGS_ENV = "AIRFLOW_VAR_ISELLER_ACCURATE_SETTINGS"
#: Each bad settings value and the key its error must name.
BAD_SETTINGS = {
    "unknown_key": (
        {"sales_sync_mode": "shift_close", "transfer_sync_schedueld": True},
        "iseller_accurate_settings.transfer_sync_schedueld: unknown key",
    ),
    "yes_for_true": (
        {"transfer_sync_scheduled": "yes"},
        "iseller_accurate_settings.transfer_sync_scheduled: Input should be a valid boolean",
    ),
    "not_json": ("{sales_sync_mode: realtime", "iseller_accurate_settings: not valid JSON"),
}


def load_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / DAG_FILES[dag_id]))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


def api_params(dag: Any) -> Any:
    """The DAG's params as the API server holds them: after a real serialization round trip."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag)).params


def context_for(dag: Any, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the tasks read first: the DAG (declared params), the run's conf, the merged params."""
    conf = conf or {}
    params = {**{k: None for k in dag.params.keys()}, **conf}
    return {"dag": dag, "dag_run": SimpleNamespace(conf=conf, run_after=None), "params": params}


def run_task(dag: Any, task_id: str, context: dict[str, Any]) -> Any:
    task = dag.get_task(task_id)
    args = [None] if task_id == "load" else []  # load takes extract's XCom
    return task.python_callable(*args, **context)


@pytest.fixture
def bad_settings(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    value, expected = BAD_SETTINGS[request.param]
    monkeypatch.setenv(SETTINGS_ENV, value if isinstance(value, str) else json.dumps(value))
    return expected


SETTINGS_TASKS = [
    ("iseller_sales_to_accurate", "extract"),
    ("iseller_sales_to_accurate", "load"),
    ("iseller_transfers_to_accurate", "extract"),
    ("iseller_transfers_to_accurate", "load"),
    ("iseller_stock_opname_to_accurate", "extract"),
    ("iseller_stock_opname_to_accurate", "load"),
    ("accurate_webhooks_to_iseller", "process_events"),
]


@pytest.mark.parametrize("bad_settings", sorted(BAD_SETTINGS), indirect=True)
@pytest.mark.parametrize("dag_id", sorted(DAG_FILES))
def test_invalid_settings_keep_every_dag(bad_settings: str, dag_id: str) -> None:
    dag = load_dag(dag_id)  # no import error: the REST trigger keeps answering
    assert dag.max_active_runs == 1
    if dag_id in ("accurate_webhooks_to_iseller", "accurate_webhook_maintenance"):
        return  # their schedules never depended on the settings
    # settings-driven DAGs fall back to one run an hour (each fails at once naming the key)
    assert "0 * * * *" in repr(dag.timetable)
    assert bad_settings in (dag.doc_md or "")


@pytest.mark.parametrize("bad_settings", sorted(BAD_SETTINGS), indirect=True)
@pytest.mark.parametrize(("dag_id", "task_id"), SETTINGS_TASKS)
def test_invalid_settings_fail_every_task_at_once_naming_the_key(
    bad_settings: str, dag_id: str, task_id: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    dag = load_dag(dag_id)
    with pytest.raises(AirflowFailException) as info:  # AirflowFailException: never retried
        run_task(dag, task_id, context_for(dag))
    assert bad_settings in str(info.value)
    assert "Repair the Variable iseller_accurate_settings" in str(info.value)


def test_maintenance_keeps_renewing_with_invalid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook subscription lapses silently after 7 days: its renewal never reads the settings."""
    monkeypatch.setenv(SETTINGS_ENV, json.dumps({"sales_sync_mod": "x"}))
    dag = load_dag("accurate_webhook_maintenance")
    source = (DAGS / DAG_FILES["accurate_webhook_maintenance"]).read_text()
    assert "settings" not in source.split("def accurate_webhook_maintenance")[1].lower()
    assert {t.task_id for t in dag.tasks} == {"renew_subscription", "catch_up", "signal_new_events"}


def test_valid_settings_keep_their_schedules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        SETTINGS_ENV,
        json.dumps(
            {
                "sales_sync_mode": "scheduled",
                "sales_sync_times": ["21:30"],
                "transfer_sync_scheduled": True,
                "transfer_sync_times": ["23:15"],
            }
        ),
    )
    assert "30 21 * * *" in repr(load_dag("iseller_sales_to_accurate").timetable)
    assert "15 23 * * *" in repr(load_dag("iseller_transfers_to_accurate").timetable)
    monkeypatch.setenv(
        SETTINGS_ENV, json.dumps({"sales_sync_mode": "shift_close", "shift_sweep_minutes": 30})
    )
    assert "*/30 * * * *" in repr(load_dag("iseller_sales_to_accurate").timetable)


# ------------------------------------------------------------------------------------- trigger conf
#: Conf the params schema refuses: Airflow's REST API answers 400 before any run exists.
REFUSED_BY_API = {
    "window_start_not_a_time": {"window_start": "yesterday", "window_end": "2026-11-16T00:00:00Z"},
    "window_end_bad_month": {"window_start": "2026-11-16T00:00:00Z", "window_end": "2026-13-01T00:00:00Z"},
    "shift_id_not_text": {"register_id": "r1", "register_shift_id": 42},
    "outlet_id_empty": {"outlet_id": ""},
    "register_id_control_character": {"register_id": "r1\u0000", "register_shift_id": "s1"},
    "register_id_too_long": {"register_id": "r" * 500, "register_shift_id": "s1"},
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_API))
def test_conf_the_schema_can_express_is_refused_by_the_api_validation(case: str) -> None:
    from airflow.exceptions import ParamValidationError

    dag = load_dag("iseller_sales_to_accurate")
    with pytest.raises(ParamValidationError) as info:
        api_params(dag).deep_merge(REFUSED_BY_API[case]).validate()  # what POST .../dagRuns runs
    assert "Invalid input for param" in str(info.value)


@pytest.mark.parametrize("dag_id", ["accurate_webhook_maintenance", "iseller_transfers_to_accurate"])
def test_window_pattern_on_every_dag_with_a_window(dag_id: str) -> None:
    from airflow.exceptions import ParamValidationError

    dag = load_dag(dag_id)
    with pytest.raises(ParamValidationError):
        api_params(dag).deep_merge({"window_start": "yesterday", "window_end": "today"}).validate()
    good = {"window_start": "2026-11-16T00:00:00+07:00", "window_end": "2026-11-17 00:00"}
    assert api_params(dag).deep_merge(good).validate()["window_end"] == "2026-11-17 00:00"


def test_airflow_accepts_unknown_conf_keys_so_the_task_refuses_them() -> None:
    """Airflow 3.3 adds an unknown conf key as a new param without a schema: no 400 for outlet_idd."""
    dag = load_dag("iseller_sales_to_accurate")
    conf = {"outlet_idd": "o1", "register_id": "r1", "register_shift_id": "s1"}
    assert api_params(dag).deep_merge(conf).validate()["outlet_idd"] == "o1"


#: Conf that passes the schema but cannot be used: the first task fails at once naming the key.
FAILED_AT_ONCE = {
    "unknown_key": (
        {"outlet_idd": "o1", "register_id": "r1", "register_shift_id": "s1"},
        "conf.outlet_idd: unknown key",
    ),
    "window_start_only": ({"window_start": "2026-11-16T00:00:00Z"}, "conf.window_end: missing"),
    "window_end_only": ({"window_end": "2026-11-16T00:00:00Z"}, "conf.window_start: missing"),
    "window_reversed": (
        {"window_start": "2026-11-17T00:00:00Z", "window_end": "2026-11-16T00:00:00Z"},
        "conf.window_end: 2026-11-16T00:00:00Z is not after conf.window_start",
    ),
    "window_empty": (
        {"window_start": "2026-11-16T00:00:00Z", "window_end": "2026-11-16T07:00:00+07:00"},
        "conf.window_end",
    ),
    "window_impossible_date": (
        {"window_start": "2026-02-30T00:00:00Z", "window_end": "2026-03-01T00:00:00Z"},
        "conf.window_start: '2026-02-30T00:00:00Z' is not a date and time",
    ),
    "shift_without_register": ({"register_shift_id": "s1"}, "conf.register_id: missing"),
    "register_without_shift": ({"register_id": "r1"}, "conf.register_shift_id: missing"),
    "outlet_only": ({"outlet_id": "o1"}, "conf.register_shift_id: missing"),
    "shift_and_window": (
        {
            "register_id": "r1",
            "register_shift_id": "s1",
            "window_start": "2026-11-16T00:00:00Z",
            "window_end": "2026-11-17T00:00:00Z",
        },
        "conf.window_start: not allowed with conf.register_shift_id",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILED_AT_ONCE))
def test_unusable_conf_fails_the_run_at_once_naming_the_key(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.setenv(SETTINGS_ENV, "{}")
    conf, expected = FAILED_AT_ONCE[case]
    dag = load_dag("iseller_sales_to_accurate")
    api_params(dag).deep_merge(conf).validate()  # the API lets it through...
    for task_id in ("extract", "load"):  # ...and the run fails at once (no retries), naming the key
        with pytest.raises(AirflowFailException) as info:
            run_task(dag, task_id, context_for(dag, conf))
        assert expected in str(info.value)


@pytest.mark.parametrize(
    ("dag_id", "task_id"),
    [
        ("accurate_webhook_maintenance", "catch_up"),
        ("accurate_webhooks_to_iseller", "process_events"),
        ("iseller_transfers_to_accurate", "extract"),
        ("iseller_stock_opname_to_accurate", "extract"),
    ],
)
def test_unknown_conf_key_fails_every_dag_at_once(
    dag_id: str, task_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv(SETTINGS_ENV, "{}")
    dag = load_dag(dag_id)
    with pytest.raises(AirflowFailException) as info:
        run_task(dag, task_id, context_for(dag, {"window_strat": "2026-11-16T00:00:00Z"}))
    assert "conf.window_strat: unknown key" in str(info.value)
