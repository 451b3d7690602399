"""Shared fixtures for the Session tests: a fresh simulator per test and sessions on it.

Every integration test drives real ib_async over loopback TCP against ``ibflow.sim``; every
session a test makes through ``make_session`` is closed after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import session_for

# The Session tests exercise automatic client ids and time out in 2 s stages.
SESSION_DEFAULTS: dict[str, Any] = {"client_id": None, "timeout": 2.0}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as simulator:
        yield simulator


@pytest.fixture
async def make_session(
    sim: Simulator,
) -> AsyncIterator[Callable[..., ibflow.Session]]:
    """``make_session(**kwargs)``: a Session aimed at ``sim``, closed when the test ends."""
    made: list[ibflow.Session] = []

    def make(**kwargs: Any) -> ibflow.Session:
        session = session_for(sim, **(SESSION_DEFAULTS | kwargs))
        made.append(session)
        return session

    yield make
    for session in made:
        await session.aclose()
