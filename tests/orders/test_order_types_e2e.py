"""The other order types end to end: placed through a Session, worked by the simulator's
market, and reported back as fills and statuses on the Trade.

AAPL's random walk is frozen and its quote moved by hand; the simulator runs on a clock the test
sets, so every trigger, fill price and close is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

import ibflow
from ibflow import OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

AAPL = ibflow.Stock("AAPL", con_id=265598)
# Monday 2025-01-06, 10:00 in New York; the close is 16:00 there, 21:00 UTC.
MONDAY_10AM = datetime(2025, 1, 6, 15, 0, tzinfo=UTC).timestamp()
MONDAY_CLOSE = datetime(2025, 1, 6, 21, 0, tzinfo=UTC).timestamp()


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
    async with Simulator(port=0, speed=100, clock=clock) as simulator:
        simulator.freeze_quotes("AAPL")
        simulator.push_quote("AAPL", bid=100.00, ask=100.02, last=100.01)
        yield simulator


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ibflow.Session]:
    async with session_for(sim) as connected:
        yield connected


async def snapshot(session: ibflow.Session, trade: ibflow.Trade) -> ibflow.OrderSnapshot:
    [found] = [s for s in await session.open_orders() if s.order_id == trade.order_id]
    return found


async def test_a_trailing_stop_fills_at_its_ratcheted_stop(
    sim: Simulator, session: ibflow.Session
) -> None:
    trade = await session.place(AAPL, ibflow.TrailingStopOrder("SELL", 10, trail_amount=1.0))
    assert trade.status is OrderStatus.PRE_SUBMITTED  # held until the stop is touched
    assert (await snapshot(session, trade)).trail_stop_price == 99.01
    sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
    assert (await snapshot(session, trade)).trail_stop_price == 101.00
    sim.push_quote("AAPL", bid=101.20, ask=101.22, last=101.21)  # a dip above the stop
    assert (await snapshot(session, trade)).trail_stop_price == 101.00
    assert trade.fills == ()
    sim.push_quote("AAPL", bid=100.99, ask=101.01, last=101.00)  # touches the stop
    fills = await trade.wait_filled()
    assert [(f.side, f.quantity, f.price) for f in fills] == [(ibflow.Side.SELL, 10.0, 100.99)]
    assert trade.status is OrderStatus.FILLED


async def test_a_trailing_stop_keeps_its_terms_when_modified(
    sim: Simulator, session: ibflow.Session
) -> None:
    trade = await session.place(AAPL, ibflow.TrailingStopOrder("SELL", 10, trail_percent=2.0))
    await trade.modify(quantity=20)
    frames = [f for _, kind, f in sim.requests if kind == "place_order"]
    assert len(frames) == 2
    order = trade.order
    assert (order.quantity, order.trail_percent, order.order_type.value) == (20.0, 2.0, "TRAIL")
    [at_sim] = [o for o in sim.orders if o.order_id == trade.order_id]
    assert (at_sim.total_quantity, at_sim.order_type, at_sim.trailing_percent) == (20, "TRAIL", 2.0)
    await trade.cancel()


async def test_market_on_close_fills_at_the_close_and_a_missed_loc_is_cancelled(
    sim: Simulator, session: ibflow.Session, clock: Clock
) -> None:
    moc = await session.place(AAPL, ibflow.MarketOnCloseOrder("BUY", 10))
    loc = await session.place(AAPL, ibflow.LimitOnCloseOrder("BUY", 10, 100.50))
    assert (moc.status, loc.status) == (OrderStatus.SUBMITTED, OrderStatus.SUBMITTED)
    sim.push_quote("AAPL", bid=100.84, ask=100.86, last=100.85)
    assert moc.fills == ()
    clock.now = MONDAY_CLOSE
    fills = await moc.wait_filled()
    assert [f.price for f in fills] == [100.85]  # the closing price
    assert await loc.wait_done() is OrderStatus.CANCELLED
    assert loc.fills == ()


async def test_market_if_touched_triggers_on_touch(sim: Simulator, session: ibflow.Session) -> None:
    trade = await session.place(AAPL, ibflow.MarketIfTouchedOrder("BUY", 10, 99.00))
    sim.push_quote("AAPL", bid=99.10, ask=99.12, last=99.11)
    assert trade.status is OrderStatus.PRE_SUBMITTED
    assert (await snapshot(session, trade)).trigger_price == 99.00
    sim.push_quote("AAPL", bid=98.99, ask=99.01, last=99.00)
    fills = await trade.wait_filled()
    assert [f.price for f in fills] == [99.01]  # a market order once touched


async def test_a_condition_holds_the_order_then_submits_it(
    sim: Simulator, session: ibflow.Session
) -> None:
    above = ibflow.PriceCondition(contract=AAPL, price=101.00, trigger_method=2)
    trade = await session.place(AAPL, ibflow.MarketOrder("BUY", 10, conditions=[above]))
    assert trade.status is OrderStatus.PRE_SUBMITTED
    sim.push_quote("AAPL", bid=100.49, ask=100.51, last=100.50)
    assert trade.fills == ()
    sim.push_quote("AAPL", bid=100.99, ask=101.01, last=101.00)
    fills = await trade.wait_filled()
    assert [f.price for f in fills] == [101.01]


async def test_a_condition_can_cancel_the_order_instead(
    sim: Simulator, session: ibflow.Session, clock: Clock
) -> None:
    deadline = datetime.fromtimestamp(MONDAY_10AM + 1800, UTC)
    order = ibflow.LimitOrder(
        "BUY",
        10,
        99.00,
        conditions=[ibflow.TimeCondition(time=deadline)],
        conditions_cancel_order=True,
    )
    trade = await session.place(AAPL, order)
    clock.now = MONDAY_10AM + 1800
    sim.push_quote("AAPL", bid=100.01, ask=100.03, last=100.02)
    assert await trade.wait_done() is OrderStatus.CANCELLED
    assert trade.fills == ()


async def test_adaptive_fills_like_a_marketable_limit(
    sim: Simulator, session: ibflow.Session
) -> None:
    sim.push_quote("AAPL", bid=100.00, ask=100.10, last=100.05)
    order = ibflow.LimitOrder("BUY", 10, 100.20, algo=ibflow.Adaptive("Urgent"))
    trade = await session.place(AAPL, order)
    fills = await trade.wait_filled()
    assert [f.price for f in fills] == [100.10]  # urgent: the far side, inside the limit
    assert trade.order.algo == ibflow.Adaptive("Urgent")


async def test_a_bracket_can_protect_with_a_trailing_stop(
    sim: Simulator, session: ibflow.Session
) -> None:
    spec = ibflow.Bracket(
        parent=ibflow.LimitOrder("BUY", 10, 100.02),
        take_profit=ibflow.LimitOrder("SELL", 10, 105.00),
        stop_loss=ibflow.TrailingStopOrder("SELL", 10, trail_amount=1.0),
    )
    group = await session.place(AAPL, spec)
    await group.parent.wait_filled()
    await eventually(lambda: group.stop_loss.status is OrderStatus.PRE_SUBMITTED)
    sim.push_quote("AAPL", bid=102.99, ask=103.01, last=103.00)
    await eventually(lambda: sim.broker.order(1, group.stop_loss.order_id).trail_stop_price == 102)
    sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
    fills = await group.stop_loss.wait_filled()
    assert [f.price for f in fills] == [101.99]
    assert await group.take_profit.wait_done() is OrderStatus.CANCELLED  # its OCA partner


@pytest.mark.parametrize(
    "order",
    [
        ibflow.TrailingStopOrder("SELL", 10, trail_amount=1.0),
        ibflow.TrailingStopLimitOrder("SELL", 10, trail_percent=1.0, limit_offset=0.05),
        ibflow.MarketOnCloseOrder("BUY", 10),
        ibflow.LimitOnCloseOrder("BUY", 10, 100.0),
        ibflow.MarketIfTouchedOrder("BUY", 10, 99.0),
        ibflow.LimitIfTouchedOrder("BUY", 10, 99.0, 98.95),
        ibflow.RelativeOrder("BUY", 10, offset=0.01, cap=100.5),
        ibflow.PeggedToMidpointOrder("SELL", 10, offset=0.01),
        ibflow.MarketOrder("BUY", 10, algo=ibflow.Adaptive()),
        ibflow.LimitOrder(
            "BUY", 10, 100.0, algo=ibflow.Algo("Twap", {"strategyType": "Marketable"})
        ),
        ibflow.LimitOrder(
            "BUY", 10, 99.0, conditions=[ibflow.MarginCondition(percent=20, is_more=False)]
        ),
    ],
    ids=lambda o: (
        o.algo.strategy if o.algo else o.order_type.value + (" cond" if o.conditions else "")
    ),
)
async def test_what_if_previews_every_type(
    sim: Simulator, session: ibflow.Session, order: ibflow.Order
) -> None:
    preview = await session.what_if(AAPL, order)
    assert preview.init_margin_change  # a figure, not unset (a sell lowers the long's margin)
    assert preview.commission is not None
    assert [o for o in sim.orders if o.client_id == 1] == []  # nothing was placed
