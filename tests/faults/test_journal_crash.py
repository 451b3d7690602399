"""Exactly-once placement across ``kill -9``: a bot process killed at the worst moments, then
started again with the same journal and client id, never doubles an order or a fill.

The simulator (the quiet one of ``conftest``) runs in the test process, so it outlives every
bot; each bot is a child process forked from a server that already imported ibflow (see
``journal_bot``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for
from tests.relays import HoldingProxy, holding_proxy

from . import journal_bot
from .journal_bot import Bot

CLIENT_ID = 7
# How many random crash points the loop test visits; raise it for a local soak run.
CRASHES = int(os.environ.get("IBFLOW_JOURNAL_CRASHES", "100"))


class Bots:
    """Starts bot processes against the simulator and kills them."""

    def __init__(self, sim: Simulator, journal: Path) -> None:
        self.sim = sim
        self.journal = journal
        self.ctx = journal_bot.context()

    def start(
        self,
        keys: list[str],
        *,
        hold: bool = False,
        report: Path | None = None,
        port: int | None = None,
        keyless: bool = False,
        order_ref: str | None = None,
    ) -> Any:
        bot = Bot(
            host=self.sim.host,
            port=self.sim.port if port is None else port,
            journal=str(self.journal),
            client_id=CLIENT_ID,
            keys=tuple(keys),
            report=None if report is None else str(report),
            hold=hold,
            keyless=keyless,
            order_ref=order_ref,
        )
        process = self.ctx.Process(target=journal_bot.run, args=(bot,), daemon=True)
        process.start()
        return process

    def connected(self) -> bool:
        return any(c.client_id == CLIENT_ID for c in self.sim.clients)

    async def kill(self, process: Any) -> None:
        """SIGKILL, then wait until the process is gone and the simulator saw its socket close."""
        os.kill(process.pid, signal.SIGKILL)
        await eventually(lambda: process.exitcode is not None, timeout=10)
        await eventually(lambda: not self.connected(), timeout=10)

    async def finish(self, process: Any) -> None:
        await eventually(lambda: process.exitcode is not None, timeout=60)
        assert process.exitcode == 0
        await eventually(lambda: not self.connected(), timeout=10)


@pytest.fixture
async def holding(sim: Simulator) -> AsyncIterator[HoldingProxy]:
    async with holding_proxy(sim) as relay:
        yield relay


def orders_by_key(sim: Simulator) -> dict[str, int]:
    return dict(collections.Counter(o.order_ref for o in sim.orders))


def fills_by_key(sim: Simulator) -> dict[str, list[str]]:
    refs = {(o.client_id, o.order_id): o.order_ref for o in sim.orders}
    found: dict[str, list[str]] = collections.defaultdict(list)
    for fill in sim.fills:
        found[refs[(fill.client_id, fill.order_id)]].append(fill.exec_id)
    return dict(found)


def journaled_fills(journal: Path) -> list[tuple[str, str]]:
    """(key, exec id) of every fill row in the journal."""
    with sqlite3.connect(journal) as db:
        return list(
            db.execute("SELECT i.key, f.exec_id FROM fills f JOIN intents i ON i.seq = f.intent")
        )


async def test_killed_after_the_frame_left_the_order_is_found_not_resent(
    sim: Simulator, holding: HoldingProxy, tmp_path: Path
) -> None:
    bots = Bots(sim, tmp_path / "orders.db")
    # TWS takes the order and fills it, but neither reply reaches the bot before it dies.
    first = bots.start(["k1"], hold=True, port=holding.port)
    await eventually(lambda: sim.request_count("place_order") == 1, timeout=20)
    await eventually(lambda: len(sim.fills) == 1)
    await bots.kill(first)
    report = tmp_path / "report.json"
    await bots.finish(bots.start(["k1"], report=report))
    result = json.loads(report.read_text())
    assert sim.request_count("place_order") == 1
    # Brought back from the journal on connect and matched with what TWS reports.
    assert result["restored"] == [{"key": "k1", "status": "Filled", "reason": None}]
    [exec_id] = [f.exec_id for f in sim.fills]
    assert result["placed"]["k1"]["fills"] == [exec_id]
    assert result["placed"]["k1"]["status"] == "Filled"
    assert journaled_fills(bots.journal) == [("k1", exec_id)]


async def test_killed_before_tws_saw_the_frame_it_is_reported_and_placed_once(
    sim: Simulator, tmp_path: Path
) -> None:
    bots = Bots(sim, tmp_path / "orders.db")
    sim.ignore("place_order")  # the frame leaves the bot but never reaches TWS's order book
    first = bots.start(["k1"], hold=True)
    await eventually(lambda: sim.request_count("place_order") == 1, timeout=20)
    await bots.kill(first)
    sim.ignore("place_order", False)
    assert sim.orders == []
    report = tmp_path / "report.json"
    await bots.finish(bots.start(["k1"], report=report))
    result = json.loads(report.read_text())
    [restored] = result["restored"]
    assert restored["key"] == "k1"
    assert restored["status"] == "Lost"
    assert "never reached TWS" in restored["reason"]
    assert orders_by_key(sim) == {"k1": 1}
    [exec_id] = [f.exec_id for f in sim.fills]
    assert result["placed"]["k1"]["fills"] == [exec_id]
    assert journaled_fills(bots.journal) == [("k1", exec_id)]


@pytest.mark.parametrize("order_ref", [None, "my-ref-1"])
async def test_a_keyless_order_cancelled_while_the_bot_was_down_comes_back_cancelled(
    sim: Simulator, holding: HoldingProxy, tmp_path: Path, order_ref: str | None
) -> None:
    bots = Bots(sim, tmp_path / "orders.db")
    # TWS takes the keyless order; its acknowledgement never reaches the bot before it dies.
    first = bots.start(["rest"], hold=True, port=holding.port, keyless=True, order_ref=order_ref)
    await eventually(lambda: sim.request_count("place_order") == 1, timeout=20)
    await eventually(lambda: [o.status for o in sim.orders] == ["Submitted"])
    await bots.kill(first)
    # Another desk's kill switch cancels it while the bot is down: TWS now reports it only
    # among completed orders, which carry no order id.
    async with session_for(sim, client_id=2) as desk:
        await desk.cancel_all()
    [order] = sim.orders
    assert order.status == "Cancelled"
    if order_ref is None:
        assert order.order_ref is not None
        assert order.order_ref.startswith(":j")
    else:
        assert order.order_ref == order_ref  # the user's own reference is kept
    report = tmp_path / "report.json"
    await bots.finish(bots.start([], report=report))
    result = json.loads(report.read_text())
    # Tied to TWS's report by its order reference: cancelled, not "never reached TWS". (The
    # report's "key" is the restored order's order_ref.)
    assert result["restored"] == [{"key": order.order_ref, "status": "Cancelled", "reason": None}]
    assert sim.request_count("place_order") == 1
    with sqlite3.connect(bots.journal) as db:
        statuses = [
            json.loads(data)["status"]
            for (data,) in db.execute("SELECT data FROM events WHERE kind = 'status'")
        ]
    assert statuses[-1] == "Cancelled"


async def test_random_crashes_never_double_an_order_or_a_fill(
    sim: Simulator, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    bots = Bots(sim, tmp_path / "orders.db")
    keys: list[str] = []
    for _ in range(CRASHES):
        # Each run: the latest keys TWS has (known: nothing may be sent), those it has not
        # (never sent, or lost with a crash), and three new ones.
        at_tws = set(orders_by_key(sim))
        keys += [f"o{len(keys) + n}" for n in range(3)]
        run = [k for k in keys[:-3] if k not in at_tws] + keys[-6:]
        bot = bots.start(list(dict.fromkeys(run)))
        # The crash point: somewhere after the connect, among the places and fills.
        await eventually(lambda b=bot: bots.connected() or b.exitcode is not None, timeout=20)
        await asyncio.sleep(rng.uniform(0, 0.03))
        if bot.exitcode is None:
            await bots.kill(bot)
        else:
            await bots.finish(bot)
    report = tmp_path / "report.json"
    await bots.finish(bots.start(keys, report=report))
    result = json.loads(report.read_text())
    context = f"seed {seed}"
    assert orders_by_key(sim) == dict.fromkeys(keys, 1), context
    at_sim = fills_by_key(sim)
    assert {k: v["fills"] for k, v in result["placed"].items()} == at_sim, context
    journaled = journaled_fills(bots.journal)
    assert len(journaled) == len(sim.fills), context
    grouped: dict[str, list[str]] = collections.defaultdict(list)
    for key, exec_id in journaled:
        grouped[key].append(exec_id)
    assert {k: sorted(v) for k, v in grouped.items()} == {
        k: sorted(v) for k, v in at_sim.items()
    }, context
