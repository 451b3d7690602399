"""The async Session: the one object users hold to talk to TWS / IB Gateway.

Every peer library fails users at the same spots (``../shared/ib-limits.md``): a connect that
ends in a bare ``TimeoutError``, error 326 reported as "already in use?" for any early close
(or a hang with no timeout), no reconnect after the daily gateway restart, subscriptions that
silently die after 1101, and a ``readonly`` flag that still lets orders through. The Session is
ibflow's answer. It connects in stages with one typed error per stage, keeps one
``ib_async.IB`` (behind ``ibflow._ib``) alive across reconnects with backoff and a heartbeat,
reports its state and TWS's informational messages as async iterators, refuses order-mutating
calls client-side when read-only or on a live account without ``allow_live``, and counts what
it does.

Later parts of ibflow hang off three private hooks here: ``session._adapter`` (the ib_async
door), ``session._request(...)`` (one request, routed by request id, with timeout,
cancellation and ``ConnectionLost``), and ``session._subscriptions`` (re-issued on reconnect
and on 1101).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from ._account import AccountAPI
from ._cancels import CancelsAPI
from ._client_ids import new_client_id
from ._config import LIVE_PORTS, ResolvedConfig, resolve_config
from ._error_codes import Severity, error_for, lookup
from ._errors import (
    ClientIdInUse,
    ConfigError,
    ConnectionLost,
    IBFlowError,
    InvalidRequest,
    RequestError,
    RequestTimeout,
    SafetyError,
    SessionClosedError,
)
from ._history import HistoryAPI
from ._ib import IBAdapter, LinkInfo, map_ib_errors
from ._log import get_logger, mask_account
from ._orders import OrdersAPI
from ._streams import StreamsAPI
from ._timeouts import SESSION_DEFAULT, is_positive_number, resolve_timeout
from ._timeouts import check_timeout as _check_timeout

__all__ = [
    "ConnectionState",
    "Feed",
    "Notice",
    "ReconnectPolicy",
    "Session",
    "SessionStatistics",
    "StateChange",
    "SubscriptionHandler",
    "connect",
]

log = get_logger("session")

T = TypeVar("T")

_AUTO_ID_ATTEMPTS = 3  # fresh ids tried after a 326 before giving up
_MIN_HEARTBEAT = 1.0  # a gateway ignores a reqCurrentTime repeated within 1 s of its answer
_STATE_BUFFER = 256
_NOTICE_BUFFER = 1024


class ConnectionState(StrEnum):
    """Where a session is in its life.

    ``DISCONNECTED`` (not connected yet, or the first connect failed) → ``CONNECTING``
    (TCP, handshake, API start) → ``SYNCING`` (start-up sync) → ``READY``. A lost link goes to
    ``RECONNECTING`` (and through ``SYNCING`` back to ``READY``), or to ``CLOSED`` when
    reconnecting is off or gives up. IB error 1100 also shows as ``RECONNECTING`` until TWS
    reports 1101/1102. ``aclose()`` ends in ``CLOSED``, for good.
    """

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    SYNCING = "syncing"
    READY = "ready"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition of :class:`ConnectionState`, as yielded by ``state_changes()``."""

    previous: ConnectionState
    current: ConnectionState
    at: datetime
    reason: str
    error: IBFlowError | None = None
    """Why the session closed after a lost link (a ``ConnectionLost``), else ``None``."""


