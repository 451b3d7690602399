"""Live bars keep their whole lookback even when updates arrive right behind the history."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .helpers import AAPL, fast_clock


async def test_updates_read_with_the_history_do_not_discard_it() -> None:
    """History and several updates (one beginning a new bar) reach the client in one read."""
    # Market time runs 120x: a one-minute bar takes half a second.
    async with (
        Simulator(port=0, speed=100, clock=fast_clock(120)) as sim,
        session_for(sim) as session,
    ):
        [aapl] = await session.qualify(AAPL)  # no lookup while the simulator holds its frames
        sim.stall()
        bars = session.live_bars(aapl, "1m", "3600 S")
        first = asyncio.create_task(anext(bars))
        await eventually(lambda: sim.request_count("historical_data") == 1)
        await asyncio.sleep(0.6)  # updates pile up behind the history, and a new bar begins
        sim.stall(False)
        received: list[ibflow.Bar] = []
        async with asyncio.timeout(3):  # the lookback at once, not bar by bar (30 s)
            received.append(await first)
            while len(received) < 62:
                received.append(await anext(bars))
        await bars.aclose()
    assert all(type(b) is ibflow.Bar for b in received)
    times = [b.time for b in received]
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=1)}
