"""Order events, fills and keys: a Session's own streams and a RemoteSession's (read from the
hub's journal) report the same order alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderEventKind, OrderStatus
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")


@pytest.fixture
def sim_options() -> dict[str, Any]:
    return {"speed": 1.0}


async def test_order_events_and_fills_report_a_fill_once(
    api: ibflow.SessionLike, sim: Simulator
) -> None:
    async with api.order_events() as events, api.fills_stream() as fills:
        trade = await api.place(AAPL, MarketOrder("BUY", 10))
        kinds: set[OrderEventKind] = set()
        async with asyncio.timeout(10):
            async for event in events:
                assert event.order_id == trade.order_id
                kinds.add(event.kind)
                if event.kind is OrderEventKind.STATUS and event.status is OrderStatus.FILLED:
                    break
            fill = await fills.receive()
            while OrderEventKind.FILL not in kinds:
                kinds.add((await events.receive()).kind)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await fills.receive()  # no second copy of the fill
    assert (fill.order_id, fill.quantity) == (trade.order_id, 10)
    assert fill.exec_id == sim.fills[-1].exec_id
    assert fill.commission is not None
    assert {OrderEventKind.STATUS, OrderEventKind.FILL} <= kinds


async def test_a_cancel_is_an_event(api: ibflow.SessionLike, sim: Simulator) -> None:
    async with api.order_events() as events:
        trade = await api.place(AAPL, LimitOrder("BUY", 5, 150.00))
        await trade.cancel()
        async with asyncio.timeout(10):
            async for event in events:
                if event.status is OrderStatus.CANCELLED:
                    break
    assert event.order_id == trade.order_id


async def test_a_key_places_once_and_is_checked(api: ibflow.SessionLike, sim: Simulator) -> None:
    first = await api.place(AAPL, LimitOrder("BUY", 5, 150.00), key="behaviour-1")
    again = await api.place(AAPL, LimitOrder("BUY", 5, 150.00), key="behaviour-1")
    assert again.order_id == first.order_id
    assert sim.request_count("place_order") == 1
    for bad in ("a:b", "with space", "", "x" * 65):
        with pytest.raises(ibflow.InvalidRequest, match="key"):
            await api.place(AAPL, LimitOrder("BUY", 5, 150.00), key=bad)
    assert sim.request_count("place_order") == 1
    await first.cancel()
