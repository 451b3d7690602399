"""The orders feature: what Session offers for placing and tracking orders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

from .._account import Account, Contracts
from .._core import SessionCore
from .._errors import (
    InvalidRequest,
    RequestTimeout,
)
from .._log import get_logger
from .._records.contracts import Contract
from .._records.orders import (
    Bracket,
    Fill,
    OcaGroup,
    Order,
    OrderEvent,
    OrderPreview,
    OrderSnapshot,
    OrderStatus,
)
from .._stream import Stream, StreamWriter
from .._timeouts import SESSION_DEFAULT
from ._book import OrderBook
from ._cancels import cancel_all, cancel_order
from ._checks import check_against_contract
from ._flatten import flatten
from ._groups import BracketTrade, TradeGroup
from ._placing import check_account, locked, place
from ._trade import Trade

__all__ = ["Orders"]

log = get_logger("orders")

_DEFAULT = SESSION_DEFAULT


class Orders:
    """Placing and tracking orders; the order book is made (and its tap installed) on first use."""

    def __init__(self, core: SessionCore, contracts: Contracts, account: Account) -> None:
        self._core = core
        self._contracts = contracts
        self._account = account
        self._book: OrderBook | None = None

    def book(self) -> OrderBook:
        """The session's order book, made on first use."""
        if self._book is None:
            self._book = OrderBook(self._core, self._contracts)
        return self._book

    async def place(
        self,
        contract: Contract,
        order: Order | Bracket | OcaGroup,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Trade | BracketTrade | TradeGroup:
        """See :meth:`ibflow.Session.place`."""
        return await place(self.book(), contract, order, timeout)

    def trades(self) -> tuple[Trade, ...]:
        """See :meth:`ibflow.Session.trades`."""
        return tuple(self.book().trades.values())

    async def open_orders(self, *, timeout: float | None = _DEFAULT) -> list[OrderSnapshot]:
        """See :meth:`ibflow.Session.open_orders`."""
        return await self._read_open(self._core.all_open_orders, timeout)

    async def every_open_order(self) -> list[OrderSnapshot]:
        """Every client id's open orders (``reqAllOpenOrders``), whatever ``all_open_orders``
        says: what a global cancel reaches. The caller's deadline bounds it."""
        return await self._read_open(True, None)

    async def _read_open(self, all_clients: bool, timeout: object) -> list[OrderSnapshot]:
        core = self._core
        limit = core.limit(timeout)
        core.require_ready()
        book = self.book()
        adapter = core.adapter
        try:
            async with asyncio.timeout(limit):
                async with locked(book.open_lock):
                    rows: list[OrderSnapshot] = await core.request(
                        "open orders",
                        lambda: adapter.orders.start_open_orders(all_clients),
                        timeout=None,
                    )
                if all_clients and _left(book, rows):
                    # TWS tells this client id nothing when another's order ends: its completed
                    # orders bring those Trades to their end (through the tap, by perm id).
                    await self.completed_orders(timeout=None)
        except TimeoutError:
            raise RequestTimeout(f"open orders: no answer within {limit} s") from None
        return rows

    async def cancel_order(self, order_id: int, *, timeout: float | None = _DEFAULT) -> OrderStatus:
        """See :meth:`ibflow.Session.cancel_order`."""
        return await cancel_order(self, self._core, order_id, timeout)

    async def cancel_all(self, *, timeout: float | None = _DEFAULT) -> list[OrderSnapshot]:
        """See :meth:`ibflow.Session.cancel_all`."""
        return await cancel_all(self, self._core, timeout)

    async def flatten(
        self, *, symbols: Iterable[str] | None = None, timeout: float | None = _DEFAULT
    ) -> list[Trade]:
        """See :meth:`ibflow.Session.flatten`."""
        return await flatten(self, self._account, self.book(), symbols, timeout)

    async def completed_orders(
        self, *, api_only: bool = False, timeout: float | None = _DEFAULT
    ) -> list[OrderSnapshot]:
        """See :meth:`ibflow.Session.completed_orders`."""
        core = self._core
        if not isinstance(api_only, bool):
            raise InvalidRequest(f"api_only must be True or False, got {api_only!r}")
        limit = core.limit(timeout)
        core.require_ready()
        book = self.book()
        adapter = core.adapter
        try:
            async with asyncio.timeout(limit), locked(book.completed_lock):
                rows: list[OrderSnapshot] = await core.request(
                    "completed orders",
                    lambda: adapter.orders.start_completed_orders(book.completed, api_only),
                    timeout=None,
                )
        except TimeoutError:
            raise RequestTimeout(f"completed orders: no answer within {limit} s") from None
        return rows

    async def fills(
        self, since: datetime | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Fill]:
        """See :meth:`ibflow.Session.fills`."""
        core = self._core
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise InvalidRequest(
                f"since must be an aware datetime (with a time zone), got {since!r}"
            )
        limit = core.limit(timeout)
        core.require_ready()
        book = self.book()
        adapter = core.adapter
        rows: list[Fill] = await core.request(
            "executions", lambda: adapter.orders.start_fills(since), timeout=limit
        )
        # IB stamps executions to the second; compare at that precision.
        floor = since.replace(microsecond=0) if since is not None else None
        return [book.with_commission(f) for f in rows if floor is None or f.time >= floor]

    async def what_if(
        self, contract: Contract, order: Order, *, timeout: float | None = _DEFAULT
    ) -> OrderPreview:
        """See :meth:`ibflow.Session.what_if`."""
        core = self._core
        limit = core.limit(timeout)
        if not isinstance(contract, Contract):
            raise InvalidRequest(f"contract must be an ibflow Contract, got {contract!r}")
        if not isinstance(order, Order):
            raise InvalidRequest(
                "what_if() previews one Order (MarketOrder, LimitOrder…); preview the orders of "
                f"a bracket or OCA group one by one, got {order!r}"
            )
        core.require_ready()
        check_account(core, order)
        book = self.book()
        adapter = core.adapter
        try:
            async with asyncio.timeout(limit):
                facts = await book.facts(contract)
                check_against_contract(order, facts)
                preview: OrderPreview = await core.request(
                    "what-if order",
                    lambda: adapter.orders.start_what_if(facts.contract, order),
                    timeout=None,
                )
        except TimeoutError:
            raise RequestTimeout(f"what_if: no answer within {limit} s") from None
        return preview

    def order_events(self, *, buffer: int = 1024) -> Stream[OrderEvent]:
        """See :meth:`ibflow.Session.order_events`."""
        book = self.book()
        writer: StreamWriter[OrderEvent] = StreamWriter(
            name="order events",
            buffer=buffer,
            overflow="error",
            on_close=lambda: book.event_streams.discard(writer),
        )
        book.attach(writer, book.event_streams)
        return writer.stream

    def fills_stream(self, *, buffer: int = 1024) -> Stream[Fill]:
        """See :meth:`ibflow.Session.fills_stream`."""
        book = self.book()
        writer: StreamWriter[Fill] = StreamWriter(
            name="fills",
            buffer=buffer,
            overflow="error",
            on_close=lambda: book.fill_streams.discard(writer),
        )
        book.attach(writer, book.fill_streams)
        return writer.stream


def _left(book: OrderBook, rows: list[OrderSnapshot]) -> bool:
    """Whether a live Trade of another client id is missing from a read of every open order."""
    listed = {r.perm_id for r in rows}
    return any(not t.owned and t.perm_id not in listed for t in book.live())
