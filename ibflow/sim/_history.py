"""Parsing and validation of reqHistoricalData parameters, with the error texts TWS sends.

A simulator is only useful for history code if it refuses what TWS refuses, with the same codes:
clients branch on 321 (the request is malformed, TWS checks it locally), 10314 (unreadable end
date) and 162 (the historical data farm, HMDS, refused or found nothing). This module holds those
rules and the date formats of the historicalData messages, as pure functions the server and
``_market`` share. It does no I/O and knows nothing about price paths.

Sources for the rules and texts (facts only, no code taken):

* IB's "Historical Data Limitations" page (step-size table, pacing rules, 2000-bar guideline).
* Error texts reported from real TWS sessions in public issue trackers, e.g. 321 "Historical data
  bar size setting is invalid. Legal ones are: ...", 321 "Historical data requests for durations
  longer than 365 days must be made in years.", 10314 "End Date/Time: The date, time, or
  time-zone entered is invalid. ...", 162 "...invalid step: 1" for 1-second bars over one day,
  162 "...Time length exceed max.", 162 "...No historical market data for EUR/CASH@FXSUBPIP Last
  300" for TRADES on forex, 162 "...HMDS query returned no data: ...".

Chosen (TWS's exact behaviour is unknown to us, documented here instead):

* The step check. IB calls its table "guidelines" and users report e.g. ``5 D`` of ``1 min``
  bars working, so bars shorter than a minute follow the table strictly (162 "invalid step: N",
  N the bar length in seconds) and longer bars are refused only beyond
  :data:`MAX_NOMINAL_BARS` (162 "Time length exceed max.").
* The trailing token of "No historical market data for ..." is the bar length: seconds for
  intraday bars, ``1d``/``1w``/``1m`` otherwise.
* historicalData's start/end strings use the zoned form of formatDate 1.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._model import Instrument, SimBar, SimError

HMDS = "Historical Market Data Service error message:"
_VALIDATING = "Error validating request.-'bH' : cause - "
_PROCESSING = "Error processing request.-'bH' : cause - "

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
MONTH = 30 * DAY  # nominal; monthly bars follow the calendar

# Canonical bar-size names and their length in seconds, in IB's order.
BAR_SIZES: dict[str, int] = {
    "1 secs": 1,
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": MINUTE,
    "2 mins": 2 * MINUTE,
    "3 mins": 3 * MINUTE,
    "5 mins": 5 * MINUTE,
    "10 mins": 10 * MINUTE,
    "15 mins": 15 * MINUTE,
    "20 mins": 20 * MINUTE,
    "30 mins": 30 * MINUTE,
    "1 hour": HOUR,
    "2 hours": 2 * HOUR,
    "3 hours": 3 * HOUR,
    "4 hours": 4 * HOUR,
    "8 hours": 8 * HOUR,
    "1 day": DAY,
    "1 week": WEEK,
    "1 month": MONTH,
}
# Spellings TWS also accepts for the two longest sizes (its own error text lists "1W, 1M").
_BAR_ALIASES = {"1w": WEEK, "1 w": WEEK, "1m": MONTH, "1 m": MONTH}
_LEGAL_BAR_SIZES = ", ".join([*list(BAR_SIZES)[:-2], "1W", "1M"])

# whatToShow values TWS knows. Unknown ones get 321; known ones without data in the sim get 162.
WHAT_TO_SHOW = (
    "TRADES",
    "MIDPOINT",
    "BID",
    "ASK",
    "BID_ASK",
    "ADJUSTED_LAST",
    "HISTORICAL_VOLATILITY",
    "OPTION_IMPLIED_VOLATILITY",
    "REBATE_RATE",
    "FEE_RATE",
    "YIELD_BID",
    "YIELD_ASK",
    "YIELD_BID_ASK",
    "YIELD_LAST",
    "SCHEDULE",
    "AGGTRADES",
)
# What the sim can answer, per secType.
_AVAILABLE: dict[str, frozenset[str]] = {
    "STK": frozenset(
        {
            "TRADES",
            "MIDPOINT",
            "BID",
            "ASK",
            "BID_ASK",
            "ADJUSTED_LAST",
            "HISTORICAL_VOLATILITY",
            "OPTION_IMPLIED_VOLATILITY",
        }
    ),
    "CASH": frozenset({"MIDPOINT", "BID", "ASK", "BID_ASK"}),
    "FUT": frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"}),
    "OPT": frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"}),
    "IND": frozenset({"TRADES", "HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY"}),
}
# HMDS's names for the data series, used in its "no data" texts.
_SERIES_NAME = {
    "TRADES": "Last",
    "ADJUSTED_LAST": "Last",
    "MIDPOINT": "MidPoint",
    "BID": "Bid",
    "ASK": "Ask",
    "BID_ASK": "Bid",  # TWS asks HMDS for Bid and Ask separately; Bid is refused first
    "HISTORICAL_VOLATILITY": "HistVol",
    "OPTION_IMPLIED_VOLATILITY": "OptionImpliedVol",
}
LIVE_UPDATE_WHATS = frozenset({"TRADES", "MIDPOINT", "BID", "ASK"})

# IB's step-size table for bars shorter than a minute: the longest duration (seconds) per size.
_SMALL_BAR_MAX_DURATION = {1: 1800, 5: 3600, 10: 14400, 15: 14400, 30: 28800}
# For one-minute and longer bars: the most bars (duration ÷ bar length, calendar time) accepted.
# One week of one-minute bars; 1 Y of hourly bars (8760) passes, 2 W of 1 min bars does not.
MAX_NOMINAL_BARS = 10_080

DURATION_UNITS = ("S", "D", "W", "M", "Y")
_DURATION_RE = re.compile(r"^(\d+) ([SDWMYsdwmy])$")
_DURATION_LIMITS = {
    "S": (86400, "Historical data request for greater than 86400 seconds rejected."),
    "D": (
        365,
        "Historical data requests for durations longer than 365 days must be made in years.",
    ),
    "W": (52, "Historical data request for durations longer than 52 weeks must be made in years."),
    "M": (12, "Historical data request for durations longer than 12 months must be made in years."),
}
_UNIT_SECONDS = {"S": 1, "D": DAY, "W": WEEK, "M": 31 * DAY, "Y": 366 * DAY}

END_DATE_INVALID = (
    "End Date/Time: The date, time, or time-zone entered is invalid. The correct format is "
    "yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional. E.g.: 20031126 15:59:00 "
    "US/Eastern  Note that there is a space between the date and time, and between the time and "
    "time-zone.  If no date is specified, current date is assumed. If no time-zone is specified, "
    "local time-zone is assumed(deprecated).  You can also provide yyyymmddd-hh:mm:ss time is in "
    "UTC. Note that there is a dash between the date and time in UTC notation."
)
PACING_VIOLATION = HMDS + "Historical data request pacing violation"
TOO_MANY_OPEN = _PROCESSING + "Only 50 simultaneous API historical data requests allowed."


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed durationStr: ``count`` of ``unit`` (one of S, D, W, M, Y)."""

    count: int
    unit: str

    @property
    def nominal_seconds(self) -> int:
        """Upper bound of the span in seconds (a month counts 31 days, a year 366)."""
        return self.count * _UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.count} {self.unit}"


