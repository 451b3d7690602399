"""Shared fixtures for the stream tests: a fast simulator and a session on it.

Every test drives real ib_async over loopback TCP against ``ibflow.sim`` through the public
``ibflow.Session``. The simulator runs at ``speed=100`` (quotes every 10 ms); bar tests that need
market time to pass use ``helpers.fast_clock``.
"""

from __future__ import annotations

import pytest

import ibflow
from ibflow.sim import Simulator


@pytest.fixture
def sim(ib_sim: Simulator) -> Simulator:
    return ib_sim


@pytest.fixture
def session(ibflow_session: ibflow.Session) -> ibflow.Session:
    return ibflow_session
