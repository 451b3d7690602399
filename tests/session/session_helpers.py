"""Helpers for the Session tests (imported by the test modules and by conftest)."""

from __future__ import annotations

import asyncio

import ibflow


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
