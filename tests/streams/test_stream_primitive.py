"""The ``Stream`` primitive on its own: buffer policies, ending, failing, closing, cancelling.

These drive a ``Stream`` the way its producers do (``send``/``fail``/``end`` on its writer, from
callbacks) and read it the way users do; no socket is needed to pin down the buffer semantics
every subscription relies on.
"""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow._stream import StreamWriter


def test_latest_conflates_to_the_newest_item() -> None:
    writer: StreamWriter[int] = StreamWriter(buffer=3, overflow="latest")
    stream = writer.stream
    for i in range(10):
        writer.send(i)
    assert stream.receive_nowait() == 9
    stats = stream.statistics()
    assert (stats.received, stats.buffered, stats.max_buffered) == (10, 0, 3)
    assert stats.dropped == 9


def test_drop_oldest_keeps_the_newest_items() -> None:
    writer: StreamWriter[int] = StreamWriter(buffer=3, overflow=ibflow.Overflow.DROP_OLDEST)
    stream = writer.stream
    for i in range(10):
        writer.send(i)
    assert [stream.receive_nowait() for _ in range(3)] == [7, 8, 9]
    assert stream.statistics().dropped == 7
    with pytest.raises(ibflow.WouldBlock):
        stream.receive_nowait()


async def test_error_policy_fails_instead_of_losing_and_releases_once() -> None:
    released: list[str] = []
    writer: StreamWriter[int] = StreamWriter(
        name="fills", buffer=2, overflow="error", on_close=lambda: released.append("x")
    )
    stream = writer.stream
    for i in range(5):
        writer.send(i)
    with pytest.raises(ibflow.SlowConsumer) as caught:
        await stream.receive()
    assert caught.value.buffer == 2
    assert caught.value.stream == "fills"
    assert isinstance(caught.value, ibflow.StreamError)
    assert stream.closed
    assert released == ["x"]
    await stream.aclose()
    assert released == ["x"]


async def test_markers_survive_every_policy() -> None:
    for policy in ("latest", "drop_oldest"):
        writer: StreamWriter[object] = StreamWriter(buffer=3, overflow=policy)
        stream = writer.stream
        writer.send(1)
        writer.send_marker("gap")
        for i in range(2, 20):
            writer.send(i)
        received = [stream.receive_nowait() for _ in range(stream.statistics().buffered)]
        assert "gap" in received, policy
        assert received[-1] == 19


async def test_end_delivers_what_is_buffered_then_stops_quietly() -> None:
    writer: StreamWriter[int] = StreamWriter()
    stream = writer.stream
    writer.send(1)
    writer.send(2)
    writer.end()
    assert [item async for item in stream] == [1, 2]
    with pytest.raises(ibflow.StreamClosed):
        await stream.receive()


async def test_fail_raises_from_the_next_receive_and_late_items_are_ignored() -> None:
    writer: StreamWriter[int] = StreamWriter()
    stream = writer.stream
    writer.send(1)
    writer.fail(ibflow.MarketDataError(354, "not subscribed", 7))
    writer.send(2)
    with pytest.raises(ibflow.MarketDataError):
        await anext(stream)
    with pytest.raises(ibflow.MarketDataError):
        stream.receive_nowait()


async def test_a_waiting_consumer_wakes_up_for_items_and_for_the_end() -> None:
    writer: StreamWriter[int] = StreamWriter()
    stream = writer.stream

    async def consume() -> list[int]:
        return [item async for item in stream]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    writer.send(1)
    await asyncio.sleep(0)
    writer.send(2)
    writer.end()
    assert await task == [1, 2]


async def test_cancelled_receive_loses_nothing_and_keeps_the_stream_open() -> None:
    writer: StreamWriter[int] = StreamWriter()
    stream = writer.stream
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await stream.receive()
    writer.send(5)
    assert not stream.closed
    assert await stream.receive() == 5


async def test_start_hook_runs_once_and_its_error_reaches_the_consumer() -> None:
    calls: list[str] = []
    released: list[str] = []

    async def start() -> None:
        calls.append("start")
        raise ibflow.ContractNotFound(200, "no such contract")

    writer: StreamWriter[int] = StreamWriter(start=start, on_close=lambda: released.append("x"))
    stream = writer.stream
    with pytest.raises(ibflow.ContractNotFound):
        async with stream:
            pass
    with pytest.raises(ibflow.ContractNotFound):
        await stream.receive()
    assert calls == ["start"]
    assert released == ["x"]


async def test_close_while_starting_waits_for_the_start_before_releasing() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def start() -> None:
        order.append("start")
        await gate.wait()
        order.append("started")

    writer: StreamWriter[int] = StreamWriter(start=start, on_close=lambda: order.append("release"))
    stream = writer.stream

    async def enter() -> None:
        async with stream:
            await asyncio.sleep(10)

    task = asyncio.create_task(enter())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.01)
    assert order == ["start", "release"]
    assert stream.closed


def test_bad_buffer_and_policy_are_refused() -> None:
    with pytest.raises(ibflow.InvalidRequest, match="buffer"):
        StreamWriter(buffer=0)
    with pytest.raises(ibflow.InvalidRequest, match="overflow"):
        StreamWriter(overflow="newest")
