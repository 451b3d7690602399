"""Placing: legs of an order, ids, back-to-back sends, waiting for the acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from .._core import SessionCore
from .._errors import (
    ConnectionLost,
    InvalidRequest,
    OrderRejected,
    RequestTimeout,
)
from .._log import get_logger, mask_account
from .._records.contracts import Contract, SecType
from .._records.orders import (
    Bracket,
    OcaGroup,
    Order,
    OrderStatus,
)
from ._book import OrderBook
from ._checks import check_against_contract, check_quantity_rail, check_rails
from ._groups import BracketTrade, TradeGroup
from ._journal import is_journal_ref, journal_ref
from ._keys import Keys, check_key, keyed, leg_keys
from ._trade import Trade

__all__ = ["check_account", "locked", "place"]

log = get_logger("orders")


@dataclass(slots=True)
class _Leg:
    spec: Order
    parent: int | None = None
    transmit: bool = True
    oca_group: str = ""
    oca_type: int = 0


def check_account(core: SessionCore, spec: Order) -> None:
    if spec.account is not None and spec.account not in core.accounts:
        known = ", ".join(mask_account(a) for a in core.accounts)
        raise InvalidRequest(
            f"account {mask_account(spec.account)} is not managed by this login ({known})"
        )


def _send_legs(
    core: SessionCore,
    book: OrderBook,
    contract: Contract,
    legs: list[_Leg],
    keys: Keys | None,
    names: list[str | None],
) -> list[Trade]:
    """Allocate ids and send every leg back to back, with no await in between.

    Nothing can interrupt a bracket half-sent: cancellation only lands at an ``await``. With
    a journal, every leg's intent is committed before the first frame leaves.
    """
    adapter = core.adapter
    ids = [_fresh_id(core, book) for _ in legs]
    trades: list[Trade] = []
    for leg, order_id in zip(legs, ids, strict=True):
        parent = trades[leg.parent] if leg.parent is not None else None
        trade = Trade(
            book,
            contract,
            leg.spec,
            order_id,
            core.client_id,
            parent=parent,
            oca_group=leg.oca_group,
            oca_type=leg.oca_type,
        )
        book.register(trade)
        trades.append(trade)
    if keys is not None:
        keys.before_send(trades, names)
    for leg, trade in zip(legs, trades, strict=True):
        adapter.orders.send_order(
            contract,
            leg.spec,
            trade.order_id,
            parent_id=trade.parent_id or 0,
            transmit=leg.transmit,
            oca_group=leg.oca_group,
            oca_type=leg.oca_type,
        )
        log.info("order %d sent: %r", trade.order_id, trade)
    return trades


def _fresh_id(core: SessionCore, book: OrderBook) -> int:
    """An order id this session never used (the adapter never repeats one; this makes sure)."""
    while True:
        order_id = core.adapter.orders.next_order_id()
        if not book.taken(core.client_id, order_id):
            return order_id


async def _wait_acknowledged(book: OrderBook, trades: list[Trade]) -> None:
    """Until TWS has acknowledged every leg; a leg's rejection raises it."""

    def ready() -> bool:
        for trade in trades:
            if trade._rejected_first and trade.error is not None:
                raise trade.error
            if trade.status is OrderStatus.LOST:
                raise ConnectionLost(
                    f"order {trade.order_id} was lost in transit: {trade.lost_reason} "
                    "(its Trade, status Lost, is in session.trades())"
                )
        if all(t._acked for t in trades):
            return True
        book.raise_if_closed()
        return False

    while not ready():
        await book.signal.changed()


def _abandon(core: SessionCore, book: OrderBook, trades: list[Trade], why: str) -> None:
    """Cancel orders whose caller will never get a handle (sent once; never re-sent)."""
    for trade in trades:
        if trade.is_done:
            continue
        if core.adapter.is_connected:
            log.warning("order %d: sending a cancel because %s", trade.order_id, why)
            with contextlib.suppress(Exception):
                core.adapter.orders.send_cancel(trade.order_id)
        else:
            log.warning(
                "order %d: %s while the link is down; it is cancelled on reconnect",
                trade.order_id,
                why,
            )
            book.orphans.add(trade)


