"""Every script in ``examples/`` runs as a user runs it: a subprocess, on the embedded simulator.

Each test checks what the example promises to do, from the outside: its exit code, what it
printed, and for the FastAPI one, real HTTP answers from uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ENV = {
    # A child pytest is its own run: it must not think it is one of this run's xdist workers.
    **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30) -> tuple[str, str]:
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "Traceback" not in err.decode(), err.decode()
    assert proc.returncode == 0, err.decode()
    return out.decode(), err.decode()


async def run(*args: str) -> tuple[str, str]:
    return await finish(await start(*args))


def stop(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it already ended: finish() says how
        proc.send_signal(sig)


async def read_until(
    proc: asyncio.subprocess.Process, done: Callable[[list[str]], bool], timeout: float = 20
) -> list[str]:
    """Lines of stdout until ``done(lines)`` holds."""
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(timeout):
        while not done(lines):
            line = (await proc.stdout.readline()).decode()
            assert line, f"the example ended early: {lines}"
            lines.append(line.rstrip("\n"))
    return lines


async def test_bot_demo_rides_a_gateway_restart_and_stops_by_itself() -> None:
    out, _ = await run(str(EXAMPLES / "bot_ma_crossover.py"), "--demo")
    assert "simulator: gateway restarting" in out
    assert re.search(r"^gap: no data for \d+\.\d s \(.*\); the missed bars follow$", out, re.M)
    last = out.splitlines()[-1]
    assert re.fullmatch(
        r"stopped \(max bars reached\): 12 new bars, 1 gaps, \d+ orders, position \d+ AAPL", last
    )


async def test_bot_trades_then_stops_cleanly_on_sigint() -> None:
    # Short averages cross more often: the first trade comes sooner.
    proc = await start(str(EXAMPLES / "bot_ma_crossover.py"), "--fast", "2", "--slow", "4")
    try:
        seen = await read_until(
            proc,
            lambda lines: (
                any(line.startswith("gap:") for line in lines)
                and any(" filled @ " in line for line in lines)
            ),
        )
    finally:
        stop(proc, signal.SIGINT)
    out, _ = await finish(proc, timeout=15)
    assert re.search(
        r": (BUY|SELL) \d+ filled @ \d+\.\d\d \(order \d+\), position \d+$", "\n".join(seen), re.M
    )
    found = re.search(r"stopped \(SIGINT\): \d+ new bars, 1 gaps, (\d+) orders", out)
    assert found
    assert int(found.group(1)) >= 1


async def test_bot_stops_cleanly_on_sigterm() -> None:
    proc = await start(str(EXAMPLES / "bot_ma_crossover.py"), "--restart-after", "0")
    try:
        await read_until(proc, lambda lines: any("warmed up" in line for line in lines))
    finally:
        stop(proc, signal.SIGTERM)
    out, _ = await finish(proc, timeout=15)
    assert re.search(r"^stopped \(SIGTERM\): \d+ new bars, 0 gaps", out, re.M)


async def test_fastapi_embed_answers_http_through_uvicorn() -> None:
    proc = await start(str(EXAMPLES / "fastapi_embed.py"), "--http-port", "0")
    try:
        assert proc.stderr is not None
        url = None
        async with asyncio.timeout(20):
            while url is None:
                line = (await proc.stderr.readline()).decode()
                assert line, "the app exited before serving"
                found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
                url = found.group(1) if found else None
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            health = (await client.get("/health")).json()
            assert health == {"state": "ready", "accounts": ["DU1234567"], "paper": True}
            quote = (await client.get("/quote/aapl")).raise_for_status().json()
            assert quote["symbol"] == "AAPL"
            assert 0 < quote["bid"] < quote["ask"]
            positions = (await client.get("/positions")).json()
            assert {"contract": "AAPL", "quantity": 100.0, "avg_cost": 180.0} in positions
            missing = await client.get("/quote/NOSUCHSYMBOL")
            assert missing.status_code == 404
            assert "No security definition" in missing.json()["detail"]
    finally:
        stop(proc, signal.SIGINT)
    _, err = await finish(proc, timeout=15)
    assert "Application shutdown complete" in err


async def test_fastapi_embed_demo_calls_its_routes_and_exits() -> None:
    out, _ = await run(str(EXAMPLES / "fastapi_embed.py"), "--demo", "--http-port", "0")
    statuses = re.findall(r"^GET (\S+) -> (\d+) ", out, re.M)
    assert statuses == [
        ("/health", "200"),
        ("/quote/AAPL", "200"),
        ("/positions", "200"),
        ("/quote/NOSUCHSYMBOL", "404"),
    ]


async def test_two_clients_trade_and_watch_side_by_side() -> None:
    out, _ = await run(str(EXAMPLES / "two_clients.py"))
    assert "[main   ] client 1 trades, client 2 watches" in out
    assert re.search(r"^\[watcher\] sees client 1's order (\d+): BUY 10 AAPL", out, re.M)
    assert re.search(r"^\[trader \] order \d+: filled 10 @ \d+\.\d\d$", out, re.M)
    assert "[watcher] may not trade: refusing to place an order: this session is read-only" in out
    assert "[watcher] AAPL position 100 -> 110" in out


@pytest.mark.timeout(90)
async def test_my_bot_tests_pass_under_pytest() -> None:
    out, _ = await run(
        "-m", "pytest", str(EXAMPLES / "test_my_bot.py"), "-q", "-p", "no:cacheprovider"
    )
    assert re.search(r"^3 passed", out, re.M), out
