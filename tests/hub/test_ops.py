"""Operating a hub: its statistics on NATS and in ``ibflow doctor --hub``, and its one pacer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import timedelta
from pathlib import Path

import nats
import pytest

import ibflow
from ibflow.hub import Hub, RemoteSession
from ibflow.hub._stats import summary
from ibflow.sim import Simulator
from ibflow.testing import TEST_SPEED, SimFactory, eventually, session_for

from .conftest import HubFactory, NatsServer, _free_port
from .test_access import ConfiguredNats
from .test_reads import WEDNESDAY

IBFLOW = [sys.executable, "-c", "from ibflow.cli import main; main()"]


async def _doctor(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *IBFLOW,
        "doctor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_statistics_are_published_and_answered(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, _ = await hub_factory(stats_interval=0.2, max_lines=10)
    nc = await nats.connect(nats_url)
    published: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def on_stats(msg: nats.aio.msg.Msg) -> None:
        published.put_nowait(json.loads(msg.data))

    try:
        await nc.subscribe(f"ibflow.{hub.name}.stats", cb=on_stats)
        async with contextlib.AsyncExitStack() as stack:
            for name in ("bot-a", "bot-b"):
                remote = await stack.enter_async_context(
                    RemoteSession(nats_url, hub=hub.name, name=name)
                )
                await stack.enter_async_context(remote.quotes(ibflow.Stock("AAPL")))
            await remote.positions()
            stats = hub.statistics()
            assert (stats["consumers"], stats["subscriptions"], stats["leases"]) == (2, 1, 2)
            assert (stats["lines_used"], stats["lines_limit"], stats["lines_free"]) == (1, 10, 9)
            [aapl] = stats["instruments"]
            assert (aapl["symbol"], aapl["leases"], aapl["consumers"]) == (
                "AAPL",
                2,
                ["bot-a", "bot-b"],
            )
            assert [r["name"] for r in stats["remotes"]] == ["bot-a", "bot-b"]
            assert all(r["connected"] and r["leases"] == 1 for r in stats["remotes"])
            assert stats["state"] == "ready"
            assert stats["tws"]["accounts"] == ["DU1234567"]
            assert "remote sessions" in summary(stats)
            async with asyncio.timeout(5):  # the periodic message shows the same picture
                while (seen := await published.get())["leases"] != 2:
                    pass
            assert seen["hub"] == hub.name
            assert seen["consumers"] == 2
            reply = await nc.request(f"ibflow.{hub.name}.stats.get", b"", timeout=5)
            assert json.loads(reply.data)["instruments"][0]["consumers"] == ["bot-a", "bot-b"]
        # Both closed their streams: no line left, the names stay known a while.
        await eventually(lambda: hub.statistics()["subscriptions"] == 0, timeout=2)
        assert len(hub.statistics()["remotes"]) == 2
    finally:
        await nc.close()


async def test_doctor_shows_a_hub_and_says_what_is_wrong(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, _ = await hub_factory()
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as remote,
        remote.quotes(ibflow.Stock("MSFT")),
    ):
        # All at once: each is a fresh process. Without --name: every hub heard publishing
        # (the others of this run may be there too).
        found, table, every, missing, unreachable, two_ways, misplaced = await asyncio.gather(
            _doctor("--hub", nats_url, "--name", hub.name, "--json"),
            _doctor("--hub", nats_url, "--name", hub.name),
            _doctor("--hub", nats_url, "--json"),
            _doctor("--hub", nats_url, "--name", "nobody-here"),
            _doctor("--hub", "nats://127.0.0.1:1", "--name", "desk1"),
            _doctor("--hub", nats_url, "--nats-token", "t", "--nats-creds", "x"),
            _doctor("--name", "desk1"),
        )
    assert found[0] == 0, found[2]
    stats = json.loads(found[1])
    assert stats["hub"] == hub.name
    assert stats["instruments"][0]["symbol"] == "MSFT"
    assert stats["instruments"][0]["consumers"] == ["bot-a"]
    assert table[0] == 0, table[2]
    assert f"ibflow hub {hub.name}" in table[1]
    assert "instruments at TWS" in table[1]
    assert "bot-a" in table[1]
    assert every[0] == 0, every[2]
    assert hub.name in [s["hub"] for s in json.loads(every[1])]
    assert missing[0] == 3
    assert "no hub named 'nobody-here' answers" in missing[2]
    assert "ibflow hub --nats" in missing[2]
    assert unreachable[0] == 1
    assert unreachable[2].startswith(
        "ibflow: error: cannot reach the NATS server at nats://127.0.0.1:1"
    )
    assert two_ways[0] == 2
    assert "one way to authenticate" in two_ways[2]
    assert misplaced[0] == 2
    assert "go with --hub" in misplaced[2]
    runs = (found, table, every, missing, unreachable, two_ways, misplaced)
    assert not any("Traceback" in err for _, _, err in runs)


async def test_history_from_two_remotes_shares_the_hubs_one_pacer(
    ib_sim_factory: SimFactory, nats_url: str, hub_name: str
) -> None:
    """Twelve small-bar requests for one contract from two remotes within IB's 2 s window: the
    hub's pacer holds some back, so the simulator (IB's rules, time-scaled) refuses none."""
    sim = await ib_sim_factory(pacing="ib")
    async with (
        session_for(sim) as session,
        Hub(session, nats_url, name=hub_name) as hub,
        RemoteSession(nats_url, hub=hub_name, name="bot-a") as a,
        RemoteSession(nats_url, hub=hub_name, name="bot-b") as b,
    ):
        # A real-seconds margin of 1 s on every window: the burst rule holds back for sure.
        session.set_pacing(ibflow.PacingRules(time_scale=TEST_SPEED, margin=1.0))
        aapl = ibflow.Stock("AAPL")
        ends = [WEDNESDAY - timedelta(minutes=m) for m in range(12)]
        requests = [
            remote.history(aapl, period="30s", duration="3600 S", end=end)
            for remote, end in zip([a, b] * 6, ends, strict=True)
        ]
        answers = await asyncio.gather(*requests)
        assert all(answers)
        pacing = hub.statistics()["pacing"]
        assert pacing["violations"] == 0  # the simulator answered no 162
        assert pacing["waits"] > 0  # the burst rule (5 per contract per 2 s) held some back
        assert pacing["historical_requests"] == sim.request_count("historical_data") == 12
        # Asked not to wait past its timeout, a remote gets the pacer's answer at once, as a
        # local session would: PacingViolation with retry_after, nothing sent.
        for end in (WEDNESDAY - timedelta(hours=h) for h in range(1, 7)):
            with contextlib.suppress(ibflow.PacingViolation):
                await a.history(aapl, period="30s", duration="3600 S", end=end, timeout=0.1)
        with pytest.raises(ibflow.PacingViolation) as held:
            await b.history(
                aapl,
                period="30s",
                duration="3600 S",
                end=WEDNESDAY - timedelta(days=1),
                timeout=0.1,
            )
        assert held.value.code == 162
        assert held.value.retry_after is not None
        assert 0 < held.value.retry_after <= 1.1
        assert "held the historical request back" in str(held.value)
        assert hub.statistics()["pacing"]["violations"] == 0
        await asyncio.sleep(held.value.retry_after)
        bars = await b.history(
            aapl, period="30s", duration="3600 S", end=WEDNESDAY - timedelta(days=1), timeout=5
        )
        assert bars


async def test_bad_settings_are_refused_before_connecting(ib_sim_factory: SimFactory) -> None:
    session = session_for(await ib_sim_factory())
    for bad in ({"replicas": 0}, {"replicas": True}, {"stats_interval": 0}, {"log_interval": -1}):
        with pytest.raises(ibflow.InvalidRequest):
            Hub(session, "nats://127.0.0.1:1", name="desk1", **bad)  # type: ignore[arg-type]


async def test_a_three_node_cluster_serves_bots_on_any_node(
    ib_sim: Simulator, tmp_path: Path, hub_name: str
) -> None:
    """The deployment page's cluster: three nodes with routes and JetStream, the hub's bucket on
    three replicas, a bot on another node than the hub; a node's loss is only a reconnect."""
    routes = [_free_port() for _ in range(3)]
    nodes = [
        ConfiguredNats(
            tmp_path / f"js{i}",
            f"server_name: n{i}\ncluster {{ name: desk, listen: 127.0.0.1:{routes[i]}, routes: ["
            + ", ".join(f"nats-route://127.0.0.1:{port}" for port in routes)
            + "] }",
        )
        for i in range(3)
    ]
    for node in nodes:
        node.start()
    try:
        every = ",".join(node.url for node in nodes)
        async with session_for(ib_sim) as session:
            hub = Hub(session, every, name=hub_name, replicas=3, connect_timeout=20)
            async with asyncio.timeout(30):
                while True:  # JetStream elects its meta leader a moment after the routes form
                    try:
                        await hub.start()
                        break
                    except ibflow.ConnectError:
                        await asyncio.sleep(0.5)
            try:
                async with RemoteSession(nodes[2].url, hub=hub_name, name="far-bot") as bot:
                    assert await bot.positions()
                    nodes[0].stop()  # the hub's first server; it moves to another node
                    async with asyncio.timeout(15):
                        while True:
                            with contextlib.suppress(ibflow.ConnectionLost, ibflow.RequestTimeout):
                                assert await bot.account_summary(timeout=2)
                                break
                    trade = await bot.place(ibflow.Stock("AAPL"), ibflow.MarketOrder("BUY", 1))
                    assert trade.order_id > 0
            finally:
                await hub.aclose()
    finally:
        for node in nodes:
            node.stop()


class NatsWithoutJetStream(NatsServer):
    def command(self) -> list[str]:
        return ["-a", "127.0.0.1", "-p", str(self.port)]


async def test_a_server_without_jetstream_is_a_connect_error(
    ib_sim: Simulator, tmp_path: Path, hub_name: str
) -> None:
    server = NatsWithoutJetStream(tmp_path)
    server.start()
    try:
        async with session_for(ib_sim) as session:
            hub = Hub(session, server.url, name=hub_name, connect_timeout=5)
            with pytest.raises(ibflow.ConnectError, match="start nats-server with -js"):
                await hub.start()
            assert session.state is ibflow.ConnectionState.READY  # the session stays the caller's
    finally:
        server.stop()
