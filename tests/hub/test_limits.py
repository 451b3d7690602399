"""IB's market-data limits are the hub's to keep: tick-by-tick subscriptions and ``quote()``
snapshots are accounted at the hub, so a remote past a limit gets a typed error and TWS never
sees the request."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import nats
import pytest

import ibflow
from ibflow.hub import Hub, RemoteSession
from ibflow.hub._protocol import Subjects, dumps, encode, loads
from ibflow.testing import eventually

from .conftest import HubFactory
from .test_ops import _doctor

AAPL = ibflow.Stock("AAPL")
MSFT = ibflow.Stock("MSFT")
TSLA = ibflow.Stock("TSLA")
TICKS_FROM = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def _first(stream: ibflow.Stream[Any], kind: type) -> Any:
    async with asyncio.timeout(5):
        async for item in stream:
            if isinstance(item, kind):
                return item
    raise AssertionError(f"the stream ended before a {kind.__name__}")


async def test_tick_by_tick_beyond_the_hubs_limit_is_refused_typed(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(max_tick_by_tick=2)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as first,
        RemoteSession(nats_url, hub=hub.name, name="bot-b") as second,
        first.ticks(AAPL, "midpoint") as aapl,
        first.ticks(MSFT, "midpoint"),
    ):
        stats = hub.statistics()
        assert (stats["tick_by_tick_used"], stats["tick_by_tick_limit"]) == (2, 2)
        with pytest.raises(ibflow.MarketDataError, match="tick-by-tick") as full:
            async with second.ticks(TSLA, "midpoint"):
                pass
        assert full.value.code == 10190
        assert "--tick-by-tick" in str(full.value)
        # Joining a stream the hub holds takes no new subscription, whatever the spelling.
        async with second.ticks(AAPL, ibflow.TickKind.MIDPOINT) as joined:
            tick = await _first(joined, ibflow.MidpointTick)
            assert tick.contract.symbol == "AAPL"
        await _first(aapl, ibflow.MidpointTick)
        assert sim.request_count("tick_by_tick") == 2  # TWS never saw the refused one
    # Released: the hub has room again.
    await eventually(lambda: hub.statistics()["tick_by_tick_used"] == 0, timeout=2.0)
    async with (
        RemoteSession(nats_url, hub=hub.name) as third,
        third.ticks(TSLA, "midpoint") as tsla,
    ):
        assert (await _first(tsla, ibflow.MidpointTick)).contract.symbol == "TSLA"


async def test_one_tick_by_tick_subscription_fans_out_to_many_remotes(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(max_tick_by_tick=1)
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for i, kind in enumerate(["bid_ask", "BID_ASK", ibflow.TickKind.BID_ASK, "Bid_Ask"]):
            remote = RemoteSession(nats_url, hub=hub.name, name=f"bot-{i}")
            await stack.enter_async_context(remote)
            streams.append(await stack.enter_async_context(remote.ticks(AAPL, kind)))  # type: ignore[call-overload]
        assert sim.subscriptions().get("tick_by_tick") == 1
        assert hub.statistics()["feed_leases"] == 4
        ticks = await asyncio.gather(*(_first(s, ibflow.BidAskTick) for s in streams))
        assert {t.contract.con_id for t in ticks} == {ticks[0].contract.con_id}
    await eventually(lambda: sim.subscriptions().get("tick_by_tick", 0) == 0, timeout=2.0)


async def test_a_quote_snapshot_needs_a_free_line(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(max_lines=1)
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        quote = await remote.quote(MSFT)  # a free line: the snapshot holds it while it runs
        assert quote.contract.symbol == "MSFT"
        assert hub.statistics()["lines_free"] == 1
        async with remote.quotes(AAPL):
            with pytest.raises(ibflow.MarketDataError, match="market-data lines") as full:
                await remote.quote(MSFT)
            assert full.value.code == 101
        assert sim.request_count("mkt_data") == 2  # the snapshot and the stream, not the refused


async def test_a_bad_tick_by_tick_limit_is_refused(hub_factory: HubFactory, nats_url: str) -> None:
    hub, _sim = await hub_factory()
    for bad in (-1, 1.5, True):
        with pytest.raises(ibflow.InvalidRequest, match="max_tick_by_tick"):
            Hub(hub._session, nats_url, name="other", max_tick_by_tick=bad)  # type: ignore[arg-type]


async def test_pacing_is_the_hubs_one_pacer(hub_factory: HubFactory, nats_url: str) -> None:
    hub, _sim = await hub_factory()
    idle = RemoteSession(nats_url, hub=hub.name, name="idle")
    with pytest.raises(ibflow.SessionClosedError, match="connect"):
        idle.pacing_statistics()  # nothing heard from the hub yet
    async with (
        RemoteSession(nats_url, hub=hub.name, name="asker") as asker,
        idle,
    ):
        start = idle.pacing_statistics().historical_requests
        await asker.history(AAPL, period="1h", duration="1 D")
        # One pacer for all: the idle remote sees the other's request.
        await eventually(
            lambda: idle.pacing_statistics().historical_requests == start + 1, timeout=3.0
        )
        assert idle.pacing_statistics() == hub._session.pacing_statistics()
        rules = hub._session.pacing_statistics().rules
        with pytest.raises(ibflow.SafetyError, match="Set it on the hub's Session"):
            asker.set_pacing(ibflow.PacingRules(time_scale=0.01))
        assert hub._session.pacing_statistics().rules == rules


async def test_an_answer_too_large_for_one_nats_message_comes_in_parts(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, _sim = await hub_factory()
    nc = await nats.connect(nats_url)
    try:
        # 2,500 ticks in one answer: over NATS's 1 MB (a RemoteSession asks by pages).
        request = {
            "name": "raw",
            "args": encode([AAPL]),
            "kwargs": encode({"start": TICKS_FROM, "count": 2500}),
        }
        msg = await nc.request(Subjects(hub.name).request("historical_ticks"), dumps(request), 10)
        header = loads(msg.data)
        assert header["chunks"] * (nc.max_payload // 2) >= header["size"] > nc.max_payload
    finally:
        await nc.close()


async def test_doctor_shows_the_tick_by_tick_count(hub_factory: HubFactory, nats_url: str) -> None:
    hub, _sim = await hub_factory(max_tick_by_tick=4)
    async with (
        RemoteSession(nats_url, hub=hub.name) as remote,
        remote.ticks(AAPL, "last"),
    ):
        code, out, err = await _doctor("--hub", nats_url, "--name", hub.name)
    assert code == 0, err
    assert "tick-by-tick" in out  # the table may fold the line: the figure on its own
    assert "1/4" in out
