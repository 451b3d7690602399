"""A hostile server: bytes no TWS sends, slipped between the simulator's frames by a proxy.

A session with a quote stream open runs through the proxy (``HostileProxy``) to the simulator,
with ibflow's fast receive path and with ib_async's own (``fast_receive`` fixture). A corrupt
stream (a length over 16 MiB, a truncated frame) must drop the link at once, or at the next
heartbeat when nothing shows it, after which the session reconnects and the stream delivers
again; the client never buffers more than one read beyond the corrupt length. Malformed frames
(empty, a field short) and impossible numbers must not stop anything behind them.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator

import pytest

import ibflow
from ibflow import ConnectionState, Gap, Quote, Session, StateChange
from ibflow.sim import Simulator

from .conftest import HostileProxy

AAPL = ibflow.Stock("AAPL")
FAST_RECONNECT = ibflow.ReconnectPolicy(initial=0.05, maximum=0.2)
READ_BOUND = 1 << 20  # what one read brings is at most 256 KiB; allow for the normal traffic


def frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def bid_tick(req_id: str, price: str, size: object = 100) -> bytes:
    return frame(1, 6, req_id, 1, price, size, 0)


def session_for(proxy: HostileProxy, **kwargs: object) -> Session:
    options: dict[str, object] = {"heartbeat_interval": None, **kwargs}
    return Session(
        proxy.host,
        proxy.port,
        client_id=1,
        timeout=5,
        reconnect=FAST_RECONNECT,
        **options,  # type: ignore[arg-type]
    )


def quote_req_id(sim: Simulator) -> str:
    """The request id of the newest quote subscription, as the simulator received it."""
    return [fields[2] for _, kind, fields in sim.requests if kind == "mkt_data"][-1]


async def state(changes: AsyncIterator[StateChange], wanted: ConnectionState) -> StateChange:
    async for change in changes:
        if change.current is wanted:
            return change
    raise AssertionError(f"the session closed before reaching {wanted.name}")


async def quote_with_bid(quotes: AsyncIterator[Quote | Gap], bid: float) -> list[Quote | Gap]:
    """Items up to the first quote bidding ``bid``."""
    seen: list[Quote | Gap] = []
    async for item in quotes:
        seen.append(item)
        if isinstance(item, Quote) and item.bid == bid:
            return seen
    raise AssertionError("the quote stream ended")


async def recovered(
    session: Session, sim: Simulator, quotes: AsyncIterator[Quote | Gap], lost: StateChange
) -> None:
    """After a lost link: READY again, and the stream marks the gap and delivers quotes."""
    assert lost.previous is ConnectionState.READY
    changes = session.state_changes()
    if session.state is not ConnectionState.READY:
        await state(changes, ConnectionState.READY)
    items = await quote_with_bid(quotes, 190.00)  # the full quote sent on resubscribing
    assert isinstance(items[0], Gap)
    sim.push_quote("AAPL", bid=189.50, ask=189.55)
    await quote_with_bid(quotes, 189.50)
    assert session.statistics().reconnects == 1


async def test_an_oversized_length_prefix_drops_the_link_at_once(
    sim: Simulator, proxy: HostileProxy, fast_receive: bool
) -> None:
    async with session_for(proxy) as session, session.quotes(AAPL) as quotes:
        await quote_with_bid(quotes, 190.00)
        changes = session.state_changes()
        before = session.statistics().bytes_in
        async with asyncio.timeout(20):  # no heartbeat: only the guard can notice
            proxy.inject(struct.pack(">I", 2**31 - 1) + b"9\0")
            flood = asyncio.create_task(proxy.flood(32 << 20))
            lost = await state(changes, ConnectionState.RECONNECTING)
            await flood
            assert "corrupt stream" in lost.reason
            assert "2147483647" in lost.reason
            # Memory stayed bounded: the client stopped reading right after the bad length.
            assert session.statistics().bytes_in - before < READ_BOUND
            await recovered(session, sim, quotes, lost)
        assert proxy.connections == 2


async def test_a_truncated_frame_followed_by_more_drops_the_link_at_once(
    sim: Simulator, proxy: HostileProxy, fast_receive: bool
) -> None:
    async with session_for(proxy) as session, session.quotes(AAPL) as quotes:
        await quote_with_bid(quotes, 190.00)
        req_id = quote_req_id(sim)
        changes = session.state_changes()
        after = b"".join(bid_tick(req_id, f"191.{i}5") for i in range(5))
        head = b"1\x006\x00" + req_id.encode() + b"\x00"
        # The frame promises more than it holds, so its tail is taken from the frames after it
        # and the next length is read from the middle of a price: a corrupt stream.
        promised = len(head) + after.index(b"191.25")
        async with asyncio.timeout(20):
            proxy.inject(struct.pack(">I", promised) + head + after)
            lost = await state(changes, ConnectionState.RECONNECTING)
            assert "corrupt stream" in lost.reason
            await recovered(session, sim, quotes, lost)


async def test_a_truncated_frame_then_silence_is_caught_by_the_heartbeat(
    sim: Simulator, proxy: HostileProxy, fast_receive: bool
) -> None:
    session = session_for(proxy, heartbeat_interval=1, heartbeat_timeout=1)
    async with session, session.quotes(AAPL) as quotes:
        await quote_with_bid(quotes, 190.00)
        changes = session.state_changes()
        async with asyncio.timeout(20):
            # A well-formed start, then nothing: the heartbeat's answers vanish into it.
            proxy.inject(struct.pack(">I", 4096) + b"1\x006\x00")
            lost = await state(changes, ConnectionState.RECONNECTING)
            assert "heartbeat" in lost.reason
            await recovered(session, sim, quotes, lost)


async def test_empty_and_short_tick_frames_hold_nothing_back(
    sim: Simulator, proxy: HostileProxy, fast_receive: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with session_for(proxy) as session, session.quotes(AAPL) as quotes:
        await quote_with_bid(quotes, 190.00)
        req_id = quote_req_id(sim)
        short = [frame(), frame(1), frame(2), frame(1, 6), frame(2, 6), frame(1, 6, req_id)]
        with caplog.at_level(logging.ERROR, logger="ib_async"):
            async with asyncio.timeout(10):  # quiet market, no heartbeat: no later read helps
                proxy.inject(b"".join(short) + bid_tick(req_id, "191.50"))
                await quote_with_bid(quotes, 191.50)
        # Each malformed frame was logged by ib_async's decoder, none swallowed.
        errors = [r for r in caplog.records if r.name.startswith("ib_async")]
        assert len(errors) == len(short)
        assert session.state is ConnectionState.READY
        assert session.statistics().reconnects == 0


async def test_impossible_numbers_do_not_stop_the_stream(
    sim: Simulator, proxy: HostileProxy, fast_receive: bool
) -> None:
    async with session_for(proxy) as session, session.quotes(AAPL) as quotes:
        await quote_with_bid(quotes, 190.00)
        req_id = quote_req_id(sim)
        hostile = [
            bid_tick(req_id, "inf"),
            bid_tick(req_id, "nan", "inf"),
            frame(1, 6, req_id, 2, "-inf", "nan", 0),  # ask
            frame(1, 6, req_id, 4, "1e999", 1, 0),  # last
            frame(2, 6, req_id, 8, "inf"),  # volume
            frame(2, 6, req_id, 0, "-1e999"),  # bid size
            frame(2, 6, req_id, 3, "nan"),  # ask size
        ]
        async with asyncio.timeout(10):
            proxy.inject(b"".join(hostile) + bid_tick(req_id, "191.25"))
            await quote_with_bid(quotes, 191.25)
            sim.push_quote("AAPL", bid=191.30, ask=191.35)
            await quote_with_bid(quotes, 191.30)
        assert session.state is ConnectionState.READY
        assert session.statistics().reconnects == 0


async def test_a_port_that_answers_with_something_else_fails_the_connect_at_once(
    fast_receive: bool,
) -> None:
    """A web server (or anything not TWS) on the port: a clear ConnectError, not a timeout."""

    async def web_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the API greeting
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(web_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = Session("127.0.0.1", port, client_id=1, timeout=60, reconnect=None)
        async with asyncio.timeout(10):
            with pytest.raises(ibflow.ConnectError) as caught:
                await session.connect()
        assert type(caught.value) is ibflow.ConnectError
        assert f"127.0.0.1:{port} did not answer as TWS/IB Gateway" in str(caught.value)
        assert "corrupt stream" in str(caught.value)
        assert session.state is not ConnectionState.READY
    finally:
        server.close()
        await server.wait_closed()
