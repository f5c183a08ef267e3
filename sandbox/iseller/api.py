"""The iSeller API as the sandbox serves it: OAuth token endpoint and the RPC methods.

Public facts (``shared/reference/iseller-api.md``): OAuth client credentials with ``resource_url``;
``/api/v2/GetOrders``, ``GetRegisterShifts``, ``GetProducts`` (``page``/``page_size`` required),
``GetStoreInfo``, ``/api/v3/GetOutlets`` and ``/api/v3/CreateTransfer``; POST with a form or JSON
body; 401 on an expired token; business errors as HTTP 200 with ``status: false`` and
``error_message``; ``has_next_item`` paging; offset-less UTC dates.

Assumptions (marked in the README too):

- ``/api/v3/GetCustomers``, ``/api/v3/GetTransfers`` and ``/api/v3/GetStockTakes`` are the
  sandbox's own reads, in the same style, behind one seam of the project's client.
- Reads also accept GET with the parameters in the query string.
- ``page`` starts at 1; ``page_size`` defaults to 50, at most 200 (a larger one is an error);
  ``count`` is the number of matching records over all pages. The public doc leaves page numbering,
  page size, ``time_zone`` and the date format open: each reading is a switch of
  :mod:`sandbox.iseller.variants` (defaults: this paging, ``time_zone`` required and applied as the
  public doc says, ISO dates, ``GetStoreInfo`` both flat and wrapped).
- ``*_after`` bounds are inclusive and ``*_before`` bounds exclusive, so consecutive windows never
  overlap or leave gaps.
- GetOrders: ``register_id`` filters on the register; ``sort`` defaults to ModifiedDate when only
  modified bounds are given, else CreatedDate; without ``includes`` every nested list is answered,
  with it only the listed ones (``OrderDetails``, ``Transactions``; others are accepted and
  ignored); ``refunded_orders`` holds the refunds whose ``refund_date`` lies in every given date
  window (and the outlet/register/customer/order filters), paged with the same ``page`` and
  ``page_size``; ``has_next_item`` is true while either list has more.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from sandbox.demo_shop import Order

from .context import SandboxState, sandbox_state
from .jsonutil import SandboxJSONResponse
from .params import ParamError, Params, read_body, read_params
from .store import SandboxError
from .variants import ZONED_METHODS, present_dates
from .views import (
    INCLUDE_KEYS,
    customer_json,
    doc_fulfillment_status,
    fulfillment_status,
    order_json,
    outlet_json,
    product_json,
    refunded_order_json,
    shift_json,
    stock_take_json,
    transfer_json,
)

T = TypeVar("T")
Handler = Callable[[SandboxState, Params], dict[str, Any]]

SORTS = {"createddate": "CreatedDate", "modifieddate": "ModifiedDate"}
DIRECTIONS = {"asc": "asc", "desc": "desc"}
ORDER_STATUSES = {s: s for s in ("draft", "reserved", "completed", "void")}
PAYMENT_STATUSES = {s: s for s in ("paid", "partially_paid", "refunded", "partially_refunded", "pending")}
FULFILLMENT_STATUSES = {s: s for s in ("fulfilled", "unfulfilled", "cancelled", "partial", "none")}
TRANSFER_TYPES = {"in": "in", "out": "out", "outlet": "outlet"}
TRANSFER_STATUSES = {s: s for s in ("sent", "received", "completed", "pending", "cancelled")}
SHIFT_STATUSES = {"open": "open", "closed": "closed"}


def page_of(items: Sequence[T], page: int, size: int) -> tuple[Sequence[T], int, bool]:
    """One page of a list, the total, and whether more pages follow."""
    start = (page - 1) * size
    return items[start : start + size], len(items), start + size < len(items)


def _in_window(value: datetime | None, window: tuple[datetime | None, datetime | None]) -> bool:
    after, before = window
    if after is None and before is None:
        return True
    if value is None:
        return False
    return (after is None or value >= after) and (before is None or value < before)


def _known(params: Params, name: str, known: dict[str, Any], label: str) -> str | None:
    value = params.text(name)
    if value is not None and value not in known:
        raise ParamError(f"{label} not found: {value}")
    return value


def _sort_and_page(
    records: list[T],
    params: Params,
    created: Callable[[T], datetime],
    modified: Callable[[T], datetime],
    seq: Callable[[T], int],
    default_sort: str = "CreatedDate",
) -> tuple[Sequence[T], int, bool]:
    """Sort small lists by CreatedDate/ModifiedDate (then creation order) and page them."""
    page, size = params.paging()
    sort = params.choice("sort", SORTS, default_sort)
    descending = params.choice("sort_direction", DIRECTIONS, "asc") == "desc"
    key = created if sort == "CreatedDate" else modified
    ordered = sorted(records, key=lambda r: (key(r), seq(r)), reverse=descending)
    return page_of(ordered, page, size)


def _listing(
    name: str, items: list[dict[str, Any]], total: int, has_next: bool, page: int, size: int
) -> dict[str, Any]:
    return {
        "status": True,
        name: items,
        "has_next_item": has_next,
        "count": total,
        "page": page,
        "page_size": size,
    }


# --------------------------------------------------------------------------- GetOrders
def get_orders(state: SandboxState, params: Params) -> dict[str, Any]:
    """``/api/v2/GetOrders``: orders by date window and filters, plus refunds in the window."""
    store = state.store
    page, size = params.paging()
    created = params.date_range("created")
    modified = params.date_range("modified")
    default_sort = "ModifiedDate" if created == (None, None) and modified != (None, None) else "CreatedDate"
    sort = params.choice("sort", SORTS, default_sort)
    descending = params.choice("sort_direction", DIRECTIONS, "asc") == "desc"
    outlet_id = _known(params, "outlet_id", store.outlets, "Outlet")
    register_id = _known(params, "register_id", store.registers, "Register")
    customer_id = params.text("customer_id")
    order_id = params.text("order_id")
    status = params.choice("status", ORDER_STATUSES)
    payment_status = params.choice("payment_status", PAYMENT_STATUSES)
    fulfillment = params.choice("fulfillment_status", FULFILLMENT_STATUSES)
    include_names = params.names("includes")
    includes = None
    if include_names is not None:
        includes = frozenset(INCLUDE_KEYS[n.lower()] for n in include_names if n.lower() in INCLUDE_KEYS)

    identity: list[Callable[[Order], bool]] = []
    if outlet_id:
        identity.append(lambda o: o.outlet_id == outlet_id)
    if register_id:
        identity.append(lambda o: o.register_id == register_id)
    if customer_id:
        identity.append(lambda o: o.customer_id == customer_id)
    checks = list(identity)
    if status:
        checks.append(lambda o: o.status == status)
    if payment_status:
        checks.append(lambda o: o.payment_status == payment_status)
    if fulfillment:
        checks.append(lambda o: fulfillment in (fulfillment_status(o), doc_fulfillment_status(o)))

    # Bisect the sorted index on its own date window; filter the rest.
    if sort == "CreatedDate":
        index, own, other, other_attr = store.created_index, created, modified, "modified_date"
    else:
        index, own, other, other_attr = store.modified_index, modified, created, "order_date"
    if other != (None, None):
        checks.append(lambda o: _in_window(getattr(o, other_attr), other))
    if order_id:
        found = store.orders.get(order_id)
        keys: Sequence[tuple[datetime, int, str]] = []
        if found is not None:
            own_date = (
                found.order_date if sort == "CreatedDate" else (found.modified_date or found.order_date)
            )
            if _in_window(own_date, own):
                keys = [(own_date, store.order_seq[order_id], order_id)]
    else:
        lo = bisect.bisect_left(index, (own[0],)) if own[0] else 0
        hi = bisect.bisect_left(index, (own[1],)) if own[1] else len(index)
        keys = index[lo:hi]
    orders = store.orders
    if checks:
        matching: list[str] = [k[2] for k in keys if all(check(orders[k[2]]) for check in checks)]
    else:
        matching = [k[2] for k in keys]
    if descending:
        matching.reverse()
    chunk, total, has_next = page_of(matching, page, size)

    # Refunds whose refund_date lies in every given window.
    afters = [w[0] for w in (created, modified) if w[0] is not None]
    befores = [w[1] for w in (created, modified) if w[1] is not None]
    rindex = store.refund_index
    lo = bisect.bisect_left(rindex, (max(afters),)) if afters else 0
    hi = bisect.bisect_left(rindex, (min(befores),)) if befores else len(rindex)
    refunds = [
        (orders[entry[2]], store.refunds[entry[2]][entry[3]])
        for entry in rindex[lo:hi]
        if (not order_id or entry[2] == order_id) and all(check(orders[entry[2]]) for check in identity)
    ]
    if descending:
        refunds.reverse()
    rchunk, rtotal, rhas_next = page_of(refunds, page, size)
    return {
        "status": True,
        "orders": [order_json(store, orders[oid], includes) for oid in chunk],
        "refunded_orders": [refunded_order_json(store, o, r, includes) for o, r in rchunk],
        "has_next_item": has_next or rhas_next,
        "count": total,
        "refunded_count": rtotal,
        "page": page,
        "page_size": size,
    }


# --------------------------------------------------------------------------- other reads
def get_register_shifts(state: SandboxState, params: Params) -> dict[str, Any]:
    """``/api/v2/GetRegisterShifts``: shifts by open/close/modified window, outlet and register."""
    store = state.store
    page, size = params.paging()
    created = params.date_range("created")
    closed = params.date_range("closed")
    modified = params.date_range("modified")
    outlet_id = _known(params, "outlet_id", store.outlets, "Outlet")
    register_id = _known(params, "register_id", store.registers, "Register")
    shift_id = params.text("register_shift_id")
    status = params.choice("status", SHIFT_STATUSES)
    shifts = [
        s
        for s in store.shifts
        if (not outlet_id or s.outlet_id == outlet_id)
        and (not register_id or s.register_id == register_id)
        and (not shift_id or s.register_shift_id == shift_id)
        and (not status or (s.closed_date is None) == (status == "open"))
        and _in_window(s.open_date, created)
        and _in_window(s.closed_date, closed)
        and _in_window(store.shift_modified(s), modified)
    ]
    seq = {id(s): n for n, s in enumerate(store.shifts)}
    default_sort = "ModifiedDate" if closed != (None, None) or modified != (None, None) else "CreatedDate"
    chunk, total, has_next = _sort_and_page(
        shifts, params, lambda s: s.open_date, store.shift_modified, lambda s: seq[id(s)], default_sort
    )
    return _listing("register_shifts", [shift_json(store, s) for s in chunk], total, has_next, page, size)


def get_products(state: SandboxState, params: Params) -> dict[str, Any]:
    """``/api/v2/GetProducts``: the catalogue with stock per outlet; ``page``/``page_size`` required."""
    store = state.store
    page, size = params.paging(required=True)
    track = params.boolean("track_inventory")
    modified = params.date_range("modified")
    sku = params.text("sku")
    product_id = params.text("product_id")
    products = [
        p
        for p in store.products.values()
        if (track is None or p.track_inventory == track)
        and _in_window(p.modified_date, modified)
        and (sku is None or p.sku == sku)
        and (product_id is None or p.product_id == product_id)
    ]
    chunk, total, has_next = page_of(products, page, size)
    return _listing("products", [product_json(store, p) for p in chunk], total, has_next, page, size)


def get_store_info(state: SandboxState, params: Params) -> dict[str, Any]:
    """``/api/v2/GetStoreInfo``: the store's name and its active outlets."""
    store = state.store
    outlets = [
        {"outlet_id": o.outlet_id, "outlet_code": o.outlet_code, "name": o.name, "outlet_name": o.name}
        for o in store.outlets.values()
    ]
    info = {
        "store_name": store.store_name,
        "currency": "IDR",
        "time_zone": next(iter(store.outlets.values())).time_zone,
        "active_outlets": outlets,
    }
    # Public doc: the answer is wrapped in ``store_info``; the flat keys are kept for older readers
    # unless the switch ``store_info_shape`` is ``wrapped``.
    wrapped = {**info, "active_outlets": [dict(o) for o in outlets]}
    if state.variants.store_info_shape == "wrapped":
        return {"status": True, "store_info": wrapped}
    return {"status": True, **info, "store_info": wrapped}


