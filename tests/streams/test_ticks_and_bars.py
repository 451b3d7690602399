"""Tick-by-tick, real-time bars and live (keepUpToDate) bars against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import timedelta

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import SimFactory, eventually, session_for

from .helpers import AAPL, fast_clock, lines


@pytest.mark.parametrize(
    ("kind", "item_type"),
    [
        ("last", ibflow.TradeTick),
        ("all_last", ibflow.TradeTick),
        ("bid_ask", ibflow.BidAskTick),
        ("midpoint", ibflow.MidpointTick),
    ],
)
async def test_each_tick_kind_yields_its_own_records(
    session: ibflow.Session, sim: Simulator, kind: str, item_type: type
) -> None:
    async with session.ticks(AAPL, kind) as ticks:  # type: ignore[call-overload]
        ticks_seen = [await anext(ticks) for _ in range(3)]
    assert all(type(t) is item_type for t in ticks_seen)
    first = ticks_seen[0]
    assert first.contract.symbol == "AAPL"
    assert first.time.tzinfo is not None
    if isinstance(first, ibflow.TradeTick):
        assert first.price is not None
        assert first.price > 0
    elif isinstance(first, ibflow.BidAskTick):
        assert first.bid is not None
        assert first.ask is not None
        assert first.bid <= first.ask
    await eventually(lambda: lines(sim, "tick_by_tick") == 0)
    assert sim.request_count("cancel_tick_by_tick") == 1


async def test_ticks_and_quotes_of_one_contract_do_not_mix(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes, session.ticks(AAPL, "midpoint") as mids:
        for _ in range(5):
            assert isinstance(await anext(quotes), ibflow.Quote)
            assert isinstance(await anext(mids), ibflow.MidpointTick)
        async with session.ticks(AAPL, "midpoint") as shared:
            assert isinstance(await anext(shared), ibflow.MidpointTick)
            assert lines(sim, "tick_by_tick") == 1


async def test_a_fourth_tick_by_tick_stream_is_a_typed_error(
    session: ibflow.Session, sim: Simulator
) -> None:
    symbols = ("AAPL", "MSFT", "SPY")
    async with contextlib.AsyncExitStack() as stack:
        for symbol in symbols:
            stream = await stack.enter_async_context(session.ticks(ibflow.Stock(symbol), "last"))
            assert isinstance(await anext(stream), ibflow.TradeTick)
        with pytest.raises(ibflow.MarketDataError, match="tick-by-tick") as full:
            async with session.ticks(ibflow.Stock("QQQ"), "last") as fourth:
                await anext(fourth)
        assert full.value.code == 10190
    await eventually(lambda: lines(sim, "tick_by_tick") == 0)


async def test_realtime_bars_are_typed_and_released(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.realtime_bars(AAPL, "midpoint") as bars:
        bar = await anext(bars)
        assert isinstance(bar, ibflow.Bar)
        assert bar.time.tzinfo is not None
        assert bar.low <= bar.open <= bar.high
        assert bars.overflow is ibflow.Overflow.ERROR
    await eventually(lambda: lines(sim, "real_time_bars") == 0)
    with pytest.raises(ibflow.InvalidRequest, match="what"):
        session.realtime_bars(AAPL, "OPTION_VOLUME")


async def test_live_bars_yield_history_then_completed_bars() -> None:
    # Market time runs 120x: a one-minute bar completes every half second.
    async with (
        Simulator(port=0, speed=100, clock=fast_clock(120)) as sim,
        session_for(sim) as session,
        session.live_bars(AAPL, "1m", "3600 S") as bars,
    ):
        received: list[ibflow.Bar] = []
        async with asyncio.timeout(10):
            while len(received) < 62:
                item = await anext(bars)
                assert type(item) is ibflow.Bar
                received.append(item)
        times = [b.time for b in received]
        assert times == sorted(set(times))
        steps = {b - a for a, b in itertools.pairwise(times)}
        assert steps == {timedelta(minutes=1)}
    await eventually(lambda: lines(sim, "historical_data") == 0)


async def test_live_bars_with_the_forming_bar() -> None:
    async with (
        Simulator(port=0, speed=100, clock=fast_clock(120)) as sim,
        session_for(sim) as session,
        session.live_bars(AAPL, "1 min", "3600 S", include_forming=True) as bars,
    ):
        forming: dict[object, int] = {}
        completed: list[ibflow.Bar] = []
        async with asyncio.timeout(10):
            async for item in bars:
                if isinstance(item, ibflow.FormingBar):
                    forming[item.time] = forming.get(item.time, 0) + 1
                elif isinstance(item, ibflow.Bar):
                    completed.append(item)
                    if item.time in forming:  # a bar we saw forming has completed
                        break
        assert forming[completed[-1].time] >= 1
        assert isinstance(completed[-1], ibflow.Bar)
        assert not isinstance(completed[-1], ibflow.FormingBar)


async def test_live_bars_hold_a_historical_pacing_slot(sim: Simulator) -> None:
    async with session_for(sim) as session:
        # IB's windows on the simulator's time scale (2 s → 20 ms), so the test never waits long.
        session.set_pacing(ibflow.PacingRules(time_scale=100, margin=0.05))
        async with session.live_bars(AAPL, "5m", "2 D") as bars:
            assert isinstance(await anext(bars), ibflow.Bar)
            stats = session.pacing_statistics()
            assert stats.historical_requests == 1
            assert stats.open_requests == 1  # a keepUpToDate request stays open at IB
        assert session.pacing_statistics().open_requests == 0


async def test_live_bars_and_history_share_the_burst_limit(ib_sim_factory: SimFactory) -> None:
    """Six requests for one contract inside IB's 2 s would trip a 162: the sixth waits."""
    # An open market whatever the day the suite runs: the windows below end now.
    sim = await ib_sim_factory(clock=fast_clock(1.0))
    async with session_for(sim) as session:
        # 2 s → 0.5 s: long enough that the four history calls fall inside one window.
        # Every bar size under the burst rule, as the simulator's strict mode counts them.
        session.set_pacing(ibflow.PacingRules(time_scale=4, margin=0.05, small_bars_only=False))
        # Short, different windows: cheap for the simulator, and never identical requests.
        for hours in range(1, 5):
            await session.history(AAPL, duration=f"{hours * 3600} S", period="5m", rth=False)
        async with (
            session.live_bars(AAPL, "5m", "18000 S") as fifth,
            session.live_bars(AAPL, "5m", "21600 S") as sixth,
        ):
            assert isinstance(await anext(fifth), ibflow.Bar)
            assert isinstance(await anext(sixth), ibflow.Bar)
        stats = session.pacing_statistics()
        assert stats.historical_requests == 6
        assert stats.waits >= 1
        assert stats.violations == 0
        assert stats.open_requests == 0


