"""Market depth over the wire: consistent books from IB's operations, sharing, limits, outages."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = ibflow.Stock("AAPL")
MSFT_NASDAQ = ibflow.Stock("MSFT", "NASDAQ")


def check(book: ibflow.OrderBook, rows: int, *, strict: bool) -> None:
    """A book as TWS keeps it: at most ``rows`` per side, best first, never crossed."""
    assert len(book.bids) <= rows
    assert len(book.asks) <= rows
    bids = [level.price for level in book.bids]
    asks = [level.price for level in book.asks]
    if strict:
        assert all(a > b for a, b in itertools.pairwise(bids)), bids
        assert all(a < b for a, b in itertools.pairwise(asks)), asks
    else:
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
    assert all(level.size > 0 for level in book.bids + book.asks)
    if bids and asks:
        assert bids[0] < asks[0]
        assert book.spread == asks[0] - bids[0]


async def books(
    stream: ibflow.Stream[ibflow.OrderBook | ibflow.Gap], n: int
) -> list[ibflow.OrderBook]:
    seen: list[ibflow.OrderBook] = []
    async with asyncio.timeout(5):
        async for item in stream:
            assert isinstance(item, ibflow.OrderBook)
            seen.append(item)
            if len(seen) >= n:
                return seen
    raise AssertionError("the depth stream ended")


async def test_exchange_depth_builds_a_consistent_book_of_the_rows_asked_for(
    session: ibflow.Session,
) -> None:
    async with session.depth(MSFT_NASDAQ, rows=5) as stream:
        seen = await books(stream, 60)
    for book in seen:
        check(book, 5, strict=True)
        assert all(
            level.market_maker is not None and len(level.market_maker) == 4
            for level in book.bids + book.asks
        )
    assert any(len(b.bids) == 5 and len(b.asks) == 5 for b in seen)
    assert len({(b.bids, b.asks) for b in seen}) > 10  # the book moves


async def test_smart_depth_names_its_venues(session: ibflow.Session, sim: Simulator) -> None:
    async with session.depth(AAPL, rows=10, smart=True) as stream:
        seen = await books(stream, 60)
        assert sim.subscriptions()["mkt_depth"] == 1
    for book in seen:
        check(book, 10, strict=False)
    full = next(b for b in seen if len(b.bids) == 10 and len(b.asks) == 10)
    assert {level.market_maker for level in full.bids + full.asks} <= {
        "NASDAQ",
        "ARCA",
        "NYSE",
        "BATS",
        "IEX",
        "EDGX",
    }
    await eventually(lambda: "mkt_depth" not in sim.subscriptions())


async def test_consumers_of_one_book_share_a_subscription(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.depth(AAPL, smart=True) as one, session.depth(AAPL, smart=True) as two:
        await books(one, 3)
        late = await books(two, 1)  # a newcomer gets the latest book at once
        check(late[0], 10, strict=False)
        assert sim.subscriptions()["mkt_depth"] == 1
    await eventually(lambda: "mkt_depth" not in sim.subscriptions())


async def test_a_fourth_book_is_error_309(session: ibflow.Session, sim: Simulator) -> None:
    streams = [
        session.depth(ibflow.Stock(symbol), smart=True) for symbol in ("AAPL", "MSFT", "SPY")
    ]
    for stream in streams:
        await stream.__aenter__()
        await books(stream, 1)
    try:
        async with session.depth(ibflow.Stock("QQQ"), smart=True) as fourth:
            with pytest.raises(ibflow.MarketDataError) as caught:
                await anext(fourth)
        assert caught.value.code == 309
        assert sim.subscriptions()["mkt_depth"] == 3
    finally:
        for stream in streams:
            await stream.aclose()
    await eventually(lambda: "mkt_depth" not in sim.subscriptions())


async def test_a_venue_without_depth_is_a_typed_error(session: ibflow.Session) -> None:
    async with session.depth(AAPL) as stream:  # SMART needs smart=True
        with pytest.raises(ibflow.MarketDataError) as caught:
            await anext(stream)
    assert caught.value.code == 10092
    with pytest.raises(ibflow.InvalidRequest, match="rows"):
        session.depth(AAPL, rows=0)


async def test_depth_is_resubscribed_after_a_restart_behind_one_gap(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.depth(MSFT_NASDAQ, rows=5) as stream:
        await books(stream, 3)
        await sim.restart(down_for=0.2)
        items: list[ibflow.OrderBook | ibflow.Gap] = []
        async with asyncio.timeout(5):
            async for item in stream:
                items.append(item)
                if sum(isinstance(i, ibflow.OrderBook) for i in items) >= 10:
                    break
        gaps = [i for i in items if isinstance(i, ibflow.Gap)]
        assert len(gaps) == 1
        after = [i for i in items[items.index(gaps[0]) :] if isinstance(i, ibflow.OrderBook)]
        for book in after:
            check(book, 5, strict=True)
        assert sim.subscriptions()["mkt_depth"] == 1


async def test_depth_exchanges_list_venues_and_service_types(session: ibflow.Session) -> None:
    venues = await session.depth_exchanges()
    by_name = {(v.exchange, v.sec_type): v for v in venues}
    assert by_name[("NASDAQ", "STK")].service_data_type == "Deep2"
    assert by_name[("ARCA", "STK")].service_data_type == "Deep"
    assert ("CME", "FUT") in by_name
