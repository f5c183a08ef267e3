"""The seeded demo shop shared by both sandboxes.

One deterministic generator (``build_demo_shop(seed)``) produces the data of a small Indonesian
retailer as it exists on both sides of the integration: the iSeller side (outlets, registers,
shifts, products, customers, orders with payments/refunds/voids, transfers, stock takes) and the
Accurate side (branches, warehouses, items, customers, vendors, GL accounts, opening stock). The two
sandboxes build their in-memory state from the same object, so the same seed gives the same,
consistent shop on both sides.

Deliberate flaws, so the demo and the tests show real failures:
- one iSeller product has no SKU (``Product.sku == ""``);
- one iSeller product's SKU has no Accurate item (``Product.in_accurate is False``);
- some customers have no ID number (``Customer.customer_number is None``);
- one order is voided and one is refunded.

All money is ``Decimal``; all datetimes are timezone-aware UTC (iSeller stores UTC).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

DEFAULT_SEED = 42
#: First business day of the seeded history (fixed, so a seed always gives the same data).
HISTORY_START = date(2026, 11, 16)
HISTORY_DAYS = 5
#: Jakarta is UTC+7; iSeller orders carry it as ``time_zone``.
SHOP_UTC_OFFSET_HOURS = 7
TAX_PERCENTAGE = Decimal("11")  # PPN
CENT = Decimal("0.01")

#: Accurate GL accounts the outlet mapping refers to (number -> name).
GL_ACCOUNTS: dict[str, str] = {
    "110101": "Kas Toko",
    "110201": "Bank BCA",
    "110301": "Piutang EDC Kartu Debit",
    "110302": "Piutang EDC Kartu Kredit",
    "110401": "Piutang E-Wallet",
    "410101": "Penjualan Barang",
    "510501": "Selisih Persediaan (Stock Opname)",
}
#: Accurate customer used for sales without a customer.
WALK_IN_CUSTOMER_NO = "UMUM"


def money(value: Decimal | int | str) -> Decimal:
    """Quantize an amount to two decimals, half up (rupiah amounts in the sandboxes)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Outlet:
    outlet_id: str
    outlet_code: str
    name: str
    is_warehouse: bool
    #: Accurate side of the mapping.
    branch_name: str
    warehouse_name: str
    time_zone: int = SHOP_UTC_OFFSET_HOURS


@dataclass
class Product:
    product_id: str
    name: str
    sku: str  # may be "" (a product without SKU)
    barcode: str
    price: Decimal
    buying_price: Decimal
    unit: str
    type: str = "standard"
    track_inventory: bool = True
    is_active: bool = True
    #: False for the product whose SKU does not exist as an Accurate item.
    in_accurate: bool = True
    modified_date: datetime = field(default_factory=lambda: datetime(2026, 11, 1, tzinfo=UTC))


@dataclass
class Customer:
    customer_id: str  # iSeller GUID, always present
    customer_number: str | None  # the customer "ID number"; None for some customers
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    #: Whether Accurate already has this customer (under customer_number).
    in_accurate: bool


@dataclass(frozen=True)
class Vendor:
    vendor_no: str
    name: str


@dataclass(frozen=True)
class Register:
    register_id: str
    register_name: str
    outlet_id: str


@dataclass
class Shift:
    register_shift_id: str
    register_id: str
    outlet_id: str
    open_date: datetime
    closed_date: datetime | None


@dataclass
class OrderLine:
    order_detail_id: str
    product_id: str
    product_name: str
    sku: str
    quantity: Decimal
    base_price: Decimal
    discount_amount: Decimal
    discount_percentage: Decimal
    tax_percentage: Decimal
    tax_amount: Decimal
    type: str = "standard"


@dataclass
class Payment:
    transaction_id: str
    transaction_date: datetime
    type: str  # sale | refund | void
    status: str  # success | error | pending | failure
    gateway: str  # cash | external_debit | external_credit | ...
    payment_type_name: str
    amount: Decimal


@dataclass
class RefundLine:
    order_detail_id: str
    product_id: str
    sku: str
    quantity: Decimal
    amount: Decimal