@dataclass(frozen=True, slots=True)
class HistKey:
    """What identifies a historical request for pacing: "identical" requests have every field
    equal; the burst rule groups by (con_id, exchange, what)."""

    con_id: int
    exchange: str
    what: str
    end: str = ""
    duration: str = ""
    bar_size: str = ""
    use_rth: bool = True
    bar_seconds: int = 0  # lets pacing spare bars over 30 s some rules; 0 counts as small


@dataclass(frozen=True, slots=True)
class HistRequest:
    """A reqHistoricalData request that passed TWS's local (321/10314) checks."""

    end: datetime  # aware; "now" when the request left endDateTime empty
    start: datetime  # calendar start of the window (N D counted as N days: cosmetic only)
    end_given: bool  # False when endDateTime was "" (keepUpToDate needs that)
    duration: Duration
    bar_seconds: int
    what: str  # upper case
    format_date: int
    keep_up_to_date: bool
    pacing_key: HistKey


def validating_error(cause: str) -> SimError:
    """A 321 refusal in TWS's "Error validating request" form."""
    return SimError(321, _VALIDATING + cause)


def hmds_error(message: str) -> SimError:
    """A 162 refusal from the historical data farm."""
    return SimError(162, HMDS + message)


def query_cancelled_text(req_id: int) -> str:
    """Text of the 162 TWS sends after cancelHistoricalData of a request still running."""
    return f"{HMDS}API historical data query cancelled: {req_id}"


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_bar_size(text: str) -> int:
    """Bar length in seconds for an IB barSizeSetting (case-insensitive). 321 if unknown.

    ``1 week`` and ``1 month`` come back as :data:`WEEK` and :data:`MONTH`; bars of a day or
    longer follow trading sessions and the calendar, not these nominal lengths.
    """
    key = text.strip().lower()
    seconds = BAR_SIZES.get(key) or _BAR_ALIASES.get(key)
    if seconds is None:
        raise validating_error(
            f"Historical data bar size setting is invalid. Legal ones are: {_LEGAL_BAR_SIZES}"
        )
    return seconds


