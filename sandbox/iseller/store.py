"""In-memory state of the iSeller sandbox and the rules that change it.

The state is seeded from :func:`sandbox.demo_shop.build_demo_shop` (same seed, same data, ids
included). Objects created later through the control routes draw their ids from a generator seeded
from the same seed, so a replayed sequence of control calls also gives the same ids; only their
timestamps ("now") differ.

Public facts followed here (``shared/reference/iseller-api.md``): orders carry no shift id, so a
shift's orders are its register's orders between ``open_date`` and ``closed_date``; a product's SKU
may be empty; ``CreateTransfer`` addresses products by SKU and outlets by ``outlet_code``.

Assumptions (not documented by iSeller, chosen for the sandbox):

- A register's shift opens with its first order when none is open; closing answers the closed
  shift. Shift bounds are inclusive at both ends, and an order that would fall in the same second as
  the register's last close is dated one second later, so no order can belong to two shifts.
- Order lines refer to products; a line's ``sku`` is the product's *current* SKU, so giving a
  product its missing SKU repairs the orders already sold without one.
- Stock may go negative (a POS does not refuse a sale); a partial receipt loses the difference.
- ``CreateTransfer`` does not refuse a repeated ``reference_code``; a client checks with
  ``GetTransfers`` (filter ``reference_code``) before it creates.
- ``CreateTransfer`` also accepts ``status: "pending"`` for goods expected from a supplier (type
  ``in``): nothing moves until the transfer is completed. ``/api/v3/UpdateTransfer`` (found by
  ``reference_code`` or ``transfer_id``) turns a pending transfer ``completed`` (with the quantities
  that arrived; stock moves then) or ``cancelled`` (nothing moves). iSeller documents neither; the
  switch ``pending_transfers`` (``POST /_sandbox/pending-transfers``, or the environment variable
  ``ISELLER_SANDBOX_PENDING_TRANSFERS=0``) turns both off, as a store without them would answer.

All handlers of the app run on one event loop, so the store needs no lock.
"""

from __future__ import annotations

import bisect
import os
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.demo_shop import (
    MISSING_IN_ACCURATE_INDEX,
    NO_SKU_PRODUCT_INDEX,
    Customer,
    Order,
    OrderLine,
    Outlet,
    Payment,
    Product,
    Refund,
    RefundLine,
    Register,
    Shift,
    StockTake,
    StockTakeLine,
    TransferLine,
    build_demo_shop,
    compute_order_lines,
    money,
)

#: Payment gateways iSeller knows, with the name the sandbox shows as ``payment_type_name``.
GATEWAY_NAMES: dict[str, str] = {
    "cash": "Tunai",
    "external_debit": "Kartu Debit",
    "external_credit": "Kartu Kredit",
    "gift_card": "Gift Card",
    "points": "Poin",
    "store_credit": "Store Credit",
    "iseller_pay": "iSeller Pay",
    "custom": "Transfer Bank",
}
#: Date of the seeded customers (the demo shop gives customers no modification date).
SEEDED_CUSTOMER_DATE = datetime(2026, 11, 1, tzinfo=UTC)

IndexKey = tuple[datetime, int, str]


