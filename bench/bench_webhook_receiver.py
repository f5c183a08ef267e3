"""Benchmark: how many Accurate webhook deliveries per second does the receiver accept (durably stored)?

32 concurrent senders (threads, each with one keep-alive HTTP connection) POST deliveries of one
event each (the usual delivery: Accurate batches saves made within a short window) to
``/integrations/accurate/webhook?token=...`` as fast as the answers come back. Reported:

- deliveries accepted per second (HTTP 200, i.e. committed to ``sync.webhook_events``), checked
  afterwards by counting the bench's rows in the ledger;
- answer time p50 / p95 / p99 / max, and any non-200 answers.

Two targets:

- ``--target stack`` (default when the local stack answers): the real receiver in the running Airflow
  API server (``$AIRFLOW_PORT``, token ``$ACCURATE_WEBHOOK_TOKEN``, ledger ``$AIRFLOW_CONN_SYNC_DB``).
  Each accepted delivery also wakes the ingestion DAG (coalesced asset events), as in production.
  The bench's events have type ``BENCHMARK`` (the DAG ignores such events); they are deleted after
  the count unless ``--keep``.
- ``--target standalone``: the same router in a uvicorn server started by the bench on a throwaway
  PostgreSQL (no Airflow; asset events counted, not written). Needs the PostgreSQL server binaries.

Measured in the same run, beside the receiver:

- the **baseline**: bare durable inserts of the same rows into the same PostgreSQL (``--senders``
  threads, each with its own autocommit connection, one ``INSERT ... ON CONFLICT (uuid) DO NOTHING``
  per delivery), inserts/s and p99: what the database allows without HTTP, Airflow and our checks;
- the **kill check**: the standalone receiver (the same router under uvicorn, the server Airflow's API
  server uses) takes a burst and is killed (SIGKILL) while the senders are still sending; every
  delivery answered 200 before the kill must be in ``sync.webhook_events`` afterwards.

Run from the repository root with the stack's environment (``make bench`` does):
``. scripts/env.sh && python bench/bench_webhook_receiver.py [--deliveries 3000] [--senders 32]``
(defaults ``$BENCH_DELIVERIES`` / ``$BENCH_SENDERS``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._report import Figure, emit, env_int, percentile  # noqa: E402
from tests.e2e.airflow_api import airflow_base_url, stack_is_up  # noqa: E402

#: The webhook token of the standalone receiver (its Accurate connection's ``webhook_token``).
STANDALONE_TOKEN = "bench-token-123"


def delivery(run: str, index: int) -> bytes:
    """One delivery of one event, shaped like Accurate's (~250 bytes)."""
    return json.dumps(
        [
            {
                "databaseId": 100042,
                "type": "BENCHMARK",
                "timestamp": "26/11/2026 10:00:00",
                "uuid": f"bench-{run}-{index:07d}",
                "data": [
                    {
                        "receiveItemId": 900000 + index,
                        "receiveItemNo": f"RI.BENCH.{index:07d}",
                        "action": "WRITE",
                    }
                ],
            }
        ]
    ).encode()


