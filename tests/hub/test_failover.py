"""Two hubs of one name: kill -9 the leader, the standby takes over with nothing lost or doubled.

The simulator lives in the test process and outlives the hubs; each hub is an ``ibflow hub``
process (same name, same client id), so the leader can be killed for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

import ibflow
from ibflow import ConnectionState, MarketOrder, OrderStatus
from ibflow.hub import Hub, RemoteSession, RemoteTrade
from ibflow.hub._journal import tagged
from ibflow.hub._protocol import dumps
from ibflow.hub._remote_orders import OrderLink
from ibflow.sim import Simulator
from ibflow.testing import SimFactory, eventually, session_for

from .conftest import HubFactory

AAPL = ibflow.Stock("AAPL")
IBFLOW = [sys.executable, "-c", "from ibflow.cli import main; main()"]
LEADER_TTL = 1.5


class HubProcess:
    """One ``ibflow hub`` process and the lines it printed, each with its monotonic time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append((time.monotonic(), raw.decode().strip()))

    def said(self, text: str) -> float | None:
        return next((at for at, line in self.lines if text in line), None)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@pytest.fixture
async def sim(ib_sim_factory: SimFactory) -> Simulator:
    return await ib_sim_factory(speed=1.0)


@contextlib.asynccontextmanager
async def hubs(sim: Simulator, nats_url: str, name: str) -> AsyncIterator[list[HubProcess]]:
    started: list[HubProcess] = []

    async def start() -> HubProcess:
        proc = await asyncio.create_subprocess_exec(
            *IBFLOW,
            "hub",
            "--nats",
            nats_url,
            "--name",
            name,
            "--host",
            sim.host,
            "--port",
            str(sim.port),
            "--client-id",
            "7",
            "--leader-ttl",
            str(LEADER_TTL),
            "--lease-ttl",
            "1",
            stdout=asyncio.subprocess.PIPE,
        )
        started.append(HubProcess(proc))
        return started[-1]

    try:
        leader = await start()
        await eventually(lambda: leader.said(": serving") is not None, timeout=15)
        standby = await start()
        await eventually(lambda: standby.said(": standing by") is not None, timeout=15)
        yield started
    finally:
        for hub in started:
            await hub.stop()


