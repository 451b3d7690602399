"""A remote session's side of the order journal, and of the hub's heartbeat.

``order_events()`` and ``fills_stream()`` read the hub's JetStream stream with a durable
consumer named after the remote session (``<name>-events``, ``<name>-fills``). A message is
acknowledged when the user takes it from the stream, so a process killed with items still
buffered gets them again when it comes back with the same name; within a process, a message
delivered again is recognised by its id (the execution id for a fill) and skipped.

``OrderTracker`` replays this remote's journal (from the start of the stream) to give
``RemoteTrade`` its status and fills, whichever hub placed the order. ``LeaderWatch`` follows
the hub's heartbeat: a silent hub turns the session ``RECONNECTING``; a new leader (another
hub id) or a hub heard again after silence puts a ``Gap`` in every quote stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

import ibflow
from ibflow._stream import _STOPPED, Overflow, Stream, _Channel

from ._journal import event_subject, fill_subject, stream_name
from ._protocol import decode, loads
from ._remote_state import LinkState

__all__ = ["EXEC_GRACE", "LeaderWatch", "OrderTracker", "RemoteJournal", "end_error"]

T = TypeVar("T")
_SEEN = 100_000  # message ids remembered per stream, to skip redeliveries
_DURABLE_IDLE = 24 * 3600.0  # the server forgets a durable consumer unused this long
_SILENT_BEATS = 4  # heartbeats missed before the hub counts as gone
EXEC_GRACE = 2.0  # seconds wait_filled waits for executions after a FILLED status
_JOURNAL_RETRY = 0.25  # seconds between tries to read the journal while JetStream is away
_JOURNAL_PATIENCE = 30.0  # seconds of such tries (a cluster electing a stream leader)


class _AckOnTake(_Channel[T]):
    """A stream channel that reports each item its consumer takes."""

    __slots__ = ("on_take",)

    on_take: Callable[[], None]

    async def receive(self) -> T:
        item = await super().receive()
        self.on_take()
        return item

    def receive_nowait(self) -> T:
        item = super().receive_nowait()
        self.on_take()
        return item


def durable_stream(
    nc: NATS,
    hub: str,
    remote: str,
    kind: str,
    buffer: int,
    item_id: Callable[[Any, Msg], str],
    open_streams: set[Callable[[], None]],
) -> Stream[Any]:
    """A ``Stream`` of this remote's journal ``kind`` ("event" or "fill"); see module doc.

    While it is open, its ``end`` is in ``open_streams`` (the session ends it on closing)."""
    subject = event_subject(hub, remote) if kind == "event" else fill_subject(hub, remote)
    durable = f"{remote}-{kind}s"
    pending: deque[tuple[str, Msg]] = deque()  # in the user's buffer, not taken yet
    untaken: set[str] = set()
    seen: OrderedDict[str, None] = OrderedDict()
    subscription: list[Subscription] = []
    acks: set[asyncio.Task[None]] = set()

    def ack(msg: Msg) -> None:
        task = asyncio.ensure_future(msg.ack())
        acks.add(task)
        task.add_done_callback(acks.discard)

    def taken() -> None:
        if pending:
            key, msg = pending.popleft()
            untaken.discard(key)
            ack(msg)

    async def deliver(msg: Msg) -> None:
        try:
            item = decode(loads(msg.data)["item"])
        except (ibflow.IBFlowError, KeyError, TypeError):
            ack(msg)  # not a journal record: nothing to deliver
            return
        key = item_id(item, msg)
        if key in seen:
            # Delivered before: acknowledge it now if it was taken (the first acknowledgement
            # was lost); while it waits in the buffer, taking it acknowledges it.
            if key not in untaken:
                ack(msg)
            return
        if channel._state == _STOPPED:
            return  # nobody reads any more: it comes again next time
        seen[key] = None
        if len(seen) > _SEEN:
            seen.popitem(last=False)
        pending.append((key, msg))
        untaken.add(key)
        channel.put(item)

    async def start() -> None:
        js = nc.jetstream()
        stream = stream_name(hub)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            max_ack_pending=buffer,
            filter_subject=subject,
            inactive_threshold=_DURABLE_IDLE,
            deliver_policy=DeliverPolicy.NEW,
        )
        try:
            try:
                info = await js.consumer_info(stream, durable)
            except nats.js.errors.NotFoundError:
                pass
            else:
                # The same name before (a restart): resume after what it took. The consumer
                # is made anew so what the dead process held unacknowledged comes again at once.
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = floor + 1
                await js.delete_consumer(stream, durable)
            sub = await js.subscribe(
                subject, stream=stream, cb=deliver, manual_ack=True, config=config
            )
        except nats.js.errors.NotFoundError:
            raise ibflow.ConnectionLost(
                f"hub {hub!r} has no order journal on this NATS server yet; start the hub first"
            ) from None
        except nats.errors.Error as exc:
            raise ibflow.ConnectionLost(
                f"could not read hub {hub!r}'s order journal ({type(exc).__name__}: {exc})"
            ) from None
        subscription.append(sub)
        open_streams.add(channel.end)

    def close() -> None:
        open_streams.discard(channel.end)
        for sub in subscription:
            task = asyncio.ensure_future(_quietly(sub.unsubscribe()))
            acks.add(task)
            task.add_done_callback(acks.discard)

    channel: _AckOnTake[Any] = _AckOnTake(
        name=f"{kind}s of {remote}",
        buffer=buffer,
        overflow=Overflow.ERROR,
        start=start,
        on_close=close,
    )
    channel.on_take = taken
    return Stream(channel)


class RemoteJournal:
    """``RemoteSession``'s order-event and fill streams, and the tracker its order handles
    follow; both read the hub's journal."""

    _nc: NATS | None
    _hub: str
    _name: str
    _order_tracker: OrderTracker | None
    _journal_streams: set[Callable[[], None]]  # ends of the open event and fill streams
    _link: LinkState

    def order_events(self, *, buffer: int = 1024) -> Stream[ibflow.OrderEvent]:
        """Every event of every order this remote name placed, from the hub's journal.

        As ``Session.order_events()``: from now on, overflow policy ``"error"``. The journal
        keeps a durable position per remote name: a process that comes back with the same
        ``name`` receives, once, the events it missed (an event is acknowledged when you take
        it from the stream).
        """
        return self._durable(
            "event",
            buffer,
            lambda item, msg: (msg.headers or {}).get(
                "Nats-Msg-Id", f"{msg.metadata.sequence.stream}"
            ),
        )

    def fills_stream(self, *, buffer: int = 1024) -> Stream[ibflow.Fill]:
        """Every fill of the orders this remote name placed, each once, with its commission.

        As ``Session.fills_stream()``, across restarts: a process that comes back with the
        same ``name`` receives the fills it missed, once each by execution id.
        """
        return self._durable("fill", buffer, lambda item, msg: item.exec_id)

    def _durable(self, kind: str, buffer: int, item_id: Callable[[Any, Msg], str]) -> Stream[Any]:
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ibflow.InvalidRequest(f"buffer must be an int >= 1, got {buffer!r}")
        if self._nc is None or self._link.current is ibflow.ConnectionState.CLOSED:
            raise ibflow.SessionClosedError(
                "the remote session is not open: use `async with RemoteSession(...)`"
            )
        return durable_stream(
            self._nc, self._hub, self._name, kind, buffer, item_id, self._journal_streams
        )

    @property
    def _tracker(self) -> OrderTracker:
        if self._order_tracker is None:
            if self._nc is None or self._link.current is ibflow.ConnectionState.CLOSED:
                raise ibflow.SessionClosedError(
                    "the remote session is not open: use `async with RemoteSession(...)`"
                )
            self._order_tracker = OrderTracker(self._nc, self._hub, self._name)
        return self._order_tracker


