"""Bar sizes, durations and what-to-show values, checked before a request leaves the machine.

TWS refuses a malformed historical request with a terse 321 ("bar size setting is invalid"),
an out-of-table step with a 162 ("invalid step"), and ``1 mins`` or ``1 hours`` although people
type them all the time. Users think in ``"5m"`` and ``"1h"``. This module turns what users type
into IB's exact spellings, applies IB's step-size table, and says which values would work, so
a bad request becomes :class:`~ibflow.InvalidRequest` before anything is sent.

It also plans long downloads: :func:`plan_chunks` cuts a time range into IB-legal requests
whose ends sit on the bar grid of the instrument's time zone (IB aligns intraday bars to local
midnight and cuts the bar in progress at a request's end), so stitched chunks never contain a
partial bar; :func:`idle_weekdays` reads the instrument's schedule to tell which weekend days
never trade, so a download need not spend IB's pacing allowance on requests that return nothing.

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

from ._errors import InvalidRequest
from ._records.contracts import Contract, SecType

__all__ = [
    "BarSize",
    "Chunk",
    "Duration",
    "WhatToShow",
    "bar_seconds",
    "check_request",
    "format_end",
    "grid_floor",
    "max_duration",
    "parse_duration",
    "parse_period",
    "parse_what",
    "plan_chunks",
    "touches_only",
]

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY


class BarSize(StrEnum):
    """IB's bar sizes; the value is IB's own spelling (``barSizeSetting``)."""

    SECS_1 = "1 secs"
    SECS_5 = "5 secs"
    SECS_10 = "10 secs"
    SECS_15 = "15 secs"
    SECS_30 = "30 secs"
    MIN_1 = "1 min"
    MINS_2 = "2 mins"
    MINS_3 = "3 mins"
    MINS_5 = "5 mins"
    MINS_10 = "10 mins"
    MINS_15 = "15 mins"
    MINS_20 = "20 mins"
    MINS_30 = "30 mins"
    HOUR_1 = "1 hour"
    HOURS_2 = "2 hours"
    HOURS_3 = "3 hours"
    HOURS_4 = "4 hours"
    HOURS_8 = "8 hours"
    DAY_1 = "1 day"
    WEEK_1 = "1 week"
    MONTH_1 = "1 month"


_SECONDS: dict[BarSize, int] = {
    BarSize.SECS_1: 1,
    BarSize.SECS_5: 5,
    BarSize.SECS_10: 10,
    BarSize.SECS_15: 15,
    BarSize.SECS_30: 30,
    BarSize.MIN_1: MINUTE,
    BarSize.MINS_2: 2 * MINUTE,
    BarSize.MINS_3: 3 * MINUTE,
    BarSize.MINS_5: 5 * MINUTE,
    BarSize.MINS_10: 10 * MINUTE,
    BarSize.MINS_15: 15 * MINUTE,
    BarSize.MINS_20: 20 * MINUTE,
    BarSize.MINS_30: 30 * MINUTE,
    BarSize.HOUR_1: HOUR,
    BarSize.HOURS_2: 2 * HOUR,
    BarSize.HOURS_3: 3 * HOUR,
    BarSize.HOURS_4: 4 * HOUR,
    BarSize.HOURS_8: 8 * HOUR,
    BarSize.DAY_1: DAY,
    BarSize.WEEK_1: WEEK,
    BarSize.MONTH_1: 31 * DAY,  # nominal; monthly bars follow the calendar
}

# What users type: the unit letter is case-insensitive except m (minute) versus M (month).
_SHORT = {
    "1s": BarSize.SECS_1,
    "5s": BarSize.SECS_5,
    "10s": BarSize.SECS_10,
    "15s": BarSize.SECS_15,
    "30s": BarSize.SECS_30,
    "1m": BarSize.MIN_1,
    "2m": BarSize.MINS_2,
    "3m": BarSize.MINS_3,
    "5m": BarSize.MINS_5,
    "10m": BarSize.MINS_10,
    "15m": BarSize.MINS_15,
    "20m": BarSize.MINS_20,
    "30m": BarSize.MINS_30,
    "1h": BarSize.HOUR_1,
    "2h": BarSize.HOURS_2,
    "3h": BarSize.HOURS_3,
    "4h": BarSize.HOURS_4,
    "8h": BarSize.HOURS_8,
    "1d": BarSize.DAY_1,
    "1w": BarSize.WEEK_1,
    "1M": BarSize.MONTH_1,
}
_WORD_UNITS = {
    "sec": "secs",
    "secs": "secs",
    "second": "secs",
    "seconds": "secs",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
}
_BY_COUNT_UNIT = {(int(b.value.split()[0]), _WORD_UNITS[b.value.split()[1]]): b for b in BarSize}
_ALLOWED_PERIODS = (
    ", ".join(f'"{s}"' for s in _SHORT)
    + " or IB's spellings ("
    + ", ".join(b.value for b in BarSize)
    + ")"
)


class WhatToShow(StrEnum):
    """IB's ``whatToShow`` values for bars (the value is IB's spelling)."""

    TRADES = "TRADES"
    MIDPOINT = "MIDPOINT"
    BID = "BID"
    ASK = "ASK"
    BID_ASK = "BID_ASK"
    ADJUSTED_LAST = "ADJUSTED_LAST"
    HISTORICAL_VOLATILITY = "HISTORICAL_VOLATILITY"
    OPTION_IMPLIED_VOLATILITY = "OPTION_IMPLIED_VOLATILITY"
    REBATE_RATE = "REBATE_RATE"
    FEE_RATE = "FEE_RATE"
    YIELD_BID = "YIELD_BID"
    YIELD_ASK = "YIELD_ASK"
    YIELD_BID_ASK = "YIELD_BID_ASK"
    YIELD_LAST = "YIELD_LAST"
    AGGTRADES = "AGGTRADES"


_UNIT_NAMES = {"S": "seconds", "D": "days", "W": "weeks", "M": "months", "Y": "years"}
# Nominal lengths for comparing a duration with the step table (a month counts 31 days, so
# "31 D" and "1 M" compare equal; a year counts 366).
_UNIT_SECONDS = {"S": 1, "D": DAY, "W": WEEK, "M": 31 * DAY, "Y": 366 * DAY}
# TWS's own limits per unit; beyond them it asks for the next unit (321).
_UNIT_LIMITS = {"S": 86400, "D": 365, "W": 52, "M": 12}
_MIN_SECONDS = 30  # TWS refuses "N S" below 30 s


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration in IB's form: ``count`` of ``unit`` (S, D, W, M or Y)."""

    count: int
    unit: str

    @property
    def nominal_seconds(self) -> int:
        """Length used against the step table (a month counts 31 days, a year 366)."""
        return self.count * _UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.count} {self.unit}"


