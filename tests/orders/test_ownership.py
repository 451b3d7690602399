"""Adopting earlier orders: a restarted bot owns its orders again, another client id's orders are
visible but refused before anything is sent, and client id 0 adopts orders placed by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import ibflow
from ibflow import LimitOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .conftest import AAPL

BOT = ibflow.client_id_for("ownership-test-bot")


def _held(sim: Simulator, perm_id: int | None) -> ibflow.sim.SimOrder:
    return next(o for o in sim.orders if o.perm_id == perm_id)


async def test_a_bot_restarted_with_its_client_id_adopts_cancels_and_modifies_its_orders(
    sim: Simulator,
) -> None:
    async with session_for(sim, client_id=BOT) as first:
        keep = await first.place(AAPL, LimitOrder("BUY", 5, 150.00, order_ref="keep"))
        drop = await first.place(AAPL, LimitOrder("BUY", 3, 151.00, order_ref="drop"))
    async with session_for(sim, client_id=BOT) as again:
        adopted = {t.perm_id: t for t in again.trades()}
        assert set(adopted) == {keep.perm_id, drop.perm_id}
        kept, dropped = adopted[keep.perm_id], adopted[drop.perm_id]
        assert (kept.order_id, kept.client_id, kept.status) == (
            keep.order_id,
            BOT,
            OrderStatus.SUBMITTED,
        )
        assert kept.owned
        assert kept.adopted
        assert (kept.order.quantity, kept.order.limit_price, kept.order.order_ref) == (
            5,
            150.00,
            "keep",
        )
        assert await dropped.cancel() is OrderStatus.CANCELLED
        # A limit at the ask fills: the fill arrives on the adopted Trade.
        await kept.modify(limit_price=190.02)
        [fill] = await kept.wait_filled(timeout=10)
        assert (fill.quantity, fill.price, fill.order_id) == (5, 190.02, keep.order_id)
        assert kept.status is OrderStatus.FILLED


async def test_another_client_id_s_orders_are_visible_not_owned_and_refused_before_sending(
    sim: Simulator,
) -> None:
    async with session_for(sim, client_id=41) as earlier:
        theirs = await earlier.place(AAPL, LimitOrder("BUY", 5, 150.00))
    async with session_for(sim, client_id=42) as plain:
        assert plain.trades() == ()  # without all_open_orders, TWS shows only our own
    async with session_for(sim, client_id=43, all_open_orders=True) as watcher:
        [trade] = watcher.trades()
        assert (trade.order_id, trade.client_id, trade.perm_id) == (
            theirs.order_id,
            41,
            theirs.perm_id,
        )
        assert not trade.owned
        assert trade.adopted
        assert trade.status is OrderStatus.SUBMITTED
        sent = (sim.request_count("cancel_order"), sim.request_count("place_order"))
        with pytest.raises(ibflow.NotOrderOwner) as cancel:
            await trade.cancel()
        assert isinstance(cancel.value, ibflow.SafetyError)
        assert cancel.value.owner_client_id == 41
        assert cancel.value.order_id == theirs.order_id
        message = str(cancel.value)
        assert "client id 41" in message
        assert "client_id=41" in message
        assert "client_id_for" in message
        assert "Nothing was sent" in message
        with pytest.raises(ibflow.NotOrderOwner, match="client_id=41"):
            await trade.modify(limit_price=151.00)
        assert (sim.request_count("cancel_order"), sim.request_count("place_order")) == sent
        held = _held(sim, theirs.perm_id)
        assert (held.status, held.lmt_price, held.total_quantity) == ("Submitted", 150.00, 5)


async def test_client_zero_adopts_orders_placed_by_hand_and_may_change_them(
    sim: Simulator,
) -> None:
    before = sim.place_manual("AAPL", "BUY", 2, limit_price=150.00)
    async with session_for(sim, client_id=0) as binder:
        # Open at connect: the start-up reqOpenOrders binds it.
        [old] = binder.trades()
        assert old.perm_id == before
        assert old.owned
        assert (old.client_id, old.order_id < 0) == (0, True)
        # Placed while bound (reqAutoOpenOrders): adopted as it arrives.
        after = sim.place_manual("AAPL", "SELL", 4, limit_price=230.00)
        await eventually(lambda: any(t.perm_id == after for t in binder.trades()))
        [new] = [t for t in binder.trades() if t.perm_id == after]
        assert new.owned
        assert new.order_id < 0
        assert new.order.side is ibflow.Side.SELL
        await new.modify(limit_price=231.00)
        assert _held(sim, after).lmt_price == 231.00
        assert await new.cancel() is OrderStatus.CANCELLED
        assert await old.cancel() is OrderStatus.CANCELLED


async def test_an_unbound_manual_order_is_explained(sim: Simulator) -> None:
    perm_id = sim.place_manual("AAPL", "BUY", 2, limit_price=150.00)
    async with session_for(sim, client_id=44, all_open_orders=True) as watcher:
        [trade] = watcher.trades()
        assert (trade.perm_id, trade.order_id, trade.client_id) == (perm_id, 0, 0)
        assert not trade.owned
        with pytest.raises(ibflow.NotOrderOwner, match="placed by hand in TWS") as refused:
            await trade.cancel()
        assert refused.value.owner_client_id == 0
        assert "client_id=0" in str(refused.value)
        assert sim.request_count("cancel_order") == 0
    async with session_for(sim, client_id=45, all_open_orders=True) as later:
        # Once client id 0 bound it, it shows its negative id: still not this session's.
        async with session_for(sim, client_id=0):
            pass
        await later.open_orders()
        await eventually(lambda: later.trades()[0].order_id < 0)
        [trade] = later.trades()
        with pytest.raises(ibflow.NotOrderOwner, match="bound to client id 0"):
            await trade.modify(limit_price=149.00)


async def test_an_adopted_order_that_fills_while_the_link_is_down_reports_the_fill_once(
    sim: Simulator,
) -> None:
    async with session_for(sim, client_id=BOT) as first:
        placed = await first.place(AAPL, LimitOrder("BUY", 5, 180.00))
    async with session_for(sim, client_id=BOT) as again:
        [trade] = again.trades()
        assert trade.perm_id == placed.perm_id
        feed = again.state_changes()
        sim.drop_connections()
        sim.push_quote("AAPL", bid=179.90, ask=179.95, last=179.93)  # fills while nobody hears
        async with asyncio.timeout(5):
            async for change in feed:
                if change.current is ibflow.ConnectionState.READY:
                    break
        [fill] = await trade.wait_filled(timeout=5)
        assert fill.exec_id == sim.fills[-1].exec_id
        assert trade.status is OrderStatus.FILLED
        assert [f.exec_id for f in trade.fills] == [fill.exec_id]
        assert again.trades() == (trade,)


async def test_adopted_bracket_children_keep_their_parent_when_modified(sim: Simulator) -> None:
    async with session_for(sim, client_id=BOT) as first:
        placed = await first.place(AAPL, ibflow.bracket("BUY", 2, 190.02, 200.00, 180.00))
        assert isinstance(placed, ibflow.BracketTrade)
        await placed.parent.wait_filled(timeout=10)
    parent_id = placed.parent.order_id
    async with session_for(sim, client_id=BOT) as again:
        children = {t.perm_id: t for t in again.trades()}
        assert set(children) == {placed.take_profit.perm_id, placed.stop_loss.perm_id}
        take_profit = children[placed.take_profit.perm_id]
        assert take_profit.parent_id == parent_id
        await take_profit.modify(limit_price=201.00)
        held = _held(sim, take_profit.perm_id)
        assert (held.lmt_price, held.parent_id) == (201.00, parent_id)
        assert await take_profit.cancel() is OrderStatus.CANCELLED


async def test_another_client_id_s_trade_ends_when_a_read_no_longer_lists_it(
    sim: Simulator,
) -> None:
    async with session_for(sim, client_id=46) as owner:
        theirs = await owner.place(AAPL, LimitOrder("BUY", 5, 150.00))
        async with session_for(sim, client_id=47, all_open_orders=True) as watcher:
            [trade] = watcher.trades()
            assert trade.status is OrderStatus.SUBMITTED
            await theirs.cancel()
            # TWS tells client id 47 nothing; its next read of the open orders finds out.
            assert await watcher.open_orders() == []
            assert trade.status is OrderStatus.CANCELLED
            assert await trade.wait_done(timeout=1) is OrderStatus.CANCELLED


async def test_an_order_ibflow_cannot_re_send_as_it_is_stays_a_row_not_a_trade(
    sim: Simulator,
) -> None:
    until = datetime.now(UTC) + timedelta(days=2)
    async with session_for(sim, client_id=BOT) as first:
        gtd = await first.place(AAPL, LimitOrder("BUY", 5, 150.00, tif="GTD", good_till=until))
    async with session_for(sim, client_id=BOT) as again:
        # An open order does not carry a GTD order's expiry: a modify could not keep it.
        assert again.trades() == ()
        [row] = await again.open_orders()
        assert (row.perm_id, row.tif) == (gtd.perm_id, ibflow.TimeInForce.GTD)
        assert await again.cancel_order(gtd.order_id) is OrderStatus.CANCELLED
