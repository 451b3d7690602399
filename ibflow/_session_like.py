"""``SessionLike``: the surface a ``Session`` and a hub's ``RemoteSession`` share.

Code written against it runs unchanged in one process (a ``Session`` on TWS) or on many
machines (a ``RemoteSession`` through ``ibflow hub``). Each member has ``Session``'s name,
arguments, results and errors; the handles ``place()`` returns are described by
``TradeLike``, ``TradeGroupLike`` and ``BracketTradeLike``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, Self, overload, runtime_checkable

from ._history import HistoryCache
from ._orders import (
    Bracket,
    Fill,
    OcaGroup,
    Order,
    OrderEvent,
    OrderPreview,
    OrderSnapshot,
    OrderStatus,
    TimeInForce,
)
from ._pacer import PacingStatistics
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
from ._records.history import DownloadProgress
from ._records.market import BidAskTick, Gap, MidpointTick, Quote, Tick, TickKind, TradeTick
from ._records.session import ConnectionState, SessionStatistics, StateChange
from ._stream import Overflow, Stream
from ._timeouts import SESSION_DEFAULT

__all__ = ["BracketTradeLike", "SessionLike", "TradeGroupLike", "TradeLike"]

_DEFAULT: Any = SESSION_DEFAULT


@runtime_checkable
class TradeLike(Protocol):
    """One placed order: a ``Trade``, or a hub's ``RemoteTrade``; ``isinstance`` checks the
    names only."""

    @property
    def order_id(self) -> int: ...
    @property
    def contract(self) -> Contract: ...
    @property
    def order(self) -> Order: ...
    @property
    def status(self) -> OrderStatus: ...
    @property
    def is_done(self) -> bool: ...
    @property
    def fills(self) -> tuple[Fill, ...]: ...
    @property
    def filled(self) -> float: ...
    async def wait_filled(self, *, timeout: float | None = _DEFAULT) -> tuple[Fill, ...]: ...
    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> OrderStatus: ...
    async def cancel(self, *, timeout: float | None = _DEFAULT) -> OrderStatus: ...
    async def modify(
        self,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trigger_price: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        trail_stop_price: float | None = None,
        limit_offset: float | None = None,
        offset: float | None = None,
        cap: float | None = None,
        tif: TimeInForce | str | None = None,
        good_till: datetime | None = None,
        timeout: float | None = _DEFAULT,
    ) -> None: ...


@runtime_checkable
class TradeGroupLike(Protocol):
    """The orders of an OCA group: a ``TradeGroup``, or a hub's ``RemoteTradeGroup``."""

    @property
    def trades(self) -> tuple[TradeLike, ...]: ...
    @property
    def is_done(self) -> bool: ...
    def __iter__(self) -> Iterator[TradeLike]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> TradeLike: ...
    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> tuple[OrderStatus, ...]: ...
    async def cancel(self, *, timeout: float | None = _DEFAULT) -> tuple[OrderStatus, ...]: ...


@runtime_checkable
class BracketTradeLike(TradeGroupLike, Protocol):
    """A bracket's three orders: a ``BracketTrade``, or a hub's ``RemoteBracketTrade``."""

    @property
    def parent(self) -> TradeLike: ...
    @property
    def take_profit(self) -> TradeLike: ...
    @property
    def stop_loss(self) -> TradeLike: ...


class SessionLike(Protocol):
    """What ``Session`` and ``ibflow.hub.RemoteSession`` both offer; see ``Session`` for each
    member's contract. A static type: annotate with it, let mypy check (no ``isinstance``:
    a session's ``accounts`` raises before it connects, so a runtime check could not read it)."""

    # -- the link
    @property
    def state(self) -> ConnectionState: ...
    @property
    def accounts(self) -> tuple[str, ...]: ...
    @property
    def is_paper(self) -> bool: ...
    async def connect(self) -> Self: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def state_changes(self) -> Stream[StateChange]: ...
    def statistics(self) -> SessionStatistics: ...
    def pacing_statistics(self) -> PacingStatistics: ...

    # -- account and contracts
    async def positions(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Position]: ...
    async def account_values(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[AccountValue]: ...
    async def account_summary(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> AccountSummary: ...
    async def portfolio(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[PortfolioItem]: ...
    async def pnl(self, account: str | None = None, *, timeout: float | None = _DEFAULT) -> PnL: ...
    async def current_time(self, *, timeout: float | None = _DEFAULT) -> datetime: ...
    async def contract_details(
        self, contract: Contract, *, timeout: float | None = _DEFAULT
    ) -> list[ContractDetails]: ...
    async def qualify(
        self, *contracts: Contract, timeout: float | None = _DEFAULT
    ) -> list[Contract]: ...

    # -- orders
    @overload
    async def place(
        self,
        contract: Contract,
        order: Order,
        *,
        key: str | None = ...,
        timeout: float | None = ...,
    ) -> TradeLike: ...
    @overload
    async def place(
        self,
        contract: Contract,
        order: Bracket,
        *,
        key: str | None = ...,
        timeout: float | None = ...,
    ) -> BracketTradeLike: ...
    @overload
    async def place(
        self,
        contract: Contract,
        order: OcaGroup,
        *,
        key: str | None = ...,
        timeout: float | None = ...,
    ) -> TradeGroupLike: ...
    async def place(
        self,
        contract: Contract,
        order: Order | Bracket | OcaGroup,
        *,
        key: str | None = None,
        timeout: float | None = _DEFAULT,
    ) -> TradeLike | BracketTradeLike | TradeGroupLike: ...
    def trades(self) -> tuple[TradeLike, ...]: ...
    async def open_orders(self, *, timeout: float | None = _DEFAULT) -> list[OrderSnapshot]: ...
    async def cancel_order(
        self, order_id: int, *, timeout: float | None = _DEFAULT
    ) -> OrderStatus: ...
    async def completed_orders(
        self, *, api_only: bool = False, timeout: float | None = _DEFAULT
    ) -> list[OrderSnapshot]: ...
    async def fills(
        self, since: datetime | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Fill]: ...
    async def what_if(
        self, contract: Contract, order: Order, *, timeout: float | None = _DEFAULT
    ) -> OrderPreview: ...
    def order_events(self, *, buffer: int = 1024) -> Stream[OrderEvent]: ...
    def fills_stream(self, *, buffer: int = 1024) -> Stream[Fill]: ...

    # -- market data
    def quotes(
        self,
        contract: Contract,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[Quote | Gap]: ...
    async def quote(self, contract: Contract, *, timeout: float | None = _DEFAULT) -> Quote: ...
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
    ) -> Stream[Any]: ...
    def realtime_bars(
        self,
        contract: Contract,
        what: str = "TRADES",
        *,
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]: ...
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
    ) -> Stream[Bar | Gap]: ...
    def pnl_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PnL | Gap]: ...
    def position_pnl_updates(
        self,
        contract: Contract,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PositionPnL | Gap]: ...
    def account_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[AccountValue | Gap]: ...
    def position_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Position | Gap]: ...

    # -- history
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
    ) -> list[Bar]: ...
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
    ) -> list[Bar]: ...
    async def head_timestamp(
        self,
        contract: Contract,
        *,
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime: ...
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
    ) -> list[Tick]: ...
