"""Constants and helpers for the history tests (imported by conftest and the test modules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibflow
from ibflow.sim import Simulator

ET = ZoneInfo("America/New_York")
AAPL = ibflow.Stock("AAPL")
# A Wednesday afternoon in New York: intraday windows ending here end inside a session.
WEDNESDAY = datetime(2024, 3, 6, 15, 0, tzinfo=ET)
SPEED = 100.0  # the default simulator speed in these tests
FAST = 1000.0  # for the long download
PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)

Opener = Callable[..., Awaitable[tuple[Simulator, ibflow.Session]]]


def rules(speed: float, **kwargs: Any) -> ibflow.PacingRules:
    """Pacing rules on the simulator's time scale.

    The margin covers the delay between the pacer admitting a request and the simulator
    reading it: client and simulator share one event loop here, and a busy loop (bar
    generation, parsing, a GC pass) delays the read by up to ~30 ms. On a real network the
    default margin (0.25 s) plays that role against windows a thousand times longer.
    """
    kwargs.setdefault("margin", 0.05)
    return ibflow.PacingRules(time_scale=speed, **kwargs)
