"""Quotes fan out: one market-data line at TWS per instrument, however many remote consumers."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
from pathlib import Path

import pytest

import ibflow
from ibflow.hub import RemoteSession
from ibflow.testing import eventually

from .conftest import HubFactory


async def _quote_with_bid(stream: ibflow.Stream[ibflow.Quote | ibflow.Gap], bid: float) -> None:
    async with asyncio.timeout(5):
        async for item in stream:
            if isinstance(item, ibflow.Quote) and item.bid == bid:
                return


async def test_three_remotes_on_two_instruments_hold_two_lines(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory()
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for i in range(3):
            remote = RemoteSession(nats_url, hub=hub.name, name=f"bot-{i}")
            await stack.enter_async_context(remote)
            for symbol in ("AAPL", "MSFT"):
                stream = remote.quotes(ibflow.Stock(symbol))
                streams.append((symbol, await stack.enter_async_context(stream)))
        assert sim.subscriptions().get("mkt_data") == 2
        assert sorted(hub.subscriptions().values()) == [3, 3]
        stats = hub.statistics()
        assert (stats["subscriptions"], stats["leases"], stats["lines_free"]) == (2, 6, 98)
        sim.push_quote("AAPL", bid=190.25, ask=190.27)
        sim.push_quote("MSFT", bid=410.5, ask=410.52)
        bids = {"AAPL": 190.25, "MSFT": 410.5}
        await asyncio.gather(*(_quote_with_bid(s, bids[symbol]) for symbol, s in streams))
        assert all(s.statistics().received >= 1 for _, s in streams)
    # Every consumer closed: the hub cancels both lines at once, not after the lease.
    await eventually(lambda: sim.subscriptions().get("mkt_data", 0) == 0, timeout=1.0)
    assert hub.subscriptions() == {}


async def test_a_late_consumer_gets_the_last_quote_at_once(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory({"speed": 1.0})  # a slow random walk: quotes are rare
    async with (
        RemoteSession(nats_url, hub=hub.name) as first,
        RemoteSession(nats_url, hub=hub.name) as late,
        first.quotes(ibflow.Stock("AAPL")) as early_quotes,
    ):
        sim.push_quote("AAPL", bid=191.0, ask=191.02)
        await _quote_with_bid(early_quotes, 191.0)
        async with late.quotes(ibflow.Stock("AAPL")) as late_quotes:
            item = await asyncio.wait_for(late_quotes.receive(), 0.5)
            assert isinstance(item, ibflow.Quote)
            assert item.bid == pytest.approx(191.0, abs=0.1)  # the newest, maybe walked a tick
            assert item.contract.con_id is not None
        assert sim.subscriptions().get("mkt_data") == 1


async def test_lines_are_accounted_at_the_hub(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(max_lines=1)
    async with (
        RemoteSession(nats_url, hub=hub.name) as remote,
        remote.quotes(ibflow.Stock("AAPL")),
    ):
        with pytest.raises(ibflow.MarketDataError, match="market-data lines") as full:
            async with remote.quotes(ibflow.Stock("MSFT")):
                pass
        assert full.value.code == 101
        assert sim.subscriptions().get("mkt_data") == 1
        assert sim.request_count("mkt_data") == 1  # TWS never saw the refused one


async def test_unknown_contract_fails_on_entering(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory()
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        with pytest.raises(ibflow.ContractNotFound):
            async with remote.quotes(ibflow.Stock("NOSUCHTHING")):
                pass
        with pytest.raises(ibflow.InvalidRequest):
            remote.quotes("AAPL")  # type: ignore[arg-type]
    assert sim.subscriptions().get("mkt_data", 0) == 0


_CONSUMER = """
import asyncio, sys
import ibflow
from ibflow.hub import RemoteSession

async def main():
    async with RemoteSession(sys.argv[1], hub=sys.argv[2], name="doomed") as remote:
        async with remote.quotes(ibflow.Stock("AAPL")) as quotes:
            await quotes.receive()
            print("ready", flush=True)
            await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_consumer_releases_its_interest(
    hub_factory: HubFactory, nats_url: str, tmp_path: Path
) -> None:
    hub, sim = await hub_factory(lease_ttl=1.0)
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        sim.push_quote("AAPL", bid=190.0, ask=190.02)
        script = tmp_path / "consumer.py"
        script.write_text(textwrap.dedent(_CONSUMER))
        consumer = await asyncio.create_subprocess_exec(
            sys.executable, str(script), nats_url, hub.name, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert consumer.stdout is not None
            line = await asyncio.wait_for(consumer.stdout.readline(), 15)
            assert line == b"ready\n"
            async with remote.quotes(ibflow.Stock("MSFT")):
                assert sim.subscriptions().get("mkt_data") == 2
                await asyncio.sleep(2.0)  # twice the lease: renewals keep both lines
                assert sim.subscriptions().get("mkt_data") == 2
                consumer.kill()  # no goodbye: only the lease can tell
                await consumer.wait()
                await eventually(lambda: sim.subscriptions().get("mkt_data") == 1, timeout=3.0)
                assert len(hub.subscriptions()) == 1
        finally:
            if consumer.returncode is None:
                consumer.kill()
                await consumer.wait()


async def test_quotes_and_other_streams_share_one_lease_engine(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(max_lines=10)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as first,
        RemoteSession(nats_url, hub=hub.name, name="bot-b") as second,
    ):
        [aapl] = await first.qualify(ibflow.Stock("AAPL"))
        async with (
            first.quotes(ibflow.Stock("AAPL")) as spelled,
            second.quotes(aapl) as qualified,  # another spelling of one instrument
            second.ticks(aapl, "midpoint"),
            second.pnl_updates(),
        ):
            sim.push_quote("AAPL", bid=192.5, ask=192.52)
            await asyncio.gather(_quote_with_bid(spelled, 192.5), _quote_with_bid(qualified, 192.5))
            assert sim.request_count("mkt_data") == 1
            assert hub.subscriptions() == {aapl.con_id: 2}
            stats = hub.statistics()
            assert (stats["subscriptions"], stats["leases"], stats["lines_used"]) == (1, 2, 1)
            assert (stats["feeds"], stats["feed_leases"]) == (2, 2)
            assert stats["instruments"][0]["consumers"] == ["bot-a", "bot-b"]
            assert {r["name"]: r["leases"] for r in stats["remotes"]} == {"bot-a": 1, "bot-b": 3}
            assert second.statistics().active_subscriptions == 3
        # All closed: every stream is cancelled at TWS at once, not after the lease.
        await eventually(lambda: sim.subscriptions().get("mkt_data", 0) == 0, timeout=1.0)
        await eventually(lambda: sim.subscriptions().get("tick_by_tick", 0) == 0, timeout=1.0)
        await eventually(lambda: hub.statistics()["feeds"] == 0, timeout=1.0)
        stats = hub.statistics()
        assert (stats["lines_used"], stats["leases"], stats["feed_leases"]) == (0, 0, 0)