def get_outlets(state: SandboxState, params: Params) -> dict[str, Any]:
    """``/api/v3/GetOutlets``: every outlet (``is_warehouse`` is the sandbox's addition)."""
    page, size = params.paging()
    outlet_code = params.text("outlet_code")
    outlets = [o for o in state.store.outlets.values() if outlet_code is None or o.outlet_code == outlet_code]
    chunk, total, has_next = page_of(outlets, page, size)
    return _listing("outlets", [outlet_json(o) for o in chunk], total, has_next, page, size)


def get_customers(state: SandboxState, params: Params) -> dict[str, Any]:
    """Assumed ``/api/v3/GetCustomers``: customers, with their ID number when they have one."""
    store = state.store
    page, size = params.paging()
    modified = params.date_range("modified")
    customer_id = params.text("customer_id")
    number = params.text("customer_number")
    customers = [
        c
        for c in store.customers.values()
        if (customer_id is None or c.customer_id == customer_id)
        and (number is None or c.customer_number == number)
        and _in_window(store.customer_modified[c.customer_id], modified)
    ]
    chunk, total, has_next = page_of(customers, page, size)
    return _listing("customers", [customer_json(store, c) for c in chunk], total, has_next, page, size)


def get_transfers(state: SandboxState, params: Params) -> dict[str, Any]:
    """Assumed ``/api/v3/GetTransfers``: transfers between outlets and supplier ins/outs."""
    store = state.store
    page, size = params.paging()
    kind = params.choice("type", TRANSFER_TYPES)
    status = params.choice("status", TRANSFER_STATUSES)
    outlet_id = _known(params, "outlet_id", store.outlets, "Outlet")
    reference = params.text("reference_code")
    transfer_id = params.text("transfer_id")
    created = params.date_range("created")
    modified = params.date_range("modified")
    transfers = [
        t
        for t in store.transfers
        if (kind is None or t.type == kind)
        and (status is None or t.status == status)
        and (outlet_id is None or outlet_id in (t.from_outlet_id, t.to_outlet_id))
        and (reference is None or t.reference_code == reference)
        and (transfer_id is None or t.transfer_id == transfer_id)
        and _in_window(t.sent_date, created)
        and _in_window(t.modified_date, modified)
    ]
    default_sort = "ModifiedDate" if created == (None, None) and modified != (None, None) else "CreatedDate"
    chunk, total, has_next = _sort_and_page(
        transfers, params, lambda t: t.sent_date, lambda t: t.modified_date, lambda t: t.seq, default_sort
    )
    return _listing("transfers", [transfer_json(store, t) for t in chunk], total, has_next, page, size)


