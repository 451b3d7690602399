"""Pytest fixtures for testing your own trading code against ``ibflow.sim``.

Installed as a pytest plugin (entry point ``ibflow``), so with ibflow and pytest-asyncio
installed these fixtures are simply there:

    async def test_my_bot(ib_sim):
        ib = ib_async.IB()
        await ib.connectAsync(ib_sim.host, ib_sim.port, clientId=1)
        ...

``ib_sim`` is a fresh simulator on a free loopback port for each test (default scenario,
seed 0, limits time-scaled 100x so pacing rules cost milliseconds). ``ib_sim_factory`` starts
more, with your own arguments; all are shut down when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .sim import Simulator

SimFactory = Callable[..., Awaitable[Simulator]]

DEFAULT_TEST_SPEED = 100.0

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixtures need pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def ib_sim_factory() -> AsyncIterator[SimFactory]:
        """Start simulators on demand: ``sim = await ib_sim_factory(readonly=True)``."""
        started: list[Simulator] = []

        async def start(**kwargs: Any) -> Simulator:
            kwargs.setdefault("port", 0)
            kwargs.setdefault("speed", DEFAULT_TEST_SPEED)
            sim = Simulator(**kwargs)
            await sim.start()
            started.append(sim)
            return sim

        try:
            yield start
        finally:
            for sim in reversed(started):
                await sim.aclose()

    @pytest_asyncio.fixture
    async def ib_sim(ib_sim_factory: SimFactory) -> Simulator:
        """A running simulator on 127.0.0.1 with a free port: use ``.host`` and ``.port``."""
        return await ib_sim_factory()
