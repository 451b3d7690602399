"""trades() keeps every live order and only the latest max_finished_trades done ones."""

from __future__ import annotations

import gc

import ib_async
import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .conftest import AAPL


async def test_finished_trades_beyond_the_bound_leave_oldest_first(sim: Simulator) -> None:
    async with session_for(sim, max_finished_trades=2) as session:
        resting = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
        done: list[ibflow.Trade] = []
        for _ in range(4):
            trade = await session.place(AAPL, MarketOrder("BUY", 1))
            await trade.wait_filled()
            await eventually(lambda t=trade: all(f.commission is not None for f in t.fills))
            done.append(trade)
        # The live order stays; of the four done ones only the two latest are kept.
        await eventually(lambda: session.trades() == (resting, done[2], done[3]))
        cancelled = await session.place(AAPL, LimitOrder("BUY", 1, 151.00))
        assert await cancelled.cancel() is OrderStatus.CANCELLED
        assert session.trades() == (resting, done[3], cancelled)
        # A dropped trade is still a working handle for whoever holds it.
        assert done[0].status is OrderStatus.FILLED
        assert await done[0].wait_filled() == done[0].fills
        # Its executions, read again, are neither re-attributed nor delivered twice.
        fills = session.fills_stream()
        read = await session.fills()
        assert [f.exec_id for f in read] == [f.exec_id for t in done for f in t.fills]
        # Read back, the dropped ones still carry their commission as TWS reported it.
        assert [f.commission for f in read] == [f.commission for t in done for f in t.fills]
        with pytest.raises(ibflow.WouldBlock):
            fills.receive_nowait()
        await fills.aclose()
        await resting.cancel()
        assert session.trades() == (resting, cancelled)


async def test_max_finished_trades_must_be_a_whole_number() -> None:
    for bad in (-1, 1.5, "10", True, None):
        with pytest.raises(ibflow.InvalidRequest, match="max_finished_trades"):
            ibflow.Session(max_finished_trades=bad)  # type: ignore[arg-type]
    assert ibflow.Session(max_finished_trades=0) is not None


def alive(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


async def test_dropped_trades_free_their_memory(sim: Simulator) -> None:
    async with session_for(sim, max_finished_trades=3) as session:
        for _ in range(12):
            trade = await session.place(AAPL, MarketOrder("BUY", 1))
            await trade.wait_filled()
            await eventually(lambda t=trade: all(f.commission is not None for f in t.fills))
        del trade
        await eventually(lambda: len(session.trades()) == 3)
        # Nothing else holds on to the dropped orders: neither ibflow's Trades nor the copies
        # ib_async keeps of every order and execution.
        assert alive(ibflow.Trade) == 3
        assert alive(ib_async.Trade) <= 3
        assert alive(ib_async.Fill) <= 3
