"""Bars across the border: ib_async's ``BarData`` / ``RealTimeBar`` → ibflow's frozen ``Bar``.

History, live bars and real-time bars all arrive as ib_async records with mutable fields, naive
or date-only times and ``-1``/``0`` sentinels for "no volume"; they leave here as ``Bar`` with an
aware start time and ``None`` where IB reports nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

import ib_async

from .._records.contracts import Bar

__all__ = ["bar_from_ib", "realtime_bar_from_ib"]


def _aware(value: date | datetime, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    # A daily bar is dated by its session: midnight of that day in the exchange's zone.
    return datetime(value.year, value.month, value.day, tzinfo=tz)


def _volume(volume: float) -> float | None:
    return float(volume) if volume is not None and volume >= 0 else None


def bar_from_ib(bar: ib_async.BarData, tz: tzinfo = UTC) -> Bar:
    """A historical (or keepUpToDate) bar; ``tz`` dates daily bars and naive times."""
    return Bar(
        time=_aware(bar.date, tz),
        open=float(bar.open),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=_volume(bar.volume),
        wap=float(bar.average) if bar.average > 0 else None,
        count=int(bar.barCount) if bar.barCount >= 0 else None,
    )


def realtime_bar_from_ib(bar: ib_async.RealTimeBar) -> Bar:
    """A 5-second real-time bar (its ``time`` is already an aware UTC start)."""
    return Bar(
        time=_aware(bar.time, UTC),
        open=float(bar.open_),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=_volume(bar.volume),
        wap=float(bar.wap) if bar.wap > 0 else None,
        count=int(bar.count) if bar.count >= 0 else None,
    )
