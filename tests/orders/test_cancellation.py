"""place() and the waits under timeouts and task cancellation."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow import LimitOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL, sim_order


async def warm_up(session: ibflow.Session) -> None:
    """One order placed and cancelled: the contract's rules are then known to the session."""
    trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    await trade.cancel()


async def test_place_cancelled_before_the_ack_cancels_the_order(
    session: ibflow.Session, sim: Simulator
) -> None:
    await warm_up(session)  # so the deadline below falls while waiting for the ack
    sim.delay(0.5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    sim.delay(0)
    assert sim.request_count("place_order") == 2
    await eventually(lambda: sim.request_count("cancel_order") == 2)
    trade = session.trades()[-1]
    assert await trade.wait_done() is OrderStatus.CANCELLED
    assert sim_order(sim, trade.order_id).status == "Cancelled"


async def test_place_timeout_is_request_timeout_and_cancels(
    session: ibflow.Session, sim: Simulator
) -> None:
    await warm_up(session)
    sim.delay(0.5)
    with pytest.raises(ibflow.RequestTimeout, match="a cancel was sent"):
        await session.place(AAPL, LimitOrder("BUY", 5, 150.00), timeout=0.2)
    sim.delay(0)
    trade = session.trades()[-1]
    assert await trade.wait_done() is OrderStatus.CANCELLED
    assert sim.request_count("place_order") == 2


async def test_place_timeout_before_sending_sends_nothing(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.ignore("contract_data")
    with pytest.raises(ibflow.RequestTimeout, match="nothing was sent"):
        await session.place(ibflow.Stock("MSFT"), LimitOrder("BUY", 5, 150.00), timeout=0.2)
    assert sim.request_count("place_order") == 0
    assert session.trades() == ()


async def test_wait_filled_timeout_leaves_the_order_working(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 180.00))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await trade.wait_filled(timeout=None)
    with pytest.raises(ibflow.RequestTimeout):
        await trade.wait_filled(timeout=0.1)
    task = asyncio.create_task(trade.wait_done(timeout=None))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert trade.status is OrderStatus.SUBMITTED
    assert sim.request_count("cancel_order") == 0
    sim.push_quote("AAPL", bid=179.90, ask=179.95, last=179.93)
    fills = await trade.wait_filled()
    assert sum(f.quantity for f in fills) == 5


async def test_cancel_timeout_sends_the_cancel_once(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    sim.delay(0.5)
    with pytest.raises(ibflow.RequestTimeout, match="sent once"):
        await trade.cancel(timeout=0.1)
    sim.delay(0)
    assert await trade.wait_done() is OrderStatus.CANCELLED
    assert sim.request_count("cancel_order") == 1
