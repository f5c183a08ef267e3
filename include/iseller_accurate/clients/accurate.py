"""Accurate Online API client, as an Airflow hook: ``AccurateHook``, the calls of Accurate's modules.

Signing, host discovery, the OAuth session mode and the transport are in ``accurate_access``. Here:

- **Records and results.** ``save``/``bulk_save`` answer a ``SaveResult`` per record; a refusal
  (``s: false``) is a result, not an exception.
- **Retries.** 429 (honouring ``Retry-After``), 5xx, timeouts and connection errors are retried with
  exponential backoff and jitter; 401/403 and business refusals (``s: false``) never are. A save whose
  answer was lost is re-sent only when ``idempotent=True`` (deterministic ``number``); otherwise
  ``OutcomeUnknownError`` tells the caller to look the record up first.
- **Rate limit.** Every HTTP request (each attempt, each redirect hop) runs inside ``rate_limiter.slot()``.
- **Threads.** One ``requests.Session`` per thread, so a load task may run 8 calls at once.
- **Paging.** ``list`` asks for 1000 rows, steps down (100, 20) when a size is refused, and pages
  with the size the server served, counting rows read so nothing is skipped or repeated.

Connection ``accurate_api`` (type http): host = account URL, password = API token, extra
``signature_secret`` (required), ``signature_encoding`` (``base64`` | ``hex``), ``timeout`` (seconds);
or ``auth_mode: oauth`` with the OAuth access token as password and optional ``database_id``.
"""

from __future__ import annotations

import builtins
import json as jsonlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from include.iseller_accurate.clients._transport import CallSpec
from include.iseller_accurate.clients.accurate_access import (
    DISCOVERY_TTL,
    NAME,
    SERVICE,
    AccurateAccess,
    clear_discovery_cache,
    sign_timestamp,
)
from include.iseller_accurate.clients.accurate_answers import (
    as_mapping,
    messages_of,
    reason_of,
)
from include.iseller_accurate.clients.errors import AccurateBusinessError, ApiError, OutcomeUnknownError
from include.iseller_accurate.times import format_accurate_date, format_accurate_datetime

__all__ = [
    "DISCOVERY_TTL",
    "AccurateHook",
    "SaveResult",
    "clear_discovery_cache",
    "encode_filters",
    "messages_of",
    "record_key",
    "sign_timestamp",
]

log = logging.getLogger(__name__)

#: Accurate's limit for ``bulk-save.do``.
MAX_BULK_RECORDS = 100
#: Accurate allows at most 24 hours per ``webhook-history.do`` call.
WEBHOOK_HISTORY_WINDOW = timedelta(hours=24)
#: Page sizes ``list`` asks for, largest first: a server that refuses one is asked the next
#: (1000 was honoured by the real API per a public integrator; 20 is the documented default).
LIST_PAGE_SIZES = (1000, 100, 20)

# "Sudah ada data lain dengan No Form # X" (and the same for masters), or an English profile's wording.
_DUPLICATE = re.compile(
    r"sudah ada data lain|sudah ada|sudah digunakan|sudah dipakai|already exist|already (been )?used"
    r"|duplicate",
    re.IGNORECASE,
)
# Keys that identify a record, for messages and OutcomeUnknownError.number.
_RECORD_KEYS = ("number", "customerNo", "vendorNo", "no", "transferNo", "name", "id")


def record_key(record: Mapping[str, Any] | None) -> str | None:
    """The business key of a record (``number``, ``customerNo``, item ``no``, ...) if it has one."""
    if not record:
        return None
    for key in _RECORD_KEYS:
        value = record.get(key)
        if value not in (None, ""):
            return str(value)
    return None


@dataclass(frozen=True)
class SaveResult:
    """Outcome of saving one record: stored (``ok``, ``record`` = Accurate's ``r``) or refused (``messages``).

    ``resent`` is True when the answer came from a re-send after an attempt whose outcome was unknown:
    a ``duplicate_number`` refusal then most likely means that the first attempt was stored.
    """

    ok: bool
    record: dict[str, Any] | None
    messages: builtins.list[str] = field(default_factory=builtins.list)
    resent: bool = False

    @property
    def duplicate_number(self) -> bool:
        """Accurate refused the record because its number (or master key) already exists."""
        return not self.ok and any(_DUPLICATE.search(message) for message in self.messages)

    @property
    def reason(self) -> str:
        """The messages as one line, for the ledger and the Sync Status page."""
        return "; ".join(self.messages)

    @property
    def id(self) -> int | None:
        """Accurate's id of the stored record, when known."""
        value = (self.record or {}).get("id")
        return int(value) if value is not None else None

    @property
    def number(self) -> str | None:
        """The stored record's number (or master key), when known."""
        return record_key(self.record)