def bar_size_name(seconds: int) -> str:
    """Canonical IB name of a bar length from :func:`parse_bar_size`."""
    for name, value in BAR_SIZES.items():
        if value == seconds:
            return name
    raise ValueError(f"not an IB bar size: {seconds} s")


def parse_duration(text: str) -> Duration:
    """Parse a durationStr ("60 S", "2 D", "1 W", "3 M", "1 Y"; a bare number means seconds).

    Raises SimError 321 with TWS's text for a missing, malformed, too short or too long duration.
    """
    s = text.strip()
    if not s:
        raise validating_error("Historical data request duration not specified.")
    if s.isdigit():
        s += " S"
    m = _DURATION_RE.match(s)
    if m is None:
        raise validating_error(
            "When specifying a unit, historical data request duration format is "
            "integer{SPACE}unit (S|D|W|M|Y)."
        )
    count, unit = int(m.group(1)), m.group(2).upper()
    if count < 1 or (unit == "S" and count < 30):
        raise validating_error("Historical data requested duration is invalid.")
    limit = _DURATION_LIMITS.get(unit)
    if limit is not None and count > limit[0]:
        raise validating_error(limit[1])
    return Duration(count, unit)


def parse_what(text: str) -> str:
    """Normalise whatToShow to upper case; 321 "What to show value of X rejected." if unknown."""
    what = text.strip().upper()
    if what not in WHAT_TO_SHOW:
        raise validating_error(f"What to show value of {text} rejected.")
    return what


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """A tzinfo for an IB zone name ("US/Eastern", "UTC", "GMT", any IANA name)."""
    if name.upper() in ("UTC", "GMT"):
        return UTC
    return ZoneInfo(name)


_DATE_RE = re.compile(r"^(\d{8})$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})$")


def parse_end_datetime(text: str, tz: str, now: float | None = None) -> datetime | None:
    """Parse reqHistoricalData's endDateTime into an aware datetime; ``""`` gives None (= now).

    Accepted forms, as TWS reads them: ``yyyymmdd-hh:mm:ss`` (UTC), ``yyyymmdd hh:mm:ss``,
    ``yyyymmdd hh:mm:ss Zone`` and ``hh:mm:ss [Zone]`` (today, needs ``now``). Without a zone
    the time is read in ``tz`` (TWS uses its own machine zone and warns with 2174; the sim uses
    the instrument's). Anything else raises SimError 10314 with TWS's text.
    """
    s = text.strip()
    if not s:
        return None
    try:
        if " " not in s and "-" in s:
            d, t = s.split("-", 1)
            return _civil(d, t, UTC, now)
        words = s.split()
        numeric = [w for w in words if w[0].isdigit()]
        names = [w for w in words if not w[0].isdigit()]
        zone_info = zone(" ".join(names)) if names else zone(tz)
        if len(numeric) == 2:
            return _civil(numeric[0], numeric[1], zone_info, now)
        if len(numeric) == 1:
            return _civil(None, numeric[0], zone_info, now)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        pass
    raise SimError(10314, END_DATE_INVALID)


