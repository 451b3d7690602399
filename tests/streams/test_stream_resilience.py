"""A reconnect never ends a stream: drops during re-subscription, pacing after a reconnect."""

from __future__ import annotations

import itertools
from datetime import timedelta

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .helpers import AAPL, Collector, fast_clock, lines


async def test_a_drop_while_re_subscribing_does_not_end_the_streams(
    session: ibflow.Session, sim: Simulator
) -> None:
    """The link drops while the order book re-reads executions after a 1101: streams resume."""
    # The order book re-reads first: the quote stream is re-issued after it.
    async with session.fills_stream() as _fills, session.quotes(AAPL) as quotes:
        seen = Collector(quotes)
        await seen.wait(lambda c: c.items)
        executions = sim.request_count("executions")
        sim.ignore("executions")  # the re-read after 1101 hangs until the link drops
        sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
        sim.notice(1101, "Connectivity between IB and TWS has been restored - data lost.")
        await eventually(lambda: sim.request_count("executions") > executions)
        sim.ignore("executions", False)
        sim.drop_connections()
        await seen.wait(lambda c: len(c.after_gap()) >= 3)
        assert session.state is ibflow.ConnectionState.READY
        assert len(seen.gaps()) == 1
        assert all(isinstance(q, ibflow.Quote) for q in seen.after_gap())
        assert lines(sim) == 1
        await seen.stop()


async def test_live_bars_resubscribed_within_the_identical_window_wait_their_turn() -> None:
    """A reconnect right after subscribing: the re-sent request waits out IB's 15 s rule."""
    # IB applies the rule to bars of 30 s and smaller. speed=20: its 15 s window is 0.75 s;
    # market time runs 120x, so a 30-second bar takes a quarter of a second.
    async with (
        Simulator(port=0, speed=20, clock=fast_clock(120)) as sim,
        session_for(sim) as session,
    ):
        session.set_pacing(ibflow.PacingRules(time_scale=20, margin=0.05))
        async with session.live_bars(AAPL, "30s", "3600 S") as bars:
            seen = Collector(bars)
            await seen.wait(lambda c: len(c.items) >= 50)
            sim.drop_connections()  # reconnects within ~0.1 s: inside the window
            await seen.wait(lambda c: len(c.after_gap()) >= 3)
            assert len(seen.gaps()) == 1
            before = seen.before_gap()[-1].time
            after = [b.time for b in seen.after_gap()]
            assert after[0] == before + timedelta(seconds=30)  # the gap is backfilled
            assert all(b - a == timedelta(seconds=30) for a, b in itertools.pairwise(after))
            stats = session.pacing_statistics()
            assert stats.violations == 0
            assert (stats.historical_requests, stats.open_requests) == (2, 1)
            assert stats.waits >= 1
            await seen.stop()
        await eventually(lambda: lines(sim, "historical_data") == 0)


async def test_live_bars_refused_for_pacing_after_a_reconnect_back_off_and_go_on() -> None:
    """Another program's requests made IB refuse the re-sent request (162): retry, not end."""
    async with (
        Simulator(port=0, speed=100, clock=fast_clock(120)) as sim,
        session_for(sim) as session,
    ):
        session.set_pacing(ibflow.PacingRules(time_scale=100, margin=0.05))
        async with session.live_bars(AAPL, "1m", "3600 S") as bars:
            seen = Collector(bars)
            await seen.wait(lambda c: len(c.items) >= 50)
            sim.fail_next("historical_data", 162, "Historical data request pacing violation")
            sim.drop_connections()
            await seen.wait(lambda c: len(c.after_gap()) >= 3)
            assert len(seen.gaps()) == 1
            before = seen.before_gap()[-1].time
            after = [b.time for b in seen.after_gap()]
            assert after[0] == before + timedelta(minutes=1)
            stats = session.pacing_statistics()
            assert stats.violations == 1
            assert (stats.historical_requests, stats.open_requests) == (3, 1)
            await seen.stop()
