"""open_orders(), completed_orders(), fills(since), what_if() and trades() against the sim."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import session_for

from .conftest import AAPL


async def test_open_orders_lists_working_orders(session: ibflow.Session, sim: Simulator) -> None:
    assert await session.open_orders() == []
    resting = await session.place(AAPL, LimitOrder("BUY", 5, 150.00, order_ref="rest"))
    filled = await session.place(AAPL, MarketOrder("BUY", 1))
    await filled.wait_filled()
    [row] = await session.open_orders()
    assert (row.order_id, row.perm_id, row.client_id) == (resting.order_id, resting.perm_id, 1)
    assert (row.side, row.quantity, row.limit_price) == (ibflow.Side.BUY, 5, 150.00)
    assert (row.order_type, row.status, row.order_ref) == (
        ibflow.OrderType.LIMIT,
        OrderStatus.SUBMITTED,
        "rest",
    )
    assert (row.filled, row.remaining) == (0, 5)
    assert row.contract.con_id == 265598


async def test_open_orders_of_other_clients_need_all_open_orders(sim: Simulator) -> None:
    async with session_for(sim, client_id=7) as other:
        await other.place(AAPL, LimitOrder("BUY", 1, 150.00))
        async with session_for(sim, client_id=8) as mine:
            assert await mine.open_orders() == []
        async with session_for(sim, client_id=9, all_open_orders=True) as everything:
            [row] = await everything.open_orders()
            assert row.client_id == 7


async def test_concurrent_open_orders_calls_do_not_orphan_each_other(
    session: ibflow.Session,
) -> None:
    await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    answers = await asyncio.gather(*(session.open_orders() for _ in range(3)))
    assert [len(a) for a in answers] == [1, 1, 1]


async def test_completed_orders(session: ibflow.Session, sim: Simulator) -> None:
    filled = await session.place(AAPL, MarketOrder("BUY", 2))
    await filled.wait_filled()
    cancelled = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    await cancelled.cancel()
    rows = {row.perm_id: row for row in await session.completed_orders()}
    done = rows[filled.perm_id]
    assert (done.order_id, done.status, done.filled, done.remaining) == (
        filled.order_id,
        OrderStatus.FILLED,
        2,
        0,
    )
    assert done.completed_time is not None
    assert done.completed_time.tzinfo is not None
    gone = rows[cancelled.perm_id]
    assert (gone.status, gone.completed_status) == (OrderStatus.CANCELLED, "Cancelled by Trader")


async def test_fills_with_commissions_and_since(session: ibflow.Session, sim: Simulator) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    trade = await session.place(AAPL, MarketOrder("SELL", 3))
    await trade.wait_filled()
    await asyncio.wait_for(_commission_of(trade), 3)
    fills = await session.fills()
    mine = [f for f in fills if f.order_id == trade.order_id]
    assert [f.exec_id for f in mine] == [trade.fills[0].exec_id]
    assert mine[0].commission == trade.fills[0].commission
    assert mine[0].side is ibflow.Side.SELL
    assert [f.exec_id for f in await session.fills(since=before)] == [f.exec_id for f in fills]
    assert await session.fills(since=datetime.now(UTC) + timedelta(hours=1)) == []
    with pytest.raises(ibflow.InvalidRequest, match="aware"):
        await session.fills(since=datetime(2030, 1, 1))


async def _commission_of(trade: ibflow.Trade) -> None:
    async for _ in trade.events():
        pass


async def test_what_if_previews_without_placing(session: ibflow.Session, sim: Simulator) -> None:
    preview = await session.what_if(AAPL, LimitOrder("BUY", 100, 190.00))
    assert preview.init_margin_change == pytest.approx(9500.0, rel=0.01)
    assert preview.commission == pytest.approx(1.0)
    assert preview.commission_currency == "USD"
    assert preview.init_margin_after is not None
    assert await session.open_orders() == []
    assert session.trades() == ()
    with pytest.raises(ibflow.InvalidRequest, match="one Order"):
        await session.what_if(AAPL, ibflow.bracket("BUY", 1, 190.0, 195.0, 185.0))  # type: ignore[arg-type]
    with pytest.raises(ibflow.InvalidRequest, match="minimum tick"):
        await session.what_if(AAPL, LimitOrder("BUY", 1, 190.001))


async def test_reads_need_a_ready_session(sim: Simulator) -> None:
    session = session_for(sim)
    with pytest.raises(ibflow.SessionClosedError):
        await session.open_orders()
    with pytest.raises(ibflow.SessionClosedError):
        await session.place(AAPL, MarketOrder("BUY", 1))
    assert session.trades() == ()
    await session.aclose()
