"""Order checks before anything is sent: the contract's tick and size grid, the safety rails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .._core import SessionCore
from .._errors import (
    InvalidRequest,
    SafetyError,
)
from .._ib import _orders as _wire
from .._log import get_logger
from .._records.contracts import Contract
from .._records.orders import (
    EPS,
    OFFSET_TERMS,
    PRICE_TERMS,
    Order,
    OrderType,
    Side,
    fmt,
)
from .._records.symbols import MarketRule

__all__ = [
    "Facts",
    "check_against_contract",
    "check_quantity_rail",
    "check_rails",
    "exec_key",
    "market_price",
]

log = get_logger("orders")


def exec_key(exec_id: str) -> tuple[str, int]:
    """IB's execution id and its correction number: ``"0000e0d5.6576fd36.01.02"`` → base, 2.

    A correction keeps the id and raises the last part; it replaces the execution it corrects.
    """
    head, dot, tail = exec_id.rpartition(".")
    if dot and head.count(".") >= 2 and tail.isdigit():
        return head, int(tail)
    return exec_id, 0


@dataclass(frozen=True, slots=True)
class Facts:
    """What order validation needs to know about a contract."""

    contract: Contract
    min_tick: float | None
    size_increment: float | None
    min_size: float | None
    order_types: tuple[str, ...] = ()
    price_rule: MarketRule | None = None  # the tick by price level, where IB has a rule


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _off_grid(value: float, step: float, what: str) -> tuple[Decimal, Decimal] | None:
    """``None`` when ``value`` is a multiple of ``step``, else the two nearest multiples.

    Raises:
        InvalidRequest: ``value`` is too far from the grid's scale to tell (never "on it").
    """
    try:
        v, s = _decimal(value), _decimal(step)
        if s <= 0:
            return None
        if v % s == 0:
            return None
        below = (v // s) * s
        return below.quantize(s), (below + s).quantize(s)
    except InvalidOperation:
        raise InvalidRequest(
            f"{what} {fmt(value)} cannot be checked against the step {fmt(step)}: it is out of "
            "any sensible range"
        ) from None


# How contract details spell the order types whose placeOrder code differs (TWS lists
# stop-limit as "STPLMT" and trailing stop-limit as "TRAILLMT").
_LISTED_AS = {"STP LMT": "STPLMT", "TRAIL LIMIT": "TRAILLMT", "PEG MID": "PEGMID"}


def _listed(order_type: str, allowed: set[str]) -> bool:
    return order_type.replace(" ", "") in allowed or _LISTED_AS.get(order_type) in allowed


def check_against_contract(spec: Order, facts: Facts) -> None:
    name = facts.contract.display_name
    allowed = {t.replace(" ", "").upper() for t in facts.order_types}
    if allowed and not _listed(spec.order_type.value, allowed):
        ours = [t.value for t in OrderType if _listed(t.value, allowed)]
        raise InvalidRequest(
            f"{name} does not take {spec.order_type.value} orders"
            + (f"; of ibflow's order types it takes {', '.join(ours)}" if ours else "")
        )
    rule = facts.price_rule
    if facts.min_tick or rule:
        for field_name in PRICE_TERMS:
            price = getattr(spec, field_name)
            if price is None:
                continue
            tick = rule.increment_at(price) if rule else facts.min_tick
            assert tick is not None
            near = _off_grid(price, tick, field_name)
            if near is not None:
                raise InvalidRequest(
                    f"{field_name} {fmt(price)} is not a multiple of {name}'s minimum tick "
                    f"{fmt(tick)}{' at this price' if tick != facts.min_tick else ''}; "
                    f"use {near[0]} or {near[1]}"
                )
    if facts.min_tick:
        # Distances (a trailing amount, an offset) move a price by whole ticks.
        for field_name in OFFSET_TERMS:
            amount = getattr(spec, field_name)
            if amount is None:
                continue
            near = _off_grid(amount, facts.min_tick, field_name)
            if near is not None:
                raise InvalidRequest(
                    f"{field_name} {fmt(amount)} is a price distance and must be a multiple of "
                    f"{name}'s minimum tick {fmt(facts.min_tick)}; use {near[0]} or {near[1]}"
                )
    step = facts.size_increment
    if step and _off_grid(spec.quantity, step, "quantity") is not None:
        raise InvalidRequest(
            f"quantity {fmt(spec.quantity)} is not a multiple of {name}'s size increment "
            f"{fmt(step)}"
        )
    if facts.min_size and spec.quantity < facts.min_size - EPS:
        raise InvalidRequest(
            f"quantity {fmt(spec.quantity)} is below {name}'s minimum size {fmt(facts.min_size)}"
        )


def check_quantity_rail(core: SessionCore, spec: Order) -> None:
    cap = core.max_order_quantity
    if cap is not None and spec.quantity > cap + EPS:
        raise SafetyError(
            f"refusing an order for {fmt(spec.quantity)}: this session's max_order_quantity is "
            f"{fmt(cap)}. Nothing was sent. Lower the quantity or raise the limit on the Session."
        )


async def check_rails(core: SessionCore, facts: Facts, legs: Sequence[Order]) -> None:
    """``max_order_quantity`` and ``max_order_notional``; may take a snapshot quote."""
    for leg in legs:
        check_quantity_rail(core, leg)
    cap = core.max_order_notional
    if cap is None:
        return
    multiplier = facts.contract.multiplier or 1.0
    for leg in legs:
        price = leg.price
        if price is None:
            price = await market_price(
                core,
                facts.contract,
                leg.side,
                "check max_order_notional for a market order (use a limit order)",
            )
        notional = abs(leg.quantity * price * multiplier)
        if notional > cap + EPS:
            raise SafetyError(
                f"refusing an order worth about {notional:,.2f} {facts.contract.currency} "
                f"({fmt(leg.quantity)} x {fmt(price)} x {fmt(multiplier)}): this session's "
                f"max_order_notional is {cap:,.2f}. Nothing was sent."
            )


async def market_price(core: SessionCore, contract: Contract, side: Side, purpose: str) -> float:
    """The price ``side`` trades at now (a snapshot quote: the ask to buy, the bid to sell).

    Raises:
        SafetyError: no quote at all; the message says what it was for (``purpose``).
    """
    adapter = core.adapter
    cancels: list[Callable[[int], None]] = []

    def start() -> tuple[int, Awaitable[_wire.QuoteSnapshot]]:
        req_id, answer, cancel = adapter.orders.start_snapshot_quote(contract)
        cancels.append(cancel)
        return req_id, answer

    def cancel(req_id: int) -> None:
        for c in cancels:
            c(req_id)

    quote = await core.request("market price snapshot", start, timeout=None, cancel=cancel)
    price = quote.ask if side is Side.BUY else quote.bid
    price = price or quote.last or quote.close
    if price is None:
        raise SafetyError(
            f"cannot {purpose}: no quote for {contract.display_name}. Nothing was sent."
        )
    return price


# -- the Session methods --------------------------------------------------------------------------
