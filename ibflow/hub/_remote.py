"""``RemoteSession``: a session's API, served by a hub over NATS instead of a TWS socket.

Each read is one NATS request to the hub, answered with the same records a ``Session``
returns, or the same ``ibflow`` exception it raises. Quotes arrive on the hub's per-instrument
subject; the remote session renews a lease for each open quote stream so the hub knows someone
still listens. Orders carry a client key: retrying ``place()`` with the same key returns the
first placement's order instead of placing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

import ibflow
from ibflow._stream import StreamWriter

from ._access import resolve_access
from ._protocol import (
    Subjects,
    check_name,
    connect_nats,
    decode,
    decode_error,
    dumps,
    encode,
    loads,
)

__all__ = ["RemoteSession", "RemoteTrade"]


class _Default:
    def __repr__(self) -> str:
        return "<the session's timeout>"


_DEFAULT: Any = _Default()
_TRANSPORT_MARGIN = 2.0  # seconds the hub may take beyond the call's own timeout
_FOREVER = 365 * 24 * 3600.0


class RemoteTrade:
    """An order placed through a hub: its id and key, and waits that ask the hub.

    ``duplicate`` is true when the hub had already placed an order with this key and returned
    that one instead of placing again.
    """

    def __init__(
        self,
        session: RemoteSession,
        contract: ibflow.Contract,
        order: ibflow.Order,
        reply: dict[str, Any],
    ) -> None:
        self._session = session
        self.contract = contract
        self.order = order
        self.order_id: int = reply["order_id"]
        self.key: str = reply["key"]
        self.duplicate: bool = reply["duplicate"]
        self._status: ibflow.OrderStatus = reply["status"]
        self._fills: tuple[ibflow.Fill, ...] = ()
        self._filled = 0.0

    @property
    def status(self) -> ibflow.OrderStatus:
        """The status as of the last answer from the hub."""
        return self._status

    @property
    def fills(self) -> tuple[ibflow.Fill, ...]:
        """The fills returned by the last ``wait_filled()``."""
        return self._fills

    @property
    def filled(self) -> float:
        return self._filled

    def __repr__(self) -> str:
        return f"<RemoteTrade order {self.order_id} {self._status.value} key={self.key!r}>"

    async def wait_filled(self, *, timeout: float | None = _DEFAULT) -> tuple[ibflow.Fill, ...]:
        """Wait until the order filled completely; its fills, as ``Trade.wait_filled()``.

        Raises:
            OrderCancelled / OrderRejected: the order ended without filling completely.
            RequestTimeout: not filled in time (the order stays working).
        """
        await self._wait("filled", timeout)
        return self._fills

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> ibflow.OrderStatus:
        """Wait until the order is done (filled, cancelled or inactive); its final status."""
        await self._wait("done", timeout)
        return self._status

    async def refresh(self) -> ibflow.OrderStatus:
        """Ask the hub for the order's status now."""
        await self._wait("now", _DEFAULT)
        return self._status

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> ibflow.OrderStatus:
        """Cancel the order at the hub, as ``Trade.cancel()``; the resulting status."""
        status: ibflow.OrderStatus = await self._session._call(
            "order.cancel", [self.order_id], {}, timeout
        )
        self._status = status
        return status

    async def _wait(self, until: str, timeout: float | None) -> None:
        reply = await self._session._call("order.wait", [self.order_id], {"until": until}, timeout)
        self._status = reply["status"]
        self._filled = reply["filled"]
        if reply["fills"]:
            self._fills = reply["fills"]


