"""The loader and ledger on a real PostgreSQL, against an in-memory Accurate with injectable faults.

Proves exactly-once: lost answers, "number already exists", crashes mid-post, overlapping runs and
refreshes never double-post; a bad document fails alone; dependents are blocked, then released.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from include.iseller_accurate.ledger import Document, Ledger, RunRef, connect, migrate
from include.iseller_accurate.pipeline import Loader


@dataclass
class Result:
    ok: bool
    record: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def duplicate_number(self) -> bool:
        return any("Sudah ada data lain" in m for m in self.messages)

    @property
    def reason(self) -> str:
        return "; ".join(self.messages)


class LostAnswer(Exception):
    """The request committed but the client never saw the answer."""


class FakeAccurate:
    """Enough of Accurate: numbers unique per module, unknown items refused, faults on demand."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.items = {"BRG-0001", "BRG-0002"}
        self.lose_answers = 0  # next N bulk calls commit then raise
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.next_id = 1

    def _save_one(self, module: str, record: dict[str, Any]) -> Result:
        key = "customerNo" if module == "customer" else "number"
        store = self.records.setdefault(module, {})
        number = record.get(key) or f"AUTO.{self.next_id:05d}"
        if number in store:
            return Result(False, messages=[f"Sudah ada data lain dengan No Form # {number}"])
        for line in record.get("detailItem", []):
            if line["itemNo"] not in self.items:
                return Result(False, messages=[f"Barang {line['itemNo']} tidak ditemukan"])
        if module == "sales-receipt":
            for inv in record.get("detailInvoice", []):
                if inv["invoiceNo"] not in self.records.get("sales-invoice", {}):
                    return Result(False, messages=[f"Faktur {inv['invoiceNo']} tidak ditemukan"])
        stored = {**record, key: number, "id": self.next_id}
        self.next_id += 1
        store[number] = stored
        return Result(True, record=stored)

    def bulk_save(
        self, module: str, records: list[dict[str, Any]], *, idempotent: bool = True
    ) -> list[Result]:
        with self.lock:
            self.calls.append((module, len(records)))
            results = [self._save_one(module, dict(r)) for r in records]
            if self.lose_answers:
                self.lose_answers -= 1
                raise LostAnswer("read timed out")
            return results

    def save(self, module: str, record: dict[str, Any], *, idempotent: bool = True) -> Result:
        return self.bulk_save(module, [record])[0]

    def find_by_numbers(
        self, module: str, numbers: list[str], field: str = "number"
    ) -> dict[str, dict[str, Any]]:
        store = self.records.get(module, {})
        return {n: store[n] for n in numbers if n in store}

    def list(self, module: str, *, fields=None, filters=None):
        ((name, value),) = filters.items()
        return [r for r in self.records.get(module, {}).values() if r.get(name) == value]


T0 = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)


def order_docs(n: int, *, bad: set[int] = frozenset(), customer: str | None = None) -> list[Document]:
    docs = []
    if customer:
        docs.append(
            Document(
                "customer",
                customer,
                source_key="o0",
                source_date=T0,
                target_module="customer",
                target_number=None,
                payload={"name": "Budi", "notes": f"iSeller customer {customer}"},
                lookup={"field": "notes", "value": f"iSeller customer {customer}"},
            )
        )
    for i in range(n):
        item = "BRG-9999" if i in bad else "BRG-0001"
        inv = Document(
            "sales_invoice",
            f"o{i}",
            source_key=f"o{i}",
            source_date=T0 + timedelta(minutes=i),
            target_module="sales-invoice",
            target_number=f"SI/T-{i}",
            source_number=f"#T-{i}",
            payload={
                "number": f"SI/T-{i}",
                "customerNo": "UMUM",
                "detailItem": [{"itemNo": item, "quantity": Decimal("1"), "unitPrice": Decimal("10.50")}],
            },
        )
        if customer:
            inv.requires.append(("customer", customer))
            inv.refs["customerNo"] = ("customer", customer)
        rec = Document(
            "sales_receipt",
            f"o{i}:cash",
            source_key=f"o{i}",
            source_date=T0 + timedelta(minutes=i),
            target_module="sales-receipt",
            target_number=f"SR/T-{i}",
            payload={
                "number": f"SR/T-{i}",
                "detailInvoice": [{"invoiceNo": f"SI/T-{i}", "paymentAmount": Decimal("10.50")}],
            },
            requires=[("sales_invoice", f"o{i}")],
        )
        docs += [inv, rec]
    return docs