def _filter_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_accurate_datetime(value)
    if isinstance(value, date):
        return format_accurate_date(value)
    return str(value)


def encode_filters(filters: Mapping[str, Any] | None) -> dict[str, str]:
    """Accurate list filters as query parameters.

    ``{field: value}`` and ``{field: [v1, v2]}`` mean EQUAL (any of the values);
    ``{field: (op, values)}`` uses ``op`` (``BETWEEN``, ``GREATER_THAN``, ...) with one or more values.
    Dates become ``dd/MM/yyyy``, aware datetimes ``dd/MM/yyyy HH:mm:ss`` in Jakarta time.
    """
    params: dict[str, str] = {}
    for name, spec in (filters or {}).items():
        if not NAME.match(name.replace(".", "_")):
            raise ValueError(f"invalid filter field {name!r}")
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(f"filter {name!r}: a tuple must be (operator, values)")
            operator, values = spec
        else:
            operator, values = "EQUAL", spec
        if isinstance(values, (builtins.list, tuple, set, frozenset)):
            values = builtins.list(values)
        else:
            values = [values]
        if not values:
            raise ValueError(f"filter {name!r} has no values")
        params[f"filter.{name}.op"] = str(operator).upper()
        for index, value in enumerate(values):
            params[f"filter.{name}.val[{index}]"] = _filter_value(value)
    return params


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _stock_quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    if isinstance(value, Mapping):
        for key in ("availableStock", "quantity", "stock", "balance", "onHand", "qty", "quantityInAllUnit"):
            if key in value:
                found = _stock_quantity(value[key])
                if found is not None:
                    return found
    if isinstance(value, builtins.list) and len(value) == 1:
        return _stock_quantity(value[0])
    return None


def _refused(what: str, body: Mapping[str, Any]) -> AccurateBusinessError:
    """``s: false`` to a call whose answer the caller needs: Accurate's reason as an exception."""
    return AccurateBusinessError(
        f"Accurate refused {what}: {reason_of(body)}", messages=messages_of(body.get("d"))
    )


