"""``RemoteStream``: a remote session's bounded async iterator, shaped like ``ibflow.Stream``.

It is consumed exactly as a ``Stream`` is (``async with`` starts it and closes it, ``async for``
ends quietly on a normal end, ``receive()`` raises ``EndOfStream`` / ``StreamClosed`` / the
hub's error), with the same overflow policies, but its producer is a NATS subscription: items
arrive from a callback and never block it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar

import ibflow

__all__ = ["RemoteStream"]

T = TypeVar("T")


class RemoteStream(Generic[T]):
    """Items a hub publishes for one subscription, buffered up to ``buffer_size``.

    Overflow policies as ``ibflow.Stream``: ``latest`` keeps only the newest item,
    ``drop_oldest`` drops the oldest, ``error`` fails the stream with ``SlowConsumer``.
    """

    def __init__(
        self,
        name: str,
        *,
        buffer: int,
        overflow: ibflow.Overflow | str,
        start: Callable[[RemoteStream[T]], Awaitable[None]],
        on_close: Callable[[], None],
    ) -> None:
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ibflow.InvalidRequest(f"buffer must be an int >= 1, got {buffer!r}")
        try:
            self._overflow = ibflow.Overflow(overflow)
        except ValueError:
            choices = ", ".join(repr(o.value) for o in ibflow.Overflow)
            raise ibflow.InvalidRequest(
                f"overflow must be one of {choices}, got {overflow!r}"
            ) from None
        self._name = name
        self._capacity = buffer
        self._start: Callable[[RemoteStream[T]], Awaitable[None]] | None = start
        self._on_close: Callable[[], None] | None = on_close
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._error: BaseException | None = None
        self._ended = False
        self._closed = False
        self._received = 0
        self._dropped = 0
        self._max_buffered = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        """True once the stream stopped: closed, ended or failed."""
        return self._on_close is None

    @property
    def overflow(self) -> ibflow.Overflow:
        return self._overflow

    @property
    def buffer_size(self) -> int:
        return self._capacity

    def statistics(self) -> ibflow.StreamStatistics:
        return ibflow.StreamStatistics(
            received=self._received,
            dropped=self._dropped,
            max_buffered=self._max_buffered,
            buffered=len(self._items),
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<RemoteStream {self._name} {state} buffered={len(self._items)}>"

    async def __aenter__(self) -> RemoteStream[T]:
        await self._ensure_started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> RemoteStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except ibflow.StreamClosed:
            raise StopAsyncIteration from None

    async def receive(self) -> T:
        """The next item; ``EndOfStream`` after an end, the hub's error after a failure."""
        await self._ensure_started()
        while True:
            if self._items:
                return self._items.popleft()
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ibflow.StreamClosed(f"stream {self._name} was closed by its consumer")
            if self._ended or self.closed:
                raise ibflow.EndOfStream(f"stream {self._name} has ended")
            self._wake.clear()
            await self._wake.wait()

    async def aclose(self) -> None:
        """Stop the subscription (the hub releases its interest); idempotent."""
        if not self.closed:
            self._closed = True
        self._items.clear()
        self._stop()

    # -- producer side (the remote session) -----------------------------------------------------

    def put(self, item: T) -> None:
        """Deliver ``item``, applying the overflow policy; ignored once stopped."""
        if self.closed:
            return
        if len(self._items) >= self._capacity:
            if self._overflow is ibflow.Overflow.LATEST:
                self._dropped += len(self._items)
                self._items.clear()
            elif self._overflow is ibflow.Overflow.DROP_OLDEST:
                self._dropped += 1
                self._items.popleft()
            else:
                self.fail(
                    ibflow.SlowConsumer(
                        f"stream {self._name} fell {self._capacity} items behind",
                        stream=self._name,
                        buffer=self._capacity,
                    )
                )
                return
        self._deliver(item)

    def put_marker(self, item: T) -> None:
        """Deliver ``item`` (a ``Gap``) past the overflow policy; ignored once stopped."""
        if not self.closed:
            self._deliver(item)

    def fail(self, error: BaseException) -> None:
        """Stop; the next receive raises ``error`` (items still buffered are discarded)."""
        if self.closed:
            return
        self._error = error
        self._items.clear()
        self._stop()

    def end(self) -> None:
        """Stop quietly once the buffered items are consumed."""
        if not self.closed:
            self._ended = True
            self._stop()

    @property
    def received(self) -> int:
        return self._received

    def _deliver(self, item: T) -> None:
        self._items.append(item)
        self._received += 1
        self._max_buffered = max(self._max_buffered, len(self._items))
        self._wake.set()

    async def _ensure_started(self) -> None:
        start, self._start = self._start, None
        if start is None:
            return
        try:
            await start(self)
        except BaseException:
            self._closed = True
            self._stop()
            raise

    def _stop(self) -> None:
        self._start = None
        on_close, self._on_close = self._on_close, None
        self._wake.set()
        if on_close is not None:
            on_close()
