"""Shared fixtures for the history tests: a simulator, a paced session on the same time scale,
and the test's private cache directory.

The simulator enforces IB's pacing rules with every window divided by ``speed``; each session
made here gets ``PacingRules(time_scale=speed)``, so the pacer and the simulator agree on what
"15 seconds" and "10 minutes" mean and the tests never wait in real time (``helpers.rules``
explains the margin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import ibflow
from ibflow.sim import Simulator

from .helpers import SPEED, Opener, rules


@pytest.fixture
def cache_dir(clean_ib_env: Path) -> Path:
    """Where the default cache lives in this test (``IBFLOW_CACHE_DIR``)."""
    return clean_ib_env


@pytest.fixture
async def open_session() -> AsyncIterator[Opener]:
    """``await open_session(speed=..., **session_kwargs)``: a started simulator and a READY
    session aimed at it, paced on the simulator's time scale; all closed after the test."""
    opened: list[tuple[Simulator, ibflow.Session]] = []

    async def open_(speed: float = SPEED, **kwargs: Any) -> tuple[Simulator, ibflow.Session]:
        sim = Simulator(port=0, speed=speed)
        await sim.start()
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("heartbeat_interval", None)
        session = ibflow.Session(sim.host, sim.port, client_id=1, **kwargs)
        opened.append((sim, session))
        await session.connect()
        session.set_pacing(rules(speed))
        return sim, session

    yield open_
    for sim, session in reversed(opened):
        await session.aclose()
        await sim.aclose()


@pytest.fixture
async def sim_session(open_session: Opener) -> tuple[Simulator, ibflow.Session]:
    return await open_session()


@pytest.fixture
def sim(sim_session: tuple[Simulator, ibflow.Session]) -> Simulator:
    return sim_session[0]


@pytest.fixture
def session(sim_session: tuple[Simulator, ibflow.Session]) -> ibflow.Session:
    return sim_session[1]
