"""Fixtures for the order tests: a simulator, a connected session, and a clean environment.

Every test drives real ib_async over loopback TCP against ``ibflow.sim`` through the public
``ibflow.Session``. The simulator runs at normal speed: its market random-walks every
instrument with a working order, and a faster clock would only make those walks reach resting
test orders sooner. Quotes are pinned with ``sim.push_quote`` and resting prices sit well away
from them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import session_for

AAPL = ibflow.Stock("AAPL")


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


def sim_order(sim: Simulator, order_id: int, client_id: int = 1) -> Any:
    """The simulator's record of one order."""
    return next(o for o in sim.orders if o.order_id == order_id and o.client_id == client_id)


def journal_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """The rows ``sql`` selects from the order journal at ``path``, read as another process."""
    with sqlite3.connect(path) as db:
        return list(db.execute(sql))
