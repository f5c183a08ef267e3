"""The in-memory Accurate database: seeded records, indexes, stock, business rules.

Public facts (reference doc):
- ``save.do`` creates without ``id`` and updates with ``id``; lines are updated by their own ``id``
  and lines left out of an update are kept; a blank ``number`` auto-numbers, so a retried blank save
  creates a second document; a blank ``customerNo`` is generated;
- a duplicate transaction number is refused with ``Sudah ada data lain dengan No Form # <number>``;
  masters refuse a duplicate ``customerNo`` / item ``no`` / name;
- a multi-branch database refuses a transaction without ``branchName``;
- a transfer-in names its transfer-out in ``fromItemTransferNo`` and is refused when it does not
  exist; goods between the transfer-out and the transfer-in sit in transit;
- ``receive-item`` needs ``receiveNumber`` (the supplier's delivery note) and a ``vendorNo``;
- bulk-save takes at most 100 records and answers one ``{s, d, r}`` per record, in input order.

Assumptions (the public record is silent), chosen to be strict where a real database would be:
- stock is kept per item and warehouse; sales-invoice and purchase-return take stock out,
  sales-return, receive-item and purchase-invoice lines without ``receiveItemNumber`` put it in;
  ADJUSTMENT_IN/OUT add/remove; transfers move stock into a per-transfer-out in-transit bucket and a
  transfer-in can never take more than what is left in transit for its transfer-out;
- stock may go negative unless ``refuse_negative_stock`` is switched on;
- quantities must be greater than zero and prices/amounts not negative;
- a line without ``warehouseName`` takes the header's ``warehouseName``, else the branch's default
  warehouse (the seeded outlet mapping); transfers use the header ``warehouseName`` for every line;
- a TRANSFER_IN must arrive at the transfer-out's ``referenceWarehouseName``;
- totals: line ``totalPrice`` = quantity x price - discount (``itemCashDiscount`` or compound
  ``itemDiscPercent`` like ``"10+5"``), ``tax1Amount`` is 11 % PPN when ``taxable`` (taken out of the
  amount when ``inclusiveTax``); ``primeOwing`` = ``totalAmount`` - receipts - returns (never refused);
- a document referenced by another (invoice by a receipt or return, transfer-out by a transfer-in,
  purchase order by a receive-item...) cannot be deleted or renumbered;
- item/warehouse/branch keys cannot be renamed; deleting a master does not check references;
- list rows without ``fields=`` hold only ``id`` and the module key.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from sandbox.accurate.clock import JAKARTA, SandboxClock, format_date, format_timestamp, parse_date
from sandbox.accurate.forms import ListQuery, sort_key_for
from sandbox.accurate.messages import KEY_LABELS, MODULE_LABELS, Msg
from sandbox.accurate.modules import MODULES, ModuleSpec
from sandbox.demo_shop import DemoShop, build_demo_shop

Record = dict[str, Any]
Effect = tuple[Any, ...]
ChangeListener = Callable[[str, Record, str], None]

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
PPN_PERCENT = Decimal(11)
MAX_BULK = 100
#: ``lastUpdate`` of seeded records, so the same seed gives byte-identical data.
SEED_TIMESTAMP = "01/11/2026 08:00:00"
LINE_FIELDS = ("detailItem", "detailInvoice")
ITEM_TYPES = ("INVENTORY", "NON_INVENTORY", "SERVICE", "GROUP")
TRUE_TEXTS = {"true", "1", "yes", "y"}
FALSE_TEXTS = {"false", "0", "no", "n", ""}


class DatabaseSettings(Protocol):
    """The switches the database reads (a :class:`sandbox.accurate.state.SandboxConfig`)."""

    refuse_negative_stock: bool
    bulk_outer_s: str
    created_date: bool


class BusinessError(Exception):
    """A refused save/delete: HTTP 200 with ``s: false`` and these messages."""

    def __init__(self, messages: list[Msg]) -> None:
        super().__init__(messages)
        self.messages = messages


def money(value: Decimal) -> Decimal:
    """Round an amount to two decimals, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal, or ``None`` when it is not a number."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def text(value: Any) -> str:
    """A trimmed string form of a scalar field ("" for missing)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)):
        return ""
    return str(value)


def as_int(value: Any) -> int | None:
    """An integer id from a JSON/form value, or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


class Check:
    """Collects the problems of one record while its fields are normalised."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[Msg] = []

    def fail(self, code: str, **args: Any) -> None:
        """Record one problem."""
        self.errors.append(Msg(code, **args))

    def decimal(
        self,
        value: Any,
        field: str,
        *,
        required: bool = False,
        default: Decimal | None = None,
        positive: bool = False,
    ) -> Decimal | None:
        """A non-negative (or, with ``positive``, greater than zero) number field."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail("required", field=field)
                return None
            return default
        number = to_decimal(value)
        if number is None:
            self.fail("not_a_number", field=field, value=value)
            return None
        if positive and number <= 0:
            self.fail("not_positive", field=field, value=value)
            return None
        if number < 0:
            self.fail("negative", field=field, value=value)
            return None
        return number

    def boolean(self, value: Any, field: str, default: bool = False) -> bool:
        """A boolean field given as JSON bool or ``true``/``false`` text."""
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in TRUE_TEXTS:
            return True
        if lowered in FALSE_TEXTS:
            return False
        self.fail("bad_choice", field=field, value=value, choices="true, false")
        return default

    def choice(
        self, value: Any, field: str, choices: tuple[str, ...], default: str | None = None
    ) -> str | None:
        """An enumerated text field (required unless ``default`` is given)."""
        word = text(value).upper()
        if not word:
            if default is None:
                self.fail("required", field=field)
            return default
        if word not in choices:
            self.fail("bad_choice", field=field, value=value, choices=", ".join(choices))
            return None
        return word


class Table:
    """Records of one module by id, plus the index of its key."""

    __slots__ = ("spec", "records", "by_key")

    def __init__(self, spec: ModuleSpec) -> None:
        self.spec = spec
        self.records: dict[int, Record] = {}
        self.by_key: dict[str, int] = {}

    def get(self, key: str) -> Record | None:
        """The record whose key (number, customerNo, no, name...) is ``key``."""
        rid = self.by_key.get(key)
        return None if rid is None else self.records[rid]


