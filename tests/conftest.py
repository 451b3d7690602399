"""The suite uses ibflow's own test kit (``ibflow.testing``, loaded as a pytest plugin).

Every test runs with a clean environment: no ``IBFLOW_*``/``IB_*``/``TWS_*`` setting from the
developer's shell can aim a session elsewhere, and no test shares a history cache.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # A shell's background job starts with Ctrl-C ignored, and child processes inherit that:
    # the tests that press Ctrl-C on a command need it as a terminal delivers it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _clean_env(clean_ib_env: Path) -> Path:
    return clean_ib_env
