"""Adopting orders the session did not place: TWS's open orders become Trades.

A bot restarted under the same client id finds its earlier orders still working at TWS; with
``all_open_orders=True`` a session also sees every other client id's orders and those placed by
hand in TWS. Each such order becomes a :class:`~ibflow.Trade` in ``session.trades()``, fed by
TWS's reports like any other. Whether the session may change it is the Trade's ``owned``: TWS
lets only the client id an order belongs to modify or cancel it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .._errors import InvalidRequest
from .._ib._order_records import OpenOrderUpdate
from .._log import get_logger
from .._records.orders import Order, OrderSnapshot, OrderType, TimeInForce
from ._trade import Trade, TradeOwner

__all__ = ["adopt", "adoptable", "order_of", "rebind"]

log = get_logger("orders")


class OrderBook(TradeOwner, Protocol):
    """What adoption needs of the order book that files the trades."""

    def register(self, trade: Trade) -> None: ...

    def forget(self, trade: Trade) -> None: ...

    def find(
        self, client_id: int | None, order_id: int | None, perm_id: int | None
    ) -> Trade | None: ...


def adoptable(book: OrderBook, client_id: int) -> bool:
    """Whether the session adopts an open order of ``client_id``: always its own client id's
    (including orders placed by hand and bound to client id 0, on a client id 0 session);
    every other client id's with ``all_open_orders=True``."""
    core = book.core
    return client_id == core.client_id or core.all_open_orders


def adopt(book: OrderBook, update: OpenOrderUpdate) -> Trade | None:
    """A Trade for an open order the book does not know, filed in the book; ``None`` when the
    order is not the session's to follow, is done, or cannot be represented."""
    snapshot = update.snapshot
    if snapshot is None or not adoptable(book, update.client_id):
        return None
    if snapshot.status.is_done:
        return None
    spec = None if update.algo_or_conditions else order_of(snapshot, update.terms)
    if spec is None:
        log.info(
            "order %d (client id %d): a %s %s order (or one with an algo or conditions) is not "
            "one ibflow can re-send as it is, so it is not followed as a Trade; open_orders() "
            "still lists it",
            update.order_id,
            update.client_id,
            _text(snapshot.order_type),
            _text(snapshot.tif),
        )
        return None
    parent = None
    if snapshot.parent_id:
        parent = book.find(update.client_id, snapshot.parent_id, None)
    trade = Trade(
        book,
        snapshot.contract,
        spec,
        update.order_id,
        update.client_id,
        parent=parent,
        oca_group=snapshot.oca_group or "",
        oca_type=update.oca_type,
        adopted=True,
        parent_id=snapshot.parent_id,
    )
    trade._ack(update.perm_id)  # before filing: an unbound order is filed under its perm id
    book.register(trade)
    log.info(
        "order %d (client id %d, perm id %s): adopted from TWS's open orders%s",
        update.order_id,
        update.client_id,
        update.perm_id,
        "" if trade.owned else "; another client id owns it",
    )
    trade._on_status(
        snapshot.status,
        perm_id=update.perm_id,
        filled=snapshot.filled or None,
        avg=snapshot.avg_fill_price,
    )
    return trade


def rebind(book: OrderBook, trade: Trade, order_id: int) -> None:
    """An order placed by hand that client id 0 just bound: TWS now reports its (negative) id."""
    if trade.order_id != 0 or order_id == 0:
        return
    book.forget(trade)
    trade._order_id = order_id
    book.register(trade)
    log.info("order perm id %s: bound to client id 0 as order %d", trade.perm_id, order_id)


def _text(code: OrderType | TimeInForce | str) -> str:
    return code.value if isinstance(code, OrderType | TimeInForce) else code


def order_of(snapshot: OrderSnapshot, terms: Mapping[str, Any]) -> Order | None:
    """The order's terms as an ibflow Order; ``None`` for a type or time in force ibflow does
    not place (or a GTD order: TWS's open order does not say until when).

    A trailing stop's stop is left out: it is where the market moved it, and a modify that
    does not name a new one keeps it there.
    """
    if not isinstance(snapshot.order_type, OrderType) or not isinstance(snapshot.tif, TimeInForce):
        return None
    prices = {name: value for name, value in terms.items() if name in _PRICES and value is not None}
    try:
        return Order(
            side=snapshot.side,
            quantity=snapshot.quantity,
            order_type=snapshot.order_type,
            tif=snapshot.tif,
            outside_rth=snapshot.outside_rth,
            account=snapshot.account,
            order_ref=snapshot.order_ref,
            **prices,
        )
    except InvalidRequest:
        return None


_PRICES = frozenset(
    {
        "limit_price",
        "stop_price",
        "trigger_price",
        "trail_amount",
        "trail_percent",
        "limit_offset",
        "offset",
    }
)
