"""Waking the coroutines that wait on orders: what the order book and its trades share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .._errors import RequestTimeout

__all__ = ["Signal", "wait_until"]


class Signal:
    """Wakes every waiting coroutine when something changed (called from ib_async callbacks)."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    def fire(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def changed(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        try:
            await future
        finally:
            with contextlib.suppress(ValueError):
                self._futures.remove(future)


async def wait_until(
    signal: Signal, ready: Callable[[], bool], limit: float | None, what: str
) -> None:
    """Wait until ``ready()``; ``RequestTimeout`` after ``limit`` seconds."""
    if ready():
        return
    try:
        async with asyncio.timeout(limit):
            while not ready():
                await signal.changed()
    except TimeoutError:
        raise RequestTimeout(f"{what}: not within {limit} s") from None