async def _quietly(coro: Any) -> None:
    with contextlib.suppress(nats.errors.Error):
        await coro


@dataclass(eq=False)
class _Order:
    status: ibflow.OrderStatus = ibflow.OrderStatus.PENDING_SUBMIT
    filled: float = 0.0
    fills: dict[str, ibflow.Fill] = field(default_factory=dict)
    message: str | None = None
    code: int | None = None


class OrderTracker:
    """Every order event and fill of one remote name, replayed from the journal, by order id."""

    def __init__(self, nc: NATS, hub: str, remote: str) -> None:
        self._nc = nc
        self._hub = hub
        self._remote = remote
        self._orders: dict[int, _Order] = {}
        self._changed = asyncio.Event()
        self._sub: Subscription | None = None
        self._starting: asyncio.Future[None] | None = None

    def begin(self) -> None:
        """Start reading the journal in the background, if not started (or failed) yet."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._subscribe())
            self._starting.add_done_callback(self._started)

    def _started(self, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._starting = None  # the next wait tries again

    async def start(self) -> None:
        """Wait until the journal is being read (``ConnectionLost`` if it cannot be)."""
        self.begin()
        assert self._starting is not None
        await asyncio.shield(self._starting)

    async def _subscribe(self) -> None:
        js = self._nc.jetstream()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _JOURNAL_PATIENCE
        while True:
            try:
                self._sub = await js.subscribe(
                    f"ibflow.{self._hub}.orders.{self._remote}.>",
                    stream=stream_name(self._hub),
                    cb=self._on_msg,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.ALL,
                )
                return
            except nats.js.errors.NotFoundError:
                raise ibflow.ConnectionLost(
                    f"hub {self._hub!r} has no order journal on this NATS server"
                ) from None
            except nats.errors.Error as exc:
                if loop.time() >= give_up:
                    raise ibflow.ConnectionLost(
                        f"could not read hub {self._hub!r}'s order journal for "
                        f"{_JOURNAL_PATIENCE:g} s ({type(exc).__name__}: {exc})"
                    ) from None
                await asyncio.sleep(_JOURNAL_RETRY)

    async def aclose(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, ibflow.IBFlowError):
                await self._starting
        if self._sub is not None:
            await _quietly(self._sub.unsubscribe())

    def get(self, order_id: int) -> _Order:
        return self._orders.setdefault(order_id, _Order())

    async def _on_msg(self, msg: Msg) -> None:
        with contextlib.suppress(ibflow.IBFlowError, KeyError, TypeError):
            item = decode(loads(msg.data)["item"])
            if isinstance(item, ibflow.Fill) and item.order_id is not None:
                order = self.get(item.order_id)
                order.fills[item.exec_id] = item
            elif isinstance(item, ibflow.OrderEvent):
                order = self.get(item.order_id)
                if item.kind is ibflow.OrderEventKind.MESSAGE:
                    order.code, order.message = item.code, item.message
                if item.fill is not None and item.fill.exec_id not in order.fills:
                    order.fills[item.fill.exec_id] = item.fill
                if not order.status.is_done or item.status.is_done:
                    order.status = item.status
                order.filled = max(order.filled, item.filled)
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Wait until ``ready()``, reading the journal first if not yet; ``RequestTimeout``
        after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self.start()
                while not ready():
                    await self._changed.wait()
        except TimeoutError:
            raise ibflow.RequestTimeout(f"waited {timeout:g} s for {what}") from None


class LeaderWatch:
    """Follow the hub's heartbeat; see the module doc. ``silent()`` runs when the hub went
    quiet while NATS is up (``connected()``), ``changed(gap)`` when a hub is heard again."""

    def __init__(
        self,
        *,
        silent: Callable[[], None],
        changed: Callable[[ibflow.Gap], None],
        connected: Callable[[], bool],
    ) -> None:
        self._silent = silent
        self._changed = changed
        self._connected = connected
        self._hub_id: str | None = None
        self._heard = 0.0
        self._every = 0.5
        self._silent_since: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._heard = asyncio.get_running_loop().time()
        self._task = asyncio.ensure_future(self._watch())

    def greeted(self, hub_id: str | None) -> None:
        """The hub ``hub_id`` answered a greeting: it is the one followed, heard now."""
        self._hub_id, self._silent_since = hub_id, None
        self._heard = asyncio.get_running_loop().time()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_beat(self, data: dict[str, Any]) -> None:
        hub_id = data.get("hub_id")
        if not isinstance(hub_id, str):
            return
        every = data.get("every")
        if isinstance(every, int | float) and every > 0:
            self._every = float(every)
        self._heard = asyncio.get_running_loop().time()
        if hub_id == self._hub_id and self._silent_since is None:
            return
        start = self._silent_since or datetime.now(UTC)
        self._hub_id, self._silent_since = hub_id, None
        self._changed(ibflow.Gap(start=start, end=datetime.now(UTC), reason="hub failover"))

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._every)
            if not self._connected():
                # A NATS outage is the link's own state (and Gap); count silence from after it.
                self._heard = loop.time()
                continue
            silent = loop.time() - self._heard > _SILENT_BEATS * self._every
            if silent and self._silent_since is None:
                self._silent_since = datetime.now(UTC)
                self._silent()


def end_error(order_id: int, order: _Order, quantity: float) -> ibflow.IBFlowError:
    """What ``wait_filled`` raises for an order that ended without filling completely."""
    if order.status is ibflow.OrderStatus.INACTIVE or (
        order.code is not None and order.status is not ibflow.OrderStatus.CANCELLED
    ):
        return ibflow.OrderRejected(
            order.code or -1,
            f"order {order_id} ended {order.status.value}: {order.message or 'rejected or held'}",
            order_id,
        )
    return ibflow.OrderCancelled(
        f"order {order_id} ended {order.status.value} after filling {order.filled:g} of "
        f"{quantity:g}",
        order_id=order_id,
        status=order.status,
        filled=order.filled,
    )