class Database:
    """One seeded Accurate company database held in memory (single event loop, no locking)."""

    def __init__(self, seed: int, clock: SandboxClock, settings: DatabaseSettings) -> None:
        self.seed = seed
        self.clock = clock
        self.settings = settings
        self.tables: dict[str, Table] = {name: Table(spec) for name, spec in MODULES.items()}
        self.stock: dict[tuple[str, str], Decimal] = {}
        #: transfer-out number -> item no -> quantity still in transit.
        self.in_transit: dict[str, dict[str, Decimal]] = {}
        #: (module, invoice number) -> amount paid or returned against it.
        self.paid: dict[tuple[str, str], Decimal] = {}
        #: (module, number) -> how many other documents refer to it.
        self.refs: dict[tuple[str, str], int] = {}
        #: (module, id) -> the effects the stored record had (reversed on update/delete).
        self.effects: dict[tuple[str, int], list[Effect]] = {}
        #: branch name -> default warehouse (the outlet mapping of the demo shop).
        self.branch_warehouse: dict[str, str] = {}
        self.on_change: ChangeListener | None = None
        self._next_id = 100
        self._sequences: dict[str, int] = {}
        self._validators: dict[str, Callable[[Check, Record, Record | None, list[Effect]], list[Effect]]] = {
            "customer": self._v_customer,
            "vendor": self._v_vendor,
            "item": self._v_item,
            "warehouse": self._v_named,
            "branch": self._v_named,
            "sales-invoice": self._v_sales_invoice,
            "sales-receipt": self._v_sales_receipt,
            "sales-return": self._v_sales_return,
            "item-transfer": self._v_item_transfer,
            "item-adjustment": self._v_item_adjustment,
            "purchase-order": self._v_purchase_order,
            "receive-item": self._v_receive_item,
            "purchase-invoice": self._v_purchase_invoice,
            "purchase-return": self._v_purchase_return,
        }
        self._seed_from(build_demo_shop(seed))

    # ------------------------------------------------------------------ public actions

    def new_id(self) -> int:
        """A fresh record/line id."""
        self._next_id += 1
        return self._next_id

    def save(self, module: str, payload: Any, lang: int) -> Record:
        """``save.do``: the answer envelope (``r`` holds the stored record on success)."""
        spec = MODULES[module]
        try:
            record = self._save(spec, payload)
        except BusinessError as error:
            return {"s": False, "d": [m.render(lang) for m in error.messages]}
        return {
            "s": True,
            "d": [Msg("saved", number=record[spec.key]).render(lang)],
            "r": self._shown(record),
        }

    def bulk_save(self, module: str, records: Any, lang: int) -> Record:
        """``bulk-save.do``: one result per record in input order; see ``bulk_outer_s``."""
        if not isinstance(records, list) or not records:
            return {"s": False, "d": [Msg("bulk_empty").render(lang)]}
        if len(records) > MAX_BULK:
            return {"s": False, "d": [Msg("bulk_too_many", count=len(records)).render(lang)]}
        results = [self.save(module, record, lang) for record in records]
        outer = True if self.settings.bulk_outer_s == "processed" else all(r["s"] for r in results)
        return {"s": outer, "d": results}

    def delete(self, module: str, params: dict[str, Any], lang: int) -> Record:
        """``delete.do`` by ``id`` or by number/key: reverses the document's effects."""
        spec = MODULES[module]
        try:
            if spec.kind == "readonly":
                raise BusinessError([Msg("read_only", label=MODULE_LABELS[module])])
            record = self._find(spec, params)
            self._delete(spec, record)
        except BusinessError as error:
            return {"s": False, "d": [m.render(lang) for m in error.messages]}
        return {
            "s": True,
            "d": [Msg("deleted", number=record[spec.key]).render(lang)],
            "r": {"id": record["id"]},
        }

    def detail(self, module: str, params: dict[str, Any], lang: int) -> Record:
        """``detail.do`` by ``id`` or by number/key."""
        spec = MODULES[module]
        try:
            record = self._find(spec, params)
        except BusinessError as error:
            return {"s": False, "d": [m.render(lang) for m in error.messages]}
        if module == "item":
            record = dict(record)
            balances = [(wh, qty) for (no, wh), qty in self.stock.items() if no == record["no"]]
            record["detailWarehouseData"] = [{"warehouseName": wh, "balance": qty} for wh, qty in balances]
            record["availableToSell"] = sum((qty for _, qty in balances), ZERO)
        return {"s": True, "d": self._shown(record)}

    def _shown(self, record: Record) -> Record:
        """``record`` as answered: without ``createdDate`` when the switch ``created_date`` is off."""
        if self.settings.created_date or "createdDate" not in record:
            return record
        return {k: v for k, v in record.items() if k != "createdDate"}

    def list_rows(self, module: str, query: ListQuery) -> Record:
        """``list.do``: filtered, sorted, paged rows with ``sp``."""
        spec = MODULES[module]
        table = self.tables[module]
        filters = list(query.filters)
        sort_field = query.sort_field
        names = ["id", *[f for f in (query.fields or [spec.key]) if f != "id"]]
        if not self.settings.created_date:
            # No such field: a filter on it is decided by an empty record, a sort on it does nothing.
            names = [name for name in names if name != "createdDate"]
            if any(not f.matches({}) for f in filters if f.field == "createdDate"):
                return self._page([], query, names)
            filters = [f for f in filters if f.field != "createdDate"]
            sort_field = None if sort_field == "createdDate" else sort_field
        candidates: Any = None
        for flt in filters:
            # Index fast path: EQUAL on the key (e.g. 100 numbers at once).
            if flt.field in (spec.key, "id") and flt.op == "EQUAL":
                if flt.field == "id":
                    ids = [as_int(v) for v in flt.values]
                else:
                    ids = [table.by_key.get(v) for v in flt.values]
                candidates = sorted({i for i in ids if i is not None and i in table.records})
                candidates = [table.records[i] for i in candidates]
                filters.remove(flt)
                break
        rows = table.records.values() if candidates is None else candidates
        if filters:
            rows = [r for r in rows if all(f.matches(r) for f in filters)]
        elif not isinstance(rows, list):
            rows = list(rows)
        if sort_field:
            rows = sorted(rows, key=sort_key_for(sort_field), reverse=query.sort_desc)
        return self._page(rows, query, names)

    @staticmethod
    def _page(rows: list[Record], query: ListQuery, names: list[str]) -> Record:
        """One page of ``rows`` with the ``names`` asked for, and ``sp``."""
        row_count = len(rows)
        page_count = -(-row_count // query.page_size)
        start = (query.page - 1) * query.page_size
        page_rows = rows[start : start + query.page_size]
        data = [{name: row[name] for name in names if name in row} for row in page_rows]
        return {
            "s": True,
            "d": data,
            "sp": {
                "page": query.page,
                "pageSize": query.page_size,
                "pageCount": page_count,
                "rowCount": row_count,
            },
        }

    def get_stock(self, params: dict[str, Any], lang: int) -> Record:
        """``item/get-stock.do?no=&warehouseName=`` (no warehouse: the total of all warehouses)."""
        item_no = text(params.get("no") or params.get("itemNo"))
        warehouse = text(params.get("warehouseName"))
        ck = Check()
        if not item_no:
            ck.fail("required", field="no")
        elif item_no not in self.tables["item"].by_key:
            ck.fail("item_not_found", field="no", value=item_no)
        if warehouse and warehouse not in self.tables["warehouse"].by_key:
            ck.fail("warehouse_not_found", field="warehouseName", value=warehouse)
        if ck.errors:
            return {"s": False, "d": [m.render(lang) for m in ck.errors]}
        if warehouse:
            quantity = self.stock.get((item_no, warehouse), ZERO)
        else:
            quantity = sum((q for (no, _), q in self.stock.items() if no == item_no), ZERO)
        return {
            "s": True,
            "d": {"itemNo": item_no, "warehouseName": warehouse or None, "availableStock": quantity},
        }

    def put_item(self, fields: dict[str, Any]) -> Record:
        """Create or patch an item by ``no`` through the normal save rules (sandbox helper).

        ``fields["stock"]`` (``{warehouse: quantity}``) sets on-hand quantities directly.
        """
        stock = fields.pop("stock", None) or {}
        no = text(fields.get("no"))
        existing = self.tables["item"].get(no) if no else None
        payload = dict(fields)
        if existing is not None:
            payload["id"] = existing["id"]
        record = self._save(MODULES["item"], payload)
        ck = Check()
        for warehouse, quantity in stock.items():
            if warehouse not in self.tables["warehouse"].by_key:
                ck.fail("warehouse_not_found", field=f"stock.{warehouse}", value=warehouse)
            number = ck.decimal(quantity, f"stock.{warehouse}")
            if number is not None and not ck.errors:
                self.stock[(record["no"], warehouse)] = number
        if ck.errors:
            raise BusinessError(ck.errors)
        return record

    def stock_dump(self, item_no: str = "", warehouse: str = "") -> Record:
        """On-hand and in-transit quantities (sandbox inspection)."""
        rows = [
            {"itemNo": no, "warehouseName": wh, "quantity": qty}
            for (no, wh), qty in sorted(self.stock.items())
            if (not item_no or no == item_no) and (not warehouse or wh == warehouse)
        ]
        transit = [
            {"transferOutNo": out, "itemNo": no, "quantity": qty}
            for out, bucket in sorted(self.in_transit.items())
            for no, qty in sorted(bucket.items())
            if qty and (not item_no or no == item_no)
        ]
        return {"stock": rows, "in_transit": transit}

    # ------------------------------------------------------------------ save / delete core

    def _save(self, spec: ModuleSpec, payload: Any) -> Record:
        module = spec.name
        if spec.kind == "readonly":
            raise BusinessError([Msg("read_only", label=MODULE_LABELS[module])])
        if not isinstance(payload, dict):
            raise BusinessError([Msg("malformed_body", reason="record must be a JSON object")])
        table = self.tables[module]
        existing: Record | None = None
        raw_id = payload.get("id")
        if raw_id not in (None, ""):
            rid = as_int(raw_id)
            existing = table.records.get(rid) if rid is not None else None
            if existing is None:
                raise BusinessError([Msg("not_found", label=MODULE_LABELS[module], param="id", value=raw_id)])
        ck = Check()
        record = self._merge(existing, payload, ck) if existing else dict(payload)
        record.pop("id", None)
        sequence: tuple[str, int] | None = None
        if spec.is_transaction:
            trans_date = self._trans_date(ck, record)
            key = text(record.get("number"))
            if not key:
                key, sequence = self._next_number(
                    table, f"{spec.prefix}.{trans_date.year}.{trans_date.month:02d}."
                )
            record["number"] = key
        else:
            key = text(record.get(spec.key))
            if not key and spec.prefix:
                key, sequence = self._next_number(table, f"{spec.prefix}.")
            elif not key:
                ck.fail("required", field=spec.key)
            record[spec.key] = key
        old_key = existing[spec.key] if existing else None
        if key:
            other = table.by_key.get(key)
            if other is not None and (existing is None or other != existing["id"]):
                if spec.is_transaction:
                    raise BusinessError([Msg("duplicate_number", number=key)])
                raise BusinessError([Msg("duplicate_master", key_label=KEY_LABELS[module], value=key)])
        if existing is not None and old_key != key:
            if module in ("item", "warehouse", "branch"):
                ck.fail("key_immutable", field=spec.key)
            elif self.refs.get((module, str(old_key))):
                ck.fail("in_use", label=MODULE_LABELS[module], value=old_key)
        old_effects = self.effects.get((module, existing["id"]), []) if existing else []
        new_effects = self._validators[module](ck, record, existing, old_effects)
        if not ck.errors:
            self._check_effects(ck, old_effects, new_effects)
        if ck.errors:
            raise BusinessError(ck.errors)
        # ---- commit (nothing below can fail)
        if sequence is not None:
            self._sequences[sequence[0]] = sequence[1]
        rid = existing["id"] if existing else self.new_id()
        stored: Record = {"id": rid, **record}
        stored["optLock"] = (existing.get("optLock", 0) + 1) if existing else 0
        stored["lastUpdate"] = format_timestamp(self.clock.now())
        if spec.is_transaction:  # documents carry createdDate (public clients filter lists on it)
            stored["createdDate"] = (existing or {}).get("createdDate") or stored["lastUpdate"]
        if old_effects:
            self._apply(old_effects, -1)
        if existing is not None and old_key != key:
            table.by_key.pop(str(old_key), None)
        table.records[rid] = stored
        table.by_key[key] = rid
        if new_effects:
            self.effects[(module, rid)] = new_effects
            self._apply(new_effects, 1)
        else:
            self.effects.pop((module, rid), None)
        if module in ("sales-invoice", "purchase-invoice"):
            stored["primeOwing"] = stored["totalAmount"] - self.paid.get((module, key), ZERO)
        if self.on_change is not None:
            self.on_change(module, stored, "WRITE")
        return stored

    def _find(self, spec: ModuleSpec, params: dict[str, Any]) -> Record:
        table = self.tables[spec.name]
        raw_id = params.get("id")
        if raw_id not in (None, ""):
            rid = as_int(raw_id)
            record = table.records.get(rid) if rid is not None else None
            if record is None:
                raise BusinessError(
                    [Msg("not_found", label=MODULE_LABELS[spec.name], param="id", value=raw_id)]
                )
            return record
        key = text(params.get(spec.lookup))
        if not key:
            raise BusinessError([Msg("missing_lookup", params=f"id / {spec.lookup}")])
        record = table.get(key)
        if record is None:
            raise BusinessError(
                [Msg("not_found", label=MODULE_LABELS[spec.name], param=spec.lookup, value=key)]
            )
        return record

    def _delete(self, spec: ModuleSpec, record: Record) -> None:
        module, key, rid = spec.name, record[spec.key], record["id"]
        if self.refs.get((module, key)):
            raise BusinessError([Msg("in_use", label=MODULE_LABELS[module], value=key)])
        old_effects = self.effects.get((module, rid), [])
        ck = Check()
        self._check_effects(ck, old_effects, [])
        if ck.errors:
            raise BusinessError(ck.errors)
        self._apply(old_effects, -1)
        self.effects.pop((module, rid), None)
        table = self.tables[module]
        del table.records[rid]
        table.by_key.pop(key, None)
        if module == "item":
            for stock_key in [k for k in self.stock if k[0] == key]:
                del self.stock[stock_key]
        elif module == "warehouse":
            for stock_key in [k for k in self.stock if k[1] == key]:
                del self.stock[stock_key]
        elif module == "item-transfer":
            self.in_transit.pop(key, None)
        self.paid.pop((module, key), None)
        if self.on_change is not None:
            self.on_change(module, record, "DELETE")

    def _merge(self, existing: Record, payload: Record, ck: Check) -> Record:
        record = dict(existing)
        for name, value in payload.items():
            if name in LINE_FIELDS and isinstance(value, list):
                record[name] = self._merge_lines(existing.get(name) or [], value, name, ck)
            else:
                record[name] = value
        return record

    @staticmethod
    def _merge_lines(old: list[Record], new: list[Any], field: str, ck: Check) -> list[Any]:
        """Update lines by ``id``, append lines without ``id``, drop ``_status: delete`` ones."""
        result: list[Any] = [dict(line) for line in old]
        position = {line.get("id"): index for index, line in enumerate(old)}
        removed: set[int] = set()
        for index, line in enumerate(new):
            if not isinstance(line, dict):
                result.append(line)
                continue
            deleting = text(line.get("_status")).lower() == "delete"
            changes = {k: v for k, v in line.items() if k != "_status"}
            if line.get("id") not in (None, ""):
                line_id = as_int(line["id"])
                at = position.get(line_id)
                if at is None:
                    ck.fail("line_not_found", field=f"{field}[{index}].id", value=line["id"])
                elif deleting:
                    removed.add(at)
                else:
                    result[at].update(changes)
                    result[at]["id"] = line_id
            elif not deleting:
                result.append(changes)
        return [line for index, line in enumerate(result) if index not in removed]

    def _next_number(self, table: Table, base: str) -> tuple[str, tuple[str, int]]:
        counter = self._sequences.get(base, 0)
        while True:
            counter += 1
            candidate = f"{base}{counter:05d}"
            if candidate not in table.by_key:
                return candidate, (base, counter)

    def _trans_date(self, ck: Check, record: Record) -> date:
        raw = record.get("transDate")
        today = self.clock.now().astimezone(JAKARTA).date()
        if raw in (None, ""):
            day = today
        else:
            parsed = parse_date(str(raw))
            if parsed is None:
                ck.fail("bad_date", field="transDate", value=raw)
                parsed = today
            day = parsed
        record["transDate"] = format_date(day)
        return day

    def _check_effects(self, ck: Check, old: list[Effect], new: list[Effect]) -> None:
        """Refuse a change that would over-draw a transit bucket or (if switched on) stock."""
        stock_delta: dict[tuple[str, str], Decimal] = {}
        transit_delta: dict[tuple[str, str], Decimal] = {}
        for effects, sign in ((new, 1), (old, -1)):
            for effect in effects:
                if effect[0] == "stock":
                    key = (effect[1], effect[2])
                    stock_delta[key] = stock_delta.get(key, ZERO) + sign * effect[3]
                elif effect[0] == "transit":
                    key = (effect[1], effect[2])
                    transit_delta[key] = transit_delta.get(key, ZERO) + sign * effect[3]
        for (out_no, item_no), delta in transit_delta.items():
            available = self.in_transit.get(out_no, {}).get(item_no, ZERO)
            if delta < 0 and available + delta < 0:
                ck.fail(
                    "transit_exceeded",
                    field="detailItem",
                    item=item_no,
                    quantity=-delta,
                    out=out_no,
                    available=available,
                )
        if self.settings.refuse_negative_stock:
            for (item_no, warehouse), delta in stock_delta.items():
                if delta < 0:
                    available = self.stock.get((item_no, warehouse), ZERO)
                    if available + delta < 0:
                        ck.fail(
                            "negative_stock",
                            item=item_no,
                            warehouse=warehouse,
                            available=available,
                            needed=-delta,
                        )

    def _apply(self, effects: list[Effect], sign: int) -> None:
        for effect in effects:
            kind = effect[0]
            if kind == "stock":
                key = (effect[1], effect[2])
                self.stock[key] = self.stock.get(key, ZERO) + sign * effect[3]
            elif kind == "transit":
                bucket = self.in_transit.setdefault(effect[1], {})
                bucket[effect[2]] = bucket.get(effect[2], ZERO) + sign * effect[3]
            elif kind == "paid":
                key = (effect[1], effect[2])
                paid = self.paid.get(key, ZERO) + sign * effect[3]
                self.paid[key] = paid
                invoice = self.tables[effect[1]].get(effect[2])
                if invoice is not None:
                    invoice["primeOwing"] = invoice["totalAmount"] - paid
            elif kind == "ref":
                key = (effect[1], effect[2])
                self.refs[key] = self.refs.get(key, 0) + sign

    # ------------------------------------------------------------------ shared field rules

    def _branch(self, ck: Check, record: Record) -> str | None:
        branches = self.tables["branch"]
        name = text(record.get("branchName"))
        if not name:
            if len(branches.records) > 1:
                ck.fail("branch_required")
                return None
            if not branches.records:
                return None
            name = next(iter(branches.records.values()))["name"]
        branch = branches.get(name)
        if branch is None:
            ck.fail("branch_not_found", field="branchName", value=name)
            return None
        record["branchName"] = name
        record["branchId"] = branch["id"]
        return name

    def _party(self, ck: Check, record: Record, module: str, field: str, code: str) -> Record | None:
        number = text(record.get(field))
        if not number:
            ck.fail("required", field=field)
            return None
        party = self.tables[module].get(number)
        if party is None:
            ck.fail(code, field=field, value=number)
            return None
        record[field] = number
        record[module] = {"id": party["id"], field: number, "name": party.get("name")}
        return party

    def _customer(self, ck: Check, record: Record) -> Record | None:
        return self._party(ck, record, "customer", "customerNo", "customer_not_found")

    def _vendor(self, ck: Check, record: Record) -> Record | None:
        return self._party(ck, record, "vendor", "vendorNo", "vendor_not_found")

    def _gl_account(self, ck: Check, record: Record, field: str, required: bool) -> None:
        number = text(record.get(field))
        if not number:
            if required:
                ck.fail("required", field=field)
            return
        if number not in self.tables["glaccount"].by_key:
            ck.fail("glaccount_not_found", field=field, value=number)
        record[field] = number

    def _document(
        self, ck: Check, module: str, number: str, field: str, party_field: str, party: Record | None
    ) -> Record | None:
        """A referenced document of ``module`` that must exist and belong to the same customer/vendor."""
        document = self.tables[module].get(number)
        if document is None:
            ck.fail("document_not_found", field=field, label=MODULE_LABELS[module], value=number)
            return None
        if party is not None and document.get(party_field) != party[party_field]:
            code = "customer_mismatch" if party_field == "customerNo" else "vendor_mismatch"
            other = "customer" if party_field == "customerNo" else "vendor"
            ck.fail(
                code,
                field=field,
                label=MODULE_LABELS[module],
                value=number,
                owner=document.get(party_field),
                **{other: party[party_field]},
            )
            return None
        return document

    def _lines(
        self,
        ck: Check,
        record: Record,
        branch: str | None,
        *,
        price_field: str = "unitPrice",
        price_default: str | None = "unitPrice",
        warehouse: str | None = None,
        inventory_only: bool = False,
    ) -> list[tuple[Record, Record | None]]:
        """Normalise ``detailItem[]``: item, quantity, price, unit, warehouse and line ids."""
        raw = record.get("detailItem")
        if not isinstance(raw, list) or not raw:
            ck.fail("lines_required", field="detailItem")
            record["detailItem"] = []
            return []
        items = self.tables["item"]
        warehouses = self.tables["warehouse"]
        default_warehouse = (
            warehouse or text(record.get("warehouseName")) or self.branch_warehouse.get(branch or "")
        )
        result: list[tuple[Record, Record | None]] = []
        lines: list[Record] = []
        for index, source in enumerate(raw):
            prefix = f"detailItem[{index}]"
            if not isinstance(source, dict):
                ck.fail("malformed_body", reason=f"{prefix} must be an object")
                continue
            line = dict(source)
            item_no = text(line.get("itemNo"))
            item: Record | None = None
            if not item_no:
                ck.fail("required", field=f"{prefix}.itemNo")
            else:
                item = items.get(item_no)
                if item is None:
                    ck.fail("item_not_found", field=f"{prefix}.itemNo", value=item_no)
            quantity = ck.decimal(line.get("quantity"), f"{prefix}.quantity", required=True, positive=True)
            default_price = item.get(price_default, ZERO) if (item is not None and price_default) else ZERO
            price = ck.decimal(line.get(price_field), f"{prefix}.{price_field}", default=default_price)
            unit = text(line.get("itemUnitName"))
            if item is not None:
                unit1 = item.get("unit1Name") or ""
                if unit and unit1 and unit.upper() != unit1.upper():
                    ck.fail(
                        "unit_unknown", field=f"{prefix}.itemUnitName", value=unit, item=item_no, unit=unit1
                    )
                unit = unit1 or unit
                if inventory_only and item.get("itemType") != "INVENTORY":
                    ck.fail("not_inventory", field=f"{prefix}.itemNo", value=item_no)
            line_warehouse = warehouse or text(line.get("warehouseName")) or default_warehouse
            warehouse_record = warehouses.get(line_warehouse) if line_warehouse else None
            if not line_warehouse:
                ck.fail("warehouse_required", field=f"{prefix}.warehouseName")
            elif warehouse_record is None and not warehouse:
                ck.fail("warehouse_not_found", field=f"{prefix}.warehouseName", value=line_warehouse)
            line_id = as_int(line.get("id")) if line.get("id") not in (None, "") else None
            line["id"] = line_id if line_id is not None else self.new_id()
            line["itemNo"] = item_no
            line["quantity"] = quantity
            line[price_field] = price
            line["itemUnitName"] = unit
            line["warehouseName"] = line_warehouse
            if item is not None:
                line["item"] = {"id": item["id"], "no": item_no, "name": item.get("name")}
            if warehouse_record is not None:
                line["warehouse"] = {"id": warehouse_record["id"], "name": line_warehouse}
            lines.append(line)
            result.append((line, item))
        record["detailItem"] = lines
        return result

    def _amounts(self, ck: Check, record: Record, lines: list[tuple[Record, Record | None]]) -> None:
        """Line totals, subtotal, cash discount, PPN and total of a priced document."""
        subtotal = ZERO
        for index, (line, _) in enumerate(lines):
            quantity, price = line.get("quantity"), line.get("unitPrice")
            if quantity is None or price is None:
                continue
            gross = quantity * price
            discount = ck.decimal(line.get("itemCashDiscount"), f"detailItem[{index}].itemCashDiscount")
            if discount is None:
                discount = self._percent_discount(ck, gross, line.get("itemDiscPercent"), index)
            line["totalPrice"] = money(gross - discount)
            subtotal += line["totalPrice"]
        cash_discount = ck.decimal(record.get("cashDiscount"), "cashDiscount", default=ZERO) or ZERO
        taxable = ck.boolean(record.get("taxable"), "taxable")
        inclusive = ck.boolean(record.get("inclusiveTax"), "inclusiveTax")
        net = subtotal - cash_discount
        tax = ZERO
        if taxable:
            tax = (
                money(net * PPN_PERCENT / (HUNDRED + PPN_PERCENT))
                if inclusive
                else money(net * PPN_PERCENT / HUNDRED)
            )
        record["subTotal"] = money(subtotal)
        record["cashDiscount"] = cash_discount
        record["taxable"] = taxable
        record["inclusiveTax"] = inclusive
        record["tax1Amount"] = tax
        record["totalAmount"] = money(net if (inclusive or not taxable) else net + tax)

    @staticmethod
    def _percent_discount(ck: Check, gross: Decimal, value: Any, index: int) -> Decimal:
        if value in (None, ""):
            return ZERO
        factor = Decimal(1)
        for part in str(value).split("+"):
            percent = to_decimal(part)
            if percent is None or percent < 0 or percent > HUNDRED:
                ck.fail("not_a_number", field=f"detailItem[{index}].itemDiscPercent", value=value)
                return ZERO
            factor *= (HUNDRED - percent) / HUNDRED
        return gross * (1 - factor)

    @staticmethod
    def _stock_effects(lines: list[tuple[Record, Record | None]], sign: int) -> list[Effect]:
        return [
            ("stock", line["itemNo"], line["warehouseName"], sign * line["quantity"])
            for line, item in lines
            if item is not None and item.get("itemType") == "INVENTORY" and line.get("quantity") is not None
        ]

    # ------------------------------------------------------------------ master validators

    def _v_customer(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        self._require_name(ck, record)
        if text(record.get("branchName")) and text(record["branchName"]) not in self.tables["branch"].by_key:
            ck.fail("branch_not_found", field="branchName", value=record["branchName"])
        return []

    def _v_vendor(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        self._require_name(ck, record)
        return []

    def _v_item(self, ck: Check, record: Record, existing: Record | None, old: list[Effect]) -> list[Effect]:
        self._require_name(ck, record)
        record["itemType"] = ck.choice(record.get("itemType"), "itemType", ITEM_TYPES, default="INVENTORY")
        record["unit1Name"] = text(record.get("unit1Name")) or "PCS"
        record["unitPrice"] = ck.decimal(record.get("unitPrice"), "unitPrice", default=ZERO)
        record["unitCost"] = ck.decimal(record.get("unitCost"), "unitCost", default=ZERO)
        return []

    @staticmethod
    def _v_named(ck: Check, record: Record, existing: Record | None, old: list[Effect]) -> list[Effect]:
        return []

    @staticmethod
    def _require_name(ck: Check, record: Record) -> None:
        name = text(record.get("name"))
        if not name:
            ck.fail("required", field="name")
        record["name"] = name

    # ------------------------------------------------------------------ transaction validators

    def _v_sales_invoice(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        self._customer(ck, record)
        lines = self._lines(ck, record, branch)
        self._amounts(ck, record, lines)
        return self._stock_effects(lines, -1)

    def _v_sales_receipt(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        self._branch(ck, record)
        customer = self._customer(ck, record)
        self._gl_account(ck, record, "bankNo", required=True)
        raw = record.get("detailInvoice")
        effects: list[Effect] = []
        total = ZERO
        lines: list[Record] = []
        if not isinstance(raw, list) or not raw:
            ck.fail("lines_required", field="detailInvoice")
            raw = []
        for index, source in enumerate(raw):
            prefix = f"detailInvoice[{index}]"
            if not isinstance(source, dict):
                ck.fail("malformed_body", reason=f"{prefix} must be an object")
                continue
            line = dict(source)
            number = text(line.get("invoiceNo"))
            invoice = None
            if not number:
                ck.fail("required", field=f"{prefix}.invoiceNo")
            else:
                invoice = self._document(
                    ck, "sales-invoice", number, f"{prefix}.invoiceNo", "customerNo", customer
                )
            amount = ck.decimal(line.get("paymentAmount"), f"{prefix}.paymentAmount", required=True)
            line["invoiceNo"] = number
            line["paymentAmount"] = amount
            line["id"] = as_int(line.get("id")) or self.new_id()
            if invoice is not None and amount is not None:
                line["invoice"] = {"id": invoice["id"], "number": number}
                effects.append(("paid", "sales-invoice", number, amount))
                effects.append(("ref", "sales-invoice", number))
                total += amount
            lines.append(line)
        record["detailInvoice"] = lines
        record["totalPayment"] = total
        record["chequeAmount"] = ck.decimal(record.get("chequeAmount"), "chequeAmount", default=total)
        return effects

    def _v_sales_return(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        customer = self._customer(ck, record)
        lines = self._lines(ck, record, branch)
        self._amounts(ck, record, lines)
        effects = self._stock_effects(lines, 1)
        number = text(record.get("invoiceNumber"))
        record["returnType"] = text(record.get("returnType")) or ("INVOICE" if number else "NO_INVOICE")
        if number:
            record["invoiceNumber"] = number
            invoice = self._document(ck, "sales-invoice", number, "invoiceNumber", "customerNo", customer)
            if invoice is not None:
                effects.append(("ref", "sales-invoice", number))
                effects.append(("paid", "sales-invoice", number, record["totalAmount"]))
        return effects

    def _v_item_transfer(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        kind = ck.choice(record.get("itemTransferType"), "itemTransferType", ("TRANSFER_OUT", "TRANSFER_IN"))
        record["itemTransferType"] = kind
        warehouses = self.tables["warehouse"]
        warehouse = text(record.get("warehouseName"))
        if not warehouse:
            ck.fail("required", field="warehouseName")
        elif warehouse not in warehouses.by_key:
            ck.fail("warehouse_not_found", field="warehouseName", value=warehouse)
        record["warehouseName"] = warehouse
        other = text(record.get("referenceWarehouseName"))
        number = record["number"]
        if kind == "TRANSFER_OUT":
            if not other:
                ck.fail("required", field="referenceWarehouseName")
            elif other not in warehouses.by_key:
                ck.fail("warehouse_not_found", field="referenceWarehouseName", value=other)
            elif other == warehouse:
                ck.fail("same_warehouse")
            record["referenceWarehouseName"] = other
            lines = self._lines(
                ck, record, branch, price_default=None, warehouse=warehouse, inventory_only=True
            )
            effects = self._stock_effects(lines, -1)
            effects += [
                ("transit", number, line["itemNo"], line["quantity"])
                for line, item in lines
                if item is not None and line.get("quantity") is not None
            ]
            return effects
        if kind != "TRANSFER_IN":
            self._lines(ck, record, branch, price_default=None, warehouse=warehouse)
            return []
        out_no = text(record.get("fromItemTransferNo"))
        transfer_out = None
        if not out_no:
            ck.fail("transfer_out_required")
        else:
            transfer_out = self.tables["item-transfer"].get(out_no)
            if transfer_out is None or transfer_out.get("itemTransferType") != "TRANSFER_OUT":
                ck.fail("transfer_out_missing", value=out_no)
                transfer_out = None
        record["fromItemTransferNo"] = out_no
        if transfer_out is not None:
            expected = transfer_out.get("referenceWarehouseName")
            if warehouse and expected and warehouse != expected:
                ck.fail("transfer_warehouse_mismatch", value=warehouse, out=out_no, expected=expected)
            record["referenceWarehouseName"] = other or transfer_out.get("warehouseName")
        lines = self._lines(ck, record, branch, price_default=None, warehouse=warehouse, inventory_only=True)
        if transfer_out is None:
            return []
        available = dict(self.in_transit.get(out_no, {}))
        for effect in old:  # this document's own earlier receipt is given back before re-checking
            if effect[0] == "transit" and effect[1] == out_no:
                available[effect[2]] = available.get(effect[2], ZERO) - effect[3]
        wanted: dict[str, Decimal] = {}
        effects = [("ref", "item-transfer", out_no)]
        for index, (line, item) in enumerate(lines):
            quantity = line.get("quantity")
            if item is None or quantity is None:
                continue
            item_no = line["itemNo"]
            wanted[item_no] = wanted.get(item_no, ZERO) + quantity
            left = available.get(item_no, ZERO)
            if wanted[item_no] > left:
                ck.fail(
                    "transit_exceeded",
                    field=f"detailItem[{index}].quantity",
                    item=item_no,
                    quantity=wanted[item_no],
                    out=out_no,
                    available=left,
                )
            effects.append(("stock", item_no, warehouse, quantity))
            effects.append(("transit", out_no, item_no, -quantity))
        return effects

    def _v_item_adjustment(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        self._gl_account(ck, record, "adjustmentAccountNo", required=True)
        lines = self._lines(
            ck, record, branch, price_field="unitCost", price_default="unitCost", inventory_only=True
        )
        effects: list[Effect] = []
        for index, (line, item) in enumerate(lines):
            kind = ck.choice(
                line.get("itemAdjustmentType"),
                f"detailItem[{index}].itemAdjustmentType",
                ("ADJUSTMENT_IN", "ADJUSTMENT_OUT"),
            )
            line["itemAdjustmentType"] = kind
            if item is not None and kind and line.get("quantity") is not None:
                sign = 1 if kind == "ADJUSTMENT_IN" else -1
                effects.append(("stock", line["itemNo"], line["warehouseName"], sign * line["quantity"]))
        return effects

    def _v_purchase_order(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        self._vendor(ck, record)
        lines = self._lines(ck, record, branch, price_default="unitCost")
        self._amounts(ck, record, lines)
        # Assumption (Accurate documents no field for it): a purchase order is closed by hand with
        # ``manualClosed: true`` on save.do, and answers ``status`` OPEN or CLOSED.
        closed = record.get("manualClosed", False)
        if not isinstance(closed, bool):
            ck.fail("malformed_body", reason="manualClosed must be true or false")
        record["manualClosed"] = closed is True
        record["status"] = "CLOSED" if closed is True else "OPEN"
        return []

    def _purchase_refs(
        self, ck: Check, lines: list[tuple[Record, Record | None]], vendor: Record | None, header: Record
    ) -> tuple[list[Effect], set[int]]:
        """Check the ``purchaseOrderNumber``/``receiveItemNumber`` of lines; answer the received lines."""
        effects: list[Effect] = []
        received: set[int] = set()
        for index, (line, _) in enumerate(lines):
            for field, module in (
                ("purchaseOrderNumber", "purchase-order"),
                ("receiveItemNumber", "receive-item"),
            ):
                number = text(line.get(field)) or (
                    text(header.get(field)) if field == "purchaseOrderNumber" else ""
                )
                if not number:
                    continue
                line[field] = number
                if self._document(ck, module, number, f"detailItem[{index}].{field}", "vendorNo", vendor):
                    effects.append(("ref", module, number))
                    if module == "receive-item":
                        received.add(index)
        return effects, received

    def _v_receive_item(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        vendor = self._vendor(ck, record)
        if not text(record.get("receiveNumber")):
            ck.fail("required", field="receiveNumber")
        lines = self._lines(ck, record, branch, price_default="unitCost")
        effects, _ = self._purchase_refs(ck, lines, vendor, record)
        return self._stock_effects(lines, 1) + effects

    def _v_purchase_invoice(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        vendor = self._vendor(ck, record)
        lines = self._lines(ck, record, branch, price_default="unitCost")
        self._amounts(ck, record, lines)
        effects, received = self._purchase_refs(ck, lines, vendor, record)
        stocked = [pair for index, pair in enumerate(lines) if index not in received]
        return self._stock_effects(stocked, 1) + effects

    def _v_purchase_return(
        self, ck: Check, record: Record, existing: Record | None, old: list[Effect]
    ) -> list[Effect]:
        branch = self._branch(ck, record)
        vendor = self._vendor(ck, record)
        lines = self._lines(ck, record, branch, price_default="unitCost")
        self._amounts(ck, record, lines)
        effects = self._stock_effects(lines, -1)
        number = text(record.get("invoiceNumber"))
        if number:
            record["invoiceNumber"] = number
            if self._document(ck, "purchase-invoice", number, "invoiceNumber", "vendorNo", vendor):
                effects.append(("ref", "purchase-invoice", number))
                effects.append(("paid", "purchase-invoice", number, record["totalAmount"]))
        return effects

    # ------------------------------------------------------------------ seeding

    def _insert(self, module: str, fields: Record) -> Record:
        spec = MODULES[module]
        record = {"id": self.new_id(), **fields, "optLock": 0, "lastUpdate": SEED_TIMESTAMP}
        if spec.is_transaction:
            record["createdDate"] = SEED_TIMESTAMP
        table = self.tables[module]
        table.records[record["id"]] = record
        table.by_key[record[spec.key]] = record["id"]
        return record

    def _seed_from(self, shop: DemoShop) -> None:
        """Branches, warehouses, items, stock, customers, vendors, GL accounts and purchase orders."""
        for outlet in shop.outlets:
            if outlet.branch_name not in self.tables["branch"].by_key:
                self._insert("branch", {"name": outlet.branch_name})
            self.branch_warehouse.setdefault(outlet.branch_name, outlet.warehouse_name)
            if outlet.warehouse_name not in self.tables["warehouse"].by_key:
                self._insert(
                    "warehouse",
                    {"name": outlet.warehouse_name, "description": outlet.name, "suspended": False},
                )
        for product in shop.products:
            if product.sku and product.in_accurate:
                self._insert(
                    "item",
                    {
                        "no": product.sku,
                        "name": product.name,
                        "itemType": "INVENTORY",
                        "unit1Name": product.unit,
                        "unitPrice": product.price,
                        "unitCost": product.buying_price,
                        "upcNo": product.barcode,
                        "suspended": False,
                    },
                )
        warehouse_of = {o.outlet_id: o.warehouse_name for o in shop.outlets}
        items = self.tables["item"].by_key
        for (sku, outlet_id), quantity in sorted(shop.opening_stock.items()):
            if sku in items:
                self.stock[(sku, warehouse_of[outlet_id])] = quantity
        self._insert("customer", {"customerNo": shop.walk_in_customer_no, "name": "Pelanggan Umum"})
        for customer in shop.customers:
            if customer.in_accurate and customer.customer_number:
                self._insert(
                    "customer",
                    {
                        "customerNo": customer.customer_number,
                        "name": f"{customer.first_name} {customer.last_name}",
                        "email": customer.email,
                        "mobilePhone": customer.phone,
                    },
                )
        for vendor in shop.vendors:
            self._insert("vendor", {"vendorNo": vendor.vendor_no, "name": vendor.name})
        for number, name in shop.gl_accounts.items():
            self._insert("glaccount", {"no": number, "name": name, "accountType": _account_type(number)})
        self._seed_purchase_orders(shop)

    def _seed_purchase_orders(self, shop: DemoShop) -> None:
        rng = random.Random(f"accurate-purchase-orders-{shop.seed}")
        central = next(o for o in shop.outlets if o.is_warehouse)
        item_numbers = list(self.tables["item"].by_key)
        start = date(2026, 11, 10)
        counter = 0
        for vendor in shop.vendors:
            for _ in range(2):
                counter += 1
                lines = [
                    {"itemNo": no, "quantity": Decimal(rng.randrange(2, 11) * 5)}
                    for no in rng.sample(item_numbers, 3)
                ]
                record = self._save(
                    MODULES["purchase-order"],
                    {
                        "number": f"PO.2026.11.{counter:05d}",
                        "transDate": format_date(start + timedelta(days=counter)),
                        "vendorNo": vendor.vendor_no,
                        "branchName": central.branch_name,
                        "warehouseName": central.warehouse_name,
                        "description": f"Pesanan pembelian demo {counter}",
                        "detailItem": lines,
                    },
                )
                record["lastUpdate"] = SEED_TIMESTAMP


def _account_type(number: str) -> str:
    if number.startswith(("1101", "1102")):
        return "CASH_BANK"
    if number.startswith(("1103", "1104")):
        return "ACCOUNT_RECEIVABLE"
    if number.startswith("4"):
        return "REVENUE"
    if number.startswith("5"):
        return "COGS"
    return "OTHER"
