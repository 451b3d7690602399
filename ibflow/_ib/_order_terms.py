"""The type-specific terms of an order across the ib_async border: trailing, touch, offset and
cap prices, algos and conditions, to ib_async's ``Order`` fields and back.

Where each term goes on the wire (IB's placeOrder at server version 178):

* trailing stop: ``auxPrice`` is the trailing amount, or ``trailingPercent`` the percentage;
  ``trailStopPrice`` the initial stop; a trailing stop-limit's limit offset is ``lmtPriceOffset``;
* if-touched: ``auxPrice`` is the touch price (``lmtPrice`` the limit of a LIT);
* relative and pegged-to-midpoint: ``auxPrice`` is the offset, ``lmtPrice`` the cap;
* an algo: ``algoStrategy`` and its tag/value ``algoParams``;
* conditions: each as its type code, ``a``/``o`` conjunction and its own fields, then
  ``conditionsIgnoreRth`` and ``conditionsCancelOrder``.
"""

from __future__ import annotations

from typing import Any

import ib_async

from .._records.conditions import (
    Condition,
    ExecutionCondition,
    MarginCondition,
    PercentChangeCondition,
    PriceCondition,
    TimeCondition,
    VolumeCondition,
)
from .._records.orders import Order, OrderType

__all__ = [
    "aux_price",
    "condition_to_ib",
    "put_terms",
    "refresh_terms",
    "reported_terms",
    "terms_from_ib",
]

_AUX_IS_TRAIL = frozenset({"TRAIL", "TRAIL LIMIT", "TRAILLIMIT"})
_AUX_IS_TOUCH = frozenset({"MIT", "LIT"})


def aux_price(spec: Order) -> float | None:
    """What ``auxPrice`` carries for ``spec``: its stop, trailing amount, touch price or offset."""
    kind = spec.order_type
    if kind in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT):
        return spec.trail_amount
    if kind in (OrderType.MARKET_IF_TOUCHED, OrderType.LIMIT_IF_TOUCHED):
        return spec.trigger_price
    if kind in (OrderType.RELATIVE, OrderType.PEGGED_TO_MIDPOINT):
        return spec.offset
    return spec.stop_price


def condition_to_ib(cond: Condition) -> ib_async.OrderCondition:
    """One ibflow condition as ib_async's condition object (which writes its own fields)."""
    conjunction = "a" if cond.conjunction == "and" else "o"
    if isinstance(cond, PriceCondition):
        return ib_async.PriceCondition(
            conjunction=conjunction,
            isMore=cond.is_more,
            price=cond.price,
            conId=cond.contract.con_id or 0,
            exch=cond.contract.exchange,
            triggerMethod=cond.trigger_method,
        )
    if isinstance(cond, TimeCondition):
        return ib_async.TimeCondition(
            conjunction=conjunction, isMore=cond.is_more, time=cond.wire_time
        )
    if isinstance(cond, MarginCondition):
        return ib_async.MarginCondition(
            conjunction=conjunction, isMore=cond.is_more, percent=cond.percent
        )
    if isinstance(cond, ExecutionCondition):
        return ib_async.ExecutionCondition(
            conjunction=conjunction,
            secType=cond.contract.sec_type.value,
            exch=cond.contract.exchange,
            symbol=cond.contract.symbol,
        )
    if isinstance(cond, VolumeCondition):
        return ib_async.VolumeCondition(
            conjunction=conjunction,
            isMore=cond.is_more,
            volume=cond.volume,
            conId=cond.contract.con_id or 0,
            exch=cond.contract.exchange,
        )
    if isinstance(cond, PercentChangeCondition):
        return ib_async.PercentChangeCondition(
            conjunction=conjunction,
            isMore=cond.is_more,
            changePercent=cond.change_percent,
            conId=cond.contract.con_id or 0,
            exch=cond.contract.exchange,
        )
    raise TypeError(f"not an order condition: {cond!r}")