def run(n: int = 1, try_number: int = 1) -> RunRef:
    return RunRef("iseller_sales_to_accurate", f"manual__{n}", "load", try_number=try_number)


def statuses(ledger: Ledger) -> dict[str, str]:
    rows = ledger.conn.execute("SELECT source_id, status FROM sync.documents").fetchall()
    return {r["source_id"]: r["status"] for r in rows}


def test_migrations_are_versioned_and_idempotent(pg_dsn):
    with connect(pg_dsn, autocommit=True) as conn:
        first = migrate(conn)
        assert first[0] == "0001_ledger.sql"
        assert migrate(conn) == []


def test_bulk_load_posts_everything_once_with_prerequisites_first(ledger):
    accurate = FakeAccurate()
    ledger.upsert(order_docs(250, customer="cust-1"), run())
    report = Loader(ledger, accurate, run()).load_run()
    assert not report.failed and not report.blocked and report.posted == 501
    assert len(accurate.records["sales-invoice"]) == 250 and len(accurate.records["sales-receipt"]) == 250
    assert [c for c in accurate.calls if c[0] == "sales-invoice"] == [("sales-invoice", 100)] * 2 + [
        ("sales-invoice", 50)
    ]
    # the invoice got the number Accurate gave the customer
    assert accurate.records["sales-invoice"]["SI/T-0"]["customerNo"] == "AUTO.00001"
    amount = accurate.records["sales-invoice"]["SI/T-0"]["detailItem"][0]["unitPrice"]
    assert amount == Decimal("10.50") and isinstance(amount, Decimal)


def test_bad_document_fails_alone_and_its_receipt_is_blocked_then_refresh_posts_only_the_missing(ledger):
    accurate = FakeAccurate()
    ledger.upsert(order_docs(5, bad={2}), run())
    report = Loader(ledger, accurate, run()).load_run()
    assert [r.source_id for r in report.failed] == ["o2"] and [r.source_id for r in report.blocked] == [
        "o2:cash"
    ]
    assert "BRG-9999 tidak ditemukan" in report.failed[0].reason
    assert "waits for sales invoice SI/T-2, which failed" in report.blocked[0].reason
    assert "1 of 10" not in report.summary() and report.summary().startswith("2 of 10 not synced")
    # repair in Accurate (create the item), then refresh = the same run's load again
    accurate.items.add("BRG-9999")
    calls_before = len(accurate.calls)
    report = Loader(ledger, accurate, run(try_number=2)).load_run()
    assert not report.failed and not report.blocked and report.posted == 2
    assert len(accurate.calls) - calls_before == 2  # one invoice call, one receipt call
    assert len(accurate.records["sales-invoice"]) == 5 and len(accurate.records["sales-receipt"]) == 5


def test_lost_answer_is_settled_by_lookup_not_by_reposting(ledger):
    accurate = FakeAccurate()
    accurate.lose_answers = 1
    ledger.upsert(order_docs(3), run())
    report = Loader(ledger, accurate, run()).load_run()
    assert not report.failed and report.confirmed == 3  # invoices: committed, answer lost, found by number
    assert len(accurate.records["sales-invoice"]) == 3 and len(accurate.records["sales-receipt"]) == 3


def test_crash_mid_post_then_retry_confirms_instead_of_duplicating(ledger):
    accurate = FakeAccurate()
    ledger.upsert(order_docs(2), run())
    ids = [r.id for r in ledger.run_rows(run()) if r.data_type == "sales_invoice"]
    ledger.claim(ids, run())  # a worker marked them posting...
    for i in range(2):  # ...Accurate stored them, then the worker died before recording it
        accurate.bulk_save("sales-invoice", [{"number": f"SI/T-{i}", "detailItem": []}])
    report = Loader(ledger, accurate, run(try_number=2)).load_run()
    assert not report.failed and report.confirmed == 2
    assert len(accurate.records["sales-invoice"]) == 2


