"""Timeouts, cancellation, late answers and closed sessions for the account reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import ib_async
import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL_ID = 265598


async def test_ignored_positions_time_out_and_the_session_stays_usable(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.ignore("positions")
    with pytest.raises(ibflow.RequestTimeout, match="positions"):
        await session.positions(timeout=0.2)
    assert isinstance(await session.account_summary(), ibflow.AccountSummary)
    assert (await session.qualify(ibflow.Stock("AAPL")))[0].con_id == AAPL_ID
    sim.ignore("positions", on=False)
    # The dropped request's answer never comes; the next read gives up waiting for it.
    assert {p.contract.symbol for p in await session.positions(timeout=1)} >= {"AAPL"}
    assert session.state is ibflow.ConnectionState.READY


@pytest.mark.parametrize(
    ("kind", "call"),
    [
        ("pnl", lambda s: s.pnl()),
        ("account_summary", lambda s: s.account_summary()),
        ("account_updates_multi", lambda s: s.account_values()),
    ],
)
async def test_a_timed_out_subscription_is_cancelled_once(
    sim: Simulator,
    make_session: Callable[..., ibflow.Session],
    kind: str,
    call: Callable[[ibflow.Session], Awaitable[Any]],
) -> None:
    async with make_session(sim, timeout=0.3) as s:  # the session default applies
        sim.ignore(kind)
        before = sim.request_count(f"cancel_{kind}")
        with pytest.raises(ibflow.RequestTimeout):
            await call(s)
        await eventually(lambda: sim.request_count(f"cancel_{kind}") == before + 1)
        sim.ignore(kind, on=False)
        await call(s)  # usable again; the one-off subscription is cancelled after the answer
        await eventually(lambda: sim.request_count(f"cancel_{kind}") == before + 2)


async def test_cancelled_under_asyncio_timeout(session: ibflow.Session, sim: Simulator) -> None:
    sim.ignore("pnl")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await session.pnl(timeout=None)
    await eventually(lambda: sim.request_count("cancel_pnl") == 1)
    sim.ignore("contract_data")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await session.qualify(ibflow.Stock("AAPL"))
    sim.ignore("contract_data", on=False)
    sim.ignore("pnl", on=False)
    # The lookup lock was released and a late answer cannot reach the next caller.
    [msft] = await session.qualify(ibflow.Stock("MSFT"))
    assert msft.con_id == 272093
    assert (await session.pnl()).account == "DU1234567"


async def test_task_cancellation_leaves_no_waiter_behind(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.ignore("positions")
    task = asyncio.create_task(session.positions())
    await eventually(lambda: sim.request_count("positions") >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sim.ignore("positions", on=False)
    assert await session.positions(timeout=1)


async def test_a_late_positions_answer_is_not_taken_for_the_next_one(
    session: ibflow.Session, sim: Simulator, trader: ib_async.IB
) -> None:
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    sim.delay(0.3)  # every frame late, still in order, as from a slow TWS
    with pytest.raises(ibflow.RequestTimeout):
        await session.positions(timeout=0.1)
    # The fill happens at once in the sim; the stale answer (AAPL 100) is still on its way.
    trader.placeOrder(
        ib_async.Contract(conId=AAPL_ID, exchange="SMART"), ib_async.MarketOrder("BUY", 10)
    )
    await eventually(lambda: any(f.instrument.con_id == AAPL_ID for f in sim.fills))
    positions = {p.contract.con_id: p.quantity for p in await session.positions(timeout=3)}
    assert positions[AAPL_ID] == 110


async def test_a_late_portfolio_answer_is_not_taken_for_the_next_one(
    session: ibflow.Session, sim: Simulator, trader: ib_async.IB
) -> None:
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    sim.delay(0.3)
    with pytest.raises(ibflow.RequestTimeout):
        await session.portfolio(timeout=0.1)
    trader.placeOrder(
        ib_async.Contract(conId=AAPL_ID, exchange="SMART"), ib_async.MarketOrder("BUY", 10)
    )
    await eventually(lambda: any(f.instrument.con_id == AAPL_ID for f in sim.fills))
    items = {i.contract.con_id: i.quantity for i in await session.portfolio(timeout=3)}
    assert items[AAPL_ID] == 110


async def test_current_time_survives_a_dropped_request(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.ignore("current_time")
    with pytest.raises(ibflow.RequestTimeout):
        await session.current_time(timeout=0.1)
    sim.ignore("current_time", on=False)
    assert (await session.current_time(timeout=1)).tzinfo is not None


async def test_closed_session_raises(sim: Simulator) -> None:
    s = ibflow.Session(sim.host, sim.port, client_id=3, timeout=5, heartbeat_interval=None)
    with pytest.raises(ibflow.SessionClosedError):
        await s.positions()
    async with s:
        pass
    for call in (s.positions, s.account_summary, s.pnl, s.current_time):
        with pytest.raises(ibflow.SessionClosedError):
            await call()
    with pytest.raises(ibflow.SessionClosedError):
        await s.qualify(ibflow.Stock("AAPL"))


async def test_link_loss_fails_the_call_with_connection_lost(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.ignore("positions")
    task = asyncio.create_task(session.positions(timeout=5))
    await eventually(lambda: sim.request_count("positions") >= 2)
    sim.drop_connections()
    with pytest.raises(ibflow.ConnectionLost):
        await task
