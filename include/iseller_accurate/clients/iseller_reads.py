"""The iSeller reads, declared once in ``READS``, and the paging and ``time_zone`` handling they share.

Each row names the method's path, the key of what it answers, the lists a page holds, whether iSeller
documents the method or the project assumes it, whether it takes ``time_zone``, and any keyword it
renames or fills in. ``IsellerHook.read(name, **filters)`` reads any of them; see the ``iseller``
module docstring for paging and ``time_zone``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from include.iseller_accurate.clients.errors import ApiError, IsellerBusinessError
from include.iseller_accurate.times import (
    format_iseller_datetime,
    format_iseller_local,
    hours_delta,
    iseller_local_to_utc,
    parse_iseller_datetime,
    time_zone_hours,
)

if TYPE_CHECKING:
    from include.iseller_accurate.clients.iseller import IsellerHook

log = logging.getLogger(__name__)

#: Page size asked for unless told (the sandbox's cap; the public doc's samples use 500).
DEFAULT_PAGE_SIZE = 200
#: Largest page size the client asks for.
MAX_PAGE_SIZE = 1000
#: Fields that identify an item of each paged list (items are de-duplicated on them).
ITEM_IDS: dict[str, tuple[str, ...]] = {
    "orders": ("order_id",),
    "refunded_orders": ("order_id", "refund_id"),
    "register_shifts": ("register_shift_id",),
    "products": ("product_id",),
    "outlets": ("id", "outlet_id"),
    "customers": ("customer_id",),
    "transfers": ("transfer_id",),
    "stock_takes": ("stock_take_id",),
}
DEFAULT_INCLUDES = ("OrderDetails", "Transactions", "DiscountDetails")
_AT_MOST = re.compile(r"at most (\d+)")
_MAX_DATE_DEPTH = 6

GET_ORDERS = "api/v2/GetOrders"
GET_REGISTER_SHIFTS = "api/v2/GetRegisterShifts"
GET_PRODUCTS = "api/v2/GetProducts"
GET_STORE_INFO = "api/v2/GetStoreInfo"
GET_OUTLETS = "api/v3/GetOutlets"


@dataclass(frozen=True)
class Zone:
    """How a read that takes ``time_zone`` is probed: one record of ``items`` read with ``time_zone`` 0
    and with the shop's, its ``date_field`` compared (``probe`` is added to both bodies)."""

    items: str
    id_field: str
    date_field: str
    probe: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Read:
    """One read method of iSeller.

    ``result``: the key of the items ``read`` yields (None: the whole answer). ``page_keys``: the lists a
    page holds, on which paging stops and repeats are dropped (empty: not paged). ``assumed``: iSeller
    documents no such method; the path, keys and filters are the project's assumption, served by the
    sandbox in the style of GetOrders. ``zone``: the read takes ``time_zone``. ``renames``: keyword to
    body field. ``defaults``: fields sent unless the caller gives them, from the caller's filters.
    """

    path: str
    result: str | None
    page_keys: tuple[str, ...] = ()
    assumed: bool = False
    zone: Zone | None = None
    renames: Mapping[str, str] = field(default_factory=dict)
    defaults: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None


