"""reqHistoricalTicks over real ib_async: limits, paging, and agreement with the 1-second bars."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import ib_async
from ib_async import Forex, Stock

from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York


async def test_trades_match_the_one_second_bars(ib: ib_async.IB) -> None:
    ticks = await ib.reqHistoricalTicksAsync(AAPL, START, "", 1000, "TRADES", True)
    assert len(ticks) >= 1000
    assert all(isinstance(t, ib_async.HistoricalTickLast) for t in ticks)
    assert ticks[0].time >= START
    last = ticks[-1].time + timedelta(seconds=1)
    span = int((last - ticks[0].time).total_seconds())
    bars = await ib.reqHistoricalDataAsync(
        AAPL, last, f"{max(span, 30)} S", "1 secs", "TRADES", True, formatDate=2
    )
    by_time = {b.date: b for b in bars}
    seconds: dict[datetime, list[ib_async.HistoricalTickLast]] = defaultdict(list)
    for t in ticks:
        seconds[t.time].append(t)
    for when, group in seconds.items():
        bar = by_time[when]
        prices = [t.price for t in group]
        assert (prices[0], max(prices), min(prices), prices[-1]) == (
            bar.open,
            bar.high,
            bar.low,
            bar.close,
        )
        assert sum(t.size for t in group) == bar.volume


async def test_paging_beyond_a_thousand_is_contiguous(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    pages: list[list[ib_async.HistoricalTickBidAsk]] = []
    start: datetime = START
    for _ in range(3):
        page = await ib.reqHistoricalTicksAsync(AAPL, start, "", 1000, "BID_ASK", True)
        assert len(page) >= 1000
        pages.append(page)
        start = page[-1].time + timedelta(seconds=1)
    assert errors == []
    for before, after in itertools.pairwise(pages):
        assert before[-1].time < after[0].time
    assert all(t.priceBid < t.priceAsk for page in pages for t in page)


async def test_count_is_capped_at_a_thousand(ib: ib_async.IB) -> None:
    ticks = await ib.reqHistoricalTicksAsync(AAPL, START, "", 5000, "MIDPOINT", True)
    last = ticks[-1].time
    assert len([t for t in ticks if t.time < last]) < 1000 <= len(ticks)


async def test_an_end_time_gives_the_ticks_before_it(ib: ib_async.IB) -> None:
    ticks = await ib.reqHistoricalTicksAsync(AAPL, "", START, 200, "TRADES", True)
    assert len(ticks) >= 200
    assert ticks[-1].time < START
    assert [t.time for t in ticks] == sorted(t.time for t in ticks)


async def test_refusals_carry_ibs_codes(ib: ib_async.IB, ib_sim: Simulator) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    end = START + timedelta(minutes=5)
    # ib_async keeps waiting after a 321 (it counts it as a warning): watch the error instead.
    ib.reqHistoricalTicksAsync(AAPL, START, end, 100, "TRADES", True)
    await eventually(lambda: errors == [321])
    ib.reqHistoricalTicksAsync(AAPL, START, "", 100, "BID", True)
    await eventually(lambda: errors == [321, 321])
    eur = Forex("EURUSD", conId=12087792)
    assert await ib.reqHistoricalTicksAsync(eur, START, "", 100, "TRADES", True) == []
    assert errors == [321, 321, 162]
    first = await ib.reqHistoricalTicksAsync(AAPL, START, "", 100, "TRADES", True)
    assert first
    assert await ib.reqHistoricalTicksAsync(AAPL, START, "", 100, "TRADES", True) == []
    assert errors[-1] == 162  # an identical request within 15 s (scaled by speed)
    assert ib_sim.request_count("historical_ticks") == 5
