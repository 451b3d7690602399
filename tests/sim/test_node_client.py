"""A Node client written by others (@stoqey/ib) works against the simulator unchanged.

The package is installed from the npm registry into a temporary folder (pinned version); the
test is skipped where Node.js or npm is missing, and fails if npm cannot install it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ibflow.sim import Simulator

CLIENT = Path(__file__).parent / "clients" / "stoqey_client.js"
PACKAGE = "@stoqey/ib@1.6.10"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stoqey")
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder), PACKAGE],
        check=True,
        timeout=180,
    )
    return folder / "node_modules"


async def test_stoqey_ib_reads_quotes_and_trades_against_the_simulator(
    node_modules: Path, ib_sim: Simulator
) -> None:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(CLIENT),
        str(ib_sim.port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out)
    assert seen["errors"] == []
    assert seen["serverVersion"] == 178
    assert seen["details"] >= 1
    assert seen["positions"] >= 1
    assert seen["prices"] >= 1
    assert seen["filled"] == 3
    assert [o.total_quantity for o in ib_sim.orders] == [3]
