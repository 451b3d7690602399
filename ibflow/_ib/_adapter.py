"""The one place that drives ``ib_async.IB``: staged connect, start-up sync, link events.

ib_async's ``IB.connectAsync`` runs TCP connect, handshake, API start and the start-up sync as
one call that ends in a bare ``TimeoutError`` whatever went wrong, and treats error 326 like any
other early close. To give each stage its own timeout and its own error, this adapter drives
the stages of one long-lived ``IB`` instance itself: it opens the socket through
``ib.client.conn``, sends the API greeting, and watches the client's events (data arrived,
API started, socket closed, errMsg) to tell the stages and the failure causes apart. The same
``IB`` is reused for every reconnect, so ib_async's caches keep a single owner.

Nothing ib_async-typed leaves this module: the session talks to :class:`IBAdapter` in plain
Python values and ibflow exceptions, and gets told about link loss and errMsg frames through two
callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ib_async import IB, ExecutionFilter, Stock
from ib_async.client import Client

from .._errors import (
    ClientIdInUse,
    ConnectError,
    ConnectionClosedEarly,
    ConnectionLost,
    ConnectRefused,
    ConnectTimeout,
    HandshakeTimeout,
    IBFlowError,
    RequestTimeout,
    SyncTimeout,
)
from .._log import get_logger, mask_account
from ._account import AccountPort
from ._errors import map_ib_errors
from ._fastpath import install_fast_receive
from ._history import HistoryPort
from ._inbound import install_inbound_guard
from ._market import MarketPort
from ._orders import OrdersPort
from ._outbound import install_order_priority

__all__ = ["IBAdapter", "LinkInfo", "QuoteProbe", "Traffic"]

log = get_logger("session")

_MAX_SYNCED_ACCOUNTS = 50  # per-account update streams beyond this are left to the caller
_CLOSE_WAIT = 1.0  # how long a clean close waits for the socket to be gone

ErrorCallback = Callable[[int, int, str], None]
LostCallback = Callable[[str], None]
StageCallback = Callable[[str, str], None]

Phase = Literal["idle", "connecting", "syncing", "ready", "closing"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What the API told us when it became ready."""

    server_version: int
    accounts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Traffic:
    """Counters across every connection this adapter made."""

    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    throttled_now: int
    throttle_events: int


@dataclass(frozen=True, slots=True)
class QuoteProbe:
    """The outcome of asking for one quote (``ibflow doctor``)."""

    data_type: int | None  # 1 live, 2 frozen, 3 delayed, 4 delayed frozen
    bid: float | None
    ask: float | None
    last: float | None
    error_code: int | None
    error_message: str


