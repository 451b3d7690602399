"""The whole client path against the simulator, with the fast receive path on and off.

Each test runs twice (``fast_receive`` fixture): with ibflow's receive path and with
ib_async's own (``IBFLOW_FAST_RECEIVE=0``). Both must connect, stream quotes through a flood,
round-trip an order and come back after the gateway drops every socket.
"""

from __future__ import annotations

import asyncio

import ibflow
from ibflow import MarketOrder, OrderStatus
from ibflow._ib._fastpath import is_fast_receive
from ibflow.sim import Simulator
from ibflow.testing import session_for

AAPL = ibflow.Stock("AAPL")


async def stock_positions(session: ibflow.Session) -> dict[str, float]:
    positions = await session.positions()
    return {p.contract.symbol: p.quantity for p in positions if p.contract.sec_type == "STK"}


def burst_end_state(bid: float, ask: float, tick: float, count: int) -> tuple[float, ...]:
    """Bid, ask, bid size, ask size after ``Simulator.burst`` sent ``count`` frames (>= 4).

    The burst cycles through 1000 frames: bid price+size, ask price+size, bid size, ask size,
    with a saw-tooth step of ``(i % 50 - 25)`` ticks and sizes cycling by frame index.
    """
    last = count - 1
    jb, ja = last - last % 4, last - (last - 1) % 4
    jbs, jas = last - (last - 2) % 4, last - (last - 3) % 4
    ib, ia = jb % 1000, ja % 1000
    bid_size = 100 + ib % 7 if jb > jbs else 300 + jbs % 1000 % 11
    ask_size = 200 + ia % 5 if ja > jas else 400 + jas % 1000 % 13
    return (
        round(bid + (ib % 50 - 25) * tick, 6),
        round(ask + (ia % 50 - 25) * tick, 6),
        float(bid_size),
        float(ask_size),
    )


async def test_connect_and_sync(sim: Simulator, fast_receive: bool) -> None:
    async with session_for(sim) as session:
        assert is_fast_receive(session._core.adapter._ib.client) is fast_receive
        assert session.server_version == 178
        assert session.accounts == ("DU1234567",)
        held = await stock_positions(session)
        assert held["AAPL"] == 100
        assert held["MSFT"] == 50
        stats = session.statistics()
        assert stats.state is ibflow.ConnectionState.READY


async def test_quotes_through_a_flood(sim: Simulator, fast_receive: bool) -> None:
    async with session_for(sim) as session, session.quotes(AAPL) as quotes:
        first = await anext(quotes)
        assert isinstance(first, ibflow.Quote)
        inst = sim.universe.by_name("AAPL")
        assert inst is not None
        q = sim.market.quote(inst.con_id)
        count = 60_000  # ~1.2 MB: several 256 KiB chunks, frames cut across them
        expected = burst_end_state(q.bid, q.ask, inst.min_tick, count)
        before = session.statistics().messages_in
        sender = asyncio.create_task(sim.burst("AAPL", count))
        async with asyncio.timeout(20):
            async for quote in quotes:
                assert isinstance(quote, ibflow.Quote)
                got = (
                    round(quote.bid or 0.0, 6),
                    round(quote.ask or 0.0, 6),
                    quote.bid_size,
                    quote.ask_size,
                )
                if got == expected and session.statistics().messages_in - before >= count:
                    break
        assert await sender == count
        assert session.statistics().messages_in - before == count


async def test_order_round_trip(sim: Simulator, fast_receive: bool) -> None:
    async with session_for(sim) as session:
        trade = await session.place(AAPL, MarketOrder("BUY", 10))
        [fill] = await trade.wait_filled()
        assert (fill.quantity, fill.price) == (10, 190.02)
        assert await trade.wait_done() is OrderStatus.FILLED
        assert fill.exec_id == sim.fills[-1].exec_id
        held = await stock_positions(session)
        assert held["AAPL"] == 110


async def test_comes_back_after_the_gateway_drops(sim: Simulator, fast_receive: bool) -> None:
    async with session_for(sim) as session, session.quotes(AAPL) as quotes:
        await anext(quotes)
        sim.drop_connections()
        async with asyncio.timeout(10):
            item = await anext(quotes)
            assert isinstance(item, ibflow.Gap)
            sim.push_quote("AAPL", bid=191.00, ask=191.05)
            async for quote in quotes:
                assert isinstance(quote, ibflow.Quote)
                if quote.bid == 191.00 and quote.ask == 191.05:
                    break
        assert session.state is ibflow.ConnectionState.READY
        assert is_fast_receive(session._core.adapter._ib.client) is fast_receive
        assert session.statistics().reconnects == 1
