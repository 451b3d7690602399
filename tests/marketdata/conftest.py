"""Market-data tests: a simulator whose clock starts on a fixed market day, and a session on it.

The clock starts at a Tuesday 10:00 New York and runs with the wall clock, so the default
scenario's option expiries stay in the future and its market is open whenever the tests run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import SimFactory, session_for

TUESDAY = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def clock_from(when: datetime) -> Callable[[], float]:
    base, started = when.timestamp(), time.time()
    return lambda: base + time.time() - started


@pytest.fixture
async def sim(ib_sim_factory: SimFactory) -> Simulator:
    return await ib_sim_factory(clock=clock_from(TUESDAY))


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ibflow.Session]:
    async with session_for(sim) as s:
        yield s
