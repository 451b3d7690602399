"""ib_async's own log lines do not reach the user: ibflow reports each problem once.

Run in subprocesses, as a user's script runs: with no logging configured (Python's last-resort
handler would print ib_async's errors), and with ``ibflow.configure_logging`` at WARNING and
at DEBUG, where ib_async's records appear once, at DEBUG, under ``ibflow.ib_async``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import asyncio, sys
import ibflow
from ibflow.sim import Simulator

async def main() -> None:
    async with Simulator(port=0) as sim:
        async with ibflow.Session(sim.host, sim.port, 1, timeout=5) as session:
            try:
                await session.qualify(ibflow.Stock("NOSUCH"))
            except ibflow.ContractNotFound as exc:
                print("raised", type(exc).__name__, exc.code)

if len(sys.argv) > 1:
    ibflow.configure_logging(sys.argv[1])
asyncio.run(main())
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "raised ContractNotFound 200\n"
    return result


@pytest.mark.parametrize("level", [None, "WARNING"])
def test_error_200_is_the_typed_error_only(level: str | None) -> None:
    result = run(*([level] if level else []))
    assert "Error 200" not in result.stderr
    assert "ib_async" not in result.stderr
    assert result.stderr == ""


def test_at_debug_ib_async_speaks_once_under_ibflow() -> None:
    lines = run("DEBUG").stderr.splitlines()
    routed = [line for line in lines if "Error 200" in line]
    assert len(routed) == 1, routed
    assert " DEBUG ibflow.ib_async: Error 200, reqId " in routed[0]