async def test_kill_9_the_leader_hub_the_standby_takes_over(
    sim: Simulator, nats_url: str, hub_name: str
) -> None:
    count = 24
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    async with (
        hubs(sim, nats_url, hub_name) as (leader, standby),
        RemoteSession(nats_url, hub=hub_name, name="desk-bot", timeout=1) as remote,
        remote.fills_stream() as fills,
        remote.quotes(AAPL) as quotes,
    ):
        states: list[ConnectionState] = []
        placed: dict[int, Any] = {}
        level = [190.0]

        async def watch_states() -> None:
            while True:
                if not states or states[-1] is not remote.state:
                    states.append(remote.state)
                await asyncio.sleep(0.01)

        async def feed_quotes() -> None:
            step = 0.0
            while True:
                step = 0.0 if step > 1 else step + 0.01
                bid = level[0] + step
                sim.push_quote("AAPL", bid=bid, ask=bid + 0.02, last=bid + 0.01)
                await asyncio.sleep(0.05)

        async def storm() -> None:
            for i in range(count):
                while True:
                    try:
                        placed[i] = await remote.place(
                            AAPL, MarketOrder("BUY", 1), key=f"fo-{i}", timeout=1
                        )
                        break
                    except (ibflow.ConnectionLost, ibflow.RequestTimeout):
                        await asyncio.sleep(0.1)  # no leader right now: the same key again
                await asyncio.sleep(0.05)

        tasks = [asyncio.ensure_future(t()) for t in (watch_states, feed_quotes, storm)]
        try:
            async with asyncio.timeout(3):
                while not isinstance(await quotes.receive(), ibflow.Quote):
                    pass
            resting = await remote.place(AAPL, ibflow.LimitOrder("BUY", 1, 185.0), key="fo-rest")
            await eventually(lambda: len(placed) >= count // 3, timeout=10)
            # TWS is slow to acknowledge: the next order reaches it, the leader dies waiting.
            sim.delay(0.5)
            sent = sim.request_count("place_order")
            await eventually(lambda: sim.request_count("place_order") > sent, timeout=5)
            leader.proc.kill()  # kill -9 during streaming and orders
            killed = time.monotonic()
            await leader.proc.wait()
            sim.delay(0)
            await eventually(lambda: standby.said(": serving") is not None, timeout=LEADER_TTL + 8)
            ready = standby.said(": serving")
            assert ready is not None
            # The lease expires at most LEADER_TTL after the kill (its last renewal was before).
            assert ready - (killed + LEADER_TTL) < 5.0
            async with asyncio.timeout(10):
                while not isinstance(await quotes.receive(), ibflow.Gap):
                    pass
                while not isinstance(await quotes.receive(), ibflow.Quote):
                    pass
            await tasks[2]
            # The order the dead leader left working fills now: the new leader reports it.
            level[0] = 184.0
            [rest_fill] = await resting.wait_filled(timeout=5)
            assert rest_fill.price <= 185.0
            got: list[ibflow.Fill] = []
            async with asyncio.timeout(10):
                while len(got) < count + 1:
                    got.append(await fills.receive())
            await asyncio.sleep(0.5)  # and nothing more: no fill twice
            assert fills.statistics().received == count + 1
            await eventually(lambda: remote.state is ConnectionState.READY, timeout=5)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert ConnectionState.RECONNECTING in states
    assert states[-1] is ConnectionState.READY
    exec_ids = Counter(f.exec_id for f in got)
    assert set(exec_ids.values()) == {1}
    assert sorted(exec_ids) == sorted(f.exec_id for f in sim.fills)  # none lost
    assert sim.request_count("place_order") == count + 1  # none placed twice
    # The order in flight at the kill was found at TWS by the new leader, not placed again.
    assert [p.duplicate for p in placed.values()].count(True) == 1
    orders = {p.order_id for p in placed.values()} | {resting.order_id}
    assert sorted(orders) == sorted({f.order_id for f in got})


async def test_a_key_a_dead_leader_was_placing_is_settled_by_what_tws_knows(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory({"speed": 1.0})
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    nc = await nats.connect(nats_url)
    try:
        orders = await nc.jetstream().key_value(f"ibflow_{hub.name}_orders")
        claim = dumps({"state": "placing", "by": "bot", "hub": "dead-leader"})
        reached, lost = (hashlib.sha256(k.encode()).hexdigest() for k in ("k-reached", "k-lost"))
        await orders.put(reached, claim)
        await orders.put(lost, claim)
    finally:
        await nc.close()
    # The dead leader's order for "k-reached" got to TWS (with the hub's tag) before it died.
    async with session_for(sim, client_id=2) as other:
        sent = await other.place(AAPL, tagged(MarketOrder("BUY", 1), "bot", reached))
        await sent.wait_filled()
    async with RemoteSession(nats_url, hub=hub.name, name="bot") as remote:
        trade = await remote.place(AAPL, MarketOrder("BUY", 1), key="k-reached")
        assert (trade.order_id, trade.duplicate) == (sent.order_id, True)
        for _ in range(2):  # settled once, for good
            with pytest.raises(ibflow.ConnectionLost, match="failed over"):
                await remote.place(AAPL, MarketOrder("BUY", 1), key="k-lost")
    assert sim.request_count("place_order") == 1


async def test_a_new_hub_follows_and_cancels_what_the_previous_one_left_working(
    sim: Simulator, nats_url: str, hub_name: str
) -> None:
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    first_session = await session_for(sim).connect()
    first = Hub(first_session, nats_url, name=hub_name)
    await first.start()
    try:
        async with RemoteSession(nats_url, hub=hub_name, name="bot-w", timeout=3) as remote:
            trade = await remote.place(AAPL, ibflow.LimitOrder("BUY", 1, 150.0), key="w-1")
            other = await remote.place(AAPL, ibflow.LimitOrder("BUY", 1, 150.0), key="w-2")
            await first.aclose()
            await first_session.aclose()
            # The first hub is gone; its orders still work at TWS. A new one serves the name.
            async with session_for(sim) as session, Hub(session, nats_url, name=hub_name):
                await eventually(lambda: remote.state is ConnectionState.READY, timeout=5)
                reply = {"order_id": other.order_id, "key": "x", "duplicate": False}
                async with RemoteSession(nats_url, hub=hub_name, name="bot-x") as stranger:
                    link = OrderLink(stranger._call, stranger._tracker, 3)
                    status = OrderStatus.SUBMITTED
                    theirs = RemoteTrade(link, AAPL, other.order, **reply, status=status)
                    with pytest.raises(ibflow.InvalidRequest, match="not a working order"):
                        await theirs.cancel()
                assert await trade.cancel() is OrderStatus.CANCELLED
                assert await trade.wait_done(timeout=5) is OrderStatus.CANCELLED
                with pytest.raises(ibflow.OrderCancelled):
                    await trade.wait_filled(timeout=5)
                assert await other.refresh() is OrderStatus.SUBMITTED
                # The new hub's session adopted the order (same client id): it may change it.
                await other.modify(limit_price=151.0)
                [record] = [o for o in sim.orders if o.order_id == other.order_id]
                assert record.lmt_price == 151.0
    finally:
        await first.aclose()
        await first_session.aclose()
    assert sim.request_count("place_order") == 3  # two orders, one modify