@dataclass(frozen=True, slots=True)
class Notice:
    """An informational or unsolicited message from TWS (2104, 1101, 10167…); never raised."""

    code: int
    message: str
    severity: Severity
    req_id: int
    summary: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter for reconnecting after a lost link.

    Attempt ``n`` (from 0) waits a random time in ``[0, min(maximum, initial * 2**n)]``, so a
    fleet of clients does not hammer a gateway that just came back.

    Args:
        initial: the ceiling of the first wait, in seconds.
        maximum: the largest ceiling, in seconds.
        max_attempts: give up after this many attempts (``None``: never give up).
    """

    initial: float = 0.5
    maximum: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("initial", "maximum"):
            value = getattr(self, name)
            if not is_positive_number(value):
                raise InvalidRequest(
                    f"ReconnectPolicy({name}=...) must be a positive number of seconds, "
                    f"got {value!r}"
                )
        if self.maximum < self.initial:
            raise InvalidRequest(
                f"ReconnectPolicy(maximum={self.maximum!r}) must not be below "
                f"initial={self.initial!r}"
            )
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise InvalidRequest(
                "ReconnectPolicy(max_attempts=...) must be a positive integer or None "
                f"(never give up), got {self.max_attempts!r}"
            )

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt ``attempt`` (0-based)."""
        if attempt < 0:
            raise InvalidRequest(f"attempt must be >= 0, got {attempt}")
        return min(self.maximum, self.initial * 2.0 ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A jittered wait before attempt ``attempt``: uniform in ``[0, ceiling(attempt)]``."""
        return (rng or random.Random()).uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStatistics:
    """A snapshot of what a session has done; see ``Session.statistics()``."""

    state: ConnectionState
    uptime: float
    """Seconds since the first successful connect (0 before it)."""
    connects: int
    """Successful initial connects (0 or 1)."""
    reconnects: int
    """Successful reconnects after a lost link."""
    reconnect_attempts: int
    time_in_state: Mapping[ConnectionState, float]
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    messages_in_per_second: float
    """Average since the first connect (over at least one second)."""
    messages_out_per_second: float
    last_heartbeat_rtt: float | None
    """Round trip of the last answered heartbeat, in seconds."""
    heartbeats: int
    heartbeat_failures: int
    active_subscriptions: int
    throttled_requests: int
    """Requests held back right now by the client-side 45 messages/s throttle."""
    throttle_events: int
    """How many times that throttle engaged."""
    notices: int
    in_flight_requests: int


class Feed(Generic[T]):
    """An async iterator over session events, with a bounded buffer that drops the oldest.

    Use it as ``async for item in feed`` or ``async with feed: ...``. Iteration ends quietly
    when the session closes or the feed is closed with :meth:`aclose`.
    """

    def __init__(self, maxlen: int, *, closed: bool = False) -> None:
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._waiter: asyncio.Future[None] | None = None
        self._done = closed
        self.dropped = 0
        """Items dropped because the buffer was full."""

    def _put(self, item: T) -> None:
        if self._done:
            return
        if len(self._items) >= self._maxlen:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._wake()

    def _end(self) -> None:
        self._done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._items:
                return self._items.popleft()
            if self._done:
                raise StopAsyncIteration
            # One shared waiter: several tasks may iterate the same feed.
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)

    async def aclose(self) -> None:
        """Stop receiving; buffered items are discarded and iteration ends."""
        self._items.clear()
        self._end()

    async def __aenter__(self) -> Feed[T]:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


class SubscriptionHandler(Protocol):
    """What a stream registers in ``session._subscriptions`` to survive reconnects.

    The session calls ``resubscribe`` after a reconnect (``fresh_link=True``) and after IB
    error 1101 (``fresh_link=False``: same socket, TWS lost the data); it returns the request id
    it now uses, or ``None`` when it ended itself. ``on_error`` gets request-level errors
    addressed to its id, ``on_link_down`` is called when the link drops (a gap starts), and
    ``on_close`` ends it for good (``ConnectionLost`` when the session gave up, ``None`` on a
    normal close).
    """

    kind: str

    async def resubscribe(self, fresh_link: bool) -> int | None: ...

    def on_error(self, error: RequestError) -> None: ...

    def on_link_down(self) -> None: ...

    def on_close(self, error: IBFlowError | None) -> None: ...


class _SubscriptionRegistry:
    """Live subscriptions keyed by request id (the nautilus shape)."""

    def __init__(self) -> None:
        self._by_id: dict[int, SubscriptionHandler] = {}

    def add(self, req_id: int, handler: SubscriptionHandler) -> None:
        self._by_id[req_id] = handler

    def remove(self, req_id: int) -> SubscriptionHandler | None:
        return self._by_id.pop(req_id, None)

    def get(self, req_id: int) -> SubscriptionHandler | None:
        return self._by_id.get(req_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for handler in self._by_id.values():
            counts[handler.kind] = counts.get(handler.kind, 0) + 1
        return counts

    def fail(self, req_id: int, error: RequestError) -> bool:
        handler = self._by_id.get(req_id)
        if handler is None:
            return False
        _guarded(handler.on_error, error)
        return True

    def link_down(self) -> None:
        for handler in list(self._by_id.values()):
            _guarded(handler.on_link_down)

    async def resubscribe_all(self, fresh_link: bool) -> None:
        entries = list(self._by_id.items())
        for req_id, _ in entries:
            self._by_id.pop(req_id, None)
        for old_id, handler in entries:
            try:
                new_id = await handler.resubscribe(fresh_link)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not re-issue %s subscription %d: %r", handler.kind, old_id, exc)
                _guarded(
                    handler.on_close,
                    ConnectionLost(f"the {handler.kind} subscription could not be resumed: {exc}"),
                )
                continue
            if new_id is not None:
                self._by_id[new_id] = handler

    def close_all(self, error: IBFlowError | None) -> None:
        handlers = list(self._by_id.values())
        self._by_id.clear()
        for handler in handlers:
            _guarded(handler.on_close, error)


def _guarded(func: Callable[..., object], *args: object) -> None:
    """Call a hook from a sibling module; its bug must not break the session's bookkeeping."""
    try:
        func(*args)
    except Exception:
        log.exception("subscription hook %r failed", func)


class _Pending:
    """One in-flight request: a future that fails when IB errors its id or the link drops."""

    __slots__ = ("failed", "name", "req_id")

    def __init__(self, name: str, req_id: int | None) -> None:
        self.name = name
        self.req_id = req_id
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(self, error: BaseException) -> None:
        if not self.failed.done():
            self.failed.set_exception(error)


class _RequestRouter:
    """Routes IB errors to the request that caused them, by request id."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Pending] = {}
        self._all: set[_Pending] = set()

    def track(self, name: str, req_id: int | None) -> _Pending:
        pending = _Pending(name, req_id)
        self._all.add(pending)
        if req_id is not None:
            self._by_id[req_id] = pending
        return pending

    def untrack(self, pending: _Pending) -> None:
        self._all.discard(pending)
        if pending.req_id is not None and self._by_id.get(pending.req_id) is pending:
            del self._by_id[pending.req_id]
        if pending.failed.done() and not pending.failed.cancelled():
            pending.failed.exception()  # mark retrieved
        else:
            pending.failed.cancel()

    def fail(self, req_id: int, error: BaseException) -> bool:
        pending = self._by_id.get(req_id)
        if pending is None:
            return False
        pending.fail(error)
        return True

    def fail_all(self, error: BaseException) -> None:
        for pending in list(self._all):
            pending.fail(error)

    def __len__(self) -> int:
        return len(self._all)


def _check_limit(value: object, name: str) -> float | None:
    """A safety rail: a positive finite number, or ``None`` for no limit."""
    if value is None:
        return None
    if not is_positive_number(value):
        raise InvalidRequest(
            f"{name} must be a positive number, or None for no limit; got {value!r}"
        )
    return float(value)


def _detect_paper(accounts: tuple[str, ...], port: int) -> bool:
    """Paper accounts start with "D" (DU…, DF…). Without accounts, fall back to the port."""
    if accounts:
        return all(acc.upper().startswith("D") for acc in accounts)
    return port not in LIVE_PORTS


class Session(AccountAPI, OrdersAPI, CancelsAPI, StreamsAPI, HistoryAPI):
    """An asyncio session with TWS or IB Gateway.

    ``Session(...)`` does no I/O. Connect with ``async with Session(...) as session`` or
    ``await session.connect()`` … ``await session.aclose()``. A closed session cannot be
    reopened. Settings not given come from the environment (see ``docs/session.md``).

    Args:
        host: TWS/Gateway host (default ``127.0.0.1``).
        port: API port (default 7497, TWS paper).
        client_id: API client id; unset → a fresh :func:`new_client_id` that is replaced if
            TWS reports it in use (326).
        account: the account to sync account values for; must be one of the login's.
        timeout: seconds for each connect stage and each start-up sync part, and the default
            for requests; ``None`` waits forever (error 326 still fails at once).
        readonly: refuse every order-mutating call client-side.
        allow_live: allow order-mutating calls on a live (non-paper) account.
        reconnect: how to reconnect after a lost link; ``None`` closes the session instead.
        heartbeat_interval: seconds between ``reqCurrentTime`` liveness checks (at least 1;
            ``None`` turns the heartbeat off).
        heartbeat_timeout: how long a heartbeat may take before the link counts as dead
            (default: ``timeout``, at most 10 s).
        all_open_orders: sync every open order of the account (``reqAllOpenOrders``), not only
            this client id's, so orders placed under an earlier client id are visible.
        max_order_quantity: refuse (``SafetyError``, nothing sent) any order, or change to one,
            for more than this quantity; ``None`` sets no limit.
        max_order_notional: refuse any order worth more than this (quantity × price ×
            multiplier, in the contract's currency; a market order is valued at a snapshot
            quote); ``None`` sets no limit.

    Raises:
        ConfigError: a setting or environment variable is invalid (the message names it).
        InvalidRequest: another argument is invalid.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        account: str | None = None,
        *,
        timeout: float | None = 10.0,
        readonly: bool = False,
        allow_live: bool = False,
        reconnect: ReconnectPolicy | None = ReconnectPolicy(),
        heartbeat_interval: float | None = 30.0,
        heartbeat_timeout: float | None = None,
        all_open_orders: bool = False,
        max_order_quantity: float | None = None,
        max_order_notional: float | None = None,
    ) -> None:
        self._config: ResolvedConfig = resolve_config(host, port, client_id, account, readonly)
        self._timeout = _check_timeout(timeout, "timeout")
        if not isinstance(allow_live, bool):
            raise InvalidRequest(f"allow_live must be True or False, got {allow_live!r}")
        if not isinstance(all_open_orders, bool):
            raise InvalidRequest(f"all_open_orders must be True or False, got {all_open_orders!r}")
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise InvalidRequest(
                "reconnect must be an ibflow.ReconnectPolicy(...) or None (no reconnect), "
                f"got {reconnect!r}"
            )
        interval = _check_timeout(heartbeat_interval, "heartbeat_interval")
        if interval is not None and interval < _MIN_HEARTBEAT:
            raise InvalidRequest(
                f"heartbeat_interval must be at least {_MIN_HEARTBEAT} s (a gateway ignores a "
                f"reqCurrentTime repeated within 1 s), got {heartbeat_interval!r}"
            )
        hb_timeout = _check_timeout(heartbeat_timeout, "heartbeat_timeout")
        if hb_timeout is None:
            hb_timeout = min(self._timeout, 10.0) if self._timeout is not None else 10.0

        self._allow_live = allow_live
        self._all_open_orders = all_open_orders
        self._max_order_quantity = _check_limit(max_order_quantity, "max_order_quantity")
        self._max_order_notional = _check_limit(max_order_notional, "max_order_notional")
        self._reconnect = reconnect
        self._heartbeat_interval = interval
        self._heartbeat_timeout = hb_timeout
        self._auto_id = self._config.client_id is None
        self._client_id = (
            self._config.client_id if self._config.client_id is not None else new_client_id()
        )

        self._adapter = IBAdapter(on_error=self._on_ib_error, on_lost=self._on_link_lost)
        self._router = _RequestRouter()
        self._subscriptions = _SubscriptionRegistry()
        self._state = ConnectionState.DISCONNECTED
        self._state_since = time.monotonic()
        self._time_in_state: dict[ConnectionState, float] = dict.fromkeys(ConnectionState, 0.0)
        self._state_feeds: weakref.WeakSet[Feed[StateChange]] = weakref.WeakSet()
        self._notice_feeds: weakref.WeakSet[Feed[Notice]] = weakref.WeakSet()
        self._link: LinkInfo | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connect_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ib_link_down = False
        self._closed_error: IBFlowError | None = None
        self._rng = random.Random()
        self._stage_listener: Callable[[str, str], None] | None = None
        # statistics
        self._first_ready: float | None = None
        self._connects = 0
        self._reconnects = 0
        self._reconnect_attempts = 0
        self._last_rtt: float | None = None
        self._heartbeats = 0
        self._heartbeat_failures = 0
        self._notice_count = 0

    # -- public properties -----------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._state

    @property
    def client_id(self) -> int:
        """The API client id in use (or about to be used)."""
        return self._client_id

    @property
    def server_version(self) -> int:
        """The API version TWS/Gateway agreed to.

        Raises:
            SessionClosedError: the session never connected.
        """
        return self._require_link().server_version

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts this login manages.

        Raises:
            SessionClosedError: the session never connected.
        """
        return self._require_link().accounts

    @property
    def is_paper(self) -> bool:
        """True for a paper-trading login (accounts starting with "D"; else by the port).

        Raises:
            SessionClosedError: the session never connected.
        """
        return _detect_paper(self._require_link().accounts, self._config.port)

    def __repr__(self) -> str:
        cfg = self._config
        return (
            f"<ibflow.Session {cfg.host}:{cfg.port} client_id={self._client_id} "
            f"state={self._state.name}>"
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> Session:
        """Connect, run the start-up sync, and return the session once it is READY.

        Calling it on a READY session returns at once. A failed connect leaves the session
        DISCONNECTED, and ``connect()`` may be called again.

        Raises:
            ConnectRefused: nothing listens on host:port.
            ConnectTimeout: the TCP connect did not complete within ``timeout``.
            HandshakeTimeout: TCP accepted, the API handshake unanswered within ``timeout``.
            ConnectionClosedEarly: the peer closed before the API was ready (no 326).
            ClientIdInUse: error 326 for an explicit client id (or for every fresh id tried).
            SyncTimeout: API start or a start-up sync part did not answer; ``part`` names it.
            ConfigError: ``account`` is not one of the login's accounts.
            SessionClosedError: the session was closed.
        """
        self._bind_loop()
        async with self._connect_lock:
            if self._state is ConnectionState.CLOSED:
                raise SessionClosedError(
                    "this session is closed and cannot be reopened; create a new ibflow.Session"
                )
            if self._connects:
                return self
            self._set_state(ConnectionState.CONNECTING, "connect()")
            try:
                await self._establish()
            except BaseException as exc:
                if not self._is_closed():
                    self._set_state(
                        ConnectionState.DISCONNECTED,
                        f"connect failed: {type(exc).__name__}: {exc}",
                    )
                raise
            if self._is_closed():
                await self._adapter.close()
                raise SessionClosedError("the session was closed while it was connecting")
            self._connects = 1
            self._first_ready = time.monotonic()
            self._set_state(ConnectionState.READY, "connected")
            self._supervisor = asyncio.create_task(
                self._supervise(), name=f"ibflow-session-{self._client_id}"
            )
        return self

    async def aclose(self) -> None:
        """Disconnect cleanly and close the session for good. Safe to call twice.

        In-flight requests fail with :class:`SessionClosedError`; streams, ``state_changes()``
        and ``notices()`` end.
        """
        already = self._state is ConnectionState.CLOSED
        try:
            await self._stop_tasks()
        finally:
            try:
                await self._adapter.close()
            finally:
                error = SessionClosedError("the session was closed with aclose()")
                self._router.fail_all(error)
                self._subscriptions.close_all(None)
                if not already:
                    self._set_state(ConnectionState.CLOSED, "aclose()")
                self._end_feeds()

    async def __aenter__(self) -> Session:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __await__(self) -> Generator[Any, None, Session]:
        return self.connect().__await__()

    # -- observing -----------------------------------------------------------------------------

    def state_changes(self) -> Feed[StateChange]:
        """Every state change from now on, as an async iterator.

        It ends quietly after the change to CLOSED.
        """
        feed: Feed[StateChange] = Feed(_STATE_BUFFER, closed=self._state is ConnectionState.CLOSED)
        self._state_feeds.add(feed)
        return feed

    def notices(self) -> Feed[Notice]:
        """TWS's informational and unsolicited messages from now on (2104, 1101, 10167…).

        Notices are typed, logged and never raised. Call it before ``connect()`` to see the
        data-farm notices TWS sends right after the handshake.
        """
        feed: Feed[Notice] = Feed(_NOTICE_BUFFER, closed=self._state is ConnectionState.CLOSED)
        self._notice_feeds.add(feed)
        return feed

    def statistics(self) -> SessionStatistics:
        """A snapshot of counters, timings and rates; cheap, no I/O."""
        now = time.monotonic()
        times = dict(self._time_in_state)
        times[self._state] += now - self._state_since
        uptime = now - self._first_ready if self._first_ready is not None else 0.0
        traffic = self._adapter.traffic()
        return SessionStatistics(
            state=self._state,
            uptime=uptime,
            connects=self._connects,
            reconnects=self._reconnects,
            reconnect_attempts=self._reconnect_attempts,
            time_in_state=times,
            messages_in=traffic.messages_in,
            messages_out=traffic.messages_out,
            bytes_in=traffic.bytes_in,
            bytes_out=traffic.bytes_out,
            # Over at least one second, so a fresh session does not report absurd rates.
            messages_in_per_second=traffic.messages_in / max(uptime, 1.0),
            messages_out_per_second=traffic.messages_out / max(uptime, 1.0),
            last_heartbeat_rtt=self._last_rtt,
            heartbeats=self._heartbeats,
            heartbeat_failures=self._heartbeat_failures,
            active_subscriptions=len(self._subscriptions),
            throttled_requests=traffic.throttled_now,
            throttle_events=traffic.throttle_events,
            notices=self._notice_count,
            in_flight_requests=len(self._router),
        )

    # -- hooks for sibling modules (orders, market data, history) --------------------------------

    def _check_can_trade(self, action: str = "send order-mutating requests") -> None:
        """Refuse an order-mutating call client-side; the order layer calls this first.

        Raises:
            SafetyError: the session is read-only, or the account is live without allow_live.
            SessionClosedError: the session never connected (paper/live is not known yet).
        """
        if self._config.readonly:
            source = self._config.sources.get("readonly", "argument")
            origin = "readonly=True" if source == "argument" else f"{source} is set"
            raise SafetyError(
                f"refusing to {action}: this session is read-only ({origin}). Nothing was "
                "sent. Create the session with readonly=False to trade."
            )
        link = self._require_link()
        if not _detect_paper(link.accounts, self._config.port) and not self._allow_live:
            shown = ", ".join(mask_account(a) for a in link.accounts)
            raise SafetyError(
                f"refusing to {action}: {shown} is a live account and this session was not "
                "created with allow_live=True. Nothing was sent. Pass "
                "ibflow.Session(..., allow_live=True) when you mean to trade real money."
            )

    def _require_ready(self) -> None:
        """Raise the right error unless requests can be sent now."""
        if self._state is ConnectionState.READY:
            return
        if self._state is ConnectionState.CLOSED:
            if self._closed_error is not None:
                raise ConnectionLost(
                    f"the session closed after losing its connection: {self._closed_error}"
                )
            raise SessionClosedError("the session is closed; create a new ibflow.Session")
        if not self._connects:
            raise SessionClosedError(
                "the session is not connected yet: use 'async with ibflow.Session(...)' or "
                "'await session.connect()' first"
            )
        raise ConnectionLost(
            f"the connection to TWS/IB Gateway is down (state {self._state.name}); the "
            "session is reconnecting, retry once it is READY"
        )

    async def _wait_ready(self, timeout: float | None) -> None:
        """Wait until the session is READY (e.g. after a reconnect).

        Raises:
            RequestTimeout: not READY within ``timeout``.
            SessionClosedError / ConnectionLost: the session closed meanwhile.
        """
        feed = self.state_changes()
        try:
            async with asyncio.timeout(timeout):
                while self._state is not ConnectionState.READY:
                    if self._state is ConnectionState.CLOSED or (
                        not self._connects and self._state is ConnectionState.DISCONNECTED
                    ):
                        self._require_ready()
                    with contextlib.suppress(StopAsyncIteration):
                        await anext(feed)
        except TimeoutError:
            raise RequestTimeout(
                f"the session did not become READY within {timeout} s (state {self._state.name})"
            ) from None
        finally:
            await feed.aclose()

    async def _request(
        self,
        name: str,
        start: Callable[[], tuple[int | None, Awaitable[T]]],
        *,
        timeout: float | None = SESSION_DEFAULT,
        cancel: Callable[[int], None] | None = None,
    ) -> T:
        """Send one request through the adapter and wait for its answer.

        ``start`` sends the request and returns ``(req_id, awaitable)``. An IB error addressed
        to ``req_id`` fails the call with the mapped :class:`RequestError`; a lost link fails it
        with :class:`ConnectionLost`. On timeout or cancellation ``cancel(req_id)`` is sent
        once, if given.

        Raises:
            RequestError: IB answered with an error (mapped subclass).
            RequestTimeout: no answer within the timeout.
            ConnectionLost: the link dropped (or is down) before the answer.
            SessionClosedError: the session is not open.
        """
        self._require_ready()
        limit = resolve_timeout(timeout, self._timeout)
        with map_ib_errors(name):
            req_id, awaitable = start()
        answer: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        pending = self._router.track(name, req_id)
        waiting: set[asyncio.Future[Any]] = {answer, pending.failed}
        send_cancel = False
        try:
            try:
                async with asyncio.timeout(limit):
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            except TimeoutError:
                send_cancel = True
                raise RequestTimeout(f"{name}: no answer within {limit} s") from None
            except asyncio.CancelledError:
                send_cancel = True
                raise
            if pending.failed.done():
                pending.failed.result()  # raises the routed error
            with map_ib_errors(name):
                return answer.result()
        finally:
            self._router.untrack(pending)
            if not answer.done():
                answer.cancel()
            elif not answer.cancelled():
                answer.exception()  # retrieved: an unanswered error must not warn at GC
            connected = self._adapter.is_connected
            if send_cancel and cancel is not None and req_id is not None and connected:
                with contextlib.suppress(Exception):
                    cancel(req_id)

    # -- internals: connect ----------------------------------------------------------------------

    def _is_closed(self) -> bool:
        # A method, not an inline comparison: the state changes across awaits.
        return self._state is ConnectionState.CLOSED

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise InvalidRequest(
                "this Session belongs to another event loop; create one Session per loop "
                "(or per thread) instead of sharing it"
            )

    def _require_link(self) -> LinkInfo:
        if self._link is None:
            raise SessionClosedError(
                "the session has not connected yet: use 'async with ibflow.Session(...)' or "
                "'await session.connect()' first"
            )
        return self._link

    async def _establish(self) -> None:
        """One full connect: staged open (with fresh ids after 326 for auto ids) and sync."""
        cfg = self._config
        fresh_ids = 0
        while True:
            try:
                info = await self._adapter.open(
                    cfg.host,
                    cfg.port,
                    self._client_id,
                    timeout=self._timeout,
                    on_stage=self._stage_listener,
                )
                break
            except ClientIdInUse as exc:
                if self._auto_id and fresh_ids < _AUTO_ID_ATTEMPTS:
                    fresh_ids += 1
                    old, self._client_id = self._client_id, new_client_id()
                    log.warning(
                        "client id %d is in use at %s:%d (326); retrying with fresh id %d",
                        old,
                        cfg.host,
                        cfg.port,
                        self._client_id,
                    )
                    continue
                raise self._client_id_error(exc, fresh_ids) from None
        if cfg.account is not None and cfg.account not in info.accounts:
            await self._adapter.close()
            source = cfg.sources.get("account", "argument")
            raise ConfigError(
                f"account {mask_account(cfg.account)} (from {source}) is not managed by this "
                f"login; it manages {', '.join(mask_account(a) for a in info.accounts)}",
                variable="account" if source == "argument" else source,
            )
        self._link = info
        self._set_state(ConnectionState.SYNCING, "API ready; start-up sync")
        await self._adapter.sync(
            account=cfg.account,
            readonly=cfg.readonly,
            all_open_orders=self._all_open_orders,
            timeout=self._timeout,
            on_part=self._stage_listener,
        )

    def _client_id_error(self, exc: ClientIdInUse, fresh_ids: int) -> ClientIdInUse:
        cfg = self._config
        where = f"{cfg.host}:{cfg.port}"
        if self._auto_id:
            message = (
                f"IB error 326 (client id already in use) for {fresh_ids + 1} fresh client ids "
                f"in a row at {where}; another program is connecting with ids like ours. "
                "Pass an explicit client_id."
            )
        else:
            source = cfg.sources.get("client_id", "argument")
            origin = "client_id=" if source == "argument" else f"{source}="
            message = (
                f"client id {exc.client_id} ({origin}{exc.client_id}) is already in use at "
                f"{where} (IB error 326): another program, or an earlier run TWS has not "
                "dropped yet, is connected with it. Pick another id, or leave client_id unset "
                "to get a fresh one from ibflow.new_client_id()."
            )
        return ClientIdInUse(message, client_id=exc.client_id, host=cfg.host, port=cfg.port)

    # -- internals: running ----------------------------------------------------------------------

    def _set_state(
        self, new: ConnectionState, reason: str, error: IBFlowError | None = None
    ) -> None:
        old = self._state
        if new is old:
            return
        now = time.monotonic()
        self._time_in_state[old] += now - self._state_since
        self._state_since = now
        self._state = new
        log.info("session %d: %s -> %s (%s)", self._client_id, old.name, new.name, reason)
        change = StateChange(
            previous=old, current=new, at=datetime.now(UTC), reason=reason, error=error
        )
        for feed in list(self._state_feeds):
            feed._put(change)

    def _end_feeds(self) -> None:
        for state_feed in list(self._state_feeds):
            state_feed._end()
        for notice_feed in list(self._notice_feeds):
            notice_feed._end()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        async def runner() -> None:
            await coro

        task = asyncio.create_task(runner(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in (self._supervisor, *self._tasks) if t is not None and t is not current]
        self._supervisor = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_ib_error(self, req_id: int, code: int, message: str) -> None:
        """Every errMsg frame: route it to its request, act on link codes, publish notices."""
        row = lookup(code)
        if req_id >= 0 and row.severity is Severity.ERROR:
            error = error_for(code, message, req_id)
            if self._router.fail(req_id, error) or self._subscriptions.fail(req_id, error):
                log.debug("request %d failed with IB error %d: %s", req_id, code, message)
                return
        if code == 1100:
            if self._state is ConnectionState.READY:
                self._ib_link_down = True
                self._subscriptions.link_down()
                self._set_state(
                    ConnectionState.RECONNECTING,
                    "IB error 1100: TWS lost its connection to IB; waiting for 1101/1102",
                )
        elif code in (1101, 1102):
            was_down = self._ib_link_down
            self._ib_link_down = False
            if code == 1101 and self._connects:
                self._spawn(self._after_1101(), "ibflow-resubscribe-1101")
            elif was_down and self._state is ConnectionState.RECONNECTING:
                self._set_state(ConnectionState.READY, f"IB error {code}: connectivity restored")
        elif code == 1300:
            self._adapter.abort("IB error 1300: the TWS socket port was reset")
        self._publish_notice(req_id, code, message, row.severity, row.summary)

    def _publish_notice(
        self, req_id: int, code: int, message: str, severity: Severity, summary: str
    ) -> None:
        self._notice_count += 1
        if severity is Severity.INFO:
            log.info("TWS %d: %s", code, message)
        elif severity is Severity.WARNING:
            log.warning("TWS %d: %s", code, message)
        else:
            log.error("TWS %d (request %d): %s", code, req_id, message)
        notice = Notice(
            code=code,
            message=message,
            severity=severity,
            req_id=req_id,
            summary=summary,
            at=datetime.now(UTC),
        )
        for feed in list(self._notice_feeds):
            feed._put(notice)

    async def _after_1101(self) -> None:
        await self._subscriptions.resubscribe_all(fresh_link=False)
        if self._state is ConnectionState.RECONNECTING and self._adapter.is_connected:
            self._set_state(
                ConnectionState.READY, "IB error 1101: connectivity restored, data re-requested"
            )

    def _on_link_lost(self, reason: str) -> None:
        """The socket closed while READY (called from the adapter's socket callback)."""
        if self._state is ConnectionState.CLOSED:
            return
        cfg = self._config
        error = ConnectionLost(f"lost the connection to {cfg.host}:{cfg.port}: {reason}")
        self._ib_link_down = False
        self._router.fail_all(error)
        self._subscriptions.link_down()
        if self._reconnect is None:
            self._close_after_loss(error)
        else:
            self._set_state(ConnectionState.RECONNECTING, reason)
        self._lost.set()

    def _close_after_loss(self, error: ConnectionLost) -> None:
        self._closed_error = error
        self._router.fail_all(error)
        self._subscriptions.close_all(error)
        self._set_state(ConnectionState.CLOSED, str(error), error)
        self._end_feeds()

    async def _supervise(self) -> None:
        """Heartbeat while READY; reconnect after a loss; close when told to give up."""
        while self._state is not ConnectionState.CLOSED:
            await self._watch()
            if self._is_closed() or self._reconnect is None:
                return
            if not await self._reconnect_loop(self._reconnect):
                return

    async def _watch(self) -> None:
        interval = self._heartbeat_interval
        while not self._lost.is_set():
            if interval is None:
                await self._lost.wait()
                return
            try:
                async with asyncio.timeout(interval):
                    await self._lost.wait()
                return
            except TimeoutError:
                pass
            await self._heartbeat()

    async def _heartbeat(self) -> None:
        if not self._adapter.is_connected:
            return
        started = time.monotonic()
        try:
            await self._adapter.current_time(self._heartbeat_timeout)
        except RequestTimeout:
            self._heartbeat_failures += 1
            reason = (
                f"heartbeat: no answer to reqCurrentTime within {self._heartbeat_timeout} s "
                "(half-open socket or hung TWS)"
            )
            log.warning("session %d: %s; dropping the link", self._client_id, reason)
            self._adapter.abort(reason)
            return
        except ConnectionLost:
            return
        self._heartbeats += 1
        self._last_rtt = time.monotonic() - started

    async def _reconnect_loop(self, policy: ReconnectPolicy) -> bool:
        cfg = self._config
        attempt = 0
        last_error: BaseException | None = None
        while policy.max_attempts is None or attempt < policy.max_attempts:
            delay = policy.delay(attempt, self._rng)
            attempt += 1
            self._reconnect_attempts += 1
            log.info(
                "session %d: reconnect attempt %d to %s:%d in %.2f s",
                self._client_id,
                attempt,
                cfg.host,
                cfg.port,
                delay,
            )
            await asyncio.sleep(delay)
            if self._state is ConnectionState.CLOSED:
                return False
            self._set_state(ConnectionState.RECONNECTING, f"attempt {attempt}")
            self._lost.clear()
            try:
                await self._establish()
            except IBFlowError as exc:
                last_error = exc
                log.info(
                    "session %d: reconnect attempt %d failed: %s", self._client_id, attempt, exc
                )
                self._set_state(ConnectionState.RECONNECTING, f"attempt {attempt} failed: {exc}")
                continue
            self._reconnects += 1
            await self._subscriptions.resubscribe_all(fresh_link=True)
            if not self._adapter.is_connected or self._lost.is_set():
                continue
            self._set_state(ConnectionState.READY, f"reconnected after {attempt} attempt(s)")
            return True
        where = f"{cfg.host}:{cfg.port}"
        self._close_after_loss(
            ConnectionLost(
                f"gave up reconnecting to {where} after {attempt} attempts; last error: "
                f"{last_error}"
            )
        )
        return False


def connect(
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    account: str | None = None,
    *,
    timeout: float | None = 10.0,
    readonly: bool = False,
    allow_live: bool = False,
    reconnect: ReconnectPolicy | None = ReconnectPolicy(),
    heartbeat_interval: float | None = 30.0,
    heartbeat_timeout: float | None = None,
    all_open_orders: bool = False,
    max_order_quantity: float | None = None,
    max_order_notional: float | None = None,
) -> Session:
    """A :class:`Session` to use with ``await`` or ``async with``.

    ``session = await ibflow.connect(...)`` connects and returns the READY session (close it
    with ``await session.aclose()``); ``async with ibflow.connect(...) as session:`` closes it
    on exit. Arguments are those of :class:`Session`.
    """
    return Session(
        host,
        port,
        client_id,
        account,
        timeout=timeout,
        readonly=readonly,
        allow_live=allow_live,
        reconnect=reconnect,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
        all_open_orders=all_open_orders,
        max_order_quantity=max_order_quantity,
        max_order_notional=max_order_notional,
    )
