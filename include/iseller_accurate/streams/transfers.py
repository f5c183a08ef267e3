"""Transfers: iSeller transfers between outlets (the warehouse outlet included) -> Accurate item transfers.

What maps to what (each outlet's Accurate ``branch`` and ``warehouse`` come from the settings):

- **transfer out** ``TO/<transfer number>`` (``TRF-WH01-0004`` -> ``TO/TRF-WH01-0004``): an
  ``item-transfer`` of type ``TRANSFER_OUT`` dated when the goods were sent, from the source outlet's
  warehouse (``warehouseName``, branch of the source) to the destination's (``referenceWarehouseName``).
  In Accurate the goods are then in transit.
- **transfer in** ``TI/<transfer number>``: ``TRANSFER_IN`` dated when received, into the destination
  outlet's warehouse, naming its transfer out in ``fromItemTransferNo``. It needs the transfer out in
  Accurate first, so it waits for it (``blocked`` with the transfer out's reason while that fails).
- **transfer difference** ``TD/<transfer number>``: when fewer units were received than sent (a partial
  receipt), the transfer in still takes every sent unit out of transit (Accurate has no other way to
  empty it) and an ``item-adjustment`` ``ADJUSTMENT_OUT`` books the missing units out of the
  destination's warehouse on the destination outlet's ``adjustment_account``. Net effect in Accurate:
  the source lost what was sent, the destination gained what arrived, nothing stays in transit.
  Without an ``adjustment_account`` for the destination, the transfer in fails with that reason (and
  nothing is half-booked). Receiving more than was sent is refused with a reason.

A transfer still on its way (``sent``) gives only its transfer out; the transfer in follows once it is
received (the transfer's modified date moves, so the next window reads it again). Transfers of type
``in``/``out`` (goods from/to suppliers) are not sent: they are created in iSeller by this project from
Accurate purchases, and sending them back would count them twice. Two outlets mapped to the same
Accurate warehouse move nothing in Accurate: their transfers are ``skipped`` with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from include.iseller_accurate.checks import FieldProblem, Reader, storable
from include.iseller_accurate.jsonutil import to_jsonable
from include.iseller_accurate.kinds import TRANSFER_DIFFERENCE, TRANSFER_IN, TRANSFER_OUT, TRANSFER_TYPES
from include.iseller_accurate.ledger import DONE, Document
from include.iseller_accurate.pipeline import ExtractContext, MapContext, Stream
from include.iseller_accurate.settings import OutletMapping, SyncSettings
from include.iseller_accurate.streams.common import (
    SETTINGS_PATH,
    UNIT_COST_FIELD,
    accurate_date,
    attach_unit_costs,
    decimal_of,
    first_time,
    line_list,
    no_sku_reason,
    outlet_label,
    parse_time,
    read_line,
    readable_records,
    safe_decimal,
    safe_identifier,
    source_fields,
    unmapped_reason,
)

ZERO = Decimal(0)


class TransfersStream(Stream):
    """iSeller outlet-to-outlet transfers sent or received in the run's window."""

    name = "transfers"
    data_types = TRANSFER_TYPES
    key_field = "transfer_id"
    record_name = "transfer"
    #: Mapped as one batch: the documents are stored in sent order across the whole window.
    map_chunk = None

    def ignores(self, record: Any) -> bool:
        """Supplier transfers and transfers not sent yet give no document: no ledger row."""
        if not isinstance(record, dict):
            return False
        kind, status = (str(record.get(k) or d).lower() for k, d in (("type", "outlet"), ("status", "")))
        return kind != "outlet" or status not in ("sent", "received")

    def unreadable_type(self, record: Any) -> tuple[str, str, str]:
        received = isinstance(record, dict) and str(record.get("status") or "").lower() == "received"
        # a received transfer's transfer out may be synced already: the failure must show on its in
        kind = TRANSFER_IN if received else TRANSFER_OUT
        return kind.data_type, kind.module, ""

    # -- extract -------------------------------------------------------------------------------
    def extract(self, ctx: ExtractContext) -> list[dict[str, Any]]:
        """Transfers between outlets modified (sent or received) in the window, except those whose
        documents are all in Accurate already (windows overlap)."""
        transfers = list(
            ctx.iseller.get_transfers(
                transfer_type="outlet", modified_after=ctx.window_start, modified_before=ctx.window_end
            )
        )
        if ctx.ledger is not None and transfers:
            wanted = {str(t["transfer_id"]): _document_types(t) for t in transfers}
            known = ctx.ledger.known([(kind, tid) for tid, kinds in wanted.items() for kind in kinds])
            transfers = [
                t
                for t in transfers
                if any(
                    known.get((kind, str(t["transfer_id"]))) not in DONE
                    for kind in wanted[str(t["transfer_id"])]
                )
            ]
        return self._with_costs(ctx, transfers)

    def refetch(self, ctx: ExtractContext, source_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Re-read transfers by id, for the sync refresh."""
        transfers: list[dict[str, Any]] = []
        for transfer_id in source_keys:
            transfers.extend(ctx.iseller.get_transfers(transfer_type="outlet", transfer_id=transfer_id))
        return self._with_costs(ctx, transfers)

    @staticmethod
    def _with_costs(ctx: ExtractContext, transfers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attach unit costs to partially received transfers (their difference is an adjustment)."""
        short = [t for t in transfers if _shortages(t)]
        if short:
            attach_unit_costs(ctx.iseller, short, _lines)
        return transfers

    # -- map -----------------------------------------------------------------------------------
    def map(self, records: list[dict[str, Any]], ctx: MapContext) -> list[Document]:
        """Transfer out, transfer in and difference documents (see the module docstring)."""
        readable, documents = readable_records(self, records)
        ordered = sorted(readable, key=lambda t: (str(t.get("sent_date") or ""), str(t.get("transfer_id"))))
        for transfer in ordered:
            if str(transfer.get("type") or "outlet").lower() != "outlet":
                continue  # supplier goods in/out come from Accurate: never sent back
            documents.extend(map_transfer(transfer, ctx.settings))
        return documents


def _document_types(transfer: dict[str, Any]) -> list[str]:
    """The ledger data types a transfer gives in its current state."""
    if str(transfer.get("status") or "").lower() != "received":
        return [TRANSFER_OUT.data_type]
    return list(TRANSFER_TYPES if _shortages(transfer) else TRANSFER_TYPES[:2])


def _lines(transfer: dict[str, Any]) -> list[dict[str, Any]]:
    return list(transfer.get("products") or transfer.get("lines") or [])


def _shortages(transfer: dict[str, Any]) -> dict[int, Decimal]:
    """Per line position (from 1), units sent but not received, for a received transfer."""
    if str(transfer.get("status") or "").lower() != "received":
        return {}
    missing = {}
    for position, line in enumerate(_lines(transfer), start=1):
        if not isinstance(line, dict) or line.get("received_quantity") is None:
            continue
        sent, received = safe_decimal(line.get("quantity")), safe_decimal(line.get("received_quantity"))
        if sent is None or received is None:
            continue  # mapping fails the transfer, naming the field
        gap = sent - received
        if gap > 0:
            missing[position] = gap
    return missing


def _line_problem(transfer: dict[str, Any], *, receiving: bool) -> str | None:
    lines = _lines(transfer)
    if not lines:
        return "the transfer has no lines"
    for position, line in enumerate(lines, start=1):
        name = line.get("product_name") or line.get("product_id")
        if not str(line.get("sku") or "").strip():
            return no_sku_reason(position, name)
        quantity = decimal_of(line.get("quantity"))
        if quantity <= 0:
            return f"line {position} ({name}) has quantity {quantity}; correct the transfer in iSeller"
        if receiving:
            received = decimal_of(line.get("received_quantity"))
            if received > quantity:
                return (
                    f"line {position} ({name}) received {received} but only {quantity} were sent; Accurate"
                    " cannot take more out of transit than was sent: correct the receipt in iSeller, then"
                    " refresh"
                )
            if received < 0:
                return f"line {position} ({name}) received {received}; correct the receipt in iSeller"
    return None


def transfer_numbers(transfer: dict[str, Any]) -> tuple[str, str, str]:
    """The Accurate numbers of a transfer's out, in and difference documents."""
    number = str(transfer.get("transfer_number") or transfer["transfer_id"]).strip()
    return TRANSFER_OUT.number(number), TRANSFER_IN.number(number), TRANSFER_DIFFERENCE.number(number)


def map_transfer(raw: dict[str, Any], settings: SyncSettings) -> list[Document]:
    """The ledger documents of one iSeller transfer between outlets; a value that cannot be used
    fails the transfer's documents (and only those) with the reason."""
    reader = Reader(_transfer_label(raw, settings))
    try:
        transfer = _read_transfer(raw, settings, reader)
    except FieldProblem as problem:
        return _failed_transfer(raw, f"{reader.label}: {problem}")
    documents = _map_transfer(transfer, settings)
    for doc in documents:
        doc.cleaned = list(reader.cleaned)
    return documents


def _transfer_label(raw: dict[str, Any], settings: SyncSettings) -> str:
    """``transfer <number> (<from> to <to>)`` from whatever of it is readable."""
    def safe(name: str) -> str:
        return safe_identifier(raw, name)

    number = safe("transfer_number") or safe("transfer_id")
    source_id, target_id = safe("from_outlet_id"), safe("to_outlet_id")
    source = outlet_label(source_id, safe("from_outlet_code"), settings.outlet(source_id))
    target = outlet_label(target_id, safe("to_outlet_code"), settings.outlet(target_id))
    return f"transfer {number} ({source} to {target})"


def _read_transfer(raw: dict[str, Any], settings: SyncSettings, reader: Reader) -> dict[str, Any]:
    """A copy of a transfer with every value the mapping uses checked (see ``checks``)."""
    limits = settings.limits
    transfer = dict(raw)
    reader.at("")
    for name in ("transfer_id", "transfer_number", "status", "from_outlet_id", "to_outlet_id"):
        if name in raw:
            transfer[name] = reader.text(raw.get(name), name, identifier=True, required=name == "transfer_id")
    for name in ("from_outlet_code", "to_outlet_code"):
        if name in raw:
            transfer[name] = reader.text(raw.get(name), name)
    for name in ("sent_date", "created_date", "received_date"):
        if name in raw:
            transfer[name] = reader.moment(raw.get(name), name)
    key = "products" if raw.get("products") else "lines"
    clean_lines = []
    costs = raw.get("_unit_costs") or {}
    clean_costs: dict[str, Decimal] = {}
    for position, line in enumerate(line_list(reader, raw.get(key), key), start=1):
        clean = read_line(reader, line, position, key, ("product_name", "product_id"))
        clean["quantity"] = reader.quantity(line.get("quantity"), "quantity", limits)
        if line.get("received_quantity") is not None:
            clean["received_quantity"] = reader.number(
                line.get("received_quantity"),
                "received_quantity",
                negative=True,
                maximum=limits.max_line_quantity,
                limit_name="limits.max_line_quantity",
            )
        if clean["sku"] in costs:
            clean_costs[clean["sku"]] = reader.number(costs[clean["sku"]], UNIT_COST_FIELD)
        clean_lines.append(clean)
    transfer.pop("lines", None)
    transfer["products"] = clean_lines
    if "_unit_costs" in raw:
        transfer["_unit_costs"] = clean_costs
    reader.at("")
    return transfer


def _failed_transfer(raw: dict[str, Any], reason: str) -> list[Document]:
    """The transfer out (and transfer in, once received) of a transfer that cannot be read."""
    transfer_id = TransfersStream().record_key(raw)
    number = safe_identifier(raw, "transfer_number") or transfer_id
    received = str(raw.get("status") or "").lower() == "received"
    when = first_time(raw, ("sent_date", "created_date", "modified_date"))
    source = source_fields(raw)
    documents = []
    for kind in (TRANSFER_OUT, TRANSFER_IN) if received else (TRANSFER_OUT,):
        documents.append(
            kind.document(
                transfer_id,
                kind.number(number),
                source_key=transfer_id,
                source_number=number,
                source_date=when,
                source=source,
                status="failed",
                reason=reason,
            )
        )
    return documents


def _map_transfer(transfer: dict[str, Any], settings: SyncSettings) -> list[Document]:
    """The ledger documents of one checked transfer."""
    transfer_id = str(transfer["transfer_id"])
    number = str(transfer.get("transfer_number") or transfer_id)
    out_no, in_no, diff_no = transfer_numbers(transfer)
    status = str(transfer.get("status") or "").lower()
    sent = (
        parse_time(transfer.get("sent_date")) or parse_time(transfer.get("created_date")) or datetime.now(UTC)
    )
    received = parse_time(transfer.get("received_date"))
    source_id, target_id = str(transfer.get("from_outlet_id") or ""), str(transfer.get("to_outlet_id") or "")
    source_map, target_map = settings.outlet(source_id), settings.outlet(target_id)
    source_name = outlet_label(source_id, transfer.get("from_outlet_code"), source_map)
    target_name = outlet_label(target_id, transfer.get("to_outlet_code"), target_map)
    fields = source_fields(transfer)
    record = to_jsonable(storable(fields, "source", strict=False)[0])
    label = f"transfer {number} ({source_name} to {target_name})"
    route = f"{source_name} ke {target_name}"
    base: dict[str, Any] = {"source_key": transfer_id, "source_number": number, "source": record}

    if status not in ("sent", "received"):
        return []  # not sent yet (draft) or not a stock movement
    transfer_out = TRANSFER_OUT.document(
        transfer_id,
        source_date=sent,
        number=out_no,
        outlet_id=source_id,
        **base,
    )
    documents = [transfer_out]
    is_received = status == "received" and received is not None
    transfer_in = None
    if is_received:
        assert received is not None
        transfer_in = TRANSFER_IN.document(
            transfer_id,
            source_date=received,
            number=in_no,
            outlet_id=target_id,
            requires=[transfer_out.key],
            refs={"fromItemTransferNo": transfer_out.key},
            **base,
        )
        documents.append(transfer_in)

    problem = None
    if source_map is None:
        problem = unmapped_reason(source_id, transfer.get("from_outlet_code"))
    elif target_map is None:
        problem = unmapped_reason(target_id, transfer.get("to_outlet_code"))
    if problem is None and source_map is not None and target_map is not None:
        if source_map.warehouse == target_map.warehouse:
            for doc in documents:
                doc.status = "skipped"
                doc.reason = (
                    f"{label}: both outlets use Accurate warehouse {source_map.warehouse}, so nothing moves"
                    " in Accurate"
                )
            return documents
    if problem is not None:
        for doc in documents:
            doc.status, doc.reason = "failed", f"{label}: {problem}"
        return documents
    assert source_map is not None and target_map is not None

    out_problem = _line_problem(transfer, receiving=False)
    if out_problem:
        transfer_out.status, transfer_out.reason = "failed", f"{label}: {out_problem}"
    else:
        transfer_out.payload = {
            "number": out_no,
            "itemTransferType": "TRANSFER_OUT",
            "transDate": accurate_date(sent, settings),
            "branchName": source_map.branch,
            "warehouseName": source_map.warehouse,
            "referenceWarehouseName": target_map.warehouse,
            "description": f"Transfer iSeller {number}: {route} (dikirim)",
            "detailItem": _sent_lines(transfer),
        }
    if transfer_in is None:
        return documents

    assert received is not None
    in_problem = _line_problem(transfer, receiving=True)
    shortages = _shortages(transfer) if not in_problem else {}
    if shortages and not target_map.adjustment_account:
        lines = _lines(transfer)
        detail = ", ".join(
            f"{lines[p - 1].get('sku')}: {decimal_of(lines[p - 1].get('received_quantity'))} of"
            f" {decimal_of(lines[p - 1].get('quantity'))}"
            for p in sorted(shortages)
        )
        in_problem = (
            f"received short ({detail}); the missing units are booked as an item adjustment out of"
            f" {target_map.warehouse}, which needs adjustment_account under {SETTINGS_PATH}.{target_id}"
            " in the settings Variable; add it, then refresh"
        )
    if in_problem:
        transfer_in.status, transfer_in.reason = "failed", f"{label}: {in_problem}"
        return documents
    transfer_in.payload = {
        "number": in_no,
        "itemTransferType": "TRANSFER_IN",
        "transDate": accurate_date(received, settings),
        "branchName": target_map.branch,
        "warehouseName": target_map.warehouse,
        "referenceWarehouseName": source_map.warehouse,
        "fromItemTransferNo": out_no,
        "description": f"Transfer iSeller {number}: {route} (diterima)",
        # Every sent unit leaves transit; a shortage is booked out by the difference document.
        "detailItem": _sent_lines(transfer),
    }
    if shortages:
        documents.append(
            _difference(transfer, settings, target_map, shortages, transfer_in, diff_no, route, base)
        )
    return documents


def _sent_lines(transfer: dict[str, Any]) -> list[dict[str, Any]]:
    """Accurate item transfer lines of every unit sent (the transfer out's and the transfer in's)."""
    return [
        {
            "itemNo": str(line["sku"]).strip(),
            "quantity": decimal_of(line.get("quantity")),
            "detailNotes": str(line.get("product_name") or ""),
        }
        for line in _lines(transfer)
    ]


def _difference(
    transfer: dict[str, Any],
    settings: SyncSettings,
    target: OutletMapping,
    shortages: dict[int, Decimal],
    transfer_in: Document,
    number: str,
    route: str,
    base: dict[str, Any],
) -> Document:
    lines = _lines(transfer)
    costs = transfer.get("_unit_costs") or {}
    detail = []
    for position in sorted(shortages):
        line = lines[position - 1]
        sku = str(line["sku"]).strip()
        entry: dict[str, Any] = {
            "itemAdjustmentType": "ADJUSTMENT_OUT",
            "itemNo": sku,
            "quantity": shortages[position],
            "warehouseName": target.warehouse,
            "detailNotes": f"dikirim {decimal_of(line.get('quantity'))},"
            f" diterima {decimal_of(line.get('received_quantity'))}",
        }
        if sku in costs:
            entry["unitCost"] = decimal_of(costs[sku])
        detail.append(entry)
    transfer_number = str(transfer.get("transfer_number") or transfer["transfer_id"])
    return TRANSFER_DIFFERENCE.document(
        str(transfer["transfer_id"]),
        source_date=transfer_in.source_date,
        number=number,
        outlet_id=transfer_in.outlet_id,
        requires=[transfer_in.key],
        payload={
            "number": number,
            "transDate": accurate_date(transfer_in.source_date, settings),
            "branchName": target.branch,
            "adjustmentAccountNo": target.adjustment_account,
            "description": f"Selisih penerimaan transfer iSeller {transfer_number}: {route}",
            "detailItem": detail,
        },
        **base,
    )
