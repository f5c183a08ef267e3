"""Operator settings: the Airflow Variable ``iseller_accurate_settings`` parsed into one typed object.

Every key has a default, so an absent Variable means "defaults". A present but invalid value is
never silently replaced: :func:`parse_settings` raises :class:`SettingsError` naming the key and
the reason. Values are strict: ``"yes"`` is not a boolean and ``1`` is not a string.

An invalid Variable never makes a DAG vanish: DAG files parse with :func:`settings_for_parsing`,
which falls back to a safe schedule (see ``schedules.py``) and keeps the error; every task that
needs the settings then fails at once, without retries, with that error (:func:`require_settings`).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SETTINGS_VARIABLE = "iseller_accurate_settings"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SettingsError(ValueError):
    """The settings Variable holds a value the sync cannot use; the message names key and reason."""


class OutletMapping(BaseModel):
    """How one iSeller outlet maps onto Accurate: branch, warehouse and accounts."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

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


#: Largest amount Accurate stores; no limit may be above it.
_ACCURATE_MAX_AMOUNT = Decimal("999999999999")
#: Accurate keeps 6 decimal places: the smallest quantity it can hold.
_ACCURATE_RESOLUTION = Decimal("0.000001")


class DocumentLimits(BaseModel):
    """Sanity limits: a document with a value outside them fails with the reason (see
    docs/bad-input-documents.md). Amounts are in the shop's currency (IDR)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_line_quantity: Decimal = Field(
        default=Decimal("1000000"),
        description="Largest quantity on one line (sale, refund, transfer, count).",
    )
    min_line_quantity: Decimal = Field(
        default=Decimal("0.001"), description="Smallest non-zero quantity on one line (e.g. 1 gram in kg)."
    )
    max_line_amount: Decimal = Field(
        default=Decimal("1000000000"), description="Largest line amount (quantity x unit price)."
    )
    max_document_total: Decimal = Field(
        default=Decimal("10000000000"),
        description="Largest total of one invoice, receipt, return or adjustment.",
    )

    @field_validator("*", mode="after")
    @classmethod
    def _range(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a number above 0")
        if value > _ACCURATE_MAX_AMOUNT:
            raise ValueError(f"must be at most {_ACCURATE_MAX_AMOUNT}, the largest amount Accurate stores")
        if value < _ACCURATE_RESOLUTION:
            raise ValueError(f"must be at least {_ACCURATE_RESOLUTION} (Accurate keeps 6 decimal places)")
        return value

    @model_validator(mode="after")
    def _order(self) -> DocumentLimits:
        if self.min_line_quantity > self.max_line_quantity:
            raise ValueError("min_line_quantity must not be above max_line_quantity")
        return self


class SyncSettings(BaseModel):
    """The whole settings object; see docs/configuration.md for each key."""

    # strict: JSON true/false only for booleans, strings only for names ("yes" is not true).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    sales_sync_mode: Literal["realtime", "shift_close", "scheduled"] = "shift_close"
    sales_sync_times: list[str] = Field(default_factory=lambda: ["22:00"])
    transfer_sync_scheduled: bool = False
    transfer_sync_times: list[str] = Field(default_factory=lambda: ["23:00"])
    use_customer_id_mapping: bool = True
    timezone: str = "Asia/Jakarta"
    outlets: dict[str, OutletMapping] = Field(default_factory=dict)
    limits: DocumentLimits = Field(default_factory=DocumentLimits)
    #: Minutes between two sweeps for closed register shifts no run has read (every mode).
    shift_sweep_minutes: int = Field(default=60, ge=5, le=1440)
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

    @field_validator("shift_sweep_minutes")
    @classmethod
    def _sweep(cls, value: int) -> int:
        if not (60 % value == 0 or (value % 60 == 0 and 1440 % value == 0)):
            raise ValueError(
                f"{value} does not divide the hour or the day evenly; use e.g. 15, 30, 60, 120 or 1440"
            )
        return value

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

    @property
    def shift_sweep_cron(self) -> str:
        """Cron expression of the shift sweep (every ``shift_sweep_minutes``)."""
        minutes = self.shift_sweep_minutes
        if minutes < 60:
            return f"*/{minutes} * * * *"
        if minutes == 60:
            return "0 * * * *"
        return f"0 */{minutes // 60} * * *" if minutes < 1440 else "0 0 * * *"

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


#: Pydantic's strict type errors and how to write the value in the Variable's JSON.
_STRICT_TYPES = {
    "bool_type": "write JSON true or false, without quotes",
    "int_type": "write a whole number without quotes",
    "string_type": "write a JSON string in double quotes",
    "list_type": "write a JSON list such as [\"22:00\"]",
    "dict_type": "write a JSON object",
    "model_type": "write a JSON object",
}


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/configuration.md)"
        elif item["type"] in _STRICT_TYPES:
            message = f"{message}, got {_shown(item.get('input'))} ({_STRICT_TYPES[item['type']]})"
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


def settings_for_parsing() -> tuple[SyncSettings, SettingsError | None]:
    """Settings for a DAG file being parsed: the Variable's, or the defaults plus the error.

    A DAG file must never fail to import because of the Variable: the DAG would vanish and its REST
    trigger would answer 404 (a POS shift-close hook would lose the shift). With an invalid Variable
    the DAG keeps existing on a safe fallback schedule, and :func:`require_settings` fails its runs.
    """
    try:
        return load_settings(), None
    except SettingsError as error:
        return SyncSettings(), error


def require_settings() -> SyncSettings:
    """The settings for a running task; an invalid Variable fails the task at once (no retries).

    Retrying cannot repair the Variable, so the error (naming the key) is raised as
    ``AirflowFailException``: the task is red at once and the operator reads the key in its log.
    """
    try:
        return load_settings()
    except SettingsError as error:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{error}. Repair the Variable {SETTINGS_VARIABLE} (Admin > Variables); runs succeed again"
            " from the next one, and the shift sweep then reads what was missed."
        ) from None


def settings_notice(error: SettingsError | None) -> str:
    """Text appended to a DAG's docs while the settings Variable is invalid (shown in the UI)."""
    if error is None:
        return ""
    return (
        "\n\n**The settings Variable is invalid** (this DAG runs hourly and every run fails at once"
        f" until it is repaired): {error}"
    )
