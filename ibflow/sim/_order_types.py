"""IB's order types and algos as the simulated TWS checks and works them against its market.

Pure functions over a parsed placeOrder and the live order; the broker calls
:func:`check_order_type` before accepting an order and :func:`advance` on every quote move.

How each type works here (prices are the instrument's quote; "reference" is the price the
order's trigger method names: by default the last trade, or the midpoint where nothing trades):

* ``TRAIL`` / ``TRAIL LIMIT``: the trailing amount is ``auxPrice`` (or ``trailingPercent`` of
  the reference). The stop starts at ``trailStopPrice`` or one trailing amount from the
  reference, and ratchets on the tick grid as the reference moves in the order's favour (up for
  a sell, down for a buy), never back; each move is echoed in openOrder. When the reference
  touches the stop, a ``TRAIL`` works as a market order and a ``TRAIL LIMIT`` as a limit order
  at the stop less (sell) or plus (buy) ``lmtPriceOffset``. Held (``PreSubmitted``) until then.
  A modification that changes the trailing distance without a ``trailStopPrice`` starts the
  stop again one new distance from the reference; a new ``lmtPriceOffset`` moves the limit.
* ``MIT`` / ``LIT``: wait (``PreSubmitted``) until the reference touches ``auxPrice`` from the
  order's favourable side (at or below it for a buy, at or above for a sell), then work as a
  market order, or a limit order at ``lmtPrice``.
* ``MOC`` / ``LOC``: rest (``Submitted``) until the end of the regular session that follows the
  order, then fill whole at the closing price (the reference then); a ``LOC`` whose limit the
  close does not reach is cancelled at the close. MKT and LMT orders with TIF ``OPG`` do the
  same at the next start of the regular session (market and limit on open). A stock's closing
  auction has cut-offs (IB's MOC page): a new on-close order must come 10 minutes before the
  close (NYSE markets and the rest, 15:50 ET), 5 for a Nasdaq listing (15:55 ET), or it is
  rejected (201); from 10 minutes before the close it can no longer be cancelled (161) or
  changed (201). One placed after the close waits for the next session's close.
* ``REL``: works at the bid (buy) or ask (sell) moved towards the market by ``auxPrice`` (or
  ``percentOffset`` of it), never beyond a non-zero ``lmtPrice`` cap; re-priced on every quote.
* ``PEG MID``: works at the midpoint less (buy) or plus (sell) ``auxPrice``, or the IBKRATS
  ``midOffsetAtWhole``/``midOffsetAtHalf``, capped by ``lmtPrice``; re-priced on every quote.
  Pegged orders fill when the far side of the book reaches their working price, or at their
  price when a trade prints through it (there is no hidden liquidity at the midpoint).
* Algos (``algoStrategy``) on MKT or LMT orders: see :mod:`._algos`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ._algos import adaptive_price, check_algo, is_scheduled, scheduled
from ._conditions import parse_conditions
from ._ledger import EPS
from ._model import Instrument, QuoteState, SimError, SimOrder
from ._order_rules import OFF_TICK_TEXT, ceil_tick, floor_tick, on_tick, trigger_reference
from ._place_order import PlaceOrderRequest

__all__ = [
    "Step",
    "Times",
    "advance",
    "apply_request",
    "check_close_entry",
    "check_modify",
    "check_order_type",
    "close_locked",
    "estimate_price",
    "in_auction",
    "next_close",
    "next_open",
    "order_types_for",
    "start",
    "times_for",
    "waits_for_trigger",
]

NO_SECURITY_TEXT = "No security definition has been found for the request"
LIMIT_REQUIRED = "Order rejected - reason:A limit price is required."
_TRIGGERED = frozenset({"STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MIT", "LIT"})
_TRAILING = frozenset({"TRAIL", "TRAIL LIMIT"})
_AT_CLOSE = frozenset({"MOC", "LOC"})
# The closing auction's cut-offs for stocks, in seconds before the regular close: new on-close
# orders (by listing market; the NYSE markets' 10 minutes for the rest) and changes or cancels.
_ENTRY_CUTOFF = {"NASDAQ": 300.0, "ISLAND": 300.0}
_ENTRY_CUTOFF_ELSE = 600.0
_LOCKED_BEFORE_CLOSE = 600.0
_PEGGED = frozenset({"REL", "PEG MID"})
_MARKET_ONCE_WORKING = frozenset({"MKT", "STP", "TRAIL", "MIT", "MOC"})

_STOCK_TYPES = (
    "LMT",
    "MKT",
    "STP",
    "STP LMT",
    "TRAIL",
    "TRAIL LIMIT",
    "MOC",
    "LOC",
    "MIT",
    "LIT",
    "REL",
    "PEG MID",
)
_BY_SEC_TYPE: dict[str, tuple[str, ...]] = {
    "STK": _STOCK_TYPES,
    "CASH": ("LMT", "MKT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MIT", "LIT"),
    "FUT": ("LMT", "MKT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MOC", "LOC", "MIT", "LIT"),
    "OPT": ("LMT", "MKT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "REL"),
    "IND": (),
}


def order_types_for(sec_type: str) -> tuple[str, ...]:
    """The order types TWS offers for a security type (an index none: it is not traded)."""
    return _BY_SEC_TYPE.get(sec_type.upper(), ("LMT", "MKT", "STP", "STP LMT"))


# ---------------------------------------------------------------------------------------------
# Checks


def check_order_type(
    req: PlaceOrderRequest, inst: Instrument, quote: Callable[[int], QuoteState]
) -> None:
    """What TWS refuses in the fields of the non-basic order types, algos and conditions.

    Runs after the common checks (action, size, type known to the contract, tick grid);
    ``quote`` finds the contracts that conditions name.

    Raises:
        SimError: the rejection TWS sends.
    """
    kind = req.order_type
    if kind in _AT_CLOSE and (req.tif or "DAY") != "DAY":
        raise SimError(113, "The Tif option should be set to DAY for MOC and LOC orders.")
    if req.tif == "OPG" and kind not in ("MKT", "LMT"):
        raise SimError(111, "The TIF (Tif type) and the order type are incompatible.")
    if kind in ("LOC", "LIT") and req.lmt_price is None:
        raise SimError(201, LIMIT_REQUIRED)
    if kind in ("MIT", "LIT") and req.aux_price is None:
        raise SimError(201, "Order rejected - reason:A trigger price is required.")
    if kind in _TRAILING:
        _check_trailing(req, inst)
    if kind == "REL" and inst.sec_type not in ("STK", "OPT"):
        raise SimError(114, "Relative orders are valid for stocks only.")
    if req.algo_strategy:
        check_algo(req, inst)
    for cond in parse_conditions(req.conditions):
        if cond.con_id:
            try:
                quote(cond.con_id)
            except KeyError:
                raise SimError(200, NO_SECURITY_TEXT) from None


def check_close_entry(req: PlaceOrderRequest, inst: Instrument, now: float) -> None:
    """Refuse a new on-close stock order that comes after its market's cut-off for the close.

    Raises:
        SimError: 201, naming the cut-off.
    """
    if req.order_type not in _AT_CLOSE or inst.sec_type != "STK":
        return
    market = (inst.primary_exchange or inst.exchange).upper()
    cutoff = next_close(inst, now) - _ENTRY_CUTOFF.get(market, _ENTRY_CUTOFF_ELSE)
    if now >= cutoff:
        raise SimError(
            201,
            f"Order rejected - reason:{market} takes no more {req.order_type} orders for "
            f"today's close: the cut-off was {_local_time(cutoff, inst)}.",
        )


def close_locked(order: SimOrder, close_at: float, now: float) -> bool:
    """Whether ``order``, an on-close stock order waiting for the close at ``close_at``, can no
    longer be cancelled or changed."""
    return (
        order.order_type in _AT_CLOSE
        and order.instrument.sec_type == "STK"
        and now >= close_at - _LOCKED_BEFORE_CLOSE
    )


def check_modify(order: SimOrder, req: PlaceOrderRequest, close_at: float, now: float) -> None:
    """What TWS refuses in a modification of a transmitted order, beyond the placement checks:
    another algo (440), any change to an on-close order in the last minutes before the close.

    Raises:
        SimError: the rejection TWS sends.
    """
    if req.algo_strategy != order.algo_strategy:
        raise SimError(440, "Order modify failed. Algorithm cannot be modified.")
    if close_locked(order, close_at, now):
        since = _local_time(close_at - _LOCKED_BEFORE_CLOSE, order.instrument)
        raise SimError(
            201,
            f"Order rejected - reason:{order.order_type} orders can no longer be changed for "
            f"today's close (from {since}).",
        )


def _local_time(epoch: float, inst: Instrument) -> str:
    return f"{datetime.fromtimestamp(epoch, _zone(inst)):%H:%M:%S} {inst.time_zone}"


def _check_trailing(req: PlaceOrderRequest, inst: Instrument) -> None:
    amount, percent = req.aux_price, req.trailing_percent
    if (amount is None) == (percent is None):
        raise SimError(
            201,
            "Order rejected - reason:A trailing stop needs either a trailing amount or a "
            "trailing percent, not both.",
        )
    if amount is not None and amount <= 0:
        raise SimError(201, "Order rejected - reason:The trailing amount must be positive.")
    if percent is not None and not 0 < percent < 100:
        raise SimError(
            201, "Order rejected - reason:The trailing percent must be between 0 and 100."
        )
    if req.order_type == "TRAIL LIMIT" and req.lmt_price_offset is None and req.lmt_price is None:
        raise SimError(
            201, "Order rejected - reason:A trailing stop limit needs a limit price offset."
        )
    for price in (req.trail_stop_price, req.lmt_price_offset):
        if price is not None and not on_tick(price, inst):
            raise SimError(110, OFF_TICK_TEXT)


# ---------------------------------------------------------------------------------------------
# Booking


def apply_request(order: SimOrder, req: PlaceOrderRequest) -> None:
    """Copy the fields of ``req`` beyond the basic ones onto ``order`` (new or modified).

    A modification that sends no ``trailStopPrice`` keeps the trailing stop where it is,
    unless it changes the trailing distance: the stop then starts again one new distance
    from the market (see :func:`start`).
    """
    keep_stop = (
        req.order_type in _TRAILING
        and order.order_type == req.order_type
        and order.aux_price == req.aux_price
        and order.trailing_percent == req.trailing_percent
    )
    order.trigger_method = req.trigger_method
    order.trailing_percent = req.trailing_percent
    order.percent_offset = req.percent_offset
    if req.trail_stop_price is not None or not keep_stop:
        order.trail_stop_price = req.trail_stop_price
    order.lmt_price_offset = req.lmt_price_offset
    order.mid_offset_at_whole = req.mid_offset_at_whole
    order.mid_offset_at_half = req.mid_offset_at_half
    order.algo_strategy = req.algo_strategy
    order.algo_params = req.algo_params
    order.conditions = parse_conditions(req.conditions)
    order.conditions_ignore_rth = req.conditions_ignore_rth
    order.conditions_cancel_order = req.conditions_cancel_order


def start(order: SimOrder, q: QuoteState) -> None:
    """Set what an order that works at once starts from: its trailing stop, its pegged price.

    An order that waits (a bracket child, a held order) starts when it first works, from the
    market then.
    """
    ref = _reference(order, q)
    if order.order_type in _TRAILING:
        if not order.triggered and ref is not None:
            _ratchet(order, ref)
        _follow_stop(order)  # a modified limit offset moves the limit even if the stop stays
    if order.order_type in _PEGGED:
        order.working_price = _peg_price(order, q)


@dataclass(slots=True, frozen=True)
class Times:
    """When an order came, and the regular session open and close that follow (epoch s)."""

    placed_at: float
    open_at: float
    close_at: float


def times_for(inst: Instrument, now: float) -> Times:
    """The :class:`Times` of an order of ``inst`` placed at ``now``."""
    return Times(now, next_open(inst, now), next_close(inst, now))


def next_close(inst: Instrument, now: float) -> float:
    """Epoch seconds of the first end of ``inst``'s regular session after ``now``."""
    return _next_edge(inst, now, inst.rth[1])


