"""Market data, tick-by-tick, real-time bars and history, driven by real ib_async."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import ib_async
import pytest
from ib_async import Forex, Stock

from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def test_streaming_quotes_follow_push_quote(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ticker = ib.reqMktData(AAPL, "", False, False)
    await eventually(lambda: ticker.bid == ticker.bid and ticker.last == ticker.last)
    assert ticker.marketDataType == 1
    assert ticker.bid < ticker.ask
    assert ticker.volume >= 0
    assert ticker.close > 0
    ib_sim.push_quote("AAPL", bid=190.10, ask=190.12, last=190.11)
    await eventually(
        lambda: ticker.bid == 190.10 and ticker.ask == 190.12 and ticker.last == 190.11
    )
    assert ib_sim.subscriptions()["mkt_data"] == 1
    ib.cancelMktData(AAPL)
    await eventually(lambda: "mkt_data" not in ib_sim.subscriptions())


async def test_prices_move_on_their_own(ib: ib_async.IB) -> None:
    ticker = ib.reqMktData(AAPL, "", False, False)
    await eventually(lambda: ticker.last == ticker.last)
    seen = {ticker.last}
    ib.pendingTickersEvent += lambda tickers: seen.add(ticker.last)
    await eventually(lambda: len(seen) >= 3, timeout=5)


async def test_snapshot_ends_with_tick_snapshot_end(ib: ib_async.IB, ib_sim: Simulator) -> None:
    [ticker] = await ib.reqTickersAsync(AAPL)
    assert ticker.bid > 0
    assert ticker.ask > 0
    assert ticker.last > 0
    assert "mkt_data" not in ib_sim.subscriptions()


async def test_delayed_market_data_uses_delayed_ticks(ib: ib_async.IB) -> None:
    ib.reqMarketDataType(3)
    ticker = ib.reqMktData(AAPL, "", False, False)
    await eventually(lambda: ticker.last == ticker.last and ticker.bid == ticker.bid)
    assert ticker.marketDataType == 3
    types = {t.tickType for t in ticker.ticks}
    assert types & {66, 67, 68}
    assert not types & {1, 2, 4}


async def test_market_data_line_limit_is_error_101(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.scenario.market_data_lines = 2
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    for con_id in (265598, 272093, 756733):
        ib.reqMktData(Stock(conId=con_id, exchange="SMART"), "", False, False)
    await eventually(lambda: 101 in errors)
    assert ib_sim.subscriptions()["mkt_data"] == 2


async def test_tick_by_tick_each_kind(ib: ib_async.IB, ib_sim: Simulator) -> None:
    contracts = await ib.qualifyContractsAsync(
        *(Stock(sym, "SMART", "USD") for sym in ("AAPL", "MSFT", "SPY", "QQQ"))
    )
    kinds = ("Last", "AllLast", "BidAsk", "MidPoint")
    # IB allows as many simultaneous tick-by-tick subscriptions as depth ones: three here.
    tickers = {
        kind: ib.reqTickByTickData(c, kind) for kind, c in zip(kinds[:3], contracts, strict=False)
    }
    await eventually(lambda: all(t.tickByTicks for t in tickers.values()), timeout=5)
    bid_ask = tickers["BidAsk"].tickByTicks[-1]
    assert bid_ask.bidPrice < bid_ask.askPrice
    assert tickers["Last"].tickByTicks[-1].price > 0
    assert ib_sim.subscriptions()["tick_by_tick"] == 3
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    refused = ib.reqTickByTickData(contracts[3], "MidPoint")
    await eventually(lambda: any(code == 10190 for _, code in errors))
    assert not refused.tickByTicks
    assert ib_sim.subscriptions()["tick_by_tick"] == 3
    ib.cancelTickByTickData(tickers["Last"].contract, "Last")
    await eventually(lambda: ib_sim.subscriptions()["tick_by_tick"] == 2)
    ib.cancelTickByTickData(contracts[3], "MidPoint")
    midpoint = ib.reqTickByTickData(contracts[3], "MidPoint")
    await eventually(lambda: bool(midpoint.tickByTicks), timeout=5)
    assert midpoint.tickByTicks[-1].midPoint > 0


async def test_tick_by_tick_holds_no_market_data_line(ib: ib_async.IB, ib_sim: Simulator) -> None:
    # IB caps tick-by-tick streams on their own (10190); the lines are for quotes and 5 s bars.
    ib_sim.scenario.market_data_lines = 1
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    aapl, msft, spy = await ib.qualifyContractsAsync(
        *(Stock(sym, "SMART", "USD") for sym in ("AAPL", "MSFT", "SPY"))
    )
    quote = ib.reqMktData(aapl, "", False, False)
    await eventually(lambda: quote.last == quote.last)
    ticks = ib.reqTickByTickData(msft, "BidAsk")
    await eventually(lambda: bool(ticks.tickByTicks), timeout=5)
    assert ib_sim.lines_in_use() == 1
    assert 101 not in errors
    ib.reqMktData(spy, "", False, False)  # the one line is the quote's
    await eventually(lambda: 101 in errors)
    held = ib_sim.subscriptions()
    assert (held["mkt_data"], held["tick_by_tick"]) == (1, 1)


async def test_real_time_bars_hold_a_market_data_line(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.scenario.market_data_lines = 1
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    quote = ib.reqMktData(AAPL, "", False, False)
    await eventually(lambda: quote.last == quote.last)
    refused = ib.reqRealTimeBars(AAPL, 5, "TRADES", False)
    await eventually(lambda: (refused.reqId, 101) in errors)
    assert "real_time_bars" not in ib_sim.subscriptions()
    ib.cancelMktData(AAPL)
    await eventually(lambda: ib_sim.lines_in_use() == 0)
    bars = ib.reqRealTimeBars(AAPL, 5, "MIDPOINT", False)
    await eventually(lambda: bool(bars), timeout=5)
    assert ib_sim.lines_in_use() == 1


async def test_real_time_bars(ib: ib_async.IB, ib_sim: Simulator) -> None:
    bars = ib.reqRealTimeBars(AAPL, 5, "TRADES", False)
    await eventually(lambda: len(bars) >= 2, timeout=5)
    bar = bars[-1]
    assert bar.time.tzinfo is not None
    assert bar.time.timestamp() % 5 == 0
    assert len({b.time for b in bars}) == len(bars)  # each bar its own 5 s, even sped up
    assert bar.low <= min(bar.open_, bar.close)
    assert bar.high >= max(bar.open_, bar.close)
    ib.cancelRealTimeBars(bars)
    await eventually(lambda: "real_time_bars" not in ib_sim.subscriptions())


@pytest.mark.parametrize("what", ["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"])
async def test_history_for_each_what_to_show(ib: ib_async.IB, what: str) -> None:
    bars = await ib.reqHistoricalDataAsync(AAPL, "", "2 D", "1 hour", what, True, 1)
    assert bars
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    assert isinstance(bars[0].date, datetime)
    assert bars[0].date.tzinfo is not None


async def test_history_daily_bars_and_epoch_format(ib: ib_async.IB) -> None:
    daily = await ib.reqHistoricalDataAsync(AAPL, "", "1 M", "1 day", "TRADES", True, 1)
    assert daily
    assert all(type(b.date).__name__ == "date" for b in daily)
    assert all(b.date.weekday() < 5 for b in daily)
    epoch = await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "5 mins", "TRADES", True, 2)
    assert epoch
    assert epoch[0].date.tzinfo is not None


async def test_history_is_deterministic_and_honours_end(ib: ib_async.IB) -> None:
    end = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
    first = await ib.reqHistoricalDataAsync(AAPL, end, "1 D", "5 mins", "MIDPOINT", True, 2)
    again = await ib.reqHistoricalDataAsync(AAPL, end, "1 D", "5 mins", "ASK", True, 2)
    third = await ib.reqHistoricalDataAsync(
        AAPL, end - timedelta(hours=2), "1 D", "5 mins", "MIDPOINT", True, 2
    )
    assert first
    assert again
    assert third
    assert first[-1].date <= end
    overlap = {b.date: b for b in first} & {b.date: b for b in third}.keys()
    assert overlap
    assert all({b.date: b for b in first}[d] == {b.date: b for b in third}[d] for d in overlap)


async def test_history_keep_up_to_date_streams_updates(ib: ib_async.IB, ib_sim: Simulator) -> None:
    bars = await ib.reqHistoricalDataAsync(
        AAPL, "", "1 D", "1 min", "TRADES", False, 1, keepUpToDate=True
    )
    updates: list[bool] = []
    bars.updateEvent += lambda _bars, has_new_bar: updates.append(has_new_bar)
    await eventually(lambda: updates, timeout=5)
    assert ib_sim.subscriptions()["historical_data"] == 1
    ib.cancelHistoricalData(bars)
    await eventually(lambda: "historical_data" not in ib_sim.subscriptions())


async def test_invalid_bar_size_is_refused(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    # TWS answers with 321, which ib_async counts as a warning, so it waits for its own timeout.
    bars = await ib.reqHistoricalDataAsync(
        AAPL, "", "1 D", "7 mins", "TRADES", True, 1, timeout=0.5
    )
    assert not bars
    assert 321 in errors


async def test_too_many_bars_is_refused(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    assert not await ib.reqHistoricalDataAsync(AAPL, "", "1 Y", "1 secs", "TRADES", True, 1)
    assert errors


async def test_forex_has_no_trades_history(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    eurusd = Forex("EURUSD")
    assert not await ib.reqHistoricalDataAsync(eurusd, "", "1 D", "1 hour", "TRADES", False, 1)
    assert errors
    mid = await ib.reqHistoricalDataAsync(eurusd, "", "1 D", "1 hour", "MIDPOINT", False, 1)
    assert mid
    assert not math.isnan(mid[0].close)


async def test_head_timestamp(ib: ib_async.IB) -> None:
    stamp = await ib.reqHeadTimeStampAsync(AAPL, "TRADES", True, 1)
    assert isinstance(stamp, datetime)
    assert stamp.year < 2020
