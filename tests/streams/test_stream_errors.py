"""How streams end: IB errors raise mapped types from the iterator, never a stream of NaNs."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .helpers import AAPL, MSFT, lines


async def test_no_permission_354_raises_market_data_error(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.fail_next("mkt_data", 354, "Requested market data is not subscribed.")
    async with session.quotes(AAPL) as quotes:
        with pytest.raises(ibflow.MarketDataError) as caught:
            await anext(quotes)
        assert caught.value.code == 354
        with pytest.raises(ibflow.MarketDataError):
            await anext(quotes)
    assert lines(sim) == 0
    assert session.statistics().active_subscriptions == 0
    # The session and a fresh stream of the same contract still work.
    async with session.quotes(AAPL) as again:
        assert isinstance(await anext(again), ibflow.Quote)


@pytest.mark.parametrize("code", [10089, 10168])
async def test_subscription_needed_errors(
    session: ibflow.Session, sim: Simulator, code: int
) -> None:
    sim.fail_next("mkt_data", code, "Requested market data requires additional subscription.")
    sim.delay(0.1)  # both consumers join the request before IB's answer comes back
    async with session.quotes(MSFT) as one, session.quotes(MSFT) as two:
        for stream in (one, two):  # both consumers of the shared request learn it
            with pytest.raises(ibflow.MarketDataError) as caught:
                await anext(stream)
            assert caught.value.code == code


async def test_line_limit_101_fails_only_the_stream_over_the_limit(sim: Simulator) -> None:
    sim.scenario.market_data_lines = 1
    async with session_for(sim) as session, session.quotes(AAPL) as first:
        assert isinstance(await anext(first), ibflow.Quote)
        async with session.quotes(MSFT) as second:
            with pytest.raises(ibflow.MarketDataError) as caught:
                await anext(second)
            assert caught.value.code == 101
        assert isinstance(await anext(first), ibflow.Quote)
        # Sharing is what makes a second AAPL consumer fit in the one line.
        async with session.quotes(AAPL) as shared:
            assert isinstance(await anext(shared), ibflow.Quote)
        assert lines(sim) == 1


async def test_unknown_contract_raises_on_entering(session: ibflow.Session, sim: Simulator) -> None:
    with pytest.raises(ibflow.ContractNotFound):
        async with session.quotes(ibflow.Stock("ZZZZQ")):
            pytest.fail("not reached")
    with pytest.raises(ibflow.ContractNotFound):
        await session.quote(ibflow.Stock("ZZZZQ"))
    assert sim.request_count("mkt_data") == 0


async def test_bad_con_id_is_error_200_from_the_iterator(session: ibflow.Session) -> None:
    async with session.quotes(ibflow.Stock("AAPL", con_id=999_999_999)) as quotes:
        with pytest.raises(ibflow.ContractNotFound):
            await anext(quotes)


async def test_snapshot_error_raises_the_mapped_type(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.fail_next("mkt_data", 354, "Requested market data is not subscribed.")
    with pytest.raises(ibflow.MarketDataError):
        await session.quote(AAPL)


async def test_snapshot_timeout_cancels_the_request(
    session: ibflow.Session, sim: Simulator
) -> None:
    await session.quote(AAPL)  # qualifies (and caches) the contract first
    sim.ignore("mkt_data")
    with pytest.raises(ibflow.RequestTimeout):
        await session.quote(AAPL, timeout=0.2)
    await eventually(lambda: sim.request_count("cancel_mkt_data") == 1)


async def test_lost_link_without_reconnect_raises_connection_lost(sim: Simulator) -> None:
    async with session_for(sim, reconnect=None) as session:
        async with session.quotes(AAPL) as quotes, session.ticks(AAPL) as ticks:
            await anext(quotes)
            sim.drop_connections()

            async def drain() -> None:
                async with asyncio.timeout(5):
                    async for _ in quotes:
                        pass

            with pytest.raises(ibflow.ConnectionLost):
                await drain()
            with pytest.raises(ibflow.ConnectionLost):
                await anext(ticks)


async def test_closing_the_session_ends_streams_quietly(sim: Simulator) -> None:
    session = await session_for(sim).connect()
    received: list[object] = []

    async def consume() -> None:
        async with session.quotes(AAPL) as quotes:
            async for quote in quotes:
                received.append(quote)

    task = asyncio.create_task(consume())
    await eventually(lambda: received)
    await session.aclose()
    await asyncio.wait_for(task, 5)  # ended without an error
    with pytest.raises(ibflow.SessionClosedError):
        async with session.quotes(AAPL):
            pass


async def test_realtime_bars_refused_by_ib(session: ibflow.Session, sim: Simulator) -> None:
    sim.fail_next("real_time_bars", 162, "Historical Market Data Service error message:no data")
    async with session.realtime_bars(AAPL) as bars:
        with pytest.raises(ibflow.RequestError) as caught:
            await anext(bars)
        assert caught.value.code == 162
    assert lines(sim, "real_time_bars") == 0
