"""IB's other order types, algos and conditions against the simulator, driven by real ib_async.

Each test freezes AAPL's random walk and moves its quote by hand, and runs the simulator on a
clock it sets, so every trigger, fill price and close is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import ib_async
import pytest
from ib_async import (
    ExecutionCondition,
    MarginCondition,
    Order,
    PercentChangeCondition,
    PriceCondition,
    Stock,
    TagValue,
    TimeCondition,
    VolumeCondition,
)

from ibflow.sim import Simulator
from ibflow.sim._model import SimOrder
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)  # listed on Nasdaq
MSFT = Stock("MSFT", "SMART", "USD", conId=272093)
JPM = Stock("JPM", "SMART", "USD", conId=1520593)  # listed on the NYSE
# Monday 2025-01-06, 10:00 in New York; the close is 16:00 there, 21:00 UTC.
MONDAY_10AM = datetime(2025, 1, 6, 15, 0, tzinfo=UTC).timestamp()
MONDAY_CLOSE = datetime(2025, 1, 6, 21, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_10AM)


@pytest.fixture
async def sim(clock: Clock) -> AsyncIterator[Simulator]:
    async with Simulator(port=0, speed=100, clock=clock) as s:
        s.freeze_quotes("AAPL")
        s.push_quote("AAPL", bid=100.00, ask=100.02, last=100.01)
        yield s


@pytest.fixture
async def ib(sim: Simulator) -> AsyncIterator[ib_async.IB]:
    client = ib_async.IB()
    await client.connectAsync(sim.host, sim.port, clientId=1, timeout=5)
    try:
        yield client
    finally:
        client.disconnect()


def order(action: str, qty: float, kind: str, **kw: Any) -> Order:
    return Order(action=action, totalQuantity=qty, orderType=kind, **kw)


async def place(ib: ib_async.IB, o: Order, contract: ib_async.Contract = AAPL) -> ib_async.Trade:
    trade = ib.placeOrder(contract, o)
    await eventually(lambda: trade.orderStatus.status not in ("PendingSubmit", ""))
    return trade


def at_sim(sim: Simulator, trade: ib_async.Trade) -> SimOrder:
    found = sim.broker.order(1, trade.order.orderId)
    assert found is not None
    return found


def statuses(trade: ib_async.Trade) -> list[str]:
    return [entry.status for entry in trade.log]


# ---------------------------------------------------------------------------------------------
# Trailing stops, if-touched, on-close


async def test_trailing_stop_fills_at_the_ratcheted_stop(ib: ib_async.IB, sim: Simulator) -> None:
    trade = await place(ib, order("SELL", 10, "TRAIL", auxPrice=1.0))
    assert trade.orderStatus.status == "PreSubmitted"
    assert at_sim(sim, trade).trail_stop_price == 99.01
    sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
    assert at_sim(sim, trade).trail_stop_price == 101.00
    sim.push_quote("AAPL", bid=101.20, ask=101.22, last=101.21)  # a dip above the stop
    assert at_sim(sim, trade).trail_stop_price == 101.00
    assert not trade.fills
    sim.push_quote("AAPL", bid=100.99, ask=101.01, last=101.00)  # touches the stop
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Filled"
    assert [f.execution.price for f in trade.fills] == [100.99]
    completed = await ib.reqCompletedOrdersAsync(apiOnly=True)
    [done] = [t for t in completed if t.order.permId == trade.order.permId]
    assert (done.order.orderType, done.order.trailStopPrice) == ("TRAIL", 101.00)


async def test_trailing_stop_limit_rests_at_its_offset(ib: ib_async.IB, sim: Simulator) -> None:
    o = order("SELL", 5, "TRAIL LIMIT", trailingPercent=1.0, lmtPriceOffset=0.05)
    trade = await place(ib, o)
    sim.push_quote("AAPL", bid=109.99, ask=110.01, last=110.00)
    assert (at_sim(sim, trade).trail_stop_price, at_sim(sim, trade).lmt_price) == (108.90, 108.85)
    sim.push_quote("AAPL", bid=108.00, ask=108.02, last=108.01)  # gaps through the limit
    await eventually(lambda: trade.orderStatus.status == "Submitted")
    assert not trade.fills
    sim.push_quote("AAPL", bid=108.86, ask=108.88, last=108.87)
    await eventually(trade.isDone)
    assert [f.execution.price for f in trade.fills] == [108.86]


async def test_if_touched_orders_trigger_on_touch(ib: ib_async.IB, sim: Simulator) -> None:
    mit = await place(ib, order("BUY", 10, "MIT", auxPrice=99.00))
    lit = await place(ib, order("BUY", 10, "LIT", auxPrice=99.00, lmtPrice=98.95))
    sim.push_quote("AAPL", bid=99.10, ask=99.12, last=99.11)
    assert (mit.orderStatus.status, lit.orderStatus.status) == ("PreSubmitted", "PreSubmitted")
    sim.push_quote("AAPL", bid=98.99, ask=99.01, last=99.00)
    await eventually(mit.isDone)
    assert [f.execution.price for f in mit.fills] == [99.01]  # a market order once touched
    await eventually(lambda: lit.orderStatus.status == "Submitted")
    assert not lit.fills  # a limit order at 98.95 now
    sim.push_quote("AAPL", bid=98.93, ask=98.95, last=98.94)
    await eventually(lit.isDone)
    assert [f.execution.price for f in lit.fills] == [98.95]


async def test_on_close_orders_fill_at_the_close(
    ib: ib_async.IB, sim: Simulator, clock: Clock
) -> None:
    moc = await place(ib, order("BUY", 10, "MOC"))
    loc_reached = await place(ib, order("BUY", 10, "LOC", lmtPrice=101.00))
    loc_missed = await place(ib, order("BUY", 10, "LOC", lmtPrice=100.50))
    sim.push_quote("AAPL", bid=100.79, ask=100.81, last=100.80)
    assert {t.orderStatus.status for t in (moc, loc_reached, loc_missed)} == {"Submitted"}
    assert not moc.fills
    clock.now = MONDAY_CLOSE - 1
    sim.push_quote("AAPL", bid=100.84, ask=100.86, last=100.85)
    assert not moc.fills
    clock.now = MONDAY_CLOSE
    # The market loop reaches the close on its next step: every close order fills or expires.
    await eventually(lambda: all(t.isDone() for t in (moc, loc_reached, loc_missed)))
    assert [f.execution.price for f in moc.fills] == [100.85]
    assert [f.execution.price for f in loc_reached.fills] == [100.85]
    assert loc_missed.orderStatus.status == "Cancelled"
    assert not loc_missed.fills


async def test_opening_orders_fill_at_the_open(
    ib: ib_async.IB, sim: Simulator, clock: Clock
) -> None:
    moo = await place(ib, order("BUY", 10, "MKT", tif="OPG"))
    assert moo.orderStatus.status == "Submitted"
    sim.push_quote("AAPL", bid=100.49, ask=100.51, last=100.50)
    assert not moo.fills
    clock.now = datetime(2025, 1, 7, 14, 30, tzinfo=UTC).timestamp()  # Tuesday's open
    await eventually(moo.isDone)
    assert [f.execution.price for f in moo.fills] == [100.50]


def error_log(ib: ib_async.IB) -> list[tuple[int, int, str]]:
    """Every error TWS sends from now on, as (request or order id, code, text)."""
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *_: seen.append((req_id, code, text))
    return seen


async def test_on_close_orders_after_the_cut_off_are_rejected(
    ib: ib_async.IB, sim: Simulator, clock: Clock
) -> None:
    errors = error_log(ib)
    clock.now = MONDAY_CLOSE - 600  # 15:50 in New York: the NYSE's cut-off, not Nasdaq's
    jpm = ib.placeOrder(JPM, order("BUY", 10, "MOC"))
    await eventually(lambda: any(r == jpm.order.orderId for r, _, _ in errors))
    [(_, code, text)] = [e for e in errors if e[0] == jpm.order.orderId]
    assert code == 201
    assert "NYSE" in text
    assert "15:50:00 US/Eastern" in text
    aapl = await place(ib, order("BUY", 10, "MOC"))
    assert aapl.orderStatus.status == "Submitted"  # Nasdaq takes them until 15:55
    clock.now = MONDAY_CLOSE - 300
    late = ib.placeOrder(AAPL, order("BUY", 10, "LOC", lmtPrice=101.00))
    await eventually(lambda: any(r == late.order.orderId for r, _, _ in errors))
    assert [c for r, c, _ in errors if r == late.order.orderId] == [201]
    assert sim.broker.order(1, jpm.order.orderId) is None  # TWS never took them
    assert sim.broker.order(1, late.order.orderId) is None
    clock.now = MONDAY_CLOSE
    await eventually(lambda: at_sim(sim, aapl).status == "Filled")


async def test_on_close_orders_are_locked_ten_minutes_before_the_close(
    ib: ib_async.IB, sim: Simulator, clock: Clock
) -> None:
    errors = error_log(ib)
    moc = await place(ib, order("BUY", 10, "MOC"))
    clock.now = MONDAY_CLOSE - 601
    moc.order.totalQuantity = 20
    ib.placeOrder(AAPL, moc.order)
    await eventually(lambda: at_sim(sim, moc).total_quantity == 20)
    clock.now = MONDAY_CLOSE - 600  # 15:50: neither market lets it go or shrink
    moc.order.totalQuantity = 5
    ib.placeOrder(AAPL, moc.order)
    await eventually(lambda: any(c == 201 for _, c, _ in errors))
    ib.cancelOrder(moc.order)
    await eventually(lambda: any(c == 161 for _, c, _ in errors))
    held = at_sim(sim, moc)
    assert (held.status, held.total_quantity) == ("Submitted", 20)
    clock.now = MONDAY_CLOSE
    await eventually(lambda: at_sim(sim, moc).status == "Filled")


async def test_an_on_close_order_after_the_close_waits_for_the_next_close(
    ib: ib_async.IB, sim: Simulator, clock: Clock
) -> None:
    clock.now = MONDAY_CLOSE + 1800  # 16:30 in New York
    moc = await place(ib, order("BUY", 10, "MOC"))
    assert moc.orderStatus.status == "Submitted"
    sim.push_quote("AAPL", bid=100.49, ask=100.51, last=100.50)
    clock.now = MONDAY_CLOSE + DAY - 1
    sim.push_quote("AAPL", bid=100.59, ask=100.61, last=100.60)
    assert not moc.fills
    clock.now = MONDAY_CLOSE + DAY  # Tuesday's close
    await eventually(moc.isDone)
    assert [f.execution.price for f in moc.fills] == [100.60]


async def test_close_orders_must_be_day_orders(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    trade = ib.placeOrder(AAPL, order("BUY", 10, "MOC", tif="GTC"))
    await eventually(trade.isDone)
    assert 113 in errors
    assert trade.orderStatus.status == "Cancelled"


# ---------------------------------------------------------------------------------------------
# Pegged orders, algos


async def test_relative_order_reprices_with_the_bid(ib: ib_async.IB, sim: Simulator) -> None:
    trade = await place(ib, order("BUY", 10, "REL", auxPrice=0.01, lmtPrice=100.50))
    assert trade.orderStatus.status == "Submitted"
    assert at_sim(sim, trade).working_price == 100.01
    sim.push_quote("AAPL", bid=100.30, ask=100.40)
    assert at_sim(sim, trade).working_price == 100.31
    sim.push_quote("AAPL", bid=100.60, ask=100.70)
    assert at_sim(sim, trade).working_price == 100.50  # its cap
    sim.push_quote("AAPL", bid=100.20, ask=100.21)  # the offer comes to its price
    await eventually(trade.isDone)
    assert [f.execution.price for f in trade.fills] == [100.21]


async def test_pegged_to_midpoint_tracks_the_mid(ib: ib_async.IB, sim: Simulator) -> None:
    trade = await place(ib, order("SELL", 10, "PEG MID", auxPrice=0.01))
    assert at_sim(sim, trade).working_price == 100.02
    sim.push_quote("AAPL", bid=101.00, ask=101.10)
    assert at_sim(sim, trade).working_price == 101.06
    assert not trade.fills
    sim.push_quote("AAPL", last=101.08, bid=101.00, ask=101.10)  # a trade through its price
    await eventually(trade.isDone)
    assert [f.execution.price for f in trade.fills] == [101.06]


@pytest.mark.parametrize(
    ("priority", "price"), [("Urgent", 100.09), ("Normal", 100.05), ("Patient", 100.04)]
)
async def test_adaptive_fills_like_a_marketable_limit(
    ib: ib_async.IB, sim: Simulator, priority: str, price: float
) -> None:
    sim.push_quote("AAPL", bid=100.00, ask=100.09)  # the midpoint is a half tick
    o = order("BUY", 10, "MKT", algoStrategy="Adaptive")
    o.algoParams = [TagValue("adaptivePriority", priority)]
    trade = ib.placeOrder(AAPL, o)
    await eventually(trade.isDone)
    assert [f.execution.price for f in trade.fills] == [price]


async def test_unknown_algo_and_priority_are_refused(ib: ib_async.IB) -> None:
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *_: errors.append((code, text))
    bad = order("BUY", 1, "LMT", lmtPrice=99.0, algoStrategy="Adaptive")
    bad.algoParams = [TagValue("adaptivePriority", "Fast")]
    unknown = order("BUY", 1, "LMT", lmtPrice=99.0, algoStrategy="Sniper")
    trades = [ib.placeOrder(AAPL, bad), ib.placeOrder(AAPL, unknown)]
    await eventually(lambda: all(t.isDone() for t in trades))
    assert [code for code, _ in errors] == [441, 439]
    assert "adaptivePriority" in errors[0][1]


async def test_a_working_order_keeps_its_algo(ib: ib_async.IB, sim: Simulator) -> None:
    errors = error_log(ib)
    o = order("BUY", 10, "LMT", lmtPrice=99.00, algoStrategy="Adaptive")
    o.algoParams = [TagValue("adaptivePriority", "Patient")]
    trade = await place(ib, o)
    trade.order.lmtPrice = 99.50  # a new price keeps the algo: TWS takes it
    ib.placeOrder(AAPL, trade.order)
    await eventually(lambda: at_sim(sim, trade).lmt_price == 99.50)
    trade.order.algoStrategy, trade.order.algoParams = "Twap", []
    ib.placeOrder(AAPL, trade.order)
    await eventually(lambda: bool(errors))
    assert [(code, text) for _, code, text in errors] == [
        (440, "Order modify failed. Algorithm cannot be modified.")
    ]
    assert (at_sim(sim, trade).algo_strategy, at_sim(sim, trade).status) == (
        "Adaptive",
        "Submitted",
    )


# ---------------------------------------------------------------------------------------------
# Conditions


async def test_price_condition_holds_the_order_then_submits_it(
    ib: ib_async.IB, sim: Simulator
) -> None:
    o = order("BUY", 10, "MKT")
    o.conditions = [PriceCondition(isMore=True, price=101.00, conId=265598, exch="SMART")]
    trade = await place(ib, o)
    assert trade.orderStatus.status == "PreSubmitted"
    sim.push_quote("AAPL", bid=100.49, ask=100.51, last=100.50)
    assert not trade.fills
    sim.push_quote("AAPL", bid=100.99, ask=101.01, last=101.00)
    await eventually(trade.isDone)
    seen = statuses(trade)
    assert seen.index("PreSubmitted") < seen.index("Submitted")
    assert seen[-1] == "Filled"
    assert [f.execution.price for f in trade.fills] == [101.01]


async def test_condition_cancels_with_conditions_cancel_order(
    ib: ib_async.IB, sim: Simulator
) -> None:
    o = order("BUY", 10, "LMT", lmtPrice=95.0, conditionsCancelOrder=True)
    o.conditions = [PriceCondition(isMore=False, price=99.00, conId=265598, exch="SMART")]
    trade = await place(ib, o)
    assert trade.orderStatus.status == "PreSubmitted"
    sim.push_quote("AAPL", bid=98.99, ask=99.01, last=99.00)
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert not trade.fills


async def test_time_condition(ib: ib_async.IB, sim: Simulator, clock: Clock) -> None:
    o = order("BUY", 10, "MKT")
    o.conditions = [TimeCondition(isMore=True, time="20250106 11:00:00 US/Eastern")]
    trade = await place(ib, o)
    sim.push_quote("AAPL", bid=100.00, ask=100.02, last=100.01)
    assert trade.orderStatus.status == "PreSubmitted"
    clock.now = MONDAY_10AM + 3600
    await eventually(trade.isDone)  # the market loop's next step finds it true
    assert trade.orderStatus.status == "Filled"


async def test_margin_condition_on_the_cushion(ib: ib_async.IB) -> None:
    above = order("BUY", 1, "MKT")
    above.conditions = [MarginCondition(isMore=True, percent=5)]
    below = order("BUY", 1, "MKT")
    below.conditions = [MarginCondition(isMore=False, percent=5)]
    met, unmet = await place(ib, above), await place(ib, below)
    await eventually(met.isDone)
    assert met.orderStatus.status == "Filled"
    assert unmet.orderStatus.status == "PreSubmitted"  # the cushion is far above 5%


async def test_execution_condition_waits_for_a_fill(ib: ib_async.IB) -> None:
    o = order("BUY", 10, "MKT")
    o.conditions = [ExecutionCondition(secType="STK", exch="SMART", symbol="MSFT")]
    trade = await place(ib, o)
    assert trade.orderStatus.status == "PreSubmitted"
    msft = ib.placeOrder(MSFT, order("BUY", 1, "MKT"))
    await eventually(msft.isDone)
    await eventually(trade.isDone)
    assert trade.orderStatus.status == "Filled"


async def test_volume_and_percent_change_conditions(ib: ib_async.IB, sim: Simulator) -> None:
    close = sim.market.quote(265598).close
    by_volume = order("BUY", 1, "MKT")
    by_volume.conditions = [VolumeCondition(isMore=True, volume=9_000_000, conId=265598)]
    by_change = order("BUY", 1, "MKT")
    by_change.conditions = [PercentChangeCondition(isMore=True, changePercent=2.0, conId=265598)]
    volume, change = await place(ib, by_volume), await place(ib, by_change)
    last = round(close * 1.01, 2)
    sim.push_quote("AAPL", bid=last - 0.01, ask=last + 0.01, last=last, volume=100)
    assert (volume.orderStatus.status, change.orderStatus.status) == ("PreSubmitted",) * 2
    sim.push_quote("AAPL", volume=9_000_000)
    await eventually(volume.isDone)
    assert change.orderStatus.status == "PreSubmitted"
    last = round(close * 1.03, 2)
    sim.push_quote("AAPL", bid=last - 0.01, ask=last + 0.01, last=last)
    await eventually(change.isDone)
    assert change.orderStatus.status == "Filled"


async def test_what_if_previews_every_new_type(ib: ib_async.IB) -> None:
    adaptive = order("BUY", 10, "MKT", algoStrategy="Adaptive")
    adaptive.algoParams = [TagValue("adaptivePriority", "Normal")]
    conditional = order("BUY", 10, "MKT")
    conditional.conditions = [PriceCondition(price=150.0, conId=265598, exch="SMART")]
    orders = [
        order("SELL", 10, "TRAIL", auxPrice=1.0),
        order("SELL", 10, "TRAIL LIMIT", auxPrice=1.0, lmtPriceOffset=0.1),
        order("BUY", 10, "MOC"),
        order("BUY", 10, "LOC", lmtPrice=100.0),
        order("BUY", 10, "MIT", auxPrice=99.0),
        order("BUY", 10, "LIT", auxPrice=99.0, lmtPrice=99.1),
        order("BUY", 10, "REL", auxPrice=0.01),
        order("BUY", 10, "PEG MID"),
        adaptive,
        conditional,
    ]
    for o in orders:
        state = await ib.whatIfOrderAsync(AAPL, o)
        assert state.initMarginChange != ""
        assert abs(float(state.initMarginChange)) > 0, o.orderType
        assert state.commission > 0
