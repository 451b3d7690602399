"""Helpers for the stream tests (imported by the test modules and by conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import ibflow
from ibflow.sim import Simulator

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