class AccurateHook(AccurateAccess):
    """Accurate Online: signed, rate-limited, retried calls to the account host and the data host.

    :param accurate_conn_id: Airflow connection (default ``accurate_api``).
    :param rate_limiter: shared limiter every request goes through (``PostgresRateLimiter`` in
        production); None: no limiting.
    :param max_retries: retries after the first attempt for 429/5xx/timeouts/connection errors.
    :param timeout: read timeout in seconds (default: extra ``timeout``, else 30); connect timeout is 10 s.
    """

    # -- API -----------------------------------------------------------------------------------------
    def call(
        self,
        module: str,
        action: str,
        *,
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Call ``{host}/accurate/api/<module>/<action>.do`` and return the raw envelope (``s``, ``d``, ...).

        Numbers with a fraction are ``Decimal``. A non-GET call is a write for the retry policy:
        with ``idempotent=False`` it is never re-sent once it may have reached Accurate.
        """
        write = method.upper() != "GET"
        spec = CallSpec(
            SERVICE,
            f"{module}/{action}",
            write=write,
            idempotent=idempotent,
            module=module,
            number=record_key(json) if isinstance(json, Mapping) else None,
        )
        url = self._data_url(module, action)
        return self._request(method.upper(), url, spec=spec, params=params, json_body=json).body

    def save(self, module: str, record: Mapping[str, Any], *, idempotent: bool = True) -> SaveResult:
        """Create (no ``id``) or update (with ``id``) one record with ``save.do``.

        Returns a ``SaveResult``; a refusal (``s: false``) is a result, not an exception. Use
        ``idempotent=False`` for records Accurate numbers itself (blank ``number``/``customerNo``): a lost
        answer then raises ``OutcomeUnknownError`` instead of risking a second record.
        """
        spec = CallSpec(
            SERVICE,
            f"{module}/save",
            write=True,
            idempotent=idempotent,
            module=module,
            number=record_key(record),
        )
        answer = self._request("POST", self._data_url(module, "save"), spec=spec, json_body=dict(record))
        body = answer.body
        stored = body.get("r")
        return SaveResult(
            ok=bool(body.get("s")),
            record=dict(stored) if isinstance(stored, Mapping) else None,
            messages=messages_of(body.get("d")),
            resent=answer.resent,
        )

    def bulk_save(
        self, module: str, records: Sequence[Mapping[str, Any]], *, idempotent: bool = True
    ) -> builtins.list[SaveResult]:
        """Save up to 100 records with one ``bulk-save.do``; one ``SaveResult`` per record, in input order.

        Each record stands on its own (the outer ``s`` is not trusted). More than 100 records: ValueError.
        """
        records = builtins.list(records)
        if len(records) > MAX_BULK_RECORDS:
            raise ValueError(
                f"Accurate bulk-save takes at most {MAX_BULK_RECORDS} records, got {len(records)}"
            )
        if not records:
            return []
        numbers = tuple(key for key in (record_key(r) for r in records) if key)
        spec = CallSpec(
            SERVICE, f"{module}/bulk-save", write=True, idempotent=idempotent, module=module, numbers=numbers
        )
        answer = self._request(
            "POST",
            self._data_url(module, "bulk-save"),
            spec=spec,
            json_body={"data": [dict(r) for r in records]},
        )
        body, results = answer.body, answer.body.get("d")
        if (
            isinstance(results, builtins.list)
            and len(results) == len(records)
            and all(isinstance(item, Mapping) for item in results)
        ):
            return [
                SaveResult(
                    ok=bool(item.get("s")),
                    record=dict(item["r"]) if isinstance(item.get("r"), Mapping) else None,
                    messages=messages_of(item.get("d")),
                    resent=answer.resent,
                )
                for item in results
            ]
        if not body.get("s"):
            reason = messages_of(results) or ["Accurate refused the bulk save without a reason"]
            return [SaveResult(ok=False, record=None, messages=reason, resent=answer.resent) for _ in records]
        raise OutcomeUnknownError(
            f"Accurate answered a bulk save of {len(records)} {module} records in an unexpected shape; "
            "look the records up before sending them again.",
            module=module,
            numbers=numbers,
        )

    def detail(self, module: str, **key: Any) -> dict[str, Any] | None:
        """One record by ``id``, ``number`` or master key (``detail(module, number="SI.1")``); None if absent.

        Accurate answers "not found" with ``s: false``; any ``s: false`` answers None (its messages are
        logged at debug level).
        """
        if not key:
            raise ValueError("detail() needs a key, e.g. id=... or number=...")
        body = self.call(module, "detail", params=key)
        if not body.get("s"):
            log.debug("Accurate %s detail %s: %s", module, key, "; ".join(messages_of(body.get("d"))))
            return None
        found = body.get("d")
        return dict(found) if isinstance(found, Mapping) else None

    def list(
        self,
        module: str,
        *,
        fields: Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        sort: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``list.do`` matching ``filters`` (see ``encode_filters``), page by page.

        ``fields`` limits the columns; ``sort`` is passed as ``sp.sort`` (e.g. ``"id|asc"``). A refusal
        raises ``AccurateBusinessError``.

        Page size: ``page_size`` if given, else the largest of ``LIST_PAGE_SIZES``. A server that refuses
        the size on the first page is asked the next smaller one; a server that serves fewer rows than
        asked (a silent cap, told in ``sp.pageSize`` or not) is paged with the size it served. Paging
        counts the rows already read, so a changed size neither skips nor repeats rows.
        """
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be positive")
        sizes = [page_size] if page_size is not None else builtins.list(LIST_PAGE_SIZES)
        base: dict[str, Any] = {}
        if fields:
            base["fields"] = ",".join(fields)
        if sort:
            base["sp.sort"] = sort
        base.update(encode_filters(filters))
        size = sizes[0]
        offset = 0  # rows already yielded
        first = True
        while True:
            page = offset // size + 1
            body = self.call(module, "list", params={**base, "sp.pageSize": size, "sp.page": page})
            if not body.get("s"):
                smaller = [s for s in sizes if s < size]
                if first and smaller:
                    log.info(
                        "Accurate refused to list %s %s rows per page (%s); asking for %s",
                        module,
                        size,
                        reason_of(body),
                        smaller[0],
                    )
                    size = smaller[0]
                    continue
                raise _refused(f"to list {module}", body)
            rows = body.get("d") or []
            if not isinstance(rows, builtins.list):
                raise ApiError(f"Accurate {module}/list answered something other than a list of rows")
            paging = as_mapping(body.get("sp"))
            served = _positive(paging.get("pageSize"))
            if served is None and first and 0 < len(rows) < size:
                served = len(rows)  # no sp: maybe a silent cap; the next page shows whether more exist
            served = served or size
            # Rows of this answer start at (page - 1) * served; skip those already yielded.
            skip = offset - (page - 1) * served
            if skip < 0:
                raise ApiError(
                    f"Accurate {module}/list answered page {page} with {served} rows per page, which "
                    f"would skip rows after row {offset}; the list was not completed"
                )
            fresh = rows[skip:]
            for row in fresh:
                if isinstance(row, Mapping):
                    yield dict(row)
            offset += len(fresh)
            first = False
            if not fresh:
                return
            row_count = _positive(paging.get("rowCount"))
            if row_count is not None and offset >= row_count:
                return
            if row_count is None and "pageCount" in paging and page >= int(paging["pageCount"] or 0):
                return
            if not paging and len(rows) < served:
                return
            size = served

    def find_by_numbers(
        self,
        module: str,
        numbers: Iterable[str],
        field: str = "number",
        *,
        fields: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The records among ``numbers`` that exist, keyed by number: one list call per 100 numbers.

        Rows hold ``id`` and ``field`` plus any ``fields`` asked for.
        """
        wanted = builtins.list(dict.fromkeys(str(n) for n in numbers if n not in (None, "")))
        columns = builtins.list(dict.fromkeys(["id", field, *(fields or [])]))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), MAX_BULK_RECORDS):
            chunk = wanted[start : start + MAX_BULK_RECORDS]
            chunk_set = set(chunk)
            for row in self.list(module, fields=columns, filters={field: chunk}, page_size=MAX_BULK_RECORDS):
                key = row.get(field)
                if key is not None and str(key) in chunk_set:
                    found[str(key)] = row
        return found

    def get_stock(self, item_no: str, warehouse_name: str | None = None) -> Decimal:
        """Quantity of ``item_no`` in ``warehouse_name`` (``item/get-stock.do``; None: all warehouses)."""
        params = {"no": item_no}
        if warehouse_name:
            params["warehouseName"] = warehouse_name
        where = f" in {warehouse_name}" if warehouse_name else ""
        body = self.call("item", "get-stock", params=params)
        if not body.get("s"):
            raise _refused(f"the stock of {item_no}{where}", body)
        quantity = _stock_quantity(body.get("d"))
        if quantity is None:
            raise ApiError(f"Accurate answered the stock of {item_no}{where} without a quantity")
        return quantity

    def webhook_renew(self) -> dict[str, Any]:
        """Extend the app's webhook subscription (it lapses after 7 days); the envelope holds the expiry."""
        body = self._account_call("webhook-renew")
        if not body.get("s"):
            raise _refused("to renew the webhook", body)
        return body

    def webhook_history(self, start: datetime, end: datetime) -> builtins.list[dict[str, Any]]:
        """Past webhook deliveries between ``start`` and ``end`` (aware datetimes), in 24-hour windows.

        Windows share their boundary second, so a delivery seen twice (same ``uuid``) is kept once.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("webhook_history needs timezone-aware datetimes")
        deliveries: builtins.list[dict[str, Any]] = []
        seen: set[str] = set()
        window_start = start
        while window_start < end:
            window_end = min(window_start + WEBHOOK_HISTORY_WINDOW, end)
            page = 1
            while True:
                params: dict[str, Any] = {
                    "from": format_accurate_datetime(window_start),
                    "to": format_accurate_datetime(window_end),
                }
                if page > 1:
                    params["sp.page"] = page
                body = self._account_call("webhook-history", params)
                if not body.get("s"):
                    raise _refused("the webhook history", body)
                rows = body.get("d") or []
                for row in rows if isinstance(rows, builtins.list) else []:
                    if not isinstance(row, Mapping):
                        continue
                    key = str(row.get("uuid") or jsonlib.dumps(row, sort_keys=True, default=str))
                    if key not in seen:
                        seen.add(key)
                        deliveries.append(dict(row))
                paging = as_mapping(body.get("sp"))
                if rows and page < int(paging.get("pageCount") or 0):
                    page += 1
                    continue
                break
            window_start = window_end
        return deliveries
