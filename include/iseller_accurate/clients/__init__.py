"""API clients of the project: ``IsellerHook`` and ``AccurateHook`` (Airflow hooks), and the Accurate
rate limiter shared by every task of a deployment.

Typical use in a task::

    limiter = PostgresRateLimiter.from_airflow_connection("sync_db")
    accurate = AccurateHook(rate_limiter=limiter)
    result = accurate.save("sales-invoice", record)          # SaveResult, never raises on s: false
    iseller = IsellerHook()
    for page in iseller.get_orders_pages(modified_after=start, modified_before=end):
        ...
"""

from __future__ import annotations

from include.iseller_accurate.clients.accurate import (
    AccurateHook,
    SaveResult,
    clear_discovery_cache,
    encode_filters,
    sign_timestamp,
)
from include.iseller_accurate.clients.errors import (
    AccurateBusinessError,
    ApiError,
    AuthError,
    BusinessError,
    IsellerBusinessError,
    OutcomeUnknownError,
    TransientApiError,
)
from include.iseller_accurate.clients.iseller import (
    IsellerHook,
    TransferResult,
    clear_token_cache,
)
from include.iseller_accurate.clients.ratelimit import LocalRateLimiter, PostgresRateLimiter, RateLimiter
from include.iseller_accurate.times import (
    ACCURATE_TZ,
    format_accurate_date,
    format_accurate_datetime,
    format_iseller_datetime,
    parse_accurate_date,
    parse_accurate_datetime,
    parse_iseller_datetime,
)

__all__ = [
    "ACCURATE_TZ",
    "AccurateBusinessError",
    "AccurateHook",
    "ApiError",
    "AuthError",
    "BusinessError",
    "IsellerBusinessError",
    "IsellerHook",
    "LocalRateLimiter",
    "OutcomeUnknownError",
    "PostgresRateLimiter",
    "RateLimiter",
    "SaveResult",
    "TransferResult",
    "TransientApiError",
    "clear_discovery_cache",
    "clear_token_cache",
    "encode_filters",
    "format_accurate_date",
    "format_accurate_datetime",
    "format_iseller_datetime",
    "parse_accurate_date",
    "parse_accurate_datetime",
    "parse_iseller_datetime",
    "sign_timestamp",
]
