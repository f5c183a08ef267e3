"""Stock opname: iSeller stock takes -> Accurate item adjustments, after the outlet's earlier movements.

What maps to what: a completed stock take of an outlet becomes one ``item-adjustment`` numbered
``SO/<stock take number>`` (``ST-JKT01-0001`` -> ``SO/ST-JKT01-0001``), dated when counted, in the
outlet's branch, on the outlet's ``adjustment_account``. Each line whose count differs from iSeller's
system quantity becomes a line of the outlet's warehouse: ``ADJUSTMENT_IN`` (counted more) or
``ADJUSTMENT_OUT`` (counted less) of ``|counted - system|`` units, with the product's iSeller buying
price as ``unitCost`` when it has one. Lines without a difference are left out; a stock take without
any difference is ``skipped`` (nothing to post).

The blocking rule (why and when it waits). The difference was counted against the stock after every
earlier movement of the outlet, so the adjustment is posted only after each of them is in Accurate:

- every earlier completed sale (sales invoice) and refund (sales return) of the outlet,
- every earlier transfer out of, transfer into, and transfer difference at the outlet,
- the outlet's previous stock take that had differences, when the sync knows it; the movements
  before it are then that stock take's own prerequisites, so each stock take only looks back to the
  previous one.

"Earlier" starts where the sync's history of the outlet starts: the oldest sale (for sales) or
transfer (for transfers) of the outlet in the sync ledger, or one day before the stock take when the
sync has read none yet. Movements before that are taken to be in Accurate already (opening stock).
A movement the other sync has not read yet is waited for by its number ("waits for sales invoice
SI/JKT01-1093 (order #JKT01-1093), which the sales sync has not read from iSeller yet"); a movement
that failed blocks the stock opname with its reason. Either way the stock opname is posted by
whichever sync stores or posts the last of them: nothing has to be re-ordered by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from include.iseller_accurate.checks import FieldProblem, Reader, storable
from include.iseller_accurate.jsonutil import to_jsonable
from include.iseller_accurate.kinds import STOCK_MOVING_SALES_TYPES, STOCK_OPNAME, TRANSFER_TYPES, label_of
from include.iseller_accurate.ledger import DONE, Document
from include.iseller_accurate.pipeline import ExtractContext, MapContext, Stream
from include.iseller_accurate.streams import common
from include.iseller_accurate.streams.sales import SalesStream
from include.iseller_accurate.streams.transfers import TransfersStream

#: Looking back this far (before the sales/transfer window) catches orders closed after they were opened.
ORDER_SLACK = timedelta(days=1)
SECOND = timedelta(seconds=1)
SALES_DAG = "iseller_sales_to_accurate"
TRANSFERS_DAG = "iseller_transfers_to_accurate"
OPNAME_DAG = "iseller_stock_opname_to_accurate"


def take_time(take: dict[str, Any]) -> datetime:
    """When a stock take was counted (UTC); an unreadable date is passed over here (mapping fails
    the stock take, naming it)."""
    return common.first_time(take, ("stock_take_date", "created_date", "modified_date"))


def _order_key(take: dict[str, Any]) -> tuple[datetime, str]:
    """Stock takes of one outlet in the order they were counted (the number breaks a tie)."""
    return take_time(take), str(take.get("stock_take_number") or take.get("stock_take_id"))


def opname_number(take: dict[str, Any]) -> str:
    """The Accurate number of a stock take's adjustment: ``SO/<stock take number>``."""
    return STOCK_OPNAME.number(str(take.get("stock_take_number") or take["stock_take_id"]).strip())


def _lines(take: dict[str, Any]) -> list[dict[str, Any]]:
    return list(take.get("lines") or take.get("products") or [])


def has_differences(take: dict[str, Any]) -> bool:
    """Whether any line's count differs from the system quantity (else there is nothing to post)."""
    try:
        return any(
            common.decimal_of(line.get("counted_quantity")) != common.decimal_of(line.get("system_quantity"))
            for line in _lines(take)
        )
    except (ValueError, AttributeError, TypeError):
        return True  # unreadable: it must be posted (or fail) before later stock takes


def _completed(take: dict[str, Any]) -> bool:
    return str(take.get("status") or "completed").lower() == "completed"