class SandboxError(Exception):
    """A request the sandbox refuses; ``status_code`` is used by the control routes."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def utc_now() -> datetime:
    """The current UTC time in whole seconds (iSeller dates have no fraction)."""
    return datetime.now(UTC).replace(microsecond=0)


def to_decimal(value: Any, name: str) -> Decimal:
    """Read a number (JSON number, Decimal or numeric string) exactly; refuse anything else."""
    if isinstance(value, bool) or value is None:
        raise SandboxError(f"{name} must be a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise SandboxError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise SandboxError(f"{name} must be a finite number")
    return number


@dataclass
class TransferRecord:
    """A transfer as the sandbox keeps it: between outlets (``outlet``) or with a supplier (in/out)."""

    transfer_id: str
    transfer_number: str
    type: str  # outlet | in | out
    from_outlet_id: str | None
    to_outlet_id: str | None
    status: str  # sent | received | completed | pending | cancelled
    sent_date: datetime
    received_date: datetime | None
    modified_date: datetime
    lines: list[TransferLine]
    reference_code: str | None = None
    supplier_name: str | None = None
    tags: list[str] = field(default_factory=list)
    seq: int = 0


@dataclass
class RefundEntry:
    """One refund of one order, for the ``refunded_orders`` answer."""

    order: Order
    refund: Refund


class IsellerStore:
    """The sandbox's whole state for one seed, with its indexes."""

    def __init__(self, seed: int, clock: Callable[[], datetime] = utc_now) -> None:
        shop = build_demo_shop(seed)
        self.seed = seed
        self.clock = clock
        self.store_name = shop.store_name
        self._rng = random.Random(f"iseller-sandbox-{seed}")

        self.outlets: dict[str, Outlet] = {o.outlet_id: o for o in shop.outlets}
        self.outlets_by_code: dict[str, Outlet] = {o.outlet_code: o for o in shop.outlets}
        self.registers: dict[str, Register] = {r.register_id: r for r in shop.registers}
        self.products: dict[str, Product] = {p.product_id: p for p in shop.products}
        self.customers: dict[str, Customer] = {c.customer_id: c for c in shop.customers}
        self.customer_modified: dict[str, datetime] = dict.fromkeys(self.customers, SEEDED_CUSTOMER_DATE)
        #: Products a generated order may sell: with a SKU that Accurate knows.
        self.sellable: list[Product] = [
            p
            for i, p in enumerate(shop.products)
            if i not in (NO_SKU_PRODUCT_INDEX, MISSING_IN_ACCURATE_INDEX)
        ]

        self.shifts: list[Shift] = list(shop.shifts)
        self.open_shifts: dict[str, Shift] = {s.register_id: s for s in shop.shifts if s.closed_date is None}
        self.last_close: dict[str, datetime] = {}
        for shift in shop.shifts:
            if shift.closed_date is not None:
                previous = self.last_close.get(shift.register_id)
                if previous is None or shift.closed_date > previous:
                    self.last_close[shift.register_id] = shift.closed_date

        self.orders: dict[str, Order] = {}
        self.order_seq: dict[str, int] = {}
        self.refunds: dict[str, list[Refund]] = {}
        self.created_index: list[IndexKey] = []
        self.modified_index: list[IndexKey] = []
        self.refund_index: list[tuple[datetime, int, str, int]] = []
        self._refund_seq = 0
        for order in sorted(shop.orders, key=lambda o: o.order_date):
            self._index_new_order(order)
            if order.refund is not None:
                self._index_refund(order, order.refund)
        self.order_counter = max(int(o.order_reference.rsplit("-", 1)[1]) for o in shop.orders)

        self.transfers: list[TransferRecord] = []
        for transfer in shop.transfers:
            self.transfers.append(
                TransferRecord(
                    transfer_id=transfer.transfer_id,
                    transfer_number=transfer.transfer_number,
                    type="outlet",
                    from_outlet_id=transfer.from_outlet_id,
                    to_outlet_id=transfer.to_outlet_id,
                    status=transfer.status,
                    sent_date=transfer.sent_date,
                    received_date=transfer.received_date,
                    modified_date=transfer.modified_date or transfer.received_date or transfer.sent_date,
                    lines=transfer.lines,
                    seq=len(self.transfers),
                )
            )
        self.transfer_counter = len(self.transfers)
        self.stock_takes: list[StockTake] = list(shop.stock_takes)
        self.stock_take_counter = len(self.stock_takes)

        self.stock: dict[tuple[str, str], Decimal] = {}
        self._replay_stock(shop.opening_stock)
        #: Assumed pending supplier transfers and ``UpdateTransfer`` (see the module docstring).
        self.pending_transfers = os.environ.get("ISELLER_SANDBOX_PENDING_TRANSFERS", "1") != "0"

    # ----------------------------------------------------------------- seeding helpers
    def _replay_stock(self, opening_stock: dict[tuple[str, str], Decimal]) -> None:
        """Current stock = opening stock, minus sales, plus refunds and transfers, corrected by takes."""
        by_sku = {p.sku: p.product_id for p in self.products.values() if p.sku}
        for (sku, outlet_id), quantity in opening_stock.items():
            self.stock[(by_sku[sku], outlet_id)] = quantity
        for order in self.orders.values():
            if order.status == "completed":
                for line in order.lines:
                    self._move(line.product_id, order.outlet_id, -line.quantity)
            for refund in self.refunds.get(order.order_id, []):
                for refund_line in refund.lines:
                    self._move(refund_line.product_id, order.outlet_id, refund_line.quantity)
        for transfer in self.transfers:
            for tline in transfer.lines:
                if transfer.from_outlet_id:
                    self._move(tline.product_id, transfer.from_outlet_id, -tline.quantity)
                if transfer.to_outlet_id and tline.received_quantity is not None:
                    self._move(tline.product_id, transfer.to_outlet_id, tline.received_quantity)
        # The seeded history ends with its stock takes, so each sets the stock to its count plus
        # whatever moved after it (nothing, in the seeded data).
        for take in self.stock_takes:
            for sline in take.lines:
                self._move(sline.product_id, take.outlet_id, sline.counted_quantity - sline.system_quantity)

    def _move(self, product_id: str, outlet_id: str, delta: Decimal) -> None:
        key = (product_id, outlet_id)
        self.stock[key] = self.stock.get(key, Decimal(0)) + delta

    def stock_of(self, product_id: str, outlet_id: str) -> Decimal:
        """Units of a product in stock at an outlet (0 when never stocked)."""
        return self.stock.get((product_id, outlet_id), Decimal(0))

    def guid(self) -> str:
        """A new GUID, deterministic for the seed and the sequence of calls."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # ----------------------------------------------------------------- indexes
    def _index_new_order(self, order: Order) -> None:
        seq = len(self.order_seq)
        self.orders[order.order_id] = order
        self.order_seq[order.order_id] = seq
        self.refunds.setdefault(order.order_id, [])
        if order.modified_date is None:
            order.modified_date = order.order_date
        _insert(self.created_index, (order.order_date, seq, order.order_id))
        _insert(self.modified_index, (order.modified_date, seq, order.order_id))

    def _touch_order(self, order: Order, when: datetime) -> None:
        seq = self.order_seq[order.order_id]
        assert order.modified_date is not None
        old = (order.modified_date, seq, order.order_id)
        position = bisect.bisect_left(self.modified_index, old)
        if position < len(self.modified_index) and self.modified_index[position] == old:
            del self.modified_index[position]
        order.modified_date = when
        _insert(self.modified_index, (when, seq, order.order_id))

    def _index_refund(self, order: Order, refund: Refund) -> None:
        refunds = self.refunds.setdefault(order.order_id, [])
        refunds.append(refund)
        self._refund_seq += 1
        _insert(self.refund_index, (refund.refund_date, self._refund_seq, order.order_id, len(refunds) - 1))

    # ----------------------------------------------------------------- lookups
    def outlet(self, outlet_id: str, status_code: int = 400) -> Outlet:
        """The outlet with this id, or an error (400: named in a body; 404: in a path)."""
        outlet = self.outlets.get(outlet_id)
        if outlet is None:
            raise SandboxError(f"Outlet not found: {outlet_id}", status_code)
        return outlet

    def register(self, register_id: str, status_code: int = 400) -> Register:
        """The register with this id, or an error (400: named in a body; 404: in a path)."""
        register = self.registers.get(register_id)
        if register is None:
            raise SandboxError(f"Register not found: {register_id}", status_code)
        return register

    def order(self, order_id: str) -> Order:
        """The order with this id, or a 404 error."""
        order = self.orders.get(order_id)
        if order is None:
            raise SandboxError(f"Order not found: {order_id}", 404)
        return order

    def product_by_sku(self, sku: str) -> Product | None:
        """The product whose current SKU is ``sku`` (never matches the empty SKU)."""
        if not sku:
            return None
        return next((p for p in self.products.values() if p.sku == sku), None)

    def resolve_product(self, spec: dict[str, Any], where: str) -> Product:
        """The product a line names by ``sku`` or, for a product without SKU, by ``product_id``."""
        product_id = spec.get("product_id")
        if product_id:
            product = self.products.get(str(product_id))
            if product is None:
                raise SandboxError(f"{where}: product not found: {product_id}")
            return product
        sku = spec.get("sku")
        if not sku:
            raise SandboxError(f"{where}: a line needs a sku (or product_id for a product without SKU)")
        product = self.product_by_sku(str(sku))
        if product is None:
            raise SandboxError(f"{where}: SKU not found: {sku}")
        return product

    # ----------------------------------------------------------------- orders
    def _shift_for_order(self, register: Register, order_date: datetime) -> Shift:
        shift = self.open_shifts.get(register.register_id)
        if shift is None:
            shift = Shift(self.guid(), register.register_id, register.outlet_id, order_date, None)
            self.shifts.append(shift)
            self.open_shifts[register.register_id] = shift
        elif order_date < shift.open_date:
            shift.open_date = order_date
        return shift

    def create_order(
        self,
        outlet_id: str,
        register_id: str,
        lines: list[dict[str, Any]],
        customer_id: str | None = None,
        payments: list[dict[str, Any]] | None = None,
        tax_inclusive: bool = True,
        order_date: datetime | None = None,
        channel: str = "pos",
    ) -> Order:
        """Ring up a completed order: compute lines and totals, take payments, reduce stock."""
        outlet = self.outlet(outlet_id)
        register = self.register(register_id)
        if register.outlet_id != outlet.outlet_id:
            raise SandboxError(f"Register {register_id} does not belong to outlet {outlet_id}")
        if customer_id and customer_id not in self.customers:
            raise SandboxError(f"Customer not found: {customer_id}")
        if not isinstance(lines, list) or not lines:
            raise SandboxError("An order needs at least one line")
        items: list[tuple[Product, Decimal, Decimal, Decimal]] = []
        for number, spec in enumerate(lines, start=1):
            if not isinstance(spec, dict):
                raise SandboxError(f"line {number} must be an object")
            where = f"line {number}"
            product = self.resolve_product(spec, where)
            quantity = to_decimal(spec.get("quantity", 1), f"{where} quantity")
            if quantity <= 0:
                raise SandboxError(f"{where}: quantity must be positive")
            price = (
                product.price if spec.get("price") is None else to_decimal(spec["price"], f"{where} price")
            )
            if price < 0:
                raise SandboxError(f"{where}: price must not be negative")
            discount = to_decimal(spec.get("discount_percentage", 0), f"{where} discount_percentage")
            if not 0 <= discount <= 100:
                raise SandboxError(f"{where}: discount_percentage must be between 0 and 100")
            items.append((product, quantity, price, discount))
        return self._ring_up(
            outlet, register, items, customer_id, payments, tax_inclusive, order_date, channel
        )

    def _ring_up(
        self,
        outlet: Outlet,
        register: Register,
        items: list[tuple[Product, Decimal, Decimal, Decimal]],
        customer_id: str | None,
        payments: list[dict[str, Any]] | None,
        tax_inclusive: bool,
        order_date: datetime | None,
        channel: str,
    ) -> Order:
        if order_date is None:
            order_date = self.clock()
            last_close = self.last_close.get(register.register_id)
            if register.register_id not in self.open_shifts and last_close and order_date <= last_close:
                order_date = last_close + timedelta(seconds=1)
        order_lines, totals = compute_order_lines(items, tax_inclusive, self.guid)
        total = totals["total_amount"]
        payment_rows = self._payments(payments, total, order_date)
        paid = sum((p.amount for p in payment_rows), Decimal(0))
        if paid > total:
            raise SandboxError(f"Payments ({paid}) exceed the order total ({total})")
        payment_status = "paid" if paid == total else ("partially_paid" if paid > 0 else "pending")
        self._shift_for_order(register, order_date)
        self.order_counter += 1
        order = Order(
            order_id=self.guid(),
            order_reference=f"#{outlet.outlet_code}-{self.order_counter}",
            channel=channel,
            order_date=order_date,
            closed_date=order_date,
            cancel_date=None,
            status="completed",
            payment_status=payment_status,
            outlet_id=outlet.outlet_id,
            register_id=register.register_id,
            customer_id=customer_id or None,
            tax_inclusive=tax_inclusive,
            lines=order_lines,
            payments=payment_rows,
            modified_date=order_date,
            time_zone=outlet.time_zone,
            subtotal=totals["subtotal"],
            total_discount_amount=totals["total_discount_amount"],
            total_tax_amount=totals["total_tax_amount"],
            rounding_amount=totals["rounding_amount"],
            total_amount=totals["total_amount"],
        )
        for line in order_lines:
            self._move(line.product_id, outlet.outlet_id, -line.quantity)
        self._index_new_order(order)
        return order

    def _payments(self, specs: list[dict[str, Any]] | None, total: Decimal, when: datetime) -> list[Payment]:
        if specs is None:
            return [Payment(self.guid(), when, "sale", "success", "cash", GATEWAY_NAMES["cash"], total)]
        if not isinstance(specs, list):
            raise SandboxError("payments must be a list")
        rows = []
        for number, spec in enumerate(specs, start=1):
            if not isinstance(spec, dict):
                raise SandboxError(f"payment {number} must be an object")
            gateway = str(spec.get("gateway") or "cash")
            if gateway not in GATEWAY_NAMES:
                raise SandboxError(
                    f"payment {number}: unknown gateway {gateway!r}; one of {sorted(GATEWAY_NAMES)}"
                )
            amount = money(to_decimal(spec.get("amount", total), f"payment {number} amount"))
            if amount <= 0:
                raise SandboxError(f"payment {number}: amount must be positive")
            name = str(spec.get("payment_type_name") or GATEWAY_NAMES[gateway])
            rows.append(Payment(self.guid(), when, "sale", "success", gateway, name, amount))
        return rows

    def create_random_orders(
        self,
        count: int,
        outlet_id: str | None = None,
        register_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        seed: int | None = None,
    ) -> list[Order]:
        """Ring up ``count`` random valid orders (SKU products known to Accurate), fast.

        Dates are spread evenly over ``[start, end]`` when given, else all "now".
        """
        if count < 1 or count > 100_000:
            raise SandboxError("count must be between 1 and 100000")
        registers = list(self.registers.values())
        if outlet_id:
            self.outlet(outlet_id)
            registers = [r for r in registers if r.outlet_id == outlet_id]
            if not registers:
                raise SandboxError(f"Outlet {outlet_id} has no register")
        if register_id:
            registers = [self.register(register_id)]
            if outlet_id and registers[0].outlet_id != outlet_id:
                raise SandboxError(f"Register {register_id} does not belong to outlet {outlet_id}")
        if (start is None) != (end is None):
            raise SandboxError("give both start_date and end_date, or neither")
        if start is not None and end is not None and end < start:
            raise SandboxError("end_date is before start_date")
        rng = random.Random(seed) if seed is not None else self._rng
        customers = list(self.customers.values())
        created = []
        for index in range(count):
            register = rng.choice(registers)
            outlet = self.outlets[register.outlet_id]
            items = [
                (product, Decimal(rng.randrange(1, 4)), product.price, Decimal(rng.choice((0, 0, 0, 5, 10))))
                for product in rng.sample(self.sellable, rng.randrange(1, 4))
            ]
            customer_id = rng.choice(customers).customer_id if rng.random() < 0.5 else None
            order_date = None
            if start is not None and end is not None:
                span = (end - start).total_seconds()
                offset = int(span * index / (count - 1)) if count > 1 else 0
                order_date = start + timedelta(seconds=offset)
            created.append(
                self._ring_up(
                    outlet, register, items, customer_id, None, rng.random() < 0.7, order_date, "pos"
                )
            )
        return created

    def refundable(self, order: Order) -> dict[str, Decimal]:
        """Units still refundable per order line."""
        left = {line.order_detail_id: line.quantity for line in order.lines}
        for refund in self.refunds.get(order.order_id, []):
            for rline in refund.lines:
                left[rline.order_detail_id] -= rline.quantity
        return left

    def refund_order(self, order_id: str, lines: list[dict[str, Any]] | None) -> Refund:
        """Return units of a completed order: a refund payment, stock back, payment status updated.

        Without ``lines`` everything still refundable is returned. A line names the order line by
        ``sku``, ``product_id`` or ``order_detail_id``.
        """
        order = self.order(order_id)
        if order.status != "completed":
            raise SandboxError(
                f"Order {order.order_reference} is {order.status}; only completed orders refund"
            )
        left = self.refundable(order)
        wanted: dict[str, Decimal] = {}
        if lines is None:
            wanted = {k: v for k, v in left.items() if v > 0}
        else:
            if not isinstance(lines, list) or not lines:
                raise SandboxError("lines must be a non-empty list")
            for number, spec in enumerate(lines, start=1):
                if not isinstance(spec, dict):
                    raise SandboxError(f"refund line {number} must be an object")
                line = self._order_line_for(order, spec, f"refund line {number}")
                quantity = to_decimal(
                    spec.get("quantity", left[line.order_detail_id]), f"refund line {number}"
                )
                if quantity <= 0:
                    raise SandboxError(f"refund line {number}: quantity must be positive")
                wanted[line.order_detail_id] = wanted.get(line.order_detail_id, Decimal(0)) + quantity
        if not wanted:
            raise SandboxError(f"Order {order.order_reference} has nothing left to refund")
        now = self.clock()
        refund_lines = []
        for line in order.lines:
            if line.order_detail_id not in wanted:
                continue
            quantity = wanted[line.order_detail_id]
            if quantity > left[line.order_detail_id]:
                raise SandboxError(
                    f"Cannot refund {quantity} of {line.product_name}: only {left[line.order_detail_id]} left"
                )
            net = money(line.quantity * line.base_price) - line.discount_amount
            line_total = net if order.tax_inclusive else net + line.tax_amount
            amount = money(line_total * quantity / line.quantity)
            refund_lines.append(RefundLine(line.order_detail_id, line.product_id, line.sku, quantity, amount))
        refund_amount = money(sum((r.amount for r in refund_lines), Decimal(0)))
        refund = Refund(self.guid(), now, refund_amount, refund_lines)
        sale = next((p for p in order.payments if p.type == "sale"), None)
        gateway = sale.gateway if sale else "cash"
        name = sale.payment_type_name if sale else GATEWAY_NAMES["cash"]
        order.payments.append(Payment(self.guid(), now, "refund", "success", gateway, name, refund_amount))
        for rline in refund_lines:
            self._move(rline.product_id, order.outlet_id, rline.quantity)
        self._index_refund(order, refund)
        still_left = self.refundable(order)
        order.payment_status = (
            "refunded" if all(v <= 0 for v in still_left.values()) else "partially_refunded"
        )
        if order.refund is None:
            order.refund = refund
        self._touch_order(order, now)
        return refund

    def _order_line_for(self, order: Order, spec: dict[str, Any], where: str) -> OrderLine:
        detail_id = spec.get("order_detail_id")
        product_id = spec.get("product_id")
        sku = spec.get("sku")
        for line in order.lines:
            if detail_id and line.order_detail_id == detail_id:
                return line
            if product_id and line.product_id == product_id:
                return line
            if sku and self.products[line.product_id].sku == sku:
                return line
        raise SandboxError(
            f"{where}: order {order.order_reference} has no line for {detail_id or product_id or sku}"
        )

    def void_order(self, order_id: str) -> Order:
        """Void a completed order: a void payment reverses what was paid; unreturned units go back."""
        order = self.order(order_id)
        if order.status != "completed":
            raise SandboxError(f"Order {order.order_reference} is {order.status}; only completed orders void")
        now = self.clock()
        paid = sum((p.amount for p in order.payments if p.type == "sale"), Decimal(0))
        refunded = sum((p.amount for p in order.payments if p.type == "refund"), Decimal(0))
        sale = next((p for p in order.payments if p.type == "sale"), None)
        if paid - refunded > 0:
            order.payments.append(
                Payment(
                    self.guid(),
                    now,
                    "void",
                    "success",
                    sale.gateway if sale else "cash",
                    sale.payment_type_name if sale else GATEWAY_NAMES["cash"],
                    money(paid - refunded),
                )
            )
        for detail_id, quantity in self.refundable(order).items():
            line = next(x for x in order.lines if x.order_detail_id == detail_id)
            if quantity > 0:
                self._move(line.product_id, order.outlet_id, quantity)
        order.status = "void"
        order.payment_status = "refunded"
        order.cancel_date = now
        self._touch_order(order, now)
        return order

    # ----------------------------------------------------------------- shifts
    def close_shift(self, register_id: str) -> Shift:
        """Close the register's open shift (opening one now if none is open) and return it."""
        register = self.register(register_id, 404)
        now = self.clock()
        shift = self.open_shifts.pop(register_id, None)
        if shift is None:
            open_at = now
            last_close = self.last_close.get(register_id)
            if last_close and open_at <= last_close:
                open_at = last_close + timedelta(seconds=1)
            shift = Shift(self.guid(), register_id, register.outlet_id, open_at, None)
            self.shifts.append(shift)
        latest = max(
            (o.order_date for o in self.orders_of_register(register_id, shift.open_date)),
            default=shift.open_date,
        )
        shift.closed_date = max(now, shift.open_date, latest)
        self.last_close[register_id] = shift.closed_date
        return shift

    def orders_of_register(self, register_id: str, since: datetime) -> Iterable[Order]:
        """Orders of a register dated at or after ``since``."""
        start = bisect.bisect_left(self.created_index, (since,))
        for _, _, order_id in self.created_index[start:]:
            order = self.orders[order_id]
            if order.register_id == register_id:
                yield order

    def shift_modified(self, shift: Shift) -> datetime:
        """A shift changes when it opens and when it closes."""
        return shift.closed_date or shift.open_date

    # ----------------------------------------------------------------- transfers
    def _transfer_lines(self, lines: Any, where: str) -> list[TransferLine]:
        if not isinstance(lines, list) or not lines:
            raise SandboxError(f"{where}: needs a non-empty list of lines")
        result = []
        for number, spec in enumerate(lines, start=1):
            if not isinstance(spec, dict):
                raise SandboxError(f"{where}: line {number} must be an object")
            product = self.resolve_product(spec, f"{where} line {number}")
            quantity = to_decimal(spec.get("quantity"), f"{where} line {number} quantity")
            if quantity <= 0:
                raise SandboxError(f"{where} line {number}: quantity must be positive")
            result.append(TransferLine(product.product_id, product.sku, quantity, None))
        return result

    def _new_transfer_number(self, prefix: str, outlet: Outlet) -> str:
        self.transfer_counter += 1
        return f"{prefix}-{outlet.outlet_code}-{self.transfer_counter:04d}"

    def create_outlet_transfer(self, from_outlet_id: str, to_outlet_id: str, lines: Any) -> TransferRecord:
        """Send goods from one outlet to another: stock leaves the source now."""
        source = self.outlet(from_outlet_id)
        target = self.outlet(to_outlet_id)
        if source.outlet_id == target.outlet_id:
            raise SandboxError("from_outlet_id and to_outlet_id must differ")
        transfer_lines = self._transfer_lines(lines, "transfer")
        now = self.clock()
        record = TransferRecord(
            transfer_id=self.guid(),
            transfer_number=self._new_transfer_number("TRF", source),
            type="outlet",
            from_outlet_id=source.outlet_id,
            to_outlet_id=target.outlet_id,
            status="sent",
            sent_date=now,
            received_date=None,
            modified_date=now,
            lines=transfer_lines,
            seq=len(self.transfers),
        )
        for line in transfer_lines:
            self._move(line.product_id, source.outlet_id, -line.quantity)
        self.transfers.append(record)
        return record

    def transfer(self, transfer_id: str) -> TransferRecord:
        """The transfer with this id, or a 404 error."""
        found = next((t for t in self.transfers if t.transfer_id == transfer_id), None)
        if found is None:
            raise SandboxError(f"Transfer not found: {transfer_id}", 404)
        return found

    def receive_transfer(self, transfer_id: str, lines: Any) -> TransferRecord:
        """Receive a sent transfer, in full or (``lines`` with ``received_quantity``) in part."""
        record = self.transfer(transfer_id)
        if record.type != "outlet" or record.status != "sent":
            raise SandboxError(f"Transfer {record.transfer_number} is not waiting to be received")
        received = {line.product_id: line.quantity for line in record.lines}
        if lines is not None:
            if not isinstance(lines, list):
                raise SandboxError("lines must be a list")
            received = {line.product_id: Decimal(0) for line in record.lines}
            for number, spec in enumerate(lines, start=1):
                if not isinstance(spec, dict):
                    raise SandboxError(f"receive line {number} must be an object")
                product = self.resolve_product(spec, f"receive line {number}")
                if product.product_id not in received:
                    raise SandboxError(
                        f"receive line {number}: {product.sku or product.product_id} is not in the transfer"
                    )
                quantity = to_decimal(
                    spec.get("received_quantity", spec.get("quantity")), f"receive line {number}"
                )
                if quantity < 0:
                    raise SandboxError(f"receive line {number}: received_quantity must not be negative")
                received[product.product_id] = quantity
        for line in record.lines:
            if received[line.product_id] > line.quantity:
                raise SandboxError(f"Cannot receive more {line.sku or line.product_id} than was sent")
        now = self.clock()
        assert record.to_outlet_id is not None
        for line in record.lines:
            line.received_quantity = received[line.product_id]
            self._move(line.product_id, record.to_outlet_id, line.received_quantity)
        record.status = "received"
        record.received_date = now
        record.modified_date = now
        return record

    def create_supplier_transfer(self, body: dict[str, Any]) -> TransferRecord:
        """``/api/v3/CreateTransfer``: goods in from a supplier or out to one, completed at once."""
        code = body.get("outlet_code")
        if not code:
            raise SandboxError("outlet_code is required")
        outlet = self.outlets_by_code.get(str(code))
        if outlet is None:
            raise SandboxError(f"Outlet code not found: {code}")
        kind = str(body.get("type") or "").lower()
        if kind not in ("in", "out"):
            raise SandboxError(f"type must be 'in' or 'out', got {body.get('type')!r}")
        status = str(body.get("status") or "completed").lower()
        allowed = ("completed", "pending") if self.pending_transfers and kind == "in" else ("completed",)
        if status not in allowed:
            raise SandboxError(
                f"status must be {' or '.join(repr(a) for a in allowed)}, got {body.get('status')!r}"
            )
        pending = status == "pending"
        products = body.get("products")
        if not isinstance(products, list) or not products:
            raise SandboxError("products must be a non-empty list")
        lines = []
        for number, spec in enumerate(products, start=1):
            if not isinstance(spec, dict):
                raise SandboxError(f"products[{number}] must be an object")
            sku = str(spec.get("sku") or "").strip()
            if not sku:
                raise SandboxError(f"products[{number}]: sku is required")
            product = self.product_by_sku(sku)
            if product is None:
                raise SandboxError(f"Product with SKU {sku} not found")
            quantity = to_decimal(spec.get("quantity"), f"products[{number}] quantity")
            if quantity <= 0:
                raise SandboxError(f"products[{number}]: quantity must be positive")
            lines.append(
                TransferLine(product.product_id, product.sku, quantity, None if pending else quantity)
            )
        tags = body.get("tags") or []
        if not isinstance(tags, list):
            raise SandboxError("tags must be a list")
        now = self.clock()
        record = TransferRecord(
            transfer_id=self.guid(),
            transfer_number=self._new_transfer_number("TIN" if kind == "in" else "TOUT", outlet),
            type=kind,
            from_outlet_id=outlet.outlet_id if kind == "out" else None,
            to_outlet_id=outlet.outlet_id if kind == "in" else None,
            status=status,
            sent_date=now,
            received_date=None if pending else now,
            modified_date=now,
            lines=lines,
            reference_code=str(body["reference_code"]) if body.get("reference_code") is not None else None,
            supplier_name=str(body["supplier_name"]) if body.get("supplier_name") is not None else None,
            tags=[str(t) for t in tags],
            seq=len(self.transfers),
        )
        sign = Decimal(1) if kind == "in" else Decimal(-1)
        if not pending:
            for line in lines:
                self._move(line.product_id, outlet.outlet_id, sign * line.quantity)
        self.transfers.append(record)
        return record

    def update_supplier_transfer(self, body: dict[str, Any]) -> TransferRecord:
        """Assumed ``/api/v3/UpdateTransfer``: a pending supplier transfer becomes ``completed`` (stock
        moves by the quantities that arrived: ``products`` ``[{sku, quantity}]``, the expected ones when
        absent, 0 for a SKU left out) or ``cancelled`` (nothing moves). Anything else is refused."""
        if not self.pending_transfers:
            raise SandboxError("UpdateTransfer is not available for this store")
        reference = body.get("reference_code")
        transfer_id = body.get("transfer_id")
        if not reference and not transfer_id:
            raise SandboxError("reference_code or transfer_id is required")
        found = [
            t
            for t in self.transfers
            if t.type in ("in", "out")
            and (
                (transfer_id and t.transfer_id == str(transfer_id))
                or (reference and t.reference_code == str(reference))
            )
        ]
        if not found:
            raise SandboxError(f"Transfer not found: {reference or transfer_id}")
        if len(found) > 1:
            raise SandboxError(f"Several transfers have the reference_code {reference}; give transfer_id")
        record = found[0]
        status = str(body.get("status") or "").lower()
        if status not in ("completed", "cancelled"):
            raise SandboxError(f"status must be 'completed' or 'cancelled', got {body.get('status')!r}")
        if record.status != "pending":
            raise SandboxError(f"Transfer {record.transfer_number} is {record.status}, not pending")
        arrived = {line.product_id: line.quantity for line in record.lines}
        products = body.get("products")
        if status == "completed" and products is not None:
            if not isinstance(products, list):
                raise SandboxError("products must be a list")
            arrived = dict.fromkeys(arrived, Decimal(0))
            for number, spec in enumerate(products, start=1):
                if not isinstance(spec, dict):
                    raise SandboxError(f"products[{number}] must be an object")
                product = self.product_by_sku(str(spec.get("sku") or "").strip())
                if product is None or product.product_id not in arrived:
                    raise SandboxError(f"products[{number}]: SKU {spec.get('sku')!r} is not in the transfer")
                quantity = to_decimal(spec.get("quantity"), f"products[{number}] quantity")
                if quantity < 0:
                    raise SandboxError(f"products[{number}]: quantity must not be negative")
                arrived[product.product_id] = quantity
        now = self.clock()
        assert record.to_outlet_id is not None
        if status == "completed":
            for line in record.lines:
                line.received_quantity = arrived[line.product_id]
                self._move(line.product_id, record.to_outlet_id, line.received_quantity)
            record.received_date = now
        record.status = status
        record.modified_date = now
        return record

    # ----------------------------------------------------------------- stock takes
    def create_stock_take(self, outlet_id: str, lines: Any) -> StockTake:
        """Count stock at an outlet: system quantity is the current stock, which becomes the count."""
        outlet = self.outlet(outlet_id)
        if not isinstance(lines, list) or not lines:
            raise SandboxError("stock take needs a non-empty list of lines")
        take_lines = []
        for number, spec in enumerate(lines, start=1):
            if not isinstance(spec, dict):
                raise SandboxError(f"stock take line {number} must be an object")
            product = self.resolve_product(spec, f"stock take line {number}")
            counted = to_decimal(spec.get("counted_quantity"), f"stock take line {number} counted_quantity")
            if counted < 0:
                raise SandboxError(f"stock take line {number}: counted_quantity must not be negative")
            take_lines.append(
                StockTakeLine(
                    product.product_id, product.sku, self.stock_of(product.product_id, outlet_id), counted
                )
            )
        self.stock_take_counter += 1
        take = StockTake(
            self.guid(),
            f"ST-{outlet.outlet_code}-{self.stock_take_counter:04d}",
            outlet_id,
            self.clock(),
            "completed",
            take_lines,
        )
        for line in take_lines:
            self.stock[(line.product_id, outlet_id)] = line.counted_quantity
        self.stock_takes.append(take)
        return take

    # ----------------------------------------------------------------- master data
    def patch_product(self, product_id: str, changes: dict[str, Any]) -> Product:
        """Change product fields (``sku``, ``name``, ``price``, ...); the SKU must stay unique."""
        product = self.products.get(product_id)
        if product is None:
            raise SandboxError(f"Product not found: {product_id}", 404)
        allowed = {
            "sku",
            "name",
            "barcode",
            "price",
            "buying_price",
            "unit_of_measurement",
            "unit",
            "type",
            "is_active",
            "track_inventory",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise SandboxError(f"Unknown product fields: {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "sku" in changes:
            sku = str(changes["sku"] or "").strip()
            other = self.product_by_sku(sku)
            if other is not None and other.product_id != product_id:
                raise SandboxError(f"SKU {sku} is already used by {other.name}", 409)
            product.sku = sku
        for name in ("name", "barcode", "type"):
            if name in changes:
                setattr(product, name, str(changes[name]))
        for name in ("price", "buying_price"):
            if name in changes:
                setattr(product, name, money(to_decimal(changes[name], name)))
        for name in ("unit_of_measurement", "unit"):
            if name in changes:
                product.unit = str(changes[name])
        for name in ("is_active", "track_inventory"):
            if name in changes:
                if not isinstance(changes[name], bool):
                    raise SandboxError(f"{name} must be true or false")
                setattr(product, name, changes[name])
        product.modified_date = self.clock()
        return product

    def patch_customer(self, customer_id: str, changes: dict[str, Any]) -> Customer:
        """Change customer fields (``customer_number``, names, ``email``, ``phone_number``)."""
        customer = self.customers.get(customer_id)
        if customer is None:
            raise SandboxError(f"Customer not found: {customer_id}", 404)
        fields = {
            "customer_number": "customer_number",
            "first_name": "first_name",
            "last_name": "last_name",
            "email": "email",
            "phone_number": "phone",
            "phone": "phone",
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise SandboxError(f"Unknown customer fields: {sorted(unknown)}; allowed: {sorted(fields)}")
        for name, value in changes.items():
            setattr(customer, fields[name], None if value is None else str(value))
        self.customer_modified[customer_id] = self.clock()
        return customer

    # ----------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        """Counts for ``GET /_sandbox/state``."""
        statuses: dict[str, int] = {}
        for order in self.orders.values():
            statuses[order.status] = statuses.get(order.status, 0) + 1
        return {
            "seed": self.seed,
            "store_name": self.store_name,
            "outlets": len(self.outlets),
            "registers": len(self.registers),
            "products": len(self.products),
            "products_without_sku": sum(1 for p in self.products.values() if not p.sku),
            "customers": len(self.customers),
            "orders": len(self.orders),
            "orders_by_status": statuses,
            "refunds": len(self.refund_index),
            "shifts": len(self.shifts),
            "open_shifts": [
                {
                    "register_shift_id": s.register_shift_id,
                    "register_id": s.register_id,
                    "open_date": s.open_date,
                }
                for s in self.open_shifts.values()
            ],
            "transfers": len(self.transfers),
            "transfers_in_transit": sum(1 for t in self.transfers if t.status == "sent"),
            "stock_takes": len(self.stock_takes),
        }


def _insert(index: list[Any], key: Any) -> None:
    """Insert into a sorted index; appending (the usual case: "now") costs nothing extra."""
    if not index or index[-1] <= key:
        index.append(key)
    else:
        bisect.insort(index, key)
