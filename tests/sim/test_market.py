"""Seeded quotes, historical bars and real-time bars (ibflow.sim._market)."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ibflow.sim._history import format_bar_time
from ibflow.sim._market import Market
from ibflow.sim._model import Instrument, SimBar, SimError

ET = ZoneInfo("US/Eastern")
AAPL = Instrument(
    265598, "AAPL", "STK", "SMART", primary_exchange="NASDAQ", price=190.0, volatility=0.25
)
MSFT = Instrument(
    272093, "MSFT", "STK", "SMART", primary_exchange="NASDAQ", price=410.0, volatility=0.22
)
XYZ = Instrument(999001, "XYZ", "STK", "SMART", primary_exchange="NYSE", price=25.0, volatility=0.4)
EURUSD = Instrument(
    12087792,
    "EUR",
    "CASH",
    "IDEALPRO",
    local_symbol="EUR.USD",
    min_tick=5e-05,
    rth=("1715", "1700"),
    eth=("1715", "1700"),
    price=1.085,
    volatility=0.07,
)
ES = Instrument(
    551601561,
    "ES",
    "FUT",
    "CME",
    last_trade_date="20240621",
    multiplier="50",
    min_tick=0.25,
    time_zone="US/Central",
    rth=("0830", "1500"),
    eth=("1700", "1600"),
    price=5400.0,
    volatility=0.18,
)
SPX = Instrument(416904, "SPX", "IND", "CBOE", price=5400.0, volatility=0.18)
UNIVERSE = [AAPL, MSFT, XYZ, EURUSD, ES, SPX]

WEDNESDAY = datetime(2024, 3, 6, 18, 0, tzinfo=UTC).timestamp()  # 13:00 in New York
SUNDAY = datetime(2024, 3, 10, 15, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def market(
    seed: int = 7,
    now: float = WEDNESDAY,
    *,
    tick_interval: float = 0.25,
    live_from_history: bool = False,
) -> Market:
    return Market(
        UNIVERSE,
        seed=seed,
        clock=Clock(now),
        tick_interval=tick_interval,
        live_from_history=live_from_history,
    )


def bars(
    m: Market,
    inst: Instrument,
    duration: str,
    bar_size: str,
    what: str = "TRADES",
    *,
    use_rth: bool = True,
    end: datetime | None = None,
) -> list[SimBar]:
    return m.history(
        inst, end=end, duration=duration, bar_size=bar_size, what=what, use_rth=use_rth
    )


def on_grid(price: float, grid: float) -> bool:
    return abs(round(price / grid) * grid - price) < 1e-9


def assert_valid(series: list[SimBar], grid: float | None = None) -> None:
    assert series
    for b in series:
        assert b.high >= max(b.open, b.close), b
        assert b.low <= min(b.open, b.close), b
        assert b.low > 0, b
        if grid is not None:
            assert all(on_grid(p, grid) for p in (b.open, b.high, b.low, b.close)), b
    times = [b.time for b in series]
    assert times == sorted(set(times))


# -- history: determinism ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "bar_size", "what"),
    [
        ("1 D", "1 min", "TRADES"),
        ("2 D", "1 hour", "BID_ASK"),
        ("1 Y", "1 day", "MIDPOINT"),
        ("1800 S", "1 secs", "ASK"),
    ],
)
def test_same_seed_same_bars_across_instances(duration: str, bar_size: str, what: str) -> None:
    first = bars(market(), AAPL, duration, bar_size, what)
    assert first == bars(market(), AAPL, duration, bar_size, what)
    assert first != bars(market(seed=8), AAPL, duration, bar_size, what)


def test_bars_depend_on_time_not_on_the_request() -> None:
    m = market()
    end = datetime(2024, 3, 5, 16, 0, tzinfo=ET)
    two_days = bars(m, AAPL, "2 D", "5 mins", end=end)
    earlier = bars(market(), AAPL, "1 D", "5 mins", end=end - timedelta(days=1))
    shifted = bars(m, AAPL, "3600 S", "5 mins", end=end - timedelta(hours=2))
    by_time = {b.time: b for b in two_days}
    assert earlier
    assert all(by_time[b.time] == b for b in earlier)
    assert shifted
    assert all(by_time[b.time] == b for b in shifted)
    # Other instruments have their own paths.
    assert [b.close for b in bars(m, MSFT, "1 D", "5 mins", end=end)] != [
        b.close for b in two_days[-78:]
    ]


def test_opens_and_closes_agree_across_bar_sizes() -> None:
    m = market()
    end = datetime(2024, 3, 5, 16, 0, tzinfo=ET)
    ones = bars(m, AAPL, "1 D", "1 min", end=end)
    fives = bars(m, AAPL, "1 D", "5 mins", end=end)
    [daily] = bars(m, AAPL, "1 D", "1 day", end=end)
    assert len(ones) == 390
    assert len(fives) == 78
    for i, five in enumerate(fives):
        group = ones[5 * i : 5 * i + 5]
        assert five.time == group[0].time
        assert five.open == group[0].open
        assert five.close == group[-1].close
    assert daily.open == ones[0].open
    assert daily.close == ones[-1].close
    # Highs and lows are sampled per bar: they agree closely, not exactly.
    slack = 0.005 * daily.close
    assert daily.high >= max(b.high for b in ones) - slack
    assert daily.low <= min(b.low for b in ones) + slack


# -- history: validity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bar_size", ["5 secs", "1 min", "15 mins", "1 hour", "1 day", "1 week", "1 month"]
)
@pytest.mark.parametrize("what", ["TRADES", "BID", "ASK", "MIDPOINT"])
def test_ohlc_invariants_and_min_tick(bar_size: str, what: str) -> None:
    duration = {"5 secs": "3600 S", "1 min": "1 D", "15 mins": "1 W", "1 hour": "1 M"}.get(
        bar_size, "1 Y"
    )
    m = market()
    grid = AAPL.min_tick / 2 if what == "MIDPOINT" else AAPL.min_tick
    assert_valid(bars(m, AAPL, duration, bar_size, what), grid)
    assert_valid(bars(m, XYZ, duration, bar_size, what), grid)


def test_forex_and_futures_prices_sit_on_their_ticks() -> None:
    m = market()
    assert_valid(bars(m, EURUSD, "1 W", "1 hour", "BID", use_rth=False), 5e-05)
    assert_valid(bars(m, EURUSD, "1 W", "1 hour", "MIDPOINT", use_rth=False), 2.5e-05)
    assert_valid(bars(m, ES, "2 D", "30 mins", "TRADES", use_rth=False), 0.25)


def test_volume_is_trades_only() -> None:
    m = market()
    trades = bars(m, AAPL, "1 D", "5 mins", "TRADES")
    assert all(b.volume > 0 and b.volume % 100 == 0 and b.count > 0 for b in trades)
    assert all(b.low <= b.wap <= b.high for b in trades)
    for what in ("MIDPOINT", "BID", "ASK", "BID_ASK"):
        assert {(b.volume, b.wap, b.count) for b in bars(m, AAPL, "1 D", "5 mins", what)} == {
            (-1.0, -1.0, -1)
        }
    assert sum(b.volume for b in bars(m, AAPL, "1 M", "1 week")) == sum(
        b.volume for b in bars(m, AAPL, "1 M", "1 day")
    )


def test_bid_below_ask_and_bid_ask_bars() -> None:
    m = market()
    bid = bars(m, AAPL, "1 D", "15 mins", "BID")
    ask = bars(m, AAPL, "1 D", "15 mins", "ASK")
    mid = bars(m, AAPL, "1 D", "15 mins", "MIDPOINT")
    both = bars(m, AAPL, "1 D", "15 mins", "BID_ASK")
    for b, a, md, ba in zip(bid, ask, mid, both, strict=True):
        assert b.time == a.time == md.time == ba.time
        assert b.open < a.open
        assert b.close < a.close
        assert b.low < a.low
        assert b.high < a.high
        assert b.open <= md.open <= a.open
        # BID_ASK: time-average bid, highest ask, lowest bid, time-average ask.
        assert ba.open < ba.close <= ba.high
        assert ba.low <= ba.open
        assert ba.high == a.high
        assert ba.low == b.low


def test_volatility_series_are_plausible() -> None:
    hv = bars(market(), AAPL, "1 Y", "1 day", "HISTORICAL_VOLATILITY")
    assert_valid(hv)
    assert all(0.02 < b.close < 2.0 for b in hv)


def test_price_level_stays_near_the_scenario_price_for_decades() -> None:
    m = market()
    end = datetime(1995, 6, 1, tzinfo=UTC)
    old = bars(m, AAPL, "10 Y", "1 month", end=end)
    recent = bars(m, AAPL, "1 Y", "1 month")
    for b in old + recent:
        assert 0.4 * AAPL.price < b.close < 2.5 * AAPL.price


# -- history: sessions -------------------------------------------------------------------------


def local(b: SimBar, tz: ZoneInfo = ET) -> datetime:
    return datetime.fromtimestamp(b.time, tz)


def test_rth_bars_stay_inside_regular_hours() -> None:
    m = market()
    rth = bars(m, AAPL, "5 D", "1 min", use_rth=True)
    assert {local(b).strftime("%H:%M") for b in rth} >= {"09:30", "15:59"}
    assert all("09:30" <= local(b).strftime("%H:%M") <= "15:59" for b in rth)
    eth = bars(m, AAPL, "1 D", "1 hour", use_rth=False)
    assert [local(b).strftime("%H:%M") for b in eth][:3] == ["04:00", "05:00", "06:00"]


def test_hourly_rth_bars_start_at_the_open_then_on_the_hour() -> None:
    end = datetime(2024, 3, 5, 17, 0, tzinfo=ET)
    hours = [local(b).strftime("%H:%M") for b in bars(market(), AAPL, "1 D", "1 hour", end=end)]
    assert hours == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]


def test_durations_in_days_count_sessions() -> None:
    m = market()
    daily = bars(m, AAPL, "2 D", "1 day")
    assert [local(b).date() for b in daily] == [date(2024, 3, 5), date(2024, 3, 6)]
    five = bars(m, AAPL, "5 D", "1 hour")
    assert len({local(b).date() for b in five}) == 5


def test_no_weekend_bars_and_daily_bars_dated_by_session() -> None:
    daily = bars(market(), AAPL, "1 Y", "1 day")
    assert all(local(b).weekday() < 5 for b in daily)
    assert all(local(b).strftime("%H:%M") == "00:00" for b in daily)
    assert 250 <= len(daily) <= 262
    assert format_bar_time(daily[-1], "1 day", 1, "US/Eastern") == "20240306"


def test_sunday_requests_see_fridays_session_or_nothing() -> None:
    m = market(now=SUNDAY)
    last_day = bars(m, AAPL, "1 D", "30 mins")
    assert {local(b).date() for b in last_day} == {date(2024, 3, 8)}
    with pytest.raises(SimError) as info:
        bars(m, AAPL, "3600 S", "1 min")
    assert info.value.code == 162
    assert info.value.text.endswith("HMDS query returned no data: AAPL@BEST Last")


def test_forex_trades_sunday_evening_to_friday_afternoon() -> None:
    fx = bars(market(now=SUNDAY + 2 * 86400), EURUSD, "1 W", "1 hour", "MIDPOINT")
    times = [local(b) for b in fx]
    assert all(not (t.weekday() == 4 and t.hour >= 17) and t.weekday() != 5 for t in times)
    sunday = [t for t in times if t.weekday() == 6]
    assert sunday
    assert min(sunday).strftime("%H:%M") == "17:15"
    assert not any(t.hour == 17 and t.minute == 0 for t in times)  # the daily 17:00 break
    daily = bars(market(now=SUNDAY + 2 * 86400), EURUSD, "1 W", "1 day", "MIDPOINT")
    # The session that opens Sunday evening is Monday's.
    assert [local(b).strftime("%a") for b in daily][-2:] == ["Mon", "Tue"]


def test_futures_overnight_session() -> None:
    es = bars(market(), ES, "1 D", "1 hour", use_rth=False)
    ct = ZoneInfo("US/Central")
    assert datetime.fromtimestamp(es[0].time, ct).strftime("%a %H:%M") == "Tue 17:00"


def test_end_bounds_the_bars_and_the_future_is_cut_at_now() -> None:
    m = market(now=WEDNESDAY + 600)  # 13:10 in New York
    end = datetime(2024, 3, 5, 12, 7, 30, tzinfo=ET)
    series = bars(m, AAPL, "1 D", "5 mins", end=end)
    assert local(series[-1]) == datetime(2024, 3, 5, 12, 5, tzinfo=ET)
    future = bars(m, AAPL, "1 D", "1 hour", end=datetime(2030, 1, 1, tzinfo=UTC))
    assert future == bars(m, AAPL, "1 D", "1 hour")
    assert local(future[-1]).strftime("%H:%M") == "13:00"  # the hour in progress at "now"


def test_weekly_and_monthly_bars_aggregate_daily_bars() -> None:
    m = market()
    daily = bars(m, AAPL, "1 Y", "1 day")
    weekly = bars(m, AAPL, "1 Y", "1 week")
    monthly = bars(m, AAPL, "1 Y", "1 month")
    assert 52 <= len(weekly) <= 54
    assert 12 <= len(monthly) <= 13
    week = [b for b in daily if local(b).isocalendar()[:2] == local(weekly[5]).isocalendar()[:2]]
    assert weekly[5].time == week[0].time
    assert weekly[5].open == week[0].open
    assert weekly[5].close == week[-1].close
    assert weekly[5].high == max(b.high for b in week)
    assert weekly[5].low == min(b.low for b in week)
    assert all(local(b).day <= 7 for b in monthly[1:])


def test_head_timestamps() -> None:
    m = market()
    assert m.head_timestamp(AAPL, what="TRADES", use_rth=True) == datetime(
        1980, 12, 12, 14, 30, tzinfo=UTC
    )
    head = m.head_timestamp(XYZ, what="TRADES", use_rth=True)
    assert head == market(seed=99).head_timestamp(XYZ, what="TRADES", use_rth=True)
    assert 1985 <= head.year <= 2013
    assert head.weekday() < 5
    assert m.head_timestamp(ES, what="TRADES", use_rth=True).date() == date(2022, 6, 22)
    assert m.head_timestamp(EURUSD, what="MIDPOINT", use_rth=False).year >= 2005
    with pytest.raises(SimError) as info:
        m.head_timestamp(EURUSD, what="TRADES", use_rth=True)
    assert info.value.code == 162


def test_no_bars_before_the_head_timestamp() -> None:
    m = market()
    head = m.head_timestamp(XYZ, what="TRADES", use_rth=True)
    with pytest.raises(SimError) as info:
        bars(m, XYZ, "1 M", "1 day", end=head - timedelta(days=40))
    assert info.value.code == 162
    first = bars(m, XYZ, "1 M", "1 day", end=head + timedelta(days=10))
    assert first[0].time >= head.timestamp() - 86400


@pytest.mark.parametrize(
    ("inst", "duration", "bar_size", "what", "code"),
    [
        (EURUSD, "1 D", "1 hour", "TRADES", 162),
        (SPX, "1 D", "1 hour", "BID", 162),
        (AAPL, "1 D", "7 mins", "TRADES", 321),
        (AAPL, "1 X", "1 min", "TRADES", 321),
        (AAPL, "1 D", "1 min", "TRADE", 321),
        (AAPL, "1 Y", "1 secs", "TRADES", 162),
    ],
)
def test_invalid_requests(
    inst: Instrument, duration: str, bar_size: str, what: str, code: int
) -> None:
    with pytest.raises(SimError) as info:
        bars(market(), inst, duration, bar_size, what)
    assert info.value.code == code


def test_index_trades_have_no_volume() -> None:
    spx = bars(market(), SPX, "1 D", "1 hour")
    assert_valid(spx, 0.01)
    assert all(b.volume == 0 for b in spx)


# -- live quotes -------------------------------------------------------------------------------


def test_first_quote_starts_at_the_scenario_price() -> None:
    q = market().quote(AAPL.con_id)
    assert q.last == 190.0
    assert q.open == 190.0
    assert q.bid < q.ask
    assert q.bid <= q.last <= q.ask
    assert q.close > 0
    assert q.high == q.low == 190.0
    assert q.time == WEDNESDAY


def test_unknown_con_id_is_error_200() -> None:
    with pytest.raises(SimError) as info:
        market().step(1)
    assert info.value.code == 200


def walk(m: Market, con_id: int, n: int) -> list[tuple[float, ...]]:
    out: list[tuple[float, ...]] = []
    for _ in range(n):
        q = m.step(con_id)
        out.append((q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.last_size, q.volume))
    return out


def test_steps_are_deterministic_per_seed() -> None:
    assert walk(market(), AAPL.con_id, 500) == walk(market(), AAPL.con_id, 500)
    assert walk(market(), AAPL.con_id, 500) != walk(market(seed=8), AAPL.con_id, 500)
    # Instruments do not disturb each other's paths.
    m = market()
    walk(m, MSFT.con_id, 50)
    assert walk(m, AAPL.con_id, 500) == walk(market(), AAPL.con_id, 500)


def test_stock_quotes_keep_their_invariants() -> None:
    m = market()
    prev_volume = 0.0
    lasts = set()
    for _ in range(5000):
        q = m.step(AAPL.con_id)
        assert q.bid < q.ask
        assert on_grid(q.bid, 0.01)
        assert on_grid(q.ask, 0.01)
        assert on_grid(q.last, 0.01)
        assert q.bid_size % 100 == 0
        assert q.ask_size % 100 == 0
        assert q.bid_size > 0
        assert q.low <= q.last <= q.high
        assert q.volume >= prev_volume
        prev_volume = q.volume
        lasts.add(q.last)
    assert len(lasts) > 20
    assert m.quote(AAPL.con_id).volume > 0


def test_forex_quotes_are_large_and_print_no_trades() -> None:
    m = market()
    for _ in range(1000):
        q = m.step(EURUSD.con_id)
        assert q.bid < q.ask
        assert on_grid(q.bid, 5e-05)
        assert on_grid(q.ask, 5e-05)
        assert q.bid_size % 500_000 == 0
        assert q.bid_size >= 500_000
    assert q.volume == 0


def test_live_volatility_is_scaled_to_the_tick_interval() -> None:
    m = market(tick_interval=1.0)
    mids = []
    for _ in range(4000):
        q = m.step(XYZ.con_id)
        mids.append((q.bid + q.ask) / 2)
    returns = [math.log(b / a) for a, b in zip(mids[::50], mids[50::50], strict=False)]
    expected = XYZ.volatility * math.sqrt(50 / (252 * 6.5 * 3600))
    assert 0.6 * expected < statistics.pstdev(returns) < 1.5 * expected


def test_push_overrides_and_steps_continue_from_there() -> None:
    m = market()
    q = m.push(AAPL.con_id, bid=200.00, ask=200.02, last=200.01, volume=5000.0)
    assert (q.bid, q.ask, q.last, q.volume) == (200.00, 200.02, 200.01, 5000.0)
    assert q.high >= 200.01
    for _ in range(20):
        q = m.step(AAPL.con_id)
    assert 198 < q.bid < 202


def test_push_last_only_recentres_the_book() -> None:
    m = market()
    q = m.push(AAPL.con_id, last=250.37)
    assert q.bid <= 250.37 <= q.ask
    assert q.bid < q.ask
    assert on_grid(q.bid, 0.01)
    assert q.ask - q.bid < 0.06


def test_push_one_side_keeps_the_book_uncrossed() -> None:
    m = market()
    q = m.push(AAPL.con_id, bid=300.0)
    assert q.bid == 300.0
    assert q.ask > 300.0
    q = m.push(AAPL.con_id, ask=100.0)
    assert q.ask == 100.0
    assert q.bid < 100.0


def test_halted_instruments_do_not_move() -> None:
    m = market()
    before = replace(m.push(AAPL.con_id, halted=True))
    for _ in range(50):
        m.step(AAPL.con_id)
    assert m.quote(AAPL.con_id) == before
    m.push(AAPL.con_id, halted=False)
    walk(m, AAPL.con_id, 50)
    assert m.quote(AAPL.con_id) != before


def test_live_quotes_can_start_on_the_historical_path() -> None:
    m = market(live_from_history=True)
    [last_bar] = bars(m, AAPL, "60 S", "1 min")
    assert abs(m.quote(AAPL.con_id).last - last_bar.close) < 0.05
    assert market().quote(AAPL.con_id).last == 190.0


# -- real-time and keepUpToDate bars -----------------------------------------------------------


def test_realtime_bars_aggregate_the_steps_since_the_last_bar() -> None:
    m = market()
    first = m.realtime_bar(AAPL, 1000, "TRADES")
    assert first.open == first.high == first.low == first.close
    assert first.volume == 0
    volume_before = m.quote(AAPL.con_id).volume
    lasts = [m.step(AAPL.con_id).last for _ in range(40)]
    bar = m.realtime_bar(AAPL, 1005, "TRADES")
    assert bar.time == 1005
    assert bar.volume == m.quote(AAPL.con_id).volume - volume_before > 0
    assert bar.high == max(lasts) or bar.high <= max(lasts)
    assert bar.low >= min(lasts)
    assert bar.close == lasts[-1]
    assert bar.low <= bar.wap <= bar.high
    assert bar.count > 0
    # Same start, same bar for everyone; other series come from the same steps.
    assert m.realtime_bar(AAPL, 1005, "TRADES") == bar
    mid = m.realtime_bar(AAPL, 1005, "MIDPOINT")
    assert (mid.volume, mid.wap, mid.count) == (-1.0, -1.0, -1)
    assert mid.low <= mid.close <= mid.high
    with pytest.raises(SimError):
        m.realtime_bar(AAPL, 1010, "BID_ASK")


def test_forming_bar_follows_the_steps_and_rolls_over() -> None:
    clock = Clock(WEDNESDAY + 12)
    m = Market(UNIVERSE, seed=7, clock=clock)
    bar = m.forming_bar(AAPL, 60, clock(), "TRADES")
    assert bar.time == int(WEDNESDAY)
    assert bar.open == bar.close
    lasts = [m.step(AAPL.con_id).last for _ in range(30)]
    bar = m.forming_bar(AAPL, 60, clock(), "TRADES")
    assert bar.close == lasts[-1]
    assert bar.high >= max(lasts)
    assert bar.low <= min(lasts)
    assert bar.volume > 0
    clock.t += 60
    nxt = m.forming_bar(AAPL, 60, clock(), "TRADES")
    assert nxt.time == bar.time + 60
    assert nxt.volume == 0
    assert nxt.open == lasts[-1]


def test_forming_daily_bar_carries_the_session() -> None:
    m = market()
    walk(m, AAPL.con_id, 100)
    q = m.quote(AAPL.con_id)
    bar = m.forming_bar(AAPL, 86400, WEDNESDAY, "TRADES")
    assert format_bar_time(bar, "1 day", 1, "US/Eastern") == "20240306"
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        q.open,
        q.high,
        q.low,
        q.last,
        q.volume,
    )