@dataclass
class Refund:
    refund_id: str
    refund_date: datetime
    refund_amount: Decimal
    lines: list[RefundLine]


@dataclass
class Order:
    order_id: str
    order_reference: str
    channel: str
    order_date: datetime
    closed_date: datetime | None
    cancel_date: datetime | None
    status: str  # completed | void | ...
    payment_status: str  # paid | refunded | ...
    outlet_id: str
    register_id: str
    customer_id: str | None
    tax_inclusive: bool
    lines: list[OrderLine]
    payments: list[Payment]
    subtotal: Decimal
    total_discount_amount: Decimal
    total_tax_amount: Decimal
    rounding_amount: Decimal
    total_amount: Decimal
    refund: Refund | None = None
    currency: str = "IDR"
    time_zone: int = SHOP_UTC_OFFSET_HOURS
    modified_date: datetime | None = None
    #: Hostile values shown instead of the real ones (``POST /_sandbox/orders/{id}/raw``), by field path.
    raw: dict[str, Any] = field(default_factory=dict)
    #: The ``total_order_amount`` GetOrders reports instead of ``total_amount``
    #: (``POST /_sandbox/orders/{id}/total-order-amount``); None: the same as ``total_amount``.
    reported_total_order_amount: Decimal | None = None
    #: ``partial`` for a sale whose goods were only partly handed over (None: the status decides).
    fulfillment: str | None = None


@dataclass
class TransferLine:
    product_id: str
    sku: str
    quantity: Decimal
    received_quantity: Decimal | None  # None until received


@dataclass
class Transfer:
    transfer_id: str
    transfer_number: str
    from_outlet_id: str
    to_outlet_id: str
    status: str  # sent | received
    sent_date: datetime
    received_date: datetime | None
    lines: list[TransferLine]
    modified_date: datetime | None = None


@dataclass
class StockTakeLine:
    product_id: str
    sku: str
    system_quantity: Decimal
    counted_quantity: Decimal


@dataclass
class StockTake:
    stock_take_id: str
    stock_take_number: str
    outlet_id: str
    stock_take_date: datetime
    status: str  # completed
    lines: list[StockTakeLine]


@dataclass
class DemoShop:
    seed: int
    store_name: str
    outlets: list[Outlet]
    products: list[Product]
    customers: list[Customer]
    vendors: list[Vendor]
    registers: list[Register]
    shifts: list[Shift]
    orders: list[Order]
    transfers: list[Transfer]
    stock_takes: list[StockTake]
    #: Opening stock per (sku, outlet_id), the same on both sides at the start of the history.
    opening_stock: dict[tuple[str, str], Decimal]
    gl_accounts: dict[str, str] = field(default_factory=lambda: dict(GL_ACCOUNTS))
    walk_in_customer_no: str = WALK_IN_CUSTOMER_NO

    def outlet(self, outlet_id: str) -> Outlet:
        return next(o for o in self.outlets if o.outlet_id == outlet_id)

    def product_by_sku(self, sku: str) -> Product:
        return next(p for p in self.products if p.sku == sku)

    def settings(self) -> dict[str, Any]:
        """The ``iseller_accurate_settings`` Variable that maps this shop (used by the demo)."""
        return {
            "sales_sync_mode": "shift_close",
            "sales_sync_times": ["12:00", "22:00"],
            "transfer_sync_scheduled": False,
            "transfer_sync_times": ["23:00"],
            "use_customer_id_mapping": True,
            "timezone": "Asia/Jakarta",
            "outlets": {
                o.outlet_id: {
                    "name": o.name,
                    "branch": o.branch_name,
                    "warehouse": o.warehouse_name,
                    "walk_in_customer": WALK_IN_CUSTOMER_NO,
                    "payment_accounts": {
                        "cash": "110101",
                        "external_debit": "110301",
                        "external_credit": "110302",
                        "iseller_pay": "110401",
                        "custom": "110201",
                    },
                    "adjustment_account": "510501",
                }
                for o in self.outlets
            },
        }


