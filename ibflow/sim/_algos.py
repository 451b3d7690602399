"""IB's algos in the simulated TWS: their parameters as TWS checks them, and how they fill.

An algo rides on a MKT or LMT order (``algoStrategy`` and ``algoParams``) and never fills
beyond the order's limit.

* ``Adaptive`` (stocks, futures, options) fills at once like a marketable limit order, at a
  price set by ``adaptivePriority``: Urgent at the far side of the quote, Normal at the
  midpoint rounded towards the far side, Patient at the midpoint rounded towards the near side.
* ``Twap``, ``Vwap`` and ``ArrivalPx`` (stocks) work through their window, from ``startTime``
  (default: when the order arrives) to ``endTime`` (default: the session close): on each quote
  they fill, at the far side, the part of the order the elapsed share of the window stands for
  (the simulated volume is even through the day, so VWAP follows time too). What a limit keeps
  from filling by the end is cancelled then, unless ``allowPastEndTime`` is 1.

Times are ``hh:mm:ss [zone]`` (that time on the day the order came, in the zone or the
contract's) or ``yyyymmdd hh:mm:ss [zone]`` / ``yyyymmdd-hh:mm:ss [zone]`` (no zone: UTC).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from ._ledger import EPS
from ._model import Instrument, QuoteState, SimError, SimOrder
from ._order_rules import ceil_tick, floor_tick, parse_ib_time
from ._place_order import PlaceOrderRequest

__all__ = ["adaptive_price", "check_algo", "is_scheduled", "scheduled"]

_ANY = None
_FLAG = frozenset({"0", "1"})
_TIMES = {"startTime": _ANY, "endTime": _ANY, "allowPastEndTime": _FLAG, "monetaryValue": _ANY}
# Strategy → (order types, security types, parameter → allowed values or None for any).
_ALGOS: dict[str, tuple[frozenset[str], frozenset[str], dict[str, frozenset[str] | None]]] = {
    "Adaptive": (
        frozenset({"MKT", "LMT"}),
        frozenset({"STK", "FUT", "OPT"}),
        {"adaptivePriority": frozenset({"Urgent", "Normal", "Patient"})},
    ),
    "Vwap": (
        frozenset({"MKT", "LMT"}),
        frozenset({"STK"}),
        {
            **_TIMES,
            "maxPctVol": _ANY,
            "noTakeLiq": _FLAG,
            "speedUp": _FLAG,
        },
    ),
    "Twap": (
        frozenset({"MKT", "LMT"}),
        frozenset({"STK"}),
        {
            **_TIMES,
            "strategyType": frozenset(
                {"Marketable", "Matching Midpoint", "Matching Same Side", "Matching Last"}
            ),
        },
    ),
    "ArrivalPx": (
        frozenset({"MKT", "LMT"}),
        frozenset({"STK"}),
        {
            **_TIMES,
            "maxPctVol": _ANY,
            "riskAversion": frozenset({"Get Done", "Aggressive", "Neutral", "Passive"}),
            "forceCompletion": _FLAG,
        },
    ),
}
_SCHEDULED = frozenset({"Twap", "Vwap", "ArrivalPx"})
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s+(\S+))?$")
_DATED = re.compile(r"^(\d{8})[- ](\d{1,2}:\d{2}:\d{2})(?:\s+(\S+))?$")


def _invalid(detail: str) -> SimError:
    return SimError(441, f"Algo attributes validation failed: {detail}")


def check_algo(req: PlaceOrderRequest, inst: Instrument) -> None:
    """What TWS refuses in an order's algo: unknown strategy or parameter, a bad value.

    Raises:
        SimError: the rejection TWS sends.
    """
    spec = _ALGOS.get(req.algo_strategy)
    if spec is None:
        raise SimError(439, "Order processing failed. Algorithm definition not found.")
    order_types, sec_types, params = spec
    if req.order_type not in order_types or inst.sec_type not in sec_types:
        raise SimError(442, "Specified algorithm is not allowed for this order.")
    for tag, value in req.algo_params:
        if tag not in params:
            raise SimError(443, f"Order processing failed. Unknown algo attribute: {tag}")
        allowed = params[tag]
        if allowed is not None and value not in allowed:
            choices = ", ".join(sorted(allowed))
            raise _invalid(f"{tag} must be one of {choices}, not {value!r}")
        if tag == "maxPctVol" and not _fraction(value):
            raise _invalid(f"maxPctVol must be from 0.01 to 0.5, not {value!r}")
        if tag == "monetaryValue" and value and not _number(value):
            raise _invalid(f"monetaryValue must be a number, not {value!r}")
        if tag in ("startTime", "endTime") and value and _time(value, inst, 0.0) is None:
            raise _invalid(f"{tag} {value!r} is not a time like '09:30:00 US/Eastern'")


def _fraction(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return 0.01 - EPS <= value <= 0.5 + EPS


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _time(text: str, inst: Instrument, day_of: float) -> float | None:
    """Epoch seconds of an algo time; a time of day falls on the day of ``day_of``."""
    dated = _DATED.match(text.strip())
    if dated is not None:
        day, clock, zone = dated.groups()
        when = parse_ib_time(f"{day} {clock} {zone or 'UTC'}")
        return None if when is None else when.timestamp()
    match = _TIME_OF_DAY.match(text.strip())
    if match is None:
        return None
    hour, minute, second, zone = match.groups()
    try:
        tz = ZoneInfo(zone or inst.time_zone)
    except (KeyError, ValueError):
        return None
    if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        return None
    day = datetime.fromtimestamp(day_of, tz)
    return day.replace(hour=int(hour), minute=int(minute), second=int(second or 0)).timestamp()


def adaptive_price(order: SimOrder, q: QuoteState, far: float) -> float:
    """Where an Adaptive order fills now, by its priority (``far``: the quote's far side)."""
    buy = order.action == "BUY"
    priority = dict(order.algo_params).get("adaptivePriority", "Normal")
    if priority == "Urgent" or q.bid <= 0 or q.ask <= 0:
        return far
    tick = order.instrument.min_tick
    mid = (q.bid + q.ask) / 2
    up = buy == (priority == "Normal")  # towards the far side for Normal, else the near
    price = ceil_tick(mid, tick) if up else floor_tick(mid, tick)
    return min(price, far) if buy else max(price, far)


def is_scheduled(order: SimOrder) -> bool:
    """Whether ``order`` is worked through a time window (TWAP, VWAP, arrival price)."""
    return order.algo_strategy in _SCHEDULED


def scheduled(
    order: SimOrder, *, now: float, placed_at: float, close_at: float
) -> tuple[float, bool]:
    """``(quantity due now, window over)`` of a scheduled algo order.

    The quantity due is what the elapsed share of the window stands for, less what has filled,
    on the contract's size increment.
    """
    params = dict(order.algo_params)
    inst = order.instrument
    start = _time(params.get("startTime", ""), inst, placed_at) or placed_at
    end = _time(params.get("endTime", ""), inst, placed_at) or close_at
    start = max(start, placed_at)
    if now >= end or end <= start:
        share = 1.0
    else:
        share = max(now - start, 0.0) / (end - start)
    step = inst.size_increment if inst.size_increment > 0 else 1.0
    target = math.floor(order.total_quantity * share / step + 1e-9) * step
    due = max(min(target, order.total_quantity) - order.filled, 0.0)
    over = now >= end and params.get("allowPastEndTime", "0") != "1"
    return due, over
