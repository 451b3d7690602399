"""Fixtures for the fast receive path tests: the receive path chosen per test.

The fast path is chosen when an adapter is built, from ``IBFLOW_FAST_RECEIVE``; the
``fast_receive`` fixture sets it either way so one test body runs with and without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from ibflow._ib._fastpath import ENV_VAR
from ibflow.sim import Scenario, Simulator


@pytest.fixture(autouse=True)
def _default_receive_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite's clean environment keeps this run-wide switch; these tests choose per test.
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(params=[True, False], ids=["fast", "ib_async"])
def fast_receive(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    on = bool(request.param)
    monkeypatch.setenv(ENV_VAR, "1" if on else "0")
    return on


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    # A still market: only the quotes a test pushes or bursts flow, so it can predict them.
    quiet = dataclasses.replace(Scenario.default(), tick_interval=1e6)
    async with Simulator(port=0, speed=100, scenario=quiet) as simulator:
        simulator.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        yield simulator
