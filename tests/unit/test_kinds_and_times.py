"""Document kinds, the one time parser and the streams' shared helpers (issue 12)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from include.iseller_accurate import kinds, times
from include.iseller_accurate.checks import FieldProblem, read_time

STREAMS = Path(__file__).resolve().parents[2] / "include" / "iseller_accurate" / "streams"


def test_every_kind_is_named_and_numbered_as_before() -> None:
    for data_type, kind in kinds.KINDS.items():
        assert kind.data_type == data_type
        assert kinds.label_of(data_type) == data_type.replace("_", " ")
    assert kinds.SALES_INVOICE.number("JKT01-1001") == "SI/JKT01-1001"
    assert kinds.SALES_RECEIPT.number("JKT01-1001", 2) == "SR/JKT01-1001-2"
    assert kinds.TRANSFER_DIFFERENCE.number("TRF-1") == "TD/TRF-1"
    assert kinds.STOCK_OPNAME.key("st-1") == ("stock_opname", "st-1")
    with pytest.raises(ValueError, match="not made by the sync"):
        kinds.CUSTOMER.number("C-1")


def test_number_fields_and_labels_of_unknown_codes() -> None:
    assert kinds.number_field("customer") == "customerNo"
    assert kinds.number_field("item") == "no"
    assert kinds.number_field("vendor") == "vendorNo"
    assert kinds.number_field("sales-invoice") == "number"
    assert kinds.number_field("purchase-order") == "number"
    assert kinds.label_of("receive_item") == "receive item"
    assert kinds.label_of(None) == ""


def test_a_data_type_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        kinds.register(kinds.DocumentKind("sales_invoice", "x", "X", "number", "x"))
    assert kinds.KINDS["sales_invoice"] is kinds.SALES_INVOICE


def test_a_document_is_built_from_its_kind() -> None:
    when = datetime(2026, 11, 17, tzinfo=UTC)
    doc = kinds.TRANSFER_IN.document("t-1", "TI/T-1", source_key="t-1", source_date=when)
    assert (doc.data_type, doc.target_module, doc.target_number, doc.payload) == (
        "transfer_in",
        "item-transfer",
        "TI/T-1",
        None,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-17T10:00:00", datetime(2026, 11, 17, 10, tzinfo=UTC)),
        ("2026-11-17 10:00:00", datetime(2026, 11, 17, 10, tzinfo=UTC)),
        ("2026-11-17T10:00:00Z", datetime(2026, 11, 17, 10, tzinfo=UTC)),
        ("2026-11-17T10:00:00z", datetime(2026, 11, 17, 10, tzinfo=UTC)),
        ("2026-11-17T17:00:00+07:00", datetime(2026, 11, 17, 10, tzinfo=UTC)),
        ("2026-11-17T10:00:00.1234567", datetime(2026, 11, 17, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_one_parser_reads_iso_times_the_same_everywhere(text: str, expected: datetime) -> None:
    assert times.parse_iso(text) == expected
    assert times.parse_iseller_datetime(text) == expected
    assert read_time(text, "order_date") == expected
    assert times.as_utc(text) == expected


def test_naive_times_can_mean_another_zone() -> None:
    moment = times.parse_iso("2026-11-17T17:00:00", naive=timezone(timedelta(hours=7)))
    assert moment == datetime(2026, 11, 17, 10, tzinfo=UTC)
    assert times.iseller_local_to_utc("2026-11-17T17:00:00", timedelta(hours=7)) == "2026-11-17T10:00:00"


@pytest.mark.parametrize("text", ["17/11/2026", "tomorrow", "   "])
def test_what_is_not_a_time_fails_its_field(text: str) -> None:
    with pytest.raises(ValueError):
        times.parse_iseller_datetime(text)
    with pytest.raises(FieldProblem, match="order_date"):
        read_time(text, "order_date")


def test_streams_take_shared_helpers_from_common_not_from_each_other() -> None:
    """transfers and stock_opname used to import parse_time/accurate_date from sales.py and call
    SalesStream._collect; from one stream module they may only take its Stream."""
    for name in ("transfers.py", "stock_opname.py"):
        tree = ast.parse((STREAMS / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "include.iseller_accurate.streams.sales",
                "include.iseller_accurate.streams.transfers",
            ):
                assert {alias.name for alias in node.names} <= {"SalesStream", "TransfersStream"}, name
            if isinstance(node, ast.Attribute):
                assert not (
                    node.attr.startswith("_")
                    and isinstance(node.value, ast.Name)
                    and node.value.id.endswith("Stream")
                ), f"{name}: {node.value.id}.{node.attr}"


def test_no_stream_module_is_over_550_lines() -> None:
    owned = [
        "common.py",
        "sales.py",
        "sales_documents.py",
        "sales_orders.py",
        "sales_shifts.py",
        "stock_opname.py",
        "transfers.py",
    ]
    sizes = {name: len((STREAMS / name).read_text().splitlines()) for name in owned}
    assert max(sizes.values()) <= 550, sizes
