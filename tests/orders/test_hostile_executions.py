"""Executions with impossible numbers, injected on the wire, are dropped, logged and counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
from collections import deque

import pytest

import ibflow
from ibflow import MarketOrder, OrderEventKind, OrderStatus
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL

# execDetails (message 11): id, reqId, orderId, an 11-field contract, execId, time, account,
# exchange, side, then the size and the price.
_EXEC_DETAILS = b"11"
_SIDE, _SHARES, _PRICE = 18, 19, 20


class ExecRewriter:
    """A loopback proxy in front of the simulator that rewrites executions it relays.

    Client bytes pass through untouched; each server frame is read whole (4-byte length,
    NUL-separated fields) and every execDetails gets the next pending (field, value) change.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.changes: deque[tuple[int, bytes]] = deque()
        self.rewritten = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ExecRewriter:
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
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pumps = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._frames(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                (size,) = struct.unpack(">I", await reader.readexactly(4))
                payload = await reader.readexactly(size)
                fields = payload.split(b"\0")
                if fields[0] == _EXEC_DETAILS and self.changes:
                    assert fields[_SIDE] in (b"BOT", b"SLD")
                    index, value = self.changes.popleft()
                    fields[index] = value
                    payload = b"\0".join(fields)
                    self.rewritten += 1
                writer.write(struct.pack(">I", len(payload)) + payload)
                await writer.drain()


BAD = [
    (_SHARES, b"nan"),
    (_SHARES, b"inf"),
    (_SHARES, b"-5"),
    (_SHARES, b"0"),
    (_PRICE, b"nan"),
    (_PRICE, b"-inf"),
]


async def test_impossible_executions_never_reach_an_order(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ibflow.orders")
    async with ExecRewriter(sim.port) as proxy:
        proxy.changes.extend(BAD)
        session = ibflow.Session(
            "127.0.0.1", proxy.port, 1, timeout=5.0, heartbeat_interval=None, reconnect=None
        )
        async with session:
            fills = session.fills_stream()
            trades = []
            for _ in BAD:
                trade = await session.place(AAPL, MarketOrder("BUY", 2))
                trades.append(trade)
                # TWS's orderStatus still says Filled; the poisoned execution is not taken.
                await eventually(lambda t=trade: t.status is OrderStatus.FILLED)
            await eventually(lambda: proxy.rewritten == len(BAD))
            for trade in trades:
                assert trade.fills == ()
                assert trade.filled == 2
                assert math.isfinite(trade.filled)
                assert OrderEventKind.FILL not in [e.kind for e in trade.history]
            assert session.statistics().rejected_executions == len(BAD)
            # The next, sound execution goes through as usual.
            good = await session.place(AAPL, MarketOrder("BUY", 2))
            [fill] = await good.wait_filled()
            assert (fill.quantity, math.isfinite(fill.price)) == (2, True)
            async with asyncio.timeout(3):
                assert (await fills.receive()).exec_id == fill.exec_id
            with pytest.raises(ibflow.WouldBlock):
                fills.receive_nowait()
            await fills.aclose()
    rejected = [r for r in caplog.records if "rejected an execution" in r.getMessage()]
    assert len(rejected) == len(BAD)