def next_open(inst: Instrument, now: float) -> float:
    """Epoch seconds of the first start of ``inst``'s regular session after ``now``."""
    return _next_edge(inst, now, inst.rth[0])


def _zone(inst: Instrument) -> ZoneInfo:
    try:
        return ZoneInfo(inst.time_zone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _next_edge(inst: Instrument, now: float, hhmm: str) -> float:
    tz = _zone(inst)
    hour, minute = int(hhmm[:2]), int(hhmm[2:])
    day = datetime.fromtimestamp(now, tz).date()
    for ahead in range(8):
        d = day + timedelta(days=ahead)
        if d.weekday() >= 5:
            continue
        edge = datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz).timestamp()
        if edge > now:
            return edge
    raise AssertionError("a weekday lies within eight days")


def in_auction(order: SimOrder) -> bool:
    """Whether ``order`` waits for an auction (MOC, LOC, TIF OPG): no trading hours apply."""
    return order.order_type in _AT_CLOSE or order.tif == "OPG"


def waits_for_trigger(order: SimOrder) -> bool:
    """Whether TWS holds ``order`` (``PreSubmitted``) until a price touches its trigger."""
    return order.order_type in _TRIGGERED and not order.triggered


def estimate_price(req: PlaceOrderRequest, far: float) -> float:
    """The price a margin check or what-if books ``req`` at, ``far`` the quote's far side."""
    kind = req.order_type
    if kind in ("STP", "MIT") and req.aux_price is not None:
        return req.aux_price
    if kind == "TRAIL" and req.trail_stop_price is not None:
        return req.trail_stop_price
    if kind != "MKT" and req.lmt_price is not None and req.lmt_price > 0:
        return req.lmt_price
    return far


