"""``ibflow bridge`` and ``examples/bridge_client.py``, run as a user runs them: subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from ibflow.sim import Simulator

IBFLOW = [sys.executable, "-c", "from ibflow.cli import main; main()"]
EXAMPLE = Path(__file__).parents[2] / "examples" / "bridge_client.py"


async def test_the_example_client_reads_and_orders_once(base_url: str, sim: Simulator) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "accounts ['DU1234567']" in text
    assert re.search(r"AAPL\s+100 @ 180.00", text)
    assert re.search(r"order \d+: Filled, 10 filled @ \d", text)
    assert "replayed=true" in text
    assert sim.request_count("place_order") == 1


async def test_bridge_sim_serves_until_interrupted() -> None:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "bridge",
        "--sim",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            banner = (await proc.stdout.readline()).decode()
            assert "connected to the embedded simulator" in banner
            url = None
            while url is None:
                line = (await proc.stderr.readline()).decode()
                assert line, "the bridge exited before serving"
                found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
                url = found.group(1) if found else None
        async with httpx.AsyncClient(base_url=url + "/api/v1") as client:
            health = (await client.get("/health")).json()
            assert (health["state"], health["accounts"]) == ("ready", ["DU1234567"])
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_bridge_without_a_tws_is_one_line_and_exit_1() -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [*IBFLOW, "bridge", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IBFLOW_PORT": str(port)},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"ibflow: error: nothing is listening on 127.0.0.1:{port}")


def test_bridge_bad_flags_are_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [*IBFLOW, "bridge", "--port", "abc"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("ibflow: error: ")
    assert "Traceback" not in result.stderr


async def test_bridge_reads_the_tws_bridge_servers_environment(sim: Simulator) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBFLOW_", "IB_", "TWS_"))}
    env |= {"TWS_PORT": str(sim.port), "TWS_CLIENT_ID": "12", "PORT": "0"}
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "bridge",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            banner = (await proc.stdout.readline()).decode()
            url = None
            while url is None:
                line = (await proc.stderr.readline()).decode()
                assert line, "the bridge exited before serving"
                found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
                url = found.group(1) if found else None
        # The banner names the variables that supplied the settings, and only those.
        assert f"127.0.0.1:{sim.port} (from TWS_PORT, TWS_CLIENT_ID)" in banner
        assert "IBFLOW_" not in banner
        assert "as client 12" in banner
        async with httpx.AsyncClient(base_url=url + "/api/v1") as client:
            health = (await client.get("/health")).json()
        assert (health["tws_port"], health["client_id"]) == (sim.port, 12)
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            await proc.communicate()
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_a_bad_log_level_is_one_line_and_exit_1() -> None:
    result = subprocess.run(
        [*IBFLOW, "bridge", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LOG_LEVEL": "LOUD"},
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ibflow: error: LOG_LEVEL must be one of")
