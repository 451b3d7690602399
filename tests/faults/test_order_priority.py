"""Order messages go ahead of queued requests in the outbound budget.

First the queue discipline on one ib_async ``Client`` writing into a recording transport, then
the whole path: a session churning quote subscriptions faster than the 45 messages/s budget
places, modifies and cancels orders, and the simulator receives each order message ahead of
market-data requests that were queued before it. Only arrival order is asserted, never time.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest
from ib_async import Contract, Order
from ib_async.client import Client
from ib_async.wrapper import Wrapper

import ibflow
from ibflow import LimitOrder, OrderStatus, Session
from ibflow._ib._outbound import (
    install_order_priority,
    is_order_message,
    is_order_priority,
    order_reserve,
)
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")
MARKET_DATA = ("mkt_data", "cancel_mkt_data")


class Recorder:
    """A transport that keeps the message id of every frame written to it."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def write(self, data: bytes) -> None:
        size = struct.unpack(">I", data[:4])[0]
        assert len(data) == 4 + size
        self.ids.append(data[4:].split(b"\0", 1)[0].decode())

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        pass


def connected_client(limit: int) -> tuple[Client, Recorder]:
    client = Client(Wrapper(None))
    client.connState = Client.CONNECTED
    client._serverVersion = 178
    client.MaxRequests = limit
    client.RequestsInterval = 3600  # nothing leaves the window unless a test shortens it
    recorder = Recorder()
    client.conn.transport = recorder
    return client, recorder


def queued_ids(client: Client) -> list[str]:
    return [msg.split("\0", 1)[0] for msg in client._msgQ]


def test_order_messages_are_placeorder_cancelorder_and_global_cancel() -> None:
    assert [is_order_message(f"{i}\0x\0") for i in (3, 4, 58, 1, 2, 34, 5, 30)] == [
        True, True, True, False, False, False, False, False,
    ]  # fmt: skip
    assert [order_reserve(n) for n in (0, 1, 2, 9, 45, 90)] == [0, 0, 1, 1, 5, 10]


async def test_orders_jump_the_queue_and_use_the_reserved_share() -> None:
    client, wire = connected_client(limit=9)  # 8 for requests, 1 kept for orders
    assert install_order_priority(client)
    assert is_order_priority(client)
    throttle: list[str] = []
    client.throttleStart += lambda: throttle.append("start")
    client.throttleEnd += lambda: throttle.append("end")
    contract = Contract(conId=265598, exchange="SMART")
    for req_id in range(12):
        client.reqMktData(req_id, contract, "", False, False, [])
    assert wire.ids == ["1"] * 8
    assert throttle == ["start"]
    order = Order(action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=100.0)
    client.placeOrder(1, contract, order)
    assert wire.ids[-1] == "3"  # the share kept for orders: out at once
    client.cancelOrder(1, "")  # the budget is spent: queued, but first in line
    client.reqGlobalCancel()
    client.cancelMktData(3)
    assert queued_ids(client) == ["4", "58", "1", "1", "1", "1", "2"]
    client.RequestsInterval = 0.01  # noticed at the next send
    client.cancelMktData(4)
    async with asyncio.timeout(5):
        while client._msgQ:
            await asyncio.sleep(0.01)
    assert wire.ids == ["1"] * 8 + ["3", "4", "58"] + ["1"] * 4 + ["2", "2"]
    assert throttle == ["start", "end"]


async def test_without_a_budget_everything_goes_at_once() -> None:
    client, wire = connected_client(limit=0)
    assert install_order_priority(client)
    for req_id in range(100):
        client.cancelMktData(req_id)
    client.reqGlobalCancel()
    assert wire.ids == ["2"] * 100 + ["58"]
    assert not client._msgQ


async def test_another_send_throttle_is_left_alone() -> None:
    class Reworked(Client):
        def sendMsg(self, msg: str) -> None:
            super().sendMsg(msg)

    client = Reworked(Wrapper(None))
    assert not install_order_priority(client)
    assert not is_order_priority(client)
    assert type(client).sendMsg is Reworked.sendMsg


# -- over the wire ----------------------------------------------------------------------------


async def churn(session: Session, cycles: int) -> int:
    """Open and close a quote stream ``cycles`` times; each sends reqMktData and
    cancelMktData. Returns how many market-data requests that sent."""
    for _ in range(cycles):
        async with session.quotes(AAPL):
            pass
    return 2 * cycles


def market_data_ahead_of(sim: Simulator, since: int, kind: str) -> int:
    """Market-data requests the simulator received after ``since`` and before ``kind``."""
    received = [k for _, k, _ in sim.requests[since:]]
    assert kind in received
    return sum(k in MARKET_DATA for k in received[: received.index(kind)])


@pytest.mark.parametrize("action", ["place", "modify", "cancel"])
async def test_an_order_overtakes_subscription_churn(sim: Simulator, action: str) -> None:
    async with Session(
        sim.host, sim.port, client_id=1, timeout=10, heartbeat_interval=None
    ) as session:
        resting = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))  # warms the facts
        await churn(session, 1)  # and the contract lookup of the quote stream
        since = len(sim.requests)
        sent = await churn(session, 60)  # 120 requests against a 45 a second budget
        assert session.statistics().throttled_requests > 0
        steps: dict[str, tuple[str, Callable[[], object]]] = {
            "place": ("place_order", lambda: session.place(AAPL, LimitOrder("BUY", 1, 151.00))),
            "modify": ("place_order", lambda: resting.modify(limit_price=152.00)),
            "cancel": ("cancel_order", resting.cancel),
        }
        kind, step = steps[action]
        async with asyncio.timeout(10):
            await step()  # type: ignore[misc]
        # Requests queued before the order message reached TWS after it.
        assert market_data_ahead_of(sim, since, kind) < sent
        if action == "cancel":
            assert resting.status is OrderStatus.CANCELLED
