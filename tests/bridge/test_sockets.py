"""The websockets: live quotes, order events and bars, closed with the client, errors named."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ibflow.bridge import create_app
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .conftest import market_clock, serving

WsUrl = Callable[[str], str]


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def receive_until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool]) -> list:
    seen = []
    while not seen or not done(seen[-1]):
        seen.append(await receive(ws))
    return seen


async def closing_frame(ws: ClientConnection) -> tuple[int, str]:
    """Read past any messages to the server's close frame: (code, reason)."""
    with contextlib.suppress(ConnectionClosed):  # raised for any code but 1000/1001
        async for _message in ws:
            pass
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def test_quotes_arrive_tagged_and_leaving_cancels_the_lines(
    ws_url: WsUrl, sim: Simulator
) -> None:
    async with connect(ws_url("/ws/quotes?symbols=AAPL,msft")) as ws:
        assert sim.subscriptions().get("mkt_data") == 2  # open once the handshake is done
        seen = await receive_until(ws, lambda m: m["symbol"] == "MSFT")
        seen += await receive_until(ws, lambda m: m["symbol"] == "AAPL")
    quote = seen[-1]
    assert quote["type"] == "quote"
    assert quote["contract"]["con_id"] == 265598
    assert quote["bid"] < quote["ask"]
    assert datetime.fromisoformat(quote["time"]).utcoffset() is not None
    assert {m["symbol"] for m in seen} == {"AAPL", "MSFT"}
    await eventually(lambda: sim.subscriptions().get("mkt_data", 0) == 0)
    assert sim.request_count("cancel_mkt_data") == 2  # one cancel per line, sent once


async def test_a_gateway_restart_sends_one_gap_then_quotes_again(
    ws_url: WsUrl, sim: Simulator
) -> None:
    async with connect(ws_url("/ws/quotes?symbols=AAPL")) as ws:
        await receive(ws)
        await sim.restart(down_for=0.3)
        seen = await receive_until(ws, lambda m: m["type"] == "gap")
        gap = seen[-1]
        assert gap["symbol"] == "AAPL"
        start, end = datetime.fromisoformat(gap["start"]), datetime.fromisoformat(gap["end"])
        assert (end - start).total_seconds() >= 0.3
        after = await receive(ws)
        assert after["type"] == "quote"
        assert datetime.fromisoformat(after["time"]) >= end


async def test_an_unknown_symbol_closes_with_the_error_as_reason(
    ws_url: WsUrl, sim: Simulator
) -> None:
    async with connect(ws_url("/ws/quotes?symbols=AAPL,ZZZZ")) as ws:
        error = await receive(ws)
        assert (error["type"], error["error"], error["code"]) == ("error", "ContractNotFound", 200)
        assert "ZZZZ" in error["message"]
        code, reason = await closing_frame(ws)
    assert code == 1008
    assert reason.startswith("ContractNotFound: ")
    assert len(reason.encode()) <= 123
    await eventually(lambda: sim.subscriptions().get("mkt_data", 0) == 0)  # AAPL's was closed


async def test_a_bad_query_closes_with_1008(ws_url: WsUrl) -> None:
    async with connect(ws_url("/ws/quotes")) as ws:
        error = await receive(ws)
        assert error["error"] == "InvalidRequest"
        assert error["message"] == "query.symbols: Field required"
        assert await closing_frame(ws) == (1008, "InvalidRequest: query.symbols: Field required")
    async with connect(ws_url("/ws/quotes?symbols=,")) as ws:
        assert "at least one symbol" in (await receive(ws))["message"]
        assert (await closing_frame(ws))[0] == 1008


async def test_the_orders_socket_sees_a_fill(ws_url: WsUrl, client: httpx.AsyncClient) -> None:
    async with connect(ws_url("/ws/orders")) as ws:
        placed = await client.post(
            "/orders",
            json={
                "contract": {"symbol": "AAPL"},
                "order": {"action": "SELL", "quantity": 5, "type": "MKT"},
            },
            headers={"Idempotency-Key": "ws-fill"},
        )
        order_id = placed.json()["order_id"]
        events = await receive_until(ws, lambda m: m["kind"] == "fill")
    assert {e["type"] for e in events} == {"order"}
    assert {e["order_id"] for e in events} == {order_id}
    fill = events[-1]["fill"]
    assert (fill["side"], fill["quantity"]) == ("SELL", 5)
    assert fill["contract"]["symbol"] == "AAPL"


async def test_bars_stream_history_then_live_and_close_their_request() -> None:
    # Market time runs 120x: a one-minute bar completes every half second.
    async with (
        Simulator(port=0, speed=100, clock=market_clock(120)) as sim,
        session_for(sim) as session,
        serving(create_app(session)) as url,
    ):
        path = "/ws/bars?symbol=AAPL&period=1m&lookback=600%20S"
        async with connect("ws" + url.removeprefix("http") + path) as ws:
            history = [await receive(ws) for _ in range(10)]
            live = await receive(ws)
            assert sim.subscriptions().get("historical_data") == 1
        bars = [*history, live]
        assert {(b["type"], b["symbol"], b["forming"]) for b in bars} == {("bar", "AAPL", False)}
        times = [datetime.fromisoformat(b["time"]) for b in bars]
        assert times == sorted(set(times))
        assert (times[-1] - times[-2]).total_seconds() == 60
        assert times[0].utcoffset() is not None
        await eventually(lambda: not sim.subscriptions().get("historical_data"))


async def test_a_bad_period_closes_the_bars_socket_with_1008(ws_url: WsUrl) -> None:
    async with connect(ws_url("/ws/bars?symbol=AAPL&period=7x")) as ws:
        assert (await receive(ws))["error"] == "InvalidRequest"
        code, reason = await closing_frame(ws)
    assert code == 1008
    assert "period must be one of" in reason


async def test_sockets_close_normally_when_the_session_closes(sim: Simulator) -> None:
    async with session_for(sim) as session, serving(create_app(session)) as url:
        async with connect("ws" + url.removeprefix("http") + "/ws/orders") as ws:
            await session.aclose()
            code, reason = await closing_frame(ws)
    assert code == 1000
    assert "session closed" in reason


async def test_a_socket_error_message_always_has_a_code(ws_url: WsUrl) -> None:
    async with connect(ws_url("/ws/bars?symbol=AAPL&period=7x")) as ws:
        error = await receive(ws)
    assert set(error) == {"type", "error", "code", "message"}
    assert (error["type"], error["error"], error["code"]) == ("error", "InvalidRequest", None)
    async with connect(ws_url("/ws/quotes")) as ws:
        assert (await receive(ws))["code"] is None
