"""Builders for IB's other order types: trailing stops, on-close, if-touched, relative and
pegged-to-midpoint orders.

Each returns a validated :class:`Order` of its type; the contract-dependent checks (tick grid,
the order types the contract takes) run before sending, as for every order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .conditions import Condition
from .orders import Order, OrderType, Side, TimeInForce, _built

__all__ = [
    "LimitIfTouchedOrder",
    "LimitOnCloseOrder",
    "MarketIfTouchedOrder",
    "MarketOnCloseOrder",
    "PeggedToMidpointOrder",
    "RelativeOrder",
    "TrailingStopLimitOrder",
    "TrailingStopOrder",
]


def TrailingStopOrder(
    side: Side | str,
    quantity: float,
    *,
    trail_amount: float | None = None,
    trail_percent: float | None = None,
    trail_stop_price: float | None = None,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A stop that follows the market: ``TrailingStopOrder("SELL", 100, trail_amount=2.0)``.

    A sell's stop stays ``trail_amount`` (or ``trail_percent`` percent) below the highest price
    since it was placed, a buy's above the lowest; it triggers a market order when the price
    comes back to it. ``trail_stop_price`` sets the initial stop.

    Raises:
        InvalidRequest: not exactly one of ``trail_amount`` and ``trail_percent``, or another
            invalid argument.
    """
    return _built(
        OrderType.TRAILING_STOP, side, quantity, tif, good_till, outside_rth, account, order_ref,
        trail_amount=trail_amount, trail_percent=trail_percent, trail_stop_price=trail_stop_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def TrailingStopLimitOrder(
    side: Side | str,
    quantity: float,
    *,
    limit_offset: float,
    trail_amount: float | None = None,
    trail_percent: float | None = None,
    trail_stop_price: float | None = None,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A trailing stop that triggers a limit order ``limit_offset`` beyond its stop.

    ``TrailingStopLimitOrder("SELL", 100, trail_amount=2.0, limit_offset=0.10)``: when the
    stop is hit, sell at the stop minus 0.10 or better.

    Raises:
        InvalidRequest: not exactly one of ``trail_amount`` and ``trail_percent``, or another
            invalid argument.
    """
    return _built(
        OrderType.TRAILING_STOP_LIMIT, side, quantity, tif, good_till, outside_rth, account,
        order_ref,
        trail_amount=trail_amount, trail_percent=trail_percent, trail_stop_price=trail_stop_price,
        limit_offset=limit_offset,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def MarketOnCloseOrder(
    side: Side | str,
    quantity: float,
    *,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A market order for today's closing auction: it fills at the closing price.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.MARKET_ON_CLOSE, side, quantity, TimeInForce.DAY, None, False, account,
        order_ref,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def LimitOnCloseOrder(
    side: Side | str,
    quantity: float,
    limit_price: float,
    *,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A limit order for today's closing auction: it fills at the close if the closing price
    is at ``limit_price`` or better, else it is cancelled.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.LIMIT_ON_CLOSE, side, quantity, TimeInForce.DAY, None, False, account,
        order_ref,
        limit_price=limit_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def MarketIfTouchedOrder(
    side: Side | str,
    quantity: float,
    trigger_price: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A market order sent once the price touches ``trigger_price``.

    The mirror of a stop: a buy triggers at or *below* the touch price, a sell at or above.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.MARKET_IF_TOUCHED, side, quantity, tif, good_till, outside_rth, account,
        order_ref,
        trigger_price=trigger_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def LimitIfTouchedOrder(
    side: Side | str,
    quantity: float,
    trigger_price: float,
    limit_price: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A limit order at ``limit_price`` sent once the price touches ``trigger_price``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.LIMIT_IF_TOUCHED, side, quantity, tif, good_till, outside_rth, account,
        order_ref,
        trigger_price=trigger_price, limit_price=limit_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def RelativeOrder(
    side: Side | str,
    quantity: float,
    *,
    offset: float,
    cap: float | None = None,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A limit order pegged to the same side's best price, ``offset`` more aggressive.

    A buy works at the bid plus ``offset``, a sell at the ask minus it, re-priced as the quote
    moves; ``cap`` (the order's ``limit_price``) is the highest a buy (lowest a sell) may go.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.RELATIVE, side, quantity, tif, good_till, False, account, order_ref,
        offset=offset, limit_price=cap,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


def PeggedToMidpointOrder(
    side: Side | str,
    quantity: float,
    *,
    offset: float = 0.0,
    limit_price: float | None = None,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    account: str | None = None,
    order_ref: str | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A limit order that follows the midpoint of the bid and ask.

    A buy works at the midpoint minus ``offset``, a sell at the midpoint plus it; ``limit_price``
    caps a buy (floors a sell).

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.PEGGED_TO_MIDPOINT, side, quantity, tif, good_till, False, account, order_ref,
        offset=offset, limit_price=limit_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip
