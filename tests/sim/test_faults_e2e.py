"""Fault injection and IB's enforced limits, seen from a real ib_async client."""

from __future__ import annotations

import asyncio

import ib_async
import pytest
from ib_async import Stock

from ibflow.sim import Simulator
from ibflow.sim._codec import API_PREFIX, FrameDecoder, encode_fields, encode_raw
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def test_drop_connections(ib: ib_async.IB, ib_sim: Simulator) -> None:
    lost: list[bool] = []
    ib.disconnectedEvent += lambda: lost.append(True)
    ib_sim.drop_connections()
    await eventually(lambda: lost)
    assert not ib.isConnected()
    assert ib_sim.clients == []


async def test_restart_refuses_then_accepts_again(ib: ib_async.IB, ib_sim: Simulator) -> None:
    port = ib_sim.port
    restart = asyncio.create_task(ib_sim.restart(down_for=0.5))
    await eventually(lambda: not ib.isConnected())
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(ib_sim.host, port)
    await restart
    assert ib_sim.port == port
    again = ib_async.IB()
    await again.connectAsync(ib_sim.host, port, clientId=1, timeout=3)
    assert again.isConnected()
    again.disconnect()


async def test_silent_handshake_times_out(ib_sim: Simulator) -> None:
    ib_sim.silence_handshake(True)
    ib = ib_async.IB()
    with pytest.raises(TimeoutError):
        await ib.connectAsync(ib_sim.host, ib_sim.port, clientId=1, timeout=0.5)
    ib.disconnect()


async def test_accept_then_close(ib_sim: Simulator) -> None:
    ib_sim.accept_then_close(True)
    reader, writer = await asyncio.open_connection(ib_sim.host, ib_sim.port)
    async with asyncio.timeout(3):
        assert await reader.read() == b""
    writer.close()


async def test_notice_is_broadcast(ib: ib_async.IB, ib_sim: Simulator) -> None:
    codes: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: codes.append((req_id, code))
    for code in (1100, 1102, 2103, 10197):
        ib_sim.notice(code, f"notice {code}")
    await eventually(lambda: [c for _, c in codes] == [1100, 1102, 2103, 10197])
    assert {r for r, _ in codes} == {-1}


async def test_fail_next_answers_one_request_with_an_error(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib_sim.fail_next(
        "historical_data",
        162,
        "Historical Market Data Service error message:HMDS query returned no data",
    )
    assert not await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 1)
    assert 162 in errors
    assert await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 1)


async def test_fail_next_rejects_unknown_kinds(ib_sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown request kind"):
        ib_sim.fail_next("nonsense", 1, "x")


async def test_ignored_sync_request_delays_ib_async(ib_sim: Simulator) -> None:
    ib_sim.ignore("positions")
    ib = ib_async.IB()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await ib.connectAsync(ib_sim.host, ib_sim.port, clientId=1, timeout=0.5)
    try:
        assert loop.time() - started >= 0.5  # ib_async waited out the missing positionEnd
    finally:
        ib.disconnect()


async def test_stall_and_delay_hold_replies(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.stall(True)
    request = asyncio.ensure_future(ib.reqCurrentTimeAsync())
    await asyncio.sleep(0.2)
    assert not request.done()
    ib_sim.stall(False)
    assert (await asyncio.wait_for(request, 3)).year >= 2024
    ib_sim.delay(0.1)
    assert (await asyncio.wait_for(ib.reqCurrentTimeAsync(), 3)).year >= 2024


async def test_malformed_frame_does_not_kill_the_session(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.send_malformed()
    assert (await asyncio.wait_for(ib.reqCurrentTimeAsync(), 3)).year >= 2024
    assert ib.isConnected()


async def test_message_rate_limit_is_error_100_then_disconnect(ib_sim_factory) -> None:  # type: ignore[no-untyped-def]
    sim = await ib_sim_factory(speed=10.0)  # the 1 s window becomes 0.1 s, 10 s becomes 1 s
    reader, writer = await asyncio.open_connection(sim.host, sim.port)
    writer.write(API_PREFIX + encode_raw(b"v157..178"))
    writer.write(encode_fields([71, 2, 1, ""]))
    flood = b"".join(encode_fields([49, 1]) for _ in range(120))
    data = b""
    for _ in range(3):  # three separate violations close the socket, as TWS does
        writer.write(flood)
        await asyncio.sleep(0.15)
    async with asyncio.timeout(5):
        while chunk := await reader.read(65536):
            data += chunk
    frames = FrameDecoder().feed(data)[1:]  # after the handshake reply
    assert [f[3] for f in frames if f[0] == "4" and f[3] == "100"] == ["100"] * 3
    assert sum(1 for f in frames if f[0] == "49") >= 50  # what fitted under the limit was answered
    writer.close()


@pytest.fixture
async def real_time_ib(ib_sim_factory):  # type: ignore[no-untyped-def]
    """A client on a strict sim (every history rule on every bar size) in real time (speed 1)."""
    sim = await ib_sim_factory(speed=1.0, pacing="strict")
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=3)
    try:
        yield ib
    finally:
        ib.disconnect()


async def test_historical_pacing_is_error_162(real_time_ib: ib_async.IB) -> None:
    ib = real_time_ib
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    # Six requests for one contract and type inside two seconds is a violation.
    results = await asyncio.gather(
        *(
            ib.reqHistoricalDataAsync(AAPL, "", f"{d} D", "1 hour", "TRADES", True, 1)
            for d in range(1, 8)
        )
    )
    assert 162 in errors
    assert sum(1 for r in results if r) == 5
    # An identical request within 15 seconds is refused too.
    assert not await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 1)


async def test_tick_by_tick_pacing(real_time_ib: ib_async.IB) -> None:
    ib = real_time_ib
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.reqTickByTickData(AAPL, "Last")
    ib.cancelTickByTickData(AAPL, "Last")
    ib.reqTickByTickData(AAPL, "Last")
    await eventually(lambda: errors)


async def test_connectivity_notices_pause_and_drop_market_data(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ticker = ib.reqMktData(AAPL, "", False, False)
    await eventually(lambda: ticker.last == ticker.last)
    ib_sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
    await asyncio.sleep(0.05)
    ib_sim.push_quote("AAPL", bid=150.0, ask=150.02, last=150.01)
    await asyncio.sleep(0.1)
    assert ticker.last != 150.01  # nothing flows while TWS has lost IB
    ib_sim.notice(1102, "Connectivity between IB and TWS has been restored - data maintained.")
    ib_sim.push_quote("AAPL", bid=151.0, ask=151.02, last=151.01)
    await eventually(lambda: ticker.last == 151.01)
    ib_sim.notice(1101, "Connectivity between IB and TWS has been restored - data lost.")
    await eventually(lambda: "mkt_data" not in ib_sim.subscriptions())


async def test_notice_to_one_request(ib: ib_async.IB, ib_sim: Simulator) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    ib_sim.notice(10197, "No market data during competing live session", req_id=42, client_id=1)
    await eventually(lambda: (42, 10197) in errors)


async def test_halt_is_reported_during_a_stream(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ticker = ib.reqMktData(AAPL, "", False, False)
    await eventually(lambda: ticker.last == ticker.last)
    ib_sim.push_quote("AAPL", halted=True)
    await eventually(lambda: ticker.halted == 1)
    ib_sim.push_quote("AAPL", halted=False)
    await eventually(lambda: ticker.halted == 0)
