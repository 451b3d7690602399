"""What ``Trade.modify`` may change in each order type, and when TWS has confirmed a change.

A modify re-sends the whole order under its id with some terms changed. Which terms a type
takes is the builders' business: the keywords are the builders' parameter names, and the new
order is checked exactly as a new one would be (the ``Order`` checks here, the contract's tick
grid and the safety rails before sending).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from .._errors import InvalidRequest
from .._records.orders import EPS, Order, OrderType, Side, TimeInForce

__all__ = ["FOLLOWED", "changed_terms", "confirmed", "modifiable", "modified", "same_value"]

_AT_CLOSE = (OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE)
_TRAIL = ("trail_amount", "trail_percent", "trail_stop_price")
_BY_TYPE: dict[OrderType, tuple[str, ...]] = {
    OrderType.MARKET: (),
    OrderType.LIMIT: ("limit_price",),
    OrderType.STOP: ("stop_price",),
    OrderType.STOP_LIMIT: ("limit_price", "stop_price"),
    OrderType.TRAILING_STOP: _TRAIL,
    OrderType.TRAILING_STOP_LIMIT: (*_TRAIL, "limit_offset"),
    OrderType.MARKET_ON_CLOSE: (),
    OrderType.LIMIT_ON_CLOSE: ("limit_price",),
    OrderType.MARKET_IF_TOUCHED: ("trigger_price",),
    OrderType.LIMIT_IF_TOUCHED: ("trigger_price", "limit_price"),
    OrderType.RELATIVE: ("offset", "cap"),
    OrderType.PEGGED_TO_MIDPOINT: ("offset", "limit_price"),
}

# The Order fields a modify can change (a relative order's cap is its limit_price).
_FIELDS = (
    "quantity",
    "limit_price",
    "stop_price",
    "trigger_price",
    "trail_amount",
    "trail_percent",
    "trail_stop_price",
    "limit_offset",
    "offset",
    "tif",
    "good_till",
)
# Those the Trade's order follows from TWS's reports (a trailing stop's stop moves by itself).
FOLLOWED = frozenset(_FIELDS) - {"trail_stop_price"}


def modifiable(order_type: OrderType) -> tuple[str, ...]:
    """The ``modify()`` keywords an order of ``order_type`` takes (an on-close order works
    in today's closing auction: its time in force stays ``DAY``)."""
    timing = () if order_type in _AT_CLOSE else ("tif", "good_till")
    return ("quantity", *_BY_TYPE[order_type], *timing)


def modified(current: Order, asked: Mapping[str, Any]) -> Order:
    """``current`` with the terms ``asked`` (``modify()``'s keywords that were given).

    Raises:
        InvalidRequest: nothing asked, a term the order type does not take (the message lists
            those it does), or terms the order type's builder would refuse.
    """
    kind = current.order_type
    fits = modifiable(kind)
    if not asked:
        raise InvalidRequest(f"modify() needs {_list(fits)}: the terms a {kind.value} order takes")
    unfit = [name for name in asked if name not in fits]
    if unfit:
        raise InvalidRequest(
            f"a {kind.value} order takes no {_list(unfit, 'and')}; a modify of it takes "
            f"{_list(fits)} (to change the order type, cancel it and place a new order)"
        )
    changes = {("limit_price" if name == "cap" else name): value for name, value in asked.items()}
    # A trailing distance is an amount or a percentage: giving one replaces the other.
    if "trail_amount" in changes and "trail_percent" not in changes:
        changes["trail_percent"] = None
    elif "trail_percent" in changes and "trail_amount" not in changes:
        changes["trail_amount"] = None
    if "tif" in changes and "good_till" not in changes and str(changes["tif"]).upper() != "GTD":
        changes["good_till"] = None
    return replace(current, **changes)


def changed_terms(before: Order, after: Order) -> tuple[str, ...]:
    """The modifiable fields whose values differ between two versions of an order."""
    return tuple(f for f in _FIELDS if not same_value(getattr(before, f), getattr(after, f)))


def confirmed(reported: Order, stop: float | None, wanted: Order, fields: tuple[str, ...]) -> bool:
    """Whether TWS's last report (the trade's order ``reported``, the trailing stop ``stop``)
    shows the ``fields`` of ``wanted``.

    A new trailing stop counts as confirmed once TWS reports it there or already ratcheted
    beyond it (higher for a sell, lower for a buy): the market may move it at once.
    """
    for name in fields:
        target = getattr(wanted, name)
        if name == "trail_stop_price":
            if stop is None or target is None:
                return False
            beyond = stop >= target - EPS if wanted.side is Side.SELL else stop <= target + EPS
            if not beyond:
                return False
        elif not same_value(getattr(reported, name), target):
            return False
    return True


def same_value(a: Any, b: Any) -> bool:
    """Equal as order terms: prices within a hair, times within a second."""
    if a is None or b is None:
        return a is b
    if isinstance(a, datetime) and isinstance(b, datetime):
        return abs((a - b).total_seconds()) < 1  # TWS keeps whole seconds
    if isinstance(a, TimeInForce | str) or isinstance(b, TimeInForce | str):
        return bool(a == b)
    return abs(float(a) - float(b)) <= EPS


def _list(names: list[str] | tuple[str, ...], last: str = "or") -> str:
    """``a=, b= or c=``."""
    words = [f"{name}=" for name in names]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"
