"""``GET /metrics``: Prometheus' text format, read back with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from ibflow.sim import Simulator
from ibflow.testing import eventually

ORDER = {
    "contract": {"symbol": "AAPL"},
    "order": {"action": "BUY", "quantity": 1, "type": "MKT"},
}


async def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample: (name, sorted labels) → value."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_the_session_state_and_traffic(base_url: str) -> None:
    samples = await scrape(base_url)
    assert samples[("ibflow_connected", ())] == 1
    assert samples[("ibflow_connection_state", (("state", "ready"),))] == 1
    assert samples[("ibflow_connection_state", (("state", "reconnecting"),))] == 0
    assert samples[("ibflow_messages_in_total", ())] > 0
    assert samples[("ibflow_messages_out_total", ())] > 0
    assert samples[("ibflow_reconnects_total", ())] == 0
    assert samples[("ibflow_pacing_waits_total", ())] == 0
    assert samples[("ibflow_bridge_stream_items_dropped_total", ())] == 0


async def test_orders_latencies_and_reconnects_are_counted(
    base_url: str, client: httpx.AsyncClient, sim: Simulator
) -> None:
    placed = await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "m1"})
    await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "m1"})  # a replay
    unknown = {**ORDER, "contract": {"symbol": "ZZZZ"}}
    await client.post("/orders", json=unknown, headers={"Idempotency-Key": "m2"})
    assert placed.status_code == 201
    await sim.restart(down_for=0.05)
    await eventually(lambda: sim.clients != [])
    samples = await scrape(base_url)
    assert samples[("ibflow_bridge_orders_placed_total", ())] == 1
    assert samples[("ibflow_bridge_orders_rejected_total", (("error", "ContractNotFound"),))] == 1
    route = (("method", "POST"), ("route", "/api/v1/orders"), ("status", "201"))
    assert samples[("ibflow_bridge_request_duration_seconds_count", route)] == 2
    assert samples[("ibflow_reconnects_total", ())] == 1


async def test_subscriptions_and_websockets_are_gauged(
    base_url: str, ws_url: Callable[[str], str]
) -> None:
    async with connect(ws_url("/ws/quotes?symbols=AAPL,MSFT")) as ws:
        await ws.recv()
        samples = await scrape(base_url)
        assert samples[("ibflow_active_subscriptions", ())] >= 2
        assert samples[("ibflow_bridge_websockets", (("path", "/ws/quotes"),))] == 1
    sockets = ("ibflow_bridge_websockets", (("path", "/ws/quotes"),))
    async with asyncio.timeout(5):  # the server notices the close a moment later
        while (await scrape(base_url))[sockets] != 0:
            await asyncio.sleep(0.01)
