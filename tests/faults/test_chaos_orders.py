"""Orders under chaos: gateway restarts and placeOrders cut in transit, with an order every 0.2 s.

A bot places an order every 0.2 s (market orders that fill at once, and resting limits) through
a loopback proxy in front of the simulator. Meanwhile the gateway restarts every second or so,
and now and then the proxy cuts the link halfway through a placeOrder frame, so the gateway
never sees that order. At the end the books must balance exactly: every execution the
simulator made reached its Trade and ``fills_stream`` once, no order id was ever sent twice, no
order was cancelled that the bot did not cancel (or give up on), and no Trade is left pending.

The schedule is seeded (``IBFLOW_CHAOS_SEED`` picks another); ``IBFLOW_CHAOS_SECONDS``
(default 10) sets how long orders flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import struct
from collections import Counter
from dataclasses import dataclass, field

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import FAST_RECONNECT, eventually

SEED = int(os.environ.get("IBFLOW_CHAOS_SEED", "20261204"))
SECONDS = float(os.environ.get("IBFLOW_CHAOS_SECONDS", "10"))
ORDER_EVERY = 0.2
AAPL = ibflow.Stock("AAPL")
_PLACE_ORDER = b"3"


class CuttingProxy:
    """Relays a client to the simulator; records every placeOrder id and can cut one in half.

    Client bytes are read frame by frame (after the ``API\\0`` prefix). After :meth:`cut`, a
    coming placeOrder is relayed only halfway before both sockets are aborted, as when a link
    dies mid-write: the gateway discards the partial frame.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.sent_ids: list[int] = []
        self.cut_ids: list[int] = []
        self._cut_after: int | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def cut(self, after: int = 0) -> None:
        """Let ``after`` placeOrders through, then cut the link halfway through the next."""
        self._cut_after = after

    def cut_off(self) -> None:
        self._cut_after = None

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()  # the gateway is down: so is the relay
            return
        pumps = [
            asyncio.create_task(self._client_frames(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _client_frames(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            writer.write(await reader.readexactly(4))  # b"API\0"
            while True:
                header = await reader.readexactly(4)
                (size,) = struct.unpack(">I", header)
                payload = await reader.readexactly(size)
                fields = payload.split(b"\0")
                if fields[0] == _PLACE_ORDER:
                    order_id = int(fields[1])
                    self.sent_ids.append(order_id)
                    if self._cut_after:
                        self._cut_after -= 1
                    elif self._cut_after == 0:
                        self._cut_after = None
                        self.cut_ids.append(order_id)
                        writer.write(header + payload[: size // 2])
                        await writer.drain()
                        return
                writer.write(header + payload)
                await writer.drain()


@dataclass
class Tally:
    placed: list[ibflow.Trade] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    gave_up: set[int] = field(default_factory=set)
    """Order ids whose place() timed out: ibflow may cancel those on the bot's behalf."""


async def place_one(session: ibflow.Session, order: ibflow.Order, tally: Tally) -> None:
    before = {t.order_id for t in session.trades()}
    try:
        trade = await session.place(AAPL, order, timeout=3)
    except ibflow.RequestTimeout:
        tally.refused["timeout"] += 1
        tally.gave_up.update(t.order_id for t in session.trades() if t.order_id not in before)
    except ibflow.ConnectionLost as exc:
        tally.refused["lost in transit" if "lost in transit" in str(exc) else "link down"] += 1
    except ibflow.IBFlowError as exc:
        tally.refused[type(exc).__name__] += 1
    else:
        assert isinstance(trade, ibflow.Trade)
        tally.placed.append(trade)


async def faults(
    sim: Simulator, proxy: CuttingProxy, rng: random.Random, stop: asyncio.Event
) -> int:
    """Every second or so a fault: two gateway restarts, then a placeOrder cut, and again."""
    restarts = 0
    for turn in itertools.count():
        await asyncio.sleep(rng.uniform(0.6, 1.4))
        if stop.is_set():
            break
        if turn % 3 == 2:
            proxy.cut()  # the next placeOrder dies halfway
        else:
            await sim.restart(down_for=rng.uniform(0.02, 0.3))
            restarts += 1
    return restarts


async def test_orders_survive_restarts_and_cuts_exactly() -> None:
    rng = random.Random(SEED)
    async with Simulator(port=0, seed=SEED) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        async with CuttingProxy(sim.port) as proxy:
            session = ibflow.Session(
                "127.0.0.1",
                proxy.port,
                1,
                timeout=2.0,
                heartbeat_interval=None,
                reconnect=FAST_RECONNECT,
            )
            async with session:
                fills = session.fills_stream(buffer=100_000)
                tally = Tally()
                stop = asyncio.Event()
                fault_task = asyncio.create_task(faults(sim, proxy, rng, stop))
                tasks: list[asyncio.Task[None]] = []
                loop = asyncio.get_running_loop()
                end = loop.time() + SECONDS
                count = 0
                while loop.time() < end:
                    count += 1
                    side = "BUY" if count % 2 else "SELL"
                    order = (
                        LimitOrder(side, 1, 150.00 if side == "BUY" else 250.00)
                        if count % 5 == 0
                        else MarketOrder(side, 1)
                    )
                    tasks.append(asyncio.create_task(place_one(session, order, tally)))
                    await asyncio.sleep(ORDER_EVERY)
                stop.set()
                restarts = await fault_task
                await asyncio.gather(*tasks)
                # One last clean reconnect settles whatever the last fault left pending.
                proxy.cut_off()
                before = session.statistics().reconnects
                sim.drop_connections()
                await eventually(
                    lambda: (
                        session.statistics().reconnects > before
                        and session.state is ibflow.ConnectionState.READY
                    ),
                    10,
                )
                trades = session.trades()
                await eventually(
                    lambda: all(t.status is not OrderStatus.PENDING_SUBMIT for t in trades), 10
                )

                # Resting limits: the bot cancels half of them itself; the rest must be working.
                resting = [t for t in trades if t.order.order_type is ibflow.OrderType.LIMIT]
                working = [t for t in resting if not t.is_done]
                mine = working[::2]
                for trade in mine:
                    assert await trade.cancel() is OrderStatus.CANCELLED

                # Every execution the simulator made reached its Trade once, and fills_stream once.
                executions = [e for e in sim.fills if e.client_id == 1]
                by_order = {t.order_id: t for t in trades}
                await eventually(lambda: sum(len(t.fills) for t in trades) == len(executions), 10)
                for execution in executions:
                    trade = by_order[execution.order_id]
                    assert [f.exec_id for f in trade.fills].count(execution.exec_id) == 1
                delivered: list[str] = []
                async with asyncio.timeout(10):
                    while len(delivered) < len(executions):
                        delivered.append((await fills.receive()).exec_id)
                await asyncio.sleep(0.2)
                with contextlib.suppress(ibflow.WouldBlock):
                    delivered.append(fills.receive_nowait().exec_id)
                assert sorted(delivered) == sorted(e.exec_id for e in executions)
                for trade in trades:
                    if trade.status is OrderStatus.FILLED:
                        assert trade.filled == trade.order.quantity

                # No order id went out twice. Exactly the orders the gateway never got ended
                # Lost (every cut one among them), and none was sent again.
                assert len(proxy.sent_ids) == len(set(proxy.sent_ids))
                at_gateway = {o.order_id for o in sim.orders if o.client_id == 1}
                lost = {t.order_id for t in trades if t.status is OrderStatus.LOST}
                assert lost == {t.order_id for t in trades} - at_gateway
                assert set(proxy.cut_ids) <= lost

                # Nothing was cancelled that the bot did not cancel or give up on.
                allowed = {t.order_id for t in mine} | tally.gave_up
                cancelled = {
                    o.order_id for o in sim.orders if o.client_id == 1 and o.status == "Cancelled"
                }
                assert cancelled <= allowed
                assert all(t.status is OrderStatus.SUBMITTED for t in working if t not in mine)

                # The streams still deliver after the last restart.
                events = session.order_events()
                last = await session.place(AAPL, MarketOrder("BUY", 1))
                await last.wait_filled()
                async with asyncio.timeout(5):
                    while (await events.receive()).order_id != last.order_id:
                        pass
                    assert (await fills.receive()).order_id == last.order_id
                await events.aclose()
                await fills.aclose()
                for trade in working:
                    if trade not in mine:
                        await trade.cancel()

    figures = {
        "restarts": restarts,
        "cuts": len(proxy.cut_ids),
        "reconnects": session.statistics().reconnects,
        "orders attempted": count,
        "orders sent": len(proxy.sent_ids),
        "acknowledged": len(tally.placed),
        "lost": len(lost),
        "fills": len(executions),
        **dict(tally.refused),
    }
    print("chaos figures:", figures)
    assert restarts >= SECONDS / 3
    assert len(proxy.cut_ids) >= SECONDS / 6
    assert len(executions) > SECONDS


async def test_a_bracket_cut_before_its_last_leg_leaves_nothing_at_the_gateway() -> None:
    async with Simulator(port=0) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        async with CuttingProxy(sim.port) as proxy:
            session = ibflow.Session(
                "127.0.0.1", proxy.port, 1, timeout=2.0, reconnect=FAST_RECONNECT
            )
            async with session:
                # The entry and the take-profit arrive (held: they wait for the last leg's
                # transmit flag); the stop-loss dies halfway.
                proxy.cut(after=2)
                with pytest.raises(ibflow.ConnectionLost, match="lost in transit"):
                    await session.place(AAPL, ibflow.bracket("BUY", 1, 150.0, 160.0, 140.0))
                entry, take_profit, stop_loss = session.trades()
                assert proxy.cut_ids == [stop_loss.order_id]
                assert stop_loss.status is OrderStatus.LOST
                # The two legs the gateway holds are cancelled: nothing of the bracket is left.
                await eventually(
                    lambda: {entry.status, take_profit.status} == {OrderStatus.CANCELLED}
                )
                assert {o.status for o in sim.orders if o.client_id == 1} == {"Cancelled"}
                assert len(proxy.sent_ids) == len(set(proxy.sent_ids)) == 3
