"""How the iSeller sandbox shows its objects as JSON (field names from ``iseller-api.md``).

Values stay Python objects here (``Decimal``, ``datetime``); :mod:`sandbox.iseller.jsonutil` writes
them as exact JSON numbers and offset-less UTC dates.

Assumptions, marked because iSeller does not document them:

- ``external_customer_id`` is the customer's **ID number** (``customer_number``), ``null`` when the
  customer has none (iSeller's own ``customer_id`` is a GUID that is always present).
- A line's ``sku`` is the product's current SKU (see :mod:`sandbox.iseller.store`).
- ``refunded_orders[]`` items are the order as in ``orders[]`` plus ``refund_id``, ``refund_date``,
  ``refund_amount`` and ``refund_details[]`` (the returned lines).
- Customers, transfers and stock takes have no documented read API; their shapes are the
  sandbox's own, in the same style.
- Public doc fields the demo shop does not model are answered with the values a plain POS sale
  has: ``total_order_amount`` = ``total_amount`` (unless set by
  ``POST /_sandbox/orders/{id}/total-order-amount``), ``total_promotion_amount`` 0, ``cashier_id`` and
  ``notes`` null, a line's ``subtotal`` = quantity x price - its discount and
  ``discount_order_amount`` 0 (no order-level discounts); ``fulfillment_status`` uses the doc's
  vocabulary (``fulfilled``, ``partial``, ``none``): a completed sale is ``fulfilled`` (one seeded
  sale, partly handed over, is ``partial``), anything else ``none``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.demo_shop import Customer, Order, Outlet, Product, Refund, Shift, StockTake, money

from .store import IsellerStore, TransferRecord

ZERO_MONEY = Decimal("0.00")

#: ``includes`` values of GetOrders and the order keys they control.
INCLUDE_KEYS = {"orderdetails": "order_details", "transactions": "transactions"}


def fulfillment_status(order: Order) -> str:
    """POS orders are handed over at the counter: fulfilled, or cancelled when voided (assumption);
    a sale partly handed over is ``partial``."""
    if order.fulfillment is not None:
        return order.fulfillment
    if order.status == "void":
        return "cancelled"
    return "fulfilled" if order.status == "completed" else "unfulfilled"


def doc_fulfillment_status(order: Order) -> str:
    """The public doc's vocabulary: a completed POS sale is handed over, so ``fulfilled``; one partly
    handed over ``partial``; else ``none``."""
    if order.fulfillment is not None:
        return order.fulfillment
    return "fulfilled" if order.status == "completed" else "none"


def order_json(store: IsellerStore, order: Order, includes: frozenset[str] | None = None) -> dict[str, Any]:
    """One order as GetOrders answers it; ``includes`` None means every nested list."""
    outlet = store.outlets[order.outlet_id]
    register = store.registers.get(order.register_id)
    customer = store.customers.get(order.customer_id) if order.customer_id else None
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "order_reference": order.order_reference,
        "channel": order.channel,
        "order_date": order.order_date,
        "closed_date": order.closed_date,
        "cancel_date": order.cancel_date,
        "status": order.status,
        "payment_status": order.payment_status,
        "outlet_id": order.outlet_id,
        "outlet_name": outlet.name,
        "outlet_code": outlet.outlet_code,
        "register_id": order.register_id,
        "register_name": register.register_name if register else None,
        "customer_id": order.customer_id,
        "customer_first_name": customer.first_name if customer else None,
        "customer_last_name": customer.last_name if customer else None,
        "customer_email": customer.email if customer else None,
        "customer_phone_number": customer.phone if customer else None,
        "external_customer_id": customer.customer_number if customer else None,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "total_discount_amount": order.total_discount_amount,
        "total_tax_amount": order.total_tax_amount,
        "rounding_amount": order.rounding_amount,
        "total_amount": order.total_amount,
        "total_order_amount": (
            order.total_amount
            if order.reported_total_order_amount is None
            else order.reported_total_order_amount
        ),
        "total_promotion_amount": ZERO_MONEY,
        "fulfillment_status": doc_fulfillment_status(order),
        "cashier_id": None,
        "notes": None,
        "tax_inclusive": order.tax_inclusive,
        "time_zone": order.time_zone,
        "modified_date": order.modified_date,
    }
    if includes is None or "order_details" in includes:
        products = store.products
        body["order_details"] = [
            {
                "order_detail_id": line.order_detail_id,
                "product_id": line.product_id,
                "product_name": line.product_name,
                "product_variant_id": None,
                "sku": products[line.product_id].sku if line.product_id in products else line.sku,
                "quantity": line.quantity,
                "base_price": line.base_price,
                "discount_amount": line.discount_amount,
                "discount_percentage": line.discount_percentage,
                "tax_percentage": line.tax_percentage,
                "tax_amount": line.tax_amount,
                "subtotal": money(line.quantity * line.base_price) - line.discount_amount,
                "discount_order_amount": ZERO_MONEY,
                "type": line.type,
            }
            for line in order.lines
        ]
    if includes is None or "transactions" in includes:
        body["transactions"] = [
            {
                "transaction_id": payment.transaction_id,
                "transaction_date": payment.transaction_date,
                "type": payment.type,
                "status": payment.status,
                "gateway": payment.gateway,
                "payment_type_name": payment.payment_type_name,
                "amount": payment.amount,
            }
            for payment in order.payments
        ]
    if order.raw:
        apply_raw(body, order.raw)
    return body


def apply_raw(body: dict[str, Any], raw: dict[str, Any]) -> None:
    """Show hostile values: ``{"order_date": "31/02/2026", "order_details.0.quantity": "abc"}``."""
    for path, value in raw.items():
        parts = path.split(".")
        if len(parts) == 1:
            body[path] = value
        elif len(parts) == 3 and isinstance(body.get(parts[0]), list) and parts[1].isdigit():
            rows = body[parts[0]]
            if int(parts[1]) < len(rows):
                rows[int(parts[1])][parts[2]] = value


def refunded_order_json(
    store: IsellerStore, order: Order, refund: Refund, includes: frozenset[str] | None = None
) -> dict[str, Any]:
    """One ``refunded_orders[]`` item: the order, plus the refund and its returned lines."""
    body = order_json(store, order, includes)
    names = {line.order_detail_id: line.product_name for line in order.lines}
    body["refund_id"] = refund.refund_id
    body["refund_date"] = refund.refund_date
    body["refund_amount"] = refund.refund_amount
    body["refund_details"] = [
        {
            "order_detail_id": line.order_detail_id,
            "product_id": line.product_id,
            "product_name": names.get(line.order_detail_id),
            "sku": store.products[line.product_id].sku if line.product_id in store.products else line.sku,
            "quantity": line.quantity,
            "amount": line.amount,
        }
        for line in refund.lines
    ]
    return body


def shift_json(store: IsellerStore, shift: Shift) -> dict[str, Any]:
    """One register shift as GetRegisterShifts answers it (``closed_date`` null while open)."""
    register = store.registers[shift.register_id]
    return {
        "register_shift_id": shift.register_shift_id,
        "register_id": shift.register_id,
        "register_name": register.register_name,
        "outlet_id": shift.outlet_id,
        "open_date": shift.open_date,
        "closed_date": shift.closed_date,
        "time_zone": store.outlets[shift.outlet_id].time_zone,
        "modified_date": store.shift_modified(shift),
    }


def product_json(store: IsellerStore, product: Product) -> dict[str, Any]:
    """One product as GetProducts answers it, with stock per outlet when inventory is tracked."""
    inventories = (
        [
            {"outlet_id": oid, "unit_in_stock": store.stock_of(product.product_id, oid)}
            for oid in store.outlets
        ]
        if product.track_inventory
        else []
    )
    return {
        "product_id": product.product_id,
        "name": product.name,
        "type": product.type,
        "sku": product.sku,
        "barcode": product.barcode,
        "price": product.price,
        "unit_of_measurement": product.unit,
        "buying_price": product.buying_price,
        "track_inventory": product.track_inventory,
        "inventories": inventories,
        "is_active": product.is_active,
        "modified_date": product.modified_date,
    }


def outlet_json(outlet: Outlet) -> dict[str, Any]:
    """One outlet as ``/api/v3/GetOutlets`` answers it (``is_warehouse`` is an assumption)."""
    return {
        "id": outlet.outlet_id,
        "outlet_id": outlet.outlet_id,
        "outlet_code": outlet.outlet_code,
        "name": outlet.name,
        "is_active": True,
        "is_warehouse": outlet.is_warehouse,
        "time_zone": outlet.time_zone,
    }


def customer_json(store: IsellerStore, customer: Customer) -> dict[str, Any]:
    """One customer (assumed ``/api/v3/GetCustomers``); ``customer_number`` is the ID number or null."""
    return {
        "customer_id": customer.customer_id,
        "customer_number": customer.customer_number,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone_number": customer.phone,
        "modified_date": store.customer_modified[customer.customer_id],
    }


def transfer_json(store: IsellerStore, transfer: TransferRecord) -> dict[str, Any]:
    """One transfer (assumed ``/api/v3/GetTransfers``): between outlets, or in/out with a supplier."""
    outlet_id = transfer.from_outlet_id if transfer.type in ("outlet", "out") else transfer.to_outlet_id
    outlet = store.outlets.get(outlet_id) if outlet_id else None
    source = store.outlets.get(transfer.from_outlet_id) if transfer.from_outlet_id else None
    target = store.outlets.get(transfer.to_outlet_id) if transfer.to_outlet_id else None
    products = store.products
    return {
        "transfer_id": transfer.transfer_id,
        "transfer_number": transfer.transfer_number,
        "type": transfer.type,
        "from_outlet_id": transfer.from_outlet_id,
        "from_outlet_code": source.outlet_code if source else None,
        "to_outlet_id": transfer.to_outlet_id,
        "to_outlet_code": target.outlet_code if target else None,
        "outlet_code": outlet.outlet_code if outlet else None,
        "reference_code": transfer.reference_code,
        "supplier_name": transfer.supplier_name,
        "status": transfer.status,
        "sent_date": transfer.sent_date,
        "received_date": transfer.received_date,
        "created_date": transfer.sent_date,
        "modified_date": transfer.modified_date,
        "tags": list(transfer.tags),
        "products": [
            {
                "product_id": line.product_id,
                "product_name": products[line.product_id].name,
                "sku": products[line.product_id].sku,
                "quantity": line.quantity,
                "received_quantity": line.received_quantity,
            }
            for line in transfer.lines
        ],
    }


def stock_take_json(store: IsellerStore, take: StockTake) -> dict[str, Any]:
    """One stock take (assumed ``/api/v3/GetStockTakes``) with system and counted quantities."""
    products = store.products
    return {
        "stock_take_id": take.stock_take_id,
        "stock_take_number": take.stock_take_number,
        "outlet_id": take.outlet_id,
        "outlet_code": store.outlets[take.outlet_id].outlet_code,
        "stock_take_date": take.stock_take_date,
        "status": take.status,
        "modified_date": take.stock_take_date,
        "lines": [
            {
                "product_id": line.product_id,
                "product_name": products[line.product_id].name,
                "sku": products[line.product_id].sku,
                "system_quantity": line.system_quantity,
                "counted_quantity": line.counted_quantity,
            }
            for line in take.lines
        ],
    }


def order_webhook_payload(order: Order) -> dict[str, Any]:
    """The body of an order notification: ids and statuses (the full order is read with GetOrders)."""
    return {
        "order_id": order.order_id,
        "order_reference": order.order_reference,
        "channel": order.channel,
        "status": order.status,
        "payment_status": order.payment_status,
        "outlet_id": order.outlet_id,
        "modified_date": order.modified_date,
    }