_OUTLETS = [
    # code, name, warehouse?, Accurate branch, Accurate warehouse
    ("JKT01", "Toko Kemang", False, "Cabang Jakarta", "Gudang Kemang"),
    ("BDG01", "Toko Dago", False, "Cabang Bandung", "Gudang Dago"),
    ("SBY01", "Toko Tunjungan", False, "Cabang Surabaya", "Gudang Tunjungan"),
    ("WH01", "Gudang Pusat", True, "Kantor Pusat", "Gudang Pusat"),
]

_PRODUCT_NAMES = [
    ("Kopi Bubuk Arabika 250g", "PCS", 65000),
    ("Kopi Bubuk Robusta 250g", "PCS", 45000),
    ("Teh Melati 100g", "PCS", 18000),
    ("Gula Aren Cair 500ml", "BTL", 32000),
    ("Susu UHT 1L", "KTK", 19500),
    ("Cokelat Bubuk 200g", "PCS", 38000),
    ("Biskuit Kelapa", "PCS", 12500),
    ("Keripik Singkong Pedas", "PCS", 15000),
    ("Kacang Mete 150g", "PCS", 54000),
    ("Madu Hutan 350ml", "BTL", 89000),
    ("Sambal Bawang 200g", "BTL", 27000),
    ("Kecap Manis 520ml", "BTL", 23500),
    ("Minyak Kelapa 1L", "BTL", 41000),
    ("Beras Pandan Wangi 5kg", "KRG", 78000),
    ("Mie Kering 500g", "PCS", 16000),
    ("Tepung Beras 500g", "PCS", 11000),
    ("Garam Laut 250g", "PCS", 9000),
    ("Air Mineral 600ml", "BTL", 4000),
    ("Jus Jambu 250ml", "BTL", 9500),
    ("Sirup Markisa 600ml", "BTL", 34000),
    ("Tas Belanja Kain", "PCS", 25000),
    ("Gelas Keramik", "PCS", 48000),
    ("Tumbler 500ml", "PCS", 120000),
    ("Sedotan Bambu (isi 4)", "SET", 22000),
    ("Sabun Sereh 100g", "PCS", 21000),
    ("Lilin Aromaterapi", "PCS", 67000),
    ("Kain Batik Tulis", "LBR", 350000),
    ("Kaos Katun Logo", "PCS", 99000),
    ("Topi Anyaman", "PCS", 75000),
    ("Dompet Tenun", "PCS", 135000),
    ("Pulpen Kayu", "PCS", 15000),
    ("Buku Catatan A5", "PCS", 28000),
    ("Kartu Ucapan", "PCS", 8000),
    ("Gantungan Kunci Wayang", "PCS", 18000),
    ("Kopi Drip Bag (isi 10)", "BOX", 85000),
    ("Teh Hijau Celup (isi 25)", "BOX", 27500),
    ("Rempah Wedang Uwuh", "PCS", 20000),
    ("Jahe Merah Instan", "BOX", 31000),
    ("Kerupuk Udang 250g", "PCS", 36000),
    ("Abon Sapi 100g", "PCS", 58000),
    ("Rendang Kaleng", "KLG", 64000),
    ("Dodol Garut", "BOX", 30000),
    ("Bakpia Kacang Hijau", "BOX", 42000),
    ("Pie Susu Bali", "BOX", 45000),
    ("Kue Lapis Legit", "BOX", 210000),
    ("Sambal Matah Botol", "BTL", 33000),
    ("Teh Tarik Sachet (isi 10)", "BOX", 29000),
    ("Kopi Luwak 100g", "PCS", 450000),
    ("Vanili Bubuk", "PCS", 14000),
    ("Permen Jahe", "PCS", 7500),
]
#: Index (in _PRODUCT_NAMES) of the product sold with no SKU in iSeller.
NO_SKU_PRODUCT_INDEX = 47
#: Index of the product whose SKU has no Accurate item.
MISSING_IN_ACCURATE_INDEX = 48

