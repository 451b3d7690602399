"""The session core: one link to TWS and everything the features share about it.

It connects in stages with one typed error per stage, owns the link's state (one
``ib_async.IB`` behind ``ibflow._ib``), routes IB's errors to the request or subscription they
belong to, and guards order-mutating calls (read-only, live account); its ``Supervisor`` keeps
the link up (heartbeat, reconnects, 1100/1101). The features (account, orders, market data,
history) receive it in their constructor; ``Session`` composes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ._client_ids import new_client_id
from ._config import LIVE_PORTS, ResolvedConfig
from ._error_codes import Severity, error_for, lookup
from ._errors import (
    ClientIdInUse,
    ConfigError,
    ConnectionLost,
    IBFlowError,
    InvalidRequest,
    RequestTimeout,
    SafetyError,
    SessionClosedError,
)
from ._ib import IBAdapter, LinkInfo
from ._log import get_logger, mask_account
from ._pacer import Pacer
from ._records.session import (
    DEFAULT_RECONNECT,
    ConnectionState,
    Notice,
    ReconnectPolicy,
    SessionStatistics,
    StateChange,
)
from ._registry import RequestRouter, SubscriptionRegistry
from ._settings import check_settings
from ._stream import Stream, StreamWriter
from ._supervisor import Supervisor
from ._timeouts import SESSION_DEFAULT, resolve_timeout

__all__ = ["SessionCore"]

log = get_logger("session")

T = TypeVar("T")

_AUTO_ID_ATTEMPTS = 3  # fresh ids tried after a 326 before giving up
_STATE_BUFFER = 256
_NOTICE_BUFFER = 1024


_OTHER_LOOP = (
    "this Session belongs to another event loop (another thread's); create one Session per "
    "loop instead of sharing it, or hand the call to its loop with "
    "asyncio.run_coroutine_threadsafe(coro, loop)"
)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _detect_paper(accounts: tuple[str, ...], port: int) -> bool:
    """Paper accounts start with "D" (DU…, DF…). Without accounts, fall back to the port."""
    if accounts:
        return all(acc.upper().startswith("D") for acc in accounts)
    return port not in LIVE_PORTS


class SessionCore:
    """One session's link to TWS and the services its features share.

    Arguments are those of :class:`ibflow.Session`, checked by ``check_settings``.
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
        reconnect: ReconnectPolicy | None = DEFAULT_RECONNECT,
        heartbeat_interval: float | None = 30.0,
        heartbeat_timeout: float | None = None,
        all_open_orders: bool = False,
        max_order_quantity: float | None = None,
        max_order_notional: float | None = None,
        max_finished_trades: int = 10_000,
        wait_for_gateway: float | None = None,
        journal: str | os.PathLike[str] | None = None,
    ) -> None:
        settings = check_settings(
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
            max_finished_trades=max_finished_trades,
            wait_for_gateway=wait_for_gateway,
            journal=journal,
        )
        self.config: ResolvedConfig = settings.config
        self.journal_path = settings.journal_path
        self.timeout = settings.timeout
        self._allow_live = settings.allow_live
        self.all_open_orders = settings.all_open_orders
        self.max_order_quantity = settings.max_order_quantity
        self.max_order_notional = settings.max_order_notional
        self.max_finished_trades = settings.max_finished_trades
        self._auto_id = self.config.client_id is None
        self._client_id = (
            self.config.client_id if self.config.client_id is not None else new_client_id()
        )

        self._supervisor = Supervisor(
            self,
            reconnect=settings.reconnect,
            wait_for_gateway=settings.wait_for_gateway,
            heartbeat_interval=settings.heartbeat_interval,
            heartbeat_timeout=settings.heartbeat_timeout,
        )
        self.adapter = IBAdapter(on_error=self._on_ib_error, on_lost=self._supervisor.on_link_lost)
        self._router = RequestRouter()
        self.subscriptions = SubscriptionRegistry()
        self.pacer = Pacer()
        self._state = ConnectionState.DISCONNECTED
        self._state_since = time.monotonic()
        self._time_in_state: dict[ConnectionState, float] = dict.fromkeys(ConnectionState, 0.0)
        self._state_feeds: list[StreamWriter[StateChange]] = []
        self._notice_feeds: list[StreamWriter[Notice]] = []
        self._link: LinkInfo | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connect_lock = asyncio.Lock()
        self.closed_error: IBFlowError | None = None
        self.stage_listener: Callable[[str, str], None] | None = None
        # statistics
        self._first_ready: float | None = None
        self._connects = 0
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
    def reconnects(self) -> int:
        """Successful reconnects after a lost link."""
        return self._supervisor.reconnects

    @property
    def server_version(self) -> int:
        """The API version TWS/Gateway agreed to.

        Raises:
            SessionClosedError: the session never connected.
        """
        return self.require_link().server_version

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts this login manages.

        Raises:
            SessionClosedError: the session never connected.
        """
        return self.require_link().accounts

    @property
    def is_paper(self) -> bool:
        """True for a paper-trading login (accounts starting with "D"; else by the port).

        Raises:
            SessionClosedError: the session never connected.
        """
        return _detect_paper(self.require_link().accounts, self.config.port)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"<ibflow.Session {cfg.host}:{cfg.port} client_id={self._client_id} "
            f"state={self._state.name}>"
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
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
                return
            self.set_state(ConnectionState.CONNECTING, "connect()")
            try:
                await self._supervisor.first_connect()
            except BaseException as exc:
                if not self._is_closed():
                    self.set_state(
                        ConnectionState.DISCONNECTED,
                        f"connect failed: {type(exc).__name__}: {exc}",
                    )
                raise
            if self._is_closed():
                await self.adapter.close()
                raise SessionClosedError("the session was closed while it was connecting")
            self._connects = 1
            self._first_ready = time.monotonic()
            self.set_state(ConnectionState.READY, "connected")
            self._supervisor.start()

    async def aclose(self) -> None:
        """Disconnect cleanly and close the session for good. Safe to call twice.

        In-flight requests fail with :class:`SessionClosedError`; streams, ``state_changes()``
        and ``notices()`` end.
        """
        already = self._state is ConnectionState.CLOSED
        try:
            await self._supervisor.stop()
        finally:
            try:
                await self.adapter.close()
            finally:
                error = SessionClosedError("the session was closed with aclose()")
                self._router.fail_all(error)
                self.subscriptions.close_all(None)
                if not already:
                    self.set_state(ConnectionState.CLOSED, "aclose()")
                self._end_feeds()

    # -- observing -----------------------------------------------------------------------------

    def state_changes(self) -> Stream[StateChange]:
        """Every state change from now on, as an async iterator.

        It ends quietly after the change to CLOSED.
        """
        return self._open_feed(self._state_feeds, "state changes", _STATE_BUFFER)

    def notices(self) -> Stream[Notice]:
        """TWS's informational and unsolicited messages from now on (2104, 1101, 10167…).

        Notices are typed, logged and never raised. Call it before ``connect()`` to see the
        data-farm notices TWS sends right after the handshake.
        """
        return self._open_feed(self._notice_feeds, "notices", _NOTICE_BUFFER)

    def _open_feed(self, feeds: list[StreamWriter[T]], name: str, buffer: int) -> Stream[T]:
        """A drop-oldest stream of session events; it ends when the session closes."""
        writer: StreamWriter[T] = StreamWriter(name=name, buffer=buffer, overflow="drop_oldest")
        if self._state is ConnectionState.CLOSED:
            writer.end()
        else:
            feeds[:] = [w for w in feeds if not w.closed]
            feeds.append(writer)
        return writer.stream

    def statistics(self) -> SessionStatistics:
        """A snapshot of counters, timings and rates; cheap, no I/O."""
        now = time.monotonic()
        times = dict(self._time_in_state)
        times[self._state] += now - self._state_since
        uptime = now - self._first_ready if self._first_ready is not None else 0.0
        traffic = self.adapter.traffic()
        supervisor = self._supervisor
        return SessionStatistics(
            state=self._state,
            uptime=uptime,
            connects=self._connects,
            reconnects=supervisor.reconnects,
            reconnect_attempts=supervisor.reconnect_attempts,
            time_in_state=times,
            messages_in=traffic.messages_in,
            messages_out=traffic.messages_out,
            bytes_in=traffic.bytes_in,
            bytes_out=traffic.bytes_out,
            # Over at least one second, so a fresh session does not report absurd rates.
            messages_in_per_second=traffic.messages_in / max(uptime, 1.0),
            messages_out_per_second=traffic.messages_out / max(uptime, 1.0),
            last_heartbeat_rtt=supervisor.last_rtt,
            heartbeats=supervisor.heartbeats,
            heartbeat_failures=supervisor.heartbeat_failures,
            active_subscriptions=len(self.subscriptions),
            throttled_requests=traffic.throttled_now,
            throttle_events=traffic.throttle_events,
            notices=self._notice_count,
            in_flight_requests=len(self._router),
            rejected_executions=self.adapter.orders.rejected_executions,
            rejected_values=self.adapter.market.guard.rejected,
        )

    # -- what the features use ----------------------------------------------------------------

    def limit(self, timeout: object) -> float | None:
        """A call's ``timeout=`` argument as seconds (the session's default when not given).

        Raises:
            InvalidRequest: not a positive number, ``None`` or the default marker.
        """
        return resolve_timeout(timeout, self.timeout)

    def check_can_trade(self, action: str = "send order-mutating requests") -> None:
        """Refuse an order-mutating call client-side; the order layer calls this first.

        Raises:
            SafetyError: the session is read-only, or the account is live without allow_live.
            SessionClosedError: the session never connected (paper/live is not known yet).
        """
        if self.config.readonly:
            source = self.config.sources.get("readonly", "argument")
            origin = "readonly=True" if source == "argument" else f"{source} is set"
            raise SafetyError(
                f"refusing to {action}: this session is read-only ({origin}). Nothing was "
                "sent. Create the session with readonly=False to trade."
            )
        link = self.require_link()
        if not _detect_paper(link.accounts, self.config.port) and not self._allow_live:
            shown = ", ".join(mask_account(a) for a in link.accounts)
            raise SafetyError(
                f"refusing to {action}: {shown} is a live account and this session was not "
                "created with allow_live=True. Nothing was sent. Pass "
                "ibflow.Session(..., allow_live=True) when you mean to trade real money."
            )

    def require_ready(self) -> None:
        """Raise the right error unless requests can be sent now, from this loop."""
        if self._loop is not None and _running_loop() is not self._loop:
            raise InvalidRequest(_OTHER_LOOP)
        if self._state is ConnectionState.READY:
            return
        if self._state is ConnectionState.CLOSED:
            if self.closed_error is not None:
                raise ConnectionLost(
                    f"the session closed after losing its connection: {self.closed_error}"
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

    async def wait_ready(self, timeout: float | None) -> None:
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
                        self.require_ready()
                    with contextlib.suppress(StopAsyncIteration):
                        await anext(feed)
        except TimeoutError:
            raise RequestTimeout(
                f"the session did not become READY within {timeout} s (state {self._state.name})"
            ) from None
        finally:
            await feed.aclose()

    async def request(
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
        self.require_ready()
        limit = resolve_timeout(timeout, self.timeout)
        req_id, awaitable = self.adapter.begin(name, start)
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
            return answer.result()
        finally:
            self._router.untrack(pending)
            if not answer.done():
                answer.cancel()
            elif not answer.cancelled():
                answer.exception()  # retrieved: an unanswered error must not warn at GC
            connected = self.adapter.is_connected
            if send_cancel and cancel is not None and req_id is not None and connected:
                with contextlib.suppress(Exception):
                    cancel(req_id)

    # -- what the supervisor uses ----------------------------------------------------------

    @property
    def has_connected(self) -> bool:
        """True once ``connect()`` succeeded; it stays true across reconnects."""
        return bool(self._connects)

    async def establish(self) -> None:
        """One full connect: staged open (with fresh ids after 326 for auto ids) and sync."""
        cfg = self.config
        fresh_ids = 0
        while True:
            try:
                info = await self.adapter.open(
                    cfg.host,
                    cfg.port,
                    self._client_id,
                    timeout=self.timeout,
                    on_stage=self.stage_listener,
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
            await self.adapter.close()
            source = cfg.sources.get("account", "argument")
            raise ConfigError(
                f"account {mask_account(cfg.account)} (from {source}) is not managed by this "
                f"login; it manages {', '.join(mask_account(a) for a in info.accounts)}",
                variable="account" if source == "argument" else source,
            )
        self._link = info
        self.set_state(ConnectionState.SYNCING, "API ready; start-up sync")
        await self.adapter.sync(
            account=cfg.account,
            readonly=cfg.readonly,
            all_open_orders=self.all_open_orders,
            timeout=self.timeout,
            on_part=self.stage_listener,
        )

    def _client_id_error(self, exc: ClientIdInUse, fresh_ids: int) -> ClientIdInUse:
        cfg = self.config
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

    def set_state(
        self, new: ConnectionState, reason: str, error: IBFlowError | None = None
    ) -> None:
        """Move to ``new`` (a no-op when already there) and tell every ``state_changes()``."""
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
        for feed in self._state_feeds:
            feed.send(change)

    def fail_requests(self, error: IBFlowError) -> None:
        """Fail every in-flight request with ``error`` (the link dropped)."""
        self._router.fail_all(error)

    def close_after_loss(self, error: ConnectionLost) -> None:
        """Close for good after the link was lost for good: everything waiting fails."""
        self.closed_error = error
        self._router.fail_all(error)
        self.subscriptions.close_all(error)
        self.set_state(ConnectionState.CLOSED, str(error), error)
        self._end_feeds()

    # -- internals -------------------------------------------------------------------------------

    def _is_closed(self) -> bool:
        # A method, not an inline comparison: the state changes across awaits.
        return self._state is ConnectionState.CLOSED

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise InvalidRequest(_OTHER_LOOP)

    def require_link(self) -> LinkInfo:
        if self._link is None:
            raise SessionClosedError(
                "the session has not connected yet: use 'async with ibflow.Session(...)' or "
                "'await session.connect()' first"
            )
        return self._link

    def _end_feeds(self) -> None:
        for feeds in (self._state_feeds, self._notice_feeds):
            for feed in feeds:
                feed.end()
            feeds.clear()

    def _on_ib_error(self, req_id: int, code: int, message: str) -> None:
        """Every errMsg frame: route it to its request, act on link codes, publish notices."""
        row = lookup(code)
        if req_id >= 0 and row.severity is Severity.ERROR:
            error = error_for(code, message, req_id)
            if self._router.fail(req_id, error) or self.subscriptions.fail(req_id, error):
                log.debug("request %d failed with IB error %d: %s", req_id, code, message)
                return
        self._supervisor.on_link_code(code)
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
        for feed in self._notice_feeds:
            feed.send(notice)