def test_overlapping_runs_and_reextraction_never_double_post(ledger, pg_dsn):
    accurate = FakeAccurate()
    ledger.upsert(order_docs(30), run(1))
    ledger.upsert(order_docs(30), run(2))  # a second trigger covering the same orders
    results = []
    threads = [
        threading.Thread(
            target=lambda r=r: results.append(
                Loader(Ledger(connect(pg_dsn, autocommit=True)), accurate, r).load_run()
            )
        )
        for r in (run(1), run(2))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accurate.records["sales-invoice"]) == 30 and len(accurate.records["sales-receipt"]) == 30
    assert all(not r.failed for r in results)
    ledger.upsert(order_docs(30), run(3))  # re-extraction after sync: nothing to do
    assert Loader(ledger, accurate, run(3)).load_run().posted == 0
    assert set(statuses(ledger).values()) == {"synced"}


def test_auto_numbered_customer_is_created_once_even_after_a_lost_answer(ledger):
    accurate = FakeAccurate()
    accurate.lose_answers = 1  # the customer save commits, the answer is lost
    ledger.upsert(order_docs(1, customer="cust-9"), run())
    report = Loader(ledger, accurate, run()).load_run()
    assert not report.failed
    assert len(accurate.records["customer"]) == 1
    row = ledger.conn.execute(
        "SELECT target_number FROM sync.documents WHERE data_type='customer'"
    ).fetchone()
    assert row["target_number"] == "AUTO.00001"


def test_blocked_document_of_an_earlier_run_is_released_when_its_prerequisite_syncs(ledger):
    accurate = FakeAccurate()
    ledger.upsert(order_docs(1, bad={0}), run(1))
    Loader(ledger, accurate, run(1)).load_run()
    assert statuses(ledger) == {"o0": "failed", "o0:cash": "blocked"}
    accurate.items.add("BRG-9999")
    invoice_only = [d for d in order_docs(1, bad={0}) if d.data_type == "sales_invoice"]
    ledger.upsert(invoice_only, run(2))  # a later run re-extracts just the invoice
    Loader(ledger, accurate, run(2)).load_run()
    assert statuses(ledger) == {"o0": "synced", "o0:cash": "synced"}


def test_reextraction_does_not_touch_synced_rows(ledger):
    accurate = FakeAccurate()
    ledger.upsert(order_docs(1), run(1))
    Loader(ledger, accurate, run(1)).load_run()
    changed = order_docs(1)
    changed[0].payload["number"] = "SI/CHANGED"
    ledger.upsert(changed, run(2))
    row = ledger.conn.execute("SELECT payload, status FROM sync.documents WHERE source_id='o0'").fetchone()
    assert row["status"] == "synced" and row["payload"]["number"] == "SI/T-0"


def test_credentials_refused_reason_says_it_once(ledger):
    """Issue 9: the reason read 'Accurate refused the credentials: Accurate refused the credentials of...'."""
    from include.iseller_accurate.clients.errors import AuthError

    message = (
        "Accurate refused the credentials of Airflow connection 'accurate_api' (HTTP 401: Unknown or "
        "revoked API token). Check the API token (not revoked?), the signature secret and the server clock."
    )

    class RefusingAccurate(FakeAccurate):
        def bulk_save(self, module: str, records: list[dict[str, Any]], *, idempotent: bool = True) -> Any:
            raise AuthError(message, status_code=401)

    ledger.upsert(order_docs(1), run())
    report = Loader(ledger, RefusingAccurate(), run()).load_run()
    assert report.failed and all(row.reason == message for row in report.failed)


class _Payload(dict):
    """A payload read from the ledger, trackable by weak reference (a plain dict is not)."""


