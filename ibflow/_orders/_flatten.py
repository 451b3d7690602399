"""Flatten: the kill switch's second half. Cancel the working orders, then close the positions.

Orders come first so none of them can fill into a position while it is being closed; the
positions are read only after TWS no longer lists those orders as open. Each position is closed
by one order for its whole size: a market order, or a marketable limit order (at the bid to
sell, the ask to buy) where the contract's details do not list market orders.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable

from .._account import Account
from .._errors import InvalidRequest, NotOrderOwner, RequestTimeout
from .._log import get_logger
from .._records.account import Position
from .._records.contracts import Contract
from .._records.orders import LimitOrder, MarketOrder, Order, Side, fmt
from ._book import OrderBook
from ._cancels import Orders, cancel_all, cancel_order
from ._checks import Facts, market_price
from ._placing import place
from ._trade import Trade

__all__ = ["flatten"]

log = get_logger("orders")


async def flatten(
    orders: Orders, account: Account, book: OrderBook, symbols: object, timeout: object
) -> list[Trade]:
    """See :meth:`ibflow.Session.flatten`."""
    core = book.core
    wanted = _symbols(symbols)
    limit = core.limit(timeout)
    core.check_can_trade("flatten positions")
    core.require_ready()
    trades: list[Trade] = []
    try:
        async with asyncio.timeout(limit):
            if wanted is None:
                await cancel_all(orders, core, None)
            else:
                await _cancel_orders_of(orders, book, wanted)
            held = [
                p
                for p in await account.positions(timeout=None)
                if p.quantity and (wanted is None or p.contract.symbol.upper() in wanted)
            ]
            closing = [await _closing(book, p) for p in held]
            for contract, spec in closing:
                trade = await place(book, contract, spec, None)
                assert isinstance(trade, Trade)
                log.info("flatten: order %d closes %r", trade.order_id, trade)
                trades.append(trade)
            for trade in trades:
                await trade.wait_filled(timeout=None)
    except TimeoutError:
        sent = f"; {len(trades)} closing order(s) were sent, see session.trades()" if trades else ""
        raise RequestTimeout(f"flatten did not finish within {limit} s{sent}") from None
    return trades


def _symbols(symbols: object) -> frozenset[str] | None:
    if symbols is None:
        return None
    if isinstance(symbols, str) or not isinstance(symbols, Iterable):
        raise InvalidRequest(
            f"symbols must be a list of symbols such as ['AAPL'] (or None for every position), "
            f"got {symbols!r}"
        )
    names = list(symbols)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise InvalidRequest(
            f"symbols must be a non-empty list of symbols such as ['AAPL'], got {names!r}"
        )
    return frozenset(n.strip().upper() for n in names)


async def _cancel_orders_of(orders: Orders, book: OrderBook, wanted: frozenset[str]) -> None:
    """Cancel this client id's open orders on ``wanted``; another client id's is refused first
    (only the client id that placed an order may cancel it), before any cancel is sent."""
    core = book.core
    rows = [
        r
        for r in await orders.every_open_order()
        if not r.status.is_done and r.contract.symbol.upper() in wanted
    ]
    foreign = [r for r in rows if r.client_id != core.client_id]
    if foreign:
        owned = ", ".join(f"order {r.order_id} of client id {r.client_id}" for r in foreign)
        first = foreign[0]
        raise NotOrderOwner(
            f"refusing to flatten {', '.join(sorted(wanted))}: {owned} is open on it and only "
            "the client id that placed an order may cancel it. Nothing was sent. Cancel it from "
            "that client id, or flatten() without symbols (TWS's global cancel reaches every "
            "client id).",
            owner_client_id=first.client_id or 0,
            order_id=first.order_id or 0,
        )
    ids = sorted({r.order_id for r in rows if r.order_id is not None})
    await asyncio.gather(*(cancel_order(orders, core, i, None) for i in ids))


async def _closing(book: OrderBook, position: Position) -> tuple[Contract, Order]:
    """The order that closes ``position``: market where the contract takes market orders."""
    side = Side.SELL if position.quantity > 0 else Side.BUY
    quantity = abs(position.quantity)
    facts = await book.facts(position.contract)
    allowed = {t.replace(" ", "").upper() for t in facts.order_types}
    if not allowed or "MKT" in allowed:
        return facts.contract, MarketOrder(side, quantity, account=position.account)
    if "LMT" not in allowed:
        raise InvalidRequest(
            f"cannot close {fmt(position.quantity)} {facts.contract.display_name}: it takes "
            f"neither market nor limit orders ({', '.join(facts.order_types)}). Nothing more "
            "was sent."
        )
    quoted = await market_price(book.core, facts.contract, side, "price a closing limit order")
    price = _marketable(quoted, side, facts)
    return facts.contract, LimitOrder(side, quantity, price, account=position.account)


def _marketable(price: float, side: Side, facts: Facts) -> float:
    """``price`` on the contract's tick, rounded toward the other side of the market."""
    rule = facts.price_rule
    tick = rule.increment_at(price) if rule else facts.min_tick
    if not tick:
        return price
    steps = price / tick
    steps = math.floor(steps + 1e-9) if side is Side.SELL else math.ceil(steps - 1e-9)
    return round(steps * tick, 10)
