"""ib_async's own log lines do not reach the user: ibflow reports each problem once.

One subprocess, as a user's script runs, asks for an unknown contract three times: with no
logging configured (Python's last-resort handler would print ib_async's errors), then with
``ibflow.configure_logging`` at WARNING, then at DEBUG, where ib_async's records appear once,
at DEBUG, under ``ibflow.ib_async``. A marker on stderr separates the phases.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import asyncio, sys
import ibflow
from ibflow.sim import Simulator

async def unknown_contract(sim: Simulator) -> None:
    async with ibflow.Session(sim.host, sim.port, 1, timeout=5) as session:
        try:
            await session.qualify(ibflow.Stock("NOSUCH"))
        except ibflow.ContractNotFound as exc:
            print("raised", type(exc).__name__, exc.code, flush=True)

async def main() -> None:
    async with Simulator(port=0) as sim:
        for level in (None, "WARNING", "DEBUG"):
            if level is not None:
                ibflow.configure_logging(level)
            print(f"--- {level}", file=sys.stderr, flush=True)
            await unknown_contract(sim)

asyncio.run(main())
"""


def test_error_200_is_the_typed_error_and_ib_async_speaks_only_at_debug() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "raised ContractNotFound 200\n" * 3
    _, plain, warning, debug = result.stderr.split("--- ")
    assert plain == "None\n"
    assert warning == "WARNING\n"
    routed = [line for line in debug.splitlines() if "Error 200" in line]
    assert len(routed) == 1, debug
    assert " DEBUG ibflow.ib_async: Error 200, reqId " in routed[0]
    assert all(" ibflow." in line for line in debug.splitlines()[1:]), debug
