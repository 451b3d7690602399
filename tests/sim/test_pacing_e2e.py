"""IB's history pacing by bar size, and TWS's silence at a bad handshake, over real sockets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import ib_async
import pytest
from ib_async import Stock

from ibflow.sim import Simulator
from ibflow.sim._codec import API_PREFIX, FrameDecoder, encode_raw
from ibflow.testing import SimFactory

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
# Small bars inside regular hours, so the answer does not depend on when the suite runs.
_RTH = datetime(2026, 10, 30, 15, tzinfo=UTC)


async def _connect(sim: Simulator) -> tuple[ib_async.IB, list[int]]:
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=3)
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    return ib, errors


async def test_ib_pacing_applies_the_small_bar_rules_to_30_second_bars_only(
    ib_sim_factory: SimFactory,
) -> None:
    sim = await ib_sim_factory(speed=1.0)  # real-time windows: 15 s is 15 s
    ib, errors = await _connect(sim)
    try:
        # One-hour bars: an identical request at once, and seven for one contract in 2 s.
        assert await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 1)
        assert await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 1)
        results = await asyncio.gather(
            *(
                ib.reqHistoricalDataAsync(AAPL, "", f"{d} D", "1 hour", "TRADES", True, 1)
                for d in range(1, 8)
            )
        )
        assert all(results)
        assert 162 not in errors
        # 30-second bars: the identical request within 15 s is a violation.
        assert await ib.reqHistoricalDataAsync(AAPL, _RTH, "1800 S", "30 secs", "TRADES", True, 1)
        assert not await ib.reqHistoricalDataAsync(
            AAPL, _RTH, "1800 S", "30 secs", "TRADES", True, 1
        )
        assert errors.count(162) == 1
    finally:
        ib.disconnect()


async def test_larger_bars_keep_the_limit_of_60_requests_in_10_minutes(
    ib_sim_factory: SimFactory,
) -> None:
    sim = await ib_sim_factory(speed=100.0)  # 10 minutes become 6 s
    ib, errors = await _connect(sim)
    try:
        base = datetime(2026, 10, 30, 20, tzinfo=UTC)
        answered = 0
        for day in range(61):
            end = base - timedelta(days=day)
            bars = await ib.reqHistoricalDataAsync(AAPL, end, "1 D", "1 hour", "TRADES", False, 1)
            answered += bool(bars)
        assert answered == 60
        assert errors == [162]
    finally:
        ib.disconnect()


async def test_strict_pacing_applies_the_small_bar_rules_to_every_bar_size(
    ib_sim_factory: SimFactory,
) -> None:
    sim = await ib_sim_factory(speed=1.0, pacing="strict")
    ib, errors = await _connect(sim)
    try:
        assert await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 day", "TRADES", True, 1)
        assert not await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 day", "TRADES", True, 1)
        assert errors == [162]
    finally:
        ib.disconnect()


async def test_pacing_off_admits_identical_small_bar_requests(ib_sim_factory: SimFactory) -> None:
    sim = await ib_sim_factory(speed=1.0, pacing=False)
    ib, errors = await _connect(sim)
    try:
        for _ in range(3):
            assert await ib.reqHistoricalDataAsync(AAPL, _RTH, "60 S", "1 secs", "TRADES", True, 1)
        assert errors == []
    finally:
        ib.disconnect()


def test_an_unknown_pacing_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="pacing must be one of ib, strict, off"):
        Simulator(pacing="lenient")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hello",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        API_PREFIX + encode_raw(b"\x00\xff\x10binary"),  # the prefix, then no version range
    ],
    ids=["tls", "http", "binary-version"],
)
async def test_a_bad_handshake_gets_silence_not_a_closed_socket(
    ib_sim: Simulator, hello: bytes
) -> None:
    reader, writer = await asyncio.open_connection(ib_sim.host, ib_sim.port)
    try:
        writer.write(hello)
        await writer.drain()
        with pytest.raises(TimeoutError):  # no reply, and no EOF either
            async with asyncio.timeout(0.5):
                await reader.read(1)
        assert not reader.at_eof()
        writer.write(API_PREFIX + encode_raw(b"v157..178"))  # a good hello after it is ignored
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.read(1)
    finally:
        writer.close()
    # The simulator still serves well-behaved clients.
    reader2, writer2 = await asyncio.open_connection(ib_sim.host, ib_sim.port)
    writer2.write(API_PREFIX + encode_raw(b"v157..178"))
    async with asyncio.timeout(3):
        data = await reader2.read(4096)
    assert FrameDecoder().feed(data)[0][0] == "178"
    writer2.close()
