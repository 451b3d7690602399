"""``Stream[T]``: the one bounded, closable async iterator behind every ibflow subscription.

ib_async hands out a mutable ``Ticker`` and eventkit's ``aiter()`` over an unbounded queue:
memory grows behind a slow consumer, and nothing ties the IB subscription to the reader's
lifetime. A ``Stream`` fixes both by
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
- ``await stream.receive()``: the next item; raises ``EndOfStream`` after a normal end,
  ``StreamClosed`` after your own ``aclose()`` (anyio's ``EndOfStream`` and
  ``ClosedResourceError``), the producer's error after ``fail`` (e.g. ``MarketDataError``,
  ``ConnectionLost``), ``SlowConsumer`` after an ``"error"``-policy overflow.
- ``stream.receive_nowait()``: same, but raises ``WouldBlock`` when nothing is buffered.
- ``await stream.aclose()``: idempotent; discards the buffer, runs the close hook once.
- A stream dropped while open (e.g. a bare ``async for`` left by ``break``) is released by its
  finalizer (the producer's writer never keeps it alive).
- Errors are raised from the *next* receive: items still buffered when the owner fails the
  stream are discarded (the error says the sequence is incomplete). A normal end (``end``)
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

Producer side (private to ibflow's features; never awaits, safe inside ib_async callbacks)::

    writer: StreamWriter[Item] = StreamWriter(
        name="fills",              # used in error messages and repr
        buffer=256,                # capacity, >= 1
        overflow="error",          # Overflow or its string value
        start=start_coro_fn,       # optional: async () -> None, run once by __aenter__ or the
                                   # first receive; raise to refuse the stream
        on_close=release_fn,       # optional: () -> None, run exactly once, the first time the
                                   # stream stops for any reason (after a running start settles)
    )
    stream = writer.stream     # the consumer half handed to the user
    writer.send(item)          # O(1), non-blocking; ignored once the stream has stopped
    writer.send_marker(item)   # like send, but no policy drops it in favour of data (Gap)
    writer.fail(error)         # stop; the next receive raises ``error``
    writer.end()               # stop quietly after the buffered items are consumed
    writer.grow(n)             # raise the capacity to >= n before delivering a known backlog
    writer.closed              # True once stopped (by either side)

The writer never keeps the consumer half alive: a stream its user dropped is released by its
finalizer even while its producer still holds the writer.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Generic, TypeVar

from ._errors import EndOfStream, InvalidRequest, SlowConsumer, StreamClosed, WouldBlock
from ._log import get_logger

__all__ = ["Overflow", "Stream", "StreamStatistics", "StreamWriter"]

log = get_logger("stream")

T = TypeVar("T")

_NEW, _STARTING, _OPEN, _STOPPED = 0, 1, 2, 3


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


class _Channel(Generic[T]):
    """The state both halves of a stream share: buffer, policy, hooks."""

    __slots__ = (
        "_buffer",
        "_capacity",
        "_closed_by_consumer",
        "_consumer",
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
        self._consumer: weakref.ref[Stream[T]] | None = None
        self._closed_by_consumer = False

    def statistics(self) -> StreamStatistics:
        return StreamStatistics(
            received=self._received,
            dropped=self._dropped,
            max_buffered=self._max_buffered,
            buffered=len(self._buffer),
        )

    async def receive(self) -> T:
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
                raise self._closed_error()
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: several tasks may wait on one stream, and a cancelled waiter must not
            # cancel the shared future for the others.
            await asyncio.shield(waiter)

    def receive_nowait(self) -> T:
        if self._error is not None:
            raise self._error
        if self._buffer:
            item = self._buffer.popleft()
            if self._markers and item is self._markers[0]:
                self._markers.popleft()
            return item
        if self._state == _STOPPED:
            raise self._closed_error()
        raise WouldBlock(f"stream {self._name!r} has nothing buffered")

    def close(self) -> None:
        self._closed_by_consumer = True
        self._buffer.clear()
        self._markers.clear()
        task = self._start_task
        if task is not None and not task.done():
            task.cancel()
        self._stop()

    # ------------------------------------------------------------------ producer side

    def put(self, item: T) -> None:
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

    def put_marker(self, item: T) -> None:
        """Deliver an item that the overflow policy drops only when nothing else can go."""
        if self._state == _STOPPED:
            return
        self.put(item)
        if self._state != _STOPPED and self._buffer and self._buffer[-1] is item:
            self._markers.append(item)

    def grow(self, capacity: int) -> None:
        """Raise the capacity to at least ``capacity`` (never lowers it).

        For owners about to deliver a known, finite backlog (history) at once, which must not
        count as the consumer falling behind.
        """
        if capacity > self._capacity:
            self._capacity = capacity

    def fail(self, error: BaseException) -> None:
        """Stop the stream; the next receive raises ``error``. No-op once stopped."""
        if self._state == _STOPPED:
            return
        self._error = error
        self._buffer.clear()
        self._markers.clear()
        self._stop()

    def end(self) -> None:
        """Stop quietly; buffered items are still delivered, then iteration ends."""
        self._stop()

    # ------------------------------------------------------------------ internals

    def _make_room(self) -> bool:
        """Apply the overflow policy to a full buffer; False when the new item is refused."""
        buffer = self._buffer
        policy = self._overflow
        if policy is Overflow.ERROR:
            self._dropped += 1
            self.fail(
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

    def _closed_error(self) -> StreamClosed:
        if self._closed_by_consumer:
            return StreamClosed(f"stream {self._name!r} was closed with aclose()")
        return EndOfStream(f"stream {self._name!r} ended")


class Stream(Generic[T]):
    """A bounded async iterator over one subscription; see the module docstring."""

    __slots__ = ("__weakref__", "_ch")

    def __init__(self, channel: _Channel[T]) -> None:
        self._ch = channel

    @property
    def name(self) -> str:
        """What this stream carries, e.g. ``"quotes AAPL"``."""
        return self._ch._name

    @property
    def closed(self) -> bool:
        """True once the stream stopped: closed, ended, or failed."""
        return self._ch._state == _STOPPED

    @property
    def overflow(self) -> Overflow:
        """The overflow policy."""
        return self._ch._overflow

    @property
    def buffer_size(self) -> int:
        """The buffer's capacity, in items."""
        return self._ch._capacity

    def statistics(self) -> StreamStatistics:
        """Counters: received, dropped, max_buffered, buffered."""
        return self._ch.statistics()

    def __repr__(self) -> str:
        ch = self._ch
        state = ("new", "starting", "open", "closed")[ch._state]
        return (
            f"<Stream {ch._name!r} {state} buffered={len(ch._buffer)}/{ch._capacity} "
            f"overflow={ch._overflow.value}>"
        )

    async def __aenter__(self) -> Stream[T]:
        try:
            await self._ch._ensure_started()
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
            return await self._ch.receive()
        except StreamClosed:
            raise StopAsyncIteration from None

    async def receive(self) -> T:
        """Wait for the next item.

        Raises:
            EndOfStream: the stream ended (the session closed, or its producer finished).
            StreamClosed: you closed it with ``aclose()`` (``EndOfStream`` is a subclass).
            SlowConsumer: the ``"error"`` overflow policy tripped.
            IBFlowError: whatever the producer failed the stream with (``MarketDataError``,
                ``ContractNotFound``, ``ConnectionLost``…).
        """
        return await self._ch.receive()

    def receive_nowait(self) -> T:
        """Return a buffered item without waiting.

        Raises:
            WouldBlock: the stream is open but nothing is buffered (or it has not started).
            EndOfStream / StreamClosed / SlowConsumer / IBFlowError: as :meth:`receive`.
        """
        return self._ch.receive_nowait()

    async def aclose(self) -> None:
        """Stop the stream: discard what is buffered and release the subscription (once).

        Safe to call several times and after the stream ended or failed.
        """
        self._ch.close()

    def __del__(self) -> None:
        # Dropped while open without aclose() (a bare `async for` left by `break`): release
        # the subscription now rather than leak it for the life of the session.
        ch = getattr(self, "_ch", None)
        if ch is not None and ch._state == _OPEN:
            ch._stop()