# IB's step-size table ("Historical Data Limitations"): each duration row allows bar sizes from
# its smallest to its largest. ``max_duration`` and ``check_request`` are its two readings.
_STEP_TABLE: tuple[tuple[Duration, BarSize, BarSize], ...] = (
    (Duration(60, "S"), BarSize.SECS_1, BarSize.MIN_1),
    (Duration(120, "S"), BarSize.SECS_1, BarSize.MINS_2),
    (Duration(1800, "S"), BarSize.SECS_1, BarSize.MINS_30),
    (Duration(3600, "S"), BarSize.SECS_5, BarSize.HOUR_1),
    (Duration(14400, "S"), BarSize.SECS_10, BarSize.HOURS_3),
    (Duration(28800, "S"), BarSize.SECS_30, BarSize.HOURS_8),
    (Duration(1, "D"), BarSize.MIN_1, BarSize.DAY_1),
    (Duration(2, "D"), BarSize.MINS_2, BarSize.DAY_1),
    (Duration(1, "W"), BarSize.MINS_3, BarSize.WEEK_1),
    (Duration(1, "M"), BarSize.MINS_30, BarSize.MONTH_1),
    (Duration(1, "Y"), BarSize.DAY_1, BarSize.MONTH_1),
)


def bar_seconds(bar: BarSize) -> int:
    """Nominal length of a bar in seconds (a month counts 31 days)."""
    return _SECONDS[bar]


def max_duration(bar: BarSize) -> Duration | None:
    """The longest duration IB's table allows for ``bar``; ``None``: any number of years."""
    if _SECONDS[bar] >= DAY:
        return None
    longest = None
    for duration, smallest, _largest in _STEP_TABLE:
        if _SECONDS[smallest] <= _SECONDS[bar]:
            longest = duration
    return longest


def _largest_bar(duration: Duration) -> BarSize:
    for row, _smallest, largest in _STEP_TABLE:
        if duration.nominal_seconds <= row.nominal_seconds:
            return largest
    return _STEP_TABLE[-1][2]


