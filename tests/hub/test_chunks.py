"""Answers larger than one NATS message travel in parts and come back whole, or not at all."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nats
import pytest
import pytest_asyncio
from nats.aio.msg import Msg

import ibflow
from ibflow.hub import Hub, RemoteSession
from ibflow.hub._chunks import ask
from ibflow.hub._protocol import Subjects, dumps, encode
from ibflow.testing import SimFactory, eventually, session_for

from .conftest import HubFactory, NatsServer, _free_port

AAPL = ibflow.Stock("AAPL")
NEW_YORK = ZoneInfo("America/New_York")
WEDNESDAY = datetime(2024, 3, 6, 15, 0, tzinfo=NEW_YORK)
SMALL = 65536  # max_payload of the small server


class SmallNats(NatsServer):
    """A nats-server carrying at most 64 KiB per message, with its monitoring port open."""

    def __init__(self, store: Path) -> None:
        super().__init__(store)
        self.monitor = _free_port()
        self.config = store.parent / "small.conf"
        self.config.write_text(f"max_payload: {SMALL}\n")

    def command(self) -> list[str]:
        return [*super().command(), "-c", str(self.config), "-m", str(self.monitor)]

    def subscriptions(self, name: str) -> int:
        """Subscriptions the server holds for the client connected under ``name``."""
        url = f"http://127.0.0.1:{self.monitor}/connz"
        with urllib.request.urlopen(url, timeout=5) as answer:
            connections = json.load(answer)["connections"]
        return sum(c.get("subscriptions", 0) for c in connections if c.get("name") == name)


@pytest.fixture
def small_nats(tmp_path: Path) -> Iterator[SmallNats]:
    server = SmallNats(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def small_hub(
    ib_sim_factory: SimFactory, small_nats: SmallNats, hub_name: str
) -> AsyncIterator[tuple[Hub, Any]]:
    sim = await ib_sim_factory()
    async with session_for(sim) as session:
        hub = Hub(session, small_nats.url, name=hub_name)
        await hub.start()
        try:
            yield hub, sim
        finally:
            await hub.aclose()


async def test_a_long_download_equals_the_sessions(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory()
    span: dict[str, Any] = {
        "start": datetime(2024, 1, 2, tzinfo=NEW_YORK),
        "end": datetime(2024, 3, 1, tzinfo=NEW_YORK),
        "period": "5 mins",
        "rth": False,
        "cache": False,
    }
    async with (
        RemoteSession(nats_url, hub=hub.name) as remote,
        session_for(sim, client_id=9) as direct,
    ):
        bars = await remote.download(AAPL, **span)
        direct_bars = await direct.download(AAPL, progress=False, **span)
    assert len(dumps(encode(bars))) > 1024 * 1024  # past NATS's default max_payload
    assert bars == direct_bars
    assert [b.time.tzinfo for b in bars] == [b.time.tzinfo for b in direct_bars]


async def test_a_small_max_payload_carries_a_large_answer_in_many_parts(
    small_hub: tuple[Hub, Any], small_nats: SmallNats
) -> None:
    hub, sim = small_hub
    watcher = await nats.connect(small_nats.url)
    parts: list[Msg] = []

    async def count(msg: Msg) -> None:
        if msg.headers and "Ibflow-Part" in msg.headers:
            parts.append(msg)

    await watcher.subscribe("_INBOX.>", cb=count)
    await watcher.flush()
    # 1,600 bars, the most one history() request carries (IB's step-size table): ~290 kB.
    options: dict[str, Any] = {"period": "3 mins", "duration": "1 W", "end": WEDNESDAY}
    try:
        async with (
            RemoteSession(small_nats.url, hub=hub.name) as remote,
            session_for(sim, client_id=9) as direct,
        ):
            bars = await remote.history(AAPL, rth=False, **options)
            direct_bars = await direct.history(AAPL, rth=False, **options)
        assert bars == direct_bars
        size = len(dumps({"ok": encode(bars)}))
        assert size > 4 * SMALL
        assert [b.time.tzinfo for b in bars] == [b.time.tzinfo for b in direct_bars]
        await eventually(lambda: len(parts) >= size // (SMALL // 2), timeout=5.0)
        assert all(len(p.data) <= SMALL // 2 for p in parts)
    finally:
        await watcher.close()


async def test_a_cancelled_call_leaves_no_subscription(
    small_hub: tuple[Hub, Any], small_nats: SmallNats
) -> None:
    hub, sim = small_hub
    async with RemoteSession(small_nats.url, hub=hub.name, name="quitter") as remote:
        name = "ibflow-quitter"
        before = small_nats.subscriptions(name)
        assert before > 0  # the remote's own: the hub's state, ...
        sim.stall()  # TWS holds its answer: the call waits on its inbox
        call = asyncio.ensure_future(
            remote.history(AAPL, period="3 mins", duration="1 W", end=WEDNESDAY, rth=False)
        )
        await eventually(lambda: small_nats.subscriptions(name) > before, timeout=5.0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await eventually(lambda: small_nats.subscriptions(name) == before, timeout=5.0)
        sim.stall(on=False)
        # The remote still answers after the cancelled call.
        assert await remote.current_time()


async def test_a_missing_part_is_a_timeout_never_a_partial_answer(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    subject = Subjects("halfway").request("history")

    async def answer_in_part(msg: Msg) -> None:
        await nc.publish(msg.reply, dumps({"chunks": 3, "size": 30, "id": "x"}))
        for index in range(2):  # the third part never comes
            await nc.publish(msg.reply, b"0" * 10, headers={"Ibflow-Part": f"x {index}"})

    await nc.subscribe(subject, cb=answer_in_part)
    try:
        with pytest.raises(ibflow.RequestTimeout, match="2 of 3 parts"):
            await ask(nc, subject, b"{}", 0.5, "history")
    finally:
        await nc.close()


async def test_parts_out_of_order_are_refused(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    subject = Subjects("shuffled").request("history")

    async def answer_shuffled(msg: Msg) -> None:
        await nc.publish(msg.reply, dumps({"chunks": 2, "size": 5, "id": "y"}))
        for index, part in ((1, b"2]"), (0, b"[1,")):
            await nc.publish(msg.reply, part, headers={"Ibflow-Part": f"y {index}"})

    await nc.subscribe(subject, cb=answer_shuffled)
    try:
        with pytest.raises(ibflow.IBFlowError, match="part 0 of 2 came as 'y 1'"):
            await ask(nc, subject, b"{}", 5.0, "history")
    finally:
        await nc.close()
