"""``session.history()`` and ``session.head_timestamp()`` against the simulator, like a user."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .helpers import AAPL, ET, PACING_TEXT, WEDNESDAY, Opener, rules

# Each period with the longest duration IB's step table allows for it.
PERIODS = [
    ("1s", "1800 S"),
    ("5s", "3600 S"),
    ("10s", "14400 S"),
    ("15s", "14400 S"),
    ("30s", "28800 S"),
    ("1m", "1 D"),
    ("2m", "2 D"),
    ("3m", "1 W"),
    ("5m", "1 W"),
    ("10m", "1 W"),
    ("15m", "1 W"),
    ("20m", "1 W"),
    ("30m", "1 M"),
    ("1h", "1 M"),
    ("2h", "1 M"),
    ("3h", "1 M"),
    ("4h", "1 M"),
    ("8h", "1 M"),
    ("1d", "1 Y"),
    ("1w", "2 Y"),
    ("1M", "2 Y"),
]


def sent(sim: Simulator) -> int:
    """Every request the simulator saw that history could have caused."""
    return sum(
        sim.request_count(kind) for kind in ("historical_data", "contract_data", "head_timestamp")
    )


@pytest.mark.parametrize(("period", "duration"), PERIODS)
async def test_history_for_each_period(session: ibflow.Session, period: str, duration: str) -> None:
    bars = await session.history(AAPL, period=period, duration=duration, end=WEDNESDAY)
    assert bars
    times = [b.time for b in bars]
    assert times == sorted(set(times))
    assert all(b.time < WEDNESDAY for b in bars)
    for b in bars:
        assert b.time.utcoffset() is not None
        assert str(b.time.tzinfo) == "US/Eastern"  # stamped in the instrument's zone
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume is not None
        assert b.volume >= 0
    if period in ("1d", "1w", "1M"):
        assert all(b.time.hour == 0 for b in bars)  # midnight of the session date


@pytest.mark.parametrize(
    ("what", "has_volume"),
    [
        ("TRADES", True),
        ("MIDPOINT", False),
        ("BID", False),
        ("ASK", False),
        ("BID_ASK", False),
        ("HISTORICAL_VOLATILITY", False),
        ("OPTION_IMPLIED_VOLATILITY", False),
        (ibflow.WhatToShow.TRADES, True),
    ],
)
async def test_history_for_each_what(session: ibflow.Session, what: str, has_volume: bool) -> None:
    bars = await session.history(AAPL, period="1h", duration="1 W", what=what, end=WEDNESDAY)
    assert bars
    assert all((b.volume is not None) is has_volume for b in bars)
    assert all(b.wap is None for b in bars) is not has_volume


async def test_adjusted_last_runs_up_to_now(session: ibflow.Session) -> None:
    bars = await session.history(AAPL, period="1d", duration="1 M", what="ADJUSTED_LAST")
    assert bars
    assert bars[-1].time <= datetime.now(UTC)


async def test_forex_midpoint_and_a_future_in_its_own_zone(session: ibflow.Session) -> None:
    fx = await session.history(ibflow.Forex("EURUSD"), period="1h", duration="1 D", what="BID_ASK")
    assert fx
    es = ibflow.Future("ES", "20270319", "CME")
    bars = await session.history(es, period="30m", duration="1 W", rth=False)  # up to now
    assert str(bars[0].time.tzinfo) == "US/Central"


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"period": "7m"}, '"5m"'),
    ({"period": "1 fortnight"}, "5 mins"),
    ({"period": 5}, '"1h"'),
    ({"duration": "1 X"}, "D (days)"),
    ({"duration": "400 D"}, "in years (Y)"),
    ({"duration": "10 S"}, "at least 30 S"),
    ({"duration": timedelta(hours=25)}, "whole days"),
    ({"period": "1s", "duration": "1 D"}, "at most 1800 S"),
    ({"period": "1m", "duration": "1 W"}, "at most 1 D"),
    ({"period": "1h", "duration": "1 Y"}, "at most 1 M"),
    ({"period": "1d", "duration": "60 S"}, "from '1 secs' to '1 min'"),
    ({"what": "LAST"}, "TRADES, MIDPOINT, BID, ASK, BID_ASK"),
    ({"what": None}, "ADJUSTED_LAST"),
    ({"end": datetime(2024, 3, 6, 15)}, "naive"),
    ({"end": "20240306 15:00:00"}, "aware datetime"),
    ({"end": WEDNESDAY.date()}, "aware datetime"),
    ({"what": "ADJUSTED_LAST", "end": WEDNESDAY}, "end=None"),
    ({"what": "ADJUSTED_LAST", "period": "1w", "duration": "1 Y"}, "up to '1 day'"),
    ({"contract": ibflow.Forex("EURUSD")}, "MIDPOINT"),
    ({"contract": "AAPL"}, "ibflow.Stock('AAPL')"),
    ({"rth": "yes"}, "True or False"),
    ({"timeout": 0}, "positive number"),
    ({"timeout": "5"}, "positive number"),
]


@pytest.mark.parametrize(("kwargs", "says"), INVALID)
async def test_invalid_history_is_refused_before_sending(
    sim: Simulator, session: ibflow.Session, kwargs: dict[str, Any], says: str
) -> None:
    args = {"period": "5m", "duration": "1 D", **kwargs}
    contract = args.pop("contract", AAPL)
    with pytest.raises(ibflow.InvalidRequest) as info:
        await session.history(contract, **args)
    assert says in str(info.value)
    assert sim.request_count("historical_data") == 0
    assert sent(sim) == 0


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"start": datetime(2024, 3, 1)}, "naive"),
        ({"end": datetime(2024, 2, 1, tzinfo=ET)}, "must be after start"),
        ({"end": datetime(2024, 3, 1, tzinfo=ET)}, "must be after start"),
        ({"what": "ADJUSTED_LAST"}, "ADJUSTED_LAST"),
        ({"what": "NOPE"}, "TRADES"),
        ({"period": "1 y"}, '"1d"'),
        ({"concurrency": 0}, "from 1 to 16"),
        ({"concurrency": 17}, "from 1 to 16"),
        ({"cache": 5}, "HistoryCache"),
        ({"on_progress": 3}, "callable"),
        ({"progress": None}, "True or False"),
    ],
)
async def test_invalid_download_is_refused_before_sending(
    sim: Simulator, session: ibflow.Session, kwargs: dict[str, Any], says: str
) -> None:
    args = {"start": datetime(2024, 3, 1, tzinfo=ET), "end": WEDNESDAY, **kwargs}
    with pytest.raises(ibflow.InvalidRequest) as info:
        await session.download(AAPL, **args)
    assert says in str(info.value)
    assert sent(sim) == 0


async def test_invalid_head_timestamp_is_refused_before_sending(
    sim: Simulator, session: ibflow.Session
) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="TRADES"):
        await session.head_timestamp(AAPL, what="EVERYTHING")
    with pytest.raises(ibflow.InvalidRequest, match="MIDPOINT"):
        await session.head_timestamp(ibflow.Forex("EURUSD"), what="TRADES")
    assert sent(sim) == 0


async def test_head_timestamp(session: ibflow.Session) -> None:
    first = await session.head_timestamp(AAPL)
    assert first == datetime(1980, 12, 12, 14, 30, tzinfo=UTC)
    assert first.tzinfo is UTC
    fx = await session.head_timestamp(ibflow.Forex("EURUSD"), what="MIDPOINT")
    assert fx.tzinfo is UTC
    with pytest.raises(ibflow.MarketDataError):
        await session.head_timestamp(AAPL, what="YIELD_BID")


# -- errors are raised, never an empty list ----------------------------------------------------


async def test_pacing_error_from_ib_carries_retry_after(
    sim: Simulator, session: ibflow.Session
) -> None:
    sim.fail_next("historical_data", 162, PACING_TEXT)
    with pytest.raises(ibflow.PacingViolation) as info:
        # Too short to wait the refusal out: the error says when to retry.
        await session.history(AAPL, end=WEDNESDAY, timeout=0.1)
    error = info.value
    assert error.code == 162
    assert error.req_id > 0  # IB's answer to our request
    assert error.retry_after is not None
    assert error.retry_after >= 0.15  # the identical-request window on this time scale
    assert session.pacing_statistics().violations == 1
    # After retry_after the same request goes through.
    await asyncio.sleep(error.retry_after)
    assert await session.history(AAPL, end=WEDNESDAY)


async def test_a_pacing_refusal_is_waited_out_within_the_timeout(
    sim: Simulator, session: ibflow.Session
) -> None:
    """IB refuses for pacing (another program's requests count too): wait, then retry."""
    sim.fail_next("historical_data", 162, PACING_TEXT)
    bars = await session.history(AAPL, end=WEDNESDAY)
    assert bars
    assert sim.request_count("historical_data") == 2
    stats = session.pacing_statistics()
    assert (stats.violations, stats.open_requests) == (1, 0)


async def test_a_pacing_error_says_how_long_to_wait(
    sim: Simulator, session: ibflow.Session
) -> None:
    sim.fail_next("historical_data", 162, PACING_TEXT)
    with pytest.raises(ibflow.PacingViolation, match=r"again in \d+\.\d\d s") as info:
        await session.history(AAPL, end=WEDNESDAY, timeout=0.1)
    assert info.value.retry_after is not None
    assert f"{info.value.retry_after:.2f} s" in str(info.value)
    assert sim.request_count("historical_data") == 1


async def test_ib_errors_raise_their_type(sim: Simulator, session: ibflow.Session) -> None:
    sim.fail_next("historical_data", 354, "Requested market data is not subscribed.")
    with pytest.raises(ibflow.MarketDataError) as info:
        await session.history(AAPL, end=WEDNESDAY)
    assert info.value.code == 354
    with pytest.raises(ibflow.MarketDataError, match="No historical market data"):
        await session.history(AAPL, what="REBATE_RATE", end=WEDNESDAY)
    with pytest.raises(ibflow.ContractNotFound):
        await session.history(ibflow.Stock("ZZZZ"), end=WEDNESDAY)


async def test_a_window_without_data_is_an_empty_answer(session: ibflow.Session) -> None:
    saturday = datetime(2024, 3, 9, 15, 0, tzinfo=ET)
    assert await session.history(AAPL, period="1m", duration="3600 S", end=saturday) == []


async def test_timeout_raises_after_cancelling(sim: Simulator, session: ibflow.Session) -> None:
    sim.ignore("historical_data")
    with pytest.raises(ibflow.RequestTimeout):
        await session.history(AAPL, end=WEDNESDAY, timeout=0.2)
    await eventually(lambda: sim.request_count("cancel_historical_data") == 1)
    assert sim.request_count("historical_data") == 1


async def test_cancellation_under_asyncio_timeout(sim: Simulator, session: ibflow.Session) -> None:
    sim.ignore("historical_data")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await session.history(AAPL, end=WEDNESDAY, timeout=None)
    await eventually(lambda: sim.request_count("cancel_historical_data") == 1)
    # The session is unharmed and no late reply is misrouted to the next request.
    sim.ignore("historical_data", on=False)
    other = await session.history(AAPL, period="1h", duration="1 W", end=WEDNESDAY)
    # Hourly bars (on the hour, or 09:30 at the open), not the 5-minute ones asked before.
    assert {b.time.minute for b in other} == {0, 30}
    assert session.pacing_statistics().open_requests == 0


async def test_task_cancel_sends_the_cancel_once(sim: Simulator, session: ibflow.Session) -> None:
    sim.ignore("historical_data")
    task = asyncio.create_task(session.history(AAPL, end=WEDNESDAY))
    await eventually(lambda: sim.request_count("historical_data") == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: sim.request_count("cancel_historical_data") == 1)
    await asyncio.sleep(0.05)
    assert sim.request_count("cancel_historical_data") == 1


async def test_pacer_holding_past_the_timeout_raises_without_sending(
    sim: Simulator, session: ibflow.Session
) -> None:
    # Real time: 15 s between identical requests, for these 5-minute bars too.
    session.set_pacing(ibflow.PacingRules(small_bars_only=False))
    sim.fail_next("historical_data", 354, "Requested market data is not subscribed.")
    with pytest.raises(ibflow.MarketDataError):
        await session.history(AAPL, end=WEDNESDAY)
    with pytest.raises(ibflow.PacingViolation) as info:
        await session.history(AAPL, end=WEDNESDAY, timeout=1.0)
    assert info.value.req_id == -1  # nothing was sent
    assert info.value.retry_after is not None
    assert 14 < info.value.retry_after <= 15.25
    assert "identical request" in str(info.value)
    assert sim.request_count("historical_data") == 1


# -- the identical-request rule is answered from memory ----------------------------------------


async def test_identical_request_within_15_s_is_answered_from_memory(
    sim: Simulator, session: ibflow.Session
) -> None:
    session.set_pacing(rules(1.0))  # a real 15 s window
    first = await session.history(AAPL, end=WEDNESDAY)
    again = await session.history(AAPL, period="5 mins", duration="1 D", end=WEDNESDAY)
    assert again == first
    assert sim.request_count("historical_data") == 1


async def test_concurrent_identical_requests_share_one(
    sim: Simulator, session: ibflow.Session
) -> None:
    results = await asyncio.gather(*(session.history(AAPL, end=WEDNESDAY) for _ in range(3)))
    assert results[0] == results[1] == results[2]
    assert sim.request_count("historical_data") == 1
    assert sim.request_count("contract_data") == 1  # one lookup per contract and session


async def test_memory_expires_with_the_window(sim: Simulator, session: ibflow.Session) -> None:
    await session.history(AAPL, end=WEDNESDAY)
    await asyncio.sleep(0.25)  # past 15 s / 100 + margin
    await session.history(AAPL, end=WEDNESDAY)
    assert sim.request_count("historical_data") == 2


async def test_many_requests_pace_without_violations(open_session: Opener) -> None:
    sim, session = await open_session()
    ends = [WEDNESDAY - timedelta(minutes=m) for m in range(12)]
    # 30-second bars: IB's burst rule applies to bars of 30 s and smaller.
    await asyncio.gather(
        *(session.history(AAPL, end=e, duration="3600 S", period="30s") for e in ends)
    )
    stats = session.pacing_statistics()
    assert stats.violations == 0
    assert stats.historical_requests == sim.request_count("historical_data") == 12
    assert stats.waits > 0  # the burst rule (5 per contract per 2 s) held some back


def test_public_names_are_exported() -> None:
    for name in (
        "BarSize",
        "DownloadProgress",
        "HistoryCache",
        "PacingRules",
        "PacingStatistics",
        "WhatToShow",
    ):
        assert name in ibflow.__all__
        assert getattr(ibflow, name).__module__ == "ibflow"
    assert ibflow.BarSize("5 mins") is ibflow.BarSize.MINS_5
