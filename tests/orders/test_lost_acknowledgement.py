"""An order whose acknowledgement the dropped link took, and that TWS cancelled meanwhile.

TWS took the placeOrder, but its replies never reached the session (a relay holds them back);
another client's kill switch cancels the order while the link is down, so after the reconnect
TWS reports it only among the completed orders, which carry no order id. The order book ties
it by the ``orderRef`` it was sent with: it ends ``Cancelled``, not ``Lost``, and nothing is
sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import ibflow
from ibflow import LimitOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import FAST_RECONNECT, eventually, session_for
from tests.relays import HoldingProxy, holding_proxy

from .conftest import AAPL


@pytest.fixture
async def holding(sim: Simulator) -> AsyncIterator[HoldingProxy]:
    async with holding_proxy(sim) as relay:
        yield relay


@asynccontextmanager
async def behind(relay: HoldingProxy, **settings: Any) -> AsyncIterator[ibflow.Session]:
    """A connected session (client id 1) whose link runs through ``relay``."""
    session = ibflow.Session(
        relay.host,
        relay.port,
        client_id=1,
        timeout=5,
        heartbeat_interval=None,
        reconnect=FAST_RECONNECT,
        **settings,
    )
    async with session:
        yield session


async def cancelled_unheard(
    session: ibflow.Session, sim: Simulator, order: Any, key: str | None = None
) -> asyncio.Task[Any]:
    """Place ``order`` (every leg at once); TWS takes it, another client cancels it before its
    acknowledgement reaches the session, then the link drops (the session reconnects)."""
    legs = len(order.orders) if isinstance(order, ibflow.OcaGroup) else 1
    task = asyncio.create_task(session.place(AAPL, order, key=key, timeout=10))
    await eventually(lambda: [o.status for o in sim.orders] == ["Submitted"] * legs)
    async with session_for(sim, client_id=2) as desk:
        await desk.cancel_all()
    assert {o.status for o in sim.orders} == {"Cancelled"}
    assert not task.done()
    sim.drop_connections()
    return task


@pytest.mark.parametrize(
    ("key", "order_ref", "journal"),
    [("k1", None, False), (None, None, True), (None, "my-ref-1", False)],
    ids=["key", "journal-ref", "own-order-ref"],
)
async def test_an_order_cancelled_while_its_ack_was_lost_ends_cancelled(
    sim: Simulator,
    holding: HoldingProxy,
    tmp_path: Path,
    key: str | None,
    order_ref: str | None,
    journal: bool,
) -> None:
    settings = {"journal": tmp_path / "j.db"} if journal else {}
    async with behind(holding, **settings) as session:
        order = LimitOrder("BUY", 1, 150.00, order_ref=order_ref)
        task = await cancelled_unheard(session, sim, order, key=key)
        async with asyncio.timeout(5):
            trade = await task
        [at_tws] = sim.orders
        # Tied to TWS's completed order by its orderRef: its real final state.
        assert trade.status is OrderStatus.CANCELLED
        assert trade.lost_reason is None
        assert trade.perm_id == at_tws.perm_id
        assert trade.order.order_ref == at_tws.order_ref
        if journal:
            assert at_tws.order_ref.startswith(":j")
        else:
            assert at_tws.order_ref == (key or order_ref)
        assert session.trades() == (trade,)
        # Sent once, never again, and nothing cancelled by this session.
        assert sim.request_count("place_order") == 1
        await asyncio.sleep(0.2)
        assert sim.request_count("place_order") == 1
        assert sim.request_count("cancel_order") == 0


async def test_a_reference_naming_two_orders_ties_nothing(
    sim: Simulator, holding: HoldingProxy
) -> None:
    async with behind(holding) as session:
        # Two orders sent with the same order_ref of the user's, neither acknowledged.
        group = ibflow.oca(
            LimitOrder("BUY", 1, 150.00, order_ref="mine"),
            LimitOrder("BUY", 1, 149.00, order_ref="mine"),
        )
        task = await cancelled_unheard(session, sim, group)
        # TWS reports two orders under "mine": which is which? Neither is tied, and neither
        # is said to have left no trace.
        with pytest.raises(ibflow.ConnectionLost, match="lost in transit"):
            async with asyncio.timeout(5):
                await task
        trades = session.trades()
        assert len(trades) == 2
        for lost in trades:
            assert lost.status is OrderStatus.LOST
            assert lost.lost_reason is not None
            assert "names more than one order" in lost.lost_reason
            assert "may have reached TWS" in lost.lost_reason
        assert sim.request_count("place_order") == 2


async def test_a_key_lost_in_doubt_is_looked_up_again_before_it_is_reused(
    sim: Simulator, holding: HoldingProxy
) -> None:
    async with behind(holding) as session:
        task = asyncio.create_task(
            session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k2", timeout=10)
        )
        await eventually(lambda: [o.status for o in sim.orders] == ["Submitted"])
        async with session_for(sim, client_id=2) as desk:
            # Another client's order carries the same reference, and fills.
            theirs = await desk.place(AAPL, ibflow.MarketOrder("SELL", 1, order_ref="k2"))
            await theirs.wait_filled(timeout=5)
            await desk.cancel_all()
        sim.drop_connections()
        with pytest.raises(ibflow.ConnectionLost, match="lost in transit"):
            async with asyncio.timeout(5):
                await task
        [lost] = session.trades()
        assert lost.status is OrderStatus.LOST
        assert lost.lost_reason is not None
        assert "may have reached TWS" in lost.lost_reason
        # Placing under the key again asks TWS afresh, finds the key taken and sends nothing.
        again = await session.place(AAPL, LimitOrder("BUY", 1, 150.00), key="k2")
        assert again is not lost
        assert again.perm_id in {o.perm_id for o in sim.orders}
        assert sim.request_count("place_order") == 2  # the lost one and the desk's
