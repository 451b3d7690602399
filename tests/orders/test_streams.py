"""session.order_events() and session.fills_stream(): bounded, never a silent loss."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderEventKind, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import session_for

from .conftest import AAPL


async def test_order_events_follow_every_order(session: ibflow.Session, sim: Simulator) -> None:
    async with session.order_events() as events:
        first = await session.place(AAPL, MarketOrder("BUY", 1))
        second = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
        await first.wait_filled()
        await second.cancel()
        seen: list[ibflow.OrderEvent] = []
        async with asyncio.timeout(3):
            async for event in events:
                seen.append(event)
                if event.order_id == second.order_id and event.status.is_done:
                    break
    mine = [e for e in seen if e.order_id == first.order_id]
    [fill_event] = [e for e in mine if e.kind is OrderEventKind.FILL]
    assert fill_event.fill is not None
    assert fill_event.fill.exec_id == first.fills[0].exec_id
    [commission_event] = [e for e in mine if e.kind is OrderEventKind.COMMISSION]
    assert commission_event.fill == first.fills[0]
    assert seen[-1].status is OrderStatus.CANCELLED
    assert {e.order_id for e in seen} == {first.order_id, second.order_id}
    assert all(e.at.tzinfo is not None for e in seen)


async def test_fills_stream_delivers_each_fill_with_its_commission(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.fills_stream() as fills:
        trade = await session.place(AAPL, MarketOrder("SELL", 2))
        async with asyncio.timeout(3):
            fill = await fills.receive()
        assert fill.order_id == trade.order_id
        assert fill.commission is not None
        assert fill.commission.amount == pytest.approx(sim.fills[-1].commission)
        with pytest.raises(ibflow.WouldBlock):
            fills.receive_nowait()


async def test_a_slow_consumer_is_told_instead_of_losing_events(
    session: ibflow.Session, sim: Simulator
) -> None:
    events = session.order_events(buffer=2)
    trade = await session.place(AAPL, MarketOrder("BUY", 1))
    await trade.wait_filled()
    async with asyncio.timeout(3):
        with pytest.raises(ibflow.SlowConsumer):
            await drain(events)
    # The trade's own history still has everything.
    assert [e.kind for e in trade.history].count(OrderEventKind.FILL) == 1


async def drain(events: ibflow.Stream[ibflow.OrderEvent]) -> None:
    async for _ in events:
        pass


async def test_streams_end_when_the_session_closes(sim: Simulator) -> None:
    async with session_for(sim) as session:
        events = session.order_events()
        fills = session.fills_stream()
        trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    async with asyncio.timeout(3):
        assert [e.order_id for e in [e async for e in events]] != []
        assert [f async for f in fills] == []
    with pytest.raises(ibflow.SessionClosedError):
        await trade.wait_filled()
    async with asyncio.timeout(1):
        assert [e.order_id for e in [e async for e in trade.events()]] != []
    late = session.order_events()
    async with asyncio.timeout(1):
        assert [e async for e in late] == []
