"""Handshake, start-up sync and client-id rules, over real sockets."""

from __future__ import annotations

import asyncio
import logging

import ib_async
import pytest

from ibflow.sim import Simulator
from ibflow.sim._codec import API_PREFIX, FrameDecoder, encode_fields, encode_raw
from ibflow.testing import eventually


async def _hello(
    sim: Simulator, version: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(sim.host, sim.port)
    writer.write(API_PREFIX + encode_raw(version))
    await writer.drain()
    return reader, writer


async def _read_frames(reader: asyncio.StreamReader, count: int) -> list[list[str]]:
    decoder = FrameDecoder()
    frames: list[list[str]] = []
    async with asyncio.timeout(3):
        while len(frames) < count:
            data = await reader.read(65536)
            if not data:
                break
            frames += decoder.feed(data)
    return frames


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (b"v157..178", "178"),
        (b"v100..226", "178"),
        (b"v176", "176"),
        (b"v100..200 +PACEAPI", "178"),
    ],
)
async def test_handshake_announces_the_highest_common_version(
    ib_sim: Simulator, offer: bytes, expected: str
) -> None:
    reader, writer = await _hello(ib_sim, offer)
    [reply] = await _read_frames(reader, 1)
    assert len(reply) == 2  # clients recognise the reply as "the frame with exactly 2 fields"
    assert reply[0] == expected
    assert reply[1].endswith("UTC")
    writer.close()


async def test_handshake_without_overlap_closes_the_socket(ib_sim: Simulator) -> None:
    reader, writer = await _hello(ib_sim, b"v179..190")
    async with asyncio.timeout(3):
        assert await reader.read() == b""
    writer.close()


async def test_nothing_is_sent_between_handshake_reply_and_start_api(ib_sim: Simulator) -> None:
    reader, writer = await _hello(ib_sim, b"v157..178")
    frames = await _read_frames(reader, 1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await reader.read(1)
    assert len(frames) == 1
    writer.write(encode_fields([71, 2, 5, ""]))
    frames = await _read_frames(reader, 5)
    ids = [f[0] for f in frames]
    assert frames[0] == ["15", "1", "DU1234567"]  # managedAccounts: exactly 3 fields
    assert frames[1][0] == "9"
    assert len(frames[1]) == 3
    assert ids[2:] == ["4", "4", "4"]
    assert [f[3] for f in frames[2:]] == ["2104", "2106", "2158"]
    writer.close()


async def test_ib_async_completes_the_startup_sync(ib_sim: Simulator) -> None:
    ib = ib_async.IB()
    await ib.connectAsync(ib_sim.host, ib_sim.port, clientId=7, timeout=3)
    try:
        assert ib.isConnected()
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
        assert {p.contract.symbol for p in ib.positions()} >= {"AAPL", "MSFT", "SPY"}
        assert any(v.tag == "NetLiquidation" for v in ib.accountValues())
        assert ib.portfolio()
        kinds = {kind for _, kind, _ in ib_sim.requests}
        assert {
            "positions",
            "open_orders",
            "completed_orders",
            "account_updates",
            "account_updates_multi",
            "executions",
        } <= kinds
        assert [c.client_id for c in ib_sim.clients] == [7]
    finally:
        ib.disconnect()
    await eventually(lambda: not ib_sim.clients)


async def test_client_id_zero_binds_auto_open_orders(ib_sim: Simulator) -> None:
    ib = ib_async.IB()
    await ib.connectAsync(ib_sim.host, ib_sim.port, clientId=0, timeout=3)
    try:
        assert ib_sim.request_count("auto_open_orders") == 1
    finally:
        ib.disconnect()


async def test_duplicate_client_id_gets_326_and_a_closed_socket(ib_sim: Simulator) -> None:
    first = ib_async.IB()
    await first.connectAsync(ib_sim.host, ib_sim.port, clientId=3, timeout=3)
    reader, writer = await _hello(ib_sim, b"v157..178")
    await _read_frames(reader, 1)
    writer.write(encode_fields([71, 2, 3, ""]))
    frames = await _read_frames(reader, 2)
    assert frames[0][:4] == ["4", "2", "-1", "326"]
    async with asyncio.timeout(3):
        assert await reader.read() == b""  # and TWS hangs up
    assert first.isConnected()
    first.disconnect()
    writer.close()


async def test_thirty_two_clients_at_once(ib_sim: Simulator) -> None:
    clients = [ib_async.IB() for _ in range(32)]
    await asyncio.gather(
        *(
            c.connectAsync(ib_sim.host, ib_sim.port, clientId=100 + i, timeout=10)
            for i, c in enumerate(clients)
        )
    )
    try:
        assert sorted(c.client_id for c in ib_sim.clients) == list(range(100, 132))
        assert all(c.isConnected() for c in clients)
    finally:
        for c in clients:
            c.disconnect()


async def test_unknown_request_ids_are_logged_not_fatal(
    ib_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await _hello(ib_sim, b"v157..178")
    await _read_frames(reader, 1)
    writer.write(encode_fields([71, 2, 9, ""]) + encode_fields([9999, 1]) + encode_fields([49, 1]))
    with caplog.at_level(logging.INFO, logger="ibflow.sim"):
        frames = await _read_frames(reader, 6)
    assert frames[-1][0] == "49"  # currentTime still answered after the unknown id
    writer.close()