def parse_period(value: object) -> BarSize:
    """A bar size from what users type: ``"5m"``, ``"1h"``, ``"1M"`` (month), ``"5 mins"``…

    Raises:
        InvalidRequest: unknown spelling; the message lists the accepted ones.
    """
    if isinstance(value, BarSize):
        return value
    if isinstance(value, str):
        text = value.strip()
        compact = text.replace(" ", "")
        m = re.fullmatch(r"(\d+)([a-zA-Z])", compact)
        if m is not None:
            unit = m.group(2)
            key = m.group(1) + (unit if unit in ("m", "M") else unit.lower())
            if key in _SHORT:
                return _SHORT[key]
        m = re.fullmatch(r"(\d+)\s+([a-zA-Z]+)", text)
        if m is not None:
            unit_word = _WORD_UNITS.get(m.group(2).lower())
            if unit_word is not None:
                found = _BY_COUNT_UNIT.get((int(m.group(1)), unit_word))
                if found is not None:
                    return found
    raise InvalidRequest(
        f"unknown period {value!r}: period must be one of {_ALLOWED_PERIODS} "
        "(or IB's spelling, such as '5 mins')"
    )


def parse_duration(value: object) -> Duration:
    """A duration from ``"1 D"``, ``"2 W"``, ``"1 M"``, ``"1 Y"``, ``"3600 S"`` or a timedelta.

    Raises:
        InvalidRequest: malformed, or beyond what TWS accepts for the unit.
    """
    if isinstance(value, timedelta):
        return _duration_from_timedelta(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            text += " S"
        m = re.fullmatch(r"(\d+)\s*([sdwmySDWMY])", text)
        if m is not None:
            return _checked_duration(int(m.group(1)), m.group(2).upper())
    raise InvalidRequest(
        f"unknown duration {value!r}; use IB's form '<integer> <unit>' with unit S (seconds), "
        "D (days), W (weeks), M (months) or Y (years), e.g. '3600 S', '1 D', '2 W', '1 M', "
        "'1 Y', or a datetime.timedelta"
    )


def _checked_duration(count: int, unit: str) -> Duration:
    if count < 1:
        raise InvalidRequest(f"a duration needs a positive count, got {count} {unit}")
    if unit == "S" and count < _MIN_SECONDS:
        raise InvalidRequest(
            f"durations in seconds must be at least {_MIN_SECONDS} S (TWS refuses shorter), "
            f"got {count} S"
        )
    limit = _UNIT_LIMITS.get(unit)
    if limit is not None and count > limit:
        bigger = {"S": "D", "D": "Y", "W": "Y", "M": "Y"}[unit]
        raise InvalidRequest(
            f"TWS accepts at most {limit} {_UNIT_NAMES[unit]} ({limit} {unit}); express "
            f"{count} {unit} in {_UNIT_NAMES[bigger]} ({bigger}) instead"
        )
    return Duration(count, unit)


def _duration_from_timedelta(value: timedelta) -> Duration:
    seconds = value.total_seconds()
    if seconds <= 0 or not float(seconds).is_integer():
        raise InvalidRequest(
            f"a duration must be a positive whole number of seconds, got {value!r}"
        )
    whole = int(seconds)
    if whole <= _UNIT_LIMITS["S"]:
        return _checked_duration(whole, "S")
    if whole % DAY:
        raise InvalidRequest(
            f"durations longer than a day must be whole days (IB counts them in D, W, M or Y), "
            f"got {value!r}"
        )
    days = whole // DAY
    if days % 7 == 0 and days // 7 <= _UNIT_LIMITS["W"]:
        return Duration(days // 7, "W")
    if days <= _UNIT_LIMITS["D"]:
        return Duration(days, "D")
    if days % 365 == 0:
        return Duration(days // 365, "Y")
    raise InvalidRequest(
        f"durations longer than 365 days must be whole years for IB, got {value!r}; "
        "pass e.g. '2 Y', or use download() for an exact range"
    )


def parse_what(value: object) -> WhatToShow:
    """A :class:`WhatToShow` from its name (any case).

    Raises:
        InvalidRequest: unknown value; the message lists the accepted ones.
    """
    if isinstance(value, WhatToShow):
        return value
    if isinstance(value, str):
        try:
            return WhatToShow(value.strip().upper())
        except ValueError:
            pass
    allowed = ", ".join(w.value for w in WhatToShow)
    raise InvalidRequest(f"unknown what={value!r}; use one of {allowed}")


def format_end(end: object) -> str:
    """IB's endDateTime for ``end``: ``""`` for now, else ``yyyymmdd-hh:mm:ss`` in UTC.

    Raises:
        InvalidRequest: not a datetime, or a naive one.
    """
    if end is None:
        return ""
    if not isinstance(end, datetime):
        raise InvalidRequest(
            f"end must be an aware datetime or None (now), got {end!r}; for a date d use "
            "datetime(d.year, d.month, d.day, tzinfo=...)"
        )
    if end.tzinfo is None or end.utcoffset() is None:
        raise InvalidRequest(
            f"end={end!r} is naive; pass an aware datetime (e.g. tzinfo=datetime.UTC or "
            "zoneinfo.ZoneInfo('America/New_York')) so the time means one instant"
        )
    return end.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


def check_request(
    contract: Contract, bar: BarSize, duration: Duration | None, what: WhatToShow, has_end: bool
) -> None:
    """IB's rules for one request that TWS would refuse: step table, what-to-show limits.

    ``duration`` ``None`` skips the step check (downloads plan legal durations themselves).

    Raises:
        InvalidRequest: naming the values that would work.
    """
    if duration is not None:
        longest = max_duration(bar)
        if longest is not None and duration.nominal_seconds > longest.nominal_seconds:
            raise InvalidRequest(
                f"period {bar.value!r} allows a duration of at most {longest} (IB's step-size "
                f"table), got {duration}; use a longer period, a shorter duration, or "
                "session.download() for a longer range"
            )
        largest = _largest_bar(duration)
        if _SECONDS[bar] > _SECONDS[largest]:
            smallest = next(
                (s for row, s, _ in _STEP_TABLE if duration.nominal_seconds <= row.nominal_seconds),
                BarSize.DAY_1,
            )
            raise InvalidRequest(
                f"duration {duration} allows periods from {smallest.value!r} to "
                f"{largest.value!r} (IB's step-size table), got {bar.value!r}; use a longer "
                "duration or a shorter period"
            )
    if what is WhatToShow.ADJUSTED_LAST:
        if has_end:
            raise InvalidRequest(
                "what='ADJUSTED_LAST' only works up to now: leave end=None (TWS refuses an end "
                "date with adjusted data)"
            )
        if _SECONDS[bar] > DAY:
            raise InvalidRequest(
                "what='ADJUSTED_LAST' allows periods up to '1 day'; use TRADES for weekly or "
                "monthly bars"
            )
    if contract.sec_type is SecType.FOREX and what in (
        WhatToShow.TRADES,
        WhatToShow.ADJUSTED_LAST,
        WhatToShow.AGGTRADES,
    ):
        raise InvalidRequest(
            f"forex has no {what.value} data at IB; use what='MIDPOINT', 'BID', 'ASK' or 'BID_ASK'"
        )


# ---------------------------------------------------------------------------------------------
# Download planning


@dataclass(frozen=True, slots=True)
class Chunk:
    """One request of a download: bars in ``[start, end)`` (epoch seconds).

    ``request_end`` is the endDateTime to send (``None``: now) and ``duration`` reaches back to
    ``start`` or further.
    """

    start: int
    end: int
    request_end: int | None
    duration: Duration


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _ceil_local_day(t: int, tz: tzinfo) -> datetime:
    local = datetime.fromtimestamp(t, tz)
    midnight = _local_midnight(local.date(), tz)
    if midnight.timestamp() < t:
        midnight = _local_midnight(local.date() + timedelta(days=1), tz)
    return midnight


def grid_floor(t: int, bar: BarSize, tz: tzinfo) -> int:
    """Start of the bar-grid cell holding ``t``: intraday cells are counted from local midnight,
    daily cells are local days, weekly cells start on Monday, monthly on the 1st."""
    local = datetime.fromtimestamp(t, tz)
    day = local.date()
    if bar is BarSize.WEEK_1:
        day -= timedelta(days=day.weekday())
    elif bar is BarSize.MONTH_1:
        day = day.replace(day=1)
    midnight = _local_midnight(day, tz)
    seconds = _SECONDS[bar]
    if seconds >= DAY:
        return int(midnight.timestamp())
    # Count in wall-clock seconds from midnight, as IB's bar grid does, then back to an instant.
    wall = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
    cell = midnight + timedelta(seconds=int(wall // seconds) * seconds)
    return min(int(cell.timestamp()), t)


def _grid_points(start: int, end: int, step: int, tz: tzinfo) -> list[int]:
    """Wall-clock multiples of ``step`` (which divides a day) from local midnight, as instants,
    from the last one at or before ``start`` to the first one at or after ``end``."""
    points: set[int] = set()
    day = datetime.fromtimestamp(end, tz).date() + timedelta(days=1)
    while True:
        midnight = _local_midnight(day, tz)
        for k in range(DAY // step):
            points.add(int((midnight + timedelta(seconds=k * step)).timestamp()))
        if midnight.timestamp() <= start:
            break
        day -= timedelta(days=1)
    ordered = sorted(points)
    first = max(p for p in ordered if p <= start)
    last = min(p for p in ordered if p >= end)
    return [p for p in ordered if first <= p <= last]


def _years_back(end: datetime, start: int) -> int:
    years = 1
    while True:
        try:
            back = end.replace(year=end.year - years)
        except ValueError:  # 29 February
            back = end.replace(year=end.year - years, day=28)
        if back.timestamp() <= start:
            return years
        years += 1


def plan_chunks(start: int, end: int, bar: BarSize, tz: tzinfo, now: int) -> list[Chunk]:
    """IB-legal requests covering ``[start, end)`` (epoch seconds) for ``bar`` bars.

    Each request uses the longest duration IB's table allows for the bar size. Chunk ends sit
    on the local bar grid so no bar is cut between two chunks; a chunk reaching past ``now``
    ends at now instead (its last bar is the one in progress). Bars of a day or longer come in
    one request (IB takes any number of years for them).
    """
    if end <= start:
        return []
    seconds = _SECONDS[bar]
    if seconds >= DAY:
        if bar is BarSize.DAY_1:
            top = _ceil_local_day(end, tz)
        else:
            top = datetime.fromtimestamp(grid_floor(end, bar, tz), tz)
            if top.timestamp() < end:
                top = (
                    top + timedelta(days=7)
                    if bar is BarSize.WEEK_1
                    else _local_midnight((top.date() + timedelta(days=32)).replace(day=1), tz)
                )
        request_end: int | None = int(top.timestamp())
        stop = int(top.timestamp())
        if stop > now:
            request_end, stop = None, now
            top = datetime.fromtimestamp(now, tz)
        return [Chunk(start, stop, request_end, Duration(_years_back(top, start), "Y"))]

    longest = max_duration(bar)
    assert longest is not None
    chunks: list[Chunk] = []
    if longest.unit == "S" or longest.unit == "D":
        # Sub-day grids for seconds bars; whole local days for 1 and 2 minute bars (asked in
        # seconds, since IB's "N D" counts trading sessions, not calendar time).
        step = longest.count if longest.unit == "S" else DAY
        limit = min(longest.nominal_seconds, _UNIT_LIMITS["S"])
        points = _grid_points(start, end, step, tz)
        for a, b in itertools.pairwise(points):
            chunks += [_seconds_chunk(x, y, now) for x, y in _split(a, b, limit, seconds)]
    else:
        weeks = 1 if longest.unit == "W" else 4  # 1 M is asked as 4 W: calendar-exact
        top = _ceil_local_day(end, tz)
        while True:
            bottom = top - timedelta(weeks=weeks)
            b, a = int(top.timestamp()), int(bottom.timestamp())
            if b > now:
                # The window reaches back from now; ``weeks`` of it still covers ``a``.
                chunks.append(Chunk(a, now, None, Duration(weeks, "W")))
            else:
                chunks.append(Chunk(a, b, b, Duration(weeks, "W")))
            if a <= start:
                break
            top = bottom
        chunks.reverse()
    return [c for c in chunks if c.end > c.start and c.start < end and c.end > start]


def _split(a: int, b: int, limit: int, bar: int) -> list[tuple[int, int]]:
    """Halve ``[a, b)`` until no piece is longer than ``limit``.

    Only a DST day (23 or 25 hours) needs it; the cut is a multiple of the bar from ``a``, and
    every bar up to an hour divides an hour, so it stays on the grid.
    """
    if b - a <= limit:
        return [(a, b)]
    cut = a + (b - a) // 2 // bar * bar
    return _split(a, cut, limit, bar) + _split(cut, b, limit, bar)


def _seconds_chunk(a: int, b: int, now: int) -> Chunk:
    if b > now:
        return Chunk(a, now, None, Duration(max(now - a, _MIN_SECONDS), "S"))
    return Chunk(a, b, b, Duration(max(b - a, _MIN_SECONDS), "S"))


def touches_only(start: int, end: int, weekdays: frozenset[int], tz: tzinfo) -> bool:
    """True if every local day ``[start, end)`` (epoch seconds) touches is one of ``weekdays``."""
    if not weekdays or end <= start:
        return False
    current = datetime.fromtimestamp(start, tz).date()
    last = datetime.fromtimestamp(end - 1, tz).date()
    while current <= last:
        if current.weekday() not in weekdays:
            return False
        current += timedelta(days=1)
    return True
