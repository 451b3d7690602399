"""``ibflow hub --sim``, run as a user runs it: a subprocess that remote sessions talk to."""

from __future__ import annotations

import asyncio
import signal
import sys

import ibflow
from ibflow.hub import RemoteSession

IBFLOW = [sys.executable, "-c", "from ibflow.cli import main; main()"]


async def test_hub_sim_serves_remote_sessions_until_interrupted(
    nats_url: str, hub_name: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "hub",
        "--sim",
        "--nats",
        nats_url,
        "--name",
        hub_name,
        "--readonly-name",
        "viewer",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            banner = (await proc.stdout.readline()).decode()
        assert f"ibflow hub {hub_name}: serving the embedded simulator" in banner
        async with (
            RemoteSession(nats_url, hub=hub_name, name="bot") as bot,
            RemoteSession(nats_url, hub=hub_name, name="viewer") as viewer,
        ):
            assert bot.accounts == ("DU1234567",)
            assert bot.is_paper
            trade = await bot.place(ibflow.Stock("AAPL"), ibflow.MarketOrder("BUY", 3))
            fills = await trade.wait_filled(timeout=5)
            assert sum(f.quantity for f in fills) == 3
            positions = await viewer.positions()
            assert any(p.contract.symbol == "AAPL" for p in positions)
            async with viewer.quotes(ibflow.Stock("AAPL")) as quotes:
                quote = await asyncio.wait_for(quotes.receive(), 5)
                assert isinstance(quote, ibflow.Quote)
        proc.send_signal(signal.SIGTERM)  # as docker stop or systemd would: a clean exit
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_hub_without_a_nats_server_is_one_error_line() -> None:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "hub",
        "--sim",
        "--nats",
        "nats://127.0.0.1:1",
        "--nats-timeout",
        "0.5",
        "--name",
        "desk1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    assert (
        err.decode()
        .strip()
        .splitlines()[-1]
        .startswith("ibflow: error: cannot reach the NATS server at nats://127.0.0.1:1")
    )
    assert b"Traceback" not in err