# ---------------------------------------------------------------------------------------------
# Working the market


@dataclass(slots=True, frozen=True)
class Step:
    """What one quote move does to an order.

    ``waiting``: still held for its trigger (``PreSubmitted``); ``echo``: its fields changed
    (a trailing stop moved), send openOrder; ``price``: fill now at this price, ``quantity``
    of it (None: all that remains); ``expire``: cancel it now (a limit-on-close the close did
    not reach, an algo past its end time).
    """

    waiting: bool = False
    echo: bool = False
    price: float | None = None
    quantity: float | None = None
    expire: bool = False


def advance(
    order: SimOrder,
    q: QuoteState,
    *,
    now: float,
    times: Times,
    new_print: bool = False,
) -> Step:
    """Move ``order`` along with quote ``q``: trail, trigger, re-peg; where it fills now.

    ``times`` are the order's arrival and sessions; ``new_print``: the last trade of ``q``
    printed since the order's previous look.
    """
    kind = order.order_type
    echo = False
    if kind in _TRIGGERED and not order.triggered:
        ref = _reference(order, q)
        if ref is None:
            return _WAITING
        if kind in _TRAILING:
            echo = _ratchet(order, ref)
            trigger = order.trail_stop_price
        else:
            trigger = order.aux_price
        buy = order.action == "BUY"
        if trigger is None:
            hit = False
        elif kind in ("MIT", "LIT"):
            hit = ref <= trigger + EPS if buy else ref >= trigger - EPS
        else:
            hit = ref >= trigger - EPS if buy else ref <= trigger + EPS
        if not hit:
            return _WAITING_ECHO if echo else _WAITING
        order.triggered = True
    elif kind in _AT_CLOSE or order.tif == "OPG":
        ref = trigger_reference(q)
        auction = times.close_at if kind in _AT_CLOSE else times.open_at
        if now < auction or ref is None:
            return _NOTHING
        if kind in ("LOC", "LMT") and not _within_limit(order, ref):
            return Step(expire=True)
        return Step(price=ref)
    elif kind in _PEGGED:
        order.working_price = _peg_price(order, q)
    elif order.algo_strategy and is_scheduled(order):
        due, over = scheduled(order, now=now, placed_at=times.placed_at, close_at=times.close_at)
        price = _fill_price(order, q, new_print)
        if price is None or due <= EPS:
            return Step(expire=over)
        return Step(price=price, quantity=due)
    price = _fill_price(order, q, new_print)
    if price is None and not echo:
        return _NOTHING
    return Step(echo=echo, price=price)


