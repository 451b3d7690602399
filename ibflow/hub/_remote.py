"""``RemoteSession``: a session's API, served by a hub over NATS instead of a TWS socket.

Each read is one NATS request to the hub, answered with the same records a ``Session``
returns (in parts when larger than one NATS message: ``_chunks``), or the same ``ibflow``
exception it raises. Streams arrive on their feed's subject, one per distinct call
(``_remote_streams``); the remote session renews a lease for each open stream so the hub
knows someone still listens. Orders carry a client key: retrying ``place()`` with the same key
returns the first placement's orders instead of placing again. ``ibflow.SessionLike``
declares the surface this class shares with ``Session``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, overload

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

import ibflow
from ibflow._timeouts import SESSION_DEFAULT

from ._access import leave_nats, resolve_access
from ._chunks import ask
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
from ._remote_events import LeaderWatch, OrderTracker, RemoteJournal
from ._remote_history import RemoteHistory
from ._remote_orders import (
    OrderLink,
    RemoteBracketTrade,
    RemoteTrade,
    RemoteTradeGroup,
    check_key,
    make_handle,
)
from ._remote_pacing import RemotePacing
from ._remote_state import LinkState
from ._remote_streams import FeedClient, RemoteStreams

__all__ = ["RemoteBracketTrade", "RemoteSession", "RemoteTrade", "RemoteTradeGroup"]


_DEFAULT: Any = SESSION_DEFAULT
_TRANSPORT_MARGIN = 2.0  # seconds the hub may take beyond the call's own timeout
_FOREVER = 365 * 24 * 3600.0
_REGREET_PAUSE = 0.25  # seconds between greetings while the hub is not back on NATS
_MAX_FINISHED_TRADES = 10_000  # as a Session's default max_finished_trades


class RemoteSession(RemoteStreams, RemoteJournal, RemotePacing, RemoteHistory):
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
        self._link = LinkState()
        self._accounts: tuple[str, ...] = ()
        self._is_paper = True
        self._readonly = False
        self._lease_ttl = 3.0
        self._renewer: asyncio.Task[None] | None = None
        self._down_since: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._feeds = FeedClient(self._subjects, self._name, self._call, lambda: self._nc)
        self._trades: dict[int, RemoteTrade] = {}
        self._watch = LeaderWatch(
            silent=self._hub_silent,
            changed=self._hub_changed,
            connected=lambda: self._nc is not None and self._nc.is_connected,
        )
        self._order_tracker: OrderTracker | None = None
        self._journal_streams: set[Callable[[], None]] = set()  # ends of open event/fill streams

    # -- the link ------------------------------------------------------------------------------

    @property
    def state(self) -> ibflow.ConnectionState:
        """The hub's session state as last reported, ``RECONNECTING`` while NATS is down."""
        return self._link.current

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
        return f"<RemoteSession {self._name} → hub {self._hub} {self._link.current.value}>"

    async def connect(self) -> RemoteSession:
        """Connect to NATS and greet the hub.

        Raises:
            ConnectError: the NATS server is unreachable, or no hub of that name answers.
            AccessDenied: the NATS server refused the credentials.
            SessionClosedError: the session was closed already.
        """
        if self._link.current is ibflow.ConnectionState.CLOSED:
            raise ibflow.SessionClosedError("this remote session was closed; create a new one")
        self._link.set(ibflow.ConnectionState.CONNECTING, f"connecting to hub {self._hub!r}")
        try:
            self._nc = await connect_nats(
                self._access,
                name=f"ibflow-{self._name}",
                timeout=self._timeout,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except ibflow.ConnectError:
            self._link.set(ibflow.ConnectionState.DISCONNECTED, "the NATS server is unreachable")
            raise
        try:
            await self._nc.subscribe(self._subjects.state, cb=self._on_state)
            await self._greet()
        except BaseException:
            await self.aclose()
            raise
        self._watch.start()
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
        self._link.set(hello["state"], f"hub {self._hub!r} answered")
        self._accounts = tuple(hello["accounts"])
        self._is_paper = hello["is_paper"]
        self._readonly = hello["readonly"]
        self._lease_ttl = hello["lease_ttl"]
        self._watch.greeted(hello.get("hub_id"))
        self._take_pacing(hello)

    async def aclose(self) -> None:
        """Close every stream (releasing the hub's leases) and leave NATS; idempotent."""
        self._link.set(ibflow.ConnectionState.CLOSED, "closed by the caller")
        self._feeds.end_all()
        for end in list(self._journal_streams):
            end()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self._watch.aclose()
        if self._order_tracker is not None:
            await self._order_tracker.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._feeds.aclose()
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await leave_nats(nc)

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
            data = loads(msg.data)
            state = decode(data["state"])
            self._watch.on_beat(data)  # first: a new hub's RECONNECTING comes before its state
            self._take_pacing(data)
            self._link.set(state, f"the session of hub {self._hub!r} is {state.value}")

    def _hub_silent(self) -> None:
        """No heartbeat from the hub (it died; a standby is taking over)."""
        self._link.set(ibflow.ConnectionState.RECONNECTING, f"hub {self._hub!r} went silent")

    def _hub_changed(self, gap: ibflow.Gap) -> None:
        """A new leader (or the hub heard again): streams get a Gap, leases come back."""
        self._link.set(ibflow.ConnectionState.RECONNECTING, f"hub {self._hub!r} failed over")
        self._feeds.mark_gap(gap)
        self._background(self._greet_again())

    async def _on_disconnected(self) -> None:
        if self._link.current is not ibflow.ConnectionState.CLOSED:
            self._link.set(ibflow.ConnectionState.RECONNECTING, "NATS link lost")
            self._down_since = datetime.now(UTC)

    async def _on_reconnected(self) -> None:
        if self._link.current is ibflow.ConnectionState.CLOSED:
            return
        start, self._down_since = self._down_since, None
        gap = ibflow.Gap(
            start=start or datetime.now(UTC), end=datetime.now(UTC), reason="NATS link lost"
        )
        self._feeds.mark_gap(gap)
        self._background(self._greet_again())

    async def _greet_again(self) -> None:
        """Greet the hub after a NATS outage until it answers: it may be back after us."""
        while self._link.current is not ibflow.ConnectionState.CLOSED:
            nc = self._nc
            if nc is None or not nc.is_connected:
                return  # down again: the next reconnect greets
            try:
                await self._greet()
                return
            except ibflow.IBFlowError:
                await asyncio.sleep(_REGREET_PAUSE)

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
        if nc is None or self._link.current is ibflow.ConnectionState.CLOSED:
            raise ibflow.SessionClosedError(
                "the remote session is not open: use `async with RemoteSession(...)`"
            )
        if timeout is _DEFAULT:
            timeout = self._timeout
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ibflow.InvalidRequest(f"timeout must be > 0 or None, got {timeout!r}")
        if timeout_arg:
            kwargs = {**kwargs, "timeout": timeout}
        request = {"name": self._name, "args": encode(args), "kwargs": encode(kwargs)}
        payload = dumps({**request, "max": nc.max_payload})
        wait = _FOREVER if timeout is None else timeout + _TRANSPORT_MARGIN
        self._link.in_flight += 1
        try:
            reply: Any = await ask(nc, self._subjects.request(method), payload, wait, method)
        except nats.errors.NoRespondersError:
            raise ibflow.ConnectionLost(
                f"no hub named {self._hub!r} is serving on {self._url}"
            ) from None
        except nats.errors.ConnectionClosedError:
            raise ibflow.SessionClosedError("the remote session's NATS link is closed") from None
        finally:
            self._link.in_flight -= 1
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

    async def download(
        self,
        contract: ibflow.Contract,
        *,
        start: datetime,
        end: datetime | None = None,
        period: str | ibflow.BarSize = "1m",
        what: str | ibflow.WhatToShow = "TRADES",
        rth: bool = True,
        progress: bool = True,
        on_progress: Callable[[ibflow.DownloadProgress], object] | None = None,
        cache: bool | ibflow.HistoryCache | str | os.PathLike[str] = True,
        concurrency: int = 4,
        skip_closed: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[ibflow.Bar]:
        """As ``Session.download()``, run by the hub: its pacer, its cache (``cache=True``).

        The hub reports no progress while it works: ``progress`` shows nothing here and
        ``on_progress`` is refused, as is a cache object or path (it would name one on the
        hub's machine).

        Raises:
            InvalidRequest: ``on_progress`` given, ``cache`` not a bool, or as
                ``Session.download()``.
        """
        if on_progress is not None:
            raise ibflow.InvalidRequest(
                "download(on_progress=) is not relayed by a hub; call it without, or use a "
                "local Session"
            )
        if not isinstance(cache, bool):
            raise ibflow.InvalidRequest(
                "through a hub, download(cache=) is True (the hub's cache) or False, got "
                f"{type(cache).__name__}"
            )
        del progress  # the work happens at the hub, which shows no progress bar
        options = {
            "start": start,
            "end": end,
            "period": period,
            "what": what,
            "rth": rth,
            "cache": cache,
            "concurrency": concurrency,
            "skip_closed": skip_closed,
        }
        result: list[ibflow.Bar] = await self._call("download", [contract], options, timeout)
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

    @overload
    async def place(
        self,
        contract: ibflow.Contract,
        order: ibflow.Order,
        *,
        key: str | None = ...,
        timeout: float | None = ...,
    ) -> RemoteTrade: ...

    @overload
    async def place(
        self,
        contract: ibflow.Contract,
        order: ibflow.Bracket,
        *,
        key: str | None = ...,
        timeout: float | None = ...,
    ) -> RemoteBracketTrade: ...

    @overload
    async def place(
        self,
        contract: ibflow.Contract,
        order: ibflow.OcaGroup,
        *,
        key: str | None = ...,
        timeout: float | None = ...,
    ) -> RemoteTradeGroup: ...

    async def place(
        self,
        contract: ibflow.Contract,
        order: ibflow.Order | ibflow.Bracket | ibflow.OcaGroup,
        *,
        key: str | None = None,
        timeout: float | None = _DEFAULT,
    ) -> RemoteTrade | RemoteBracketTrade | RemoteTradeGroup:
        """Place ``order`` through the hub, exactly once per ``key``, as ``Session.place()``.

        Args:
            contract: what to trade.
            order: an :class:`ibflow.Order` (→ :class:`RemoteTrade`), a :class:`ibflow.Bracket`
                (→ :class:`RemoteBracketTrade`) or an :class:`ibflow.OcaGroup`
                (→ :class:`RemoteTradeGroup`).
            key: the client key; a retry with the same key (after a timeout, from another
                process) returns the first placement's orders. Default: a fresh key. The
                rules of ``Session.place(key=)`` apply (1 to 64 printable ASCII characters,
                no spaces, no ``:``), but the key stays at the hub: IB's order reference
                carries the hub's tag (``hub:<name>:<digest>``), after your ``order_ref``
                and a ``|`` if the order has one.
            timeout: seconds for the whole call.

        Raises:
            SafetyError: this remote name is read-only at the hub, or the hub session's rails.
            InvalidRequest / ContractNotFound / OrderRejected / RequestTimeout: as
                ``Session.place()``.
        """
        if not isinstance(order, ibflow.Order | ibflow.Bracket | ibflow.OcaGroup):
            raise ibflow.InvalidRequest(
                f"order must be an ibflow.Order, Bracket or OcaGroup, got {type(order).__name__}"
            )
        key = uuid.uuid4().hex if key is None else check_key(key)
        tracker = self._tracker
        tracker.begin()  # the replay runs while the order is placed; waits await it
        reply = await self._call("place", [contract, order], {"key": key}, timeout)
        link = OrderLink(self._call, tracker, self._timeout)
        placed: RemoteTrade | RemoteTradeGroup = make_handle(link, contract, reply)
        for trade in (placed,) if isinstance(placed, RemoteTrade) else placed.trades:
            self._trades.setdefault(trade.order_id, trade)
        if len(self._trades) > _MAX_FINISHED_TRADES:
            done = [i for i, t in self._trades.items() if t.is_done]
            for order_id in done[: max(0, len(done) - _MAX_FINISHED_TRADES)]:
                del self._trades[order_id]
        return placed

    def trades(self) -> tuple[RemoteTrade, ...]:
        """The orders this remote session placed through the hub, oldest first: those not
        known to be done, and the latest 10,000 done ones (as ``Session.trades()``)."""
        return tuple(self._trades.values())

    async def cancel_order(
        self, order_id: int, *, timeout: float | None = _DEFAULT
    ) -> ibflow.OrderStatus:
        """As ``Session.cancel_order()``: cancel an open order of the hub's client id by id."""
        status: ibflow.OrderStatus = await self._call("cancel_order", [order_id], {}, timeout)
        return status

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

    async def quote(
        self, contract: ibflow.Contract, *, timeout: float | None = _DEFAULT
    ) -> ibflow.Quote:
        """As ``Session.quote()``: one snapshot quote, taken by the hub."""
        result: ibflow.Quote = await self._call("quote", [contract], {}, timeout)
        return result

    # -- state ---------------------------------------------------------------------------------

    def state_changes(self) -> ibflow.Stream[ibflow.StateChange]:
        """Every change of ``state`` from now on: the hub session's changes as the hub reports
        them, and this side's NATS link going down (``RECONNECTING``) and coming back.

        It ends quietly after the change to CLOSED.
        """
        return self._link.changes()

    def statistics(self) -> ibflow.SessionStatistics:
        """A snapshot of this remote session: its states, its NATS traffic (as messages and
        bytes), its open streams and calls in flight; cheap, no I/O. TWS-side counters
        (heartbeats, throttle, notices) are the hub's and read 0 here."""
        nc = self._nc
        stats = dict(nc.stats) if nc is not None else {}
        return self._link.statistics(stats, len(self._feeds))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renew_leases(self) -> None:
        """Renew every open stream's lease at a third of its lifetime; re-take lost ones."""
        while True:
            await asyncio.sleep(self._lease_ttl / 3)
            await self._feeds.renew(self._lease_ttl)