class _PayloadCounter:
    """Wraps the ledger's connection: counts the payloads each read returns and how many are alive.

    A light read returns ``{}`` (or NULL) as payload; only real payloads (non-empty) are counted.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.alive = 0
        self.most_per_read = 0
        self.most_alive = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.most_alive = max(self.most_alive, self.alive)  # what the loader holds right now
        counter, cursor = self, self._conn.execute(*args, **kwargs)

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

            def fetchall(self) -> list[Any]:
                rows = [counter._track(row) for row in cursor.fetchall()]
                counter.most_per_read = max(
                    counter.most_per_read, sum(1 for r in rows if isinstance(r.get("payload"), _Payload))
                )
                return rows

            def fetchone(self) -> Any:
                row = cursor.fetchone()
                return counter._track(row) if row is not None else None

            def __iter__(self) -> Any:
                return iter(self.fetchall())

        return Counted()

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        counter, real = self, self._conn.cursor(*args, **kwargs)

        class Counted:
            def __enter__(self) -> Any:
                real.__enter__()
                return self

            def __exit__(self, *exc: Any) -> Any:
                return real.__exit__(*exc)

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def stream(self, *args: Any, **kwargs: Any) -> Any:  # a read, however it is paged
                counter.most_alive = max(counter.most_alive, counter.alive)
                heavy = 0
                for row in real.stream(*args, **kwargs):
                    row = counter._track(row)
                    heavy += isinstance(row.get("payload"), _Payload)
                    counter.most_per_read = max(counter.most_per_read, heavy)
                    yield row

        return Counted()

    def _track(self, row: Any) -> Any:
        if isinstance(row, dict) and isinstance(row.get("payload"), dict) and row["payload"]:
            import weakref

            row["payload"] = _Payload(row["payload"])
            self.alive += 1
            weakref.finalize(row["payload"], self._gone)
        return row

    def _gone(self) -> None:
        self.alive -= 1


def test_load_holds_only_a_few_chunks_of_payloads_at_a_time(ledger):
    """Issue 13: the load read every open document with its payload before sending the first one,
    and queued every full chunk at once, so a big day's payloads all sat in memory (1.3 GiB at 200,000
    documents). Only the chunks about to be sent may hold their payload; every document still goes
    exactly once, the invoices in full chunks of 100, each after the customer it needs."""
    import gc

    gc.collect()
    accurate = FakeAccurate()
    ledger.upsert(order_docs(1250, customer="cust-1"), run())  # 2,501 documents
    counter = _PayloadCounter(ledger.conn)
    max_in_flight = 2
    report = Loader(Ledger(counter), accurate, run(), max_in_flight=max_in_flight).load_run()
    assert not report.failed and not report.blocked and report.posted == 2501
    assert sum(n for _, n in accurate.calls) == 2501  # each document posted once, none twice
    assert len(accurate.records["sales-invoice"]) == 1250 and len(accurate.records["sales-receipt"]) == 1250
    assert [c for c in accurate.calls if c[0] == "sales-invoice"] == [("sales-invoice", 100)] * 12 + [
        ("sales-invoice", 50)
    ]
    assert all(n <= 100 for _, n in accurate.calls)
    assert accurate.records["sales-invoice"]["SI/T-1249"]["customerNo"] == "AUTO.00001"
    bound = 2 * max_in_flight * 100 + 100
    assert counter.most_per_read <= bound, f"one read returned {counter.most_per_read} payloads"
    assert counter.most_alive <= bound, f"{counter.most_alive} payloads held at once"


def test_document_remapped_to_a_failure_before_its_claim_is_not_posted_from_a_stale_payload(ledger):
    """The load reads its rows light and each chunk's payload only after claiming it: an order
    re-read meanwhile (the next run's extract) that now fails to map has nothing to post; it fails with
    the new mapping's reason, its receipt is blocked, the rest go on."""
    accurate = FakeAccurate()
    ledger.upsert(order_docs(3), run())
    remapped = Document(
        "sales_invoice",
        "o1",
        source_key="o1",
        source_date=T0,
        target_module="sales-invoice",
        target_number=None,
        payload=None,
        status="failed",
        reason="order #T-1: total is not a number",
    )

    class RemappedBeforeClaim(Ledger):
        def claim(self, ids, run_ref):
            if remapped.status == "failed":
                self.upsert([remapped], run(2))
                remapped.status = "done"  # once
            return super().claim(ids, run_ref)

    report = Loader(RemappedBeforeClaim(ledger.conn), accurate, run()).load_run()
    assert sorted(accurate.records["sales-invoice"]) == ["SI/T-0", "SI/T-2"]
    assert [(r.source_id, r.reason) for r in report.failed] == [("o1", "order #T-1: total is not a number")]
    assert [r.source_id for r in report.blocked] == ["o1:cash"]
    assert statuses(ledger) == {
        "o0": "synced",
        "o0:cash": "synced",
        "o1": "failed",
        "o1:cash": "blocked",
        "o2": "synced",
        "o2:cash": "synced",
    }