class RemoteSession:
    """The API of an ``ibflow.Session``, answered by the hub named ``hub`` over NATS.

    ``async with RemoteSession("nats://127.0.0.1:4222", hub="desk1", name="bot-a") as s``;
    then ``await s.positions()``, ``async with s.quotes(contract) as quotes``,
    ``await s.place(contract, order)`` … as with a ``Session``.

    Args:
        url: the NATS server the hub uses (several of a cluster comma-separated); default
            ``IBFLOW_NATS_URL``, else ``nats://127.0.0.1:4222``.
        hub: the hub's name (``ibflow hub --name``).
        name: this session's name, which the hub's read-only list refers to; default a fresh
            ``remote-…`` name.
        timeout: the default for each call, in seconds; ``None`` waits forever.
        user, password, token, creds, nkey: NATS credentials (a creds or nkey seed file's
            path); each defaults to its ``IBFLOW_NATS_*`` variable. A refused one raises
            ``AccessDenied`` on connecting.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        hub: str,
        name: str | None = None,
        timeout: float | None = 10.0,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        creds: str | None = None,
        nkey: str | None = None,
    ) -> None:
        self._access = resolve_access(
            url, user=user, password=password, token=token, creds=creds, nkey=nkey
        )
        self._url = self._access.shown
        self._hub = check_name(hub, "hub")
        self._name = check_name(name or f"remote-{uuid.uuid4().hex[:12]}", "name")
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ibflow.InvalidRequest(f"timeout must be > 0 or None, got {timeout!r}")
        self._timeout = timeout
        self._subjects = Subjects(self._hub)
        self._nc: NATS | None = None
        self._state = ibflow.ConnectionState.DISCONNECTED
        self._accounts: tuple[str, ...] = ()
        self._is_paper = True
        self._readonly = False
        self._lease_ttl = 3.0
        self._streams: dict[str, StreamWriter[Any]] = {}  # lease id → open quote stream
        self._contracts: dict[str, ibflow.Contract] = {}  # lease id → qualified contract
        self._renewer: asyncio.Task[None] | None = None
        self._down_since: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the link ------------------------------------------------------------------------------

    @property
    def state(self) -> ibflow.ConnectionState:
        """The hub's session state as last reported, ``RECONNECTING`` while NATS is down."""
        return self._state

    @property
    def name(self) -> str:
        return self._name

    @property
    def hub(self) -> str:
        return self._hub

    @property
    def accounts(self) -> tuple[str, ...]:
        return self._accounts

    @property
    def is_paper(self) -> bool:
        return self._is_paper

    @property
    def readonly(self) -> bool:
        """True when the hub refuses this session's orders."""
        return self._readonly

    def __repr__(self) -> str:
        return f"<RemoteSession {self._name} → hub {self._hub} {self._state.value}>"

    async def connect(self) -> RemoteSession:
        """Connect to NATS and greet the hub.

        Raises:
            ConnectError: the NATS server is unreachable, or no hub of that name answers.
            AccessDenied: the NATS server refused the credentials.
            SessionClosedError: the session was closed already.
        """
        if self._state is ibflow.ConnectionState.CLOSED:
            raise ibflow.SessionClosedError("this remote session was closed; create a new one")
        self._state = ibflow.ConnectionState.CONNECTING
        try:
            self._nc = await connect_nats(
                self._access,
                name=f"ibflow-{self._name}",
                timeout=self._timeout,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except ibflow.ConnectError:
            self._state = ibflow.ConnectionState.DISCONNECTED
            raise
        try:
            await self._nc.subscribe(self._subjects.state, cb=self._on_state)
            await self._greet()
        except BaseException:
            await self.aclose()
            raise
        self._renewer = asyncio.ensure_future(self._renew_leases())
        return self

    async def _greet(self) -> None:
        try:
            hello = await self._call("hello", [], {}, self._timeout, timeout_arg=False)
        except (ibflow.ConnectionLost, ibflow.RequestTimeout) as exc:
            raise ibflow.ConnectError(
                f"no hub named {self._hub!r} answers on {self._url} ({exc}); start one with "
                f"`ibflow hub --nats {self._url} --name {self._hub}`"
            ) from None
        self._state = hello["state"]
        self._accounts = tuple(hello["accounts"])
        self._is_paper = hello["is_paper"]
        self._readonly = hello["readonly"]
        self._lease_ttl = hello["lease_ttl"]

    async def aclose(self) -> None:
        """Close every stream (releasing the hub's leases) and leave NATS; idempotent."""
        self._state = ibflow.ConnectionState.CLOSED
        for stream in list(self._streams.values()):
            stream.end()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._nc is not None:
            nc, self._nc = self._nc, None
            with contextlib.suppress(nats.errors.Error):
                # Drain delivers what is in flight; with the server away, just close.
                await (nc.drain() if nc.is_connected else nc.close())

    async def __aenter__(self) -> RemoteSession:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _on_state(self, msg: Msg) -> None:
        with contextlib.suppress(ibflow.IBFlowError, KeyError, TypeError):
            if self._state is not ibflow.ConnectionState.CLOSED:
                self._state = decode(loads(msg.data)["state"])

    async def _on_disconnected(self) -> None:
        if self._state is not ibflow.ConnectionState.CLOSED:
            self._state = ibflow.ConnectionState.RECONNECTING
            self._down_since = datetime.now(UTC)

    async def _on_reconnected(self) -> None:
        if self._state is ibflow.ConnectionState.CLOSED:
            return
        start, self._down_since = self._down_since, None
        gap = ibflow.Gap(
            start=start or datetime.now(UTC), end=datetime.now(UTC), reason="NATS link lost"
        )
        for stream in self._streams.values():
            stream.send_marker(gap)
        with contextlib.suppress(ibflow.IBFlowError):
            await self._greet()

    # -- calls ---------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
        *,
        timeout_arg: bool = True,
    ) -> Any:
        """Ask the hub to run ``method``; its decoded result, or its error raised here."""
        nc = self._nc
        if nc is None or self._state is ibflow.ConnectionState.CLOSED:
            raise ibflow.SessionClosedError(
                "the remote session is not open: use `async with RemoteSession(...)`"
            )
        if timeout is _DEFAULT:
            timeout = self._timeout
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ibflow.InvalidRequest(f"timeout must be > 0 or None, got {timeout!r}")
        if timeout_arg:
            kwargs = {**kwargs, "timeout": timeout}
        payload = dumps({"name": self._name, "args": encode(args), "kwargs": encode(kwargs)})
        wait = _FOREVER if timeout is None else timeout + _TRANSPORT_MARGIN
        try:
            msg = await nc.request(self._subjects.request(method), payload, timeout=wait)
        except nats.errors.NoRespondersError:
            raise ibflow.ConnectionLost(
                f"no hub named {self._hub!r} is serving on {self._url}"
            ) from None
        except nats.errors.TimeoutError:
            raise ibflow.RequestTimeout(
                f"hub {self._hub!r} did not answer {method} within {wait:g} s"
            ) from None
        except nats.errors.ConnectionClosedError:
            raise ibflow.SessionClosedError("the remote session's NATS link is closed") from None
        reply = loads(msg.data)
        if "error" in reply:
            raise decode_error(reply["error"])
        return decode(reply["ok"])

    # -- account and contracts -------------------------------------------------------------------

    async def positions(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[ibflow.Position]:
        """As ``Session.positions()``, answered by the hub."""
        result: list[ibflow.Position] = await self._call("positions", [account], {}, timeout)
        return result

    async def account_values(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[ibflow.AccountValue]:
        """As ``Session.account_values()``, answered by the hub."""
        result: list[ibflow.AccountValue] = await self._call(
            "account_values", [account], {}, timeout
        )
        return result

    async def account_summary(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> ibflow.AccountSummary:
        """As ``Session.account_summary()``, answered by the hub."""
        result: ibflow.AccountSummary = await self._call("account_summary", [account], {}, timeout)
        return result

    async def portfolio(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[ibflow.PortfolioItem]:
        """As ``Session.portfolio()``, answered by the hub."""
        result: list[ibflow.PortfolioItem] = await self._call("portfolio", [account], {}, timeout)
        return result

    async def pnl(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> ibflow.PnL:
        """As ``Session.pnl()``, answered by the hub."""
        result: ibflow.PnL = await self._call("pnl", [account], {}, timeout)
        return result

    async def current_time(self, *, timeout: float | None = _DEFAULT) -> datetime:
        """As ``Session.current_time()``: TWS's clock, read by the hub."""
        result: datetime = await self._call("current_time", [], {}, timeout)
        return result

    async def contract_details(
        self, contract: ibflow.Contract, *, timeout: float | None = _DEFAULT
    ) -> list[ibflow.ContractDetails]:
        """As ``Session.contract_details()``, answered by the hub."""
        result: list[ibflow.ContractDetails] = await self._call(
            "contract_details", [contract], {}, timeout
        )
        return result

    async def qualify(
        self, *contracts: ibflow.Contract, timeout: float | None = _DEFAULT
    ) -> list[ibflow.Contract]:
        """As ``Session.qualify()``, answered (and cached) by the hub."""
        result: list[ibflow.Contract] = await self._call("qualify", list(contracts), {}, timeout)
        return result

    # -- history -------------------------------------------------------------------------------

    async def history(
        self,
        contract: ibflow.Contract,
        *,
        period: str | ibflow.BarSize = "5m",
        duration: str | timedelta = "1 D",
        what: str | ibflow.WhatToShow = "TRADES",
        rth: bool = True,
        end: datetime | None = None,
        timeout: float | None = _DEFAULT,
    ) -> list[ibflow.Bar]:
        """As ``Session.history()``; the request goes through the hub's one pacer."""
        options = {"period": period, "duration": duration, "what": what, "rth": rth, "end": end}
        result: list[ibflow.Bar] = await self._call("history", [contract], options, timeout)
        return result

    async def head_timestamp(
        self,
        contract: ibflow.Contract,
        *,
        what: str | ibflow.WhatToShow = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime:
        """As ``Session.head_timestamp()``, answered by the hub."""
        result: datetime = await self._call(
            "head_timestamp", [contract], {"what": what, "rth": rth}, timeout
        )
        return result

    # -- orders --------------------------------------------------------------------------------

    async def place(
        self,
        contract: ibflow.Contract,
        order: ibflow.Order,
        *,
        key: str | None = None,
        timeout: float | None = _DEFAULT,
    ) -> RemoteTrade:
        """Place ``order`` through the hub, exactly once per ``key``.

        Args:
            contract: what to trade.
            order: an :class:`ibflow.Order` (brackets and OCA groups are not served yet).
            key: the client key; a retry with the same key (after a timeout, from another
                process) returns the first placement's order. Default: a fresh key.
            timeout: seconds for the whole call.

        Raises:
            SafetyError: this remote name is read-only at the hub, or the hub session's rails.
            InvalidRequest / ContractNotFound / OrderRejected / RequestTimeout: as
                ``Session.place()``.
        """
        if key is None:
            key = uuid.uuid4().hex
        reply = await self._call("place", [contract, order], {"key": key}, timeout)
        return RemoteTrade(self, contract, order, reply)

    async def open_orders(self, *, timeout: float | None = _DEFAULT) -> list[ibflow.OrderSnapshot]:
        """As ``Session.open_orders()``: the hub's client id's open orders."""
        result: list[ibflow.OrderSnapshot] = await self._call("open_orders", [], {}, timeout)
        return result

    async def completed_orders(
        self, *, api_only: bool = False, timeout: float | None = _DEFAULT
    ) -> list[ibflow.OrderSnapshot]:
        """As ``Session.completed_orders()``, answered by the hub."""
        result: list[ibflow.OrderSnapshot] = await self._call(
            "completed_orders", [], {"api_only": api_only}, timeout
        )
        return result

    async def fills(
        self, since: datetime | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[ibflow.Fill]:
        """As ``Session.fills()``, answered by the hub."""
        result: list[ibflow.Fill] = await self._call("fills", [since], {}, timeout)
        return result

    async def what_if(
        self, contract: ibflow.Contract, order: ibflow.Order, *, timeout: float | None = _DEFAULT
    ) -> ibflow.OrderPreview:
        """As ``Session.what_if()``, answered by the hub."""
        result: ibflow.OrderPreview = await self._call("what_if", [contract, order], {}, timeout)
        return result

    # -- market data ---------------------------------------------------------------------------

    def quotes(
        self,
        contract: ibflow.Contract,
        *,
        buffer: int = 256,
        overflow: ibflow.Overflow | str = ibflow.Overflow.LATEST,
    ) -> ibflow.Stream[ibflow.Quote | ibflow.Gap]:
        """Live quotes of ``contract``, as ``Session.quotes()``: one line at TWS, shared.

        Entering the block qualifies the contract at the hub, listens on its quote subject and
        takes a lease the session renews until the stream closes.

        Raises:
            InvalidRequest: a bad argument (at once).
            ContractNotFound / AmbiguousContract / MarketDataError: on entering the block.
            MarketDataError / ConnectionLost: from the iterator, as the hub's stream fails.
        """
        if not isinstance(contract, ibflow.Contract):
            raise ibflow.InvalidRequest(
                f"contract must be an ibflow.Contract, got {type(contract).__name__}"
            )
        lease = uuid.uuid4().hex
        subscription: list[Any] = []
        delivered: list[bool] = []

        async def start() -> None:
            (qualified,) = await self.qualify(contract)
            assert self._nc is not None
            assert qualified.con_id is not None

            async def deliver(msg: Msg) -> None:
                delivered.append(True)
                self._deliver(stream, msg.data)

            sub = await self._nc.subscribe(
                self._subjects.quotes(qualified.con_id), cb=deliver, pending_msgs_limit=buffer * 4
            )
            subscription.append(sub)
            await self._nc.flush()
            reply = await self._call(
                "md.subscribe", [qualified], {"lease": lease}, _DEFAULT, timeout_arg=False
            )
            self._streams[lease] = stream
            self._contracts[lease] = qualified
            if reply["last"] is not None and not delivered:
                self._deliver(stream, reply["last"].encode())

        def close() -> None:
            self._streams.pop(lease, None)
            self._contracts.pop(lease, None)
            if self._nc is not None:
                self._background(self._release(lease, subscription))

        stream: StreamWriter[ibflow.Quote | ibflow.Gap] = StreamWriter(
            name=f"quotes({contract.symbol})",
            buffer=buffer,
            overflow=overflow,
            start=start,
            on_close=close,
        )
        return stream.stream

    async def _release(self, lease: str, subscription: list[Any]) -> None:
        """Stop listening and tell the hub at once (the lease would lapse by itself)."""
        nc = self._nc
        if nc is None:
            return
        with contextlib.suppress(nats.errors.Error):
            for sub in subscription:
                await sub.unsubscribe()
            await nc.publish(self._subjects.release, dumps({"lease": lease}))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _deliver(stream: StreamWriter[Any], payload: bytes) -> None:
        try:
            message = loads(payload)
            if "item" in message:
                item = decode(message["item"])
                if isinstance(item, ibflow.Gap):
                    stream.send_marker(item)
                else:
                    stream.send(item)
            elif "error" in message:
                stream.fail(decode_error(message["error"]))
            elif message.get("end"):
                stream.end()
        except ibflow.IBFlowError as exc:
            stream.fail(exc)

    async def _renew_leases(self) -> None:
        """Renew every open stream's lease at a third of its lifetime; re-take lost ones."""
        while True:
            await asyncio.sleep(self._lease_ttl / 3)
            nc = self._nc
            if nc is None or not nc.is_connected:
                continue
            leases = list(self._streams)  # none: still a heartbeat the hub's statistics count
            try:
                renewal = dumps({"name": self._name, "leases": leases})
                msg = await nc.request(self._subjects.renew, renewal, timeout=self._lease_ttl)
                unknown = loads(msg.data).get("unknown", [])
            except (nats.errors.Error, ibflow.IBFlowError):
                continue  # the hub is away; the next round tries again
            for lease in unknown:
                contract = self._contracts.get(lease)
                if contract is None:
                    continue
                # The hub forgot this lease (it restarted, or we were away too long): retake it.
                with contextlib.suppress(ibflow.IBFlowError):
                    await self._call(
                        "md.subscribe", [contract], {"lease": lease}, _DEFAULT, timeout_arg=False
                    )
