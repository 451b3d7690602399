"""ibflow on uvloop, the loop FastAPI/uvicorn services run on.

ib_async ships ``nest_asyncio``, which patches a loop's methods and cannot patch uvloop's at all;
ibflow's core must never call it. These tests run a whole session (connect, reads, a stream, an
order, a reconnect) on a uvloop loop against the simulator, and check that the loop is left as
it was found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import session_for

uvloop = pytest.importorskip("uvloop")


def run_on_uvloop(main: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, uvloop.Loop)
        runner.run(main())
        # nest_asyncio marks what it patched; uvloop's methods must be uvloop's own.
        assert not hasattr(loop, "_nest_patched")
        assert type(loop).run_until_complete is uvloop.Loop.run_until_complete


def test_a_session_works_on_uvloop() -> None:
    async def main() -> None:
        async with (
            Simulator(port=0, speed=100) as sim,
            session_for(sim, heartbeat_interval=1.0) as session,
        ):
            assert session.state is ibflow.ConnectionState.READY
            held = {
                p.contract.symbol: p.quantity
                for p in await session.positions()
                if p.contract.sec_type is ibflow.SecType.STOCK
            }
            assert held["AAPL"] == 100
            async with session.quotes(ibflow.Stock("AAPL")) as quotes:
                quote = await anext(quotes)
                assert isinstance(quote, ibflow.Quote)
                assert quote.bid is not None
            trade = await session.place(ibflow.Stock("AAPL"), ibflow.MarketOrder("BUY", 3))
            async with asyncio.timeout(5):
                [fill] = await trade.wait_filled()
            assert fill.quantity == 3
            assert sim.request_count("place_order") == 1

    run_on_uvloop(main)


def test_reconnect_and_stream_resume_on_uvloop() -> None:
    async def main() -> None:
        async with (
            Simulator(port=0, speed=100) as sim,
            session_for(sim, heartbeat_interval=1.0) as session,
            session.quotes(ibflow.Stock("AAPL")) as quotes,
        ):
            assert isinstance(await anext(quotes), ibflow.Quote)
            await sim.restart(down_for=0.3)
            async with asyncio.timeout(10):
                gap = None
                async for item in quotes:
                    if isinstance(item, ibflow.Gap):
                        gap = item
                    elif gap is not None:
                        assert isinstance(item, ibflow.Quote)
                        break
            assert gap is not None
            assert gap.end >= gap.start
            assert session.state is ibflow.ConnectionState.READY

    run_on_uvloop(main)
