"""Changing a quote socket's symbols, within each connection's allowance."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

import ibflow
from ibflow.bridge import BridgeSettings, create_app
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import serving


@pytest.fixture
async def tight(session: ibflow.Session) -> AsyncIterator[str]:
    """A bridge allowing 3 changes at once, one more every 5 s, 3 symbols per socket."""
    settings = BridgeSettings(
        subscription_burst=3, subscriptions_per_second=0.2, max_subscriptions=3
    )
    async with serving(create_app(session, settings=settings)) as url:
        yield "ws" + url.removeprefix("http")


async def reply(ws: ClientConnection) -> dict[str, Any]:
    """The next message that is not a quote or a gap."""
    while True:
        message = json.loads(await ws.recv())
        if message["type"] not in ("quote", "gap"):
            return message


async def test_subscribe_and_unsubscribe_change_the_lines(tight: str, sim: Simulator) -> None:
    async with connect(tight + "/ws/quotes?symbols=AAPL") as ws:
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["MSFT"]}))
        assert await reply(ws) == {"type": "subscribed", "symbols": ["MSFT"]}
        assert sim.subscriptions().get("mkt_data") == 2
        seen: set[str] = set()
        while seen != {"AAPL", "MSFT"}:
            message = json.loads(await ws.recv())
            seen.add(message.get("symbol", ""))
        await ws.send(json.dumps({"action": "unsubscribe", "symbols": "AAPL"}))
        assert await reply(ws) == {"type": "unsubscribed", "symbols": ["AAPL"]}
        await eventually(lambda: sim.subscriptions().get("mkt_data") == 1)
    await eventually(lambda: sim.subscriptions().get("mkt_data", 0) == 0)


async def test_churn_over_the_allowance_is_refused_and_the_socket_stays(
    tight: str, sim: Simulator
) -> None:
    async with connect(tight + "/ws/quotes?symbols=AAPL") as ws:
        for _ in range(3):  # the burst: three changes
            await ws.send(json.dumps({"action": "subscribe", "symbols": ["MSFT"]}))
            await reply(ws)
        sent = sim.request_count("mkt_data")
        await ws.send(json.dumps({"action": "unsubscribe", "symbols": ["MSFT"]}))
        refused = await reply(ws)
        assert refused["type"] == "error"
        assert (refused["error"], refused["code"]) == ("TooManySubscriptionChanges", None)
        assert "per second per connection" in refused["message"]
        assert sim.subscriptions().get("mkt_data") == 2  # nothing changed
        assert sim.request_count("mkt_data") == sent
        quote = json.loads(await ws.recv())  # still streaming
        assert quote["type"] == "quote"


async def test_a_socket_streams_at_most_max_subscriptions(tight: str) -> None:
    async with connect(tight + "/ws/quotes?symbols=AAPL,MSFT,TSLA") as ws:
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["SPY"]}))
        refused = await reply(ws)
        assert refused["error"] == "TooManySubscriptions"
    async with connect(tight + "/ws/quotes?symbols=AAPL,MSFT,TSLA,SPY") as ws:
        error = await reply(ws)
        assert (error["error"], error["code"]) == ("InvalidRequest", None)
        assert "at most 3 symbols" in error["message"]


async def test_a_bad_change_is_answered_and_the_socket_stays(tight: str) -> None:
    async with connect(tight + "/ws/quotes?symbols=AAPL") as ws:
        await ws.send("hello")
        assert (await reply(ws))["error"] == "InvalidRequest"
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["ZZZZ"]}))
        unknown = await reply(ws)
        assert (unknown["error"], unknown["code"]) == ("ContractNotFound", 200)
        assert json.loads(await ws.recv())["type"] == "quote"
