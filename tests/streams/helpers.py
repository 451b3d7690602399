"""Helpers for the stream tests (imported by the test modules and by conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ibflow
from ibflow.sim import Simulator

FAST_RECONNECT = ibflow.ReconnectPolicy(initial=0.02, maximum=0.1)
AAPL = ibflow.Stock("AAPL")
MSFT = ibflow.Stock("MSFT")
SPY = ibflow.Stock("SPY")

# Wednesday 2027-01-13 15:00 UTC: US stocks are trading (10:00 New York).
MARKET_START = datetime(2027, 1, 13, 15, 0, tzinfo=UTC).timestamp()


def fast_clock(factor: float = 120.0, start: float = MARKET_START) -> Callable[[], float]:
    """A market clock starting at ``start`` and running ``factor`` times faster than real time."""
    origin = time.monotonic()
    return lambda: start + (time.monotonic() - origin) * factor


def session_for(sim: Simulator, **kwargs: Any) -> ibflow.Session:
    """A session aimed at ``sim`` with test-friendly defaults (short timeouts, no heartbeat)."""
    kwargs.setdefault("client_id", 1)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("heartbeat_interval", None)
    kwargs.setdefault("reconnect", FAST_RECONNECT)
    return ibflow.Session(host=sim.host, port=sim.port, **kwargs)


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is truthy (fails the test with TimeoutError otherwise)."""
    async with asyncio.timeout(timeout):
        # Polling on purpose: the predicates read simulator state that has no event to await.
        while not predicate():
            await asyncio.sleep(0.005)


def lines(sim: Simulator, kind: str = "mkt_data") -> int:
    """How many subscriptions of ``kind`` the simulator holds for all clients."""
    return sim.subscriptions().get(kind, 0)
