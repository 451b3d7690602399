"""A trading bot for the crash tests: runs in a child process that the test kills with SIGKILL.

It connects with a fixed client id and an order journal, then places a market order per key
and waits for its fill. With ``hold`` it stops after sending and waits to be killed. With
``keyless`` each entry of ``keys`` places a resting limit order without a key (so it can be
cancelled while the bot is down), with ``order_ref`` as its own reference if given. When it
finishes, it writes a JSON report: what the journal brought back on connect (the order
reference, status and reason of each restored trade) and, per key, the trade's order id,
status and execution ids.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibflow

AAPL = ibflow.Stock("AAPL")


@dataclass(frozen=True)
class Bot:
    host: str
    port: int
    journal: str
    client_id: int
    keys: tuple[str, ...]
    report: str | None = None
    hold: bool = False
    keyless: bool = False
    order_ref: str | None = None


async def _run(bot: Bot) -> None:
    async with ibflow.Session(
        bot.host,
        bot.port,
        client_id=bot.client_id,
        journal=bot.journal,
        timeout=10,
        heartbeat_interval=None,
        reconnect=None,
    ) as session:
        restored = [
            {"key": t.order.order_ref, "status": t.status.value, "reason": t.lost_reason}
            for t in session.trades()
        ]
        placed: dict[str, Any] = {}
        for key in bot.keys:
            if bot.keyless:
                spec = ibflow.LimitOrder("BUY", 1, 150.00, order_ref=bot.order_ref)
                trade = await session.place(AAPL, spec)
            else:
                trade = await session.place(AAPL, ibflow.MarketOrder("BUY", 1), key=key)
            if bot.hold:
                continue
            await trade.wait_filled(timeout=10)
            placed[key] = {
                "order_id": trade.order_id,
                "status": trade.status.value,
                "fills": [f.exec_id for f in trade.fills],
            }
        if bot.hold:
            await asyncio.Event().wait()  # until killed
        if bot.report is not None:
            _write(bot.report, {"restored": restored, "placed": placed})


def _write(path: str, report: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(report))


def run(bot: Bot) -> None:
    """The child process's entry point."""
    asyncio.run(_run(bot))
    os._exit(0)  # skip the interpreter's teardown: the parent only waits for the exit code


def context() -> multiprocessing.context.ForkServerContext:
    """Children forked from a server that already imported ibflow: a start costs milliseconds."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ibflow", __name__])
    return ctx
