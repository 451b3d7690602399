"""Streams across a gateway restart and TWS's own 1100/1101/1102: one Gap, then data again."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import TypeVar

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .helpers import AAPL, Collector, fast_clock, lines

T = TypeVar("T")


async def test_quotes_survive_a_gateway_restart_with_one_gap(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        seen = Collector(quotes)
        await seen.wait(lambda c: len(c.items) >= 2)
        await sim.restart(down_for=0.3)
        await seen.wait(lambda c: len(c.after_gap()) >= 3)
        await asyncio.sleep(0.1)
        gaps = seen.gaps()
        assert len(gaps) == 1
        gap = gaps[0]
        assert gap.start < gap.end
        assert gap.duration >= timedelta(seconds=0.2)
        assert all(isinstance(q, ibflow.Quote) for q in seen.after_gap())
        assert seen.after_gap()[0].time >= gap.end
        assert seen.before_gap()[-1].time <= gap.start
        assert lines(sim) == 1  # re-subscribed on the new connection, once
        await seen.stop()
    await eventually(lambda: lines(sim) == 0)


async def test_market_data_type_is_restored_after_a_restart(
    session: ibflow.Session, sim: Simulator
) -> None:
    await session.set_market_data_type("delayed_frozen")
    async with session.quotes(AAPL) as quotes:
        seen = Collector(quotes)
        await seen.wait(lambda c: c.items)
        await sim.restart(down_for=0.2)
        await seen.wait(lambda c: len(c.after_gap()) >= 1)
        assert all(
            q.market_data_type is ibflow.MarketDataType.DELAYED_FROZEN for q in seen.after_gap()
        )
        await seen.stop()


async def test_ticks_are_resubscribed_after_a_restart(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.ticks(AAPL, "midpoint") as ticks:
        seen = Collector(ticks)
        await seen.wait(lambda c: c.items)
        await sim.restart(down_for=0.2)
        await seen.wait(lambda c: len(c.after_gap()) >= 2)
        assert all(isinstance(t, ibflow.MidpointTick) for t in seen.after_gap())
        assert len(seen.gaps()) == 1
        await seen.stop()
    await eventually(lambda: lines(sim, "tick_by_tick") == 0)


async def test_tws_losing_ib_1100_then_1101_re_requests_on_the_same_socket(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        seen = Collector(quotes)
        await seen.wait(lambda c: c.items)
        sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
        await asyncio.sleep(0.05)
        sim.notice(1101, "Connectivity between IB and TWS has been restored - data lost.")
        await seen.wait(lambda c: len(c.after_gap()) >= 2)
        assert len(seen.gaps()) == 1
        assert "1101" in seen.gaps()[0].reason
        assert sim.request_count("mkt_data") == 2
        assert sim.request_count("cancel_mkt_data") == 1
        assert lines(sim) == 1
        await seen.stop()


async def test_tws_losing_ib_1100_then_1102_marks_the_gap_when_data_resumes(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        seen = Collector(quotes)
        await seen.wait(lambda c: c.items)
        sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
        sim.notice(1102, "Connectivity between IB and TWS has been restored - data maintained.")
        await seen.wait(lambda c: len(c.after_gap()) >= 1)
        assert len(seen.gaps()) == 1
        assert sim.request_count("mkt_data") == 1
        await seen.stop()


async def test_realtime_bars_backfill_the_gap_from_history() -> None:
    # Market time runs 60x: a 0.5 s outage hides ~30 s of 5-second bars.
    async with (
        Simulator(port=0, speed=100, clock=fast_clock(60)) as sim,
        session_for(sim) as session,
        session.realtime_bars(AAPL, "MIDPOINT") as bars,
    ):
        seen = Collector(bars)
        await seen.wait(lambda c: len(c.items) >= 3)
        await sim.restart(down_for=0.5)
        await seen.wait(lambda c: len(c.after_gap()) >= 10)
        before = seen.before_gap()[-1].time
        times = sorted({b.time for b in seen.after_gap()})
        gap = seen.gaps()[0]
        assert gap.duration >= timedelta(seconds=0.4)
        # Every 5-second bar of the outage is there, right after the Gap.
        expected = [before + timedelta(seconds=5 * n) for n in range(1, 6)]
        assert set(expected) <= set(times), (before, times[:10])
        assert all(t > before for t in times)
        await seen.stop()


async def test_live_bars_complete_and_backfill_after_a_restart() -> None:
    # Market time runs 120x: a one-minute bar completes every half second.
    async with (
        Simulator(port=0, speed=100, clock=fast_clock(120)) as sim,
        session_for(sim) as session,
        session.live_bars(AAPL, "1m", "3600 S") as bars,
    ):
        seen = Collector(bars)
        await seen.wait(lambda c: len(c.items) >= 40)
        history = list(seen.items)
        assert all(type(b) is ibflow.Bar for b in history)
        times = [b.time for b in history]
        assert times == sorted(set(times))
        await seen.wait(lambda c: len(c.items) >= len(history) + 1)  # a bar completed live
        await sim.restart(down_for=1.5)
        await seen.wait(lambda c: len(c.after_gap()) >= 3)
        before = seen.before_gap()[-1].time
        after = [b.time for b in seen.after_gap()]
        assert after == sorted(set(after))
        assert after[0] == before + timedelta(minutes=1)  # nothing missing, nothing repeated
        assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(after))
        # The re-sent request is booked with the pacer like the first; the old one is closed.
        stats = session.pacing_statistics()
        assert (stats.historical_requests, stats.open_requests) == (2, 1)
        await seen.stop()


async def test_account_streams_mark_the_gap_and_resume(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.account_updates() as values, session.pnl_updates() as pnl:
        seen_values = Collector(values)
        seen_pnl = Collector(pnl)
        await seen_pnl.wait(lambda c: c.items)
        await sim.restart(down_for=0.2)
        await seen_pnl.wait(lambda c: len(c.after_gap()) >= 1)
        await seen_values.wait(lambda c: len(c.after_gap()) >= 5)  # the re-sync is news again
        assert isinstance(seen_values.after_gap()[0], ibflow.AccountValue)
        assert isinstance(seen_pnl.after_gap()[0], ibflow.PnL)
        await seen_values.stop()
        await seen_pnl.stop()


@pytest.mark.parametrize("which", ["quotes", "realtime_bars"])
async def test_without_reconnect_a_restart_raises_connection_lost(
    sim: Simulator, which: str
) -> None:
    async with session_for(sim, reconnect=None) as session:
        stream = session.quotes(AAPL) if which == "quotes" else session.realtime_bars(AAPL)
        async with stream:
            seen = Collector(stream)
            await sim.restart(down_for=0.1)
            await eventually(lambda: seen.error is not None)
            assert isinstance(seen.error, ibflow.ConnectionLost)