_FIRST_NAMES = ["Budi", "Siti", "Agus", "Dewi", "Rudi", "Sri", "Andi", "Ayu", "Joko", "Rina", "Eko", "Maya"]
_LAST_NAMES = ["Santoso", "Wijaya", "Pratama", "Lestari", "Hidayat", "Kusuma", "Saputra", "Nugroho"]
_VENDORS = [
    ("V.0001", "PT Sumber Kopi Nusantara"),
    ("V.0002", "CV Makmur Jaya Snack"),
    ("V.0003", "PT Kriya Tenun Indonesia"),
]

_GATEWAYS = [
    ("cash", "Tunai"),
    ("external_debit", "Kartu Debit"),
    ("external_credit", "Kartu Kredit"),
]


class _Ids:
    """Deterministic GUIDs drawn from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def guid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


def compute_order_lines(
    items: list[tuple[Product, Decimal, Decimal, Decimal]],
    tax_inclusive: bool,
    new_id: Any,
    tax_percentage: Decimal = TAX_PERCENTAGE,
) -> tuple[list[OrderLine], dict[str, Decimal]]:
    """Build order lines and totals the way iSeller computes them.

    ``items`` holds ``(product, quantity, unit price, discount percentage)``. Line discount is
    ``quantity * price * pct / 100``; tax is taken out of the discounted amount when prices are
    tax-inclusive and added on top otherwise. Returns the lines and the order totals
    (subtotal, total_discount_amount, total_tax_amount, rounding_amount, total_amount).
    """
    lines: list[OrderLine] = []
    subtotal = total_discount = total_tax = Decimal(0)
    for product, quantity, price, discount_pct in items:
        gross = money(quantity * price)
        discount = money(gross * discount_pct / 100)
        net = gross - discount
        if tax_inclusive:
            tax = money(net * tax_percentage / (100 + tax_percentage))
        else:
            tax = money(net * tax_percentage / 100)
        lines.append(
            OrderLine(
                order_detail_id=new_id(),
                product_id=product.product_id,
                product_name=product.name,
                sku=product.sku,
                quantity=quantity,
                base_price=money(price),
                discount_amount=discount,
                discount_percentage=discount_pct,
                tax_percentage=tax_percentage,
                tax_amount=tax,
            )
        )
        subtotal += gross
        total_discount += discount
        total_tax += tax
    total = subtotal - total_discount + (Decimal(0) if tax_inclusive else total_tax)
    totals = {
        "subtotal": money(subtotal),
        "total_discount_amount": money(total_discount),
        "total_tax_amount": money(total_tax),
        "rounding_amount": Decimal("0.00"),
        "total_amount": money(total),
    }
    return lines, totals


def stock_on_hand(
    opening_stock: dict[tuple[str, str], Decimal],
    orders: list[Order],
    transfers: list[Transfer],
    sku: str,
    outlet_id: str,
    at: datetime,
) -> Decimal:
    """iSeller's quantity of ``sku`` at ``outlet_id`` at time ``at``, from the opening stock and
    every completed sale, refund and transfer before it."""
    quantity = opening_stock.get((sku, outlet_id), Decimal(0))
    for order in orders:
        if order.outlet_id != outlet_id or order.status != "completed" or order.order_date >= at:
            continue
        quantity -= sum((line.quantity for line in order.lines if line.sku == sku), Decimal(0))
        if order.refund and order.refund.refund_date < at:
            quantity += sum((line.quantity for line in order.refund.lines if line.sku == sku), Decimal(0))
    for transfer in transfers:
        for line in transfer.lines:
            if line.sku != sku:
                continue
            if transfer.from_outlet_id == outlet_id and transfer.sent_date < at:
                quantity -= line.quantity
            if (
                transfer.to_outlet_id == outlet_id
                and transfer.received_date is not None
                and transfer.received_date < at
                and line.received_quantity is not None
            ):
                quantity += line.received_quantity
    return quantity


def build_demo_shop(seed: int = DEFAULT_SEED) -> DemoShop:
    """Build the demo shop for ``seed``: the same seed always gives the same shop."""
    rng = random.Random(seed)
    ids = _Ids(rng)

    outlets = [
        Outlet(ids.guid(), code, name, is_wh, branch, warehouse)
        for code, name, is_wh, branch, warehouse in _OUTLETS
    ]
    shops = [o for o in outlets if not o.is_warehouse]
    warehouse = next(o for o in outlets if o.is_warehouse)

    products: list[Product] = []
    for index, (name, unit, price) in enumerate(_PRODUCT_NAMES):
        sku = "" if index == NO_SKU_PRODUCT_INDEX else f"BRG-{index + 1:04d}"
        buying = money(Decimal(price) * Decimal(rng.choice([55, 60, 65, 70])) / 100)
        products.append(
            Product(
                product_id=ids.guid(),
                name=name,
                sku=sku,
                barcode=f"899{rng.randrange(10**9, 10**10)}",
                price=money(price),
                buying_price=buying,
                unit=unit,
                in_accurate=index != MISSING_IN_ACCURATE_INDEX,
            )
        )

    customers: list[Customer] = []
    for index in range(12):
        first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        last = rng.choice(_LAST_NAMES)
        has_number = index % 3 != 2  # every third customer has no ID number
        customers.append(
            Customer(
                customer_id=ids.guid(),
                customer_number=f"CUST-{index + 1:05d}" if has_number else None,
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower()}{index}@contoh.id" if index % 4 else None,
                phone=f"08{rng.randrange(10**9, 10**10)}",
                # Half of the numbered customers already exist in Accurate.
                in_accurate=has_number and index % 2 == 0,
            )
        )

    vendors = [Vendor(no, name) for no, name in _VENDORS]

    registers: list[Register] = []
    for outlet in shops:
        for number in (1, 2):
            registers.append(Register(ids.guid(), f"Kasir {number}", outlet.outlet_id))

    opening_stock: dict[tuple[str, str], Decimal] = {}
    for product in products:
        if not product.sku:
            continue
        for outlet in outlets:
            base = 200 if outlet.is_warehouse else 40
            opening_stock[(product.sku, outlet.outlet_id)] = Decimal(base + rng.randrange(0, 20))

    sellable = [
        p for i, p in enumerate(products) if i not in (NO_SKU_PRODUCT_INDEX, MISSING_IN_ACCURATE_INDEX)
    ]
    shifts: list[Shift] = []
    orders: list[Order] = []
    order_counter = 1000
    for day in range(HISTORY_DAYS):
        business_day = HISTORY_START + timedelta(days=day)
        # 08:00-21:00 Jakarta time = 01:00-14:00 UTC.
        open_at = datetime(business_day.year, business_day.month, business_day.day, 1, 0, tzinfo=UTC)
        close_at = open_at + timedelta(hours=13)
        for register in registers:
            shifts.append(Shift(ids.guid(), register.register_id, register.outlet_id, open_at, close_at))
            for _ in range(3):
                order_counter += 1
                order_date = open_at + timedelta(minutes=rng.randrange(5, 13 * 60 - 5))
                tax_inclusive = rng.random() < 0.7
                items = []
                for product in rng.sample(sellable, rng.randrange(1, 4)):
                    discount_pct = Decimal(rng.choice([0, 0, 0, 5, 10]))
                    items.append((product, Decimal(rng.randrange(1, 4)), product.price, discount_pct))
                lines, totals = compute_order_lines(items, tax_inclusive, ids.guid)
                gateway, gateway_name = rng.choice(_GATEWAYS)
                customer = rng.choice(customers) if rng.random() < 0.5 else None
                outlet = next(o for o in outlets if o.outlet_id == register.outlet_id)
                orders.append(
                    Order(
                        order_id=ids.guid(),
                        order_reference=f"#{outlet.outlet_code}-{order_counter}",
                        channel="pos",
                        order_date=order_date,
                        closed_date=order_date,
                        cancel_date=None,
                        status="completed",
                        payment_status="paid",
                        outlet_id=register.outlet_id,
                        register_id=register.register_id,
                        customer_id=customer.customer_id if customer else None,
                        tax_inclusive=tax_inclusive,
                        lines=lines,
                        payments=[
                            Payment(
                                ids.guid(),
                                order_date,
                                "sale",
                                "success",
                                gateway,
                                gateway_name,
                                totals["total_amount"],
                            )
                        ],
                        modified_date=order_date,
                        **totals,
                    )
                )

    # A void: the order was rung up and voided; its payment reversed.
    voided = orders[4]
    voided.status = "void"
    voided.payment_status = "refunded"
    voided.cancel_date = voided.order_date + timedelta(minutes=3)
    voided.payments.append(
        Payment(
            ids.guid(),
            voided.cancel_date,
            "void",
            "success",
            voided.payments[0].gateway,
            voided.payments[0].payment_type_name,
            voided.total_amount,
        )
    )
    # A refund: the first line returned in full the next day.
    refunded = orders[7]
    first = refunded.lines[0]
    line_net = money(first.quantity * first.base_price) - first.discount_amount
    refund_amount = line_net if refunded.tax_inclusive else money(line_net + first.tax_amount)
    refund_date = refunded.order_date + timedelta(days=1)
    refunded.payment_status = "partially_refunded" if len(refunded.lines) > 1 else "refunded"
    refunded.refund = Refund(
        ids.guid(),
        refund_date,
        refund_amount,
        [RefundLine(first.order_detail_id, first.product_id, first.sku, first.quantity, refund_amount)],
    )
    refunded.payments.append(
        Payment(
            ids.guid(),
            refund_date,
            "refund",
            "success",
            refunded.payments[0].gateway,
            refunded.payments[0].payment_type_name,
            refund_amount,
        )
    )
    refunded.modified_date = refund_date
    # A sale partly handed over (one line taken, the rest collected later): fulfillment "partial".
    # It changes nothing else (no generator draws, same lines, payments and stock).
    partly = next(
        (o for o in orders[8:] if o.status == "completed" and o.refund is None and len(o.lines) > 1), None
    )
    if partly is not None:
        partly.fulfillment = "partial"

    def transfer_lines(count: int) -> list[TransferLine]:
        return [
            TransferLine(p.product_id, p.sku, Decimal(rng.randrange(2, 10)), None)
            for p in rng.sample(sellable, count)
        ]

    transfers: list[Transfer] = []
    sent = datetime(2026, 11, 17, 2, 30, tzinfo=UTC)
    # Warehouse to Kemang, received; Kemang to Dago, received; warehouse to Tunjungan, in transit.
    for number, (source, target, received) in enumerate(
        [(warehouse, shops[0], True), (shops[0], shops[1], True), (warehouse, shops[2], False)], start=1
    ):
        lines = transfer_lines(3)
        if received:
            for line in lines:
                line.received_quantity = line.quantity
        sent_at = sent + timedelta(days=number)
        transfers.append(
            Transfer(
                transfer_id=ids.guid(),
                transfer_number=f"TRF-{source.outlet_code}-{number:04d}",
                from_outlet_id=source.outlet_id,
                to_outlet_id=target.outlet_id,
                status="received" if received else "sent",
                sent_date=sent_at,
                received_date=sent_at + timedelta(hours=5) if received else None,
                lines=lines,
                modified_date=sent_at + timedelta(hours=5) if received else sent_at,
            )
        )

    # One stock take at Kemang at the end of the history: a few counted differences.
    counted_at = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    kemang = shops[0]
    take_lines = []
    for product in rng.sample(sellable, 5):
        system = stock_on_hand(opening_stock, orders, transfers, product.sku, kemang.outlet_id, counted_at)
        take_lines.append(
            StockTakeLine(
                product.product_id, product.sku, system, system + Decimal(rng.choice([-2, -1, 1, 3]))
            )
        )
    stock_takes = [
        StockTake(ids.guid(), "ST-JKT01-0001", kemang.outlet_id, counted_at, "completed", take_lines)
    ]

    return DemoShop(
        seed=seed,
        store_name="Toko Nusantara Demo",
        outlets=outlets,
        products=products,
        customers=customers,
        vendors=vendors,
        registers=registers,
        shifts=shifts,
        orders=orders,
        transfers=transfers,
        stock_takes=stock_takes,
        opening_stock=opening_stock,
    )