def _civil(d: str | None, t: str, tz: tzinfo, now: float | None) -> datetime:
    tm = _TIME_RE.match(t)
    if tm is None:
        raise ValueError(t)
    hh, mm, ss = (int(x) for x in tm.groups())
    if d is None:
        if now is None:
            raise ValueError("a time without a date needs `now`")
        day = datetime.fromtimestamp(now, tz).date()
    else:
        if _DATE_RE.match(d) is None:
            raise ValueError(d)
        day = date(int(d[:4]), int(d[4:6]), int(d[6:]))
        if not 1978 <= day.year <= 3000:
            raise ValueError(d)
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=tz)


# ---------------------------------------------------------------------------------------------
# Validation


def historical_request(
    inst: Instrument,
    *,
    end_text: str,
    bar_size: str,
    duration: str,
    what: str,
    use_rth: bool,
    now: float,
    keep_up_to_date: bool = False,
    format_date: int = 1,
) -> HistRequest:
    """TWS's local checks of a reqHistoricalData, in TWS's order; raises the first failure.

    Order: end date (10314), duration, ADJUSTED_LAST with an end date, bar size, ADJUSTED_LAST
    with bars longer than a day, whatToShow, formatDate, keepUpToDate rules (all 321). The farm's
    checks (step size, data availability, no data: 162) follow in ``Market.history``.
    An end date without a zone is read in the instrument's zone.
    """
    end_dt = parse_end_datetime(end_text, inst.time_zone, now)
    dur = parse_duration(duration)
    adjusted = what.strip().upper() == "ADJUSTED_LAST"
    if adjusted and end_dt is not None:
        raise validating_error("End date not supported with adjusted last")
    bar_seconds = parse_bar_size(bar_size)
    if adjusted and bar_seconds > DAY:
        raise validating_error("Multi day bar size not supported with adjusted last")
    what_norm = parse_what(what)
    if format_date not in (1, 2, 3):
        raise validating_error(f"Date formatting selection of {format_date} rejected.")
    if keep_up_to_date:
        if end_dt is not None:
            raise validating_error("End date not supported with live updates")
        if inst.sec_type.upper() == "BAG":
            raise validating_error("Live updates for combos are not supported")
        if what_norm not in LIVE_UPDATE_WHATS:
            raise validating_error("Source price not supported with live updates")
    end_resolved = (
        end_dt if end_dt is not None else datetime.fromtimestamp(now, zone(inst.time_zone))
    )
    key = HistKey(
        con_id=inst.con_id,
        exchange=inst.exchange,
        what=what_norm,
        end=end_text.strip(),
        duration=str(dur),
        bar_size=bar_size_name(bar_seconds),
        use_rth=use_rth,
        bar_seconds=bar_seconds,
    )
    return HistRequest(
        end=end_resolved,
        start=window_start(dur, end_resolved),
        end_given=end_dt is not None,
        duration=dur,
        bar_seconds=bar_seconds,
        what=what_norm,
        format_date=format_date,
        keep_up_to_date=keep_up_to_date,
        pacing_key=key,
    )


def check_combination(duration: Duration, bar_seconds: int) -> None:
    """Refuse a duration/bar-size pair that would return too many bars (SimError 162).

    Bars under a minute follow IB's step-size table exactly ("invalid step: N"); longer bars
    are refused beyond :data:`MAX_NOMINAL_BARS` ("Time length exceed max."). A bar longer than
    the duration is allowed (one bar comes back).
    """
    span = duration.nominal_seconds
    if bar_seconds < MINUTE:
        if span > _SMALL_BAR_MAX_DURATION[bar_seconds]:
            raise hmds_error(f"invalid step: {bar_seconds}")
    elif bar_seconds < DAY and span // bar_seconds > MAX_NOMINAL_BARS:
        raise hmds_error("Time length exceed max.")


def hmds_exchange(inst: Instrument) -> str:
    """The exchange name HMDS uses in its texts (SMART is BEST, IDEALPRO forex is FXSUBPIP)."""
    if inst.exchange in ("", "SMART"):
        return "BEST"
    if inst.sec_type == "CASH" and inst.exchange == "IDEALPRO":
        return "FXSUBPIP"
    return inst.exchange


