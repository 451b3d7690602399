"""Quote streams and snapshots against the simulator: values, sharing, lifetime, data types."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .helpers import AAPL, MSFT, lines


async def next_quote(stream: ibflow.Stream[ibflow.Quote | ibflow.Gap]) -> ibflow.Quote:
    item = await anext(stream)
    assert isinstance(item, ibflow.Quote)
    return item


async def quote_where(
    stream: ibflow.Stream[ibflow.Quote | ibflow.Gap], check: object
) -> ibflow.Quote:
    """The first quote for which ``check(quote)`` is true (the sim keeps moving the market)."""
    async with asyncio.timeout(5):
        while True:
            quote = await next_quote(stream)
            if check(quote):  # type: ignore[operator]
                return quote


def test_stream_names_are_exported() -> None:
    for name in (
        "Quote",
        "Gap",
        "MarketDataType",
        "TradeTick",
        "BidAskTick",
        "MidpointTick",
        "Tick",
        "TickKind",
        "FormingBar",
        "Stream",
        "StreamStatistics",
        "Overflow",
        "StreamError",
        "SlowConsumer",
        "StreamClosed",
        "WouldBlock",
    ):
        assert name in ibflow.__all__, name
        assert getattr(ibflow, name) is not None


async def test_quote_carries_pushed_values_as_an_immutable_snapshot(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        first = await next_quote(quotes)
        assert first.contract.con_id is not None
        assert first.contract.symbol == "AAPL"
        assert first.time.tzinfo is not None
        assert first.market_data_type is ibflow.MarketDataType.LIVE
        sim.push_quote("AAPL", bid=101.25, ask=101.5, last=101.4, bid_size=300, ask_size=400)
        quote = await quote_where(quotes, lambda q: q.bid == 101.25)
        assert quote.ask == 101.5
        assert quote.bid_size == 300
        assert quote.ask_size == 400
        assert quote.midpoint == pytest.approx(101.375)
        for value in (quote.bid, quote.ask, quote.last, quote.volume, quote.close):
            assert value is None or value == value  # never NaN
        with pytest.raises(dataclasses.FrozenInstanceError):
            quote.bid = 1.0  # type: ignore[misc]
        assert first.bid != 101.25  # the earlier snapshot did not change under us


async def test_one_off_snapshot_quote(session: ibflow.Session, sim: Simulator) -> None:
    sim.push_quote("MSFT", bid=400.5, ask=400.75, last=400.6)
    quote = await session.quote(MSFT)
    assert quote.contract.symbol == "MSFT"
    assert quote.bid is not None
    assert quote.ask is not None
    assert quote.bid < quote.ask
    assert quote.time.tzinfo is UTC
    assert lines(sim) == 0


async def test_leaving_the_block_cancels_exactly_once(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        await next_quote(quotes)
        assert lines(sim) == 1
    await eventually(lambda: lines(sim) == 0)
    assert sim.request_count("cancel_mkt_data") == 1
    assert session.statistics().active_subscriptions == 0


async def test_break_and_aclose_cancel_exactly_once(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as quotes:
        async for _ in quotes:
            break
    stream = session.quotes(MSFT)
    async for _ in stream:  # no `async with`: the first __anext__ subscribes
        break
    assert lines(sim) == 1
    await stream.aclose()
    await stream.aclose()
    await eventually(lambda: lines(sim) == 0)
    assert sim.request_count("cancel_mkt_data") == 2
    async for _ in stream:
        pytest.fail("a closed stream yields nothing")


async def test_a_bare_async_for_left_by_break_releases_its_line(
    session: ibflow.Session, sim: Simulator
) -> None:
    async for quote in session.quotes(AAPL):  # no `async with`, no aclose()
        assert isinstance(quote, ibflow.Quote)
        break
    # The dropped stream's finalizer sends the cancel.
    await eventually(lambda: lines(sim) == 0)
    assert sim.request_count("cancel_mkt_data") == 1


async def test_an_exception_in_the_block_cancels_too(
    session: ibflow.Session, sim: Simulator
) -> None:
    async def fail_inside() -> None:
        async with session.quotes(AAPL) as quotes:
            await next_quote(quotes)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await fail_inside()
    await eventually(lambda: lines(sim) == 0)
    assert sim.request_count("cancel_mkt_data") == 1


async def test_two_consumers_share_one_line_until_the_last_leaves(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL) as one:
        await next_quote(one)
        async with session.quotes(AAPL, buffer=8, overflow="drop_oldest") as two:
            joined = await next_quote(two)  # the current snapshot, at once
            assert joined.contract.con_id == (await next_quote(one)).contract.con_id
            assert lines(sim) == 1
            assert sim.request_count("mkt_data") == 1
            sim.push_quote("AAPL", bid=99.5, ask=99.75)
            await quote_where(one, lambda q: q.bid == 99.5)
            await quote_where(two, lambda q: q.bid == 99.5)
        await asyncio.sleep(0.05)
        assert lines(sim) == 1
        assert sim.request_count("cancel_mkt_data") == 0
        await next_quote(one)
    await eventually(lambda: lines(sim) == 0)
    assert sim.request_count("cancel_mkt_data") == 1


async def test_slow_consumer_stays_bounded_and_does_not_stall_another(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL, buffer=4) as slow, session.quotes(MSFT) as fast:
        await next_quote(slow)
        # The sim moves every 10 ms: read MSFT for a while and never read AAPL.
        for _ in range(30):
            await next_quote(fast)
        stats = slow.statistics()
        assert stats.buffered <= 4
        assert stats.max_buffered <= 4
        assert stats.received > 5
        assert stats.dropped > 0
        assert (await next_quote(slow)).contract.symbol == "AAPL"


async def test_error_policy_raises_slow_consumer_and_releases_the_line(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.quotes(AAPL, buffer=2, overflow="error") as quotes:
        await eventually(lambda: quotes.closed)  # never read: the sim moves every 10 ms
        with pytest.raises(ibflow.SlowConsumer):
            await anext(quotes)
        assert quotes.statistics().dropped >= 1
        await eventually(lambda: lines(sim) == 0)
    assert sim.request_count("cancel_mkt_data") == 1


async def test_market_data_type_delayed_is_reported_on_each_quote(
    session: ibflow.Session, sim: Simulator
) -> None:
    await session.set_market_data_type("delayed")
    async with session.quotes(AAPL) as quotes:
        quote = await next_quote(quotes)
        assert quote.market_data_type is ibflow.MarketDataType.DELAYED
        assert quote.bid is not None
    snapshot = await session.quote(MSFT)
    assert snapshot.market_data_type is ibflow.MarketDataType.DELAYED
    await session.set_market_data_type(ibflow.MarketDataType.LIVE)
    assert (await session.quote(MSFT)).market_data_type is ibflow.MarketDataType.LIVE


async def test_halted_flag(session: ibflow.Session, sim: Simulator) -> None:
    sim.push_quote("AAPL", halted=True)
    async with session.quotes(AAPL) as quotes:
        assert (await next_quote(quotes)).halted is True


async def test_invalid_arguments_are_refused_before_anything_is_sent(
    session: ibflow.Session, sim: Simulator
) -> None:
    before = sim.request_count("mkt_data")
    with pytest.raises(ibflow.InvalidRequest, match="overflow"):
        session.quotes(AAPL, overflow="newest")
    with pytest.raises(ibflow.InvalidRequest, match="buffer"):
        session.quotes(AAPL, buffer=0)
    with pytest.raises(ibflow.InvalidRequest, match="contract"):
        session.quotes("AAPL")  # type: ignore[arg-type]
    with pytest.raises(ibflow.InvalidRequest, match="kind"):
        session.ticks(AAPL, "trades")  # type: ignore[call-overload]
    with pytest.raises(ibflow.InvalidRequest, match="market data type"):
        await session.set_market_data_type("realtime")
    with pytest.raises(ibflow.InvalidRequest, match="timeout"):
        await session.quote(AAPL, timeout=0)
    assert sim.request_count("mkt_data") == before
    assert sim.request_count("market_data_type") == 0
