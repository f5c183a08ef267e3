"""Operator settings: the Airflow Variable ``iseller_accurate_settings`` parsed into one typed object.

Every key has a default, so an absent Variable means "defaults". A present but invalid value is
never silently replaced: :func:`parse_settings` raises :class:`SettingsError` naming the key and
the reason, which surfaces as a DAG import error (settings read while the DAG file is parsed) or a
failed task (settings read when a task runs).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SETTINGS_VARIABLE = "iseller_accurate_settings"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SettingsError(ValueError):
    """The settings Variable holds a value the sync cannot use; the message names key and reason."""


class OutletMapping(BaseModel):
    """How one iSeller outlet maps onto Accurate: branch, warehouse and accounts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="Display name, for operators only.")
    branch: str = Field(min_length=1, description="Accurate branch name (branchName).")
    warehouse: str = Field(min_length=1, description="Accurate warehouse name (warehouseName).")
    walk_in_customer: str = Field(
        default="UMUM", min_length=1, description="Accurate customerNo for sales without a customer."
    )
    cash_account: str | None = Field(
        default=None, description="Accurate cash/bank account for payment types not in payment_accounts."
    )
    payment_accounts: dict[str, str] = Field(
        default_factory=dict,
        description="iSeller payment gateway (cash, external_debit, ...) -> Accurate cash/bank account.",
    )
    adjustment_account: str | None = Field(
        default=None, description="Accurate account for stock opname adjustments (adjustmentAccountNo)."
    )

    def account_for(self, gateway: str) -> str | None:
        """The Accurate account that receives payments of ``gateway`` at this outlet, if mapped."""
        return self.payment_accounts.get(gateway) or self.cash_account


class SyncSettings(BaseModel):
    """The whole settings object; see the README's Configuration section for each key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sales_sync_mode: Literal["realtime", "shift_close", "scheduled"] = "shift_close"
    sales_sync_times: list[str] = Field(default_factory=lambda: ["22:00"])
    transfer_sync_scheduled: bool = False
    transfer_sync_times: list[str] = Field(default_factory=lambda: ["23:00"])
    use_customer_id_mapping: bool = True
    timezone: str = "Asia/Jakarta"
    outlets: dict[str, OutletMapping] = Field(default_factory=dict)
    #: Local time of the daily reconciliation (after the day's last scheduled sync).
    reconciliation_time: str = "23:30"

    @field_validator("reconciliation_time")
    @classmethod
    def _reconciliation_time(cls, value: str) -> str:
        if not isinstance(value, str) or not _HHMM.match(value):
            raise ValueError(f'{value!r} is not a time of day as "HH:MM" (00:00 to 23:59)')
        return value

    @field_validator("sales_sync_times", "transfer_sync_times")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError('give at least one time of day as "HH:MM"')
        for item in value:
            if not isinstance(item, str) or not _HHMM.match(item):
                raise ValueError(f'{item!r} is not a time of day as "HH:MM" (00:00 to 23:59)')
        return sorted(set(value))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name such as 'Asia/Jakarta'") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The shop's time zone."""
        return ZoneInfo(self.timezone)

    def outlet(self, outlet_id: str) -> OutletMapping | None:
        """The mapping of one iSeller outlet, or None when the operator has not mapped it."""
        return self.outlets.get(outlet_id)

    @staticmethod
    def cron_expressions(times: list[str]) -> list[str]:
        """Cron expressions (one per distinct minute) firing at each ``HH:MM`` of ``times``."""
        by_minute: dict[int, list[int]] = {}
        for item in times:
            hour, minute = (int(part) for part in item.split(":"))
            by_minute.setdefault(minute, []).append(hour)
        return [
            f"{minute} {','.join(str(h) for h in sorted(hours))} * * *"
            for minute, hours in sorted(by_minute.items())
        ]


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README's Configuration section)"
        problems.append(f"{SETTINGS_VARIABLE}.{location}: {message}")
    return "; ".join(problems)


def parse_settings(raw: Any) -> SyncSettings:
    """Validate a settings value (dict, JSON text, or None for all defaults)."""
    if raw is None or raw == "":
        return SyncSettings()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"{SETTINGS_VARIABLE}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{SETTINGS_VARIABLE}: must be a JSON object, got {type(raw).__name__}")
    try:
        return SyncSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def load_settings() -> SyncSettings:
    """Read and validate the settings Variable (defaults when it does not exist)."""
    from airflow.sdk import Variable

    return parse_settings(Variable.get(SETTINGS_VARIABLE, default=None))