def fan_out(n_threads: int, n_items: int, work: Callable[[Callable[[], int | None]], None]) -> float:
    """Run ``work(take)`` in ``n_threads`` threads; wall seconds from their common start to the last end.

    ``take()`` hands out the indexes ``0 .. n_items - 1``, each once, then None. A thread's first
    ``take()`` waits until every thread has made its own (so setup before it, such as opening a
    connection, is not timed); the clock starts then.
    """
    lock = threading.Lock()
    cursor = iter(range(n_items))
    gate = threading.Barrier(n_threads + 1)

    def thread_main() -> None:
        started = False

        def take() -> int | None:
            nonlocal started
            if not started:
                started = True
                gate.wait()
            with lock:
                return next(cursor, None)

        work(take)

    threads = [threading.Thread(target=thread_main) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def send_all(
    url: str, bodies: list[bytes], senders: int, acked: list[int] | None = None
) -> tuple[list[float], list[int], float]:
    """POST every body with ``senders`` threads; (answer times, statuses, wall seconds).

    ``acked`` (when given) receives the index of every body answered 200, as soon as it is.
    """
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def sender(take: Callable[[], int | None]) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
        mine: list[tuple[float, int]] = []
        while True:
            index = take()
            if index is None:
                break
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=bodies[index], headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
                status = 0
            mine.append((time.perf_counter() - began, status))
            if status == 200 and acked is not None:
                with lock:
                    acked.append(index)
        conn.close()
        with lock:
            for took, status in mine:
                latencies.append(took)
                statuses.append(status)

    wall = fan_out(senders, len(bodies), sender)
    return latencies, statuses, wall


BARE_INSERT_SQL = """
    INSERT INTO sync.webhook_events (uuid, event_type, database_id, payload, accurate_id, accurate_number,
        action, received_via)
    VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, 'webhook')
    ON CONFLICT (uuid) DO NOTHING
"""


def bare_inserts(dsn: str, deliveries: int, senders: int) -> dict[str, Any]:
    """Baseline: the same rows inserted directly, one autocommit INSERT each, ``senders`` threads."""
    import psycopg

    run = "base" + uuid.uuid4().hex[:8]
    bodies = [json.loads(delivery(run, i))[0] for i in range(deliveries)]
    latencies: list[float] = []
    lock = threading.Lock()

    def inserter(take: Callable[[], int | None]) -> None:
        mine: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                index = take()
                if index is None:
                    break
                event = bodies[index]
                began = time.perf_counter()
                conn.execute(
                    BARE_INSERT_SQL,
                    (
                        event["uuid"],
                        event["type"],
                        event["databaseId"],
                        json.dumps(event),
                        event["data"][0]["receiveItemId"],
                        event["data"][0]["receiveItemNo"],
                        event["data"][0]["action"],
                    ),
                )
                mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    wall = fan_out(senders, deliveries, inserter)
    stored = count_rows(dsn, run, delete=True)
    result = {
        "inserts": deliveries,
        "stored_rows": stored,
        "seconds": round(wall, 2),
        "per_s": round(deliveries / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }
    print(
        f"Baseline, bare durable inserts into the same PostgreSQL ({senders} threads, own connections):"
        f" {result['per_s']}/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
    )
    return result


def count_rows(dsn: str, run: str, delete: bool) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM sync.webhook_events WHERE uuid LIKE %s", (f"bench-{run}-%",))
        stored = int(row.fetchone()[0])  # type: ignore[index]
        if delete:
            conn.execute("DELETE FROM sync.webhook_events WHERE uuid LIKE %s", (f"bench-{run}-%",))
    return stored


def server_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of the server process and its children (None when unknown)."""
    if pid is None:
        return None
    try:
        import psutil

        root = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
    except Exception:  # noqa: BLE001 - psutil missing or process gone: the figure is optional
        return None


def run_against(
    url: str, dsn: str, args: argparse.Namespace, label: str, keep: bool, server_pid: int | None = None
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    warm = [delivery(f"{run}w", i) for i in range(64)]
    send_all(url, warm, min(args.senders, 8))  # config load, pool filled
    bodies = [delivery(run, i) for i in range(args.deliveries)]
    cpu_before = server_cpu_seconds(server_pid)
    latencies, statuses, wall = send_all(url, bodies, args.senders)
    cpu_after = server_cpu_seconds(server_pid)
    cpu_ms = (
        round(1000 * (cpu_after - cpu_before) / len(bodies), 2)
        if cpu_before is not None and cpu_after is not None
        else None
    )
    accepted = sum(1 for s in statuses if s == 200)
    stored = count_rows(dsn, run, delete=not keep)
    count_rows(dsn, f"{run}w", delete=not keep)
    others: dict[int, int] = {}
    for status in statuses:
        if status != 200:
            others[status] = others.get(status, 0) + 1
    result = {
        "target": label,
        "senders": args.senders,
        "deliveries": len(bodies),
        "accepted": accepted,
        "stored_rows": stored,
        "seconds": round(wall, 2),
        "accepted_per_s": round(accepted / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "non_200": others,
        "body_bytes": len(bodies[0]),
        "server_cpu_ms_per_delivery": cpu_ms,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }
    print(f"Accurate webhook receiver: {label}")
    print(
        f"  {args.senders} concurrent senders, {len(bodies)} deliveries of 1 event ({len(bodies[0])} bytes)"
    )
    print(f"  accepted (HTTP 200, durably stored): {accepted} in {wall:.2f}s -> {result['accepted_per_s']}/s")
    print(f"  rows found in sync.webhook_events afterwards: {stored}/{accepted}")
    print(
        f"  answer time: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
        f"max {result['max_ms']} ms; non-200 answers: {others or 'none'}"
    )
    if cpu_ms is not None:
        print(
            f"  server CPU per delivery: {cpu_ms} ms (about {1000 / cpu_ms:.0f} deliveries/s per free core)"
        )
    print(f"  machine: {result['cpus']} CPUs, 1-minute load average {result['load_average_1m']}")
    print("  " + json.dumps(result))
    return result


def bench_stack(args: argparse.Namespace) -> dict[str, Any]:
    from include.iseller_accurate.ledger import dsn_from_connection

    base = airflow_base_url()
    token = os.environ.get("ACCURATE_WEBHOOK_TOKEN", "demo-webhook-token")
    url = f"{base}/integrations/accurate/webhook?token={token}"
    workers = os.environ.get("AIRFLOW__API__WORKERS", "1")
    label = f"Airflow API server at {urlsplit(base).netloc} ({workers} worker)"
    pid_file = Path(os.environ.get("SYNC_RUN_DIR", REPO_ROOT / ".local" / "run")) / "api-server.pid"
    pid = int(pid_file.read_text().strip()) if pid_file.exists() else None
    dsn = dsn_from_connection()
    result = run_against(url, dsn, args, label, args.keep, pid)
    result["baseline"] = bare_inserts(dsn, args.deliveries, args.senders)
    return result


def standalone_app() -> Any:
    """uvicorn factory of the standalone target: the receiver's router alone, asset events counted."""
    from fastapi import FastAPI

    from include.iseller_accurate.web import accurate_webhook

    accurate_webhook.SIGNALLER.emit = lambda extra: None
    app = FastAPI()
    app.include_router(accurate_webhook.router, prefix="/integrations")
    return app


def start_standalone(server_pg: Any) -> tuple[Any, int]:
    """The receiver's router alone in a uvicorn process on ``server_pg``: (process, port)."""
    import subprocess

    import httpx

    from tests.pg import free_port

    process: subprocess.Popen[bytes] | None = None
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "AIRFLOW_CONN_SYNC_DB": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": server_pg.port,
                    "schema": "postgres",
                    "login": "postgres",
                }
            ),
            "AIRFLOW_CONN_ACCURATE_API": json.dumps(
                {
                    "conn_type": "http",
                    "host": "http://127.0.0.1:9",
                    "extra": {"webhook_token": STANDALONE_TOKEN},
                }
            ),
        }
        port = free_port()
        # BENCH_PROFILE=1: a cProfile of the standalone receiver in /tmp/bench-webhook-receiver.prof
        profile = (
            ["-m", "cProfile", "-o", "/tmp/bench-webhook-receiver.prof"]
            if os.environ.get("BENCH_PROFILE")
            else []
        )
        process = subprocess.Popen(
            [
                sys.executable,
                *profile,
                "-m",
                "uvicorn",
                "--factory",
                "--app-dir",
                str(REPO_ROOT / "bench"),
                "bench_webhook_receiver:standalone_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=REPO_ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/integrations/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("standalone receiver did not start") from None
                time.sleep(0.2)
        return process, port
    except BaseException:
        if process is not None:
            process.kill()
            process.wait(15)
        raise


def bench_standalone(args: argparse.Namespace) -> dict[str, Any]:
    from tests.pg import TempPostgres

    server_pg = TempPostgres().start()
    try:
        process, port = start_standalone(server_pg)
        try:
            url = f"http://127.0.0.1:{port}/integrations/accurate/webhook?token={STANDALONE_TOKEN}"
            label = "standalone uvicorn process (the receiver's router alone), throwaway PostgreSQL"
            result = run_against(url, server_pg.dsn, args, label, True, process.pid)
        finally:
            # SIGINT: uvicorn shuts down gracefully and then re-raises the signal; under cProfile a
            # KeyboardInterrupt still writes the profile (a re-raised SIGTERM would not)
            process.send_signal(signal.SIGINT)
            process.wait(30)
        result["baseline"] = bare_inserts(server_pg.dsn, args.deliveries, args.senders)
        return result
    finally:
        server_pg.stop()


def kill_check(args: argparse.Namespace) -> dict[str, Any]:
    """Burst against the standalone receiver, SIGKILL it mid-burst: is every 200 in the ledger?"""
    import psycopg

    from tests.pg import TempPostgres

    server_pg = TempPostgres().start()
    try:
        process, port = start_standalone(server_pg)
        url = f"http://127.0.0.1:{port}/integrations/accurate/webhook?token={STANDALONE_TOKEN}"
        send_all(url, [delivery("killwarm", i) for i in range(32)], 8)
        run = "kill" + uuid.uuid4().hex[:8]
        bodies = [delivery(run, i) for i in range(args.deliveries)]
        acked: list[int] = []
        sender = threading.Thread(target=send_all, args=(url, bodies, args.senders, acked))
        sender.start()
        while len(acked) < args.deliveries // 3 and sender.is_alive():
            time.sleep(0.005)
        process.kill()  # SIGKILL: no shutdown, no flush; what was answered 200 must be stored
        killed_after = len(acked)
        process.wait(15)
        sender.join(120)
        acknowledged = {f"bench-{run}-{i:07d}" for i in acked}
        with psycopg.connect(server_pg.dsn, autocommit=True) as conn:
            stored = {
                row[0]
                for row in conn.execute(
                    "SELECT uuid FROM sync.webhook_events WHERE uuid LIKE %s", (f"bench-{run}-%",)
                )
            }
        lost = sorted(acknowledged - stored)
        result = {
            "acknowledged_before_kill": killed_after,
            "acknowledged": len(acknowledged),
            "stored": len(stored),
            "lost": len(lost),
            "lost_examples": lost[:5],
        }
        print(
            f"Kill check: SIGKILL after {killed_after} answers 200; {len(acknowledged)} answered 200 in all,"
            f" {len(stored)} rows stored, {len(lost)} acknowledged but lost"
        )
        return result
    finally:
        server_pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", choices=("auto", "stack", "standalone"), default="auto")
    parser.add_argument("--deliveries", type=int, default=env_int("BENCH_DELIVERIES", 3000))
    parser.add_argument("--senders", type=int, default=env_int("BENCH_SENDERS", 32))
    parser.add_argument("--keep", action="store_true", help="keep the bench's events in the stack's ledger")
    args = parser.parse_args()
    target = args.target
    if target == "auto":
        target = "stack" if stack_is_up(timeout=3) is None else "standalone"
    if target == "stack":
        result = bench_stack(args)
    else:
        result = bench_standalone(args)
    killed = kill_check(args)
    base = result["baseline"]
    where = "API server" if target == "stack" else "standalone uvicorn"
    emit(
        [
            Figure(
                "webhook bursts",
                f"deliveries/s durably stored, {args.senders} senders ({where})",
                result["accepted_per_s"],
                "/s",
                floor=base["per_s"],
                floor_label="/s bare inserts",
                goal=">= 1,000/s",
                holds=result["accepted_per_s"] >= 1000 and result["stored_rows"] == result["accepted"],
                note=f"{result['stored_rows']}/{result['accepted']} accepted found in the ledger",
            ),
            Figure(
                "webhook bursts",
                f"answer time p99, {args.senders} senders ({where})",
                result["p99_ms"],
                "ms",
                floor=base["p99_ms"],
                floor_label="ms bare insert p99",
                goal="<= 100 ms",
                holds=result["p99_ms"] <= 100,
            ),
            Figure(
                "webhook bursts",
                "acknowledged deliveries lost after SIGKILL (standalone uvicorn)",
                killed["lost"],
                f"of {killed['acknowledged']}",
                goal="0",
                holds=killed["lost"] == 0 and killed["acknowledged"] > 0,
            ),
        ],
        {"receiver": result, "kill_check": killed, "target": target},
    )


if __name__ == "__main__":
    main()
