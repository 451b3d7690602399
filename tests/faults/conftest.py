"""Fixtures for the fault tests: the receive path either way, a quiet simulator, and a proxy in
front of it that can slip hostile bytes between two TWS frames."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import pytest

from ibflow.sim import Simulator
from tests.fastpath import conftest as _fastpath

# The receive path either way, and a quiet simulator: the same fixtures as the fast-path tests.
_default_receive_path = _fastpath._default_receive_path
fast_receive = _fastpath.fast_receive
sim = _fastpath.sim


class HostileProxy:
    """Relays each client to the simulator: its bytes as they come, the simulator's frame by
    frame, so :meth:`inject` lands between two whole frames of the newest connection."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.host = "127.0.0.1"
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        # Stopping the pumps ends each connection's handler; asyncio's own callback on a
        # handler does not expect it to be cancelled.
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def inject(self, data: bytes) -> None:
        """Write ``data`` to the newest client as if the simulator had sent it."""
        assert self._writer is not None
        assert not self._writer.is_closing()
        self._writer.write(data)

    async def flood(self, total: int, piece: int = 1 << 16) -> int:
        """Write up to ``total`` junk bytes to the newest client; how many it took before its
        socket closed."""
        writer = self._writer
        assert writer is not None
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < total and not writer.is_closing():
                writer.write(b"7" * piece)
                sent += piece
                await writer.drain()
        return sent

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.sim.host, self.sim.port)
        except OSError:
            writer.close()
            self._handlers.discard(handler)
            return
        self.connections += 1
        self._writer = writer
        pumps = [
            asyncio.create_task(self._bytes(reader, up_writer)),
            asyncio.create_task(self._frames(up_reader, writer)),
        ]
        self._pumps.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for w in (writer, up_writer):
            w.close()
        self._pumps.difference_update(pumps)
        self._handlers.discard(handler)

    @staticmethod
    async def _bytes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                writer.write(data)

    @staticmethod
    async def _frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                writer.write(head + body)


@pytest.fixture
async def proxy(sim: Simulator) -> AsyncIterator[HostileProxy]:
    relay = HostileProxy(sim)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.aclose()
