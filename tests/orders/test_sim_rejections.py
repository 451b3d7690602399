"""TWS refusing orders, through the public Session API: held ``Inactive``, or rejected outright.

The simulator produces both the way TWS does on the wire: an order TWS holds but will not work
is acknowledged (or not: TWS has been seen sending the error first), gets error 201 addressed
to it, then reports ``Inactive``; a placeOrder rejected before it exists gets only the error.
ibflow promises ``OrderRejected`` (with IB's code) for both, a terminal ``Inactive`` status for
the first, which a cancel still removes, and a Trade handle whichever message came first.
"""

from __future__ import annotations

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderEventKind, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL, sim_order


async def test_order_held_inactive_ends_inactive_with_the_rejection(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.inactivate_next()
    trade = await session.place(AAPL, MarketOrder("BUY", 5))  # marketable: would fill at once
    assert await trade.wait_done() is OrderStatus.INACTIVE
    assert trade.is_done
    error = trade.error
    assert isinstance(error, ibflow.OrderRejected)
    assert (error.code, error.req_id) == (201, trade.order_id)
    assert error.message.startswith("Order rejected - reason:")
    with pytest.raises(ibflow.OrderRejected) as raised:
        await trade.wait_filled()
    assert raised.value is error
    kinds = [(e.kind, e.status, e.code) for e in trade.history]
    assert (OrderEventKind.MESSAGE, OrderStatus.PRE_SUBMITTED, 201) in kinds
    assert kinds[-1] == (OrderEventKind.STATUS, OrderStatus.INACTIVE, None)
    # Never worked: the market moving through it fills nothing.
    sim.push_quote("AAPL", bid=150.00, ask=150.02, last=150.01)
    assert trade.fills == ()
    assert sim.fills == []
    assert sim_order(sim, trade.order_id).status == "Inactive"
    snapshots = await session.open_orders()
    assert [(s.order_id, s.status) for s in snapshots] == [(trade.order_id, OrderStatus.INACTIVE)]


async def test_inactive_only_hits_the_chosen_order(session: ibflow.Session, sim: Simulator) -> None:
    sim.inactivate_next("AAPL", after=1)
    first = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    second = await session.place(AAPL, LimitOrder("BUY", 1, 151.00))
    third = await session.place(AAPL, LimitOrder("BUY", 1, 152.00))
    assert await second.wait_done() is OrderStatus.INACTIVE
    await eventually(lambda: third.status is OrderStatus.SUBMITTED)
    assert first.status is OrderStatus.SUBMITTED
    assert first.error is None
    assert third.error is None
    for trade in (first, third):
        assert await trade.cancel() is OrderStatus.CANCELLED


async def test_fail_next_after_one_rejects_only_the_second_order(
    session: ibflow.Session, sim: Simulator
) -> None:
    text = "Order rejected - reason:Simulated rejection"
    sim.fail_next("place_order", 201, text, after=1)
    first = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    with pytest.raises(ibflow.OrderRejected) as raised:
        await session.place(AAPL, LimitOrder("BUY", 2, 151.00))
    rejected = raised.value
    assert (rejected.code, rejected.message) == (201, text)
    third = await session.place(AAPL, LimitOrder("BUY", 3, 152.00))

    assert sim.request_count("place_order") == 3
    assert first.order_id < rejected.req_id < third.order_id
    # The rejected order never existed: not at the broker, not among the session's trades.
    assert rejected.req_id not in {o.order_id for o in sim.orders}
    assert [t.order_id for t in session.trades()] == [first.order_id, third.order_id]
    assert rejected.trade is not None
    assert (rejected.trade.order_id, rejected.trade.error) == (rejected.req_id, rejected)
    assert rejected.trade.status is OrderStatus.PENDING_SUBMIT  # TWS never reported it
    assert first.status is OrderStatus.SUBMITTED
    assert third.status is OrderStatus.SUBMITTED
    for trade in (first, third):
        assert await trade.cancel() is OrderStatus.CANCELLED


async def test_an_inactive_order_is_still_cancelled_at_tws(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.inactivate_next()
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    assert await trade.wait_done() is OrderStatus.INACTIVE
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim.request_count("cancel_order") == 1
    assert sim_order(sim, trade.order_id).status == "Cancelled"
    assert await session.open_orders() == []
    assert trade.history[-1].status is OrderStatus.CANCELLED
    # Cancelled is final: a second cancel sends nothing.
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim.request_count("cancel_order") == 1


async def test_a_rejection_before_the_acknowledgement_still_gives_a_handle(
    session: ibflow.Session, sim: Simulator
) -> None:
    """Error 201 first, then the Inactive order: place() raises, and the trade follows on."""
    sim.inactivate_next(acknowledge=False)
    with pytest.raises(ibflow.OrderRejected) as raised:
        await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    rejected = raised.value
    assert rejected.code == 201
    trade = rejected.trade
    assert trade is not None
    assert trade.error is rejected
    await eventually(lambda: trade.status is OrderStatus.INACTIVE)
    assert [t.order_id for t in session.trades()] == [trade.order_id]
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim_order(sim, trade.order_id).status == "Cancelled"
    assert sim.request_count("place_order") == 1
