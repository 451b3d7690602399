"""Journal references: with a journal, a keyless order without an ``order_ref`` of its own
carries a generated one to TWS, and a restart ties an unacknowledged intent to TWS's report by
the reference it was sent with, only when that reference surely names that one order."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import ibflow
from ibflow import LimitOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL, journal_rows, sim_order

REFERENCE = re.compile(r":j[0-9a-f]{16}")


async def test_keyless_orders_carry_a_journal_reference_only_with_a_journal(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path)
    await session.connect()
    plain = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    own = await session.place(AAPL, LimitOrder("BUY", 1, 150.00, order_ref="mine"))
    keyed = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k1")
    group = await session.place(AAPL, ibflow.bracket("BUY", 1, 150.00, 160.00, 140.00))
    # Placed again from a trade's order: the copied reference is replaced by a fresh one.
    copied = await session.place(AAPL, plain.order)
    sent = {t.order_id: sim_order(sim, t.order_id).order_ref for t in (plain, own, keyed, copied)}
    legs = [sim_order(sim, t.order_id).order_ref for t in group]
    generated = [sent[plain.order_id], sent[copied.order_id], *legs]
    assert all(REFERENCE.fullmatch(str(ref)) for ref in generated)
    assert len(set(generated)) == 5  # one per order, one per leg
    assert sent[own.order_id] == "mine"
    assert sent[keyed.order_id] == "k1"
    # The trade's terms are what TWS holds; the journal keeps them with each intent.
    assert plain.order.order_ref == sent[plain.order_id]
    journaled = journal_rows(
        path, "SELECT order_id, json_extract(spec, '$.order_ref') FROM intents"
    )
    assert dict(journaled) == {
        **sent,
        **{t.order_id: ref for t, ref in zip(group, legs, strict=True)},
    }
    await session.aclose()
    # Without a journal nothing is added.
    bare = make_session(client_id=2)
    await bare.connect()
    unnamed = await bare.place(AAPL, LimitOrder("BUY", 1, 150.00))
    assert sim_order(sim, unnamed.order_id, client_id=2).order_ref == ""  # none on the wire
    assert unnamed.order.order_ref is None


async def test_a_journal_reference_is_never_taken_for_a_key(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    session = make_session(journal=tmp_path / "orders.db")
    await session.connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    ref = trade.order.order_ref
    assert ref is not None
    with pytest.raises(ibflow.InvalidRequest, match="contains ':'"):
        await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key=ref)
    # Another session's key lookup reads TWS's orders (this one among them) and places anew.
    later = make_session(client_id=2)
    await later.connect()
    fresh = await later.place(AAPL, LimitOrder("BUY", 1, 150.00), key="j1")
    assert fresh.order_id != trade.order_id
    assert sim.request_count("place_order") == 2


async def lose_in_transit(session: ibflow.Session, sim: Simulator, spec: ibflow.Order) -> None:
    """Send ``spec`` to a TWS that never takes it, and end the session with it unacknowledged."""
    sim.ignore("place_order")
    task = asyncio.create_task(session.place(AAPL, spec))
    sent = sim.request_count("place_order") + 1
    await eventually(lambda: sim.request_count("place_order") == sent)
    sim.drop_connections()
    with pytest.raises(ibflow.IBFlowError):
        await task
    sim.ignore("place_order", False)
    await session.aclose()


async def test_a_keyless_intent_tws_never_saw_still_ends_lost_naming_its_reference(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path, reconnect=None)
    await session.connect()
    await lose_in_transit(session, sim, LimitOrder("BUY", 1, 150.00))
    later = make_session(journal=path)
    await later.connect()
    [lost] = later.trades()
    assert lost.status is OrderStatus.LOST
    assert lost.lost_reason is not None
    assert "never reached TWS" in lost.lost_reason
    assert f"order_ref {lost.order.order_ref!r}" in lost.lost_reason
    assert sim.request_count("place_order") == 1
    assert sim.orders == []


async def test_a_reference_another_journaled_order_used_ties_nothing(
    make_session: Callable[..., ibflow.Session],
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path, reconnect=None)
    await session.connect()
    # An order under the user's reference "dup" that TWS took and that ended...
    done = await session.place(AAPL, LimitOrder("BUY", 1, 150.00, order_ref="dup"))
    assert await done.cancel() is OrderStatus.CANCELLED
    await eventually(
        lambda: bool(journal_rows(path, "SELECT 1 FROM events WHERE kind = 'settled'"))
    )
    # ... then another under the same reference that TWS never saw.
    await lose_in_transit(session, sim, LimitOrder("BUY", 1, 150.00, order_ref="dup"))
    later = make_session(journal=path)
    await later.connect()
    # TWS's completed "dup" is the first order's: the second is not mistaken for it.
    [lost] = later.trades()
    assert lost.order_id != done.order_id
    assert lost.status is OrderStatus.LOST
    assert "order_ref 'dup', which names more than one order" in caplog.text
    # Its reason says TWS may have it, not that it never reached TWS.
    assert lost.lost_reason is not None
    assert "never reached TWS" not in lost.lost_reason
    assert "which names more than one order, so it may have reached TWS" in lost.lost_reason
    assert sim.request_count("place_order") == 2


async def test_an_older_journal_without_references_is_read_and_indexed(
    make_session: Callable[..., ibflow.Session], sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "orders.db"
    session = make_session(journal=path, reconnect=None)
    await session.connect()
    await lose_in_transit(session, sim, LimitOrder("BUY", 1, 150.00))
    # The file as an ibflow from before journal references left it: no reference, no index.
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX intents_by_ref")
        db.execute("UPDATE intents SET spec = json_set(spec, '$.order_ref', json('null'))")
    later = make_session(journal=path)
    await later.connect()
    [lost] = later.trades()
    assert lost.status is OrderStatus.LOST
    assert lost.order.order_ref is None
    assert journal_rows(path, "SELECT name FROM sqlite_master WHERE name = 'intents_by_ref'") != []
    # Placed again by hand, it gets a reference like any keyless order.
    again = await later.place(AAPL, dataclasses.replace(lost.order))
    assert REFERENCE.fullmatch(str(sim_order(sim, again.order_id).order_ref))