def get_stock_takes(state: SandboxState, params: Params) -> dict[str, Any]:
    """Assumed ``/api/v3/GetStockTakes``: counts with system and counted quantities."""
    store = state.store
    page, size = params.paging()
    outlet_id = _known(params, "outlet_id", store.outlets, "Outlet")
    take_id = params.text("stock_take_id")
    status = params.text("status")
    created = params.date_range("created")
    modified = params.date_range("modified")
    takes = [
        t
        for t in store.stock_takes
        if (outlet_id is None or t.outlet_id == outlet_id)
        and (take_id is None or t.stock_take_id == take_id)
        and (status is None or t.status == status)
        and _in_window(t.stock_take_date, created)
        and _in_window(t.stock_take_date, modified)
    ]
    seq = {id(t): n for n, t in enumerate(store.stock_takes)}
    chunk, total, has_next = _sort_and_page(
        takes, params, lambda t: t.stock_take_date, lambda t: t.stock_take_date, lambda t: seq[id(t)]
    )
    return _listing("stock_takes", [stock_take_json(store, t) for t in chunk], total, has_next, page, size)


def create_transfer(state: SandboxState, params: Params) -> dict[str, Any]:
    """``/api/v3/CreateTransfer``: supplier goods in / returns out, addressed by outlet code and SKU."""
    record = state.store.create_supplier_transfer(params.data)
    return {
        "status": True,
        "transfer_id": record.transfer_id,
        "transfer_number": record.transfer_number,
        "transfer": transfer_json(state.store, record),
    }


