"""Trading sessions from IB's schedules: the one parser, and the session calls over the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import ibflow
from ibflow._schedule import idle_weekdays, parse_schedule, zone_of
from ibflow.testing import SimFactory, session_for

NY = ZoneInfo("America/New_York")
# Friday 12 March 2027, 10:00 in New York; US clocks go forward on Sunday the 14th.
FRIDAY = datetime(2027, 3, 12, 15, 0, tzinfo=UTC)


def test_sessions_are_aware_in_the_contract_zone_across_a_dst_change() -> None:
    text = "20270312:0930-20270312:1600;20270313:CLOSED;20270314:CLOSED;20270315:0930-20270315:1600"
    schedule = parse_schedule(text, NY)
    opens = [s.open.astimezone(UTC).hour for s in schedule.sessions]
    assert opens == [14, 13]  # 09:30 EST, then 09:30 EDT
    assert {d.isoformat() for d in schedule.closed} == {"2027-03-13", "2027-03-14"}


def test_an_overnight_session_spans_the_dst_night() -> None:
    schedule = parse_schedule("20270315:20270314:1800-20270315:1700", NY)
    [session] = schedule.sessions
    # 18:00 EDT Sunday to 17:00 EDT Monday: 23 hours of wall time, 23 real hours.
    assert session.close - session.open == timedelta(hours=23)
    assert session.contains(datetime(2027, 3, 15, 3, 0, tzinfo=UTC))


@pytest.mark.parametrize("text", ["garbage", "20270315:0930", "2027031:0930-1600", "x;y"])
def test_unreadable_schedules_are_refused(text: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="not an IB trading schedule"):
        parse_schedule(text, NY)
    assert idle_weekdays(text) == frozenset()


def test_zones_tws_names() -> None:
    assert zone_of("US/Eastern") is not None
    assert zone_of("UTC") is UTC
    assert zone_of("Mars/Olympus") is None
    assert zone_of("") is None


async def test_trading_sessions_over_the_wire(ib_sim_factory: SimFactory) -> None:
    sim = await ib_sim_factory(clock=lambda: FRIDAY.timestamp())
    async with session_for(sim) as session:
        aapl = ibflow.Stock("AAPL")
        sessions = await session.trading_sessions(aapl)
        assert [s.open.date().isoformat() for s in sessions][:2] == ["2027-03-12", "2027-03-15"]
        assert sessions[0].open.astimezone(UTC).hour == 14
        assert sessions[1].open.astimezone(UTC).hour == 13
        assert all(s.open.tzinfo is not None for s in sessions)
        windowed = await session.trading_sessions(
            aapl, FRIDAY + timedelta(hours=7), FRIDAY + timedelta(days=3, hours=2)
        )
        assert [s.open.date().isoformat() for s in windowed] == ["2027-03-15"]
        all_hours = await session.trading_sessions(aapl, rth=False)
        assert all_hours[0].open < sessions[0].open

        assert await session.is_open(aapl, FRIDAY)
        assert not await session.is_open(aapl, FRIDAY + timedelta(days=1))
        assert await session.next_open(aapl, FRIDAY + timedelta(hours=8)) == sessions[1].open
        assert await session.next_open(aapl, FRIDAY + timedelta(days=30)) is None


async def test_schedule_calls_refuse_naive_times(ib_sim_factory: SimFactory) -> None:
    sim = await ib_sim_factory()
    async with session_for(sim) as session:
        naive = datetime(2027, 3, 12, 10, 0)
        with pytest.raises(ibflow.InvalidRequest, match="aware"):
            await session.is_open(ibflow.Stock("AAPL"), naive)
        with pytest.raises(ibflow.InvalidRequest, match="aware"):
            await session.trading_sessions(ibflow.Stock("AAPL"), naive)
        with pytest.raises(ibflow.ContractNotFound):
            await session.trading_sessions(ibflow.Stock("NOPE"))
