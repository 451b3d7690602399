"""Modifying the terms of IB's other order types over the wire: trailing distances and stops, a
trailing stop-limit's offset, relative and pegged offsets and caps, touch prices, the time in
force; validated like a new order before anything is sent, sent once under the same id, and
confirmed by TWS's report. Plus refusals addressed to a bound manual order's negative id.

AAPL's random walk is frozen and its quote moved by hand, so every stop and peg is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ibflow
from ibflow import OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

AAPL = ibflow.Stock("AAPL", con_id=265598)
# Monday 2025-01-06, 10:00 in New York: the regular session is open.
MONDAY_10AM = datetime(2025, 1, 6, 15, 0, tzinfo=UTC).timestamp()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, speed=100, clock=lambda: MONDAY_10AM) as simulator:
        simulator.freeze_quotes("AAPL")
        simulator.push_quote("AAPL", bid=100.00, ask=100.02, last=100.01)
        yield simulator


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ibflow.Session]:
    async with session_for(sim) as connected:
        yield connected


def held(sim: Simulator, trade: ibflow.Trade) -> Any:
    """The simulator's record of the trade's order."""
    return next(o for o in sim.orders if o.perm_id == trade.perm_id)


def placed(sim: Simulator) -> int:
    return sim.request_count("place_order")


async def test_a_trailing_stop_s_distance_and_stop_are_modified_and_re_armed(
    sim: Simulator, session: ibflow.Session
) -> None:
    trade = await session.place(AAPL, ibflow.TrailingStopOrder("SELL", 10, trail_amount=1.0))
    sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
    await eventually(lambda: held(sim, trade).trail_stop_price == 101.00)
    # Tighter: the stop starts again one new distance from the market.
    await trade.modify(trail_amount=0.5)
    assert trade.order.trail_amount == 0.5
    assert (held(sim, trade).aux_price, held(sim, trade).trail_stop_price) == (0.5, 101.50)
    # Wider: the same, so the stop moves away from the market.
    await trade.modify(trail_amount=2.0)
    assert held(sim, trade).trail_stop_price == 100.00
    # A percentage replaces the amount.
    await trade.modify(trail_percent=1.0)
    assert (trade.order.trail_amount, trade.order.trail_percent) == (None, 1.0)
    at_sim = held(sim, trade)
    assert (at_sim.aux_price, at_sim.trailing_percent, at_sim.trail_stop_price) == (
        None,
        1.0,
        100.98,
    )
    # A stop of its own: kept, and it still ratchets from there.
    await trade.modify(trail_stop_price=101.50)
    assert trade.order.trail_stop_price == 101.50
    assert held(sim, trade).trail_stop_price == 101.50
    assert placed(sim) == 5  # the order, then each modify once
    assert trade.status is OrderStatus.PRE_SUBMITTED
    sim.push_quote("AAPL", bid=101.49, ask=101.51, last=101.50)  # touches the new stop
    fills = await trade.wait_filled(timeout=10)
    assert [(f.quantity, f.price) for f in fills] == [(10.0, 101.49)]


async def test_a_quantity_change_leaves_a_trailing_stop_where_the_market_moved_it(
    sim: Simulator, session: ibflow.Session
) -> None:
    order = ibflow.TrailingStopOrder("SELL", 10, trail_amount=1.0, trail_stop_price=98.00)
    trade = await session.place(AAPL, order)
    sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
    await eventually(lambda: held(sim, trade).trail_stop_price == 101.00)
    await trade.modify(quantity=12)
    # The initial stop is not sent again: TWS's ratcheted stop stays.
    assert (held(sim, trade).total_quantity, held(sim, trade).trail_stop_price) == (12, 101.00)
    assert trade.order.quantity == 12


async def test_a_trailing_stop_limit_s_offset_moves_its_limit(
    sim: Simulator, session: ibflow.Session
) -> None:
    order = ibflow.TrailingStopLimitOrder("SELL", 10, trail_amount=1.0, limit_offset=0.10)
    trade = await session.place(AAPL, order)
    assert (held(sim, trade).trail_stop_price, held(sim, trade).lmt_price) == (99.01, 98.91)
    await trade.modify(limit_offset=0.25)
    assert trade.order.limit_offset == 0.25
    at_sim = held(sim, trade)
    assert (at_sim.lmt_price_offset, at_sim.trail_stop_price, at_sim.lmt_price) == (
        0.25,
        99.01,
        98.76,
    )
    assert [e.kind for e in trade.history].count(ibflow.OrderEventKind.MODIFIED) == 1


async def test_relative_and_pegged_offsets_and_caps_are_modified(
    sim: Simulator, session: ibflow.Session
) -> None:
    sim.push_quote("AAPL", bid=100.00, ask=100.10, last=100.05)
    rel = await session.place(AAPL, ibflow.RelativeOrder("BUY", 10, offset=0.01, cap=100.50))
    assert held(sim, rel).working_price == 100.01
    await rel.modify(offset=0.03)
    assert (rel.order.offset, held(sim, rel).working_price) == (0.03, 100.03)
    await rel.modify(cap=100.02)  # the cap is the order's limit price
    assert (rel.order.limit_price, held(sim, rel).working_price) == (100.02, 100.02)
    peg = await session.place(AAPL, ibflow.PeggedToMidpointOrder("BUY", 10, offset=0.01))
    assert held(sim, peg).working_price == 100.04
    await peg.modify(offset=0.03, limit_price=100.01)
    assert (peg.order.offset, peg.order.limit_price) == (0.03, 100.01)
    assert held(sim, peg).working_price == 100.01  # the midpoint less 0.03, capped
    assert rel.fills == peg.fills == ()


async def test_an_if_touched_order_s_trigger_is_modified_and_re_armed(
    sim: Simulator, session: ibflow.Session
) -> None:
    mit = await session.place(AAPL, ibflow.MarketIfTouchedOrder("BUY", 10, 99.00))
    lit = await session.place(AAPL, ibflow.LimitIfTouchedOrder("SELL", 10, 101.00, 100.90))
    await mit.modify(trigger_price=99.50)
    await lit.modify(trigger_price=101.50, limit_price=101.40)
    assert (mit.order.trigger_price, held(sim, mit).aux_price) == (99.50, 99.50)
    assert (lit.order.trigger_price, lit.order.limit_price) == (101.50, 101.40)
    sim.push_quote("AAPL", bid=100.98, ask=101.02, last=101.00)  # the old touch price
    assert lit.status is OrderStatus.PRE_SUBMITTED
    sim.push_quote("AAPL", bid=99.49, ask=99.51, last=99.50)  # the new one
    fills = await mit.wait_filled(timeout=10)
    assert [f.price for f in fills] == [99.51]
    assert lit.fills == ()


async def test_the_time_in_force_and_expiry_are_modified(
    sim: Simulator, session: ibflow.Session
) -> None:
    trade = await session.place(AAPL, ibflow.LimitOrder("BUY", 5, 95.00))
    await trade.modify(tif="GTC")
    assert (trade.order.tif, held(sim, trade).tif) == (ibflow.TimeInForce.GTC, "GTC")
    until = datetime(2025, 1, 10, 21, 0, tzinfo=UTC)
    await trade.modify(tif="GTD", good_till=until)
    assert (trade.order.tif, trade.order.good_till) == (ibflow.TimeInForce.GTD, until)
    assert held(sim, trade).good_till_date == "20250110-21:00:00"
    await trade.modify(good_till=until + timedelta(days=1))
    assert trade.order.good_till == until + timedelta(days=1)
    await trade.modify(tif="DAY")
    assert (trade.order.tif, trade.order.good_till) == (ibflow.TimeInForce.DAY, None)
    assert held(sim, trade).tif == "DAY"


async def test_terms_that_do_not_fit_are_refused_before_sending(
    sim: Simulator, session: ibflow.Session
) -> None:
    trail = await session.place(AAPL, ibflow.TrailingStopOrder("SELL", 10, trail_amount=1.0))
    rel = await session.place(AAPL, ibflow.RelativeOrder("BUY", 10, offset=0.01))
    moc = await session.place(AAPL, ibflow.MarketOnCloseOrder("BUY", 10))
    sent = placed(sim)
    with pytest.raises(ibflow.InvalidRequest, match="takes no offset=") as unfit:
        await trail.modify(offset=0.05)
    assert "trail_amount=, trail_percent=, trail_stop_price=" in str(unfit.value)
    with pytest.raises(ibflow.InvalidRequest, match=r"takes no limit_price=.*cap="):
        await rel.modify(limit_price=100.05)
    with pytest.raises(ibflow.InvalidRequest, match="takes no tif="):
        await moc.modify(tif="GTC")
    with pytest.raises(ibflow.InvalidRequest, match="needs quantity=, trail_amount="):
        await trail.modify()
    with pytest.raises(ibflow.InvalidRequest, match="minimum tick"):
        await trail.modify(trail_amount=0.005)
    with pytest.raises(ibflow.InvalidRequest, match="percentage above 0 and below 100"):
        await trail.modify(trail_percent=150)
    with pytest.raises(ibflow.InvalidRequest, match="exactly one of trail_amount"):
        await trail.modify(trail_amount=1.0, trail_percent=1.0)
    with pytest.raises(ibflow.InvalidRequest, match="changes nothing"):
        await rel.modify(offset=0.01)
    with pytest.raises(ibflow.InvalidRequest, match="needs good_till"):
        await rel.modify(tif="GTD")
    assert placed(sim) == sent
    assert (trail.order.trail_amount, rel.order.offset) == (1.0, 0.01)


async def test_a_refused_change_of_a_bound_manual_order_reaches_its_trade(
    sim: Simulator,
) -> None:
    async with session_for(sim, client_id=0) as binder:
        perm_id = sim.place_manual("AAPL", "BUY", 2, limit_price=95.00)
        await eventually(lambda: any(t.perm_id == perm_id for t in binder.trades()))
        [trade] = binder.trades()
        # Bound under a negative id, never -1: that is the id of TWS's general notices.
        assert trade.order_id < -1
        assert trade.owned
        refusal = "Order rejected - reason:The order is locked by the exchange."
        sim.fail_next("place_order", 201, refusal)
        async with asyncio.timeout(5):  # promptly: not the session's default timeout
            with pytest.raises(ibflow.OrderRejected, match="locked") as rejected:
                await trade.modify(limit_price=95.50)
        assert (rejected.value.code, rejected.value.req_id) == (201, trade.order_id)
        assert trade.order.limit_price == 95.00
        assert trade.status is OrderStatus.SUBMITTED
        sim.fail_next("cancel_order", 161, "Cancel attempted when order is not cancellable.")
        async with asyncio.timeout(5):
            with pytest.raises(ibflow.OrderRejected) as refused:
                await trade.cancel()
        assert refused.value.code == 161
        await trade.modify(limit_price=95.50)  # nothing stuck: the next change goes through
        assert held(sim, trade).lmt_price == 95.50
        assert await trade.cancel() is OrderStatus.CANCELLED


async def test_a_restarted_bot_adopts_its_trailing_stop_and_changes_its_distance(
    sim: Simulator,
) -> None:
    bot = ibflow.client_id_for("modify-terms-bot")
    async with session_for(sim, client_id=bot) as first:
        placed_trail = await first.place(
            AAPL, ibflow.TrailingStopLimitOrder("SELL", 10, trail_amount=1.0, limit_offset=0.10)
        )
        placed_rel = await first.place(AAPL, ibflow.RelativeOrder("BUY", 10, offset=0.01))
        adaptive = ibflow.LimitOrder("BUY", 10, 95.00, algo=ibflow.Adaptive())
        placed_algo = await first.place(AAPL, adaptive)
    sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
    async with session_for(sim, client_id=bot) as again:
        adopted = {t.perm_id: t for t in again.trades()}
        # An algo order is not adopted: a modify could not send its algo as it is.
        assert set(adopted) == {placed_trail.perm_id, placed_rel.perm_id}
        assert placed_algo.perm_id in {s.perm_id for s in await again.open_orders()}
        trail, rel = adopted[placed_trail.perm_id], adopted[placed_rel.perm_id]
        assert (trail.order.trail_amount, trail.order.limit_offset) == (1.0, 0.10)
        assert (rel.order.offset, rel.order.limit_price) == (0.01, None)
        await trail.modify(trail_amount=0.5, limit_offset=0.20)
        at_sim = held(sim, trail)
        assert (at_sim.trail_stop_price, at_sim.lmt_price) == (101.50, 101.30)
        await rel.modify(cap=101.50)
        assert (held(sim, rel).lmt_price, held(sim, rel).working_price) == (101.50, 101.50)
        assert rel.order.limit_price == 101.50
