"""Keeping a session's link up: waiting for the gateway, heartbeats, reconnects, TWS's outages.

The session core owns the link and its state; the supervisor decides when to probe the link,
when to dial again and when to give up, and asks the core for every change of state.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from ._config import ResolvedConfig
from ._errors import (
    ConnectionClosedEarly,
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    HandshakeTimeout,
    IBFlowError,
    RequestTimeout,
    SessionClosedError,
)
from ._ib import IBAdapter
from ._log import get_logger
from ._records.session import DEFAULT_RECONNECT, ConnectionState, ReconnectPolicy
from ._registry import SubscriptionRegistry

__all__ = ["SupervisedCore", "Supervisor"]

log = get_logger("session")

# Connect failures that mean "the gateway is not up (yet)": worth waiting for.
_GATEWAY_DOWN = (ConnectRefused, ConnectTimeout, HandshakeTimeout, ConnectionClosedEarly)


class SupervisedCore(Protocol):
    """What the supervisor needs of the session core."""

    @property
    def config(self) -> ResolvedConfig: ...

    @property
    def adapter(self) -> IBAdapter: ...

    @property
    def subscriptions(self) -> SubscriptionRegistry: ...

    @property
    def state(self) -> ConnectionState: ...

    @property
    def client_id(self) -> int: ...

    @property
    def has_connected(self) -> bool: ...

    def set_state(
        self, new: ConnectionState, reason: str, error: IBFlowError | None = None
    ) -> None: ...

    async def establish(self) -> None: ...

    def fail_requests(self, error: IBFlowError) -> None: ...

    def close_after_loss(self, error: ConnectionLost) -> None: ...


class Supervisor:
    """One session's link supervision; the core creates it and forwards the link's events."""

    def __init__(
        self,
        core: SupervisedCore,
        *,
        reconnect: ReconnectPolicy | None,
        wait_for_gateway: float | None,
        heartbeat_interval: float | None,
        heartbeat_timeout: float,
    ) -> None:
        self._core = core
        self._reconnect = reconnect
        self._wait_for_gateway = wait_for_gateway
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._closing = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ib_link_down = False
        self._rng = random.Random()
        # statistics
        self.reconnects = 0
        self.reconnect_attempts = 0
        self.last_rtt: float | None = None
        self.heartbeats = 0
        self.heartbeat_failures = 0

    def _is_closed(self) -> bool:
        # A method, not an inline comparison: the state changes across awaits.
        return self._core.state is ConnectionState.CLOSED

    # -- connecting and stopping -------------------------------------------------------------

    async def first_connect(self) -> None:
        """``establish``; with ``wait_for_gateway``, retried with backoff while the gateway is
        not up yet (nothing listening, or closing before the API is ready)."""
        core = self._core
        limit = self._wait_for_gateway
        if limit is None:
            await core.establish()
            return
        policy = self._reconnect or DEFAULT_RECONNECT
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        attempt = 0
        while True:
            try:
                await core.establish()
                return
            except _GATEWAY_DOWN as exc:
                left = deadline - loop.time()
                if left <= 0:
                    raise
                delay = min(policy.delay(attempt, self._rng), left)
                attempt += 1
                core.set_state(
                    ConnectionState.DISCONNECTED,
                    f"waiting for the gateway: attempt {attempt} failed ({type(exc).__name__}: "
                    f"{exc}); next attempt in {delay:.2f} s",
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closing.wait()
            if self._closing.is_set():
                raise SessionClosedError("the session was closed while waiting for the gateway")
            core.set_state(ConnectionState.CONNECTING, f"connect() attempt {attempt + 1}")

    def start(self) -> None:
        """Supervise the link from now on (the first connect succeeded)."""
        self._task = asyncio.create_task(
            self._supervise(), name=f"ibflow-session-{self._core.client_id}"
        )

    async def stop(self) -> None:
        """Stop for good: end a wait for the gateway and cancel every supervising task."""
        self._closing.set()
        current = asyncio.current_task()
        tasks = [t for t in (self._task, *self._tasks) if t is not None and t is not current]
        self._task = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the link's events -------------------------------------------------------------------

    def on_link_code(self, code: int) -> None:
        """Act on TWS's own link codes: 1100 (TWS lost IB), 1101/1102 (back), 1300 (reset)."""
        core = self._core
        if code == 1100:
            if core.state is ConnectionState.READY:
                self._ib_link_down = True
                core.subscriptions.link_down()
                core.set_state(
                    ConnectionState.RECONNECTING,
                    "IB error 1100: TWS lost its connection to IB; waiting for 1101/1102",
                )
        elif code in (1101, 1102):
            was_down = self._ib_link_down
            self._ib_link_down = False
            if code == 1101 and core.has_connected:
                self._spawn(self._after_1101(), "ibflow-resubscribe-1101")
            elif was_down and core.state is ConnectionState.RECONNECTING:
                core.set_state(ConnectionState.READY, f"IB error {code}: connectivity restored")
        elif code == 1300:
            core.adapter.abort("IB error 1300: the TWS socket port was reset")

    def on_link_lost(self, reason: str) -> None:
        """The socket closed while READY (called from the adapter's socket callback)."""
        core = self._core
        if core.state is ConnectionState.CLOSED:
            return
        cfg = core.config
        error = ConnectionLost(f"lost the connection to {cfg.host}:{cfg.port}: {reason}")
        self._ib_link_down = False
        core.fail_requests(error)
        core.subscriptions.link_down()
        if self._reconnect is None:
            core.close_after_loss(error)
        else:
            core.set_state(ConnectionState.RECONNECTING, reason)
        self._lost.set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_1101(self) -> None:
        core = self._core
        finished = await core.subscriptions.resubscribe_all(fresh_link=False)
        if finished and core.state is ConnectionState.RECONNECTING and core.adapter.is_connected:
            core.set_state(
                ConnectionState.READY, "IB error 1101: connectivity restored, data re-requested"
            )

    # -- supervising -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Heartbeat while READY; reconnect after a loss; close when told to give up."""
        while self._core.state is not ConnectionState.CLOSED:
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
        adapter = self._core.adapter
        if not adapter.is_connected:
            return
        started = time.monotonic()
        try:
            await adapter.current_time(self._heartbeat_timeout)
        except RequestTimeout:
            self.heartbeat_failures += 1
            reason = (
                f"heartbeat: no answer to reqCurrentTime within {self._heartbeat_timeout} s "
                "(half-open socket or hung TWS)"
            )
            log.warning("session %d: %s; dropping the link", self._core.client_id, reason)
            adapter.abort(reason)
            return
        except ConnectionLost:
            return
        self.heartbeats += 1
        self.last_rtt = time.monotonic() - started

    async def _reconnect_loop(self, policy: ReconnectPolicy) -> bool:
        core = self._core
        cfg = core.config
        attempt = 0
        last_error: BaseException | None = None
        while policy.max_attempts is None or attempt < policy.max_attempts:
            delay = policy.delay(attempt, self._rng)
            attempt += 1
            self.reconnect_attempts += 1
            log.info(
                "session %d: reconnect attempt %d to %s:%d in %.2f s",
                core.client_id,
                attempt,
                cfg.host,
                cfg.port,
                delay,
            )
            await asyncio.sleep(delay)
            if self._is_closed():
                return False
            core.set_state(ConnectionState.RECONNECTING, f"attempt {attempt}")
            self._lost.clear()
            try:
                await core.establish()
            except IBFlowError as exc:
                last_error = exc
                log.info(
                    "session %d: reconnect attempt %d failed: %s", core.client_id, attempt, exc
                )
                core.set_state(ConnectionState.RECONNECTING, f"attempt {attempt} failed: {exc}")
                continue
            self.reconnects += 1
            await core.subscriptions.resubscribe_all(fresh_link=True)
            if not core.adapter.is_connected or self._lost.is_set():
                continue
            core.set_state(ConnectionState.READY, f"reconnected after {attempt} attempt(s)")
            return True
        where = f"{cfg.host}:{cfg.port}"
        core.close_after_loss(
            ConnectionLost(
                f"gave up reconnecting to {where} after {attempt} attempts; last error: "
                f"{last_error}"
            )
        )
        return False
