"""Orders through to their terminal states against the simulator, driven by its quotes."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderEventKind, OrderStatus, StopLimitOrder, StopOrder
from ibflow.sim import Scenario, Simulator
from ibflow.testing import eventually, session_for

from .conftest import AAPL, sim_order


async def collect(trade: ibflow.Trade) -> list[ibflow.OrderEvent]:
    async with asyncio.timeout(3):
        return [event async for event in trade.events()]


async def test_market_order_fills_with_commission(session: ibflow.Session, sim: Simulator) -> None:
    trade = await session.place(AAPL, MarketOrder("BUY", 10))
    assert trade.perm_id is not None
    assert trade.contract.con_id == 265598  # qualified before sending
    [fill] = await trade.wait_filled()
    assert trade.status is OrderStatus.FILLED
    assert (fill.quantity, fill.price, fill.side) == (10, 190.02, ibflow.Side.BUY)
    assert (trade.filled, trade.remaining, trade.avg_fill_price) == (10, 0, 190.02)
    assert fill.exec_id == sim.fills[-1].exec_id
    events = await collect(trade)
    kinds = [e.kind for e in events]
    assert kinds.count(OrderEventKind.FILL) == 1
    assert kinds.count(OrderEventKind.COMMISSION) == 1
    statuses = [e.status for e in events if e.kind is OrderEventKind.STATUS]
    assert statuses[-1] is OrderStatus.FILLED
    assert statuses.count(OrderStatus.FILLED) == 1
    assert trade.fills[0].commission is not None
    assert trade.commission == pytest.approx(sim.fills[-1].commission)
    assert await trade.wait_done() is OrderStatus.FILLED
    assert session.trades() == (trade,)


async def test_limit_order_rests_then_fills_when_crossed(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 180.00))
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    assert trade.fills == ()
    sim.push_quote("AAPL", bid=179.90, ask=179.95, last=179.93)
    fills = await trade.wait_filled()
    assert sum(f.quantity for f in fills) == 5
    assert all(f.price <= 180.00 for f in fills)


async def test_stop_order_triggers(session: ibflow.Session, sim: Simulator) -> None:
    trade = await session.place(AAPL, StopOrder("SELL", 3, 180.00))
    await eventually(lambda: trade.status is OrderStatus.PRE_SUBMITTED)
    sim.push_quote("AAPL", bid=179.50, ask=179.52, last=179.51)
    [fill] = await trade.wait_filled()
    assert fill.side is ibflow.Side.SELL
    statuses = [e.status for e in trade.history if e.kind is OrderEventKind.STATUS]
    assert statuses.index(OrderStatus.SUBMITTED) < statuses.index(OrderStatus.FILLED)


async def test_stop_limit_order_triggers_then_fills_within_its_limit(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, StopLimitOrder("BUY", 2, 201.00, 200.00))
    sim.push_quote("AAPL", bid=200.00, ask=200.02, last=200.01)
    [fill] = await trade.wait_filled()
    assert fill.price <= 201.00


async def test_partial_fills_add_up() -> None:
    scenario = Scenario.from_dict({"extends": "default", "fill_clip": 4})
    async with Simulator(port=0, scenario=scenario) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        async with session_for(sim) as session:
            trade = await session.place(AAPL, MarketOrder("BUY", 10))
            fills = await trade.wait_filled()
            assert [f.quantity for f in fills] == [4, 4, 2]
            assert trade.filled == 10
            assert [f.cumulative_quantity for f in fills] == [4, 8, 10]


async def test_cancel_a_resting_order(session: ibflow.Session, sim: Simulator) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim_order(sim, trade.order_id).status == "Cancelled"
    with pytest.raises(ibflow.OrderCancelled) as caught:
        await trade.wait_filled()
    assert (caught.value.order_id, caught.value.filled) == (trade.order_id, 0)
    # Cancelling a done order sends nothing.
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim.request_count("cancel_order") == 1


async def test_cancel_refused_by_tws_is_order_rejected(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    sim.fail_next("cancel_order", 10148, "OrderId that needs to be cancelled cannot be cancelled")
    with pytest.raises(ibflow.OrderRejected) as caught:
        await trade.cancel()
    assert caught.value.code == 10148
    assert trade.status is OrderStatus.SUBMITTED  # an error never ends an order by itself
    assert trade.error is None  # the refusal belonged to the cancel, not to the order
    assert await trade.cancel() is OrderStatus.CANCELLED


async def test_modify_price_and_quantity_keeps_the_order_id(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    await trade.modify(quantity=7, limit_price=151.00)
    assert (trade.order.quantity, trade.order.limit_price) == (7, 151.00)
    record = sim_order(sim, trade.order_id)
    assert (record.total_quantity, record.lmt_price) == (7, 151.00)
    assert any(e.kind is OrderEventKind.MODIFIED for e in trade.history)
    # A change that crosses the market fills.
    await trade.modify(limit_price=190.05)
    fills = await trade.wait_filled()
    assert sum(f.quantity for f in fills) == 7
    assert sim.request_count("place_order") == 3


async def test_modify_is_validated_before_sending(session: ibflow.Session, sim: Simulator) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    with pytest.raises(ibflow.InvalidRequest, match="needs quantity"):
        await trade.modify()
    with pytest.raises(ibflow.InvalidRequest, match="changes nothing"):
        await trade.modify(limit_price=150.00)
    with pytest.raises(ibflow.InvalidRequest, match="takes no stop_price"):
        await trade.modify(stop_price=149.00)
    with pytest.raises(ibflow.InvalidRequest, match="minimum tick"):
        await trade.modify(limit_price=150.005)
    with pytest.raises(ibflow.InvalidRequest, match="greater than 0"):
        await trade.modify(quantity=0)
    assert sim.request_count("place_order") == 1
    await trade.cancel()
    with pytest.raises(ibflow.InvalidRequest, match="cannot be modified"):
        await trade.modify(quantity=6)
    assert sim.request_count("place_order") == 1


async def test_modify_refused_by_tws_keeps_the_old_terms(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    sim.fail_next("place_order", 201, "Order rejected - reason:not today")
    with pytest.raises(ibflow.OrderRejected) as caught:
        await trade.modify(limit_price=151.00)
    assert caught.value.code == 201
    assert trade.order.limit_price == 150.00
    assert trade.status is OrderStatus.SUBMITTED


async def test_bracket_take_profit_fills_and_stop_loss_is_cancelled(
    session: ibflow.Session, sim: Simulator
) -> None:
    placed = await session.place(AAPL, ibflow.bracket("BUY", 10, 190.05, 195.00, 185.00))
    assert isinstance(placed, ibflow.BracketTrade)
    parent, take_profit, stop_loss = placed
    assert take_profit.parent_id == stop_loss.parent_id == parent.order_id
    await parent.wait_filled()
    await eventually(lambda: stop_loss.status is OrderStatus.PRE_SUBMITTED)
    assert not take_profit.is_done
    sim.push_quote("AAPL", bid=195.10, ask=195.12, last=195.11)
    assert await placed.wait_done() == (
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
    )
    # The three went out back to back; only the last one released the group.
    sent = [fields for _, kind, fields in sim.requests if kind == "place_order"]
    assert len(sent) == 3


async def test_bracket_cancel_takes_the_children_with_the_parent(
    session: ibflow.Session, sim: Simulator
) -> None:
    placed = await session.place(AAPL, ibflow.bracket("BUY", 10, 170.00, 175.00, 165.00))
    assert await placed.cancel() == (OrderStatus.CANCELLED,) * 3
    assert sim.request_count("cancel_order") == 1


async def test_oca_group_fill_cancels_the_rest(session: ibflow.Session, sim: Simulator) -> None:
    group = ibflow.oca(LimitOrder("BUY", 1, 185.00), LimitOrder("BUY", 1, 150.00))
    placed = await session.place(AAPL, group)
    assert isinstance(placed, ibflow.TradeGroup)
    assert len(placed) == 2
    sim.push_quote("AAPL", bid=184.90, ask=184.95, last=184.93)
    assert await placed.wait_done() == (OrderStatus.FILLED, OrderStatus.CANCELLED)
    assert {o.oca_group for o in sim.orders if o.client_id == 1} == {group.group}
    with pytest.raises(ibflow.OrderCancelled):
        await placed[1].wait_filled()


async def test_oca_reduce_shrinks_the_sibling(session: ibflow.Session, sim: Simulator) -> None:
    group = ibflow.oca(LimitOrder("SELL", 4, 200.00), StopOrder("SELL", 10, 150.00), type="reduce")
    placed = await session.place(AAPL, group)
    sim.push_quote("AAPL", bid=200.00, ask=200.02, last=200.01)
    await placed[0].wait_filled()
    await eventually(lambda: placed[1].order.quantity == 6)
    assert any(e.kind is OrderEventKind.MODIFIED for e in placed[1].history)
    await placed.cancel()