class _Attempt:
    """The futures one connect attempt waits on, completed from ib_async's callbacks."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        timeout: float | None,
        on_stage: StageCallback | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout = timeout
        self.on_stage = on_stage
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.errors: list[tuple[int, str]] = []
        self.stage = "tcp"
        self.version = 0
        self.deadline: asyncio.Timeout | None = None

    def handshake_done(self, version: int) -> None:
        """The server answered the greeting: the API-start stage begins, with a fresh timeout.

        Called from ib_async's data callback, so the waiting coroutine needs no extra wake-up
        between the two stages.
        """
        self.version = version
        self.stage = "api"
        if self.deadline is not None and self.timeout is not None:
            self.deadline.reschedule(self.loop.time() + self.timeout)
        if self.on_stage is not None:
            self.on_stage("handshake", str(version))

    def fail(self, exc: IBFlowError) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            # Retrieved by whoever awaits; mark so an unawaited one never warns.
            self.ready.exception()

    def said(self) -> str:
        if not self.errors:
            return ""
        joined = "; ".join(f"{code} {text}" for code, text in self.errors[-3:])
        return f" TWS said: {joined}."


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) or value <= 0 else value


async def _mapped(name: str, awaitable: Awaitable[T]) -> T:
    with map_ib_errors(name):
        return await awaitable


class IBAdapter:
    """Owns one ``ib_async.IB`` for the life of a session and drives it in stages."""

    def __init__(self, *, on_error: ErrorCallback, on_lost: LostCallback) -> None:
        self._on_error_cb = on_error
        self._on_lost_cb = on_lost
        self._ib = IB()
        self._phase: Phase = "idle"
        self._attempt: _Attempt | None = None
        self._abort_reason = ""
        self._socket_down = asyncio.Event()
        self._socket_down.set()
        self._link_up = False
        self._totals = [0, 0, 0, 0]  # messages in/out, bytes in/out of finished connections
        self._throttle_events = 0
        self._sync_waiter: asyncio.Future[None] | None = None
        self._sync_closed = ""  # why the socket closed during the start-up sync

        ib = self._ib
        client = ib.client
        connected = lambda: self.is_connected  # noqa: E731 - read at each call
        self.account = AccountPort(ib, connected)
        self.market = MarketPort(ib, connected)
        self.orders = OrdersPort(ib, connected)
        self.history = HistoryPort(ib, connected)
        # ibflow re-issues subscriptions itself after 1101/reconnect; ib_async's own
        # fire-and-forget account-summary request on 1102 is not cancellation-safe.
        ib.errorEvent.disconnect(ib._onError)
        ib.errorEvent.connect(self._on_error_event)
        client.apiStart.connect(self._on_api_start)
        client.apiError.connect(self._on_api_error)
        client.throttleStart.connect(self._on_throttle_start)
        # ib_async's receive path re-slices its buffer per frame (quadratic under a flood);
        # swap in the linear one first, so that _on_data still runs after the parse.
        install_fast_receive(client)
        # A frame length over TWS's limit (a corrupt stream) drops the link at once.
        install_inbound_guard(client, self._on_corrupt)
        # Orders go ahead of queued requests in the 45 messages/s send throttle.
        install_order_priority(client)
        client.conn.hasData.connect(self._on_data)  # runs after the client parsed the bytes
        # Our close handler must run before the client's, which resets its counters.
        client.conn.disconnected.disconnect(client._onSocketDisconnected)
        client.conn.disconnected.connect(self._on_socket_closed)
        client.conn.disconnected.connect(client._onSocketDisconnected)

    # -- properties ---------------------------------------------------------------------------

    @property
    def ib(self) -> IB:
        """The ``ib_async.IB`` this adapter drives (the session's escape hatch)."""
        return self._ib

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def is_connected(self) -> bool:
        return self._link_up and self._ib.client.isReady()

    @property
    def server_version(self) -> int:
        return int(self._ib.client.serverVersion())

    def next_req_id(self) -> int:
        """A request id from ib_async's shared request/order id counter."""
        with map_ib_errors("request id"):
            return int(self._ib.client.getReqId())

    def begin(
        self, name: str, start: Callable[[], tuple[int | None, Awaitable[T]]]
    ) -> tuple[int | None, Awaitable[T]]:
        """Send one request with ``start()``; its answer comes back with ib_async's errors mapped.

        ``start`` returns ``(req_id, awaitable)``; so does this, the awaitable wrapped so that
        anything ib_async raises arrives as ibflow's error.
        """
        with map_ib_errors(name):
            req_id, awaitable = start()
        return req_id, _mapped(name, awaitable)

    def traffic(self) -> Traffic:
        client = self._ib.client
        live = [0, 0, 0, 0]
        if self._link_up:
            live = [
                client._numMsgRecv,
                client.conn.numMsgSent,
                client._numBytesRecv,
                client.conn.numBytesSent,
            ]
        total = [a + b for a, b in zip(self._totals, live, strict=True)]
        return Traffic(
            messages_in=total[0],
            messages_out=total[1],
            bytes_in=total[2],
            bytes_out=total[3],
            throttled_now=len(client._msgQ),
            throttle_events=self._throttle_events,
        )

    # -- ib_async callbacks (run synchronously inside ib_async's socket handlers) --------------

    def _on_data(self, _data: bytes) -> None:
        attempt = self._attempt
        if attempt is not None and attempt.stage == "handshake":
            version = self._ib.client.serverVersion()
            if version:
                attempt.handshake_done(int(version))

    def _on_api_start(self) -> None:
        attempt = self._attempt
        if attempt is None:
            return
        if attempt.stage == "handshake":
            attempt.handshake_done(int(self._ib.client.serverVersion()))
        if not attempt.ready.done():
            attempt.ready.set_result(None)

    def _on_api_error(self, message: str) -> None:
        attempt = self._attempt
        if attempt is not None and "version must be" in message:
            attempt.fail(
                ConnectError(
                    f"{attempt.host}:{attempt.port} runs a TWS/Gateway too old for ib_async "
                    f"({message}); upgrade TWS or IB Gateway",
                    host=attempt.host,
                    port=attempt.port,
                )
            )

    def _on_throttle_start(self) -> None:
        self._throttle_events += 1

    def _on_error_event(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        attempt = self._attempt
        if attempt is not None:
            attempt.errors.append((code, message))
            if code == 326:
                # Fail now: TWS closes the socket right after, and ib_async would otherwise
                # keep waiting for the API to start until its timeout (or forever).
                attempt.fail(
                    ClientIdInUse(
                        f"client id {attempt.client_id} is already in use at "
                        f"{attempt.host}:{attempt.port} (IB error 326)",
                        client_id=attempt.client_id,
                        host=attempt.host,
                        port=attempt.port,
                    )
                )
            elif code in (502, 503):
                attempt.fail(
                    ConnectError(
                        f"TWS/Gateway at {attempt.host}:{attempt.port} refused the API session "
                        f"(IB error {code}: {message}); check the API settings, trusted IPs "
                        "and the number of connected clients (at most 32)",
                        host=attempt.host,
                        port=attempt.port,
                    )
                )
        self._on_error_cb(int(req_id), int(code), str(message))

    def _bank_traffic(self) -> None:
        """Add the live connection's counters to the totals before ib_async resets them."""
        if self._link_up:
            client = self._ib.client
            self._totals[0] += client._numMsgRecv
            self._totals[1] += client.conn.numMsgSent
            self._totals[2] += client._numBytesRecv
            self._totals[3] += client.conn.numBytesSent
        self._link_up = False

    def _on_socket_closed(self, message: str) -> None:
        self._bank_traffic()
        self._socket_down.set()
        reason = self._abort_reason or message or "TWS/Gateway closed the connection"
        self._abort_reason = ""
        attempt = self._attempt
        if attempt is not None:
            attempt.fail(self._closed_early(attempt, message))
            return
        if self._phase == "syncing":
            self._sync_closed = reason
            waiter = self._sync_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(self._sync_closed_error())
                waiter.exception()  # mark retrieved; the sync reads it
            return
        if self._phase == "ready":
            self._phase = "idle"
            self._on_lost_cb(reason)

    def _sync_closed_error(self) -> ConnectionClosedEarly:
        client = self._ib.client
        return ConnectionClosedEarly(
            f"the connection closed during the start-up sync ({self._sync_closed}); "
            "TWS/IB Gateway may be restarting, retry in a moment",
            host=client.host,
            port=client.port,
        )

    def _closed_early(self, attempt: _Attempt, message: str) -> IBFlowError:
        where = f"{attempt.host}:{attempt.port}"
        detail = f" ({message})" if message else ""
        if any(code == 326 for code, _ in attempt.errors):
            return ClientIdInUse(
                f"client id {attempt.client_id} is already in use at {where} (IB error 326)",
                client_id=attempt.client_id,
                host=attempt.host,
                port=attempt.port,
            )
        if attempt.stage in ("tcp", "handshake"):
            return ConnectionClosedEarly(
                f"{where} accepted the TCP connection and closed it before answering the API "
                f"handshake{detail}. A relay or proxy is up but the gateway behind it is "
                "not: start TWS/IB Gateway, or wait for its restart to finish." + attempt.said(),
                host=attempt.host,
                port=attempt.port,
            )
        return ConnectionClosedEarly(
            f"{where} closed the API session after the handshake, before it was ready "
            f"(no error 326){detail}. Check TWS's API settings and log, and that fewer than "
            "32 clients are connected." + attempt.said(),
            host=attempt.host,
            port=attempt.port,
        )

    # -- staged connect -----------------------------------------------------------------------

    async def open(
        self,
        host: str,
        port: int,
        client_id: int,
        *,
        timeout: float | None,
        on_stage: StageCallback | None = None,
    ) -> LinkInfo:
        """TCP connect, API handshake and API start, each with its own timeout and error.

        Raises:
            ConnectRefused, ConnectTimeout, HandshakeTimeout, ConnectionClosedEarly,
            ClientIdInUse, SyncTimeout (API start), ConnectError.
        """
        if self._phase not in ("idle",):
            raise ConnectError(f"cannot connect while the link is {self._phase}")
        await self._wait_socket_down()
        ib = self._ib
        client = ib.client
        attempt = _Attempt(host, port, client_id, timeout, on_stage)
        self._attempt = attempt
        self._phase = "connecting"
        where = f"{host}:{port}"
        ok = False
        try:
            client.reset()
            client.host, client.port, client.clientId = host, port, client_id
            client.connState = Client.CONNECTING
            ib.wrapper.clientId = client_id
            self._socket_down.clear()
            try:
                async with asyncio.timeout(timeout):
                    await client.conn.connectAsync(host, port)
            except TimeoutError:
                raise ConnectTimeout(
                    f"TCP connect to {where} did not complete within {timeout} s; check the "
                    "host name, firewalls and VPNs between here and TWS/IB Gateway",
                    host=host,
                    port=port,
                ) from None
            except ConnectionRefusedError:
                raise ConnectRefused(
                    f"nothing is listening on {where}: is TWS or IB Gateway running with the "
                    "API enabled? Default ports: paper 7497 (TWS) / 4002 (Gateway), live "
                    "7496 (TWS) / 4001 (Gateway)",
                    host=host,
                    port=port,
                ) from None
            except OSError as exc:
                raise ConnectRefused(
                    f"cannot open a TCP connection to {where} ({exc}); check the host and "
                    "port, and that TWS or IB Gateway is running",
                    host=host,
                    port=port,
                ) from None
            finally:
                if client.conn.transport is None:
                    self._socket_down.set()
            # The peer may already have closed it again (a relay whose gateway is down).
            self._link_up = client.conn.transport is not None
            if on_stage is not None:
                on_stage("tcp", where)

            attempt.stage = "handshake"
            greeting = b"v%d..%d" % (client.MinClientVersion, client.MaxClientVersion)
            if client.connectOptions:
                greeting += b" " + client.connectOptions
            client.conn.sendMsg(b"API\0" + struct.pack(">I", len(greeting)) + greeting)
            # One deadline for handshake and API start; it is restarted when the handshake
            # answer arrives (see _Attempt.handshake_done), so each stage gets ``timeout``.
            try:
                async with asyncio.timeout(timeout) as deadline:
                    attempt.deadline = deadline
                    await attempt.ready
            except TimeoutError:
                if attempt.stage == "handshake":
                    raise HandshakeTimeout(
                        f"{where} accepted the TCP connection but did not answer the API "
                        f"handshake within {timeout} s. In TWS enable Configure > API > "
                        "Settings > 'Enable ActiveX and Socket Clients', add this host to the "
                        "trusted IPs, and accept the incoming-connection prompt if one is "
                        "showing.",
                        host=host,
                        port=port,
                    ) from None
                raise SyncTimeout(
                    f"{where} answered the handshake (server version {attempt.version}) but "
                    f"did not start the API session for client id {client_id} within "
                    f"{timeout} s (no managedAccounts/nextValidId). TWS may be waiting for a "
                    "login, 2FA, or a dialog to be dismissed." + attempt.said(),
                    part="API start",
                    host=host,
                    port=port,
                ) from None
            finally:
                attempt.deadline = None
            version = attempt.version
            accounts = tuple(client.getAccounts())
            if on_stage is not None:
                on_stage("api", ",".join(mask_account(a) for a in accounts))
            ok = True
            self._phase = "syncing"
            return LinkInfo(server_version=int(version), accounts=accounts)
        finally:
            self._attempt = None
            if not ok:
                self._phase = "idle"
                await self._teardown()

    async def sync(
        self,
        *,
        account: str | None,
        readonly: bool,
        all_open_orders: bool,
        timeout: float | None,
        on_part: StageCallback | None = None,
    ) -> None:
        """The start-up sync: positions, orders, account values, then executions.

        Every part gets ``timeout``; a part that stays silent raises :class:`SyncTimeout`
        naming it. The link is torn down on any failure.
        """
        ib = self._ib
        client = ib.client
        self._sync_closed = ""
        errors_before: list[tuple[int, str]] = []
        collect = errors_before.append

        def on_error(_req_id: int, code: int, message: str, _contract: Any) -> None:
            if code < 2100 or code >= 2200:
                collect((code, message))

        ib.errorEvent.connect(on_error)
        ok = False
        try:
            with map_ib_errors("start-up sync"):
                if client.clientId == 0:
                    ib.reqAutoOpenOrders(True)
                accounts = client.getAccounts()
                main = account or (accounts[0] if len(accounts) == 1 else "")
                parts: dict[str, Awaitable[Any]] = {"positions": ib.reqPositionsAsync()}
                if not readonly:
                    parts["open orders"] = (
                        ib.reqAllOpenOrdersAsync() if all_open_orders else ib.reqOpenOrdersAsync()
                    )
                    if client.serverVersion() >= 150:
                        parts["completed orders"] = ib.reqCompletedOrdersAsync(False)
                if main:
                    parts["account updates"] = ib.reqAccountUpdatesAsync(main)
                if len(accounts) <= _MAX_SYNCED_ACCOUNTS:
                    for acc in accounts:
                        name = f"account updates for {mask_account(acc)}"
                        parts[name] = ib.reqAccountUpdatesMultiAsync(acc)
            await self._sync_parts(parts, timeout, errors_before, on_part)
            with map_ib_errors("start-up sync"):
                executions = {"executions": ib.reqExecutionsAsync(ExecutionFilter())}
            await self._sync_parts(executions, timeout, errors_before, on_part)
            ok = True
            self._phase = "ready"
        except ConnectionLost:
            if self._sync_closed:
                raise self._sync_closed_error() from None
            raise
        finally:
            ib.errorEvent.disconnect(on_error)
            if not ok:
                self._phase = "idle"
                await self._teardown()

    async def _sync_parts(
        self,
        parts: dict[str, Awaitable[Any]],
        timeout: float | None,
        said: list[tuple[int, str]],
        on_part: StageCallback | None,
    ) -> None:
        if self._sync_closed:
            raise self._sync_closed_error()
        loop = asyncio.get_running_loop()
        # One future for the whole group, completed from done-callbacks: the waiting
        # coroutine wakes once (all answered, one failed, or the socket closed) instead of
        # once per part, which keeps connect-to-ready on par with ib_async's own connect.
        finished: asyncio.Future[None] = loop.create_future()
        tasks = {name: asyncio.ensure_future(aw) for name, aw in parts.items()}
        remaining = len(tasks)

        def on_done(task: asyncio.Future[Any]) -> None:
            nonlocal remaining
            remaining -= 1
            if finished.done() or task.cancelled():
                return
            exc = task.exception()
            if exc is not None:
                finished.set_exception(exc)
            elif remaining == 0:
                finished.set_result(None)

        for task in tasks.values():
            task.add_done_callback(on_done)
        self._sync_waiter = finished
        silent: list[str] = []
        try:
            try:
                async with asyncio.timeout(timeout):
                    await finished
            except TimeoutError:
                silent = [name for name, task in tasks.items() if not task.done()]
            except IBFlowError:
                raise
            except Exception as exc:
                failed = next(
                    (
                        n
                        for n, t in tasks.items()
                        if t.done() and not t.cancelled() and t.exception()
                    ),
                    "sync",
                )
                with map_ib_errors(f"start-up sync ({failed})"):
                    raise exc from None
        finally:
            self._sync_waiter = None
            for task in tasks.values():
                if not task.done():
                    task.cancel()
        if on_part is not None:
            for name, task in tasks.items():
                if task.done() and not task.cancelled():
                    on_part(name, "ok")
        if silent:
            told = ""
            if said:
                told = " TWS said: " + "; ".join(f"{c} {t}" for c, t in said[-3:]) + "."
            raise SyncTimeout(
                f"the start-up sync did not finish: no answer to {', '.join(silent)} within "
                f"{timeout} s.{told} Retry later, raise the session timeout, or check TWS.",
                part=silent[0],
                host=self._ib.client.host,
                port=self._ib.client.port,
            )

    # -- running link ---------------------------------------------------------------------------

    async def current_time(self, timeout: float | None) -> float:
        """Ask TWS for its clock (reqCurrentTime); returns epoch seconds.

        Raises:
            RequestTimeout: no answer within ``timeout``.
            ConnectionLost: the link is down.
        """
        with map_ib_errors("reqCurrentTime"):
            fut = asyncio.ensure_future(self._ib.reqCurrentTimeAsync())
        try:
            async with asyncio.timeout(timeout):
                with map_ib_errors("reqCurrentTime"):
                    answer = await fut
        except TimeoutError:
            raise RequestTimeout(f"reqCurrentTime: no answer within {timeout} s") from None
        finally:
            fut.cancel()
        return float(answer.timestamp())

    def start_executions(self) -> tuple[int, Awaitable[int]]:
        """Send reqExecutions (all of this client's executions); the answer is their count.

        Returns ``(req_id, awaitable)`` for ``Session._request``.
        """
        ib = self._ib

        async def count() -> int:
            return len(await fut)

        with map_ib_errors("reqExecutions"):
            req_id = int(ib.client.getReqId())
            fut = ib.wrapper.startReq(req_id)
            ib.client.reqExecutions(req_id, ExecutionFilter())
        return req_id, count()

    async def probe_quote(self, symbol: str, timeout: float) -> QuoteProbe:
        """Qualify one US stock, subscribe to its quote, wait for a price or an error, cancel."""
        ib = self._ib
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[int, str] | None] = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                with map_ib_errors("contract details"):
                    details = await ib.reqContractDetailsAsync(Stock(symbol, "SMART", "USD"))
        except TimeoutError:
            details = None
        if not details:
            return QuoteProbe(
                data_type=None,
                bid=None,
                ask=None,
                last=None,
                error_code=200,
                error_message=f"no contract details for {symbol} (STK, SMART, USD)"
                + ("" if details is not None else f" within {timeout} s"),
            )
        contract = details[0].contract
        if contract is None:
            return QuoteProbe(
                data_type=None,
                bid=None,
                ask=None,
                last=None,
                error_code=200,
                error_message=f"contract details for {symbol} carried no contract",
            )
        with map_ib_errors("market data"):
            ticker = ib.reqMktData(contract, "", False, False)
        req_id = ib.wrapper.ticker2ReqId["mktData"].get(ticker, -1)

        def on_error(rid: int, code: int, message: str, _c: Any) -> None:
            if rid == req_id and not done.done() and not 2100 <= code < 2200:
                if code not in (10167, 10090, 10091):
                    done.set_result((code, message))

        def on_update(t: Any) -> None:
            if not done.done() and (_finite(t.bid) or _finite(t.ask) or _finite(t.last)):
                done.set_result(None)

        ib.errorEvent.connect(on_error)
        ticker.updateEvent.connect(on_update)
        error: tuple[int, str] | None = None
        try:
            async with asyncio.timeout(timeout):
                error = await done
        except TimeoutError:
            error = None
        finally:
            ib.errorEvent.disconnect(on_error)
            ticker.updateEvent.disconnect(on_update)
            with contextlib.suppress(Exception):
                ib.cancelMktData(contract)
        data_type = int(ticker.marketDataType) if ticker.marketDataType else None
        return QuoteProbe(
            data_type=data_type,
            bid=_finite(ticker.bid),
            ask=_finite(ticker.ask),
            last=_finite(ticker.last),
            error_code=error[0] if error else None,
            error_message=error[1] if error else "",
        )

    def account_value_count(self) -> int:
        return len(self._ib.wrapper.accountValues)

    def position_count(self) -> int:
        return sum(len(p) for p in self._ib.wrapper.positions.values())

    def abort(self, reason: str) -> None:
        """Drop the socket at once (half-open link found by the heartbeat)."""
        transport = self._ib.client.conn.transport
        if transport is not None:
            self._abort_reason = reason
            transport.abort()

    def _on_corrupt(self, reason: str) -> None:
        """The peer sent bytes that cannot be TWS frames: fail a connect attempt, drop the link."""
        attempt = self._attempt
        if attempt is not None:
            attempt.fail(
                ConnectError(
                    f"{attempt.host}:{attempt.port} did not answer as TWS/IB Gateway ({reason}); "
                    "check that this is the API port of TWS or IB Gateway",
                    host=attempt.host,
                    port=attempt.port,
                )
            )
        self.abort(reason)

    async def close(self) -> None:
        """Leave cleanly: ib_async disconnect, then wait briefly until the socket is gone."""
        self._phase = "closing"
        try:
            await self._teardown()
        finally:
            self._phase = "idle"

    async def _teardown(self) -> None:
        ib = self._ib
        client = ib.client
        self._bank_traffic()
        with contextlib.suppress(Exception):
            if client.isReady():
                ib.disconnect()
            else:
                client.disconnect()
                ib.wrapper.reset()
        await self._wait_socket_down()

    async def _wait_socket_down(self) -> None:
        if self._ib.client.conn.transport is None:
            self._socket_down.set()
        if self._socket_down.is_set():
            return
        # The close is already under way; waiting only makes "closed" mean closed for the
        # caller (and the peer). A transport that does not finish closing in time is aborted.
        try:
            async with asyncio.timeout(_CLOSE_WAIT):
                await self._socket_down.wait()
        except TimeoutError:
            transport = self._ib.client.conn.transport
            if transport is not None:
                transport.abort()
