"""Settings validation: defaults, every key checked, errors naming key and reason."""

from __future__ import annotations

import pytest

from include.iseller_accurate.schedules import at_times, sales_schedule, transfer_schedule
from include.iseller_accurate.settings import SettingsError, SyncSettings, parse_settings


def test_absent_variable_means_defaults():
    settings = parse_settings(None)
    assert settings.sales_sync_mode == "shift_close" and settings.timezone == "Asia/Jakarta"
    assert settings.use_customer_id_mapping is True and settings.outlets == {}


def test_json_text_is_accepted_and_times_are_normalised():
    settings = parse_settings(
        '{"sales_sync_mode": "scheduled", "sales_sync_times": ["22:00", "09:30", "22:00"]}'
    )
    assert settings.sales_sync_times == ["09:30", "22:00"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"sales_sync_mode": "hourly"}, "iseller_accurate_settings.sales_sync_mode"),
        ({"sales_sync_times": ["25:00"]}, "iseller_accurate_settings.sales_sync_times: Value error, '25:00'"),
        ({"sales_sync_times": []}, "at least one time"),
        ({"timezone": "Asia/Jakartaa"}, "iseller_accurate_settings.timezone"),
        ({"transfer_sync_scheduled": "sometimes"}, "iseller_accurate_settings.transfer_sync_scheduled"),
        (
            {"outlets": {"o1": {"warehouse": "G"}}},
            "iseller_accurate_settings.outlets.o1.branch: Field required",
        ),
        (
            {"outlets": {"o1": {"branch": "B", "warehouse": "G", "brnch": "x"}}},
            "outlets.o1.brnch: unknown key",
        ),
        ({"sales_sync_mod": "realtime"}, "iseller_accurate_settings.sales_sync_mod: unknown key"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_invalid_values_name_the_key_and_reason(raw, expected):
    with pytest.raises(SettingsError) as info:
        parse_settings(raw)
    assert expected in str(info.value)


STRICT = {
    "bool_as_yes": (
        {"transfer_sync_scheduled": "yes"},
        'iseller_accurate_settings.transfer_sync_scheduled: Input should be a valid boolean, got "yes"'
        " (write JSON true or false, without quotes)",
    ),
    "bool_as_text_true": (
        {"transfer_sync_scheduled": "true"},
        "transfer_sync_scheduled: Input should be a valid boolean",
    ),
    "bool_as_number": (
        {"use_customer_id_mapping": 1},
        "use_customer_id_mapping: Input should be a valid boolean, got 1",
    ),
    "times_as_text": ({"sales_sync_times": "22:00"}, "sales_sync_times: Input should be a valid list"),
    "name_as_number": (
        {"outlets": {"o1": {"branch": 7, "warehouse": "G"}}},
        "iseller_accurate_settings.outlets.o1.branch: Input should be a valid string, got 7",
    ),
    "minutes_as_text": (
        {"shift_sweep_minutes": "60"},
        "shift_sweep_minutes: Input should be a valid integer",
    ),
    "minutes_uneven": ({"shift_sweep_minutes": 7}, "shift_sweep_minutes: Value error, 7 does not divide"),
    "minutes_too_small": (
        {"shift_sweep_minutes": 1},
        "shift_sweep_minutes: Input should be greater than or equal to 5",
    ),
}


@pytest.mark.parametrize("case", sorted(STRICT))
def test_values_are_strict_and_errors_name_the_key(case):
    """Nothing is coerced: "yes", "true" and 1 are not booleans, 7 is not a branch name."""
    raw, expected = STRICT[case]
    with pytest.raises(SettingsError) as info:
        parse_settings(raw)
    assert expected in str(info.value)


def test_payment_account_falls_back_to_cash_account():
    settings = parse_settings(
        {
            "outlets": {
                "o1": {
                    "branch": "B",
                    "warehouse": "G",
                    "cash_account": "1101",
                    "payment_accounts": {"external_debit": "1103"},
                }
            }
        }
    )
    mapping = settings.outlet("o1")
    assert mapping.account_for("external_debit") == "1103" and mapping.account_for("cash") == "1101"
    assert settings.outlet("nope") is None


def test_cron_expressions_group_times_by_minute():
    assert SyncSettings.cron_expressions(["09:30", "12:00", "22:00"]) == ["0 12,22 * * *", "30 9 * * *"]


def test_schedules_follow_the_modes():
    # shift_close: the shift sweep (closed shifts no run has read), every shift_sweep_minutes.
    sweep = sales_schedule(parse_settings({"sales_sync_mode": "shift_close"}))
    assert type(sweep).__name__ == "CronTriggerTimetable" and sweep.expression == "0 * * * *"
    sweep = sales_schedule(parse_settings({"sales_sync_mode": "shift_close", "shift_sweep_minutes": 15}))
    assert sweep.expression == "*/15 * * * *"
    realtime = sales_schedule(parse_settings({"sales_sync_mode": "realtime"}))
    assert type(realtime).__name__ == "AssetOrTimeSchedule"
    scheduled = sales_schedule(
        parse_settings({"sales_sync_mode": "scheduled", "sales_sync_times": ["12:00"]})
    )
    assert type(scheduled).__name__ == "CronTriggerTimetable"
    assert type(at_times(["12:00", "22:30"], "Asia/Jakarta")).__name__ == "MultipleCronTriggerTimetable"
    assert (
        type(transfer_schedule(parse_settings({"transfer_sync_scheduled": False}))).__name__
        == "CronTriggerTimetable"
    )
