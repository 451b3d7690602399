"""TWS's ownership rule in the simulator, driven by raw ib_async: an order belongs to the client
id that placed it; client id 0 binds orders placed by hand; the master client id hears all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import ib_async
import pytest
from ib_async import LimitOrder, Stock

from ibflow.sim import SimOrder, Simulator
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


Connect = Callable[[int], Awaitable[ib_async.IB]]


@pytest.fixture
async def connect(ib_sim: Simulator) -> AsyncIterator[Connect]:
    """``await connect(client_id)``: another ib_async client, disconnected when the test ends."""
    made: list[ib_async.IB] = []

    async def make(client_id: int) -> ib_async.IB:
        ib = ib_async.IB()
        await ib.connectAsync(ib_sim.host, ib_sim.port, clientId=client_id, timeout=5)
        made.append(ib)
        return ib

    yield make
    for ib in made:
        ib.disconnect()


def _errors(ib: ib_async.IB) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: seen.append((req_id, code))
    return seen


def _held(sim: Simulator, perm_id: int) -> SimOrder:
    return next(o for o in sim.orders if o.perm_id == perm_id)


async def _resting(ib: ib_async.IB, price: float = 150.00) -> ib_async.Trade:
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 5, price))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    return trade


async def test_a_cancel_from_another_client_id_is_10147_and_changes_nothing(
    ib: ib_async.IB, ib_sim: Simulator, connect: Connect
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trade = await _resting(ib)
    other = await connect(2)
    errors = _errors(other)
    other.client.cancelOrder(trade.order.orderId, "")
    await eventually(lambda: (trade.order.orderId, 10147) in errors)
    await ib.reqCurrentTimeAsync()  # a round trip: anything for the owner has arrived
    held = _held(ib_sim, trade.order.permId)
    assert (held.client_id, held.status, held.total_quantity) == (1, "Submitted", 5)
    assert trade.orderStatus.status == "Submitted"


async def test_the_same_order_id_from_another_client_is_a_new_order_of_its_own(
    ib: ib_async.IB, ib_sim: Simulator, connect: Connect
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trade = await _resting(ib)
    other = await connect(2)
    order_id = trade.order.orderId
    theirs = LimitOrder("BUY", 9, 140.00, orderId=order_id)
    copy = other.placeOrder(AAPL, theirs)
    await eventually(lambda: copy.orderStatus.status == "Submitted")
    mine = _held(ib_sim, trade.order.permId)
    assert (mine.client_id, mine.total_quantity, mine.lmt_price) == (1, 5, 150.00)
    new = _held(ib_sim, copy.order.permId)
    assert (new.client_id, new.order_id, new.total_quantity) == (2, order_id, 9)
    assert new.perm_id != mine.perm_id
    # From its own client, the same id is a modification.
    trade.order.lmtPrice = 151.00
    ib.placeOrder(AAPL, trade.order)
    await eventually(lambda: _held(ib_sim, trade.order.permId).lmt_price == 151.00)


async def test_a_manual_order_is_unbound_until_client_zero_binds_it(
    ib_sim: Simulator, connect: Connect
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    perm_id = ib_sim.place_manual("AAPL", "BUY", 3, limit_price=150.00)
    watcher = await connect(5)
    [seen] = await watcher.reqAllOpenOrdersAsync()
    assert (seen.order.orderId, seen.order.clientId, seen.order.permId) == (0, 0, perm_id)
    errors = _errors(watcher)
    watcher.client.cancelOrder(0, "")
    await eventually(lambda: (0, 10147) in errors)
    # Client id 0's start-up reqOpenOrders binds it: it now has a negative id.
    binder = await connect(0)
    [bound] = [t for t in binder.openTrades() if t.order.permId == perm_id]
    assert bound.order.orderId < 0
    assert bound.order.clientId == 0
    binder.cancelOrder(bound.order)
    await eventually(lambda: _held(ib_sim, perm_id).status == "Cancelled")


async def test_client_zero_with_auto_bind_adopts_new_manual_orders_and_may_change_them(
    ib_sim: Simulator, connect: Connect
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    binder = await connect(0)  # ib_async sends reqAutoOpenOrders(True) for client id 0
    assert ib_sim.request_count("auto_open_orders") == 1
    perm_id = ib_sim.place_manual("AAPL", "SELL", 4, limit_price=230.00)
    await eventually(lambda: any(t.order.permId == perm_id for t in binder.openTrades()))
    [trade] = [t for t in binder.openTrades() if t.order.permId == perm_id]
    order_id = trade.order.orderId
    assert order_id < 0
    # Another client cannot touch it under that id.
    other = await connect(3)
    errors = _errors(other)
    other.client.cancelOrder(order_id, "")
    await eventually(lambda: (order_id, 10147) in errors)
    assert _held(ib_sim, perm_id).status == "Submitted"
    # Client id 0 modifies and cancels it.
    trade.order.lmtPrice = 231.00
    binder.placeOrder(trade.contract, trade.order)
    await eventually(lambda: _held(ib_sim, perm_id).lmt_price == 231.00)
    binder.client.cancelOrder(order_id, "")
    await eventually(lambda: trade.orderStatus.status == "Cancelled")


async def test_a_manual_order_that_fills_reports_to_client_zero(
    ib_sim: Simulator, connect: Connect
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    binder = await connect(0)
    perm_id = ib_sim.place_manual("AAPL", "BUY", 2, order_type="MKT")
    await eventually(lambda: any(f.execution.permId == perm_id for f in binder.fills()))
    [fill] = [f for f in binder.fills() if f.execution.permId == perm_id]
    assert fill.execution.clientId == 0
    assert fill.execution.orderId < 0
    assert fill.execution.shares == 2


async def test_the_master_client_id_hears_every_order_but_changes_none_of_them(
    ib: ib_async.IB, ib_sim: Simulator, connect: Connect
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    ib_sim.master_client_id = 7
    master = await connect(7)
    bystander = await connect(8)
    trade = await _resting(ib)
    perm_id = trade.order.permId
    await eventually(lambda: any(t.order.permId == perm_id for t in master.openTrades()))
    await bystander.reqCurrentTimeAsync()
    assert not any(t.order.permId == perm_id for t in bystander.openTrades())
    errors = _errors(master)
    master.client.cancelOrder(trade.order.orderId, "")
    await eventually(lambda: (trade.order.orderId, 10147) in errors)
    assert _held(ib_sim, perm_id).status == "Submitted"


def test_a_manual_order_for_an_unknown_symbol_is_a_key_error(ib_sim: Simulator) -> None:
    with pytest.raises(KeyError, match="NOPE"):
        ib_sim.place_manual("NOPE", "BUY", 1, limit_price=1.0)
