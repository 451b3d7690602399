"""Relays between a client and the simulator that lose TWS's replies the way a dying link does."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

from ibflow.sim import Simulator
from tests.faults.conftest import HostileProxy


class HoldingProxy(HostileProxy):
    """Relays each client to the simulator until its first placeOrder frame: from then on the
    simulator's replies on that connection (the acknowledgement, the fill) are held back, never
    delivered. A new connection is relayed in full again, until its own placeOrder."""

    held = False

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held = False
        await super()._on_client(reader, writer)

    async def _bytes(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending = b""
        greeted = False
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                pending += data
                if not greeted:
                    if len(pending) < 4:
                        continue
                    writer.write(pending[:4])  # "API\0"
                    pending, greeted = pending[4:], True
                while len(pending) >= 4:
                    end = 4 + struct.unpack(">I", pending[:4])[0]
                    if len(pending) < end:
                        break
                    frame, pending = pending[:end], pending[end:]
                    if frame[4:].split(b"\0", 1)[0] == b"3":  # placeOrder
                        self.held = True
                    writer.write(frame)

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                if not self.held:
                    writer.write(head + body)


@contextlib.asynccontextmanager
async def holding_proxy(sim: Simulator) -> AsyncIterator[HoldingProxy]:
    """A started :class:`HoldingProxy` in front of ``sim``, closed on exit."""
    relay = HoldingProxy(sim)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.aclose()
