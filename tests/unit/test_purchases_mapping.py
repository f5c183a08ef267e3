"""Pure mapping of Accurate purchase documents and webhook events (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from include.iseller_accurate.purchases.events import (
    DeliveryError,
    document_entries,
    parse_delivery,
    parse_event,
    parse_event_timestamp,
)
from include.iseller_accurate.purchases.maintenance import history_window
from include.iseller_accurate.purchases.mapping import (
    PURCHASE_INVOICE,
    PURCHASE_RETURN,
    RECEIVE_ITEM,
    EventOutcome,
    MappingProblem,
    applied_stock,
    base_quantity,
    combine,
    next_codes,
    plan_transfers,
    reference_base,
    stock_difference,
    stock_lines,
    supplier_name,
    target_stock,
    transfer_payload,
    warehouse_outlets,
)
from include.iseller_accurate.purchases.store import TransferRow
from include.iseller_accurate.settings import parse_settings

SETTINGS = parse_settings(
    {
        "outlets": {
            "o-kemang": {"branch": "Cabang Jakarta", "warehouse": "Gudang Kemang"},
            "o-dago": {"branch": "Cabang Bandung", "warehouse": "Gudang Dago"},
            "o-online": {"branch": "Cabang Online", "warehouse": "Gudang Bersama"},
            "o-popup": {"branch": "Cabang Online", "warehouse": "Gudang Bersama"},
        }
    }
)
WAREHOUSES = warehouse_outlets(SETTINGS)
CODES = {"o-kemang": "JKT01", "o-dago": "BDG01"}


def doc(*lines: dict, **header) -> dict:
    return {
        "id": 9,
        "number": "RI.2026.11.00007",
        "warehouseName": "Gudang Kemang",
        "detailItem": list(lines),
        **header,
    }


def test_warehouse_mapping_is_the_settings_read_backwards():
    assert WAREHOUSES == {
        "Gudang Kemang": ["o-kemang"],
        "Gudang Dago": ["o-dago"],
        "Gudang Bersama": ["o-online", "o-popup"],
    }


def test_lines_take_nested_fields_header_warehouse_and_base_units():
    lines = stock_lines(
        RECEIVE_ITEM,
        doc(
            {"item": {"no": "BRG-0001", "name": "Kopi"}, "quantity": 2},
            {"itemNo": "BRG-0002", "quantity": "3", "unitRatio": 12, "warehouse": {"name": "Gudang Dago"}},
            {"itemNo": "BRG-0003", "quantity": 1, "quantityDefault": "24.5", "warehouseName": "Gudang Dago"},
            {"itemNo": "BRG-0004", "quantity": 0},
        ),
    )
    assert [(x.sku, x.warehouse, x.quantity) for x in lines] == [
        ("BRG-0001", "Gudang Kemang", Decimal(2)),
        ("BRG-0002", "Gudang Dago", Decimal(36)),
        ("BRG-0003", "Gudang Dago", Decimal("24.5")),
    ]
    assert lines[0].name == "Kopi"
    assert base_quantity({"quantity": "1.5"}) == Decimal("1.5")


def test_invoice_lines_received_with_a_receive_item_move_no_stock():
    lines = stock_lines(
        PURCHASE_INVOICE,
        doc(
            {"itemNo": "BRG-0001", "quantity": 2, "receiveItemNumber": "RI.1"},
            {"itemNo": "BRG-0002", "quantity": 1, "receiveItem": {"number": "RI.2"}},
            {"itemNo": "BRG-0003", "quantity": 5},
        ),
    )
    assert [x.sku for x in lines] == ["BRG-0003"]


def test_bad_lines_are_reported_together():
    with pytest.raises(MappingProblem) as problem:
        stock_lines(RECEIVE_ITEM, doc({"quantity": 1}, {"itemNo": "X", "quantity": "abc"}, warehouseName=""))
    text = str(problem.value)
    assert "line 1 has no item number" in text and "line 1 has no warehouse" in text
    assert "line 2 (X) has no valid quantity" in text


def test_target_stock_signs_and_sums_per_outlet_and_sku():
    target, names = target_stock(
        PURCHASE_RETURN,
        doc(
            {"itemNo": "A", "quantity": 2, "detailName": "Apel"},
            {"itemNo": "A", "quantity": 1},
            {"itemNo": "B", "quantity": 4, "warehouseName": "Gudang Dago"},
        ),
        WAREHOUSES,
    )
    assert target == {("o-kemang", "A"): Decimal(-3), ("o-dago", "B"): Decimal(-4)}
    assert names == {"A": "Apel", "B": ""}


def test_unmapped_and_ambiguous_warehouses_fail_with_reasons():
    with pytest.raises(MappingProblem) as problem:
        target_stock(
            RECEIVE_ITEM,
            doc(
                {"itemNo": "A", "quantity": 1, "warehouseName": "Gudang Baru"},
                {"itemNo": "B", "quantity": 1, "warehouseName": "Gudang Bersama"},
                {"itemNo": "C", "quantity": 1, "warehouseName": "Gudang Baru"},
            ),
            WAREHOUSES,
        )
    text = str(problem.value)
    assert text.count("Gudang Baru") == 1 and "is not mapped to an iSeller outlet" in text
    assert "mapped to several iSeller outlets (o-online, o-popup)" in text


def _row(code: str, kind: str, lines: list[tuple[str, str]], outlet: str = "o-kemang") -> TransferRow:
    return TransferRow(
        1,
        code,
        "receive-item",
        9,
        "RI.1",
        outlet,
        CODES[outlet],
        kind,
        [{"sku": s, "quantity": q} for s, q in lines],
        "created",
    )


def test_difference_against_what_iseller_already_holds():
    held = applied_stock(
        [_row("ACC-RI-RI.1", "in", [("A", "5"), ("B", "2")]), _row("ACC-RI-RI.1-2", "out", [("A", "1")])]
    )
    assert held == {("o-kemang", "A"): Decimal(4), ("o-kemang", "B"): Decimal(2)}
    target = {("o-kemang", "A"): Decimal(4), ("o-dago", "C"): Decimal(1)}
    assert stock_difference(target, held) == {("o-kemang", "B"): Decimal(-2), ("o-dago", "C"): Decimal(1)}
    assert stock_difference(held, held) == {}


def test_plans_are_deterministic_one_per_outlet_and_direction_with_free_codes():
    difference = {
        ("o-kemang", "B"): Decimal(-2),
        ("o-kemang", "A"): Decimal(3),
        ("o-kemang", "C"): Decimal(1),
        ("o-dago", "C"): Decimal(1),
    }
    plans = plan_transfers(RECEIVE_ITEM, 9, "RI.1", difference, CODES, {"ACC-RI-RI.1", "ACC-RI-RI.1-3"})
    assert [(p.reference_code, p.outlet_code, p.transfer_type, p.lines) for p in plans] == [
        ("ACC-RI-RI.1-2", "BDG01", "in", [{"sku": "C", "quantity": Decimal(1)}]),
        (
            "ACC-RI-RI.1-4",
            "JKT01",
            "in",
            [{"sku": "A", "quantity": Decimal(3)}, {"sku": "C", "quantity": Decimal(1)}],
        ),
        ("ACC-RI-RI.1-5", "JKT01", "out", [{"sku": "B", "quantity": Decimal(2)}]),
    ]
    assert next_codes("X", set(), 2) == ["X", "X-2"]
    assert reference_base(PURCHASE_RETURN, "PRT.7") == "ACC-PRT-PRT.7"


def test_create_transfer_payload():
    (plan,) = plan_transfers(RECEIVE_ITEM, 9, "RI.1", {("o-dago", "A"): Decimal("2.5")}, CODES, set())
    assert transfer_payload(plan, "PT Sumber", RECEIVE_ITEM) == {
        "outlet_code": "BDG01",
        "type": "in",
        "status": "completed",
        "reference_code": "ACC-RI-RI.1",
        "products": [{"sku": "A", "quantity": Decimal("2.5")}],
        "tags": ["accurate", "receive-item"],
        "supplier_name": "PT Sumber",
    }
    assert supplier_name({"vendor": {"name": "PT A"}, "vendorNo": "V.1"}) == "PT A"
    assert supplier_name({"vendorNo": "V.1"}) == "V.1"
    assert supplier_name({}) is None


def test_combined_outcome_of_an_event_with_several_documents():
    assert combine([EventOutcome("done", None, ["a"]), EventOutcome("ignored", "x")]).status == "done"
    assert combine([EventOutcome("ignored", "x"), EventOutcome("ignored", "y")]).reason == "x; y"
    failed = combine(
        [
            EventOutcome("done", None, ["a"]),
            EventOutcome("failed", "no sku", transient=False),
            EventOutcome("failed", "down", transient=True),
        ]
    )
    assert (failed.status, failed.reason, failed.references, failed.transient) == (
        "failed",
        "no sku; down",
        ["a"],
        False,
    )


# -- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("26/11/2026 09:15:00", datetime(2026, 11, 26, 2, 15, tzinfo=UTC)),
        (1795660500000, datetime.fromtimestamp(1795660500, UTC)),
        ("1795660500000", datetime.fromtimestamp(1795660500, UTC)),
        (1795660500, datetime.fromtimestamp(1795660500, UTC)),
        ("2026-11-26T02:15:00Z", datetime(2026, 11, 26, 2, 15, tzinfo=UTC)),
        ("soon", None),
        (None, None),
        (True, None),
        ("", None),
    ],
)
def test_event_timestamps_in_either_format(value, expected):
    assert parse_event_timestamp(value) == expected


def test_event_entries_and_columns():
    event = parse_event(
        {
            "uuid": " u-1 ",
            "type": "receive_item",
            "databaseId": "100042",
            "data": [
                {"receiveItemId": "12", "receiveItemNo": "RI.1", "action": "delete"},
                {"receiveItemId": 13, "receiveItemNo": "RI.2"},
            ],
        }
    )
    assert (
        event.uuid,
        event.event_type,
        event.database_id,
        event.accurate_id,
        event.accurate_number,
        event.action,
    ) == ("u-1", "RECEIVE_ITEM", 100042, 12, "RI.1", "DELETE")
    assert document_entries(event.payload)[1] == {
        "id": 13,
        "number": "RI.2",
        "kind": "receiveItem",
        "action": "WRITE",
    }


def test_delivery_parsing_drops_repeated_uuids_and_refuses_bad_shapes():
    events = parse_delivery(
        b'[{"uuid":"a","type":"ITEM"},{"uuid":"a","type":"ITEM"},{"uuid":"b","type":"ITEM"}]'
    )
    assert [e.uuid for e in events] == ["a", "b"]
    assert parse_delivery(b"[]") == []
    for body, message in [
        (b"{", "not valid JSON"),
        (b"3", "JSON array"),
        (b'[{"type":"X"}]', "no uuid"),
        (b'[{"uuid":"' + b"x" * 300 + b'","type":"X"}]', "longer than"),
    ]:
        with pytest.raises(DeliveryError, match=message):
            parse_delivery(body)


def test_history_window_from_bookmark_with_overlap_and_a_month_at_most():
    end = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert history_window(None, end) == (end - timedelta(hours=24), end)
    assert history_window(end - timedelta(minutes=15), end) == (end - timedelta(minutes=75), end)
    assert history_window(end - timedelta(days=90), end)[0] == end - timedelta(days=29)
    explicit = (end - timedelta(days=3), end - timedelta(days=1))
    assert history_window(end, end, *explicit) == explicit


def test_an_event_postgresql_cannot_store_is_refused_alone():
    """Issue 9: a NUL (or lone surrogate) in one event made the whole delivery fail to store."""
    from include.iseller_accurate.purchases.events import split_delivery

    body = (
        b'[{"uuid":"a","type":"ITEM"},'
        b'{"uuid":"b","type":"RECEIVE_ITEM","data":[{"receiveItemId":1,"receiveItemNo":"RI\\u0000"}]},'
        b'{"uuid":"c","type":"IT\\ud800EM"}]'
    )
    events, rejected = split_delivery(body)
    assert [e.uuid for e in events] == ["a"]
    assert [(r.index, r.uuid) for r in rejected] == [(1, "b"), (2, "c")]
    assert "data[0].receiveItemNo contains a NUL character" in rejected[0].reason
    assert "surrogate" in rejected[1].reason and "\\u0000" in rejected[0].excerpt
    with pytest.raises(DeliveryError, match="NUL"):
        parse_delivery(body)
    with pytest.raises(DeliveryError, match="nested deeper than"):
        parse_delivery(b"[" * 100_000 + b"]" * 100_000)
