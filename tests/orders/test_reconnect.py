"""Orders across a lost link: reconciled after the reconnect, fills exactly once, no re-send."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TypeVar

import pytest

import ibflow
from ibflow import LimitOrder, OrderEventKind, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL

T = TypeVar("T")


async def until_ready_again(
    session: ibflow.Session, feed: ibflow.Stream[ibflow.StateChange]
) -> None:
    async with asyncio.timeout(5):
        async for change in feed:
            if change.current is ibflow.ConnectionState.READY:
                return


def drain(stream: ibflow.Stream[T]) -> list[T]:
    items: list[T] = []
    while True:
        try:
            items.append(stream.receive_nowait())
        except ibflow.WouldBlock:
            return items


async def test_fill_while_disconnected_arrives_once_after_reconnect(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 180.00))
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    events = session.order_events()
    fills = session.fills_stream()
    feed = session.state_changes()
    sim.drop_connections()
    # The broker fills the order while nobody is connected to hear it.
    sim.push_quote("AAPL", bid=179.90, ask=179.95, last=179.93)
    assert [f.order_id for f in sim.fills] == [trade.order_id]
    await until_ready_again(session, feed)
    # Reconciled before READY: the fill is there, once.
    assert trade.status is OrderStatus.FILLED
    [fill] = trade.fills
    assert fill.exec_id == sim.fills[-1].exec_id
    assert fill.commission is not None
    assert await trade.wait_filled() == (fill,)
    async with asyncio.timeout(3):
        delivered = await fills.receive()
    assert delivered.exec_id == fill.exec_id
    assert delivered.commission == fill.commission
    kinds = [e.kind for e in drain(events)]
    assert kinds.count(OrderEventKind.FILL) == 1
    # Reading executions again (and another reconnect) delivers nothing new.
    assert [f.exec_id for f in await session.fills()] == [fill.exec_id]
    sim.drop_connections()
    await until_ready_again(session, feed)
    assert trade.fills == (fill,)
    assert drain(fills) == []
    assert [e.kind for e in trade.history].count(OrderEventKind.FILL) == 1
    # The order was never sent again.
    assert sim.request_count("place_order") == 1
    await events.aclose()
    await fills.aclose()


async def test_fill_during_a_gateway_restart(session: ibflow.Session, sim: Simulator) -> None:
    trade = await session.place(AAPL, LimitOrder("SELL", 4, 200.00))
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    feed = session.state_changes()
    restart = asyncio.create_task(sim.restart(down_for=0.3))
    await eventually(lambda: session.state is ibflow.ConnectionState.RECONNECTING)
    sim.push_quote("AAPL", bid=200.05, ask=200.07, last=200.06)
    await restart
    await until_ready_again(session, feed)
    [fill] = await trade.wait_filled()
    assert (fill.quantity, fill.side) == (4, ibflow.Side.SELL)
    async with asyncio.timeout(3):
        events = [e async for e in trade.events()]
    assert [e.kind for e in events].count(OrderEventKind.FILL) == 1
    assert sim.request_count("place_order") == 1


async def test_cancel_while_disconnected_is_picked_up(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    feed = session.state_changes()
    restart = asyncio.create_task(sim.restart(down_for=0.3))
    await eventually(lambda: session.state is ibflow.ConnectionState.RECONNECTING)
    with pytest.raises(ibflow.ConnectionLost):  # nothing is queued for later
        await trade.cancel()
    sim.broker.global_cancel()  # someone else cancels it while we are away
    await restart
    await until_ready_again(session, feed)
    assert trade.status is OrderStatus.CANCELLED
    with pytest.raises(ibflow.OrderCancelled):
        await trade.wait_filled()
    assert sim.request_count("cancel_order") == 0


async def test_cancel_cut_off_by_a_lost_link_says_so(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    feed = session.state_changes()
    sim.stall(True)  # TWS goes quiet: the cancel arrives, its answer does not
    waiting = asyncio.create_task(trade.cancel(timeout=None))
    await eventually(lambda: sim.request_count("cancel_order") == 1)
    sim.drop_connections()
    with pytest.raises(ibflow.ConnectionLost, match="sent once"):
        await waiting
    sim.stall(False)
    await until_ready_again(session, feed)
    assert trade.status is OrderStatus.CANCELLED  # reconciled: the cancel had arrived
    assert sim.request_count("cancel_order") == 1


async def test_working_order_stays_working_across_a_reconnect(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    await eventually(lambda: trade.status is OrderStatus.SUBMITTED)
    feed = session.state_changes()
    sim.drop_connections()
    await until_ready_again(session, feed)
    assert trade.status is OrderStatus.SUBMITTED
    assert await trade.cancel() is OrderStatus.CANCELLED
    assert sim.request_count("place_order") == 1


async def test_execution_corrections_replace_and_duplicates_are_ignored(
    session: ibflow.Session, sim: Simulator
) -> None:
    # TWS corrects an execution by sending it again with the last part of its id raised
    # (….01 → ….02), then a commission report for the new id.
    trade = await session.place(AAPL, ibflow.MarketOrder("BUY", 2))
    [original] = await trade.wait_filled()
    await eventually(lambda: trade.fills[0].commission is not None)
    events = session.order_events()
    new_id = sim.correct_fill(original.exec_id, price=190.01)
    assert new_id == f"{original.exec_id.rsplit('.', 1)[0]}.02"
    await eventually(lambda: trade.fills[0].exec_id == new_id)
    [now] = trade.fills
    assert (now.price, now.quantity) == (190.01, 2)
    fill_events = [e for e in trade.history if e.kind is OrderEventKind.FILL]
    assert [e.corrects for e in fill_events] == [None, original]
    assert fill_events[-1].fill == replace(now, commission=None)
    await eventually(lambda: trade.fills[0].commission is not None)
    assert trade.filled == 2
    assert trade.avg_fill_price == pytest.approx(190.01)
    # Reading the executions again (TWS reports only the correction now) adds nothing...
    assert [f.exec_id for f in await session.fills()] == [new_id]
    assert [f.exec_id for f in trade.fills] == [new_id]
    # ...and neither does the reconciliation after a reconnect.
    feed = session.state_changes()
    sim.drop_connections()
    await until_ready_again(session, feed)
    assert [f.exec_id for f in trade.fills] == [new_id]
    kinds = [e.kind for e in drain(events)]
    assert kinds.count(OrderEventKind.FILL) == 1  # only the correction, once
    assert [e.kind for e in trade.history].count(OrderEventKind.FILL) == 2
    await events.aclose()


async def test_a_correction_that_lowers_the_quantity_lowers_filled(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, ibflow.MarketOrder("BUY", 2))
    [original] = await trade.wait_filled()
    new_id = sim.correct_fill(original.exec_id, quantity=1)
    await eventually(lambda: trade.fills[0].exec_id == new_id)
    assert trade.filled == 1
    assert trade.status is OrderStatus.FILLED  # TWS's status stands; the executions say 1
    async with asyncio.timeout(1):  # no wait for executions that will never come
        assert [f.exec_id for f in await trade.wait_filled()] == [new_id]
        kinds = [e.kind async for e in trade.events()]  # ends: nothing more will happen
    assert kinds.count(OrderEventKind.FILL) == 2


async def test_execution_corrected_while_disconnected_replaces_after_reconnect(
    session: ibflow.Session, sim: Simulator
) -> None:
    trade = await session.place(AAPL, ibflow.MarketOrder("BUY", 3))
    [original] = await trade.wait_filled()
    feed = session.state_changes()
    sim.drop_connections()
    new_id = sim.correct_fill(original.exec_id, price=190.00)
    await until_ready_again(session, feed)
    [now] = trade.fills
    assert (now.exec_id, now.price, now.quantity) == (new_id, 190.00, 3)
    last_fill = [e for e in trade.history if e.kind is OrderEventKind.FILL][-1]
    assert last_fill.corrects is not None
    assert last_fill.corrects.exec_id == original.exec_id
    assert trade.filled == 3
    assert trade.status is OrderStatus.FILLED