class StockOpnameStream(Stream):
    """iSeller stock takes counted in the run's window, each after the outlet's earlier movements."""

    name = "stock_opname"
    data_types = (STOCK_OPNAME.data_type,)
    key_field = "stock_take_id"
    record_name = "stock take"
    #: Mapped as one batch: stock takes are stored in count order across the whole window, each after
    #: the earlier ones of its outlet.
    map_chunk = None

    def ignores(self, record: Any) -> bool:
        """Stock takes not completed (drafts) are not stock opname yet: no ledger row."""
        return isinstance(record, dict) and not _completed(record)

    def unreadable_type(self, record: Any) -> tuple[str, str, str]:
        return STOCK_OPNAME.data_type, STOCK_OPNAME.module, ""

    # -- extract -------------------------------------------------------------------------------
    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Completed stock takes of the window, with their prerequisites and unit costs.

        Stock takes already posted (or skipped) are left out: windows overlap, and working out the
        prerequisites of a stock take costs a few iSeller reads.
        """
        takes = [
            t
            for t in ctx.iseller.get_stock_takes(
                created_after=ctx.window_start, created_before=ctx.window_end
            )
            if _completed(t)
        ]
        if ctx.ledger is not None and takes:
            known = ctx.ledger.known([STOCK_OPNAME.key(str(t["stock_take_id"])) for t in takes])
            takes = [t for t in takes if known.get(STOCK_OPNAME.key(str(t["stock_take_id"]))) not in DONE]
        return self.prepare(ctx, takes)

    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Re-read stock takes by id (for the sync refresh): prerequisites are worked out again."""
        takes: list[dict[str, Any]] = []
        for take_id in source_keys:
            takes.extend(t for t in ctx.iseller.get_stock_takes(stock_take_id=take_id) if _completed(t))
        return self.prepare(ctx, takes)

    def prepare(self, ctx: ExtractContext, takes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attach to each stock take the earlier movements it waits for (``_after``) and unit costs.

        An earlier stock take of the same outlet that the sync should know but has not read is added
        (it comes first), so that a stock take never waits for one that no run would read.
        """
        if not takes:
            return []
        by_id = {str(t["stock_take_id"]): t for t in takes}
        queue = sorted(by_id.values(), key=take_time)
        movements = _OutletMovements(ctx, takes)
        prepared: list[dict[str, Any]] = []
        while queue:
            take = queue.pop(0)
            previous = self._previous(ctx, take, by_id, movements)
            if previous is not None and str(previous["stock_take_id"]) not in by_id:
                by_id[str(previous["stock_take_id"])] = previous
                queue.append(previous)
            take["_after"] = self._earlier_movements(ctx, take, previous, movements)
            prepared.append(take)
        common.attach_unit_costs(ctx.iseller, prepared, _lines)
        return sorted(prepared, key=take_time)

    def _previous(
        self,
        ctx: ExtractContext,
        take: dict[str, Any],
        batch: dict[str, dict[str, Any]],
        movements: _OutletMovements,
    ) -> dict[str, Any] | None:
        """The outlet's latest earlier stock take with differences that this one must come after.

        It counts when the ledger (or this batch) has it, or when it lies within the sync's history of
        the outlet (its oldest sale, transfer or stock take in the ledger); an older one is taken to
        be in Accurate already.
        """
        outlet_id, counted_at = str(take.get("outlet_id") or ""), take_time(take)
        earlier = [
            t
            for t in ctx.iseller.get_stock_takes(outlet_id=outlet_id, created_before=counted_at + SECOND)
            if _completed(t) and _order_key(t) < _order_key(take)
        ]
        earlier = [t for t in earlier if has_differences(t)]
        if not earlier:
            return None
        latest = max(earlier, key=_order_key)
        key = STOCK_OPNAME.key(str(latest["stock_take_id"]))
        if str(latest["stock_take_id"]) in batch or (ctx.ledger is not None and ctx.ledger.known([key])):
            return latest
        families = (STOCK_OPNAME.data_type, *STOCK_MOVING_SALES_TYPES, *TRANSFER_TYPES)
        start = movements.history_start(outlet_id, families)
        if take_time(latest) >= (start or counted_at - self.initial_lookback):
            return latest
        return None

    def _earlier_movements(
        self,
        ctx: ExtractContext,
        take: dict[str, Any],
        previous: dict[str, Any] | None,
        movements: _OutletMovements,
    ) -> list[dict[str, str]]:
        """The outlet's documents between the history start (or the previous stock take) and this one."""
        outlet_id, counted_at = str(take.get("outlet_id") or ""), take_time(take)
        if ctx.settings.outlet(outlet_id) is None:
            return []  # the stock opname fails on its mapping first
        since = take_time(previous) if previous is not None else None
        after: list[dict[str, str]] = []
        if previous is not None:
            after.append(
                {
                    "data_type": STOCK_OPNAME.data_type,
                    "source_id": str(previous["stock_take_id"]),
                    "label": f"stock opname {opname_number(previous)} (the previous stock take of this"
                    f" outlet), which the stock opname sync ({OPNAME_DAG}) has not read from iSeller yet",
                }
            )
        for read, data_types, lookback, reader in (
            (
                movements.sales,
                STOCK_MOVING_SALES_TYPES,
                SalesStream.initial_lookback,
                f"the sales sync ({SALES_DAG})",
            ),
            (
                movements.transfers,
                TRANSFER_TYPES,
                TransfersStream.initial_lookback,
                f"the transfer sync ({TRANSFERS_DAG})",
            ),
        ):
            start = self._start(movements.history_start(outlet_id, data_types), counted_at, since, lookback)
            after.extend(_requirement(doc, reader) for doc in read(outlet_id, start, counted_at))
        return after

    @staticmethod
    def _start(
        history_start: datetime | None, counted_at: datetime, since: datetime | None, lookback: timedelta
    ) -> datetime:
        start = min(history_start or counted_at - lookback, counted_at)
        return max(start, since) if since is not None else start

    # -- map -----------------------------------------------------------------------------------
    def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
        """One item adjustment per completed stock take (see the module docstring)."""
        readable, documents = common.readable_records(self, records)
        documents += [
            map_stock_take(take, ctx.settings) for take in sorted(readable, key=take_time) if _completed(take)
        ]
        return documents


class _OutletMovements:
    """An outlet's sales and transfers as documents, read from iSeller once per extract.

    Each stock take needs the outlet's movements from its own start up to its count. Read per stock
    take, a batch of stock takes re-read the outlet's whole history once each (1,000 stock takes over
    100,000 orders kept the iSeller sandbox busy for over 20 minutes). Here each outlet is read once,
    from the earliest start asked up to the batch's latest count at that outlet, and every stock take
    picks its own span out of it (``_moving``: by document date, which is never after the read's own
    bounds: an order is dated when created, a transfer is sent before it is received or modified). A
    span that starts earlier than what was read (an earlier stock take brought in along the way) reads
    the outlet again, once, over the wider span.
    """

    def __init__(self, ctx: ExtractContext, takes: Iterable[dict[str, Any]]) -> None:
        self.ctx = ctx
        self.map_ctx = MapContext(ctx.settings)
        self.horizon: dict[str, datetime] = {}
        for take in takes:
            outlet_id, counted_at = str(take.get("outlet_id") or ""), take_time(take)
            self.horizon[outlet_id] = max(self.horizon.get(outlet_id, counted_at), counted_at)
        self._read: dict[tuple[str, str], tuple[datetime, datetime, list[Document]]] = {}
        self._starts: dict[tuple[str, tuple[str, ...]], datetime | None] = {}

    def history_start(self, outlet_id: str, data_types: Sequence[str]) -> datetime | None:
        """Where the sync's history of the outlet starts for these data types (the ledger's oldest
        document of them), asked once per extract: nothing is stored while stock takes are prepared."""
        key = (outlet_id, tuple(data_types))
        if key not in self._starts:
            ledger = self.ctx.ledger
            self._starts[key] = ledger.history_start(outlet_id, data_types) if ledger is not None else None
        return self._starts[key]

    def sales(self, outlet_id: str, start: datetime, end: datetime) -> list[Document]:
        """The outlet's sales and refunds that move stock, from ``start`` up to ``end``."""
        documents = self._covering("sales", outlet_id, start, end)
        return _moving(documents, STOCK_MOVING_SALES_TYPES, outlet_id, start, end)

    def transfers(self, outlet_id: str, start: datetime, end: datetime) -> list[Document]:
        """The outlet's transfers out, in and differences, from ``start`` up to ``end``."""
        return _moving(
            self._covering("transfers", outlet_id, start, end), TRANSFER_TYPES, outlet_id, start, end
        )

    def _covering(self, what: str, outlet_id: str, start: datetime, end: datetime) -> list[Document]:
        held = self._read.get((what, outlet_id))
        if held is not None and held[0] <= start and end <= held[1]:
            return held[2]
        if held is not None:
            start, end = min(start, held[0]), max(end, held[1])
        end = max(end, self.horizon.get(outlet_id, end))
        documents = (
            self._sales(outlet_id, start, end) if what == "sales" else self._transfers(outlet_id, start, end)
        )
        self._read[(what, outlet_id)] = (start, end, documents)
        return documents

    def _sales(self, outlet_id: str, start: datetime, end: datetime) -> list[Document]:
        pages = self.ctx.iseller.get_orders_pages(
            created_after=start - ORDER_SLACK, created_before=end + SECOND, outlet_id=outlet_id
        )
        stream = SalesStream()
        return stream.map(stream.group_orders(pages), self.map_ctx)

    def _transfers(self, outlet_id: str, start: datetime, end: datetime) -> list[Document]:
        transfers = list(
            self.ctx.iseller.get_transfers(
                transfer_type="outlet", outlet_id=outlet_id, created_before=end + SECOND, modified_after=start
            )
        )
        return TransfersStream().map(transfers, self.map_ctx)


def _moving(
    documents: Iterable[Document], data_types: Sequence[str], outlet_id: str, start: datetime, end: datetime
) -> list[Document]:
    """The documents that move stock at the outlet from ``start`` up to ``end``, both included: iSeller
    dates have whole seconds, and a sale in the very second of the count was counted after it."""
    return [
        doc
        for doc in documents
        if doc.data_type in data_types
        and doc.outlet_id == outlet_id
        and start <= doc.source_date <= end
        and doc.status != "skipped"
    ]


def _requirement(doc: Document, reader: str) -> dict[str, str]:
    name = f"{label_of(doc.data_type)} {doc.target_number or doc.source_id}"
    if doc.source_number and doc.source_number not in name:
        kind = "order" if doc.data_type.startswith("sales") else "transfer"
        name += f" ({kind} {doc.source_number})"
    return {
        "data_type": doc.data_type,
        "source_id": doc.source_id,
        "label": f"{name}, which {reader} has not read from iSeller yet",
    }


def map_stock_take(raw: dict[str, Any], settings: Any) -> Document:
    """The ledger document of one completed stock take; a value that cannot be used fails it (and
    only it) with the reason."""
    reader = Reader(f"stock take {_safe_number(raw)}")
    try:
        take = _read_take(raw, settings, reader)
    except FieldProblem as problem:
        return _failed_take(raw, f"{reader.label}: {problem}")
    doc = _map_take(take, settings)
    doc.cleaned = list(reader.cleaned)
    return doc


def _safe_number(raw: dict[str, Any]) -> str:
    for name in ("stock_take_number", "stock_take_id"):
        number = common.safe_identifier(raw, name)
        if number:
            return number
    return StockOpnameStream().record_key(raw)


def _read_take(raw: dict[str, Any], settings: Any, reader: Reader) -> dict[str, Any]:
    """A copy of a stock take with every value the mapping uses checked (see ``checks``)."""
    limits = settings.limits
    take = dict(raw)
    reader.at("")
    for name in ("stock_take_id", "stock_take_number", "outlet_id"):
        if name in raw:
            take[name] = reader.text(raw.get(name), name, identifier=True, required=name == "stock_take_id")
    if "outlet_code" in raw:
        take["outlet_code"] = reader.text(raw.get("outlet_code"), "outlet_code")
    for name in ("stock_take_date", "created_date", "modified_date"):
        if name in raw:
            take[name] = reader.moment(raw.get(name), name)
    key = "lines" if raw.get("lines") else "products"
    costs = raw.get("_unit_costs") or {}
    clean_costs: dict[str, Decimal] = {}
    clean_lines = []
    total = Decimal(0)
    for position, line in enumerate(common.line_list(reader, raw.get(key), key), start=1):
        clean = common.read_line(reader, line, position, key, ("product_name", "product_id"))
        quantities = {}
        for name in ("counted_quantity", "system_quantity"):
            quantities[name] = clean[name] = reader.number(
                line.get(name),
                name,
                negative=True,
                maximum=limits.max_line_quantity,
                limit_name="limits.max_line_quantity",
            )
        difference = abs(quantities["counted_quantity"] - quantities["system_quantity"])
        if difference:
            reader.quantity(difference, "counted_quantity", limits)
        if clean["sku"] in costs:
            cost = clean_costs[clean["sku"]] = reader.number(costs[clean["sku"]], common.UNIT_COST_FIELD)
            what = f"difference {difference} x unit cost {cost} ="
            reader.amount_limit(difference * cost, common.UNIT_COST_FIELD, limits, "max_line_amount", what)
            total += difference * cost
        clean_lines.append(clean)
    take[key] = clean_lines
    if "_unit_costs" in raw:
        take["_unit_costs"] = clean_costs
    reader.at("")
    reader.amount_limit(total, "total", limits, "max_document_total", "the adjustment's total")
    return take


def _failed_take(raw: dict[str, Any], reason: str) -> Document:
    take_id = StockOpnameStream().record_key(raw)
    number = _safe_number(raw)
    when = take_time(raw)
    outlet = raw.get("outlet_id")
    requirements = raw.get("_after") or []
    return STOCK_OPNAME.document(
        take_id,
        source_key=take_id,
        source_number=number,
        outlet_id=outlet if isinstance(outlet, str) else None,
        source_date=when,
        number=STOCK_OPNAME.number(number),
        source=common.source_fields(raw),
        after=[(r["data_type"], r["source_id"]) for r in requirements],
        waiting_notes={(r["data_type"], r["source_id"]): r["label"] for r in requirements},
        status="failed",
        reason=reason,
    )


def _map_take(take: dict[str, Any], settings: Any) -> Document:
    """The ledger document of one checked stock take."""
    take_id = str(take["stock_take_id"])
    number = opname_number(take)
    take_number = str(take.get("stock_take_number") or take_id)
    outlet_id = str(take.get("outlet_id") or "")
    mapping = settings.outlet(outlet_id)
    counted_at = take_time(take)
    requirements = take.get("_after") or []
    doc = STOCK_OPNAME.document(
        take_id,
        source_key=take_id,
        source_number=take_number,
        outlet_id=outlet_id,
        source_date=counted_at,
        number=number,
        source=to_jsonable(storable(common.source_fields(take), "source", strict=False)[0]),
        after=[(r["data_type"], r["source_id"]) for r in requirements],
        waiting_notes={(r["data_type"], r["source_id"]): r["label"] for r in requirements},
    )
    label = f"stock take {take_number}"
    if mapping is None:
        doc.status = "failed"
        doc.reason = f"{label}: {common.unmapped_reason(outlet_id, take.get('outlet_code'))}"
        return doc
    if not mapping.adjustment_account:
        doc.status = "failed"
        doc.reason = (
            f"{label}: outlet {common.outlet_label(outlet_id, take.get('outlet_code'), mapping)} has no"
            f" adjustment_account (the Accurate account of stock differences); add it under"
            f" {common.SETTINGS_PATH}.{outlet_id} in the settings Variable, then refresh"
        )
        return doc
    costs = take.get("_unit_costs") or {}
    detail: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for position, line in enumerate(_lines(take), start=1):
        name = line.get("product_name") or line.get("product_id")
        sku = str(line.get("sku") or "").strip()
        counted = common.decimal_of(line.get("counted_quantity"))
        system = common.decimal_of(line.get("system_quantity"))
        if not sku:
            doc.status = "failed"
            doc.reason = f"{label}: {common.no_sku_reason(position, name)}"
            return doc
        if sku in seen:
            doc.status = "failed"
            doc.reason = (
                f"{label}: {sku} ({name}) is counted on lines {seen[sku]} and {position}; correct the stock"
                " take in iSeller, then refresh"
            )
            return doc
        seen[sku] = position
        if counted < 0:
            doc.status, doc.reason = "failed", f"{label}: line {position} ({name}) counted {counted}"
            return doc
        difference = counted - system
        if difference == 0:
            continue
        entry: dict[str, Any] = {
            "itemAdjustmentType": "ADJUSTMENT_IN" if difference > 0 else "ADJUSTMENT_OUT",
            "itemNo": sku,
            "quantity": abs(difference),
            "warehouseName": mapping.warehouse,
            "detailNotes": f"hitung {counted}, sistem {system}",
        }
        if sku in costs:
            entry["unitCost"] = common.decimal_of(costs[sku])
        detail.append(entry)
    if not detail:
        doc.status = "skipped"
        doc.reason = f"{label}: every count equals iSeller's system quantity, so there is nothing to adjust"
        return doc
    doc.payload = {
        "number": number,
        "transDate": common.accurate_date(counted_at, settings),
        "branchName": mapping.branch,
        "adjustmentAccountNo": mapping.adjustment_account,
        "description": f"Stock opname iSeller {take_number}"
        f" ({common.outlet_label(outlet_id, take.get('outlet_code'), mapping)})",
        "detailItem": detail,
    }
    return doc


def adjustment_quantities(take: dict[str, Any]) -> dict[str, Decimal]:
    """Counted minus system quantity per SKU (the signed adjustment a stock take stands for)."""
    return {
        str(line.get("sku") or ""): common.decimal_of(line.get("counted_quantity"))
        - common.decimal_of(line.get("system_quantity"))
        for line in _lines(take)
    }
