"""The sales comparison of one date range: iSeller's side, Accurate's side and the ledger, per outlet and day.

Everything here works on plain data (no HTTP, no SQL), so it can be tested on its own; :mod:`.run`
reads the three sides and calls :func:`compare`.

How the two sides meet: the sync numbers every document deterministically (``SI/<order>``,
``SR/<order>``, ``RT/<order>``), so mapping iSeller's orders with the sync's own mapping gives the
Accurate numbers that must exist, and each Accurate document of the outlet's branch and day is
matched by number. The day of a document is the shop's local day (settings ``timezone``) of its
source date, which is also the ``transDate`` the sync gives it in Accurate.

Amounts: what was posted is the ledger's payload; Accurate's amount is its ``totalAmount`` (invoices,
returns) or ``chequeAmount`` (receipts). The posted amount is computed from the payload the way
Accurate computes a document's total (lines, cash discount, PPN of :data:`TAX_PERCENT` when
``taxable``, inside the price when ``inclusiveTax``), rounded to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from include.iseller_accurate.reconciliation import CLASSES, MODULE_OF, SALES_TYPES, TYPE_OF
from include.iseller_accurate.status import OPEN

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
#: Accurate's PPN (VAT) rate on taxable sales documents.
TAX_PERCENT = Decimal(11)
#: Larger amounts or quantities are not believed (an absurd value from an API reads as unknown).
MAX_NUMBER = Decimal("1e15")
#: The statuses of ledger rows that are not in Accurate yet.

FIXES = {
    "not_synced": "Open Sync Status for this document, repair the reason shown there, then press Refresh.",
    "missing_in_accurate": (
        "It was deleted in Accurate. If that was a mistake, press Re-post: the sync checks that the number"
        " is really gone, then posts it again under its own number (once)."
    ),
    "changed_in_accurate": (
        "Someone edited it in Accurate after the sync posted it. Undo the edit in Accurate, or, if the"
        " edit is right, make the same correction in iSeller (the sync never overwrites Accurate)."
    ),
    "only_in_accurate": (
        "No iSeller sale explains it: if it was entered twice or by mistake, delete it in Accurate; if it"
        " is a real sale, record it in iSeller too."
    ),
    "only_in_iseller": (
        "The sync never read this order (a gap in its windows). Trigger iseller_sales_to_accurate with"
        " window_start/window_end around the order's time to read it."
    ),
}


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(value: Any) -> Decimal | None:
    """A Decimal from JSON (Decimal, int, text); None when absent or not a finite number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and abs(number) < MAX_NUMBER else None


def posted_amount(module: str, payload: Mapping[str, Any] | None) -> Decimal | None:
    """The total Accurate gives the document ``payload`` (None: no payload, or not computable)."""
    if not payload:
        return None
    if module == "sales-receipt":
        amount = to_decimal(payload.get("chequeAmount"))
        if amount is None:
            lines = payload.get("detailInvoice") or []
            amounts = [to_decimal(line.get("paymentAmount")) for line in lines if isinstance(line, Mapping)]
            if not amounts or any(a is None for a in amounts):
                return None
            amount = sum((a for a in amounts if a is not None), ZERO)
        return money(amount)
    subtotal = ZERO
    for line in payload.get("detailItem") or []:
        if not isinstance(line, Mapping):
            return None
        quantity, price = to_decimal(line.get("quantity")), to_decimal(line.get("unitPrice"))
        if quantity is None or price is None:
            return None
        discount = to_decimal(line.get("itemCashDiscount")) or ZERO
        subtotal += money(quantity * price - discount)
    net = subtotal - (to_decimal(payload.get("cashDiscount")) or ZERO)
    if not payload.get("taxable"):
        return money(net)
    if payload.get("inclusiveTax"):
        return money(net)
    return money(net + money(net * TAX_PERCENT / HUNDRED))


def accurate_amount(module: str, row: Mapping[str, Any]) -> Decimal | None:
    """The amount of an Accurate list row (``chequeAmount`` of a receipt, else ``totalAmount``)."""
    if module == "sales-receipt":
        amount = to_decimal(row.get("chequeAmount"))
        return money(amount) if amount is not None else to_decimal(row.get("totalPayment"))
    amount = to_decimal(row.get("totalAmount"))
    return money(amount) if amount is not None else None


def accurate_day(value: Any) -> date | None:
    """Accurate's ``dd/MM/yyyy`` (optionally with a time) as a date; None when malformed."""
    text = str(value or "").strip()[:10]
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


@dataclass
class LedgerInfo:
    """A ledger row as the comparison needs it."""

    id: int
    data_type: str
    source_id: str
    source_number: str | None
    outlet_id: str | None
    source_date: datetime
    target_module: str
    target_number: str | None
    status: str
    reason: str | None
    payload: dict[str, Any] | None