def _order_defaults(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Nested lists the sync reads, and a sort that keeps paging stable: by ModifiedDate when only
    modified bounds are given, else by CreatedDate, ascending (``includes=None``: every nested list)."""
    modified = filters.get("modified_after") or filters.get("modified_before")
    created = filters.get("created_after") or filters.get("created_before")
    return {
        "includes": DEFAULT_INCLUDES,
        "sort": "ModifiedDate" if modified and not created else "CreatedDate",
        "sort_direction": "asc",
    }


_ORDERS_ZONE = Zone("orders", "order_id", "order_date", probe={"includes": []})
_ORDER_LISTS = ("orders", "refunded_orders")

#: Every read, by the name ``IsellerHook.read`` takes. Filters not named here pass through as body fields
#: (``*_after`` bounds inclusive, ``*_before`` exclusive; datetimes sent as UTC ISO-8601 without offset).
READS: dict[str, Read] = {
    # Orders and refunds of one GetOrders read (``refunded_orders``: refunds inside the window).
    "orders": Read(GET_ORDERS, "orders", _ORDER_LISTS, zone=_ORDERS_ZONE, defaults=_order_defaults),
    "refunded_orders": Read(
        GET_ORDERS, "refunded_orders", _ORDER_LISTS, zone=_ORDERS_ZONE, defaults=_order_defaults
    ),
    "register_shifts": Read(
        GET_REGISTER_SHIFTS,
        "register_shifts",
        ("register_shifts",),
        zone=Zone("register_shifts", "register_shift_id", "open_date"),
    ),
    # A product's ``sku`` may be empty.
    "products": Read(GET_PRODUCTS, "products", ("products",)),
    # ``id``, ``outlet_code``, ``name``, ``is_active``.
    "outlets": Read(GET_OUTLETS, "outlets", ("outlets",)),
    # The store's name and ``active_outlets``.
    "store_info": Read(GET_STORE_INFO, None),
    # Customers, with ``customer_number`` (their ID number) when they have one.
    "customers": Read("api/v3/GetCustomers", "customers", ("customers",), assumed=True),
    # ``transfer_type``: ``outlet``, ``in`` or ``out``; sandbox filters ``status``, ``outlet_id``,
    # ``reference_code``, ``transfer_id`` and date bounds.
    "transfers": Read(
        "api/v3/GetTransfers", "transfers", ("transfers",), assumed=True, renames={"transfer_type": "type"}
    ),
    # Stock takes with system and counted quantities per line.
    "stock_takes": Read("api/v3/GetStockTakes", "stock_takes", ("stock_takes",), assumed=True),
}


def iseller_filters(**filters: Any) -> dict[str, Any]:
    """Request body fields from keyword filters: None dropped, datetimes as UTC ISO-8601 without offset."""
    body: dict[str, Any] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = format_iseller_datetime(value)
        elif isinstance(value, tuple):
            value = list(value)
        body[name] = value
    return body


class IsellerReads:
    """The paged reads of one ``IsellerHook``, and what it found out about the server, per method:
    the first page, the page size, whether ``time_zone`` is applied. Every page goes through
    ``hook.call``."""

    def __init__(self, hook: IsellerHook, *, first_page: int | None, time_zone_semantics: str | None) -> None:
        self.hook = hook
        self._first_page = first_page
        self._time_zone_semantics = time_zone_semantics
        self._page_start: dict[str, int] = {}
        self._page_sizes: dict[str, int] = {}
        self._shifts_dates: dict[str, bool] = {}

    def read_pages(
        self, name: str, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """The answers of read ``name`` (see ``READS``), page by page, every item once."""
        if name not in READS:
            raise ValueError(f"unknown iSeller read {name!r} (one of {', '.join(READS)})")
        read = READS[name]
        raw = dict(read.defaults(filters)) if read.defaults is not None else {}
        raw.update({read.renames.get(key, key): value for key, value in filters.items()})
        if not read.page_keys:
            return iter([self.hook.call(read.path, iseller_filters(**raw))])
        if read.zone is not None:
            return self._zoned_pages(read, raw, page_size)
        return self.pages(read.path, iseller_filters(**raw), read.page_keys, page_size)

    def read(self, name: str, *, page_size: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """The items of read ``name`` over all its pages (its whole answer when it has no ``result``)."""
        pages = self.read_pages(name, page_size=page_size, **filters)
        result = READS[name].result
        if result is None:
            return pages
        return (item for page in pages for item in page.get(result) or [])

    def pages(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        items_keys: Sequence[str],
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Raw pages of a paged read, every item once, until ``has_next_item`` is false.

        Starts at page 0 unless the first page is known (a refusal of page 0 restarts at 1); drops
        items already answered (by their ids, ``ITEM_IDS``); stops on an empty page; adapts
        ``page_size`` to a server that refuses it (first page only). See the ``iseller`` module docstring.
        """
        if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        key, settings = path.strip("/"), self.hook.settings
        size = self._page_sizes.get(key) or page_size or settings.page_size
        known = self._first_page if self._first_page is not None else settings.first_page
        page = known if known is not None else self._page_start.get(key, 0)
        seen: dict[str, set[tuple[str, ...]]] = {name: set() for name in items_keys}
        first_ids: set[tuple[str, ...]] | None = None
        stale = 0
        fetched = 0
        while True:
            try:
                answer = self.hook.call(key, {**dict(body or {}), "page": page, "page_size": size})
            except (IsellerBusinessError, ApiError) as exc:
                retry = self._after_refusal(key, exc, fetched, page, size, known)
                if retry is None:
                    raise
                page, size = retry
                continue
            fetched += 1
            if fetched == 1 and known is None:
                self._page_start.setdefault(key, page)
            new = 0
            ids_here: set[tuple[str, ...]] = set()
            cleaned = dict(answer)
            for name in items_keys:
                items = answer.get(name) or []
                if not isinstance(items, list):
                    continue
                kept = []
                for item in items:
                    ident = _item_id(name, item)
                    if ident is not None:
                        ids_here.add((name, *ident))
                        if ident in seen[name]:
                            continue
                        seen[name].add(ident)
                    kept.append(item)
                new += len(kept)
                cleaned[name] = kept
            if fetched == 1:
                first_ids = ids_here
            elif fetched == 2 and page == 1 and ids_here and ids_here == first_ids and known is None:
                # Page 0 was answered as page 1: this server counts from 1; start there next time.
                self._page_start[key] = 1
            empty = all(not answer.get(name) for name in items_keys)
            yield cleaned
            if not answer.get("has_next_item") or empty:
                return
            stale = stale + 1 if new == 0 else 0
            if stale >= 2:
                raise ApiError(
                    f"iSeller {key.rsplit('/', 1)[-1]} answered nothing new on pages {page - 1} and {page} "
                    "while saying more items follow; paging is not working, stopping instead of looping"
                )
            page += 1

    def _after_refusal(
        self, key: str, exc: Exception, fetched: int, page: int, size: int, known: int | None
    ) -> tuple[int, int] | None:
        """The page and size to try after a refusal of the first page, or None to give up."""
        if fetched:
            return None
        if not isinstance(exc, IsellerBusinessError) and getattr(exc, "status_code", None) != 400:
            return None
        text = str(exc).lower()
        if "page_size" in text:
            limit = _AT_MOST.search(text)
            smaller = int(limit.group(1)) if limit else size // 2
            if 1 <= smaller < size:
                log.info("iSeller refused page_size %d for %s; using %d", size, key, smaller)
                self._page_sizes[key] = smaller
                return page, smaller
            return None
        if page == 0 and known is None and "page" in text:
            log.info("iSeller refused page 0 for %s; its pages start at 1", key)
            self._page_start[key] = 1
            return 1, size
        return None

    # -- time_zone -----------------------------------------------------------------------------------
    def _zoned_pages(
        self, read: Read, filters: dict[str, Any], page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """A paged read that takes ``time_zone``: the shop's offset at the window's start is sent,
        the window written and the answer's dates read the way the server applies it."""
        anchor = next(
            (v for k, v in sorted(filters.items()) if k.endswith("_after") and isinstance(v, datetime)),
            None,
        ) or datetime.now(UTC)
        hours = time_zone_hours(self.hook.shop_tz, anchor)
        offset = hours_delta(hours) if self._server_shifts(read, hours) else None
        body: dict[str, Any] = {}
        for name, value in filters.items():
            if isinstance(value, datetime) and offset is not None:
                body[name] = format_iseller_local(value, offset)
            else:
                body.update(iseller_filters(**{name: value}))
        body["time_zone"] = hours
        for page in self.pages(read.path, body, read.page_keys, page_size):
            if offset is not None:
                for name in read.page_keys:
                    if isinstance(page.get(name), list):
                        page[name] = [_dates_to_utc(item, offset) for item in page[name]]
            yield page

    def _server_shifts(self, read: Read, hours: int | Decimal) -> bool:
        """Whether the server applies ``time_zone`` to windows and dates of ``read`` (see the iseller
        module docstring). Found out once per method by reading one record with ``time_zone`` 0 and with
        ``hours``; an offset of 0 makes no difference either way."""
        path, zone = read.path, read.zone
        assert zone is not None
        semantics = self._time_zone_semantics or self.hook.settings.time_zone_semantics
        if semantics != "auto":
            return semantics == "shifts"
        if path in self._shifts_dates:
            return self._shifts_dates[path]
        if not hours:
            return False
        id_field, date_field = zone.id_field, zone.date_field

        def first(body: dict[str, Any]) -> dict[str, Any] | None:
            for page in self.pages(path, {**zone.probe, **body}, (zone.items,), 1):
                items = page.get(zone.items) or []
                return items[0] if items and isinstance(items[0], dict) else None
            return None

        record = first({"time_zone": 0})
        if record is None or not record.get(id_field) or not isinstance(record.get(date_field), str):
            return False  # nothing to compare yet (an empty store reads nothing wrong); ask next time
        again = first({"time_zone": hours, id_field: record[id_field]})
        if again is None or not isinstance(again.get(date_field), str):
            return False
        try:
            plain = parse_iseller_datetime(record[date_field])
            zoned = parse_iseller_datetime(again[date_field])
        except ValueError:
            return False
        moved = zoned - plain
        if moved == hours_delta(hours):
            shifts = True
        elif moved == timedelta(0):
            shifts = False
        else:
            raise ApiError(
                f"iSeller {path.rsplit('/', 1)[-1]} moved {id_field} {record[id_field]}'s {date_field} by "
                f"{moved} when asked for time_zone {hours}: neither applied nor ignored. Set the iSeller "
                "connection's extra time_zone_semantics to shifts or ignored after checking one order"
            )
        log.info("iSeller %s %s time_zone", path.rsplit("/", 1)[-1], "applies" if shifts else "ignores")
        self._shifts_dates[path] = shifts
        return shifts


def _item_id(items_key: str, item: Any) -> tuple[str, ...] | None:
    """The id of an item of a paged list (None: it has none, it is never dropped as a repeat)."""
    fields = ITEM_IDS.get(items_key)
    if not fields or not isinstance(item, Mapping):
        return None
    values = tuple(str(item.get(name)) if item.get(name) not in (None, "") else "" for name in fields)
    return values if any(values) else None


def _dates_to_utc(value: Any, offset: timedelta, depth: int = 0) -> Any:
    """A copy of an answered record with every ``*_date`` string read as the wall time at UTC+offset
    and written back in UTC (a value that is not a date is left for the mapping to refuse)."""
    if depth > _MAX_DATE_DEPTH:
        return value
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if isinstance(key, str) and key.endswith("_date") and isinstance(item, str) and item.strip():
                try:
                    item = iseller_local_to_utc(item, offset)
                except ValueError:
                    pass
            elif isinstance(item, dict | list):
                item = _dates_to_utc(item, offset, depth + 1)
            result[key] = item
        return result
    if isinstance(value, list):
        return [_dates_to_utc(item, offset, depth + 1) for item in value]
    return value
