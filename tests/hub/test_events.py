"""Order events and fills through the hub's JetStream journal, with durable remote positions."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderEventKind, OrderStatus
from ibflow.hub import RemoteSession
from ibflow.testing import eventually

from .conftest import HubFactory

AAPL = ibflow.Stock("AAPL")
NORMAL_SPEED: dict[str, Any] = {"speed": 1.0}
BOT = [sys.executable, str(Path(__file__).with_name("storm_bot.py"))]


async def take(stream: ibflow.Stream[Any], count: int, timeout: float = 5) -> list[Any]:
    async with asyncio.timeout(timeout):
        return [await stream.receive() for _ in range(count)]


async def test_a_remote_gets_the_events_and_fills_of_its_own_orders(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as a,
        RemoteSession(nats_url, hub=hub.name, name="bot-b") as b,
        a.order_events() as events,
        a.fills_stream() as fills,
        b.fills_stream() as b_fills,
    ):
        trade = await a.place(AAPL, MarketOrder("BUY", 10), key="ev-1")
        [fill] = await take(fills, 1)
        assert fill.exec_id == sim.fills[-1].exec_id
        assert (fill.order_id, fill.quantity, fill.price) == (trade.order_id, 10, 190.02)
        assert fill.commission is not None  # delivered once its commission is in
        assert [f.exec_id for f in await trade.wait_filled()] == [fill.exec_id]
        kinds: list[OrderEventKind] = []
        async with asyncio.timeout(5):
            while OrderEventKind.FILL not in kinds or trade.status is not OrderStatus.FILLED:
                event = await events.receive()
                assert event.order_id == trade.order_id
                kinds.append(event.kind)
        assert kinds[0] is OrderEventKind.STATUS
        # bot-b placed nothing: its fills stream stays empty.
        resting = await b.place(AAPL, LimitOrder("BUY", 1, 150.00), key="ev-2")
        assert await resting.cancel() is OrderStatus.CANCELLED
        assert b_fills.statistics().received == 0
        with pytest.raises(ibflow.OrderCancelled):
            await resting.wait_filled(timeout=5)
    stats = hub.statistics()
    assert stats["fills_published"] >= 1


async def test_a_remote_that_comes_back_gets_the_fills_it_did_not_take_once(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-r") as first,
        first.fills_stream() as fills,
    ):
        trades = [await first.place(AAPL, MarketOrder("BUY", 1), key=f"r-{i}") for i in range(4)]
        [taken] = await take(fills, 1)
        for trade in trades:
            await trade.wait_filled(timeout=5)
        await eventually(lambda: fills.statistics().received == 4)
    # Gone with three fills buffered and not taken; meanwhile two more orders fill.
    async with RemoteSession(nats_url, hub=hub.name, name="bot-other") as other:
        await (await other.place(AAPL, MarketOrder("BUY", 1))).wait_filled(timeout=5)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-r") as again,
        again.fills_stream() as fills,
    ):
        more = [await again.place(AAPL, MarketOrder("BUY", 1), key=f"r-{i}") for i in range(6)]
        assert [t.duplicate for t in more] == [True] * 4 + [False] * 2
        got = await take(fills, 5)
        await asyncio.sleep(0.3)  # nothing else arrives (no repeats)
        assert fills.statistics().received == 5
    ours = {t.order_id for t in more}
    expected = {f.exec_id for f in sim.fills if f.order_id in ours} - {taken.exec_id}
    assert {f.exec_id for f in got} == expected
    assert sim.request_count("place_order") == 7


async def _lines(proc: asyncio.subprocess.Process, into: list[str]) -> None:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        into.append(raw.decode().strip())


async def test_kill_9_a_bot_mid_storm_and_restart_it(
    hub_factory: HubFactory, nats_url: str, tmp_path: Path
) -> None:
    count = 30
    hub, sim = await hub_factory(NORMAL_SPEED)
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    ledger = tmp_path / "ledger"
    argv = [*BOT, nats_url, hub.name, "storm", str(count), str(ledger)]
    runs: list[list[str]] = [[], []]
    first = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    reader = asyncio.ensure_future(_lines(first, runs[0]))

    def booked() -> list[str]:
        return ledger.read_text().split() if ledger.exists() else []

    try:
        await eventually(
            lambda: sum(line.startswith("placed ") for line in runs[0]) >= count // 3, timeout=15
        )
        first.kill()  # kill -9, in the middle of the storm
        await first.wait()
        await reader
        assert "placed-all" not in runs[0]
        second = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        reader = asyncio.ensure_future(_lines(second, runs[1]))

        def filled_everything() -> bool:
            return "placed-all" in runs[1] and set(booked()) >= {f.exec_id for f in sim.fills}

        await eventually(filled_everything, timeout=15)
        assert second.stdin is not None
        second.stdin.close()
        async with asyncio.timeout(10):
            await second.wait()
        await reader
        assert second.returncode == 0
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
    fills = Counter(booked())
    assert sorted(fills) == sorted(f.exec_id for f in sim.fills)  # none lost
    assert set(fills.values()) == {1}  # none doubled
    # Delivered again after the restart: at most the fills the first run had taken while its
    # acknowledgements were still on their way when it died.
    again = [line for line in runs[1] if line.startswith("again ")]
    assert len(again) <= 2
    assert sim.request_count("place_order") == count  # no order placed twice
    assert len({f.order_id for f in sim.fills}) == count


async def test_journal_streams_end_with_the_session(hub_factory: HubFactory, nats_url: str) -> None:
    hub, _ = await hub_factory()
    async with RemoteSession(nats_url, hub=hub.name, name="bot-e") as remote:
        with pytest.raises(ibflow.InvalidRequest, match="buffer"):
            remote.fills_stream(buffer=0)
        events = remote.order_events()
        await events.__aenter__()
    with pytest.raises(ibflow.EndOfStream):
        await events.receive()
    with pytest.raises(ibflow.SessionClosedError):
        remote.fills_stream()
