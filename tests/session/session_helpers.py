"""Helpers for the Session tests (imported by the test modules and by conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ibflow
from ibflow.sim import Simulator

# Short, so reconnect tests spend milliseconds waiting, not seconds.
FAST_RECONNECT = ibflow.ReconnectPolicy(initial=0.02, maximum=0.1)


def session_for(sim: Simulator, **kwargs: Any) -> ibflow.Session:
    """A session aimed at ``sim`` with test-friendly defaults (short timeouts, no heartbeat)."""
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("heartbeat_interval", None)
    kwargs.setdefault("reconnect", FAST_RECONNECT)
    return ibflow.Session(sim.host, sim.port, **kwargs)


async def eventually(predicate: Callable[[], object], timeout: float = 3.0) -> None:
    """Wait until ``predicate()`` is truthy (fails the test with TimeoutError otherwise)."""
    async with asyncio.timeout(timeout):
        # Polling on purpose: the predicates read simulator state that has no event to await.
        while not predicate():
            await asyncio.sleep(0.005)


async def states_until(
    feed: ibflow.Stream[ibflow.StateChange], target: ibflow.ConnectionState, timeout: float = 5.0
) -> list[ibflow.StateChange]:
    """Collect state changes from ``feed`` up to and including the first one into ``target``."""
    seen: list[ibflow.StateChange] = []
    async with asyncio.timeout(timeout):
        async for change in feed:
            seen.append(change)
            if change.current is target:
                return seen
    return seen
