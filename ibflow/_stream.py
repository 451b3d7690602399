"""``Stream[T]``: the one bounded, closable async iterator behind every ibflow subscription.

ib_async hands out a mutable ``Ticker`` and eventkit's ``aiter()`` over an unbounded queue:
memory grows behind a slow consumer, and nothing ties the IB subscription to the reader's
lifetime (``../shared/ib-limits.md``, pains 2, 13, 14). A ``Stream`` fixes both by
construction: a bounded buffer with a named overflow policy, and an owner callback that runs
exactly once when the stream stops, so the owner sends the IB cancel exactly once.

Consumer side (public)::

    async with session.quotes(contract) as quotes:   # __aenter__ runs the owner's start hook
        async for quote in quotes:                   # ends quietly on a normal end
            ...
    quotes.statistics()   # StreamStatistics(received, dropped, max_buffered, buffered)

- ``async with stream`` starts the subscription (errors such as ``ContractNotFound`` raise
  here) and closes it on exit; a bare ``async for`` starts it on the first ``__anext__``.
  Prefer ``async with``: only it guarantees the close when the consuming task is cancelled.
- ``await stream.receive()``: the next item; raises ``StreamClosed`` after a normal end or
  ``aclose()``, the owner's error after ``_fail`` (e.g. ``MarketDataError``,
  ``ConnectionLost``), ``SlowConsumer`` after an ``"error"``-policy overflow.
- ``stream.receive_nowait()``: same, but raises ``WouldBlock`` when nothing is buffered.
- ``await stream.aclose()``: idempotent; discards the buffer, runs the close hook once.
- A stream dropped while open (e.g. a bare ``async for`` left by ``break``) is released by its
  finalizer, provided the owner holds it only weakly (as ``ibflow._streams`` does).
- Errors are raised from the *next* receive: items still buffered when the owner fails the
  stream are discarded (the error says the sequence is incomplete). A normal end (``_end``)
  delivers everything buffered first, then stops.
- Cancelling a ``receive`` (task cancel, ``asyncio.timeout``) loses nothing: items stay
  buffered until someone receives them, and the stream stays open.

Overflow policies (``Overflow`` or its string value), applied when ``buffer`` items wait:

- ``"latest"``: conflate. The waiting items are superseded: the buffer is emptied and only the
  newest item kept (counted in ``dropped``). For snapshot streams (quotes) where only the
  newest value matters; memory stays flat behind any consumer.
- ``"drop_oldest"``: drop the oldest waiting item; the buffer keeps the newest ``buffer`` items.
- ``"error"``: never a silent loss. The stream fails with ``SlowConsumer`` (raised from the
  next receive), and the close hook runs so the owner stops the IB subscription. Use it for
  order events, fills and account events.

Owner side (private, for ibflow modules; never awaits, safe inside ib_async callbacks)::

    stream: Stream[Item] = Stream(
        name="fills",              # used in error messages and repr
        buffer=256,                # capacity, >= 1
        overflow="error",          # Overflow or its string value
        start=start_coro_fn,       # optional: async () -> None, run once by __aenter__ or the
                                   # first receive; raise to refuse the stream (the error
                                   # propagates to the consumer and the close hook runs)
        on_close=release_fn,       # optional: () -> None, run exactly once, synchronously, the
                                   # first time the stream stops for ANY reason: consumer
                                   # aclose/exit, _end, _fail, "error" overflow, failed start.
                                   # If the start hook is still running (consumer cancelled
                                   # while opening), it runs right after the start settles,
                                   # so it always sees what the start set up.
    )
    stream._put(item)          # O(1), non-blocking; ignored once the stream has stopped
    stream._put_marker(item)   # like _put, but no policy ever drops it in favour of data
                               # (for Gap items); it is still bounded by ``buffer``
    stream._fail(error)        # stop; the next receive raises ``error``
    stream._end()              # stop quietly after the buffered items are consumed
    stream._grow(n)            # raise the capacity to >= n before delivering a known backlog
    stream.closed              # True once stopped (by either side)

``_put`` after the stream stopped is a no-op, so late ib_async callbacks are harmless. Without
``start`` the stream is open at once (for owners that subscribe before handing it out). Hooks
that reference the stream should do so through ``weakref.ref(stream)``, or the finalizer
release above waits for the cycle collector.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Generic, TypeVar

from ._errors import IBFlowError, InvalidRequest
from ._log import get_logger

__all__ = [
    "Overflow",
    "SlowConsumer",
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamStatistics",
    "WouldBlock",
]

log = get_logger("stream")

T = TypeVar("T")

_NEW, _STARTING, _OPEN, _STOPPED = 0, 1, 2, 3


class StreamError(IBFlowError):
    """Root of the errors a ``Stream`` raises about itself (not about IB)."""


class SlowConsumer(StreamError):
    """The consumer fell ``buffer`` items behind a stream whose overflow policy is ``"error"``.

    Attributes:
        stream: the stream's name.
        buffer: its capacity.
    """

    def __init__(self, message: str, *, stream: str, buffer: int) -> None:
        super().__init__(message)
        self.stream = stream
        self.buffer = buffer


class StreamClosed(StreamError):
    """``receive()`` on a stream that ended normally or was closed with ``aclose()``."""


class WouldBlock(StreamError):
    """``receive_nowait()`` found nothing buffered on an open stream."""


class Overflow(StrEnum):
    """What a full stream buffer does with a new item."""

    LATEST = "latest"
    """Conflate: discard the waiting items, keep only the newest."""
    DROP_OLDEST = "drop_oldest"
    """Discard the oldest waiting item."""
    ERROR = "error"
    """Fail the stream with ``SlowConsumer``: never a silent loss."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStatistics:
    """Counters of one stream, as returned by ``Stream.statistics()``."""

    received: int
    """Items the producer delivered while the stream was open."""
    dropped: int
    """Items discarded by the overflow policy."""
    max_buffered: int
    """The most items that ever waited at once."""
    buffered: int
    """Items waiting right now."""


