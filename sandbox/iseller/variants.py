"""Switches for the places where iSeller's public material is unclear or disagrees.

Each switch plays one reading of the public doc, so the project's client can be tested against every
variant. The default follows the public doc where it is clear (``time_zone_semantics``), else keeps
the sandbox's earlier behaviour.

- ``time_zone_semantics``: ``shifts`` (default; public doc: ``time_zone`` is required on GetOrders and
  GetRegisterShifts, the window is read as wall time at UTC + ``time_zone`` hours and every date
  answered is written in it; ``time_zone`` 0 reads and answers UTC) or ``ignored`` (the sandbox's
  earlier behaviour, an assumption: ``time_zone`` optional and without effect).
- ``page_start``: ``1`` (default; page 0 is refused), ``0`` (pages count from 0) or ``1-lenient``
  (pages count from 1 and page 0 is answered as page 1). The doc says only "index of the page".
- ``max_page_size``: largest ``page_size`` accepted (default 200; a larger one is refused naming the
  limit). The doc's samples use 500.
- ``date_format``: ``iso`` (default, ``2026-11-16T10:00:00``) or ``space`` (``2026-11-16 10:00:00``,
  as the doc shows them).
- ``store_info_shape``: ``both`` (default; the sandbox's earlier answer: ``GetStoreInfo``'s fields
  flat and again inside ``store_info``) or ``wrapped`` (public doc: only inside ``store_info``).

Set them with ``POST /_sandbox/variants`` (``GET`` shows them) or ``create_app(variants=...)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

TIME_ZONE_SEMANTICS = ("shifts", "ignored")
PAGE_STARTS = ("1", "0", "1-lenient")
DATE_FORMATS = ("iso", "space")
STORE_INFO_SHAPES = ("both", "wrapped")
#: The methods ``time_zone`` applies to (public doc).
ZONED_METHODS = ("/api/v2/GetOrders", "/api/v2/GetRegisterShifts")


class VariantError(ValueError):
    """A switch set to a value it does not take."""


@dataclass
class Variants:
    """The sandbox's current reading of each unclear point of the public doc."""

    time_zone_semantics: str = "shifts"
    page_start: str = "1"
    max_page_size: int = 200
    date_format: str = "iso"
    store_info_shape: str = "both"

    def public(self) -> dict[str, Any]:
        """The switches as JSON."""
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Set some switches; unknown names and values are refused, nothing changes then."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise VariantError(f"unknown switch(es) {unknown}; known: {sorted(known)}")
        new = {**self.public(), **changes}
        if new["time_zone_semantics"] not in TIME_ZONE_SEMANTICS:
            raise VariantError(f"time_zone_semantics must be one of {list(TIME_ZONE_SEMANTICS)}")
        new["page_start"] = str(new["page_start"])
        if new["page_start"] not in PAGE_STARTS:
            raise VariantError(f"page_start must be one of {list(PAGE_STARTS)}")
        size = new["max_page_size"]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 10_000:
            raise VariantError("max_page_size must be a whole number from 1 to 10000")
        if new["date_format"] not in DATE_FORMATS:
            raise VariantError(f"date_format must be one of {list(DATE_FORMATS)}")
        if new["store_info_shape"] not in STORE_INFO_SHAPES:
            raise VariantError(f"store_info_shape must be one of {list(STORE_INFO_SHAPES)}")
        for name, value in new.items():
            setattr(self, name, value)

    def is_default(self) -> bool:
        """True when every switch has its default."""
        return self == Variants()


def present_dates(value: Any, offset: timedelta | None, date_format: str, depth: int = 0) -> Any:
    """A copy of an answer with every datetime written as text: moved to UTC+``offset`` (None: UTC)
    and in ``date_format``."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo is not None else value
        if offset is not None:
            moment = moment + offset
        pattern = "%Y-%m-%d %H:%M:%S" if date_format == "space" else "%Y-%m-%dT%H:%M:%S"
        return moment.replace(tzinfo=None).strftime(pattern)
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {key: present_dates(item, offset, date_format, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [present_dates(item, offset, date_format, depth + 1) for item in value]
    return value
