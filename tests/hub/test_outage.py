"""A NATS server restart: the hub and its remote sessions reconnect by themselves."""

from __future__ import annotations

import asyncio
import contextlib

import ibflow
from ibflow.hub import Hub, RemoteSession
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .conftest import NatsServer


async def test_streams_resume_with_a_gap_after_a_nats_restart(
    ib_sim: Simulator, own_nats: NatsServer, hub_name: str
) -> None:
    async with (
        session_for(ib_sim) as session,
        Hub(session, own_nats.url, name=hub_name, lease_ttl=0.6) as hub,
        RemoteSession(own_nats.url, hub=hub_name, timeout=3) as remote,
        remote.quotes(ibflow.Stock("AAPL")) as quotes,
    ):
        ib_sim.push_quote("AAPL", bid=190.0, ask=190.02)
        async with asyncio.timeout(3):
            while not isinstance(item := await quotes.receive(), ibflow.Quote) or item.bid != 190:
                pass
        own_nats.stop()
        await eventually(lambda: remote.state is ibflow.ConnectionState.RECONNECTING)
        # Down for longer than the lease: the hub gives the line up meanwhile.
        await eventually(lambda: ib_sim.subscriptions().get("mkt_data", 0) == 0, timeout=3)
        own_nats.start()
        await eventually(lambda: remote.state is ibflow.ConnectionState.READY, timeout=5)
        async with asyncio.timeout(5):  # quotes buffered before the outage come first
            while not isinstance(gap := await quotes.receive(), ibflow.Gap):
                pass
        assert gap.end >= gap.start
        # The remote re-takes its lease: the hub subscribes again and quotes flow.
        await eventually(lambda: ib_sim.subscriptions().get("mkt_data") == 1, timeout=5)
        assert len(hub.subscriptions()) == 1
        ib_sim.push_quote("AAPL", bid=191.5, ask=191.52)
        async with asyncio.timeout(5):
            while not isinstance(item := await quotes.receive(), ibflow.Quote) or item.bid != 191.5:
                pass
        assert await remote.current_time()


async def test_other_streams_resume_with_a_gap_after_a_nats_restart(
    ib_sim: Simulator, own_nats: NatsServer, hub_name: str
) -> None:
    async with (
        session_for(ib_sim) as session,
        Hub(session, own_nats.url, name=hub_name, lease_ttl=0.6) as hub,
        RemoteSession(own_nats.url, hub=hub_name, timeout=3) as remote,
        remote.pnl_updates() as pnl,
    ):
        async with asyncio.timeout(3):
            while not isinstance(await pnl.receive(), ibflow.PnL):
                pass
        own_nats.stop()
        await eventually(lambda: remote.state is ibflow.ConnectionState.RECONNECTING)
        # Down for longer than the lease: the hub closes the stream at TWS meanwhile.
        await eventually(lambda: ib_sim.subscriptions().get("pnl", 0) == 0, timeout=3)
        own_nats.start()
        await eventually(lambda: remote.state is ibflow.ConnectionState.READY, timeout=5)
        async with asyncio.timeout(5):
            while not isinstance(gap := await pnl.receive(), ibflow.Gap):
                pass
        assert gap.end >= gap.start
        # The remote re-takes its lease: the hub asks TWS again and updates flow.
        await eventually(lambda: ib_sim.subscriptions().get("pnl") == 1, timeout=5)
        assert hub.statistics()["feeds"] == 1
        async with asyncio.timeout(5):
            while not isinstance(await pnl.receive(), ibflow.PnL):
                pass


async def test_a_hub_back_after_its_remotes_is_greeted_again(
    ib_sim: Simulator, own_nats: NatsServer, hub_name: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(session_for(ib_sim))
        hub = await stack.enter_async_context(Hub(session, own_nats.url, name=hub_name))
        remote = await stack.enter_async_context(
            RemoteSession(own_nats.url, hub=hub_name, timeout=3)
        )
        own_nats.stop()
        await eventually(lambda: remote.state is ibflow.ConnectionState.RECONNECTING)
        await hub.aclose()  # the hub goes away while NATS is down
        own_nats.start()
        # The remote is back on NATS first and finds no hub to greet: it stays RECONNECTING.
        await eventually(lambda: remote.statistics().reconnect_attempts >= 1, timeout=5)
        assert remote.state is ibflow.ConnectionState.RECONNECTING
        await stack.enter_async_context(Hub(session, own_nats.url, name=hub_name))
        await eventually(lambda: remote.state is ibflow.ConnectionState.READY, timeout=5)
        assert await remote.current_time()
        assert remote.statistics().reconnects == 1