def _check_overflow(overflow: object) -> Overflow:
    if isinstance(overflow, str) and overflow in Overflow.__members__.values():
        return Overflow(overflow)
    choices = ", ".join(repr(o.value) for o in Overflow)
    raise InvalidRequest(f"overflow must be one of {choices}; got {overflow!r}")


def _check_buffer(buffer: object) -> int:
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
        raise InvalidRequest(f"buffer must be a positive int (items); got {buffer!r}")
    return buffer


class Stream(Generic[T]):
    """A bounded async iterator over one subscription; see the module docstring."""

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_capacity",
        "_dropped",
        "_error",
        "_markers",
        "_max_buffered",
        "_name",
        "_on_close",
        "_overflow",
        "_received",
        "_start",
        "_start_task",
        "_state",
        "_waiter",
    )

    def __init__(
        self,
        *,
        name: str = "stream",
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
        start: Callable[[], Awaitable[None]] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._capacity = _check_buffer(buffer)
        self._overflow = _check_overflow(overflow)
        self._name = name
        self._start = start
        self._start_task: asyncio.Future[None] | None = None
        self._on_close = on_close
        self._buffer: deque[T] = deque()
        self._markers: deque[T] = deque()  # marker items still buffered, in buffer order
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._state = _NEW if start is not None else _OPEN
        self._received = 0
        self._dropped = 0
        self._max_buffered = 0

    # ------------------------------------------------------------------ consumer side

    @property
    def name(self) -> str:
        """What this stream carries, e.g. ``"quotes AAPL"``."""
        return self._name

    @property
    def closed(self) -> bool:
        """True once the stream stopped: closed, ended, or failed."""
        return self._state == _STOPPED

    @property
    def overflow(self) -> Overflow:
        """The overflow policy."""
        return self._overflow

    @property
    def buffer_size(self) -> int:
        """The buffer's capacity, in items."""
        return self._capacity

    def statistics(self) -> StreamStatistics:
        """Counters: received, dropped, max_buffered, buffered."""
        return StreamStatistics(
            received=self._received,
            dropped=self._dropped,
            max_buffered=self._max_buffered,
            buffered=len(self._buffer),
        )

    def __repr__(self) -> str:
        state = ("new", "starting", "open", "closed")[self._state]
        return (
            f"<Stream {self._name!r} {state} buffered={len(self._buffer)}/{self._capacity} "
            f"overflow={self._overflow.value}>"
        )

    async def __aenter__(self) -> Stream[T]:
        try:
            await self._ensure_started()
        except BaseException:
            # No __aexit__ follows a failed or cancelled __aenter__: release here.
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except StreamClosed:
            raise StopAsyncIteration from None

    async def receive(self) -> T:
        """Wait for the next item.

        Raises:
            StreamClosed: the stream ended normally or was closed.
            SlowConsumer: the ``"error"`` overflow policy tripped.
            IBFlowError: whatever the owner failed the stream with (``MarketDataError``,
                ``ContractNotFound``, ``ConnectionLost``…).
        """
        if self._state < _OPEN:
            await self._ensure_started()
        while True:
            if self._error is not None:
                raise self._error
            buffer = self._buffer
            if buffer:
                item = buffer.popleft()
                if self._markers and item is self._markers[0]:
                    self._markers.popleft()
                return item
            if self._state == _STOPPED:
                raise StreamClosed(f"stream {self._name!r} is closed")
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: several tasks may wait on one stream, and a cancelled waiter must not
            # cancel the shared future for the others.
            await asyncio.shield(waiter)

    def receive_nowait(self) -> T:
        """Return a buffered item without waiting.

        Raises:
            WouldBlock: the stream is open but nothing is buffered (or it has not started).
            StreamClosed: the stream ended normally or was closed.
            SlowConsumer: the ``"error"`` overflow policy tripped.
            IBFlowError: whatever the owner failed the stream with.
        """
        if self._error is not None:
            raise self._error
        if self._buffer:
            item = self._buffer.popleft()
            if self._markers and item is self._markers[0]:
                self._markers.popleft()
            return item
        if self._state == _STOPPED:
            raise StreamClosed(f"stream {self._name!r} is closed")
        raise WouldBlock(f"stream {self._name!r} has nothing buffered")

    async def aclose(self) -> None:
        """Stop the stream: discard what is buffered and release the subscription (once).

        Safe to call several times and after the stream ended or failed.
        """
        self._buffer.clear()
        self._markers.clear()
        task = self._start_task
        if task is not None and not task.done():
            task.cancel()
        self._stop()

    # ------------------------------------------------------------------ owner side

    def _put(self, item: T) -> None:
        """Deliver one item (O(1), never blocks). Ignored once the stream stopped."""
        if self._state == _STOPPED:
            return
        self._received += 1
        buffer = self._buffer
        if len(buffer) >= self._capacity and not self._make_room():
            return
        buffer.append(item)
        n = len(buffer)
        if n > self._max_buffered:
            self._max_buffered = n
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _put_marker(self, item: T) -> None:
        """Deliver an item that the overflow policy drops only when nothing else can go."""
        if self._state == _STOPPED:
            return
        self._put(item)
        if self._state != _STOPPED and self._buffer and self._buffer[-1] is item:
            self._markers.append(item)

    def _grow(self, capacity: int) -> None:
        """Raise the capacity to at least ``capacity`` (never lowers it).

        For owners about to deliver a known, finite backlog (history) at once, which must not
        count as the consumer falling behind.
        """
        if capacity > self._capacity:
            self._capacity = capacity

    def _fail(self, error: BaseException) -> None:
        """Stop the stream; the next receive raises ``error``. No-op once stopped."""
        if self._state == _STOPPED:
            return
        self._error = error
        self._buffer.clear()
        self._markers.clear()
        self._stop()

    def _end(self) -> None:
        """Stop quietly; buffered items are still delivered, then iteration ends."""
        self._stop()

    # ------------------------------------------------------------------ internals

    def _make_room(self) -> bool:
        """Apply the overflow policy to a full buffer; False when the new item is refused."""
        buffer = self._buffer
        policy = self._overflow
        if policy is Overflow.ERROR:
            self._dropped += 1
            self._fail(
                SlowConsumer(
                    f"stream {self._name!r} fell {self._capacity} items behind; its overflow "
                    f"policy is 'error', so it stopped instead of losing items (read faster, "
                    f"or raise buffer=)",
                    stream=self._name,
                    buffer=self._capacity,
                )
            )
            return False
        markers = self._markers
        if not markers:
            if policy is Overflow.LATEST:
                self._dropped += len(buffer)
                buffer.clear()
            else:
                buffer.popleft()
                self._dropped += 1
            return True
        # Slow path, only while a marker (Gap) waits: data goes first, markers keep their order.
        kept: deque[T] = deque()
        dropped = 0
        if policy is Overflow.LATEST:
            for queued in buffer:
                if any(queued is m for m in markers):
                    kept.append(queued)
                else:
                    dropped += 1
        else:
            removed = False
            for queued in buffer:
                if not removed and not any(queued is m for m in markers):
                    removed = True
                    dropped += 1
                else:
                    kept.append(queued)
        if dropped == 0:  # the buffer holds only markers: the oldest one has to go
            kept.popleft()
            markers.popleft()
            dropped = 1
        self._dropped += dropped
        buffer.clear()
        buffer.extend(kept)
        return True

    async def _ensure_started(self) -> None:
        if self._state == _OPEN:
            return
        if self._state == _STOPPED:
            if self._error is not None:
                raise self._error
            return
        if self._start_task is None:
            assert self._start is not None
            self._state = _STARTING
            self._start_task = asyncio.ensure_future(self._run_start(self._start))
        # Shielded so one cancelled opener does not abort the start for another waiter;
        # aclose() cancels the start itself.
        await asyncio.shield(self._start_task)

    async def _run_start(self, start: Callable[[], Awaitable[None]]) -> None:
        try:
            await start()
        except BaseException as exc:
            if self._state != _STOPPED:
                self._error = exc if isinstance(exc, Exception) else None
                self._stop()
            raise
        finally:
            self._start = None  # the hook may hold the stream: no cycle once started
        if self._state == _STARTING:
            self._state = _OPEN

    def __del__(self) -> None:
        # Dropped while open without aclose() (a bare `async for` left by `break`): release
        # the subscription now rather than leak it for the life of the session.
        if getattr(self, "_state", _STOPPED) == _OPEN:
            self._stop()

    def _stop(self) -> None:
        if self._state == _STOPPED:
            return
        self._state = _STOPPED
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        task = self._start_task
        if task is not None and not task.done():
            # The owner's start is still running: release only after it settled, so the hook
            # sees everything the start set up.
            task.add_done_callback(lambda _task: self._run_close_hook())
        else:
            self._run_close_hook()

    def _run_close_hook(self) -> None:
        callback = self._on_close
        self._on_close = None
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("close hook of stream %r failed", self._name)
