"""The suite uses ibflow's own test kit (``ibflow.testing``, loaded as a pytest plugin).

Every test runs with a clean environment: no ``IBFLOW_*``/``IB_*``/``TWS_*`` setting from the
developer's shell can aim a session elsewhere, and no test shares a history cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_env(clean_ib_env: Path) -> Path:
    return clean_ib_env
