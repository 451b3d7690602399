"""Orders through to their terminal states, driven by real ib_async."""

from __future__ import annotations

import ib_async
import pytest
from ib_async import (
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Stock,
    StopLimitOrder,
    StopOrder,
)

from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def _place(
    ib: ib_async.IB, contract: ib_async.Contract, order: ib_async.Order
) -> ib_async.Trade:
    trade = ib.placeOrder(contract, order)
    await eventually(lambda: trade.orderStatus.status not in ("PendingSubmit", ""))
    return trade


async def test_market_order_round_trip(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    before = {p.contract.conId: p.position for p in ib.positions()}[265598]
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", 10))
    await eventually(trade.isDone)
    statuses = [e.status for e in trade.log]
    assert statuses[0] == "PendingSubmit"
    assert statuses[-1] == "Filled"
    assert "Submitted" in statuses
    assert trade.filled() == 10
    [fill] = trade.fills
    assert fill.execution.price == pytest.approx(190.02)  # market buys lift the offer
    assert fill.execution.side == "BOT"
    await eventually(lambda: fill.commissionReport.commission > 0)
    await eventually(
        lambda: {p.contract.conId: p.position for p in ib.positions()}[265598] == before + 10
    )
    aapl = next(i for i in ib.portfolio() if i.contract.conId == 265598)
    assert aapl.position == before + 10
    assert ib_sim.fills[-1].exec_id == fill.execution.execId


async def test_limit_order_rests_until_the_market_crosses(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trade = await _place(ib, AAPL, LimitOrder("BUY", 5, 185.00))
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    assert not trade.fills
    ib_sim.push_quote("AAPL", bid=184.90, ask=184.95, last=184.93)
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.price <= 185.00


async def test_stop_order_triggers(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trade = await _place(ib, AAPL, StopOrder("SELL", 3, 188.00))
    assert not trade.isDone()
    ib_sim.push_quote("AAPL", bid=187.50, ask=187.52, last=187.51)
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.side == "SLD"


async def test_stop_limit_order_triggers_then_rests(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trade = await _place(ib, AAPL, StopLimitOrder("BUY", 2, 195.00, 192.00))
    ib_sim.push_quote("AAPL", bid=192.00, ask=192.02, last=192.01)
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.price <= 195.00


async def test_cancel_order(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    trade = await _place(ib, AAPL, LimitOrder("BUY", 5, 150.00))
    ib.cancelOrder(trade.order)
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    await eventually(lambda: (trade.order.orderId, 202) in errors)


async def test_cancel_unknown_order_is_error_10147(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.client.cancelOrder(987654, "")
    await eventually(lambda: 10147 in errors)


async def test_modify_order(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trade = await _place(ib, AAPL, LimitOrder("BUY", 5, 150.00))
    trade.order.lmtPrice = 151.00
    trade.order.totalQuantity = 7
    ib.placeOrder(AAPL, trade.order)
    await eventually(
        lambda: [
            o
            for o in ib_sim.orders
            if o.order_id == trade.order.orderId and o.lmt_price == 151.00 and o.total_quantity == 7
        ]
    )
    ib.cancelOrder(trade.order)
    await eventually(trade.isDone)


async def test_bracket_order(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    parent, take_profit, stop_loss = ib.bracketOrder("BUY", 10, 190.05, 195.00, 185.00)
    trades = [ib.placeOrder(AAPL, o) for o in (parent, take_profit, stop_loss)]
    await eventually(trades[0].isDone)
    assert trades[0].orderStatus.status == "Filled"
    assert not trades[1].isDone()
    assert not trades[2].isDone()
    ib_sim.push_quote("AAPL", bid=195.10, ask=195.12, last=195.11)
    await eventually(lambda: trades[1].isDone() and trades[2].isDone())
    assert trades[1].orderStatus.status == "Filled"
    assert trades[2].orderStatus.status == "Cancelled"


async def test_oca_group_cancels_the_rest(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    orders = ib.oneCancelsAll(
        [LimitOrder("BUY", 1, 189.00), LimitOrder("BUY", 1, 150.00)], "oca-test", 1
    )
    trades = [await _place(ib, AAPL, o) for o in orders]
    ib_sim.push_quote("AAPL", bid=188.90, ask=188.95, last=188.93)
    await eventually(lambda: all(t.isDone() for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Filled", "Cancelled"]
    # An order that joins the group after a member filled is cancelled on arrival.
    late = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 100.00, ocaGroup="oca-test", ocaType=1))
    await eventually(late.isDone)
    assert late.orderStatus.status == "Cancelled"


async def test_global_cancel(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    trades = [await _place(ib, AAPL, LimitOrder("BUY", 1, 150.0 + i)) for i in range(3)]
    ib.reqGlobalCancel()
    await eventually(lambda: all(t.isDone() for t in trades))
    assert {t.orderStatus.status for t in trades} == {"Cancelled"}


async def test_open_orders_all_open_orders_and_completed(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    resting = await _place(ib, AAPL, LimitOrder("BUY", 1, 150.00))
    other = ib_async.IB()
    await other.connectAsync(ib_sim.host, ib_sim.port, clientId=2, timeout=3)
    try:
        assert (
            await other.reqOpenOrdersAsync() == []
        )  # orders belong to the client that placed them
        everyone = await other.reqAllOpenOrdersAsync()
        assert [t.order.orderId for t in everyone] == [resting.order.orderId]
    finally:
        other.disconnect()
    filled = ib.placeOrder(AAPL, MarketOrder("SELL", 1))
    await eventually(filled.isDone)
    completed = await ib.reqCompletedOrdersAsync(apiOnly=True)
    assert any(
        t.orderStatus.status == "Filled" and t.order.permId == filled.order.permId
        for t in completed
    )


async def test_executions_with_filter(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    for action in ("BUY", "SELL"):
        trade = ib.placeOrder(AAPL, MarketOrder(action, 1))
        await eventually(trade.isDone)
    fills = await ib.reqExecutionsAsync(ExecutionFilter(side="BUY"))
    assert fills
    assert {f.execution.side for f in fills} == {"BOT"}
    assert len(await ib.reqExecutionsAsync()) >= 2
    # A second client loads the day's executions, with their commission reports, at start-up.
    other = ib_async.IB()
    await other.connectAsync(ib_sim.host, ib_sim.port, clientId=2, timeout=3)
    try:
        loaded = other.fills()
        assert len(loaded) >= 2
        assert all(f.commissionReport.execId == f.execution.execId for f in loaded)
        assert all(f.commissionReport.commission > 0 for f in loaded)
    finally:
        other.disconnect()


async def test_what_if_order(ib: ib_async.IB, ib_sim: Simulator) -> None:
    state = await ib.whatIfOrderAsync(AAPL, MarketOrder("BUY", 100))
    assert float(state.initMarginChange) > 0
    assert float(state.commission) > 0
    assert not [o for o in ib_sim.orders if o.total_quantity == 100]  # nothing was placed


async def test_readonly_mode_rejects_orders_with_321(ib_sim_factory) -> None:  # type: ignore[no-untyped-def]
    sim = await ib_sim_factory(readonly=True)
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=3)
    try:
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *_: errors.append(code)
        ib.placeOrder(AAPL, MarketOrder("BUY", 1))
        await eventually(lambda: 321 in errors)
        assert sim.fills == []
    finally:
        ib.disconnect()


async def test_fills_move_cash_positions_and_pnl(ib: ib_async.IB, ib_sim: Simulator) -> None:
    def cash() -> float:
        return next(
            float(v.value)
            for v in ib.accountValues()
            if v.tag == "TotalCashValue" and v.currency == "USD"
        )

    ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    start = cash()
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", 10))
    await eventually(trade.isDone)
    await eventually(lambda: cash() < start - 1900)
    pnl = ib.reqPnLSingle("DU1234567", "", 265598)
    await eventually(lambda: pnl.position == pnl.position and pnl.position > 0)
