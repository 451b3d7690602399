"""Average prices, average costs and PnL without binary-float drift, in the broker and on the wire.

Three fills at 190.00, 190.00 and 190.06 average 190.02; a running float average gives
190.01999999999998. Selling 70 bought at 150.00 for 192.06 realizes 2,944.20 before commission;
float arithmetic gives 2944.2000000000003.
"""

from __future__ import annotations

import dataclasses

import ib_async
from ib_async import MarketOrder, Stock

from ibflow.sim import Scenario, Simulator
from ibflow.testing import SimFactory, eventually

from .test_broker import AAPL, ACCOUNT, make_broker, req


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.partition(".")[2]) if "e" not in text else 99


def test_partial_fills_average_to_the_decimal_price() -> None:
    broker, market, _ = make_broker(partial_fill_clip=1)
    market.set(AAPL, bid=189.99, ask=190.0)
    broker.place(1, req(1, "BUY", 3), AAPL)
    broker.on_quote(AAPL.con_id)
    market.set(AAPL, bid=190.05, ask=190.06)
    broker.on_quote(AAPL.con_id)
    order = broker.order(1, 1)
    assert order is not None
    assert order.status == "Filled"
    assert [ex.price for ex in broker.executions()] == [190.0, 190.0, 190.06]
    assert order.avg_fill_price == 190.02
    assert repr(order.avg_fill_price) == "190.02"
    assert [repr(ex.avg_price) for ex in broker.executions()] == ["190.0", "190.0", "190.02"]


def test_realized_pnl_and_average_cost_carry_no_float_drift() -> None:
    broker, market, _ = make_broker()  # 100 AAPL at 150.00
    market.set(AAPL, bid=192.06, ask=192.07)
    broker.place(1, req(1, "SELL", 70), AAPL)
    [sold] = broker.executions()
    assert sold.commission == 1.0
    assert sold.realized_pnl == 2943.2  # (192.06 - 150.00) × 70 - 1.00
    [pos] = broker.positions(ACCOUNT)
    assert pos.realized_pnl == 2943.2
    single = broker.pnl_single(ACCOUNT, AAPL.con_id)
    assert single is not None
    assert single[3] == 2943.2
    # Buying again averages the cost with the commission in it, to a sane precision.
    broker.place(1, req(2, "BUY", 3), AAPL)
    [pos] = broker.positions(ACCOUNT)
    assert pos.quantity == 33
    assert pos.avg_cost == round((30 * 150.0 + 3 * 192.07 + 1.0) / 33, 8)
    assert _decimals(pos.avg_cost) <= 8


async def test_average_prices_on_the_wire_have_no_float_drift(ib_sim_factory: SimFactory) -> None:
    # A market that stands still (the quote moves only when the test pushes it), one share a fill.
    scenario = dataclasses.replace(Scenario.default(), tick_interval=60.0, fill_clip=1.0)
    sim: Simulator = await ib_sim_factory(scenario=scenario)
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=3)
    try:
        aapl = Stock("AAPL", "SMART", "USD", conId=265598)
        sim.push_quote("AAPL", bid=189.99, ask=190.0, last=190.0)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 3))
        await eventually(lambda: trade.orderStatus.filled == 1)
        sim.push_quote("AAPL", bid=189.99, ask=190.0, last=190.0)
        await eventually(lambda: trade.orderStatus.filled == 2)
        sim.push_quote("AAPL", bid=190.05, ask=190.06, last=190.06)
        await eventually(trade.isDone)
        assert trade.orderStatus.avgFillPrice == 190.02
        assert trade.fills[-1].execution.avgPrice == 190.02
        await eventually(lambda: len(ib.positions()) > 0 and _aapl(ib).position == 103)
        cost = _aapl(ib).avgCost  # (100 × 180.00 + 570.06 + 1.00 commission) / 103
        assert cost == round(18571.06 / 103, 8)
        assert _decimals(cost) <= 8

        sim.push_quote("AAPL", bid=192.06, ask=192.07, last=192.06)
        sale = ib.placeOrder(aapl, MarketOrder("SELL", 1))
        await eventually(sale.isDone)
        await eventually(lambda: sale.fills[-1].commissionReport.commission > 0)
        realized = sale.fills[-1].commissionReport.realizedPNL
        assert realized == round(192.06 - cost - 1.0, 8)
        assert _decimals(realized) <= 8
        item = next(i for i in ib.portfolio() if i.contract.conId == 265598)
        assert _decimals(item.marketValue) <= 8
        assert _decimals(item.unrealizedPNL) <= 8
    finally:
        ib.disconnect()


def _aapl(ib: ib_async.IB) -> ib_async.Position:
    return next(p for p in ib.positions() if p.contract.conId == 265598)
