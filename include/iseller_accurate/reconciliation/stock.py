"""Stock: iSeller's on-hand quantity per outlet against Accurate's stock in the outlet's warehouse.

Only products iSeller tracks (``track_inventory``) with a SKU that is an Accurate item are compared
(the others have nothing to compare with; they are counted, not listed). Accurate's quantity comes
from ``item/get-stock.do`` per item and warehouse (its requests count against Accurate's limit: one
per item and outlet).

A difference is explained, where the ledger can, by the outlet's documents not in Accurate yet
(pending, failed or blocked): a sale not posted leaves Accurate that many units higher, a return or a
received transfer not posted that many lower, a transfer sent, and stock opname adjustments likewise.
Whatever they do not cover is listed as unexplained.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from include.iseller_accurate.kinds import label_of
from include.iseller_accurate.reconciliation.sales import ZERO, LedgerInfo, to_decimal

#: Sign of a not-yet-posted document's lines on (Accurate - iSeller): a sale iSeller has counted
#: but Accurate has not leaves Accurate higher.
EFFECT_SIGN = {
    "sales_invoice": 1,
    "sales_return": -1,
    "transfer_out": 1,
    "transfer_in": -1,
}


@dataclass
class StockDifference:
    """One item at one outlet whose quantities differ."""

    item_no: str
    warehouse: str
    iseller_qty: Decimal
    accurate_qty: Decimal
    explained_qty: Decimal = ZERO
    explanations: list[str] = field(default_factory=list)

    @property
    def difference(self) -> Decimal:
        """Accurate minus iSeller."""
        return self.accurate_qty - self.iseller_qty

    @property
    def unexplained(self) -> bool:
        return self.difference != self.explained_qty

    @property
    def explanation(self) -> str:
        if not self.explanations:
            return "no document in the ledger explains it"
        text = "; ".join(self.explanations[:5])
        if len(self.explanations) > 5:
            text += f"; and {len(self.explanations) - 5} more"
        return text


@dataclass
class StockResult:
    """The stock check of one outlet."""

    outlet_id: str
    warehouse: str
    items_checked: int = 0
    not_in_accurate: int = 0
    differences: list[StockDifference] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        return sum(1 for d in self.differences if d.unexplained)


def tracked_quantities(
    products: Iterable[Mapping[str, Any]], outlets: Sequence[str]
) -> dict[str, dict[str, Decimal]]:
    """``outlet -> sku -> on hand`` for products iSeller tracks that have a SKU."""
    wanted = set(outlets)
    result: dict[str, dict[str, Decimal]] = {outlet: {} for outlet in outlets}
    for product in products:
        if not product.get("track_inventory"):
            continue
        sku = str(product.get("sku") or "").strip()
        if not sku:
            continue
        for inventory in product.get("inventories") or []:
            if not isinstance(inventory, Mapping):
                continue
            outlet = str(inventory.get("outlet_id") or "")
            quantity = to_decimal(inventory.get("unit_in_stock"))
            if outlet in wanted and quantity is not None:
                result[outlet][sku] = quantity
    return result


def pending_effects(
    rows: Iterable[LedgerInfo], source_lines: Mapping[int, list[tuple[str, Decimal]]]
) -> dict[str, dict[str, list[tuple[Decimal, str]]]]:
    """``outlet -> sku -> [(quantity Accurate is off by, document)]`` for documents not in Accurate yet."""
    effects: dict[str, dict[str, list[tuple[Decimal, str]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        sign = EFFECT_SIGN.get(row.data_type)
        lines: list[tuple[str, Decimal]] = []
        payload = row.payload or {}
        for line in payload.get("detailItem") or []:
            if isinstance(line, Mapping):
                quantity = to_decimal(line.get("quantity"))
                if line.get("itemNo") and quantity is not None:
                    lines.append((str(line["itemNo"]), quantity))
        if not lines:
            lines = source_lines.get(row.id, [])
        if row.target_module == "item-adjustment":
            kind = str(payload.get("itemAdjustmentType") or "")
            sign = -1 if kind == "ADJUSTMENT_IN" else 1 if kind == "ADJUSTMENT_OUT" else None
        if sign is None or not row.outlet_id:
            continue
        number = row.target_number or row.source_number or row.source_id
        label = f"{label_of(row.data_type)} {number} ({row.status})"
        for sku, quantity in lines:
            effects[row.outlet_id][sku].append((sign * quantity, label))
    return effects


def order_lines(source: Mapping[str, Any] | None) -> list[tuple[str, Decimal]]:
    """(sku, quantity) of an iSeller order kept as a ledger row's source (a sale that could not be mapped)."""
    lines = []
    for line in (source or {}).get("order_details") or []:
        if not isinstance(line, Mapping):
            continue
        sku, quantity = str(line.get("sku") or "").strip(), to_decimal(line.get("quantity"))
        if sku and quantity is not None:
            lines.append((sku, quantity))
    return lines


def check_stock(
    on_hand: Mapping[str, Mapping[str, Decimal]],
    warehouse_of: Mapping[str, str],
    accurate_items: set[str],
    get_stock: Callable[[str, str], Decimal],
    effects: Mapping[str, Mapping[str, list[tuple[Decimal, str]]]],
    *,
    max_workers: int = 8,
) -> list[StockResult]:
    """Compare every tracked item of every outlet; ``get_stock(item, warehouse)`` asks Accurate."""
    results = []
    jobs: list[tuple[str, str, str, Decimal]] = []
    by_outlet: dict[str, StockResult] = {}
    for outlet, quantities in on_hand.items():
        warehouse = warehouse_of[outlet]
        result = StockResult(outlet, warehouse)
        by_outlet[outlet] = result
        results.append(result)
        for sku, quantity in sorted(quantities.items()):
            if sku not in accurate_items:
                result.not_in_accurate += 1
                continue
            jobs.append((outlet, warehouse, sku, quantity))
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        answers = list(pool.map(lambda job: get_stock(job[2], job[1]), jobs))
    for (outlet, warehouse, sku, quantity), accurate_qty in zip(jobs, answers, strict=True):
        result = by_outlet[outlet]
        result.items_checked += 1
        if accurate_qty == quantity:
            continue
        diff = StockDifference(sku, warehouse, quantity, accurate_qty)
        for delta, label in effects.get(outlet, {}).get(sku, []):
            diff.explained_qty += delta
            diff.explanations.append(f"{label}: {delta:+}")
        result.differences.append(diff)
    return results
