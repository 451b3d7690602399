"""The ``ibflow sim`` command, run as a user runs it: a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import ib_async
import pytest

IBFLOW = [sys.executable, "-c", "from ibflow.cli import main; main()"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IBFLOW, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        ("sim", "--port", "abc"),
        ("sim", "--bogus"),
        ("sim", "--speed", "0"),
        ("sim", "--scenario", "/no/such/scenario.toml"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ibflow: error: ")
    assert "Traceback" not in result.stderr


def test_bad_scenario_file_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "default"\n[[accounts]]\nid = "DU1"\ncash = "lots"\n')
    result = run("sim", "--scenario", str(bad))
    assert result.returncode == 2
    assert "bad.toml" in result.stderr
    assert "cash" in result.stderr


async def test_sim_serves_ib_async_until_interrupted() -> None:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "sim",
        "--port",
        "0",
        "--seed",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            banner = (await proc.stdout.readline()).decode()
        assert "TWS API on 127.0.0.1:" in banner
        port = int(banner.split("127.0.0.1:")[1].split()[0])
        ib = ib_async.IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
        assert ib.managedAccounts() == ["DU1234567"]
        ib.disconnect()
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
        assert proc.returncode == 0
        assert b"Traceback" not in err
        assert b"client" in err  # connections are logged readably
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
