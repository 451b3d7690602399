"""Orders through a hub: placed once per client key, refused for read-only names."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import nats
import nats.errors
import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.hub import RemoteBracketTrade, RemoteSession
from ibflow.hub._protocol import Subjects, dumps, encode

from .conftest import HubFactory

AAPL = ibflow.Stock("AAPL")
# At normal speed the simulator's random walk stays far from resting test orders.
NORMAL_SPEED: dict[str, Any] = {"speed": 1.0}


async def test_a_market_order_fills_through_the_hub(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    async with RemoteSession(nats_url, hub=hub.name, name="bot-a") as remote:
        trade = await remote.place(AAPL, MarketOrder("BUY", 10))
        assert not trade.duplicate
        [fill] = await trade.wait_filled(timeout=5)
        assert (fill.quantity, fill.price, fill.side) == (10, 190.02, ibflow.Side.BUY)
        assert fill.exec_id == sim.fills[-1].exec_id
        assert fill.order_id == trade.order_id
        assert trade.status is OrderStatus.FILLED
        assert await trade.wait_done() is OrderStatus.FILLED
        assert [f.exec_id for f in await remote.fills()] == [fill.exec_id]
    assert sim.request_count("place_order") == 1


async def test_the_same_key_places_once(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as a,
        RemoteSession(nats_url, hub=hub.name, name="bot-b") as b,
    ):
        order = LimitOrder("BUY", 5, 150.00)
        first, second = await asyncio.gather(
            a.place(AAPL, order, key="rebalance-42"), b.place(AAPL, order, key="rebalance-42")
        )
        retry = await a.place(AAPL, order, key="rebalance-42")
        assert first.order_id == second.order_id == retry.order_id
        assert sorted([first.duplicate, second.duplicate]) == [False, True]
        assert retry.duplicate
        other = await a.place(AAPL, order, key="rebalance-43")
        assert other.order_id != first.order_id
    assert sim.request_count("place_order") == 2
    assert hub.statistics()["orders_relayed"] == 2


async def test_a_retry_after_a_lost_reply_never_places_twice(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    subjects = Subjects(hub.name)
    request = {
        "name": "bot-a",
        "args": encode([AAPL, LimitOrder("BUY", 1, 150.00)]),
        "kwargs": encode({"key": "k-lost", "timeout": 5.0}),
    }
    sim.delay(0.3)  # TWS is slow: the first request's reply comes too late for its caller
    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request(subjects.request("place"), dumps(request), timeout=0.05)
    finally:
        await nc.close()
    async with RemoteSession(nats_url, hub=hub.name, name="bot-a") as remote:
        trade = await remote.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k-lost")
        assert trade.duplicate  # the first request's order, answered once it was acknowledged
        sim.delay(0)
        assert await trade.refresh() in (OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED)
    assert sim.request_count("place_order") == 1
    assert [o.order_id for o in sim.orders] == [trade.order_id]


async def test_a_refused_order_stays_refused_for_its_key(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        for _ in range(2):
            with pytest.raises(ibflow.ContractNotFound):
                await remote.place(ibflow.Stock("NOSUCHTHING"), MarketOrder("BUY", 1), key="x")
    assert sim.request_count("place_order") == 0


async def test_a_bracket_is_placed_once_per_key(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    order = ibflow.bracket("BUY", 1, entry_limit=150, take_profit=160, stop_loss=140)
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        first = await remote.place(AAPL, order, key="bracket-1")
        again = await remote.place(AAPL, order, key="bracket-1")
        assert isinstance(first, RemoteBracketTrade)
        assert isinstance(again, RemoteBracketTrade)
        assert again.duplicate
        assert not first.duplicate
        ids = [t.order_id for t in first]
        assert [t.order_id for t in again] == ids
        assert first.take_profit.order.limit_price == 160
        assert set(await first.cancel()) == {OrderStatus.CANCELLED}
    assert sim.request_count("place_order") == 3


async def test_read_only_names_may_not_trade(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED, readonly_names=["notebook"])
    async with (
        RemoteSession(nats_url, hub=hub.name, name="notebook") as viewer,
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as trader,
    ):
        assert viewer.readonly
        assert not trader.readonly
        with pytest.raises(ibflow.SafetyError, match="read-only"):
            await viewer.place(AAPL, MarketOrder("BUY", 1))
        assert await viewer.positions() == await trader.positions()
        trade = await trader.place(AAPL, LimitOrder("BUY", 2, 150.00))
        with pytest.raises(ibflow.SafetyError):  # even a key already placed is refused
            await viewer.place(AAPL, LimitOrder("BUY", 2, 150.00), key=trade.key)
        assert await trade.cancel() is OrderStatus.CANCELLED
        with pytest.raises(ibflow.OrderCancelled):
            await trade.wait_filled()
    assert sim.request_count("place_order") == 1


async def test_an_order_ref_is_kept_before_the_hubs_tag(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    async with RemoteSession(nats_url, hub=hub.name, name="bot-r") as remote:
        with pytest.raises(ibflow.InvalidRequest, match="order_ref is kept before"):
            await remote.place(AAPL, LimitOrder("BUY", 1, 150.00, order_ref="r" * 120), key="r-1")
        trade = await remote.place(AAPL, LimitOrder("BUY", 1, 150.00, order_ref="mine"), key="r-1")
        bracket = await remote.place(
            AAPL, ibflow.bracket("BUY", 1, 150.00, take_profit=160.00, stop_loss=140.00)
        )
        refs = {o.order_id: o.order_ref for o in sim.orders}
        assert str(refs[trade.order_id]).startswith("mine|hub:bot-r:")
        assert trade.order.order_ref == refs[trade.order_id]
        tags = {refs[t.order_id] for t in bracket.trades}
        assert len(tags) == 1  # one tag for every leg
        assert str(tags.pop()).startswith("hub:bot-r:")
        await trade.cancel()
        await bracket.cancel()
    assert sim.request_count("place_order") == 4  # the refused order_ref burnt no key


async def test_a_remote_name_changes_and_cancels_only_its_own_orders(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory(NORMAL_SPEED)
    async with (
        RemoteSession(nats_url, hub=hub.name, name="owner") as owner,
        RemoteSession(nats_url, hub=hub.name, name="stranger") as stranger,
    ):
        trade = await owner.place(AAPL, LimitOrder("BUY", 1, 150.00), key="own-1")
        with pytest.raises(ibflow.InvalidRequest, match="only that remote session"):
            await stranger.cancel_order(trade.order_id)
        for call in ("order.cancel", "order.modify"):
            with pytest.raises(ibflow.InvalidRequest, match="only that remote session"):
                await stranger._call(call, [trade.order_id], {}, 5)
        with pytest.raises(ibflow.InvalidRequest, match="only that remote session"):
            await stranger._call("group.cancel", [[trade.order_id]], {}, 5)
        assert sim.request_count("cancel_order") == 0
        assert await owner.cancel_order(trade.order_id) is OrderStatus.CANCELLED


async def test_a_claim_this_hub_left_unfinished_is_settled_by_what_tws_knows(
    hub_factory: HubFactory, nats_url: str
) -> None:
    """A key whose claim the hub wrote but never finished (its bucket stopped answering) is
    not waited on forever: TWS, which never got the order, decides."""
    hub, sim = await hub_factory(NORMAL_SPEED)
    nc = await nats.connect(nats_url)
    try:
        bucket = await nc.jetstream().key_value(f"ibflow_{hub.name}_orders")
        digest = hashlib.sha256(b"k-stale").hexdigest()
        await bucket.put(digest, dumps({"state": "placing", "by": "bot", "hub": hub._id}))
    finally:
        await nc.close()
    async with RemoteSession(nats_url, hub=hub.name, name="bot") as remote:
        with pytest.raises(ibflow.ConnectionLost, match="nothing was placed"):
            await remote.place(AAPL, MarketOrder("BUY", 1), key="k-stale", timeout=5)
    assert sim.request_count("place_order") == 0
