"""The idempotency store on its own: one run per key, bounded by count and age."""

from __future__ import annotations

import asyncio

import pytest

from ibflow.bridge._errors import BridgeError
from ibflow.bridge._idempotency import Answer, IdempotencyStore, check_key


class Work:
    """Counts runs; each answers with its run number, after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.runs = 0
        self.delay = delay

    async def __call__(self) -> Answer:
        self.runs += 1
        run = self.runs
        await asyncio.sleep(self.delay)
        return Answer(201, str(run).encode())


async def test_one_run_per_key_even_when_the_first_caller_is_cancelled() -> None:
    store = IdempotencyStore()
    work = Work(delay=0.05)
    first = asyncio.create_task(store.run("k", "body", work))
    await asyncio.sleep(0.01)
    first.cancel()  # the client went away mid-order
    answer, replayed = await store.run("k", "body", work)
    assert (answer.body, replayed, work.runs) == (b"1", True, 1)
    assert first.cancelled()


async def test_the_oldest_finished_key_makes_room() -> None:
    store = IdempotencyStore(max_keys=2)
    work = Work()
    for key in ("a", "b", "c"):
        await store.run(key, "body", work)
    assert len(store) == 2
    answer, replayed = await store.run("a", "body", work)  # forgotten: runs again
    assert (answer.body, replayed) == (b"4", False)
    answer, replayed = await store.run("c", "body", work)
    assert (answer.body, replayed) == (b"3", True)


async def test_keys_in_flight_are_never_evicted() -> None:
    store = IdempotencyStore(max_keys=1)
    slow = asyncio.create_task(store.run("a", "body", Work(delay=0.1)))
    await asyncio.sleep(0)
    with pytest.raises(BridgeError) as refused:
        await store.run("b", "body", Work())
    assert (refused.value.status, refused.value.error) == (503, "TooManyOrdersInFlight")
    await slow
    await store.run("b", "body", Work())  # room again once "a" finished


async def test_keys_expire_after_the_ttl() -> None:
    store = IdempotencyStore(ttl=0.05)
    work = Work()
    await store.run("k", "body", work)
    await asyncio.sleep(0.06)
    answer, replayed = await store.run("k", "body", work)
    assert (answer.body, replayed) == (b"2", False)


async def test_drain_waits_for_what_is_in_flight() -> None:
    store = IdempotencyStore()
    running = asyncio.create_task(store.run("k", "body", Work(delay=0.05)))
    await asyncio.sleep(0)
    await store.drain()
    assert running.done()


@pytest.mark.parametrize("key", [None, "", "  ", "x" * 256, "naïve"])
def test_unusable_keys_are_400(key: str | None) -> None:
    with pytest.raises(BridgeError) as refused:
        check_key(key)
    assert refused.value.status == 400