def _step_token(bar_seconds: int) -> str:
    if bar_seconds < DAY:
        return str(bar_seconds)
    return {DAY: "1d", WEEK: "1w"}.get(bar_seconds, "1m")


def is_available(what: str, sec_type: str) -> bool:
    """Whether the sim has ``what`` data (upper case) for instruments of ``sec_type``."""
    return what in _AVAILABLE.get(sec_type, frozenset())


def check_available(inst: Instrument, what: str, bar_seconds: int) -> None:
    """162 "No historical market data for ..." when ``what`` does not exist for the instrument.

    Forex has no TRADES, indices have no bid/ask, and the exotic whatToShow values (yields,
    fee rates, schedules) are not simulated.
    """
    if not is_available(what, inst.sec_type):
        series = _SERIES_NAME.get(what, what.title())
        raise hmds_error(
            f"No historical market data for {inst.symbol}/{inst.sec_type}@{hmds_exchange(inst)} "
            f"{series} {_step_token(bar_seconds)}"
        )


def no_data_error(inst: Instrument, what: str) -> SimError:
    """The 162 HMDS sends when a valid query finds no bars (before the head timestamp, or no
    session in the window)."""
    series = _SERIES_NAME.get(what, what.title())
    return hmds_error(f"HMDS query returned no data: {inst.symbol}@{hmds_exchange(inst)} {series}")


# ---------------------------------------------------------------------------------------------
# Formatting


def format_bar_time(bar: SimBar | int, bar_size: str | int, format_date: int, tz: str) -> str:
    """The date field of a historicalData/historicalDataUpdate bar, as TWS writes it.

    ``bar`` is a bar or its start (epoch s); ``bar_size`` a barSizeSetting or its seconds.
    Bars of a day or longer: ``yyyymmdd`` (their session date) whatever formatDate. Intraday:
    formatDate 1 ``yyyymmdd hh:mm:ss Zone`` in the instrument's zone, 2 epoch seconds, 3 the
    form of 1 without the year.
    """
    bar_time = bar if isinstance(bar, int) else bar.time
    seconds = bar_size if isinstance(bar_size, int) else parse_bar_size(bar_size)
    if seconds >= DAY:
        return datetime.fromtimestamp(bar_time, zone(tz)).strftime("%Y%m%d")
    if format_date == 2:
        return str(bar_time)
    text = f"{datetime.fromtimestamp(bar_time, zone(tz)).strftime('%Y%m%d %H:%M:%S')} {tz}"
    return text[4:] if format_date == 3 else text


def bar_size_seconds(bar_size: str) -> int:
    """Alias of :func:`parse_bar_size` (seconds of a barSizeSetting; 321 if unknown)."""
    return parse_bar_size(bar_size)


def format_range(start: datetime | float, end: datetime | float, tz: str) -> tuple[str, str]:
    """historicalData's startDateStr and endDateStr: ``yyyymmdd hh:mm:ss Zone`` in ``tz``."""
    z = zone(tz)

    def text(t: datetime | float) -> str:
        dt = t.astimezone(z) if isinstance(t, datetime) else datetime.fromtimestamp(t, z)
        return f"{dt.strftime('%Y%m%d %H:%M:%S')} {tz}"

    return text(start), text(end)


def format_head_timestamp(ts: datetime, format_date: int) -> str:
    """headTimestamp's value: formatDate 2 epoch seconds, otherwise ``yyyymmdd-hh:mm:ss`` UTC."""
    if format_date == 2:
        return str(int(ts.timestamp()))
    return ts.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


def window_start(duration: Duration, end: datetime) -> datetime:
    """Calendar start of a duration ending at ``end`` (D is handled by the caller as sessions).

    S counts seconds, W weeks, M calendar months and Y calendar years back in ``end``'s zone.
    """
    if duration.unit == "S":
        return end - timedelta(seconds=duration.count)
    if duration.unit == "D":
        return end - timedelta(days=duration.count)
    if duration.unit == "W":
        return end - timedelta(weeks=duration.count)
    months = duration.count * (12 if duration.unit == "Y" else 1)
    y, m = divmod(end.year * 12 + end.month - 1 - months, 12)
    day = min(end.day, calendar.monthrange(y, m + 1)[1])
    return end.replace(year=y, month=m + 1, day=day)
