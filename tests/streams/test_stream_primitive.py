"""The ``Stream`` primitive on its own: buffer policies, ending, failing, closing, cancelling.

These drive a ``Stream`` the way its owners do (``_put``/``_fail``/``_end`` from callbacks) and
read it the way users do; no socket is needed to pin down the buffer semantics every
subscription relies on.
"""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow._stream import Stream


def test_latest_conflates_to_the_newest_item() -> None:
    stream: Stream[int] = Stream(buffer=3, overflow="latest")
    for i in range(10):
        stream._put(i)
    assert stream.receive_nowait() == 9
    stats = stream.statistics()
    assert (stats.received, stats.buffered, stats.max_buffered) == (10, 0, 3)
    assert stats.dropped == 9


def test_drop_oldest_keeps_the_newest_items() -> None:
    stream: Stream[int] = Stream(buffer=3, overflow=ibflow.Overflow.DROP_OLDEST)
    for i in range(10):
        stream._put(i)
    assert [stream.receive_nowait() for _ in range(3)] == [7, 8, 9]
    assert stream.statistics().dropped == 7
    with pytest.raises(ibflow.WouldBlock):
        stream.receive_nowait()


async def test_error_policy_fails_instead_of_losing_and_releases_once() -> None:
    released: list[str] = []
    stream: Stream[int] = Stream(
        name="fills", buffer=2, overflow="error", on_close=lambda: released.append("x")
    )
    for i in range(5):
        stream._put(i)
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
        stream: Stream[object] = Stream(buffer=3, overflow=policy)
        stream._put(1)
        stream._put_marker("gap")
        for i in range(2, 20):
            stream._put(i)
        received = [stream.receive_nowait() for _ in range(stream.statistics().buffered)]
        assert "gap" in received, policy
        assert received[-1] == 19


async def test_end_delivers_what_is_buffered_then_stops_quietly() -> None:
    stream: Stream[int] = Stream()
    stream._put(1)
    stream._put(2)
    stream._end()
    assert [item async for item in stream] == [1, 2]
    with pytest.raises(ibflow.StreamClosed):
        await stream.receive()


async def test_fail_raises_from_the_next_receive_and_late_items_are_ignored() -> None:
    stream: Stream[int] = Stream()
    stream._put(1)
    stream._fail(ibflow.MarketDataError(354, "not subscribed", 7))
    stream._put(2)
    with pytest.raises(ibflow.MarketDataError):
        await anext(stream)
    with pytest.raises(ibflow.MarketDataError):
        stream.receive_nowait()


async def test_a_waiting_consumer_wakes_up_for_items_and_for_the_end() -> None:
    stream: Stream[int] = Stream()

    async def consume() -> list[int]:
        return [item async for item in stream]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    stream._put(1)
    await asyncio.sleep(0)
    stream._put(2)
    stream._end()
    assert await task == [1, 2]


async def test_cancelled_receive_loses_nothing_and_keeps_the_stream_open() -> None:
    stream: Stream[int] = Stream()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await stream.receive()
    stream._put(5)
    assert not stream.closed
    assert await stream.receive() == 5


async def test_start_hook_runs_once_and_its_error_reaches_the_consumer() -> None:
    calls: list[str] = []
    released: list[str] = []

    async def start() -> None:
        calls.append("start")
        raise ibflow.ContractNotFound(200, "no such contract")

    stream: Stream[int] = Stream(start=start, on_close=lambda: released.append("x"))
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

    stream: Stream[int] = Stream(start=start, on_close=lambda: order.append("release"))

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
        Stream(buffer=0)
    with pytest.raises(ibflow.InvalidRequest, match="overflow"):
        Stream(overflow="newest")