def put_terms(order: ib_async.Order, spec: Order) -> None:
    """Write ``spec``'s trailing terms, algo and conditions onto a fresh ib_async order."""
    unset = ib_async.util.UNSET_DOUBLE
    if spec.trail_percent is not None:
        order.trailingPercent = spec.trail_percent
    if spec.trail_stop_price is not None:
        order.trailStopPrice = spec.trail_stop_price
    order.lmtPriceOffset = spec.limit_offset if spec.limit_offset is not None else unset
    if spec.algo is not None:
        order.algoStrategy = spec.algo.strategy
        order.algoParams = [ib_async.TagValue(tag, value) for tag, value in spec.algo.params]
    if spec.conditions:
        order.conditions = [condition_to_ib(cond) for cond in spec.conditions]
        order.conditionsCancelOrder = spec.conditions_cancel_order
        order.conditionsIgnoreRth = spec.conditions_ignore_rth


def refresh_terms(wrapper: ib_async.Wrapper, reported: ib_async.Order) -> None:
    """Copy the terms TWS moves by itself (a trailing stop's stop and limit offset) from an
    openOrder onto ib_async's record of the order, which keeps only its prices and size."""
    key = wrapper.orderKey(reported.clientId, reported.orderId, reported.permId)
    trade = wrapper.trades.get(key)
    if trade is None or trade.order is reported:
        return
    trade.order.trailStopPrice = reported.trailStopPrice
    trade.order.trailingPercent = reported.trailingPercent
    trade.order.lmtPriceOffset = reported.lmtPriceOffset


def terms_from_ib(order: ib_async.Order, number: Any) -> dict[str, Any]:
    """The type-specific fields of an order TWS reported, for :class:`OrderSnapshot`.

    ``number`` turns IB's values into floats, ``None`` for its "not set" spellings.
    """
    kind = (order.orderType or "").upper()
    aux = number(order.auxPrice)
    percent = number(order.trailingPercent)
    trailing = kind in _AUX_IS_TRAIL
    return {
        "trigger_price": aux if kind in _AUX_IS_TOUCH else None,
        "trail_amount": aux if trailing and percent is None else None,
        "trail_percent": percent if trailing else None,
        "trail_stop_price": number(order.trailStopPrice) if trailing else None,
        "algo_strategy": (order.algoStrategy or "").strip() or None,
    }


# The price terms of each order type as ibflow's Order names them, from TWS's openOrder fields.
_LIMIT = ("limit_price", "lmtPrice")
_STOP = ("stop_price", "auxPrice")
_TOUCH = ("trigger_price", "auxPrice")
_OFFSET = ("offset", "auxPrice")
_REPORTED: dict[str, tuple[tuple[str, str], ...]] = {
    "LMT": (_LIMIT,),
    "STP": (_STOP,),
    "STP LMT": (_LIMIT, _STOP),
    "LOC": (_LIMIT,),
    "MIT": (_TOUCH,),
    "LIT": (_TOUCH, _LIMIT),
    "REL": (_OFFSET, _LIMIT),
    "PEG MID": (_OFFSET, _LIMIT),
    "PEGMID": (_OFFSET, _LIMIT),
    "TRAIL LIMIT": (("limit_offset", "lmtPriceOffset"),),
    "TRAILLIMIT": (("limit_offset", "lmtPriceOffset"),),
}


def reported_terms(order: ib_async.Order, number: Any) -> dict[str, float | None]:
    """The price terms TWS reports for ``order``, under :class:`Order`'s names: only those its
    type uses (``None``: not set). A trailing stop's current stop is ``trail_stop_price``; a
    trailing stop-limit's limit price, which TWS derives from it, is left out."""
    kind = (order.orderType or "").upper()
    terms = {name: number(getattr(order, field)) for name, field in _REPORTED.get(kind, ())}
    if kind in ("REL", "PEG MID", "PEGMID") and not terms.get("limit_price"):
        terms["limit_price"] = None  # a cap of 0 is no cap
    if kind in _AUX_IS_TRAIL:
        percent = number(order.trailingPercent)
        terms["trail_amount"] = number(order.auxPrice) if percent is None else None
        terms["trail_percent"] = percent
        terms["trail_stop_price"] = number(order.trailStopPrice)
    return terms
