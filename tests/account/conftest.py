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
from ibflow._config import ENV_NAMES
from ibflow.sim import Scenario, Simulator

ACCOUNT = "DU1234567"
SECOND = "DU7654321"


@pytest.fixture(autouse=True)
def _clean_ib_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for names in ENV_NAMES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, speed=100) as simulator:
        yield simulator


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ibflow.Session]:
    async with ibflow.Session(
        sim.host, sim.port, client_id=1, timeout=5, heartbeat_interval=None
    ) as s:
        yield s


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
async def multi_sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, speed=100, scenario=two_accounts()) as simulator:
        yield simulator


@pytest.fixture
async def make_session() -> AsyncIterator[Callable[..., ibflow.Session]]:
    """``make_session(sim, **kwargs)``: a Session that is closed when the test ends."""
    made: list[ibflow.Session] = []

    def make(sim: Simulator, **kwargs: Any) -> ibflow.Session:
        kwargs.setdefault("client_id", 1)
        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("heartbeat_interval", None)
        s = ibflow.Session(sim.host, sim.port, **kwargs)
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


async def eventually(predicate: Callable[[], object], timeout: float = 3.0) -> None:
    """Wait until ``predicate()`` is truthy (the simulator has no event to await for it)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
