"""reqHistoricalData parsing, validation and date formats (ibflow.sim._history)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async import util

from ibflow.sim._history import (
    BAR_SIZES,
    DAY,
    MONTH,
    WEEK,
    Duration,
    HistRequest,
    check_available,
    check_combination,
    format_bar_time,
    format_head_timestamp,
    format_range,
    historical_request,
    parse_bar_size,
    parse_duration,
    parse_end_datetime,
    parse_what,
    query_cancelled_text,
    window_start,
)
from ibflow.sim._model import Instrument, SimBar, SimError

ET = ZoneInfo("US/Eastern")
AAPL = Instrument(265598, "AAPL", "STK", "SMART", primary_exchange="NASDAQ")
EURUSD = Instrument(12087792, "EUR", "CASH", "IDEALPRO", local_symbol="EUR.USD", min_tick=5e-05)
SPX = Instrument(416904, "SPX", "IND", "CBOE")
NOW = datetime(2024, 3, 6, 18, 0, tzinfo=UTC).timestamp()  # a Wednesday, 13:00 in New York


def refused(code: int, fn: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """Call ``fn`` expecting SimError ``code``; return its text."""
    with pytest.raises(SimError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value.text
    return info.value.text


# -- bar sizes ---------------------------------------------------------------------------------


def test_every_ib_bar_size_parses_to_its_length() -> None:
    assert parse_bar_size("1 secs") == 1
    assert parse_bar_size("30 secs") == 30
    assert parse_bar_size("1 min") == 60
    assert parse_bar_size("20 mins") == 1200
    assert parse_bar_size("8 hours") == 8 * 3600
    assert parse_bar_size("1 day") == DAY
    assert parse_bar_size("1 week") == WEEK
    assert parse_bar_size("1 month") == MONTH
    assert len(BAR_SIZES) == 21
    assert all(parse_bar_size(name) == seconds for name, seconds in BAR_SIZES.items())


def test_bar_size_is_case_insensitive_and_takes_tws_short_forms() -> None:
    assert parse_bar_size("1 MIN") == 60
    assert parse_bar_size(" 5 Mins ") == 300
    assert parse_bar_size("1W") == WEEK
    assert parse_bar_size("1M") == MONTH


@pytest.mark.parametrize("bad", ["7 mins", "1 sec", "1 mins", "1 minute", "", "1 hours"])
def test_unknown_bar_size_is_321_listing_the_legal_ones(bad: str) -> None:
    text = refused(321, parse_bar_size, bad)
    assert text.startswith("Error validating request.-'b")
    assert "Historical data bar size setting is invalid. Legal ones are: 1 secs, 5 secs" in text
    assert text.endswith("1 day, 1W, 1M")


# -- durations ---------------------------------------------------------------------------------


def test_durations_parse_with_their_unit() -> None:
    assert parse_duration("60 S") == Duration(60, "S")
    assert parse_duration("3600") == Duration(3600, "S")  # a bare number means seconds
    assert parse_duration("2 d") == Duration(2, "D")
    assert parse_duration("1 W") == Duration(1, "W")
    assert parse_duration("3 M") == Duration(3, "M")
    assert parse_duration("10 Y") == Duration(10, "Y")
    assert str(parse_duration("2 d")) == "2 D"


def test_duration_limits_are_inclusive() -> None:
    for ok in ("30 S", "86400 S", "365 D", "52 W", "12 M"):
        parse_duration(ok)


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        ("", "Historical data request duration not specified."),
        ("1D", "historical data request duration format is integer{SPACE}unit (S|D|W|M|Y)."),
        ("1 day", "duration format is integer{SPACE}unit"),
        ("1 X", "duration format is integer{SPACE}unit"),
        ("-1 D", "duration format is integer{SPACE}unit"),
        ("0 D", "Historical data requested duration is invalid."),
        ("29 S", "Historical data requested duration is invalid."),
        ("86401 S", "Historical data request for greater than 86400 seconds rejected."),
        ("366 D", "durations longer than 365 days must be made in years."),
        ("53 W", "durations longer than 52 weeks must be made in years."),
        ("13 M", "durations longer than 12 months must be made in years."),
    ],
)
def test_bad_durations_are_321_with_tws_text(bad: str, cause: str) -> None:
    text = refused(321, parse_duration, bad)
    assert text.startswith("Error validating request.-'b")
    assert " : cause - " in text
    assert cause in text


def test_window_start_counts_calendar_units_back() -> None:
    end = datetime(2024, 3, 31, 16, 0, tzinfo=ET)
    assert window_start(Duration(60, "S"), end) == end - timedelta(seconds=60)
    assert window_start(Duration(2, "W"), end) == end - timedelta(weeks=2)
    assert window_start(Duration(1, "M"), end) == datetime(2024, 2, 29, 16, 0, tzinfo=ET)
    assert window_start(Duration(1, "Y"), end) == datetime(2023, 3, 31, 16, 0, tzinfo=ET)


# -- whatToShow and availability ---------------------------------------------------------------


def test_what_to_show_is_normalised_and_unknown_values_are_321() -> None:
    assert parse_what("bid_ask") == "BID_ASK"
    assert parse_what("Trades") == "TRADES"
    assert refused(321, parse_what, "TRADE").endswith("What to show value of TRADE rejected.")


def test_forex_has_no_trades_and_indices_no_quotes() -> None:
    for what in ("MIDPOINT", "BID", "ASK", "BID_ASK"):
        check_available(EURUSD, what, 3600)
    text = refused(162, check_available, EURUSD, "TRADES", 3600)
    assert text == (
        "Historical Market Data Service error message:"
        "No historical market data for EUR/CASH@FXSUBPIP Last 3600"
    )
    assert refused(162, check_available, EURUSD, "TRADES", DAY).endswith("Last 1d")
    assert refused(162, check_available, SPX, "BID", 60).endswith("SPX/IND@CBOE Bid 60")
    check_available(SPX, "TRADES", 60)


def test_stocks_have_every_simulated_series_but_not_the_exotic_ones() -> None:
    for what in ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"):
        check_available(AAPL, what, 60)
    assert "AAPL/STK@BEST" in refused(162, check_available, AAPL, "YIELD_BID", 60)


# -- step sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "bar"),
    [
        ("1800 S", "1 secs"),
        ("3600 S", "5 secs"),
        ("14400 S", "10 secs"),
        ("14400 S", "15 secs"),
        ("28800 S", "30 secs"),
        ("1 D", "1 min"),
        ("5 D", "1 min"),  # reported to work on real TWS
        ("1 W", "1 min"),
        ("1 M", "5 mins"),
        ("1 Y", "1 hour"),
        ("10 Y", "1 day"),
        ("60 S", "1 day"),  # a bar longer than the window: one bar
    ],
)
def test_allowed_combinations(duration: str, bar: str) -> None:
    check_combination(parse_duration(duration), parse_bar_size(bar))


@pytest.mark.parametrize(
    ("duration", "bar", "text"),
    [
        ("1801 S", "1 secs", "invalid step: 1"),
        ("1 D", "1 secs", "invalid step: 1"),
        ("3601 S", "5 secs", "invalid step: 5"),
        ("1 D", "30 secs", "invalid step: 30"),
        ("1 Y", "1 secs", "invalid step: 1"),
        ("2 W", "1 min", "Time length exceed max."),
        ("1 M", "1 min", "Time length exceed max."),
        ("1 Y", "30 mins", "Time length exceed max."),
    ],
)
def test_too_many_bars_is_162(duration: str, bar: str, text: str) -> None:
    got = refused(162, check_combination, parse_duration(duration), parse_bar_size(bar))
    assert got == "Historical Market Data Service error message:" + text


# -- end dates ---------------------------------------------------------------------------------


def test_end_date_forms_tws_reads() -> None:
    utc = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)
    assert parse_end_datetime("", "US/Eastern") is None
    assert parse_end_datetime("20240105-15:00:00", "US/Eastern") == utc
    assert parse_end_datetime("20240105 15:00:00 UTC", "US/Eastern") == utc
    assert parse_end_datetime("20240105 15:00:00 GMT", "US/Eastern") == utc
    assert parse_end_datetime("20240105 10:00:00 US/Eastern", "UTC") == utc
    assert parse_end_datetime("20240105 16:00:00 Europe/Berlin", "UTC") == utc
    # No zone: the instrument's zone stands in for TWS's machine zone.
    assert parse_end_datetime("20240105 10:00:00", "US/Eastern") == utc
    # No date: today in the given zone.
    got = parse_end_datetime("09:30:00 US/Eastern", "UTC", now=NOW)
    assert got == datetime(2024, 3, 6, 9, 30, tzinfo=ET)


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "20240105",
        "2024-01-05",
        "2024-01-05 10:00:00",
        "20241305 10:00:00",
        "20240132 10:00:00",
        "20240105 25:00:00",
        "20240105 10:00",
        "19700101 00:00:00",
        "20240105 10:00:00 Mars/Olympus",
        "20240105 10:00:00 20240106",
    ],
)
def test_unreadable_end_date_is_10314(bad: str) -> None:
    text = refused(10314, parse_end_datetime, bad, "US/Eastern", NOW)
    assert text.startswith("End Date/Time: The date, time, or time-zone entered is invalid.")


# -- the whole request, in TWS's order ---------------------------------------------------------


def request(**overrides: Any) -> HistRequest:
    args: dict[str, Any] = {
        "end_text": "",
        "bar_size": "1 hour",
        "duration": "2 D",
        "what": "TRADES",
        "use_rth": True,
        "now": NOW,
    }
    args.update(overrides)
    return historical_request(AAPL, **args)


def test_historical_request_resolves_now_and_builds_the_pacing_key() -> None:
    req = historical_request(
        AAPL,
        end_text="",
        bar_size="1 Hour",
        duration="2 d",
        what="midpoint",
        use_rth=False,
        now=NOW,
        format_date=2,
    )
    assert req.end == datetime.fromtimestamp(NOW, UTC)
    assert not req.end_given
    assert req.start == req.end - timedelta(days=2)
    assert (req.bar_seconds, req.what, req.format_date) == (3600, "MIDPOINT", 2)
    key = req.pacing_key
    assert (key.con_id, key.exchange, key.what) == (265598, "SMART", "MIDPOINT")
    assert (key.duration, key.bar_size, key.use_rth) == ("2 D", "1 hour", False)
    assert key.bar_seconds == 3600
    # Two spellings of the same request are the same request for pacing.
    same = request(bar_size="1 hour", duration="2 D", what="MIDPOINT", use_rth=False)
    assert same.pacing_key == key


def test_given_end_is_kept() -> None:
    req = request(end_text="20240105 10:00:00 US/Eastern")
    assert req.end == datetime(2024, 1, 5, 10, tzinfo=ET)
    assert req.end_given
    assert req.pacing_key.end == "20240105 10:00:00 US/Eastern"


def test_checks_run_in_tws_order() -> None:
    everything_wrong = {"end_text": "junk", "duration": "1 X", "bar_size": "7 mins", "what": "X"}
    assert refused(10314, request, **everything_wrong)
    assert "duration format" in refused(321, request, **{**everything_wrong, "end_text": ""})
    assert "bar size" in refused(321, request, duration="1 D", bar_size="7 mins", what="X")
    assert "What to show value of X" in refused(321, request, what="X")


@pytest.mark.parametrize(
    ("overrides", "cause"),
    [
        (
            {"what": "ADJUSTED_LAST", "end_text": "20240105 10:00:00"},
            "End date not supported with adjusted last",
        ),
        (
            {"what": "ADJUSTED_LAST", "bar_size": "1 week", "duration": "1 Y"},
            "Multi day bar size not supported with adjusted last",
        ),
        ({"format_date": 4}, "Date formatting selection of 4 rejected."),
        (
            {"keep_up_to_date": True, "end_text": "20240105 10:00:00"},
            "End date not supported with live updates",
        ),
        (
            {"keep_up_to_date": True, "what": "BID_ASK"},
            "Source price not supported with live updates",
        ),
    ],
)
def test_request_level_refusals(overrides: dict[str, object], cause: str) -> None:
    assert refused(321, request, **overrides).endswith(" : cause - " + cause)


def test_keep_up_to_date_accepts_the_four_live_series() -> None:
    for what in ("TRADES", "MIDPOINT", "BID", "ASK"):
        request(keep_up_to_date=True, what=what)


# -- formats -----------------------------------------------------------------------------------


def test_intraday_bar_times_in_every_format_date() -> None:
    t = int(datetime(2024, 1, 5, 9, 30, tzinfo=ET).timestamp())
    bar = SimBar(t, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0)
    assert format_bar_time(bar, "5 mins", 1, "US/Eastern") == "20240105 09:30:00 US/Eastern"
    assert format_bar_time(t, 300, 2, "US/Eastern") == str(t)
    assert format_bar_time(bar, "5 mins", 3, "US/Eastern") == "0105 09:30:00 US/Eastern"
    # What the clients make of it: ib_async reads an aware datetime at the same instant.
    parsed = util.parseIBDatetime(format_bar_time(bar, "5 mins", 1, "US/Eastern"))
    assert isinstance(parsed, datetime)
    assert parsed.timestamp() == t


def test_daily_and_longer_bars_are_dated_whatever_format_date() -> None:
    midnight = int(datetime(2024, 1, 5, tzinfo=ET).timestamp())
    for fmt in (1, 2):
        for size in ("1 day", "1 week", "1 month"):
            assert format_bar_time(midnight, size, fmt, "US/Eastern") == "20240105"


def test_range_strings_and_head_timestamp() -> None:
    start = datetime(2024, 1, 4, 15, 0, tzinfo=UTC)
    assert format_range(start, start.timestamp() + 3600, "US/Eastern") == (
        "20240104 10:00:00 US/Eastern",
        "20240104 11:00:00 US/Eastern",
    )
    head = datetime(1980, 12, 12, 14, 30, tzinfo=UTC)
    assert format_head_timestamp(head, 1) == "19801212-14:30:00"
    assert format_head_timestamp(head, 2) == str(int(head.timestamp()))


def test_cancel_acknowledgement_text() -> None:
    assert query_cancelled_text(7) == (
        "Historical Market Data Service error message:API historical data query cancelled: 7"
    )
