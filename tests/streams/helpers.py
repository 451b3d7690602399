"""Helpers for the stream tests (imported by the test modules and by conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = ibflow.Stock("AAPL")
MSFT = ibflow.Stock("MSFT")
SPY = ibflow.Stock("SPY")

# Wednesday 2027-01-13 15:00 UTC: US stocks are trading (10:00 New York).
MARKET_START = datetime(2027, 1, 13, 15, 0, tzinfo=UTC).timestamp()


def fast_clock(factor: float = 120.0, start: float = MARKET_START) -> Callable[[], float]:
    """A market clock starting at ``start`` and running ``factor`` times faster than real time."""
    origin = time.monotonic()
    return lambda: start + (time.monotonic() - origin) * factor


def lines(sim: Simulator, kind: str = "mkt_data") -> int:
    """How many subscriptions of ``kind`` the simulator holds for all clients."""
    return sim.subscriptions().get(kind, 0)


class Collector:
    """Reads a stream in the background into ``items``."""

    def __init__(self, stream: ibflow.Stream[Any]) -> None:
        self.stream = stream
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.stream:
                self.items.append(item)
        except Exception as exc:
            self.error = exc

    def gaps(self) -> list[ibflow.Gap]:
        return [i for i in self.items if isinstance(i, ibflow.Gap)]

    def after_gap(self) -> list[Any]:
        for n, item in enumerate(self.items):
            if isinstance(item, ibflow.Gap):
                return self.items[n + 1 :]
        return []

    def before_gap(self) -> list[Any]:
        for n, item in enumerate(self.items):
            if isinstance(item, ibflow.Gap):
                return self.items[:n]
        return list(self.items)

    async def wait(self, predicate: Callable[[Collector], object]) -> None:
        await eventually(lambda: predicate(self) or self.error, timeout=10)
        assert self.error is None, self.error

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
