"""Sandbox-only control routes under ``/_sandbox/`` (never authenticated, never under ``/api``).

They play what happens in the shop (a sale, a refund, a shift close, a transfer, a stock take, a
product getting its SKU) and configure the outgoing calls (order webhooks, shift-close hook). None of
them exists in iSeller. Errors answer HTTP 400 (404 for an unknown id in the path) with
``{"status": false, "error_message": ...}``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from .context import sandbox_state
from .jsonutil import SandboxJSONResponse, parse_dt
from .notify import HOOK_RETRY_DELAYS, ShiftCloseHookConfig
from .params import ParamError, read_body
from .store import IsellerStore, SandboxError
from .variants import VariantError
from .views import (
    customer_json,
    order_json,
    order_webhook_payload,
    product_json,
    refunded_order_json,
    shift_json,
    stock_take_json,
    transfer_json,
)

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"], default_response_class=SandboxJSONResponse)


def _date(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    try:
        # iSeller dates have whole seconds; a fraction would hide an order from an exact window.
        return parse_dt(str(value)).replace(microsecond=0)
    except ValueError:
        raise SandboxError(f"Invalid date for {name}: {value!r}") from None


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise SandboxError(f"{name} must be true or false")
    return value


@router.get("/health")
async def health(request: Request) -> SandboxJSONResponse:
    """Liveness: answers once the server is up."""
    return SandboxJSONResponse(
        {"status": "ok", "service": "iseller-sandbox", "seed": sandbox_state(request).store.seed}
    )


@router.get("/state")
async def state_summary(request: Request) -> SandboxJSONResponse:
    """Counts of what the sandbox holds, and its outgoing-call configuration."""
    state = sandbox_state(request)
    notifier = state.notifier
    return SandboxJSONResponse(
        {
            **state.store.summary(),
            "webhook": {
                "order_url": notifier.webhook.order_url,
                "api_key_set": bool(notifier.webhook.api_key),
            },
            "webhook_deliveries": len(notifier.deliveries),
            "shift_close_hook": notifier.hook.public() if notifier.hook else None,
            "shift_close_hook_calls": len(notifier.hook_calls),
        }
    )


@router.post("/reset")
async def reset(request: Request) -> SandboxJSONResponse:
    """Rebuild the data from ``{"seed": N}`` (default: the current seed). Tokens and configuration stay."""
    state = sandbox_state(request)
    body = await read_body(request)
    seed = body.get("seed", state.store.seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SandboxError("seed must be an integer")
    state.store = IsellerStore(seed, clock=state.store.clock)
    state.notifier.clear_logs()
    return SandboxJSONResponse({"status": True, **state.store.summary()})


@router.post("/pending-transfers")
async def set_pending_transfers(request: Request) -> SandboxJSONResponse:
    """``{"enabled": bool}``: the assumed pending supplier transfers and ``UpdateTransfer`` on or off."""
    state = sandbox_state(request)
    body = await read_body(request)
    state.store.pending_transfers = _bool(body, "enabled", True)
    return SandboxJSONResponse({"status": True, "pending_transfers": state.store.pending_transfers})


@router.post("/tokens/expire")
async def expire_tokens(request: Request) -> SandboxJSONResponse:
    """Make every access token expire now (API calls then get 401; refresh tokens still work)."""
    return SandboxJSONResponse({"status": True, "expired": sandbox_state(request).tokens.expire_all()})


@router.get("/tokens/issued")
async def issued_tokens(request: Request) -> SandboxJSONResponse:
    """Every access and refresh token handed out since start, oldest first (sandbox secrets only)."""
    issued = sandbox_state(request).tokens.issued
    rows = [{"access_token": t.access_token, "refresh_token": t.refresh_token} for t in issued]
    return SandboxJSONResponse({"status": True, "tokens": rows, "count": len(rows)})


@router.post("/webhooks")
async def configure_webhooks(request: Request) -> SandboxJSONResponse:
    """``{"order_url", "api_key"}``: where order notifications go (``order_url: null`` stops them)."""
    notifier = sandbox_state(request).notifier
    body = await read_body(request)
    url = body.get("order_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise SandboxError("order_url must be an http(s) URL or null")
    notifier.webhook.order_url = url or None
    notifier.webhook.api_key = str(body.get("api_key") or "")
    return SandboxJSONResponse(
        {
            "status": True,
            "order_url": notifier.webhook.order_url,
            "api_key_set": bool(notifier.webhook.api_key),
        }
    )


@router.get("/webhook-deliveries")
async def webhook_deliveries(request: Request) -> SandboxJSONResponse:
    """Every delivery attempt (optionally ``?order_id=``), oldest first."""
    order_id = request.query_params.get("order_id")
    rows = [
        d for d in sandbox_state(request).notifier.deliveries if not order_id or d["order_id"] == order_id
    ]
    return SandboxJSONResponse({"status": True, "deliveries": rows, "count": len(rows)})


@router.post("/shift-close-hook")
async def configure_shift_close_hook(request: Request) -> SandboxJSONResponse:
    """``{"url", "token_url"?, "username"?, "password"?, "headers"?, "retry_delays"?}``;
    ``{"url": null}`` removes it. ``retry_delays``: seconds before each retry (at most 10, each at
    most 600; ``[]`` turns retries off); pending retries of earlier closes stop on any change."""
    notifier = sandbox_state(request).notifier
    body = await read_body(request)
    url = body.get("url")
    notifier.cancel_hook_retries()
    if url is None:
        notifier.hook = None
        return SandboxJSONResponse({"status": True, "hook": None})
    for name in ("url", "token_url"):
        value = body.get(name)
        if value is not None and not (isinstance(value, str) and value.startswith(("http://", "https://"))):
            raise SandboxError(f"{name} must be an http(s) URL")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict):
        raise SandboxError("headers must be an object")
    delays = body.get("retry_delays", list(HOOK_RETRY_DELAYS))
    if (
        not isinstance(delays, list)
        or len(delays) > 10
        or not all(
            isinstance(d, int | float | Decimal) and not isinstance(d, bool) and 0 <= d <= 600 for d in delays
        )
    ):
        raise SandboxError("retry_delays must be a list of at most 10 numbers of seconds (0 to 600)")
    notifier.hook = ShiftCloseHookConfig(
        url=url,
        token_url=body.get("token_url"),
        username=None if body.get("username") is None else str(body["username"]),
        password=None if body.get("password") is None else str(body["password"]),
        headers={str(k): str(v) for k, v in headers.items()},
        retry_delays=tuple(float(d) for d in delays),
    )
    return SandboxJSONResponse({"status": True, "hook": notifier.hook.public()})


@router.get("/shift-close-hook")
async def shift_close_hook_calls(request: Request) -> SandboxJSONResponse:
    """The hook configuration (without password) and every call made."""
    notifier = sandbox_state(request).notifier
    return SandboxJSONResponse(
        {
            "status": True,
            "hook": notifier.hook.public() if notifier.hook else None,
            "calls": notifier.hook_calls,
        }
    )


@router.post("/orders")
async def create_order(request: Request) -> SandboxJSONResponse:
    """Ring up a completed order now; answers it as GetOrders shows it and sends the order webhook."""
    state = sandbox_state(request)
    body = await read_body(request)
    for name in ("outlet_id", "register_id"):
        if not body.get(name):
            raise SandboxError(f"{name} is required")
    order = state.store.create_order(
        outlet_id=str(body["outlet_id"]),
        register_id=str(body["register_id"]),
        lines=body.get("lines"),  # type: ignore[arg-type]
        customer_id=body.get("customer_id") or None,
        payments=body.get("payments"),
        tax_inclusive=_bool(body, "tax_inclusive", True),
        order_date=_date(body, "order_date"),
        channel=str(body.get("channel") or "pos"),
    )
    state.notifier.notify_order("order.created", order_webhook_payload(order))
    return SandboxJSONResponse(order_json(state.store, order))


@router.post("/orders/bulk")
async def create_orders_bulk(request: Request) -> SandboxJSONResponse:
    """Ring up N random valid orders fast, without webhooks unless asked.

    Body: ``{"count": N, "outlet_id"?, "register_id"?, "start_date"?, "end_date"?, "seed"?,
    "send_webhooks"?: false, "include_ids"?: false}``.
    """
    state = sandbox_state(request)
    body = await read_body(request)
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int):
        raise SandboxError("count must be an integer")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SandboxError("seed must be an integer")
    orders = state.store.create_random_orders(
        count,
        outlet_id=body.get("outlet_id") or None,
        register_id=body.get("register_id") or None,
        start=_date(body, "start_date"),
        end=_date(body, "end_date"),
        seed=seed,
    )
    if _bool(body, "send_webhooks", False):
        for order in orders:
            state.notifier.notify_order("order.created", order_webhook_payload(order))
    answer: dict[str, Any] = {
        "status": True,
        "created": len(orders),
        "first_order_reference": orders[0].order_reference,
        "last_order_reference": orders[-1].order_reference,
        "first_order_date": min(o.order_date for o in orders),
        "last_order_date": max(o.order_date for o in orders),
        "total_orders": len(state.store.orders),
    }
    if _bool(body, "include_ids", False):
        answer["order_ids"] = [o.order_id for o in orders]
    return SandboxJSONResponse(answer)


@router.post("/orders/{order_id}/refund")
async def refund_order(order_id: str, request: Request) -> SandboxJSONResponse:
    """``{"lines": [{"sku" | "product_id" | "order_detail_id", "quantity"}]}`` (no body: refund all left)."""
    state = sandbox_state(request)
    body = await read_body(request)
    refund = state.store.refund_order(order_id, body.get("lines"))
    order = state.store.orders[order_id]
    state.notifier.notify_order("order.refunded", order_webhook_payload(order))
    return SandboxJSONResponse(refunded_order_json(state.store, order, refund))


@router.post("/orders/{order_id}/raw")
async def set_raw_values(order_id: str, request: Request) -> SandboxJSONResponse:
    """``{"set": {"<field>" | "<list>.<index>.<field>": value}}``: GetOrders shows these hostile values
    instead of the real ones (``"order_details.0.quantity": "abc"``, ``"order_date": "31/02/2026"``);
    ``{"set": {}}`` clears them. The order's stock and totals stay as they were."""
    state = sandbox_state(request)
    body = await read_body(request)
    values = body.get("set")
    if not isinstance(values, dict):
        raise SandboxError("set must be an object of field paths to values")
    for path in values:
        parts = str(path).split(".")
        if not (len(parts) == 1 or (len(parts) == 3 and parts[1].isdigit())):
            raise SandboxError(f"{path!r} is not a field path like order_date or order_details.0.quantity")
    order = state.store.order(order_id)
    order.raw = dict(values)
    return SandboxJSONResponse(order_json(state.store, order))


