"""Live quotes and Ctrl-C, as a user runs them: the live quote table rides a gateway restart
and ends cleanly on Ctrl-C (exit 0); anywhere else a command says ``ibflow: interrupted`` and
exits 130, without a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

from ibflow.sim import Simulator

from .conftest import IBFLOW

ENV = {**os.environ, "COLUMNS": "120"}


async def test_live_quotes_stream_until_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "--sim",
        "--json",
        "quote",
        "AAPL",
        "MSFT",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None
    try:
        seen: set[str] = set()
        async with asyncio.timeout(30):
            while seen != {"AAPL", "MSFT"}:
                quote = json.loads(await proc.stdout.readline())
                assert quote["bid"] <= quote["ask"]
                seen.add(quote["contract"]["symbol"])
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert err == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_live_quotes_mark_a_gateway_restart_and_go_on() -> None:
    async with Simulator(port=0) as sim:
        proc = await asyncio.create_subprocess_exec(
            *IBFLOW,
            "--port",
            str(sim.port),
            "--json",
            "quote",
            "AAPL",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=ENV,
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                assert "bid" in json.loads(await proc.stdout.readline())
                await sim.restart(down_for=0.2)
                item = json.loads(await proc.stdout.readline())
                while "gap" not in item:
                    item = json.loads(await proc.stdout.readline())
                assert item["gap"]["start"] < item["gap"]["end"]
                assert "bid" in json.loads(await proc.stdout.readline())
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            assert err == b""
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_live_quotes_print_lines_when_piped() -> None:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "quote",
        "--sim",
        "EUR.USD",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        assert " EUR.USD  bid 1." in line
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ctrl_c_while_the_command_loads_and_connects() -> None:
    # ibflow itself is imported first; the signal then lands while the command imports its
    # modules, starts the embedded simulator and connects.
    code = (
        "import ibflow, sys\n"
        "print('ready', flush=True)\n"
        "sys.argv = ['ibflow', '--sim', 'bars', 'AAPL', '--period', '1m', '--duration', '1 W']\n"
        "from ibflow.cli import main\n"
        "main()\n"
    )
    for delay in (0.03, 0.2, 0.6):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=ENV,
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                assert await proc.stdout.readline() == b"ready\n"
                await asyncio.sleep(delay)
                proc.send_signal(signal.SIGINT)
                _, err = await proc.communicate()
            assert proc.returncode == 130, (delay, err.decode())
            assert err.decode().strip() == "ibflow: interrupted", delay
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_importing_ibflow_loads_nothing_heavy() -> None:
    # The console script imports the package before any CLI code runs; keeping that import
    # free of ib_async and the features is what lets Ctrl-C at start-up end in one line.
    code = (
        "import sys, ibflow\n"
        "print(sorted(m for m in ('ib_async', 'ibflow._session') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    )
    assert out.stdout.strip() == "[]"