@dataclass
class Expected:
    """A document that should be in Accurate: from iSeller's orders (mapped), or from the ledger."""

    data_type: str
    source_id: str
    module: str
    number: str | None
    outlet_id: str
    day: date
    source_number: str | None
    amount: Decimal | None
    mapped_status: str | None = None  # the mapping's own status when iSeller has it (failed: cannot map)
    mapped_reason: str | None = None
    ledger: LedgerInfo | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.data_type, self.source_id)


@dataclass
class AccurateDoc:
    """A sales document as Accurate's list answers it."""

    module: str
    id: int | None
    number: str
    day: date | None
    branch: str | None
    amount: Decimal | None
    bank: str | None = None

    @classmethod
    def from_row(cls, module: str, row: Mapping[str, Any]) -> AccurateDoc:
        raw_id = row.get("id")
        try:
            ident = int(raw_id) if raw_id is not None else None
        except (TypeError, ValueError):
            ident = None
        branch = row.get("branchName")
        if branch is None and isinstance(row.get("branch"), Mapping):
            branch = row["branch"].get("name")
        return cls(
            module=module,
            id=ident,
            number=str(row.get("number") or ""),
            day=accurate_day(row.get("transDate")),
            branch=str(branch) if branch is not None else None,
            amount=accurate_amount(module, row),
            bank=str(row.get("bankNo")) if row.get("bankNo") is not None else None,
        )


@dataclass
class Difference:
    """One thing the two sides disagree on, with the documents behind it and what to do."""

    outlet_id: str
    day: date
    cls: str
    module: str
    number: str | None
    detail: str
    data_type: str | None = None
    source_number: str | None = None
    source_id: str | None = None
    document_id: int | None = None
    accurate_id: int | None = None
    expected_amount: Decimal | None = None
    accurate_amount: Decimal | None = None

    @property
    def amount(self) -> Decimal:
        """The size of the difference (what one side has and the other has not, or the gap)."""
        if self.expected_amount is not None and self.accurate_amount is not None:
            return abs(self.accurate_amount - self.expected_amount)
        return abs(self.expected_amount or self.accurate_amount or ZERO)

    @property
    def fix(self) -> str:
        return FIXES[self.cls]

    @property
    def label(self) -> str:
        return CLASSES[self.cls]


@dataclass
class DayResult:
    """The outcome of one outlet and day."""

    outlet_id: str
    day: date
    differences: list[Difference] = field(default_factory=list)
    iseller: dict[str, Any] = field(default_factory=dict)
    accurate: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "red" if self.differences else "green"

    @property
    def difference_amount(self) -> Decimal:
        return sum((d.amount for d in self.differences), ZERO)


# ---------------------------------------------------------------------------------------------
# totals


