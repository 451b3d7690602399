"""Cancelling a consumer at any await point leaves the session and the other streams working.

Modelled on redis-py's cancellation suite (CVE-2023-28858/28859): the consumer task is cancelled
after a range of delays, with the simulator slowed down so the cancellation lands in every phase
(contract lookup, subscribing, waiting for data, reading). After each one the IB subscription
is gone, a witness stream on another contract never stopped, and fresh requests get their own
answers (nothing misrouted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .helpers import AAPL, MSFT, SPY, lines

DELAYS = [0.0, 0.001, 0.003, 0.006, 0.01, 0.015, 0.02, 0.03, 0.05, 0.08]

# IB (and the sim) pace tick-by-tick and history requests per instrument: each round of the
# loop below uses the next symbol, so pacing never hides what is being tested.
SYMBOLS = ["AAPL", "AMZN", "GOOGL", "TSLA", "NVDA", "META", "JPM", "XOM", "KO", "QQQ", "IWM"]

Opener = Callable[[ibflow.Session, int], ibflow.Stream[Any]]
OPENERS: dict[str, tuple[Opener, str]] = {
    "quotes": (lambda s, n: s.quotes(ibflow.Stock(SYMBOLS[n])), "mkt_data"),
    "ticks": (lambda s, n: s.ticks(ibflow.Stock(SYMBOLS[n]), "bid_ask"), "tick_by_tick"),
    "realtime_bars": (lambda s, n: s.realtime_bars(ibflow.Stock(SYMBOLS[n])), "real_time_bars"),
    "live_bars": (
        lambda s, n: s.live_bars(ibflow.Stock(SYMBOLS[n]), "5m", "2 D"),
        "historical_data",
    ),
    "pnl": (lambda s, n: s.pnl_updates(), "pnl"),
}


async def consume(stream: ibflow.Stream[Any]) -> None:
    async with stream:
        async for _ in stream:
            await asyncio.sleep(0)


@pytest.mark.parametrize("kind", list(OPENERS))
async def test_cancelling_a_consumer_anywhere_releases_its_subscription(
    session: ibflow.Session, sim: Simulator, kind: str
) -> None:
    opener, sim_kind = OPENERS[kind]
    async with session.quotes(MSFT) as witness:
        await anext(witness)
        baseline = session.statistics().active_subscriptions
        held = lines(sim, sim_kind)  # the witness's own line, for quotes
        sim.delay(0.01)  # every answer takes 10 ms: cancellations land mid-request too
        for n, delay in enumerate(DELAYS):
            task = asyncio.create_task(consume(opener(session, n)))
            await asyncio.sleep(delay)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await eventually(lambda: lines(sim, sim_kind) == held)
            await eventually(lambda: session.statistics().active_subscriptions == baseline)
            # The witness never stopped.
            assert isinstance(await anext(witness), ibflow.Quote)
        sim.delay(0)
        assert session.state is ibflow.ConnectionState.READY
        # Nothing is misrouted: a fresh request of each kind gets its own answer.
        async with opener(session, len(DELAYS)) as again:
            assert not isinstance(await anext(again), ibflow.Gap)
        assert (await session.quote(SPY)).contract.symbol == "SPY"


async def test_cancelling_snapshots_anywhere_never_desyncs(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.delay(0.01)
    for delay in DELAYS:
        task = asyncio.create_task(session.quote(AAPL if delay < 0.02 else SPY))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            quote = await task
        except asyncio.CancelledError:
            continue
        assert quote.contract.symbol in ("AAPL", "SPY")
    sim.delay(0)
    assert (await session.quote(MSFT)).contract.symbol == "MSFT"
    assert (await session.quote(AAPL)).contract.symbol == "AAPL"
    assert lines(sim) == 0


async def test_timeout_around_anext_keeps_the_stream_open(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.realtime_bars(AAPL) as bars:
        for _ in range(5):
            try:
                async with asyncio.timeout(0.001):
                    await anext(bars)
            except TimeoutError:
                pass
        assert not bars.closed
        assert isinstance(await anext(bars), ibflow.Bar)
        assert lines(sim, "real_time_bars") == 1