class StreamWriter(Generic[T]):
    """The producer half of a :class:`Stream`; see the module docstring."""

    __slots__ = ("_ch", "end", "fail", "grow", "send", "send_marker")

    send: Callable[[T], None]
    send_marker: Callable[[T], None]
    fail: Callable[[BaseException], None]
    end: Callable[[], None]
    grow: Callable[[int], None]

    def __init__(
        self,
        *,
        name: str = "stream",
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
        start: Callable[[], Awaitable[None]] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        ch: _Channel[T] = _Channel(
            name=name, buffer=buffer, overflow=overflow, start=start, on_close=on_close
        )
        self._ch = ch
        # Bound once: delivering an item costs exactly the channel's own call.
        self.send = ch.put
        self.send_marker = ch.put_marker
        self.fail = ch.fail
        self.end = ch.end
        self.grow = ch.grow

    @property
    def stream(self) -> Stream[T]:
        """The consumer half (the same object while its user holds it)."""
        ch = self._ch
        consumer = ch._consumer() if ch._consumer is not None else None
        if consumer is None:
            consumer = Stream(ch)
            ch._consumer = weakref.ref(consumer)
        return consumer

    @property
    def closed(self) -> bool:
        """True once the stream stopped (by either side)."""
        return self._ch._state == _STOPPED

    @property
    def buffer_size(self) -> int:
        """The buffer's capacity, in items."""
        return self._ch._capacity