async def place(
    book: OrderBook,
    contract: Contract,
    order: object,
    timeout: object,
    key: object = None,
    keys: Keys | None = None,
) -> Trade | BracketTrade | TradeGroup:
    """Validate, send every leg, and wait until TWS acknowledged them; see ``Session.place``.

    With a ``key``, an order already known under it is returned instead (nothing is sent).
    """
    core = book.core
    limit = core.limit(timeout)
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"contract must be an ibflow Contract (Stock(...), Future(...)…), got {contract!r}"
        )
    legs = _legs_of(order)
    names: list[str | None] = [None] * len(legs)
    if key is not None:
        name = check_key(key)
        names = list(leg_keys(order, name))
        for leg, leg_key in zip(legs, names, strict=True):
            assert leg_key is not None
            leg.spec = keyed(leg.spec, leg_key)
    elif keys is not None and keys.journal is not None:
        _reference(legs)
    core.check_can_trade("place an order")
    core.require_ready()
    if key is None or keys is None:
        return await _place(book, contract, order, legs, limit, keys, names)
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    try:
        async with asyncio.timeout_at(deadline):
            await keys.acquire(names[0] or "")
    except TimeoutError:
        raise RequestTimeout(
            f"place: another place() with key {key!r} held it for {limit} s; nothing was sent"
        ) from None
    try:
        try:
            async with asyncio.timeout_at(deadline):
                found = await keys.resolve([n or "" for n in names])
        except TimeoutError:
            raise RequestTimeout(
                f"place: looking up key {key!r} at TWS took over {limit} s; nothing was sent"
            ) from None
        if found is not None:
            log.info("key %r is known (order %d): nothing sent", key, found[0].order_id)
            return _wrapped(order, found)
        left = None if deadline is None else max(deadline - loop.time(), 0.001)
        return await _place(book, contract, order, legs, left, keys, names)
    finally:
        keys.release(names[0] or "")


def _reference(legs: list[_Leg]) -> None:
    """Give each keyless leg without an ``order_ref`` of its own a fresh journal reference.

    One copied from another trade's order (``place(contract, trade.order)``) is ibflow's, not
    the user's: it is replaced too, so no two intents share one.
    """
    for leg in legs:
        ref = leg.spec.order_ref
        if ref is None or is_journal_ref(ref):
            leg.spec = replace(leg.spec, order_ref=journal_ref())


def _wrapped(order: object, trades: list[Trade]) -> Trade | BracketTrade | TradeGroup:
    if isinstance(order, Bracket):
        return BracketTrade(trades)
    if isinstance(order, OcaGroup):
        return TradeGroup(trades)
    return trades[0]


async def _place(
    book: OrderBook,
    contract: Contract,
    order: object,
    legs: list[_Leg],
    limit: float | None,
    keys: Keys | None,
    names: list[str | None],
) -> Trade | BracketTrade | TradeGroup:
    core = book.core
    if contract.sec_type is SecType.INDEX:
        raise InvalidRequest(f"{contract.display_name} is an index; indexes are not tradable")
    for leg in legs:
        check_account(core, leg.spec)
        check_quantity_rail(core, leg.spec)
    trades: list[Trade] = []
    sent = False
    try:
        async with asyncio.timeout(limit):
            facts = await book.facts(contract)
            for leg in legs:
                check_against_contract(leg.spec, facts)
            # A bracket's exits only ever close what its entry opened: the entry is the exposure.
            valued = [legs[0].spec] if isinstance(order, Bracket) else [lg.spec for lg in legs]
            await check_rails(core, facts, valued)
            core.require_ready()
            trades = _send_legs(core, book, facts.contract, legs, keys, names)
            sent = True
            await _wait_acknowledged(book, trades)
    except TimeoutError:
        if sent:
            _abandon(core, book, trades, "place() timed out before TWS acknowledged it")
        raise RequestTimeout(
            f"place: TWS did not acknowledge within {limit} s"
            + ("; a cancel was sent for the order" if sent else "; nothing was sent")
        ) from None
    except asyncio.CancelledError:
        if sent:
            _abandon(core, book, trades, "place() was cancelled before TWS acknowledged it")
        raise
    except ConnectionLost:
        if any(t.status is OrderStatus.LOST for t in trades):
            _abandon(core, book, trades, "another order of its group was lost in transit")
        raise
    except OrderRejected as exc:
        rejected = [t for t in trades if t._rejected_first]
        _abandon(
            core,
            book,
            [t for t in trades if t not in rejected],
            "another order of its group was rejected",
        )
        for trade in rejected:
            book.set_aside(trade)
            if trade.error is exc:
                exc.trade = trade
        raise
    return _wrapped(order, trades)


def _legs_of(order: object) -> list[_Leg]:
    if isinstance(order, Order):
        return [_Leg(order)]
    if isinstance(order, Bracket):
        return [
            _Leg(order.parent, transmit=False),
            _Leg(order.take_profit, parent=0, transmit=False),
            _Leg(order.stop_loss, parent=0, transmit=True),
        ]
    if isinstance(order, OcaGroup):
        code = order.type.code
        return [_Leg(spec, oca_group=order.group, oca_type=code) for spec in order.orders]
    raise InvalidRequest(
        "order must be an ibflow Order (MarketOrder, LimitOrder, StopOrder, StopLimitOrder), "
        f"a bracket(...) or an oca(...) group; got {order!r}"
    )


@contextlib.asynccontextmanager
async def locked(lock: asyncio.Lock) -> AsyncIterator[None]:
    """Hold ``lock``: ib_async files some answers under one fixed key, one request at a time."""
    async with lock:
        yield
