"""The iSeller sandbox sends order webhooks a few at a time, however many orders are rung up at once.

Without a bound, 13,000 orders rung up in one call opened 13,000 connections to the receiver and
starved the sandbox's own API (the soak's next call timed out after 120 s).
"""

from __future__ import annotations

import asyncio

import pytest

from sandbox.iseller.notify import Notifier, WebhookConfig

pytestmark = pytest.mark.sandbox


async def _send(orders: int, in_flight: int) -> tuple[int, list[dict]]:
    active = peak = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    notifier = Notifier(in_flight=in_flight)
    notifier.webhook = WebhookConfig(order_url=f"http://127.0.0.1:{port}/hook", api_key="key")
    for number in range(orders):
        notifier.notify_order("order.created", {"order_id": f"order-{number}"})
    for _ in range(600):
        if not notifier._tasks:
            break
        await asyncio.sleep(0.05)
    server.close()
    await server.wait_closed()
    return peak, notifier.deliveries


def test_order_webhooks_in_flight_are_bounded_and_all_delivered() -> None:
    peak, deliveries = asyncio.run(_send(orders=40, in_flight=3))
    assert peak == 3
    assert len(deliveries) == 40
    assert all(d["success"] and d["attempt"] == 1 for d in deliveries)
    assert sorted(d["order_id"] for d in deliveries) == sorted(f"order-{n}" for n in range(40))
