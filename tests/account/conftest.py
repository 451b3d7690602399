"""Fixtures for the account and contract tests: a simulator, a Session on it, a raw trader.

Every test drives ``ibflow.Session`` over real loopback TCP against ``ibflow.sim``. Fills are
made by a second, raw ib_async client (``trader``): the order API is a separate feature, and a
fill from another client is exactly what positions and PnL must follow anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import ib_async
import pytest

import ibflow
from ibflow.sim import Scenario, Simulator
from ibflow.testing import SimFactory, session_for

ACCOUNT = "DU1234567"
SECOND = "DU7654321"


@pytest.fixture
def sim(ib_sim: Simulator) -> Simulator:
    return ib_sim


@pytest.fixture
def session(ibflow_session: ibflow.Session) -> ibflow.Session:
    return ibflow_session


def two_accounts() -> Scenario:
    """The default universe with two accounts, each holding something different."""
    return Scenario.from_dict(
        {
            "extends": "default",
            "accounts": [
                {"id": ACCOUNT, "base_currency": "USD", "cash": 1_000_000.0},
                {"id": SECOND, "base_currency": "USD", "cash": 50_000.0},
            ],
            "positions": [
                {"account": ACCOUNT, "con_id": 265598, "quantity": 100, "avg_cost": 180.0},
                {"account": SECOND, "symbol": "SPY", "sec_type": "STK", "quantity": 20,
                 "avg_cost": 500.0},
            ],
        }
    )  # fmt: skip


@pytest.fixture
async def multi_sim(ib_sim_factory: SimFactory) -> Simulator:
    return await ib_sim_factory(scenario=two_accounts())


@pytest.fixture
async def make_session() -> AsyncIterator[Callable[..., ibflow.Session]]:
    """``make_session(sim, **kwargs)``: a Session that is closed when the test ends."""
    made: list[ibflow.Session] = []

    def make(sim: Simulator, **kwargs: Any) -> ibflow.Session:
        s = session_for(sim, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.aclose()


@pytest.fixture
async def trader(sim: Simulator) -> AsyncIterator[ib_async.IB]:
    """A raw ib_async client (client id 9) that places orders on the simulator."""
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=9, timeout=5)
    try:
        yield ib
    finally:
        ib.disconnect()


async def buy(ib: ib_async.IB, con_id: int, quantity: float, account: str = "") -> ib_async.Trade:
    """Place a market buy through raw ib_async and wait until it is filled."""
    order = ib_async.MarketOrder("BUY", quantity, account=account)
    trade = ib.placeOrder(ib_async.Contract(conId=con_id, exchange="SMART"), order)
    async with asyncio.timeout(5):
        while not trade.isDone():
            await asyncio.sleep(0.005)
    assert trade.orderStatus.status == "Filled", trade.log
    return trade
