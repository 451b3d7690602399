"""Bars of a larger period from bars of a smaller one, aligned the way TWS aligns its own.

TWS starts intraday bars on the clock in the exchange's time zone (15-minute bars at :00, :15,
:30, :45), except that a bar holding the session's first minute starts when the session does
(an hourly bar of a 09:30 open is stamped 09:30); daily bars are stamped midnight, and weekly
and monthly bars by their first trading day. :func:`resample` does the same with bars already
fetched, so a strategy can run on 5-minute bars and read 1-hour ones without another request.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from itertools import pairwise

from ._errors import InvalidRequest
from ._periods import DAY, WEEK, BarSize, bar_seconds, parse_period
from ._records.contracts import Bar
from ._records.market import FormingBar, Gap

__all__ = ["resample"]


def resample(bars: Iterable[Bar | Gap], period: str | BarSize) -> list[Bar]:
    """Aggregate ``bars`` into bars of ``period``: open, high, low, close, volume, WAP, count.

    ``bars`` may come straight from ``history()``, ``download()`` or ``live_bars()``: ``Gap``
    items and still-forming bars are skipped, and the order does not matter. A resampled bar
    holds whatever input bars fall in its period; its WAP is the volume-weighted mean of theirs.

    Args:
        bars: aware bars of one instrument, all of one smaller period.
        period: the new bar size, spelled as for ``history()`` (``"15m"``, ``"1h"``, ``"1d"``…).

    Returns:
        The new bars, oldest first.

    Raises:
        InvalidRequest: an unknown period, a naive bar time, or a period that is not a whole
            multiple of the input's spacing.
    """
    target = parse_period(period)
    size = bar_seconds(target)
    complete = sorted(
        (b for b in bars if isinstance(b, Bar) and not isinstance(b, FormingBar)),
        key=lambda b: b.time,
    )
    if not complete:
        return []
    for bar in complete:
        if bar.time.tzinfo is None:
            raise InvalidRequest(f"resample needs aware bar times, got {bar.time!r}")
    _check_spacing(complete, size, period)
    groups: dict[Hashable, list[Bar]] = {}
    day_opens: dict[object, datetime] = {}
    for bar in complete:
        groups.setdefault(_bucket(bar.time, size), []).append(bar)
        day_opens.setdefault(bar.time.date(), bar.time)
    out = []
    for members in groups.values():
        first = members[0]
        if size >= DAY:
            label = _midnight(first.time)
        else:
            aligned = _clock_floor(first.time, size)
            label = max(aligned, day_opens[first.time.date()])
        out.append(_merge(label, members))
    return out


def _check_spacing(bars: list[Bar], size: int, period: object) -> None:
    steps = [int((b.time - a.time).total_seconds()) for a, b in pairwise(bars) if b.time > a.time]
    if not steps:
        return
    spacing = min(steps)
    if size < DAY and (size < spacing or size % spacing):
        raise InvalidRequest(
            f"cannot resample bars {spacing} s apart into {period!r} ({size} s): the new period "
            "must be a whole multiple of the bars' own"
        )


def _bucket(time: datetime, size: int) -> Hashable:
    if size > WEEK:  # a month
        return (time.year, time.month)
    if size >= WEEK:
        return time.isocalendar()[:2]
    if size >= DAY:
        return time.date()
    return _clock_floor(time, size)


def _midnight(time: datetime) -> datetime:
    return time.replace(hour=0, minute=0, second=0, microsecond=0)


def _clock_floor(time: datetime, size: int) -> datetime:
    """``time`` floored to a multiple of ``size`` seconds of wall-clock time since midnight."""
    since_midnight = time.hour * 3600 + time.minute * 60 + time.second
    start = since_midnight - since_midnight % size
    return time.replace(
        hour=start // 3600, minute=start % 3600 // 60, second=start % 60, microsecond=0
    )


def _merge(label: datetime, members: list[Bar]) -> Bar:
    volumes = [b.volume for b in members]
    waps = [b.wap for b in members]
    counts = [b.count for b in members]
    volume = None if None in volumes else sum(v for v in volumes if v is not None)
    wap = None
    if volume and None not in waps:
        wap = sum(w * v for w, v in zip(waps, volumes, strict=True) if w is not None and v) / volume
    return Bar(
        time=label,
        open=members[0].open,
        high=max(b.high for b in members),
        low=min(b.low for b in members),
        close=members[-1].close,
        volume=volume,
        wap=wap,
        count=None if None in counts else sum(c for c in counts if c is not None),
    )
