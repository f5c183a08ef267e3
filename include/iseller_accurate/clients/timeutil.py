"""Old import path of the two APIs' date and time formats: they live in :mod:`include.iseller_accurate.times`.

Kept only for code that still imports the old path (``webhook_events.py`` today); import from
``times`` in new code, and delete this file once nothing imports it.
"""

from include.iseller_accurate.times import (
    ACCURATE_TZ,
    format_accurate_date,
    format_accurate_datetime,
    format_iseller_datetime,
    format_iseller_local,
    hours_delta,
    iseller_local_to_utc,
    parse_accurate_date,
    parse_accurate_datetime,
    parse_iseller_datetime,
    time_zone_hours,
)

__all__ = [
    "ACCURATE_TZ",
    "format_accurate_date",
    "format_accurate_datetime",
    "format_iseller_datetime",
    "format_iseller_local",
    "hours_delta",
    "iseller_local_to_utc",
    "parse_accurate_date",
    "parse_accurate_datetime",
    "parse_iseller_datetime",
    "time_zone_hours",
]
