"""Old import path of :func:`as_utc` and :func:`run_time`: they live in :mod:`include.iseller_accurate.times`.

Kept only for code that still imports the old path (``webhook_events.py`` today); import from
``times`` in new code, and delete this file once nothing imports it.
"""

from include.iseller_accurate.times import as_utc, run_time

__all__ = ["as_utc", "run_time"]
