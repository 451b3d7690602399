"""Bar sizes, durations, IB's step table and download planning (pure; no loop, no socket)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

import ibflow
from ibflow._periods import (
    BarSize,
    Duration,
    WhatToShow,
    bar_seconds,
    check_request,
    format_end,
    grid_floor,
    max_duration,
    parse_duration,
    parse_period,
    parse_what,
    plan_chunks,
    touches_only,
)
from ibflow._schedule import idle_weekdays

from .helpers import AAPL, ET

SHORT = {
    "1s": "1 secs",
    "5s": "5 secs",
    "10s": "10 secs",
    "15s": "15 secs",
    "30s": "30 secs",
    "1m": "1 min",
    "2m": "2 mins",
    "3m": "3 mins",
    "5m": "5 mins",
    "10m": "10 mins",
    "15m": "15 mins",
    "20m": "20 mins",
    "30m": "30 mins",
    "1h": "1 hour",
    "2h": "2 hours",
    "3h": "3 hours",
    "4h": "4 hours",
    "8h": "8 hours",
    "1d": "1 day",
    "1w": "1 week",
    "1M": "1 month",
}


@pytest.mark.parametrize(("short", "ib"), SHORT.items())
def test_short_periods_map_to_ib_spellings(short: str, ib: str) -> None:
    assert parse_period(short).value == ib
    assert parse_period(ib) is parse_period(short)
    assert parse_period(BarSize(ib)) is BarSize(ib)


def test_period_spellings_people_type() -> None:
    assert parse_period("5 MINS") is BarSize.MINS_5
    assert parse_period("1 mins") is BarSize.MIN_1  # TWS itself refuses this spelling
    assert parse_period("1 hours") is BarSize.HOUR_1
    assert parse_period("5 min") is BarSize.MINS_5
    assert parse_period("1H") is BarSize.HOUR_1
    assert parse_period("1W") is BarSize.WEEK_1
    assert parse_period(" 15m ") is BarSize.MINS_15
    # m is a minute, M a month: the one case-sensitive letter.
    assert parse_period("1m") is BarSize.MIN_1
    assert parse_period("1M") is BarSize.MONTH_1


@pytest.mark.parametrize("bad", ["7m", "90s", "1 fortnight", "", "m", 5, None, "2d"])
def test_unknown_period_lists_the_accepted_ones(bad: object) -> None:
    with pytest.raises(ibflow.InvalidRequest) as info:
        parse_period(bad)
    text = str(info.value)
    assert '"5m"' in text
    assert '"1M"' in text
    assert "5 mins" in text


def test_durations() -> None:
    assert parse_duration("1 D") == Duration(1, "D")
    assert parse_duration("2 w") == Duration(2, "W")
    assert parse_duration("1M") == Duration(1, "M")
    assert parse_duration("3600") == Duration(3600, "S")
    assert parse_duration("1 Y") == Duration(1, "Y")
    assert parse_duration(timedelta(hours=1)) == Duration(3600, "S")
    assert parse_duration(timedelta(days=3)) == Duration(3, "D")
    assert parse_duration(timedelta(weeks=2)) == Duration(2, "W")
    assert parse_duration(timedelta(days=730)) == Duration(2, "Y")
    assert str(Duration(2, "W")) == "2 W"


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("1 X", "S (seconds)"),
        ("D", "S (seconds)"),
        ("0 D", "positive"),
        ("10 S", "at least 30 S"),
        ("90000 S", "in days (D)"),
        ("400 D", "in years (Y)"),
        ("53 W", "in years (Y)"),
        ("13 M", "in years (Y)"),
        (timedelta(seconds=-5), "positive"),
        (timedelta(hours=25), "whole days"),
        (timedelta(days=400), "whole years"),
        (7, "S (seconds)"),
    ],
)
def test_bad_durations_say_what_works(bad: object, says: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=None) as info:
        parse_duration(bad)
    assert says in str(info.value)


def test_what_to_show() -> None:
    assert parse_what("trades") is WhatToShow.TRADES
    assert parse_what(WhatToShow.BID_ASK) is WhatToShow.BID_ASK
    with pytest.raises(ibflow.InvalidRequest) as info:
        parse_what("LAST")
    assert "TRADES" in str(info.value)
    assert "BID_ASK" in str(info.value)


def test_end_must_be_aware() -> None:
    assert format_end(None) == ""
    assert format_end(datetime(2024, 3, 6, 15, 0, tzinfo=ET)) == "20240306-20:00:00"
    for bad in (datetime(2024, 3, 6), "20240306", datetime(2024, 3, 6).date()):
        with pytest.raises(ibflow.InvalidRequest):
            format_end(bad)


def test_max_duration_reads_ibs_step_table() -> None:
    expected = {
        BarSize.SECS_1: "1800 S",
        BarSize.SECS_5: "3600 S",
        BarSize.SECS_10: "14400 S",
        BarSize.SECS_15: "14400 S",
        BarSize.SECS_30: "28800 S",
        BarSize.MIN_1: "1 D",
        BarSize.MINS_2: "2 D",
        BarSize.MINS_3: "1 W",
        BarSize.MINS_20: "1 W",
        BarSize.MINS_30: "1 M",
        BarSize.HOURS_8: "1 M",
    }
    for bar, duration in expected.items():
        assert str(max_duration(bar)) == duration
    assert max_duration(BarSize.DAY_1) is None


@pytest.mark.parametrize(
    ("period", "duration", "says"),
    [
        ("1s", "1 D", "at most 1800 S"),
        ("1m", "1 W", "at most 1 D"),
        ("1h", "1 Y", "at most 1 M"),
        ("1d", "60 S", "from '1 secs' to '1 min'"),
        ("1w", "1 D", "to '1 day'"),
    ],
)
def test_step_table_refusals_name_the_allowed_values(period: str, duration: str, says: str) -> None:
    with pytest.raises(ibflow.InvalidRequest) as info:
        check_request(
            AAPL, parse_period(period), parse_duration(duration), WhatToShow.TRADES, False
        )
    assert says in str(info.value)


def test_step_table_boundaries_pass() -> None:
    for bar in BarSize:
        longest = max_duration(bar)
        duration = longest or Duration(20, "Y")
        if bar_seconds(bar) <= 60 or bar_seconds(bar) >= 86400:
            check_request(AAPL, bar, duration, WhatToShow.TRADES, False)


def test_what_specific_rules() -> None:
    with pytest.raises(ibflow.InvalidRequest, match="end=None"):
        check_request(AAPL, BarSize.DAY_1, Duration(1, "Y"), WhatToShow.ADJUSTED_LAST, True)
    with pytest.raises(ibflow.InvalidRequest, match="up to '1 day'"):
        check_request(AAPL, BarSize.WEEK_1, Duration(1, "Y"), WhatToShow.ADJUSTED_LAST, False)
    with pytest.raises(ibflow.InvalidRequest, match="MIDPOINT"):
        check_request(
            ibflow.Forex("EURUSD"), BarSize.HOUR_1, Duration(1, "D"), WhatToShow.TRADES, False
        )


# -- download planning --------------------------------------------------------------------------


def _ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=ET).timestamp())  # type: ignore[misc]


NOW = _ts(2024, 12, 1)


@pytest.mark.parametrize("bar", list(BarSize))
def test_plans_cover_the_range_with_legal_requests_ending_on_the_grid(bar: BarSize) -> None:
    start, end = _ts(2024, 2, 20, 11, 7), _ts(2024, 3, 20, 13, 0)  # across the March DST change
    if bar_seconds(bar) < 60:
        start, end = _ts(2024, 3, 9, 22, 0), _ts(2024, 3, 11, 3, 0)
    chunks = plan_chunks(start, end, bar, ET, NOW)
    assert chunks
    assert chunks[0].start <= start
    assert chunks[-1].end >= end
    for a, b in itertools.pairwise(chunks):
        assert a.end == b.start  # contiguous, no overlap
    for c in chunks:
        assert c.request_end == c.end  # all in the past
        assert grid_floor(c.end, bar, ET) == c.end  # ends on the bar grid
        reach = c.duration.nominal_seconds if c.duration.unit in "SW" else None
        if reach is not None:
            assert c.end - reach <= c.start + 3600  # the window reaches the chunk's start
            assert c.duration.count >= 30 or c.duration.unit != "S"
        check_request(
            AAPL, bar, c.duration if bar_seconds(bar) < 86400 else None, WhatToShow.TRADES, False
        )


def test_a_25_hour_day_is_split_to_stay_within_86400_s() -> None:
    day = _ts(2024, 11, 3)  # US DST ends: this local day lasts 25 hours
    chunks = plan_chunks(day, _ts(2024, 11, 4), BarSize.MIN_1, ET, NOW)
    assert [c.end - c.start for c in chunks] == [45000, 45000]
    assert all(str(c.duration) == "45000 S" for c in chunks)


def test_the_chunk_reaching_now_ends_at_now() -> None:
    now = _ts(2024, 3, 6, 11, 17)
    chunks = plan_chunks(_ts(2024, 3, 5), now, BarSize.MIN_1, ET, now)
    assert chunks[-1].end == now
    assert chunks[-1].request_end is None
    weekly = plan_chunks(_ts(2024, 2, 1), now, BarSize.MINS_5, ET, now)
    assert weekly[-1].request_end is None
    assert str(weekly[-1].duration) == "1 W"


def test_bars_of_a_day_or_more_come_in_one_request_of_years() -> None:
    (chunk,) = plan_chunks(_ts(2019, 6, 3), _ts(2024, 6, 3, 12), BarSize.DAY_1, ET, NOW)
    assert chunk.end == _ts(2024, 6, 4)
    assert str(chunk.duration) == "6 Y"
    (weekly,) = plan_chunks(_ts(2023, 6, 3), _ts(2024, 6, 5), BarSize.WEEK_1, ET, NOW)
    assert datetime.fromtimestamp(weekly.end, ET).weekday() == 0  # ends on a Monday
    (monthly,) = plan_chunks(_ts(2023, 6, 3), _ts(2024, 6, 5), BarSize.MONTH_1, ET, NOW)
    assert datetime.fromtimestamp(monthly.end, ET).day == 1


def test_grid_floor() -> None:
    t = _ts(2024, 3, 6, 10, 47, 13)
    assert grid_floor(t, BarSize.MINS_15, ET) == _ts(2024, 3, 6, 10, 45)
    assert grid_floor(t, BarSize.HOURS_4, ET) == _ts(2024, 3, 6, 8, 0)
    assert grid_floor(t, BarSize.DAY_1, ET) == _ts(2024, 3, 6)
    assert grid_floor(t, BarSize.WEEK_1, ET) == _ts(2024, 3, 4)
    assert grid_floor(t, BarSize.MONTH_1, ET) == _ts(2024, 3, 1)
    assert grid_floor(int(datetime(2024, 3, 6, tzinfo=UTC).timestamp()), BarSize.DAY_1, UTC) == (
        int(datetime(2024, 3, 6, tzinfo=UTC).timestamp())
    )


# IB's schedule texts as contract details carry them (the week of Monday 2026-11-23).
STOCK_HOURS = (
    "20261123:0930-20261123:1600;20261124:0930-20261124:1600;20261125:0930-20261125:1600;"
    "20261126:CLOSED;20261127:0930-20261127:1300;20261128:CLOSED;20261129:CLOSED"
)
FUTURES_HOURS = (  # Globex: each session opens the evening before; Sunday evening included
    "20261122:1700-20261123:1600;20261123:1700-20261124:1600;20261124:1700-20261125:1600;"
    "20261125:1700-20261126:1200;20261126:1700-20261127:1215;20261128:CLOSED;"
    "20261129:1700-20261130:1600"
)
SUNDAY_TO_THURSDAY = (
    "20261122:1000-20261122:1725;20261123:0959-20261123:1725;20261126:1000-20261126:1725;"
    "20261127:CLOSED;20261128:CLOSED"
)
ALWAYS = ";".join(f"202611{d}:0000-202611{d + 1}:0000" for d in range(22, 29))
OLD_SPELLING = "20090507:0700-1830,1830-2330;20090508:0700-2330;20090509:CLOSED;20090510:CLOSED"


@pytest.mark.parametrize(
    ("schedule", "idle"),
    [
        (STOCK_HOURS, {5, 6}),
        (FUTURES_HOURS, {5}),  # the week's first session opens on Sunday evening
        (SUNDAY_TO_THURSDAY, {5}),  # Friday is closed there, but a weekday is never skipped
        (ALWAYS, set()),
        (OLD_SPELLING, {5, 6}),
        # A holiday Thursday in the listed week does not make every Thursday idle.
        ("20261126:CLOSED", set()),
        # Weekend days the listing does not show are not assumed closed.
        ("20261123:0930-20261123:1600", set()),
        ("", set()),
        (None, set()),
        ("not a schedule", set()),
        ("20261128:CLOSED;20261129:0930-banana", set()),
        ("20261132:CLOSED", set()),
    ],
)
def test_idle_weekdays_reads_ib_schedules(schedule: str | None, idle: set[int]) -> None:
    assert idle_weekdays(schedule) == idle


def test_touches_only() -> None:
    weekend = frozenset({5, 6})
    saturday = _ts(2024, 3, 9)
    monday = _ts(2024, 3, 11)
    assert touches_only(saturday, monday, weekend, ET)
    assert touches_only(saturday + 3600, saturday + 7200, weekend, ET)
    assert not touches_only(saturday - 1, monday, weekend, ET)  # a second of Friday
    assert not touches_only(saturday, monday + 1, weekend, ET)  # a second of Monday
    assert not touches_only(saturday, monday, frozenset({5}), ET)
    assert not touches_only(saturday, monday, frozenset(), ET)
    assert not touches_only(monday, monday, weekend, ET)
