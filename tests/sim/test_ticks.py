"""Historical ticks are the 1-second bars taken apart: every second's ticks rebuild its bar."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from ibflow.sim import Scenario
from ibflow.sim._market import Market
from ibflow.sim._model import Instrument, SimBar
from ibflow.sim._ticks import Tick, historical_ticks

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC).timestamp()  # Tuesday 13:00 New York
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC).timestamp()


def setup(symbol: str) -> tuple[Market, Instrument]:
    sc = Scenario.default()
    inst = next(i for i in sc.instruments if i.symbol == symbol and i.sec_type != "OPT")
    return Market(sc.instruments, seed=0, clock=lambda: NOW), inst


def bars(market: Market, inst: Instrument, what: str, end: float) -> dict[int, SimBar]:
    found = market.history(
        inst,
        end=datetime.fromtimestamp(end, UTC),
        duration="1800 S",
        bar_size="1 secs",
        what=what,
        use_rth=True,
    )
    return {b.time: b for b in found}


def by_second(ticks: list[Tick]) -> dict[int, list[Tick]]:
    out: dict[int, list[Tick]] = defaultdict(list)
    for t in ticks:
        out[int(t[0])].append(t)
    return out


def ohlc(values: list[float]) -> tuple[float, float, float, float]:
    return values[0], max(values), min(values), values[-1]


@pytest.mark.parametrize("symbol", ["AAPL", "ES"])
def test_trades_rebuild_the_one_second_trades_bars(symbol: str) -> None:
    market, inst = setup(symbol)
    ticks = historical_ticks(
        market, inst, "TRADES", start=START, end=None, count=1000, use_rth=True, now=NOW, seed=0
    )
    assert len(ticks) >= 1000
    seconds = by_second(ticks)
    reference = bars(market, inst, "TRADES", max(seconds) + 1)
    for second, group in seconds.items():
        bar = reference[second]
        assert ohlc([t[1] for t in group]) == (bar.open, bar.high, bar.low, bar.close)
        assert sum(t[2] for t in group) == bar.volume
        assert len(group) >= bar.count
    spanned = [b for t, b in reference.items() if min(seconds) <= t <= max(seconds)]
    assert all(b.time in seconds for b in spanned if b.volume > 0)


def test_bid_ask_rebuild_the_bid_and_ask_bars_and_never_cross() -> None:
    market, inst = setup("MSFT")
    ticks = historical_ticks(
        market, inst, "BID_ASK", start=START, end=None, count=600, use_rth=True, now=NOW, seed=0
    )
    seconds = by_second(ticks)
    end = max(seconds) + 1
    bid_bars, ask_bars = bars(market, inst, "BID", end), bars(market, inst, "ASK", end)
    for second, group in seconds.items():
        assert all(t[1] < t[2] for t in group)
        b, a = bid_bars[second], ask_bars[second]
        assert ohlc([t[1] for t in group]) == (b.open, b.high, b.low, b.close)
        assert ohlc([t[2] for t in group]) == (a.open, a.high, a.low, a.close)


def test_midpoints_rebuild_the_midpoint_bars() -> None:
    market, inst = setup("EUR")
    ticks = historical_ticks(
        market, inst, "MIDPOINT", start=START, end=None, count=500, use_rth=True, now=NOW, seed=0
    )
    seconds = by_second(ticks)
    reference = bars(market, inst, "MIDPOINT", max(seconds) + 1)
    for second, group in seconds.items():
        bar = reference[second]
        assert ohlc([t[1] for t in group]) == (bar.open, bar.high, bar.low, bar.close)


def test_counting_stops_at_a_whole_second() -> None:
    market, inst = setup("AAPL")
    ticks = historical_ticks(
        market, inst, "TRADES", start=START, end=None, count=1000, use_rth=True, now=NOW, seed=0
    )
    last = int(ticks[-1][0])
    assert len([t for t in ticks if t[0] < last]) < 1000
    assert [t[0] for t in ticks] == sorted(t[0] for t in ticks)
    assert ticks[0][0] >= START


def test_an_end_returns_the_ticks_before_it_oldest_first() -> None:
    market, inst = setup("AAPL")
    ticks = historical_ticks(
        market, inst, "TRADES", start=None, end=START, count=1000, use_rth=True, now=NOW, seed=0
    )
    times = [t[0] for t in ticks]
    assert times == sorted(times)
    assert times[-1] < START
    assert len(ticks) >= 1000


def test_a_weekend_start_skips_to_the_next_session() -> None:
    market, inst = setup("AAPL")
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()
    ticks = historical_ticks(
        market, inst, "TRADES", start=saturday, end=None, count=10, use_rth=True, now=NOW, seed=0
    )
    monday_open = datetime(2026, 11, 30, 14, 30, tzinfo=UTC).timestamp()
    assert ticks[0][0] == monday_open


def test_nothing_comes_from_the_future() -> None:
    market, inst = setup("AAPL")
    ticks = historical_ticks(
        market, inst, "TRADES", start=NOW - 5, end=None, count=1000, use_rth=True, now=NOW, seed=0
    )
    assert ticks
    assert all(t[0] < NOW for t in ticks)
    later = historical_ticks(
        market, inst, "TRADES", start=NOW + 60, end=None, count=10, use_rth=True, now=NOW, seed=0
    )
    assert later == []


def test_an_index_prints_its_values_without_sizes() -> None:
    market, inst = setup("SPX")
    ticks = historical_ticks(
        market, inst, "TRADES", start=START, end=None, count=100, use_rth=True, now=NOW, seed=0
    )
    assert len(ticks) >= 100
    assert all(t[2] == 0.0 for t in ticks)
    seconds = by_second(ticks)
    reference = bars(market, inst, "TRADES", max(seconds) + 1)
    for second, group in seconds.items():
        bar = reference[second]
        assert ohlc([t[1] for t in group]) == (bar.open, bar.high, bar.low, bar.close)


def test_options_trading_less_than_once_a_second_have_no_trade_ticks() -> None:
    sc = Scenario.default()
    option = next(i for i in sc.instruments if i.sec_type == "OPT")
    market = Market(sc.instruments, seed=0, clock=lambda: NOW)
    found = historical_ticks(
        market, option, "TRADES", start=None, end=NOW, count=100, use_rth=True, now=NOW, seed=0
    )
    assert found == []
    quotes = historical_ticks(
        market, option, "BID_ASK", start=None, end=NOW, count=100, use_rth=True, now=NOW, seed=0
    )
    assert len(quotes) >= 100
