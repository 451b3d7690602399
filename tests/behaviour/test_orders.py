"""Orders, brackets, OCA groups, changes and cancels: the same outcomes from a Session and a
RemoteSession. The simulator runs at normal speed so its market walk stays away from resting
orders; quotes are pinned with ``push_quote``."""

from __future__ import annotations

from typing import Any

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")


@pytest.fixture
def sim_options() -> dict[str, Any]:
    return {"speed": 1.0}


def _at_sim(sim: Simulator, order_id: int) -> Any:
    [order] = [o for o in sim.orders if o.order_id == order_id]
    return order


async def test_a_market_order_fills(api: ibflow.SessionLike, sim: Simulator) -> None:
    trade = await api.place(AAPL, MarketOrder("BUY", 10))
    assert isinstance(trade, ibflow.TradeLike)
    [fill] = await trade.wait_filled()
    assert (fill.quantity, fill.price, fill.side) == (10, 190.02, ibflow.Side.BUY)
    assert fill.exec_id == sim.fills[-1].exec_id
    assert trade.status is OrderStatus.FILLED
    assert trade.filled == 10
    assert await trade.wait_done() is OrderStatus.FILLED
    assert [t.order_id for t in api.trades()] == [trade.order_id]
    assert fill.exec_id in {f.exec_id for f in await api.fills()}
    assert trade.order_id in {o.order_id for o in await api.completed_orders(api_only=True)}
    assert sim.request_count("place_order") == 1


async def test_modify_then_cancel_a_resting_order(api: ibflow.SessionLike, sim: Simulator) -> None:
    trade = await api.place(AAPL, LimitOrder("BUY", 5, 150.00))
    assert trade.order_id in {o.order_id for o in await api.open_orders()}
    await trade.modify(quantity=7, limit_price=151.00)
    assert (trade.order.quantity, trade.order.limit_price) == (7, 151.00)
    record = _at_sim(sim, trade.order_id)
    assert (record.total_quantity, record.lmt_price) == (7, 151.00)
    with pytest.raises(ibflow.InvalidRequest, match="changes nothing"):
        await trade.modify(limit_price=151.00)
    assert await trade.cancel() is OrderStatus.CANCELLED
    with pytest.raises(ibflow.OrderCancelled) as cancelled:
        await trade.wait_filled()
    assert (cancelled.value.order_id, cancelled.value.filled) == (trade.order_id, 0)
    assert _at_sim(sim, trade.order_id).status == "Cancelled"
    assert sim.request_count("place_order") == 2


async def test_modify_a_trailing_stop_and_its_time_in_force(
    api: ibflow.SessionLike, sim: Simulator
) -> None:
    trade = await api.place(AAPL, ibflow.TrailingStopOrder("SELL", 2, trail_amount=5.00))
    await trade.modify(trail_amount=2.50, tif="GTC")
    assert (trade.order.trail_amount, trade.order.tif) == (2.50, ibflow.TimeInForce.GTC)
    record = _at_sim(sim, trade.order_id)
    assert (record.aux_price, record.tif) == (2.50, "GTC")
    with pytest.raises(ibflow.InvalidRequest, match="offset"):
        await trade.modify(offset=0.10)
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim.request_count("place_order") == 2


async def test_cancel_order_by_id(api: ibflow.SessionLike, sim: Simulator) -> None:
    trade = await api.place(AAPL, LimitOrder("SELL", 3, 250.00))
    assert await api.cancel_order(trade.order_id) is OrderStatus.CANCELLED
    assert await trade.wait_done() is OrderStatus.CANCELLED
    with pytest.raises(ibflow.OrderRejected) as unknown:
        await api.cancel_order(987654)
    assert unknown.value.code == 10147


async def test_a_bracket_takes_profit(api: ibflow.SessionLike, sim: Simulator) -> None:
    placed = await api.place(AAPL, ibflow.bracket("BUY", 10, 190.05, 195.00, 185.00))
    assert isinstance(placed, ibflow.BracketTradeLike)
    parent, take_profit, stop_loss = placed
    assert (placed.parent, placed.take_profit, placed.stop_loss) == (parent, take_profit, stop_loss)
    assert take_profit.order.limit_price == 195.00
    await parent.wait_filled()
    sim.push_quote("AAPL", bid=195.10, ask=195.12, last=195.11)
    assert await placed.wait_done() == (
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
    )
    assert placed.is_done
    assert sim.request_count("place_order") == 3


async def test_an_oca_group_cancels_the_rest(api: ibflow.SessionLike, sim: Simulator) -> None:
    group = ibflow.oca(LimitOrder("BUY", 1, 185.00), LimitOrder("BUY", 1, 150.00))
    placed = await api.place(AAPL, group)
    assert isinstance(placed, ibflow.TradeGroupLike)
    assert len(placed) == 2
    sim.push_quote("AAPL", bid=184.90, ask=184.95, last=184.93)
    assert await placed.wait_done() == (OrderStatus.FILLED, OrderStatus.CANCELLED)
    with pytest.raises(ibflow.OrderCancelled):
        await placed[1].wait_filled()


async def test_a_bracket_cancel_takes_the_children(api: ibflow.SessionLike, sim: Simulator) -> None:
    placed = await api.place(AAPL, ibflow.bracket("BUY", 10, 170.00, 175.00, 165.00))
    assert await placed.cancel() == (OrderStatus.CANCELLED,) * 3
    assert sim.request_count("cancel_order") == 1


async def test_refusals_are_typed(api: ibflow.SessionLike, sim: Simulator) -> None:
    sim.fail_next("place_order", 201, "Order rejected - reason:not today")
    with pytest.raises(ibflow.OrderRejected) as rejected:
        await api.place(AAPL, LimitOrder("BUY", 5, 150.00))
    assert rejected.value.code == 201
    with pytest.raises(ibflow.ContractNotFound):
        await api.place(ibflow.Stock("NOSUCHTHING"), MarketOrder("BUY", 1))
    with pytest.raises(ibflow.InvalidRequest, match="minimum tick"):
        await api.place(AAPL, LimitOrder("BUY", 5, 150.005))
    preview = await api.what_if(AAPL, LimitOrder("BUY", 5, 150.00))
    assert isinstance(preview, ibflow.OrderPreview)
    assert sim.request_count("place_order") == 2  # the rejected order and the preview
