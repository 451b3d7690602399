"""Testing your own strategy against the simulator, with ibflow's pytest fixtures.

    python -m pytest examples/test_my_bot.py

With ibflow and pytest-asyncio installed, ibflow's pytest plugin provides ``ib_sim`` (a fresh
simulator on a free loopback port for each test), ``ib_sim_factory`` (more of them, with your
own arguments) and ``ibflow_session``; ``ibflow.testing`` has ``session_for`` and
``eventually``. The strategy here is ``bot_ma_crossover.py``, next to this file: its
signals are tested without any I/O, its orders and its ride through a gateway restart against
a real simulator over loopback TCP.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from bot_ma_crossover import Bot, Crossover, market_clock

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import SimFactory, session_for

AAPL = ibflow.Stock("AAPL")


def a_bar(close: float) -> ibflow.Bar:
    return ibflow.Bar(time=datetime.now(UTC), open=close, high=close, low=close, close=close)


def test_the_crossover_signals_each_cross_once() -> None:
    strategy = Crossover(fast=2, slow=4)
    closes = [12, 11, 10, 9, 9, 10, 11, 12, 12, 11, 10, 9]  # down, up, down again
    signals = [strategy.update(close) for close in closes]
    assert [(i, s) for i, s in enumerate(signals) if s] == [(6, "BUY"), (10, "SELL")]


@pytest.mark.asyncio  # a coroutine test: pytest-asyncio runs it
async def test_the_bot_buys_once_then_sells_what_it_holds(ib_sim: Simulator) -> None:
    bot = Bot(Crossover(fast=2, slow=4), quantity=10)
    async with session_for(ib_sim) as session:
        await bot.act(session, AAPL, "BUY", a_bar(200))
        await bot.act(session, AAPL, "BUY", a_bar(201))  # already long: nothing sent
        await bot.act(session, AAPL, "SELL", a_bar(199))
        await bot.act(session, AAPL, "SELL", a_bar(198))  # flat: nothing sent
    # The simulator is the broker: it saw exactly two orders, both filled.
    orders = [(o.action, o.total_quantity, o.status) for o in ib_sim.orders]
    assert orders == [("BUY", 10, "Filled"), ("SELL", 10, "Filled")]
    assert (bot.orders, bot.position) == (2, 0)


@pytest.mark.asyncio
async def test_the_bot_rides_through_a_gateway_restart(ib_sim_factory: SimFactory) -> None:
    # A market clock 240 times faster than real time: a one-minute bar every quarter second.
    sim = await ib_sim_factory(seed=3, clock=market_clock(240))
    bot = Bot(Crossover(fast=2, slow=4), quantity=10)
    async with session_for(sim) as session:
        async with asyncio.timeout(15):
            running = asyncio.create_task(bot.run(session, AAPL, max_bars=8))
            await asyncio.sleep(1)  # about four bars
            await sim.restart(down_for=0.3)
            await running
    assert bot.gaps == 1
    assert bot.live_bars == 8
    fills = sum(f.shares if f.side == "BOT" else -f.shares for f in sim.fills)
    assert bot.position == fills
