"""IB's trading schedules: one parser for ``tradingHours`` / ``liquidHours`` and its uses.

TWS describes when a contract trades as text in the contract's own time zone: ``;``-separated
days, each ``YYYYMMDD:CLOSED`` or ``,``-separated sessions ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` (or
``HHMM-HHMM`` after the day, the older spelling); a session may open the evening before the
day it is listed under (futures, forex). Everything here reads that text through
:func:`parse_schedule`: the trading sessions users ask for, and the weekend days ``download()``
skips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._errors import InvalidRequest

__all__ = [
    "Schedule",
    "TradingSession",
    "idle_weekdays",
    "parse_schedule",
    "zone_of",
]

_WEEKEND = (5, 6)  # Saturday, Sunday
_DAY = re.compile(r"^(\d{8}):(.+)$")
_SPAN = re.compile(r"^(?:(\d{8}):)?(\d{4})-(?:(\d{8}):)?(\d{4})$")


@dataclass(frozen=True, slots=True)
class TradingSession:
    """One stretch of trading: ``open`` to ``close``, aware, in the contract's time zone."""

    open: datetime
    close: datetime

    def contains(self, at: datetime) -> bool:
        """True if the aware instant ``at`` falls in ``[open, close)``."""
        return self.open <= at < self.close


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: its sessions in order, and the days it lists as closed."""

    sessions: tuple[TradingSession, ...]
    closed: frozenset[date]


def zone_of(name: str | None) -> tzinfo | None:
    """The time zone TWS names (``"US/Eastern"``, ``"America/New_York"``…); ``None`` if unknown."""
    if not name or name.upper() in ("UTC", "GMT"):
        return UTC if name else None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_schedule(schedule: str, tz: tzinfo) -> Schedule:
    """Read IB's schedule text (see the module docstring); times become aware in ``tz``.

    Raises:
        InvalidRequest: the text is not in IB's schedule format.
    """
    sessions: list[TradingSession] = []
    closed: set[date] = set()
    try:
        for entry in filter(None, (part.strip() for part in schedule.split(";"))):
            day_match = _DAY.match(entry)
            if day_match is None:
                raise ValueError(entry)
            day = datetime.strptime(day_match[1], "%Y%m%d").date()
            if day_match[2].strip().upper() == "CLOSED":
                closed.add(day)
                continue
            for span in day_match[2].split(","):
                span_match = _SPAN.match(span.strip())
                if span_match is None:
                    raise ValueError(span)
                start_day, start_hm, end_day, end_hm = span_match.groups()
                opens = datetime.strptime((start_day or day_match[1]) + start_hm, "%Y%m%d%H%M")
                closes = datetime.strptime((end_day or day_match[1]) + end_hm, "%Y%m%d%H%M")
                if closes > opens:  # an empty session trades at no time
                    sessions.append(
                        TradingSession(opens.replace(tzinfo=tz), closes.replace(tzinfo=tz))
                    )
    except ValueError as exc:
        raise InvalidRequest(f"not an IB trading schedule ({exc}): {schedule[:80]!r}") from None
    sessions.sort(key=lambda s: s.open)
    return Schedule(tuple(sessions), frozenset(closed))


def idle_weekdays(schedule: str | None) -> frozenset[int]:
    """The weekend days (5 Saturday, 6 Sunday) on which ``schedule`` has no trading at all.

    A weekend day counts as idle only if the schedule shows it ``CLOSED`` and no session touches
    it, so a futures or forex session opening on Sunday evening keeps Sunday, and a market that
    trades Sunday to Thursday keeps Sunday too. Weekdays are never idle: a closed one in the
    listed week is a holiday, not a rule. Anything unreadable means nothing is idle.
    """
    if not schedule:
        return frozenset()
    try:
        parsed = parse_schedule(schedule, UTC)  # local wall times: only their dates matter
    except InvalidRequest:
        return frozenset()
    trading: set[int] = set()
    for session in parsed.sessions:
        # Every local day the session overlaps trades, up to the instant it closes.
        current = session.open.date()
        last = (session.close - timedelta(microseconds=1)).date()
        while current <= last:
            trading.add(current.weekday())
            current += timedelta(days=1)
    closed = {day.weekday() for day in parsed.closed}
    return frozenset(d for d in _WEEKEND if d in closed and d not in trading)
