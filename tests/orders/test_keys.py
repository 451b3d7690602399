"""Client order keys: one order per key, whoever asks and however often."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL


def placed(sim: Simulator) -> int:
    return sim.request_count("place_order")


async def test_a_known_key_returns_its_trade_and_sends_nothing(
    session: ibflow.Session, sim: Simulator
) -> None:
    first = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k1")
    assert first.order.order_ref == "k1"
    again = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k1")
    assert again is first
    assert placed(sim) == 1
    [order] = sim.orders
    assert order.order_ref == "k1"
    # TWS hands the key back on the open order.
    [row] = await session.open_orders()
    assert row.order_ref == "k1"


async def test_concurrent_places_with_one_key_send_once(
    session: ibflow.Session, sim: Simulator
) -> None:
    trades = await asyncio.gather(
        *(session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="same") for _ in range(5))
    )
    assert all(t is trades[0] for t in trades)
    assert placed(sim) == 1


async def test_keys_are_validated_before_anything_is_sent(
    session: ibflow.Session, sim: Simulator
) -> None:
    for bad in ("", "has space", "x" * 65, "naïve", "tab\there"):
        with pytest.raises(ibflow.InvalidRequest, match="key must be"):
            await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key=bad)
    with pytest.raises(ibflow.InvalidRequest, match="names the legs"):
        await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="b1:tp")
    with pytest.raises(ibflow.InvalidRequest, match="key must be a string"):
        await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key=7)  # type: ignore[call-overload]
    with pytest.raises(ibflow.InvalidRequest, match="order_ref"):
        await session.place(AAPL, LimitOrder("BUY", 1, 150.00, order_ref="mine"), key="other")
    same = await session.place(AAPL, LimitOrder("BUY", 1, 150.00, order_ref="k"), key="k")
    assert same.order.order_ref == "k"
    assert placed(sim) == 1


async def test_a_key_another_client_placed_is_found_at_tws(
    session: ibflow.Session, sim: Simulator, make_session: Callable[..., ibflow.Session]
) -> None:
    theirs = await session.place(AAPL, LimitOrder("BUY", 2, 150.00), key="shared")
    other = make_session(client_id=2)
    await other.connect()
    found = await other.place(AAPL, LimitOrder("BUY", 2, 150.00), key="shared")
    assert placed(sim) == 1
    assert (found.order_id, found.client_id, found.perm_id) == (
        theirs.order_id,
        1,
        theirs.perm_id,
    )
    assert found.status is OrderStatus.SUBMITTED
    # Another client id's order: this session may not change it.
    with pytest.raises(ibflow.NotOrderOwner, match="client id 1"):
        await found.cancel()


async def test_a_completed_key_is_found_with_its_fills(
    session: ibflow.Session, sim: Simulator, make_session: Callable[..., ibflow.Session]
) -> None:
    done = await session.place(AAPL, MarketOrder("BUY", 3), key="done-1")
    await done.wait_filled(timeout=5)
    other = make_session(client_id=2)
    await other.connect()
    found = await other.place(AAPL, MarketOrder("BUY", 3), key="done-1")
    assert placed(sim) == 1
    assert found.status is OrderStatus.FILLED
    assert [f.exec_id for f in found.fills] == [f.exec_id for f in done.fills]
    # TWS hands the key back on the completed order and on every execution.
    [completed] = await other.completed_orders()
    assert completed.order_ref == "done-1"
    assert {f.order_ref for f in await other.fills()} == {"done-1"}


async def test_bracket_legs_get_derived_keys(session: ibflow.Session, sim: Simulator) -> None:
    spec = ibflow.bracket("BUY", 1, 150.00, 160.00, 140.00)
    first = await session.place(AAPL, spec, key="b1")
    assert [t.order.order_ref for t in first] == ["b1", "b1:tp", "b1:sl"]
    again = await session.place(AAPL, spec, key="b1")
    assert list(again) == list(first)
    assert placed(sim) == 3
    group = ibflow.oca(LimitOrder("SELL", 1, 300.00), LimitOrder("SELL", 1, 310.00))
    legs = await session.place(AAPL, group, key="o1")
    assert [t.order.order_ref for t in legs] == ["o1:1", "o1:2"]


async def test_without_a_key_nothing_changes(session: ibflow.Session, sim: Simulator) -> None:
    a = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    b = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    assert a is not b
    assert a.order.order_ref is None
    assert placed(sim) == 2
    await eventually(lambda: len(sim.orders) == 2)


async def test_a_key_whose_order_was_rejected_is_free_again(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.fail_next("place_order", 201, "Order rejected - reason: not enough margin")
    with pytest.raises(ibflow.OrderRejected):
        await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="again")
    second = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="again")
    assert second.status is not OrderStatus.PENDING_SUBMIT
    third = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="again")
    assert third is second
    assert placed(sim) == 2
    assert [o.order_ref for o in sim.orders] == ["again"]


async def test_keys_outlive_the_trades_the_book_lets_go(
    make_session: Callable[..., ibflow.Session], sim: Simulator
) -> None:
    session = make_session(max_finished_trades=0)
    await session.connect()
    first = await session.place(AAPL, MarketOrder("BUY", 1), key="r0")
    await first.wait_filled(timeout=5)
    for n in range(1, 40):  # enough settled, dropped trades for the key index to prune
        trade = await session.place(AAPL, MarketOrder("BUY", 1), key=f"r{n}")
        await trade.wait_filled(timeout=5)
    await eventually(lambda: session.trades() == ())
    again = await session.place(AAPL, MarketOrder("BUY", 1), key="r0")
    # Read back from TWS (the dropped trade is not kept): the same order, nothing sent.
    assert again is not first
    assert (again.order_id, again.perm_id, again.status) == (
        first.order_id,
        first.perm_id,
        OrderStatus.FILLED,
    )
    assert [f.exec_id for f in again.fills] == [f.exec_id for f in first.fills]
    assert placed(sim) == 40


async def test_a_keyed_trailing_stop_of_another_client_is_found_with_its_terms(
    session: ibflow.Session, sim: Simulator, make_session: Callable[..., ibflow.Session]
) -> None:
    theirs = await session.place(
        AAPL, ibflow.TrailingStopOrder("SELL", 1, trail_amount=5.0), key="trail"
    )
    other = make_session(client_id=2)
    await other.connect()
    found = await other.place(
        AAPL, ibflow.TrailingStopOrder("SELL", 1, trail_amount=5.0), key="trail"
    )
    assert placed(sim) == 1
    assert (found.perm_id, found.client_id) == (theirs.perm_id, 1)
    assert found.order.order_type is ibflow.OrderType.TRAILING_STOP
    assert found.order.trail_amount == 5.0


async def test_a_keyed_algo_order_of_another_client_is_refused_not_followed_without_its_algo(
    session: ibflow.Session, sim: Simulator, make_session: Callable[..., ibflow.Session]
) -> None:
    algo = ibflow.Adaptive("Patient")
    await session.place(AAPL, LimitOrder("BUY", 1, 150.00, algo=algo), key="algo")
    other = make_session(client_id=2)
    await other.connect()
    with pytest.raises(ibflow.SafetyError, match="key 'algo' is already used at TWS"):
        await other.place(AAPL, LimitOrder("BUY", 1, 150.00, algo=algo), key="algo")
    assert placed(sim) == 1
