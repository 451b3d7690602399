"""Shared fixtures for the Session tests: a fresh simulator per test and a clean environment.

Every integration test drives real ib_async over loopback TCP against ``ibflow.sim``; the
environment variables the session reads are cleared so a developer's own ``IB_PORT`` cannot
leak into a test, and every session a test makes through ``make_session`` is closed after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from session_helpers import session_for

import ibflow
from ibflow._config import ENV_NAMES
from ibflow.sim import Simulator


@pytest.fixture(autouse=True)
def _clean_ib_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for names in ENV_NAMES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)


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
        session = session_for(sim, **kwargs)
        made.append(session)
        return session

    yield make
    for session in made:
        await session.aclose()