def _reference(order: SimOrder, q: QuoteState) -> float | None:
    """The price a stop, trailing stop or if-touched order watches, by its trigger method:
    the bid/ask (1, 4: the ask for a buy, the bid for a sell), the midpoint (8), else the last
    trade (the midpoint where nothing trades)."""
    method = order.trigger_method
    if method in (1, 4):
        side = q.ask if order.action == "BUY" else q.bid
        return side if side > 0 else None
    if method == 8:
        return (q.bid + q.ask) / 2 if q.bid > 0 and q.ask > 0 else None
    return trigger_reference(q)


_NOTHING = Step()
_WAITING = Step(waiting=True)
_WAITING_ECHO = Step(waiting=True, echo=True)


def _fill_price(order: SimOrder, q: QuoteState, new_print: bool) -> float | None:
    buy = order.action == "BUY"
    far = q.ask if buy else q.bid
    if not far or far <= 0 or not math.isfinite(far):
        return None
    kind = order.order_type
    if order.algo_strategy == "Adaptive":
        price = adaptive_price(order, q, far)
        limit = order.lmt_price if kind == "LMT" else None
        if limit is not None and (price > limit + EPS if buy else price < limit - EPS):
            return None
        return price
    if kind in _MARKET_ONCE_WORKING:
        return far
    if kind in _PEGGED:
        return _pegged_fill(order, q, far, new_print)
    limit = order.lmt_price
    if limit is None:
        return None
    return far if _within(far, limit, buy) else None


