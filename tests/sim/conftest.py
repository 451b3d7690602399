"""Fixtures for the simulator's end-to-end tests: real ib_async over loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import ib_async
import pytest

from ibflow.sim import Simulator


@pytest.fixture
async def ib(ib_sim: Simulator) -> AsyncIterator[ib_async.IB]:
    """An ib_async client connected to ``ib_sim`` as client id 1."""
    client = ib_async.IB()
    await client.connectAsync(ib_sim.host, ib_sim.port, clientId=1, timeout=5)
    try:
        yield client
    finally:
        client.disconnect()