async def test_live_bars_refuse_bad_arguments(session: ibflow.Session, sim: Simulator) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="period"):
        session.live_bars(AAPL, "7m")
    with pytest.raises(ibflow.InvalidRequest, match="period"):
        session.live_bars(AAPL, "1s")
    with pytest.raises(ibflow.InvalidRequest, match="lookback"):
        session.live_bars(AAPL, "1m", "yesterday")
    assert sim.request_count("historical_data") == 0


async def test_live_bars_history_error_raises_from_the_iterator(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.fail_next("historical_data", 162, "Historical data request pacing violation")
    async with session.live_bars(AAPL, "5m", "2 D") as bars:
        with pytest.raises(ibflow.PacingViolation):
            await anext(bars)


@pytest.mark.parametrize(
    ("period", "lookback"), [("5M", "1 D"), ("1s", "1 D"), ("1m", "1 X"), ("1m", "0 D")]
)
async def test_live_bars_read_periods_as_history_does(
    session: ibflow.Session, period: str, lookback: str
) -> None:
    """One vocabulary: "5M" is five months for both (refused), "1m" a minute for both."""
    with pytest.raises(ibflow.InvalidRequest):
        session.live_bars(ibflow.Stock("AAPL"), period, lookback)
    with pytest.raises(ibflow.InvalidRequest):
        await session.history(ibflow.Stock("AAPL"), period=period, duration=lookback)


@pytest.mark.parametrize("period", ["5 minutes", "1 hour", "5m", "1 min"])
async def test_live_bars_accept_every_spelling_history_accepts(
    session: ibflow.Session, period: str
) -> None:
    async with session.live_bars(ibflow.Stock("AAPL"), period, "1 D") as bars:
        first = await asyncio.wait_for(anext(bars), 10)
    assert isinstance(first, ibflow.Bar)