def _pegged_fill(order: SimOrder, q: QuoteState, far: float, new_print: bool) -> float | None:
    """The far side when it reaches the working price; else the working price itself when a
    trade prints through it (the order was first in line at its price)."""
    price = order.working_price
    if price is None:
        return None
    buy = order.action == "BUY"
    if _within(far, price, buy):
        return far
    last = q.last
    if new_print and last > 0 and (last < price - EPS if buy else last > price + EPS):
        return price
    return None


def _within(price: float, limit: float, buy: bool) -> bool:
    return price <= limit + EPS if buy else price >= limit - EPS


def _within_limit(order: SimOrder, price: float) -> bool:
    limit = order.lmt_price
    return limit is not None and _within(price, limit, order.action == "BUY")


def _distance(order: SimOrder, ref: float) -> float:
    if order.trailing_percent is not None:
        return ref * order.trailing_percent / 100.0
    return order.aux_price or 0.0


def _stop_from(order: SimOrder, ref: float) -> float:
    tick = order.instrument.min_tick
    if order.action == "BUY":
        return ceil_tick(ref + _distance(order, ref), tick)
    return floor_tick(ref - _distance(order, ref), tick)


def _ratchet(order: SimOrder, ref: float) -> bool:
    """Move the trailing stop towards the market if the reference moved in our favour."""
    stop = order.trail_stop_price
    new = _stop_from(order, ref)
    better = stop is None or (new < stop - EPS if order.action == "BUY" else new > stop + EPS)
    if not better:
        return False
    order.trail_stop_price = new
    _follow_stop(order)
    return True


def _follow_stop(order: SimOrder) -> None:
    """A trailing stop limit's limit price stays its offset beyond the stop."""
    stop = order.trail_stop_price
    if order.order_type != "TRAIL LIMIT" or stop is None:
        return
    if order.lmt_price_offset is None and order.lmt_price is not None:
        # A limit price instead of an offset: the distance to the first stop trails.
        order.lmt_price_offset = _tidy(abs(stop - order.lmt_price))
    offset = order.lmt_price_offset
    if offset is None:
        return
    order.lmt_price = _tidy(stop + offset if order.action == "BUY" else stop - offset)


def _peg_price(order: SimOrder, q: QuoteState) -> float | None:
    buy = order.action == "BUY"
    tick = order.instrument.min_tick
    if order.order_type == "REL":
        near = q.bid if buy else q.ask
        if near <= 0:
            return None
        offset = order.aux_price
        if offset is None:
            offset = floor_tick(near * order.percent_offset, tick) if order.percent_offset else 0.0
        price = near + offset if buy else near - offset
    else:
        if q.bid <= 0 or q.ask <= 0:
            return None
        mid = (q.bid + q.ask) / 2
        offset = order.aux_price or 0.0
        whole = on_tick(mid, order.instrument)
        special = order.mid_offset_at_whole if whole else order.mid_offset_at_half
        if special is not None:
            offset = special
        price = mid - offset if buy else mid + offset
    cap = order.lmt_price
    if cap is not None and cap > 0:
        price = min(price, cap) if buy else max(price, cap)
    return _tidy(price)


def _tidy(price: float) -> float:
    return round(price, 10)
