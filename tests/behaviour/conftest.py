"""One API, two implementations: each behaviour test runs on a ``Session`` connected to the
simulator, and on a ``RemoteSession`` through a hub (a real ``nats-server``) serving a
``Session`` on the same kind of simulator. The assertions are the same."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import ibflow
from ibflow.hub import Hub, RemoteSession
from ibflow.sim import Simulator
from ibflow.testing import SimFactory, session_for

from ..hub.conftest import nats_url  # noqa: F401 - one nats-server for the run

_names = itertools.count(1)


@pytest.fixture
def sim_options() -> dict[str, Any]:
    """The simulator's arguments; a module overrides it (orders run at normal speed)."""
    return {}


@pytest.fixture
async def sim(ib_sim_factory: SimFactory, sim_options: dict[str, Any]) -> Simulator:
    simulator = await ib_sim_factory(**sim_options)
    simulator.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    return simulator


@pytest.fixture(params=["session", "remote"])
async def api(
    request: pytest.FixtureRequest,
    sim: Simulator,
    nats_url: str,  # noqa: F811
) -> AsyncIterator[ibflow.SessionLike]:
    """A READY ``Session`` on ``sim``, or a ``RemoteSession`` through a hub serving one."""
    async with session_for(sim) as session:
        if request.param == "session":
            yield session
            return
        name = f"b{next(_names)}-{int(time.time() * 1000) % 10**8}"
        async with (
            Hub(session, nats_url, name=name) as _hub,
            RemoteSession(nats_url, hub=name, name="behaviour") as remote,
        ):
            yield remote
