"""An order lost in transit: its id is never used again, it ends Lost, nothing else is touched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import ibflow
from ibflow import LimitOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL


def sent_order_ids(sim: Simulator) -> list[int]:
    """The order id of every placeOrder the simulator received, lost ones included."""
    return [int(fields[1]) for _, kind, fields in sim.requests if kind == "place_order"]


async def lose_next_place(
    session: ibflow.Session, sim: Simulator, order: ibflow.Order, timeout: float
) -> asyncio.Task[object]:
    """Start a place() whose placeOrder the gateway never handles, then drop the link."""
    feed = session.state_changes()
    sim.ignore("place_order")
    task: asyncio.Task[object] = asyncio.create_task(session.place(AAPL, order, timeout=timeout))
    await eventually(lambda: sim.request_count("place_order") == 1)
    sim.ignore("place_order", False)
    sim.drop_connections()
    async with asyncio.timeout(5):
        async for change in feed:
            if change.current is ibflow.ConnectionState.READY:
                break
    await feed.aclose()
    return task


async def test_lost_order_ends_lost_and_its_id_is_never_reused(
    session: ibflow.Session, sim: Simulator
) -> None:
    first = await lose_next_place(session, sim, LimitOrder("BUY", 1, 150.00), timeout=3)
    # The reconcile found no trace of it: place() says so at once, the trade ends Lost.
    with pytest.raises(ibflow.ConnectionLost, match="lost in transit"):
        async with asyncio.timeout(2):
            await first
    [lost] = session.trades()
    assert lost.status is OrderStatus.LOST
    assert lost.is_done
    assert lost.lost_reason is not None
    assert "no trace" in lost.lost_reason
    with pytest.raises(ibflow.OrderCancelled, match="lost"):
        await lost.wait_filled(timeout=1)
    # The next order gets a fresh id, though TWS's nextValidId did not move past the lost one.
    second = await session.place(AAPL, LimitOrder("BUY", 1, 151.00))
    assert second.order_id > lost.order_id
    assert sent_order_ids(sim) == [lost.order_id, second.order_id]
    await eventually(lambda: second.status is OrderStatus.SUBMITTED)
    # Both stay in the book; nothing was cancelled.
    assert session.trades() == (lost, second)
    assert sim.request_count("cancel_order") == 0
    await second.cancel()


async def test_place_timeout_of_a_lost_order_never_cancels_a_newer_one(
    make_session: Callable[..., ibflow.Session], sim: Simulator
) -> None:
    session = make_session(timeout=1.0)
    await session.connect()
    # Reading the executions back after the reconnect (the start-up sync's read, then the
    # order book's) is made to fail, so the reconcile cannot tell that the order is gone and
    # the first place() is still waiting when the second order goes out.
    sim.fail_next("executions", 321, "Error validating request", after=1)
    first = await lose_next_place(session, sim, LimitOrder("BUY", 1, 150.00), timeout=2.5)
    second = await session.place(AAPL, LimitOrder("BUY", 1, 151.00))
    await eventually(lambda: second.status is OrderStatus.SUBMITTED)
    with pytest.raises(ibflow.RequestTimeout):
        await first
    [lost] = [t for t in session.trades() if t is not second]
    assert second.order_id > lost.order_id
    assert sent_order_ids(sim) == [lost.order_id, second.order_id]
    # The timeout's cancel went to the lost order's own id, never to the working one.
    cancelled = [int(f[2]) for _, kind, f in sim.requests if kind == "cancel_order"]
    assert cancelled in ([], [lost.order_id])
    await asyncio.sleep(0.2)
    assert second.status is OrderStatus.SUBMITTED
    assert session.trades() == (lost, second)
    await second.cancel()
