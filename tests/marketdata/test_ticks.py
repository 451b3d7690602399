"""Historical ticks over the wire: typed records, paging beyond 1,000 under the pacer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

import ibflow
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York
END = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


@pytest.fixture
def paced(session: ibflow.Session) -> ibflow.Session:
    session.set_pacing(ibflow.PacingRules(time_scale=100))  # the simulator's speed
    return session


async def test_trades_from_a_start_are_paged_beyond_a_thousand(
    paced: ibflow.Session, sim: Simulator
) -> None:
    ticks = await paced.historical_ticks(AAPL, start=START, count=2500)
    assert len(ticks) == 2500
    assert all(isinstance(t, ibflow.TradeTick) for t in ticks)
    assert ticks[0].time >= START
    assert [t.time for t in ticks] == sorted(t.time for t in ticks)
    assert all(t.contract.con_id == 265598 for t in ticks)
    assert all(isinstance(t, ibflow.TradeTick) and t.price and t.price > 0 for t in ticks)
    assert sim.request_count("historical_ticks") == 3
    assert paced.pacing_statistics().violations == 0


async def test_six_pages_wait_their_turn_instead_of_a_pacing_violation(
    paced: ibflow.Session, sim: Simulator
) -> None:
    ticks = await paced.historical_ticks(AAPL, start=START, count=5500, what="MIDPOINT")
    assert len(ticks) == 5500
    assert all(isinstance(t, ibflow.MidpointTick) for t in ticks)
    times = [t.time for t in ticks]
    assert times == sorted(times)
    stats = paced.pacing_statistics()
    assert stats.historical_requests == 6
    assert stats.violations == 0
    assert stats.waits >= 1  # the sixth page for one contract waited out IB's burst rule
    assert sim.request_count("historical_ticks") == 6


async def test_bid_ask_before_an_end_comes_oldest_first(paced: ibflow.Session) -> None:
    ticks = await paced.historical_ticks(AAPL, end=END, count=1500, what="BID_ASK")
    assert len(ticks) == 1500
    assert all(isinstance(t, ibflow.BidAskTick) for t in ticks)
    assert ticks[-1].time < END
    assert [t.time for t in ticks] == sorted(t.time for t in ticks)
    for t in ticks:
        assert isinstance(t, ibflow.BidAskTick)
        assert t.bid is not None
        assert t.ask is not None
        assert t.bid < t.ask
    # Pages join without repeating a second's ticks.
    seconds = [list(g) for _, g in itertools.groupby(ticks, key=lambda t: t.time)]
    assert len(seconds) == len({t.time for t in ticks})


async def test_bad_arguments_are_refused_before_anything_is_sent(
    session: ibflow.Session, sim: Simulator
) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="exactly one"):
        await session.historical_ticks(AAPL, start=START, end=END)
    with pytest.raises(ibflow.InvalidRequest, match="exactly one"):
        await session.historical_ticks(AAPL)
    with pytest.raises(ibflow.InvalidRequest, match="what"):
        await session.historical_ticks(AAPL, start=START, what="BID")
    with pytest.raises(ibflow.InvalidRequest, match="naive"):
        await session.historical_ticks(AAPL, start=datetime(2026, 11, 24, 15))
    with pytest.raises(ibflow.InvalidRequest, match="count"):
        await session.historical_ticks(AAPL, start=START, count=0)
    assert sim.request_count("historical_ticks") == 0


async def test_an_ib_refusal_is_a_typed_error(session: ibflow.Session) -> None:
    eur = ibflow.Forex("EURUSD")
    with pytest.raises(ibflow.RequestError) as caught:
        await session.historical_ticks(eur, start=START, count=100)
    assert caught.value.code == 162