#: Largest ``total_order_amount`` the control route takes (15 digits of rupiah before the point).
MAX_REPORTED_TOTAL = Decimal("999999999999999.99")


def _reported_total(body: dict[str, Any]) -> Decimal | None:
    """The ``total_order_amount`` to report: a decimal string (or JSON number) of money, or null."""
    if "total_order_amount" not in body:
        raise SandboxError('total_order_amount is required (a decimal string like "150001.00", or null)')
    value = body["total_order_amount"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise SandboxError(f'total_order_amount must be a decimal string like "150001.00", got {value!r}')
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise SandboxError(f"total_order_amount must be a decimal string, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_REPORTED_TOTAL:
        raise SandboxError(f"total_order_amount must be from 0 to {MAX_REPORTED_TOTAL}, got {value!r}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise SandboxError(f"total_order_amount has more than 2 decimal places: {value!r}")
    return amount


@router.post("/orders/{order_id}/total-order-amount")
async def set_reported_total(order_id: str, request: Request) -> SandboxJSONResponse:
    """``{"total_order_amount": "150001.00"}``: GetOrders reports this total for the order instead of
    its ``total_amount`` (as a store whose total counts something the lines do not show);
    ``{"total_order_amount": null}`` reports ``total_amount`` again. Lines, payments, stock and
    ``modified_date`` stay as they were."""
    state = sandbox_state(request)
    body = await read_body(request)
    order = state.store.order(order_id)
    order.reported_total_order_amount = _reported_total(body)
    return SandboxJSONResponse(order_json(state.store, order))


@router.post("/orders/{order_id}/void")
async def void_order(order_id: str, request: Request) -> SandboxJSONResponse:
    """Void a completed order; answers the order and sends the order webhook."""
    state = sandbox_state(request)
    order = state.store.void_order(order_id)
    state.notifier.notify_order("order.voided", order_webhook_payload(order))
    return SandboxJSONResponse(order_json(state.store, order))


@router.post("/registers/{register_id}/close-shift")
async def close_shift(register_id: str, request: Request) -> SandboxJSONResponse:
    """Close the register's shift; answers the shift and, under ``hook``, the shift-close hook's outcome."""
    state = sandbox_state(request)
    shift = state.store.close_shift(register_id)
    answer = shift_json(state.store, shift)
    answer["hook"] = await state.notifier.shift_closed(
        {
            "outlet_id": shift.outlet_id,
            "register_id": shift.register_id,
            "register_shift_id": shift.register_shift_id,
        }
    )
    return SandboxJSONResponse(answer)


@router.post("/transfers")
async def create_transfer(request: Request) -> SandboxJSONResponse:
    """``{"from_outlet_id", "to_outlet_id", "lines": [{"sku", "quantity"}]}``: a sent transfer."""
    state = sandbox_state(request)
    body = await read_body(request)
    for name in ("from_outlet_id", "to_outlet_id"):
        if not body.get(name):
            raise SandboxError(f"{name} is required")
    record = state.store.create_outlet_transfer(
        str(body["from_outlet_id"]), str(body["to_outlet_id"]), body.get("lines")
    )
    return SandboxJSONResponse(transfer_json(state.store, record))


@router.post("/transfers/{transfer_id}/receive")
async def receive_transfer(transfer_id: str, request: Request) -> SandboxJSONResponse:
    """Receive in full, or ``{"lines": [{"sku", "received_quantity"}]}`` for a partial receipt."""
    state = sandbox_state(request)
    body = await read_body(request)
    record = state.store.receive_transfer(transfer_id, body.get("lines"))
    return SandboxJSONResponse(transfer_json(state.store, record))


@router.post("/stock-takes")
async def create_stock_take(request: Request) -> SandboxJSONResponse:
    """``{"outlet_id", "lines": [{"sku", "counted_quantity"}]}``: system quantity = current stock."""
    state = sandbox_state(request)
    body = await read_body(request)
    if not body.get("outlet_id"):
        raise SandboxError("outlet_id is required")
    take = state.store.create_stock_take(str(body["outlet_id"]), body.get("lines"))
    return SandboxJSONResponse(stock_take_json(state.store, take))


@router.patch("/products/{product_id}")
async def patch_product(product_id: str, request: Request) -> SandboxJSONResponse:
    """Change product fields, e.g. ``{"sku": "BRG-0048"}`` to give the SKU-less product its SKU."""
    state = sandbox_state(request)
    body = await read_body(request)
    product = state.store.patch_product(product_id, body)
    return SandboxJSONResponse(product_json(state.store, product))


@router.patch("/customers/{customer_id}")
async def patch_customer(customer_id: str, request: Request) -> SandboxJSONResponse:
    """Change customer fields, e.g. ``{"customer_number": "CUST-00099"}``."""
    state = sandbox_state(request)
    body = await read_body(request)
    customer = state.store.patch_customer(customer_id, body)
    return SandboxJSONResponse(customer_json(state.store, customer))


@router.get("/variants")
async def variants(request: Request) -> SandboxJSONResponse:
    """The switches for the points the public doc leaves open (see ``sandbox/iseller/variants.py``)."""
    return SandboxJSONResponse({"status": True, **sandbox_state(request).variants.public()})


@router.post("/variants")
async def set_variants(request: Request) -> SandboxJSONResponse:
    """Set some switches, e.g. ``{"time_zone_semantics": "ignored", "page_start": "0"}``;
    ``{"reset": true}`` puts every switch back to its default."""
    state = sandbox_state(request)
    body = await read_body(request)
    try:
        if body.pop("reset", False) is True:
            state.variants.update(type(state.variants)().public())
        state.variants.update(body)
    except VariantError as error:
        raise SandboxError(str(error)) from None
    return SandboxJSONResponse({"status": True, **state.variants.public()})


async def sandbox_error_handler(request: Request, error: Exception) -> SandboxJSONResponse:
    """Control-route refusals: ``{"status": false, "error_message"}`` with 400/404/409."""
    if isinstance(error, SandboxError):
        return SandboxJSONResponse(
            {"status": False, "error_message": error.message}, status_code=error.status_code
        )
    return SandboxJSONResponse({"status": False, "error_message": str(error)}, status_code=400)


EXCEPTION_HANDLERS = {SandboxError: sandbox_error_handler, ParamError: sandbox_error_handler}
