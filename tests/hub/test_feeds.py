"""Ticks, bars, PnL, account and position streams fan out like quotes: one stream at the hub
(one subscription at TWS) per distinct call, however many remote consumers, held by leases."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats
import nats.errors
import pytest

import ibflow
from ibflow.hub import RemoteSession
from ibflow.hub._protocol import Subjects, dumps, encode, loads
from ibflow.testing import eventually

from .conftest import HubFactory

AAPL = ibflow.Stock("AAPL")


async def _first(stream: ibflow.Stream[Any], kind: type) -> Any:
    async with asyncio.timeout(5):
        async for item in stream:
            if isinstance(item, kind):
                return item
    raise AssertionError(f"the stream ended before a {kind.__name__}")


async def test_three_remotes_share_one_subscription_per_stream(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory()
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for i in range(3):
            remote = RemoteSession(nats_url, hub=hub.name, name=f"bot-{i}")
            await stack.enter_async_context(remote)
            mids = await stack.enter_async_context(remote.ticks(AAPL, "midpoint"))
            bars = await stack.enter_async_context(remote.realtime_bars(AAPL, "MIDPOINT"))
            pnl = await stack.enter_async_context(remote.pnl_updates())
            readers += [(mids, ibflow.MidpointTick), (bars, ibflow.Bar), (pnl, ibflow.PnL)]
        subscriptions = sim.subscriptions()
        assert subscriptions.get("tick_by_tick") == 1
        assert subscriptions.get("real_time_bars") == 1
        assert subscriptions.get("pnl") == 1
        stats = hub.statistics()
        assert (stats["feeds"], stats["feed_leases"]) == (3, 9)
        await asyncio.gather(*(_first(stream, kind) for stream, kind in readers))
    # Every consumer closed its streams: the hub cancels at TWS at once, not after the lease.
    await eventually(lambda: sim.subscriptions().get("tick_by_tick", 0) == 0, timeout=1.0)
    await eventually(lambda: sim.subscriptions().get("real_time_bars", 0) == 0, timeout=1.0)
    assert hub.statistics()["feeds"] == 0


async def test_different_arguments_are_different_streams(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory()
    async with (
        RemoteSession(nats_url, hub=hub.name) as remote,
        remote.ticks(AAPL, "midpoint") as aapl,
        remote.ticks(ibflow.Stock("MSFT"), "midpoint") as msft,
    ):
        assert (await _first(aapl, ibflow.MidpointTick)).contract.symbol == "AAPL"
        assert (await _first(msft, ibflow.MidpointTick)).contract.symbol == "MSFT"
        assert sim.subscriptions().get("tick_by_tick") == 2
        assert hub.statistics()["feeds"] == 2


async def test_real_time_bars_hold_lines_at_the_hub(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(max_lines=2)
    async with (
        RemoteSession(nats_url, hub=hub.name) as remote,
        remote.quotes(AAPL),
        remote.realtime_bars(AAPL, "MIDPOINT"),
    ):
        assert hub.statistics()["lines_free"] == 0
        with pytest.raises(ibflow.MarketDataError, match="market-data lines") as full:
            async with remote.realtime_bars(ibflow.Stock("MSFT"), "MIDPOINT"):
                pass
        assert full.value.code == 101
        with pytest.raises(ibflow.MarketDataError, match="market-data lines"):
            async with remote.quotes(ibflow.Stock("MSFT")):
                pass
        async with remote.ticks(ibflow.Stock("MSFT"), "midpoint"):  # holds no line
            pass
        assert sim.request_count("real_time_bars") == 1  # TWS never saw the refused ones
        assert sim.request_count("mkt_data") == 1


async def test_a_late_consumer_gets_the_last_pnl_at_once(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory({"speed": 1.0})  # PnL comes about once a second
    async with (
        RemoteSession(nats_url, hub=hub.name) as first,
        RemoteSession(nats_url, hub=hub.name) as late,
        first.pnl_updates() as early,
    ):
        seen = await _first(early, ibflow.PnL)
        async with late.pnl_updates() as joined:
            item = await asyncio.wait_for(joined.receive(), 0.5)
            assert isinstance(item, ibflow.PnL)
            assert item.account == seen.account
        assert sim.subscriptions().get("pnl") == 1


def _feed_open(method: str, args: list[Any], lease: str) -> bytes:
    """A ``feed.open`` request as a remote session sends it."""
    return dumps(
        {"name": "raw", "args": encode([method, args, {}]), "kwargs": encode({"lease": lease})}
    )


async def test_a_stream_waiting_on_pacing_holds_up_no_other(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory()
    open_feed = Subjects(hub.name).request("feed.open")
    nc = await nats.connect(nats_url)
    try:
        first = await nc.request(open_feed, _feed_open("ticks", [AAPL, "midpoint"], "a"), 5)
        assert "ok" in loads(first.data)
        # IB allows one tick-by-tick request per instrument per 15 s: the hub's session waits.
        # Sent first on one connection, it is being opened when the PnL request comes in.
        inbox = nc.new_inbox()
        paced = await nc.subscribe(inbox)
        await nc.publish(open_feed, _feed_open("ticks", [AAPL, "bid_ask"], "b"), reply=inbox)
        pnl = await nc.request(open_feed, _feed_open("pnl_updates", [None], "c"), 3)
        assert "ok" in loads(pnl.data)
        with pytest.raises(nats.errors.TimeoutError):  # the paced one is still waiting
            await paced.next_msg(timeout=0.05)
        assert sim.request_count("tick_by_tick") == 1
    finally:
        await nc.close()


async def test_bad_feed_requests_are_refused_typed(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory()
    open_feed = Subjects(hub.name).request("feed.open")
    nc = await nats.connect(nats_url)
    try:
        for method, args, options in [
            ("depth", [AAPL], {}),  # not a stream the hub fans out
            ("ticks", [AAPL], {"buffer": 1}),  # the consumer's own setting
        ]:
            request = {
                "name": "raw",
                "args": encode([method, args, options]),
                "kwargs": encode({"lease": "x"}),
            }
            reply = loads((await nc.request(open_feed, dumps(request), 5)).data)
            assert reply["error"]["$x"] == "InvalidRequest"
    finally:
        await nc.close()
    assert hub.statistics()["feeds"] == 0
    assert sim.request_count("tick_by_tick") == 0


async def test_a_lease_nobody_renews_lapses(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(lease_ttl=0.6)
    subjects = Subjects(hub.name)
    nc = await nats.connect(nats_url)
    try:
        # A consumer that opens a stream and dies before its first renewal.
        request = _feed_open("ticks", [AAPL, "midpoint"], "lease-1")
        reply = await nc.request(subjects.request("feed.open"), request, timeout=5)
        assert "ok" in loads(reply.data)
        assert sim.subscriptions().get("tick_by_tick") == 1
        await eventually(lambda: sim.subscriptions().get("tick_by_tick", 0) == 0, timeout=3.0)
        assert hub.statistics()["feeds"] == 0
    finally:
        await nc.close()


async def test_stream_errors_arrive_typed(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory()
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        async with remote.pnl_updates("DU0000000") as unknown:
            with pytest.raises(ibflow.RequestError):
                await _first(unknown, ibflow.PnL)
        with pytest.raises(ibflow.InvalidRequest, match="contract"):
            remote.position_pnl_updates("AAPL")  # type: ignore[arg-type]
        with pytest.raises(ibflow.ContractNotFound):
            async with remote.realtime_bars(ibflow.Stock("NOSUCHTHING")):
                pass
    assert hub.statistics()["feeds"] == 0
    assert sim.subscriptions().get("real_time_bars", 0) == 0