def update_transfer(state: SandboxState, params: Params) -> dict[str, Any]:
    """Assumed ``/api/v3/UpdateTransfer``: complete (with what arrived) or cancel a pending transfer."""
    record = state.store.update_supplier_transfer(params.data)
    return {
        "status": True,
        "transfer_id": record.transfer_id,
        "transfer_number": record.transfer_number,
        "transfer": transfer_json(state.store, record),
    }


METHODS: dict[str, Handler] = {
    "/api/v2/GetOrders": get_orders,
    "/api/v2/GetRegisterShifts": get_register_shifts,
    "/api/v2/GetProducts": get_products,
    "/api/v2/GetStoreInfo": get_store_info,
    "/api/v3/GetOutlets": get_outlets,
    "/api/v3/GetCustomers": get_customers,
    "/api/v3/GetTransfers": get_transfers,
    "/api/v3/GetStockTakes": get_stock_takes,
    "/api/v3/CreateTransfer": create_transfer,
    "/api/v3/UpdateTransfer": update_transfer,
}
#: Methods that change state answer POST only.
WRITE_METHODS = {"/api/v3/CreateTransfer", "/api/v3/UpdateTransfer"}


def unauthorized(message: str) -> Response:
    """HTTP 401, the signal for a client to refresh its token and retry once."""
    return SandboxJSONResponse(
        {"status": False, "error": "invalid_token", "error_message": message},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _apply_variants(state: SandboxState, params: Params, path: str) -> timedelta | None:
    """Set the variant switches on ``params``; the ``time_zone`` offset applied to ``path`` (None:
    dates stay UTC). In ``shifts`` mode ``time_zone`` is required on the zoned methods (public doc)."""
    variants = state.variants
    params.page_start = variants.page_start
    params.max_page_size = variants.max_page_size
    if path not in ZONED_METHODS:
        params.integer("time_zone", minimum=-12, maximum=14)  # checked, not used
        return None
    hours = params.integer(
        "time_zone", minimum=-12, maximum=14, required=variants.time_zone_semantics == "shifts"
    )
    if variants.time_zone_semantics != "shifts" or hours is None:
        return None
    params.local_offset = timedelta(hours=hours)
    return params.local_offset


def _rpc_endpoint(handler: Handler, path: str = "") -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        state = sandbox_state(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthorized("Missing bearer token")
        if not state.tokens.valid(token.strip()):
            return unauthorized("The access token is invalid or has expired")
        try:
            params = await read_params(request)
            offset = _apply_variants(state, params, path)
            answer = handler(state, params)
            if state.variants.page_start == "0" and isinstance(answer.get("page"), int):
                answer["page"] -= 1  # echo the page as the client counts it
            if offset is not None or state.variants.date_format != "iso":
                answer = present_dates(answer, offset, state.variants.date_format)
            return SandboxJSONResponse(answer)
        except (ParamError, SandboxError) as error:
            message = error.message if isinstance(error, SandboxError) else str(error)
            return SandboxJSONResponse({"status": False, "error_message": message})

    endpoint.__doc__ = handler.__doc__
    return endpoint


def _oauth_error(error: str, description: str, status_code: int) -> Response:
    return SandboxJSONResponse({"error": error, "error_description": description}, status_code=status_code)


async def oauth_token(request: Request) -> Response:
    """``POST /oauth/token``: client credentials or refresh token grant (form or JSON body)."""
    state = sandbox_state(request)
    try:
        body = await read_body(request)
    except ParamError as error:
        return _oauth_error("invalid_request", str(error), 400)
    params = Params({**dict(request.query_params), **body})
    client_id, client_secret = params.text("client_id"), params.text("client_secret")
    if client_id is None and request.headers.get("authorization", "").lower().startswith("basic "):
        try:
            decoded = base64.b64decode(request.headers["authorization"][6:]).decode("utf-8")
            client_id, _, client_secret = decoded.partition(":")
        except ValueError:  # includes binascii.Error and UnicodeDecodeError
            return _oauth_error("invalid_client", "Malformed basic credentials", 401)
    grant_type = params.text("grant_type")
    if grant_type not in ("client_credentials", "refresh_token"):
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported", 400)
    if not state.tokens.check_client(client_id, client_secret):
        return _oauth_error("invalid_client", "Client authentication failed", 401)
    assert client_id is not None
    if grant_type == "refresh_token":
        refresh = params.text("refresh_token")
        if not refresh:
            return _oauth_error("invalid_request", "refresh_token is required", 400)
        token = state.tokens.refresh(refresh)
        if token is None:
            return _oauth_error("invalid_grant", "The refresh token is invalid or was already used", 400)
    else:
        token = state.tokens.issue(client_id)
    return SandboxJSONResponse(
        {
            "access_token": token.access_token,
            "token_type": "bearer",
            "expires_in": state.tokens.ttl_seconds,
            "refresh_token": token.refresh_token,
            "resource_url": state.base_url(request),
        },
        headers={"Cache-Control": "no-store"},
    )


def register_api(app: FastAPI) -> None:
    """Add the OAuth endpoint and every iSeller method to ``app``."""
    app.add_api_route("/oauth/token", oauth_token, methods=["POST"], tags=["iSeller API"])
    for path, handler in METHODS.items():
        methods = ["POST"] if path in WRITE_METHODS else ["GET", "POST"]
        app.add_api_route(
            path,
            _rpc_endpoint(handler, path),
            methods=methods,
            tags=["iSeller API"],
            name=path.rsplit("/", 1)[1],
            summary=path.rsplit("/", 1)[1],
        )