def iseller_totals(
    orders: Iterable[Mapping[str, Any]], refunds: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """iSeller's figures of a day: completed orders, net sales, tax, discounts, payments, refunds."""
    count, net, tax, discounts = 0, ZERO, ZERO, ZERO
    payments: dict[str, Decimal] = defaultdict(Decimal)
    for order in orders:
        count += 1
        net += to_decimal(order.get("total_amount")) or ZERO
        tax += to_decimal(order.get("total_tax_amount")) or ZERO
        discounts += to_decimal(order.get("total_discount_amount")) or ZERO
        for payment in order.get("transactions") or []:
            if not isinstance(payment, Mapping):
                continue
            if str(payment.get("type", "sale")).lower() != "sale":
                continue
            if str(payment.get("status", "success")).lower() != "success":
                continue
            payments[str(payment.get("gateway") or "custom")] += to_decimal(payment.get("amount")) or ZERO
    refund_total, refund_count = ZERO, 0
    for refund in refunds:
        refund_count += 1
        refund_total += to_decimal(refund.get("refund_amount")) or ZERO
    return {
        "orders": count,
        "net_sales": net,
        "tax": tax,
        "discounts": discounts,
        "payments": dict(sorted(payments.items())),
        "refunds": refund_count,
        "refund_amount": refund_total,
    }


def accurate_totals(docs: Iterable[AccurateDoc]) -> dict[str, Any]:
    """Accurate's figures of a day: invoices, receipts per cash/bank account, returns."""
    totals: dict[str, Any] = {
        "invoices": 0,
        "invoice_amount": ZERO,
        "receipts": 0,
        "receipt_amount": ZERO,
        "receipts_by_account": {},
        "returns": 0,
        "return_amount": ZERO,
    }
    by_account: dict[str, Decimal] = defaultdict(Decimal)
    for doc in docs:
        kind = {"sales-invoice": "invoice", "sales-receipt": "receipt", "sales-return": "return"}[doc.module]
        totals[f"{kind}s"] += 1
        totals[f"{kind}_amount"] += doc.amount or ZERO
        if doc.module == "sales-receipt":
            by_account[doc.bank or "?"] += doc.amount or ZERO
    totals["receipts_by_account"] = dict(sorted(by_account.items()))
    return totals


# ---------------------------------------------------------------------------------------------
# comparison


def expected_documents(
    mapped: Sequence[Any],
    ledger_rows: Sequence[LedgerInfo],
    outlets: Sequence[str],
    days: set[date],
    tz: ZoneInfo,
) -> list[Expected]:
    """What should be in Accurate for ``outlets`` and ``days``: the mapped iSeller documents joined
    with their ledger rows, plus ledger rows iSeller did not answer (e.g. an order voided since)."""
    wanted = set(outlets)
    by_key = {(row.data_type, row.source_id): row for row in ledger_rows}
    found: dict[tuple[str, str], Expected] = {}
    for doc in mapped:
        if doc.data_type not in SALES_TYPES or doc.status == "skipped":
            continue
        outlet = str(doc.outlet_id or "")
        day = local_day(doc.source_date, tz)
        if outlet not in wanted or day not in days:
            continue
        row = by_key.get(doc.key)
        payload = row.payload if row is not None and row.status == "synced" else doc.payload
        found[doc.key] = Expected(
            data_type=doc.data_type,
            source_id=doc.source_id,
            module=doc.target_module,
            number=(row.target_number if row is not None else None) or doc.target_number,
            outlet_id=outlet,
            day=day,
            source_number=doc.source_number,
            amount=posted_amount(doc.target_module, payload),
            mapped_status=doc.status,
            mapped_reason=doc.reason,
            ledger=row,
        )
    for row in ledger_rows:
        key = (row.data_type, row.source_id)
        if key in found or row.status == "skipped" or row.data_type not in SALES_TYPES:
            continue
        outlet, day = str(row.outlet_id or ""), local_day(row.source_date, tz)
        if outlet not in wanted or day not in days:
            continue
        found[key] = Expected(
            data_type=row.data_type,
            source_id=row.source_id,
            module=row.target_module,
            number=row.target_number,
            outlet_id=outlet,
            day=day,
            source_number=row.source_number,
            amount=posted_amount(row.target_module, row.payload),
            ledger=row,
        )
    return list(found.values())


def compare(
    expected: Sequence[Expected],
    accurate_docs: Sequence[AccurateDoc],
    branch_of: Mapping[str, str],
    days: Sequence[date],
    find_elsewhere: Callable[[str, list[str]], dict[str, AccurateDoc]],
    known_numbers: Mapping[tuple[str, str], tuple[str, date]],
    iseller_by_day: Mapping[tuple[str, date], dict[str, Any]] | None = None,
) -> dict[tuple[str, date], DayResult]:
    """Classify every difference of every outlet and day.

    ``accurate_docs``: Accurate's documents of the outlets' branches over the days. ``branch_of``:
    outlet -> branch. ``find_elsewhere(module, numbers)``: Accurate's records among ``numbers``
    wherever they are (to tell "deleted" from "moved to another day or branch"). ``known_numbers``:
    ``(module, number) -> (outlet, day)`` of ledger rows anywhere, so a document another outlet or day
    accounts for is not called "only in Accurate" here.
    """
    results = {
        (outlet, day): DayResult(outlet, day, iseller=dict((iseller_by_day or {}).get((outlet, day), {})))
        for outlet in branch_of
        for day in days
    }
    outlets_of_branch: dict[str, list[str]] = defaultdict(list)
    for outlet, branch in sorted(branch_of.items()):
        outlets_of_branch[branch].append(outlet)
    # Accurate's documents by (module, number), and by (outlet, day) for the totals.
    in_accurate: dict[tuple[str, str], AccurateDoc] = {}
    for doc in accurate_docs:
        if doc.number:
            in_accurate[(doc.module, doc.number)] = doc
    claimed: set[tuple[str, str]] = set()
    synced_absent: dict[str, list[Expected]] = defaultdict(list)

    def add(exp: Expected, cls: str, detail: str, acc: AccurateDoc | None = None) -> None:
        results[(exp.outlet_id, exp.day)].differences.append(
            Difference(
                outlet_id=exp.outlet_id,
                day=exp.day,
                cls=cls,
                module=exp.module,
                number=exp.number,
                detail=detail,
                data_type=exp.data_type,
                source_number=exp.source_number,
                source_id=exp.source_id,
                document_id=exp.ledger.id if exp.ledger else None,
                accurate_id=acc.id if acc else None,
                expected_amount=exp.amount,
                accurate_amount=acc.amount if acc else None,
            )
        )

    for exp in sorted(expected, key=lambda e: (e.outlet_id, e.day, e.module, e.number or "")):
        if (exp.outlet_id, exp.day) not in results:
            continue
        acc = in_accurate.get((exp.module, exp.number or ""))
        if acc is not None:
            claimed.add((acc.module, acc.number))
        what = _what(exp)
        row = exp.ledger
        if row is None:
            if acc is not None:
                continue  # in Accurate although the ledger never stored it: the books agree
            why = f" (it cannot be mapped: {exp.mapped_reason})" if exp.mapped_status == "failed" else ""
            add(exp, "only_in_iseller", f"{what} is in iSeller but the sync never read it{why}")
            continue
        if row.status in OPEN:
            reason = f": {row.reason}" if row.reason else ""
            add(exp, "not_synced", f"{what} is {row.status} in the sync ledger{reason}", acc)
            continue
        if row.status != "synced":
            continue
        if acc is None:
            synced_absent[exp.module].append(exp)
            continue
        problems = _changes(exp, acc, branch_of)
        if problems:
            add(exp, "changed_in_accurate", f"{what} in Accurate: {'; '.join(problems)}", acc)

    # Synced but not in the branch and day: deleted, or moved to another day or branch?
    for module, exps in synced_absent.items():
        numbers = [e.number for e in exps if e.number]
        elsewhere = find_elsewhere(module, numbers) if numbers else {}
        for exp in exps:
            acc = elsewhere.get(exp.number or "")
            what = _what(exp)
            if acc is None:
                add(
                    exp,
                    "missing_in_accurate",
                    f"{what} was posted by the sync but Accurate no longer has {exp.number}",
                )
            else:
                claimed.add((acc.module, acc.number))
                problems = _changes(exp, acc, branch_of) or ["it is no longer in this branch and day"]
                add(exp, "changed_in_accurate", f"{what} in Accurate: {'; '.join(problems)}", acc)

    # Accurate's documents no iSeller sale or ledger row of this outlet and day explains.
    for doc in sorted(accurate_docs, key=lambda d: (d.module, d.number)):
        key = (doc.module, doc.number)
        if key in claimed or doc.day is None:
            continue
        owners = outlets_of_branch.get(doc.branch or "", [])
        if not owners:
            continue
        known = known_numbers.get(key)
        if known is not None:
            continue  # the ledger accounts for it on another outlet or day: reported there
        outlet = owners[0]
        if (outlet, doc.day) not in results:
            continue
        results[(outlet, doc.day)].differences.append(
            Difference(
                outlet_id=outlet,
                day=doc.day,
                cls="only_in_accurate",
                module=doc.module,
                number=doc.number,
                data_type=TYPE_OF.get(doc.module),
                detail=(
                    f"{_module_label(doc.module)} {doc.number} ({doc.amount}) is in Accurate's branch"
                    f" {doc.branch} on {doc.day.isoformat()} but no iSeller sale and no synced document"
                    " explains it"
                ),
                accurate_id=doc.id,
                accurate_amount=doc.amount,
            )
        )
    # Accurate's totals per outlet and day.
    per_day: dict[tuple[str, date], list[AccurateDoc]] = defaultdict(list)
    for doc in accurate_docs:
        owners = outlets_of_branch.get(doc.branch or "", [])
        if owners and doc.day is not None:
            per_day[(owners[0], doc.day)].append(doc)
    for day_key, result in results.items():
        result.accurate = accurate_totals(per_day.get(day_key, []))
    return results


def _changes(exp: Expected, acc: AccurateDoc, branch_of: Mapping[str, str]) -> list[str]:
    problems = []
    if exp.amount is not None and acc.amount is not None and exp.amount != acc.amount:
        problems.append(f"amount {acc.amount} instead of {exp.amount} as posted")
    if acc.day is not None and acc.day != exp.day:
        problems.append(f"dated {acc.day.isoformat()} instead of {exp.day.isoformat()}")
    branch = branch_of.get(exp.outlet_id)
    if acc.branch is not None and branch is not None and acc.branch != branch:
        problems.append(f"in branch {acc.branch} instead of {branch}")
    return problems


def _module_label(module: str) -> str:
    return {
        "sales-invoice": "Sales invoice",
        "sales-receipt": "Sales receipt",
        "sales-return": "Sales return",
    }.get(module, module)


def _what(exp: Expected) -> str:
    order = f" (order {exp.source_number})" if exp.source_number else ""
    return f"{_module_label(exp.module)} {exp.number or '(no number)'}{order}"


def module_of(data_type: str) -> str:
    return MODULE_OF[data_type]
