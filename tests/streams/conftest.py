"""Shared fixtures for the stream tests: a fast simulator and a session on it.

Every test drives real ib_async over loopback TCP against ``ibflow.sim`` through the public
``ibflow.Session``. The simulator runs at ``speed=100`` (quotes every 10 ms); bar tests that need
market time to pass use ``helpers.fast_clock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import ibflow
from ibflow._config import ENV_NAMES
from ibflow.sim import Simulator

from .helpers import session_for


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
    async with session_for(sim) as s:
        yield s
