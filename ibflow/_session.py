"""The Session: the one object users hold to talk to TWS / IB Gateway.

It composes the session core (the link, its reconnects, routing and guards) with the features
(account and contracts, orders, market data, history); every public method delegates to one of
them in a line, so all of a session's state is listed in ``__init__``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, overload

from . import _session_docs as docs
from ._account import Account, Contracts
from ._core import SessionCore
from ._history import History, HistoryCache
from ._history._ticks import HistoricalTicks
from ._market import Market
from ._market._depth import MarketDepth
from ._market._options import Options
from ._market._scanner import Scanners
from ._orders import (
    Bracket,
    BracketTrade,
    Fill,
    OcaGroup,
    Order,
    OrderEvent,
    OrderPreview,
    OrderSnapshot,
    OrderStatus,
    Trade,
    TradeGroup,
)
from ._orders._api import Orders
from ._pacer import PacingRules, PacingStatistics
from ._periods import BarSize, WhatToShow
from ._records.account import (
    AccountSummary,
    AccountValue,
    ContractDetails,
    PnL,
    PortfolioItem,
    Position,
    PositionPnL,
)
from ._records.contracts import Bar, Contract
from ._records.depth import DepthExchange, OrderBook
from ._records.history import DownloadProgress
from ._records.market import (
    BidAskTick,
    Gap,
    MarketDataType,
    MidpointTick,
    Quote,
    Tick,
    TickKind,
    TradeTick,
)
from ._records.options import Greeks, OptionChain
from ._records.scanner import ScannerParameters, ScannerSubscription, ScanResult
from ._records.session import (
    DEFAULT_RECONNECT,
    ConnectionState,
    Notice,
    ReconnectPolicy,
    SessionStatistics,
    StateChange,
)
from ._records.symbols import ContractDescription, MarketRule
from ._schedule import TradingSession
from ._session_docs import documented
from ._stream import Overflow, Stream
from ._timeouts import SESSION_DEFAULT

__all__ = ["Session"]

_DEFAULT = SESSION_DEFAULT


class Session:
    """An asyncio session with TWS or IB Gateway.

    ``Session(...)`` does no I/O. Connect with ``async with Session(...) as session`` or
    ``await session.connect()`` … ``await session.aclose()``. A closed session cannot be
    reopened. Settings not given come from the environment (see ``docs/session.md``).

    Every request takes a keyword-only ``timeout=`` (seconds; the session's ``timeout`` when not
    given, ``None`` for no limit) and, besides what its own docstring lists, may raise
    :class:`RequestTimeout` (no answer in time, the IB cancel sent), :class:`ConnectionLost`
    (the link dropped or is down) or :class:`SessionClosedError` (not connected, or closed).

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
        max_finished_trades: how many done orders :meth:`trades` keeps (each holds its whole
            history); beyond it the oldest leave the book once their executions and
            commissions are in. Orders not done are always kept.
        wait_for_gateway: retry a first connect that finds no gateway for this many seconds,
            with ``reconnect``'s backoff (each attempt shows in ``state_changes()``).

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
        reconnect: ReconnectPolicy | None = DEFAULT_RECONNECT,
        heartbeat_interval: float | None = 30.0,
        heartbeat_timeout: float | None = None,
        all_open_orders: bool = False,
        max_order_quantity: float | None = None,
        max_order_notional: float | None = None,
        max_finished_trades: int = 10_000,
        wait_for_gateway: float | None = None,
    ) -> None:
        self._core = SessionCore(
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
        )
        self._contracts = Contracts(self._core)
        self._account = Account(self._core)
        self._orders = Orders(self._core, self._contracts, self._account)
        self._market = Market(self._core, self._contracts)
        self._history = History(self._core, self._contracts)
        self._options = Options(self._core, self._contracts)
        self._depth = MarketDepth(self._core, self._contracts)
        self._ticks = HistoricalTicks(self._core, self._contracts)
        self._scanners = Scanners(self._core, self._contracts)

    # -- the link ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._core.state

    @property
    def client_id(self) -> int:
        """The API client id in use (or about to be used)."""
        return self._core.client_id

    @property
    def server_version(self) -> int:
        """The API version TWS/Gateway agreed to.

        Raises:
            SessionClosedError: the session never connected.
        """
        return self._core.server_version

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts this login manages.

        Raises:
            SessionClosedError: the session never connected.
        """
        return self._core.accounts

    @property
    def is_paper(self) -> bool:
        """True for a paper-trading login (accounts starting with "D"; else by the port).

        Raises:
            SessionClosedError: the session never connected.
        """
        return self._core.is_paper

    @property
    def ib(self) -> Any:
        """The underlying ``ib_async.IB``, for what ibflow does not wrap yet. Advanced.

        News, fundamentals, FA allocations and other corners of the TWS API are reachable
        through it (``await session.ib.reqNewsProvidersAsync()``). It is the session's own
        connection: it reconnects with the session and shares its client id, pacing budget and
        order ids. There is no stability promise: ib_async's API may change under it, and
        ibflow's types, errors and guards (read-only, live account, safety rails) do not
        apply to what you send through it. Do not disconnect it or change its event handlers;
        use ``session.aclose()``.
        """
        return self._core.adapter.ib

    def __repr__(self) -> str:
        return repr(self._core)

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
        await self._core.connect()
        return self

    async def aclose(self) -> None:
        """Disconnect cleanly and close the session for good. Safe to call twice.

        In-flight requests fail with :class:`SessionClosedError`; streams, ``state_changes()``
        and ``notices()`` end.
        """
        await self._core.aclose()

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

    def state_changes(self) -> Stream[StateChange]:
        """Every state change from now on, as an async iterator.

        It ends quietly after the change to CLOSED.
        """
        return self._core.state_changes()

    def notices(self) -> Stream[Notice]:
        """TWS's informational and unsolicited messages from now on (2104, 1101, 10167…).

        Notices are typed, logged and never raised. Call it before ``connect()`` to see the
        data-farm notices TWS sends right after the handshake.
        """
        return self._core.notices()

    def statistics(self) -> SessionStatistics:
        """A snapshot of counters, timings and rates; cheap, no I/O."""
        return self._core.statistics()

    # -- account ---------------------------------------------------------------------------------

    async def positions(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Position]:
        """The positions TWS reports right now (a fresh ``reqPositions``, not a cache).

        Args:
            account: one managed account; default: the session's account, or every account.

        Returns:
            One :class:`Position` per non-zero position, in TWS's order.

        Raises:
            InvalidRequest: ``account`` is not managed by this login, or a bad ``timeout``.
        """
        return await self._account.positions(account, timeout=timeout)

    async def account_values(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[AccountValue]:
        """Every account value (``NetLiquidation``, ``CashBalance`` per currency…), fresh.

        Args:
            account: one managed account; default: the session's account, or every account.

        Returns:
            The values as IB's text (see :attr:`AccountValue.number`), account by account.

        Raises:
            InvalidRequest: ``account`` is not managed by this login, or a bad ``timeout``.
        """
        return await self._account.account_values(account, timeout=timeout)

    async def account_summary(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> AccountSummary:
        """The headline numbers of one account: net liquidation, cash, buying power, margin.

        Args:
            account: a managed account; default: the session's account or the login's only
                one (with several and none set, pass it).

        Returns:
            An :class:`AccountSummary` with typed fields and every tag as text.

        Raises:
            InvalidRequest: ``account`` is unknown, or needed and not given; a bad ``timeout``.
        """
        return await self._account.account_summary(account, timeout=timeout)

    async def portfolio(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[PortfolioItem]:
        """The portfolio: each position with its market price, value and PnL, fresh.

        TWS streams the portfolio of one account at a time; reading another account switches
        that stream there and back again.

        Args:
            account: one managed account; default: the session's account, or every account.

        Raises:
            InvalidRequest: ``account`` is not managed by this login, or a bad ``timeout``.
        """
        return await self._account.portfolio(account, timeout=timeout)

    async def pnl(self, account: str | None = None, *, timeout: float | None = _DEFAULT) -> PnL:
        """The account's profit and loss now (subscribes, takes the first update, cancels).

        Args:
            account: a managed account; default: the session's account or the login's only
                one (with several and none set, pass it).

        Returns:
            A :class:`PnL`; a figure IB leaves unset is ``None``.

        Raises:
            InvalidRequest: ``account`` is unknown, or needed and not given; a bad ``timeout``.
            RequestError: IB refused the request.
        """
        return await self._account.pnl(account, timeout=timeout)

    async def current_time(self, *, timeout: float | None = _DEFAULT) -> datetime:
        """TWS's clock (``reqCurrentTime``), as an aware UTC datetime.

        Raises:
            InvalidRequest: a bad ``timeout``.
        """
        return await self._account.current_time(timeout=timeout)

    # -- contracts -------------------------------------------------------------------------------

    async def contract_details(
        self, contract: Contract, *, timeout: float | None = _DEFAULT
    ) -> list[ContractDetails]:
        """Everything IB knows about the contracts matching ``contract``.

        Lookups are sent one at a time per session: concurrent contract-details requests can
        stall IB's security-definition service.

        Args:
            contract: a full or partial description (``Stock("AAPL")``, a bare option…).

        Returns:
            One :class:`ContractDetails` per match (at least one).

        Raises:
            InvalidRequest: ``contract`` is not an ibflow ``Contract``; a bad ``timeout``.
            ContractNotFound: IB has no contract matching the description.
        """
        return await self._contracts.contract_details(contract, timeout=timeout)

    async def qualify(
        self, *contracts: Contract, timeout: float | None = _DEFAULT
    ) -> list[Contract]:
        """The fully described, ``con_id``-carrying contract for each description.

        Answers are cached for the session, so qualifying the same contract again costs no
        request. Lookups are sent one at a time.

        Args:
            contracts: one or more descriptions (``Stock("AAPL")``, ``Future("ES", …)``…).

        Returns:
            The qualified contracts, in the order given.

        Raises:
            InvalidRequest: no contracts, or one is not an ibflow ``Contract``; a bad timeout.
            ContractNotFound: IB has no contract matching a description.
            AmbiguousContract: a description matches several contracts; the message lists
                them and ``candidates`` holds them.
        """
        return await self._contracts.qualify(*contracts, timeout=timeout)

    @documented(docs.TRADING_SESSIONS)
    async def trading_sessions(
        self,
        contract: Contract,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[TradingSession]:
        return await self._contracts.trading_sessions(
            contract, start, end, rth=rth, timeout=timeout
        )

    async def is_open(
        self,
        contract: Contract,
        at: datetime | None = None,
        *,
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> bool:
        """True if ``contract`` trades at ``at`` (an aware datetime; now by default).

        Reads the schedule as :meth:`trading_sessions` does; ``False`` beyond the days it lists.
        """
        return await self._contracts.is_open(contract, at, rth=rth, timeout=timeout)

    async def next_open(
        self,
        contract: Contract,
        after: datetime | None = None,
        *,
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime | None:
        """When ``contract`` next opens at or after ``after`` (now by default).

        Aware, in the contract's time zone; ``None`` when the listed schedule has no later open.
        """
        return await self._contracts.next_open(contract, after, rth=rth, timeout=timeout)

    @documented(docs.SEARCH)
    async def search(
        self, pattern: str, *, timeout: float | None = _DEFAULT
    ) -> list[ContractDescription]:
        return await self._contracts.search(pattern, timeout=timeout)

    @documented(docs.MARKET_RULE)
    async def market_rule(self, rule_id: int, *, timeout: float | None = _DEFAULT) -> MarketRule:
        return await self._contracts.market_rule(rule_id, timeout=timeout)

    # -- orders ----------------------------------------------------------------------------------

    @overload
    async def place(
        self, contract: Contract, order: Order, *, timeout: float | None = ...
    ) -> Trade: ...

    @overload
    async def place(
        self, contract: Contract, order: Bracket, *, timeout: float | None = ...
    ) -> BracketTrade: ...

    @overload
    async def place(
        self, contract: Contract, order: OcaGroup, *, timeout: float | None = ...
    ) -> TradeGroup: ...

    async def place(
        self,
        contract: Contract,
        order: Order | Bracket | OcaGroup,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Trade | BracketTrade | TradeGroup:
        """Place an order (or a bracket, or an OCA group) and return once TWS acknowledged it.

        Checked first against the safety rails and the contract (tick, size increment): a
        refusal sends nothing. Timed out or cancelled before the acknowledgement, the order is
        cancelled once; it is never re-sent (see ``docs/orders.md``).

        Args:
            contract: what to trade.
            order: an :class:`Order`, a :class:`Bracket` (→ :class:`BracketTrade`) or an
                :class:`OcaGroup` (→ :class:`TradeGroup`).

        Raises:
            InvalidRequest: a bad argument, or the order does not fit the contract.
            SafetyError: read-only session, live account without ``allow_live``, or over
                ``max_order_quantity`` / ``max_order_notional``.
            ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
            OrderRejected: TWS rejected the order before acknowledging it; its ``trade``
                keeps following the order (TWS may hold it ``Inactive``). A later rejection
                ends the returned Trade with ``trade.error`` instead.
        """
        return await self._orders.place(contract, order, timeout=timeout)

    @documented(docs.TRADES)
    def trades(self) -> tuple[Trade, ...]:
        return self._orders.trades()

    async def open_orders(self, *, timeout: float | None = _DEFAULT) -> list[OrderSnapshot]:
        """The orders TWS has open for this client id (every client's with ``all_open_orders``)."""
        return await self._orders.open_orders(timeout=timeout)

    @documented(docs.CANCEL_ORDER)
    async def cancel_order(self, order_id: int, *, timeout: float | None = _DEFAULT) -> OrderStatus:
        return await self._orders.cancel_order(order_id, timeout=timeout)

    @documented(docs.CANCEL_ALL)
    async def cancel_all(self, *, timeout: float | None = _DEFAULT) -> list[OrderSnapshot]:
        return await self._orders.cancel_all(timeout=timeout)

    @documented(docs.FLATTEN)
    async def flatten(
        self, *, symbols: Iterable[str] | None = None, timeout: float | None = _DEFAULT
    ) -> list[Trade]:
        return await self._orders.flatten(symbols=symbols, timeout=timeout)

    async def completed_orders(
        self, *, api_only: bool = False, timeout: float | None = _DEFAULT
    ) -> list[OrderSnapshot]:
        """Orders that finished today (filled, cancelled, inactive), as TWS reports them.

        Args:
            api_only: only orders placed through the API (not by hand in TWS).

        Raises:
            InvalidRequest: ``api_only`` is not a bool.
        """
        return await self._orders.completed_orders(api_only=api_only, timeout=timeout)

    async def fills(
        self, since: datetime | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Fill]:
        """Executions of the account (every client id), with their commission reports.

        Args:
            since: only executions at or after this aware datetime (TWS keeps about a day).

        Raises:
            InvalidRequest: ``since`` is not an aware datetime.
        """
        return await self._orders.fills(since, timeout=timeout)

    async def what_if(
        self, contract: Contract, order: Order, *, timeout: float | None = _DEFAULT
    ) -> OrderPreview:
        """Preview an order's margin impact and commission; nothing is placed.

        The order is validated against the contract as for ``place()``; the safety rails do
        not apply (nothing trades).

        Raises:
            InvalidRequest: a bad argument, or the order does not fit the contract.
            ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
            OrderRejected / RequestError: TWS refused the preview.
        """
        return await self._orders.what_if(contract, order, timeout=timeout)

    def order_events(self, *, buffer: int = 1024) -> Stream[OrderEvent]:
        """Every event of every order this session places, from now on.

        A bounded stream whose overflow policy is ``"error"``: a consumer that falls
        ``buffer`` events behind gets ``SlowConsumer`` instead of a silent gap (each Trade's
        own ``events()`` replays its full history to recover). The stream ends when the
        session closes, with ``ConnectionLost`` if it gave up reconnecting.
        """
        return self._orders.order_events(buffer=buffer)

    def fills_stream(self, *, buffer: int = 1024) -> Stream[Fill]:
        """Every fill of this session's orders, from now on, each once, with its commission.

        A fill is delivered when its commission report arrives (or a few seconds later
        without one). Fills that happened while the link was down are delivered after the
        reconnect, once. Overflow policy ``"error"``: never a silent loss.
        """
        return self._orders.fills_stream(buffer=buffer)

    # -- market ----------------------------------------------------------------------------------

    def quotes(
        self,
        contract: Contract,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[Quote | Gap]:
        """Live quotes of ``contract`` as immutable :class:`Quote` snapshots.

        ``async with session.quotes(contract) as quotes: async for quote in quotes: ...``.
        One market-data line per contract however many consumers; a :class:`Gap` item marks a
        reconnect. Default policy ``"latest"``: a slow reader skips to the newest quote.

        Args:
            contract: what to quote; qualified (``con_id`` looked up) on entering the block.
            buffer: how many quotes may wait for this consumer.
            overflow: what a full buffer does: ``"latest"``, ``"drop_oldest"`` or ``"error"``.

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            MarketDataError: from the iterator, when IB refuses the data (354, 10089, 101…).
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.quotes(contract, buffer=buffer, overflow=overflow)

    async def quote(self, contract: Contract, *, timeout: float | None = _DEFAULT) -> Quote:
        """One snapshot quote of ``contract`` (``reqMktData`` with ``snapshot=True``).

        Raises:
            InvalidRequest: a bad argument (nothing sent).
            ContractNotFound / AmbiguousContract: the contract is unknown or ambiguous.
            MarketDataError: IB refused the data (354, 10089, 10168…).
            RequestTimeout / ConnectionLost: no complete snapshot in time; the link dropped.
        """
        return await self._market.quote(contract, timeout=timeout)

    @overload
    def ticks(
        self,
        contract: Contract,
        kind: Literal["last", "all_last", TickKind.LAST, TickKind.ALL_LAST] = ...,
        *,
        buffer: int = ...,
        overflow: Overflow | str = ...,
    ) -> Stream[TradeTick | Gap]: ...

    @overload
    def ticks(
        self,
        contract: Contract,
        kind: Literal["bid_ask", TickKind.BID_ASK],
        *,
        buffer: int = ...,
        overflow: Overflow | str = ...,
    ) -> Stream[BidAskTick | Gap]: ...

    @overload
    def ticks(
        self,
        contract: Contract,
        kind: Literal["midpoint", TickKind.MIDPOINT],
        *,
        buffer: int = ...,
        overflow: Overflow | str = ...,
    ) -> Stream[MidpointTick | Gap]: ...

    def ticks(
        self,
        contract: Contract,
        kind: str = "last",
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.DROP_OLDEST,
    ) -> Stream[Any]:
        """Tick-by-tick data: trades (``"last"``, ``"all_last"``), ``"bid_ask"`` or
        ``"midpoint"``, one item per tick, shared per contract and kind.

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            MarketDataError / RequestError: from the iterator, when IB refuses the request.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.ticks(contract, kind, buffer=buffer, overflow=overflow)

    def realtime_bars(
        self,
        contract: Contract,
        what: str = "TRADES",
        *,
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]:
        """IB's 5-second real-time bars; after a reconnect the missed bars are backfilled.

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            RequestError: from the iterator, when IB refuses the request.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` bars behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.realtime_bars(contract, what, rth=rth, buffer=buffer, overflow=overflow)

    @documented(docs.LIVE_BARS)
    def live_bars(
        self,
        contract: Contract,
        period: str = "1m",
        lookback: str = "1 D",
        include_forming: bool = False,
        *,
        what: str = "TRADES",
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]:
        return self._market.live_bars(
            contract,
            period,
            lookback,
            include_forming,
            what=what,
            rth=rth,
            buffer=buffer,
            overflow=overflow,
        )

    def pnl_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PnL | Gap]:
        """The account's daily, unrealized and realized PnL, as TWS updates it (``reqPnL``).

        ``account`` defaults to the session's account, or its only one.

        Raises:
            InvalidRequest: a bad argument, or several accounts and no ``account``.
            RequestError: from the iterator, when IB refuses the request (unknown account).
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.pnl_updates(account, buffer=buffer, overflow=overflow)

    def position_pnl_updates(
        self,
        contract: Contract,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PositionPnL | Gap]:
        """One position's PnL as TWS updates it (``reqPnLSingle``).

        Raises:
            InvalidRequest: a bad argument, or several accounts and no ``account``.
            ContractNotFound / AmbiguousContract: on entering the block.
            RequestError: from the iterator, when IB refuses the request.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.position_pnl_updates(
            contract, account, buffer=buffer, overflow=overflow
        )

    def account_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[AccountValue | Gap]:
        """Account values as they change (every account, or only ``account``).

        Rides on the account subscriptions the session keeps anyway, so it sends nothing. A
        value is yielded when it changes; after a :class:`Gap`, every value TWS re-sends.

        Raises:
            InvalidRequest: a bad argument.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` values behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.account_updates(account, buffer=buffer, overflow=overflow)

    def position_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Position | Gap]:
        """Positions as they change (every account, or only ``account``); a closed position
        arrives with ``quantity`` 0. Rides on the session's own ``reqPositions``.

        Raises:
            InvalidRequest: a bad argument.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` positions behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        return self._market.position_updates(account, buffer=buffer, overflow=overflow)

    async def set_market_data_type(
        self, kind: MarketDataType | str, *, timeout: float | None = _DEFAULT
    ) -> None:
        """Choose live, frozen, delayed or delayed-frozen data for quotes requested from now on.

        Each :class:`Quote` says which type it carries. The choice survives reconnects. TWS
        does not answer this request, so it returns once it is sent.

        Raises:
            InvalidRequest: an unknown ``kind`` (nothing sent).
        """
        return await self._market.set_market_data_type(kind, timeout=timeout)

    # -- options -----------------------------------------------------------------------------------

    @documented(docs.OPTION_CHAIN)
    async def option_chain(
        self, underlying: Contract, *, timeout: float | None = _DEFAULT
    ) -> OptionChain:
        return await self._options.option_chain(underlying, timeout=timeout)

    @documented(docs.IMPLIED_VOLATILITY)
    async def implied_volatility(
        self,
        option: Contract,
        price: float,
        underlying_price: float,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Greeks:
        return await self._options.implied_volatility(
            option, price, underlying_price, timeout=timeout
        )

    @documented(docs.OPTION_PRICE)
    async def option_price(
        self,
        option: Contract,
        volatility: float,
        underlying_price: float,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Greeks:
        return await self._options.option_price(
            option, volatility, underlying_price, timeout=timeout
        )

    # -- depth -------------------------------------------------------------------------------------

    @documented(docs.DEPTH)
    def depth(
        self,
        contract: Contract,
        rows: int = 10,
        smart: bool = False,
        *,
        buffer: int = 16,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[OrderBook | Gap]:
        return self._depth.depth(contract, rows, smart, buffer=buffer, overflow=overflow)

    @documented(docs.DEPTH_EXCHANGES)
    async def depth_exchanges(self, *, timeout: float | None = _DEFAULT) -> list[DepthExchange]:
        return await self._depth.depth_exchanges(timeout=timeout)

    # -- scanners ----------------------------------------------------------------------------------

    @documented(docs.SCANNER_PARAMETERS)
    async def scanner_parameters(self, *, timeout: float | None = _DEFAULT) -> ScannerParameters:
        return await self._scanners.scanner_parameters(timeout=timeout)

    @documented(docs.SCAN)
    async def scan(
        self, subscription: ScannerSubscription, *, timeout: float | None = _DEFAULT
    ) -> list[ScanResult]:
        return await self._scanners.scan(subscription, timeout=timeout)

    @documented(docs.SCANNER)
    def scanner(
        self,
        subscription: ScannerSubscription,
        *,
        buffer: int = 16,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[list[ScanResult] | Gap]:
        return self._scanners.scanner(subscription, buffer=buffer, overflow=overflow)

    # -- history ---------------------------------------------------------------------------------

    @documented(docs.HISTORY)
    async def history(
        self,
        contract: Contract,
        *,
        period: str | BarSize = "5m",
        duration: str | timedelta = "1 D",
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        end: datetime | None = None,
        timeout: float | None = _DEFAULT,
    ) -> list[Bar]:
        return await self._history.history(
            contract, period=period, duration=duration, what=what, rth=rth, end=end, timeout=timeout
        )

    @documented(docs.DOWNLOAD)
    async def download(
        self,
        contract: Contract,
        *,
        start: datetime,
        end: datetime | None = None,
        period: str | BarSize = "1m",
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        progress: bool = True,
        on_progress: Callable[[DownloadProgress], object] | None = None,
        cache: bool | HistoryCache | str | os.PathLike[str] = True,
        concurrency: int = 4,
        skip_closed: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[Bar]:
        return await self._history.download(
            contract,
            start=start,
            end=end,
            period=period,
            what=what,
            rth=rth,
            progress=progress,
            on_progress=on_progress,
            cache=cache,
            concurrency=concurrency,
            skip_closed=skip_closed,
            timeout=timeout,
        )

    async def head_timestamp(
        self,
        contract: Contract,
        *,
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime:
        """The time of the earliest bar IB has for ``contract`` and ``what`` (aware, UTC).

        Raises:
            InvalidRequest: a bad argument (nothing was sent).
            MarketDataError / ContractNotFound: IB has no such data, or no such contract.
            RequestTimeout: no answer in time; the IB cancel has been sent.
            ConnectionLost, SessionClosedError: the session went away.
        """
        return await self._history.head_timestamp(contract, what=what, rth=rth, timeout=timeout)

    @documented(docs.HISTORICAL_TICKS)
    async def historical_ticks(
        self,
        contract: Contract,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        count: int = 1000,
        what: str = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[Tick]:
        return await self._ticks.historical_ticks(
            contract, start=start, end=end, count=count, what=what, rth=rth, timeout=timeout
        )

    def set_pacing(self, rules: PacingRules) -> None:
        """Replace this session's pacing rules (see :class:`PacingRules`).

        Requests already sent keep counting. ``rules.messages_per_second`` and
        ``rules.time_scale`` also set the send throttle every outbound message passes.

        Raises:
            InvalidRequest: ``rules`` is not a PacingRules.
        """
        return self._history.set_pacing(rules)

    def pacing_statistics(self) -> PacingStatistics:
        """What this session's pacer has let through, held back and seen refused."""
        return self._history.pacing_statistics()
