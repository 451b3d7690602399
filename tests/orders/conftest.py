"""Fixtures for the order tests: a simulator, a connected session, and a clean environment.

Every test drives real ib_async over loopback TCP against ``ibflow.sim`` through the public
``ibflow.Session``. The simulator runs at normal speed: its market random-walks every
instrument with a working order, and a faster clock would only make those walks reach resting
test orders sooner. Quotes are pinned with ``sim.push_quote`` and resting prices sit well away
from them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import ibflow
from ibflow._config import ENV_NAMES
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")
# Short, so reconnect tests spend milliseconds waiting, not seconds.
FAST_RECONNECT = ibflow.ReconnectPolicy(initial=0.05, maximum=0.2)


@pytest.fixture(autouse=True)
def _clean_ib_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for names in ENV_NAMES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)


def session_for(sim: Simulator, **kwargs: Any) -> ibflow.Session:
    """A session aimed at ``sim`` with test-friendly defaults."""
    kwargs.setdefault("client_id", 1)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("heartbeat_interval", None)
    kwargs.setdefault("reconnect", FAST_RECONNECT)
    return ibflow.Session(sim.host, sim.port, **kwargs)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as simulator:
        simulator.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        yield simulator


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ibflow.Session]:
    async with session_for(sim) as connected:
        yield connected


@pytest.fixture
async def make_session(sim: Simulator) -> AsyncIterator[Callable[..., ibflow.Session]]:
    """``make_session(**kwargs)``: a Session aimed at ``sim``, closed when the test ends."""
    made: list[ibflow.Session] = []

    def make(**kwargs: Any) -> ibflow.Session:
        created = session_for(sim, **kwargs)
        made.append(created)
        return created

    yield make
    for created in made:
        await created.aclose()


async def eventually(predicate: Callable[[], object], timeout: float = 3.0) -> None:
    """Wait until ``predicate()`` is truthy (fails the test with TimeoutError otherwise)."""
    async with asyncio.timeout(timeout):
        # Polling on purpose: the predicates read simulator state that has no event to await.
        while not predicate():
            await asyncio.sleep(0.005)


def sim_order(sim: Simulator, order_id: int, client_id: int = 1) -> Any:
    """The simulator's record of one order."""
    return next(o for o in sim.orders if o.order_id == order_id and o.client_id == client_id)
