"""The new requests under timeouts and task cancellation: IB's cancel goes out, late answers
are ignored, and the session keeps working."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def test_a_scan_that_times_out_is_cancelled_at_tws(
    session: ibflow.Session, sim: Simulator
) -> None:
    sub = ibflow.ScannerSubscription(code="MOST_ACTIVE", rows=5)
    sim.stall()
    with pytest.raises(ibflow.RequestTimeout):
        await session.scan(sub, timeout=0.3)
    sim.stall(on=False)  # the late answer arrives now, for a request nobody waits on
    await eventually(lambda: sim.request_count("cancel_scanner_subscription") == 1)
    assert "scanner_subscription" not in sim.subscriptions()
    assert await session.scan(sub)


async def test_a_cancelled_calculation_is_cancelled_at_tws(
    session: ibflow.Session, sim: Simulator
) -> None:
    [call] = await session.qualify(ibflow.Option("AAPL", "20270115", 230, "C"))
    sim.stall()
    task = asyncio.create_task(session.option_price(call, 0.3, 230.0))
    await eventually(lambda: sim.request_count("calc_option_price") == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sim.stall(on=False)
    await eventually(lambda: sim.request_count("cancel_calc_option_price") == 1)
    priced = await session.option_price(call, 0.3, 230.0)
    assert priced.implied_vol == 0.3


async def test_historical_ticks_under_asyncio_timeout(
    session: ibflow.Session, sim: Simulator
) -> None:
    aapl = ibflow.Stock("AAPL")
    await session.qualify(aapl)
    sim.stall()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await session.historical_ticks(aapl, start=START, count=100)
    sim.stall(on=False)
    ticks = await session.historical_ticks(aapl, start=START, count=100, what="MIDPOINT")
    assert len(ticks) == 100
    assert all(isinstance(t, ibflow.MidpointTick) for t in ticks)
