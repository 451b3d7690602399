"""ibflow.resample equals asking TWS for the larger period, on the simulator's data.

The simulator builds bars of two minutes to an hour from their minute bars, as TWS does, so
resampled bars must equal the ones it serves for the larger period, field for field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import ibflow
from ibflow.testing import SimFactory, session_for

AAPL = ibflow.Stock("AAPL")
WEDNESDAY_CLOSE = datetime(2027, 3, 10, 21, 30, tzinfo=UTC)  # after the New York close


def _same(a: list[ibflow.Bar], b: list[ibflow.Bar]) -> None:
    assert [x.time for x in a] == [y.time for y in b]
    for x, y in zip(a, b, strict=True):
        assert (x.open, x.high, x.low, x.close) == (y.open, y.high, y.low, y.close)
        assert (x.volume, x.count) == (y.volume, y.count)
        assert x.wap == pytest.approx(y.wap, abs=1e-4)  # TWS rounds its WAP


@pytest.mark.parametrize(("small", "large"), [("5m", "15m"), ("5m", "1h"), ("1m", "30m")])
@pytest.mark.parametrize("rth", [True, False])
async def test_resample_equals_the_larger_period_from_tws(
    ib_sim_factory: SimFactory, small: str, large: str, rth: bool
) -> None:
    sim = await ib_sim_factory(clock=lambda: WEDNESDAY_CLOSE.timestamp())
    async with session_for(sim) as session:
        fine = await session.history(AAPL, period=small, duration="1 D", rth=rth)
        coarse = await session.history(AAPL, period=large, duration="1 D", rth=rth)
    resampled = ibflow.resample(fine, large)
    _same(resampled, coarse)
    assert sum(b.volume or 0 for b in resampled) == sum(b.volume or 0 for b in fine)
    assert resampled[0].time.tzinfo is not None


def _bar(minute: int, price: float, volume: float = 10.0) -> ibflow.Bar:
    time = datetime(2027, 3, 10, 14, 30, tzinfo=UTC) + timedelta(minutes=minute)
    return ibflow.Bar(
        time=time,
        open=price,
        high=price + 1,
        low=price - 1,
        close=price,
        volume=volume,
        wap=price,
        count=1,
    )


def test_a_daily_bar_is_stamped_midnight_and_an_hour_starts_at_the_open() -> None:
    bars = [_bar(m, 10.0 + m) for m in range(0, 90, 5)]  # 14:30 to 15:55 UTC
    hours = ibflow.resample(bars, "1h")
    assert [h.time.strftime("%H:%M") for h in hours] == ["14:30", "15:00"]
    assert [h.volume for h in hours] == [60.0, 120.0]  # 14:30-15:00 holds six bars
    [day] = ibflow.resample(bars, "1d")
    assert day.time == datetime(2027, 3, 10, tzinfo=UTC)
    assert (day.open, day.close, day.high, day.low) == (10.0, 95.0, 96.0, 9.0)


def test_gaps_and_forming_bars_are_skipped_and_order_does_not_matter() -> None:
    bars: list[ibflow.Bar | ibflow.Gap] = [_bar(5, 11.0), _bar(0, 10.0, volume=30.0)]
    bars.append(ibflow.Gap(start=bars[0].time, end=bars[0].time, reason="outage"))  # type: ignore[union-attr]
    forming = ibflow.FormingBar(time=_bar(10, 0).time, open=1, high=1, low=1, close=1)
    [merged] = ibflow.resample([*bars, forming], "15m")
    assert (merged.open, merged.close, merged.high, merged.low) == (10.0, 11.0, 12.0, 9.0)
    assert merged.volume == 40.0
    assert merged.wap == pytest.approx((10 * 30 + 11 * 10) / 40)
    assert merged.count == 2
    assert ibflow.resample([], "1h") == []


@pytest.mark.parametrize("period", ["7m", "2m", "1x"])
def test_impossible_targets_are_refused(period: str) -> None:
    bars = [_bar(0, 10.0), _bar(5, 10.0)]
    with pytest.raises(ibflow.InvalidRequest):
        ibflow.resample(bars, period)


def test_naive_bars_are_refused() -> None:
    naive = ibflow.Bar(time=datetime(2027, 3, 10, 9, 30), open=1, high=1, low=1, close=1)
    with pytest.raises(ibflow.InvalidRequest, match="aware"):
        ibflow.resample([naive], "1h")
