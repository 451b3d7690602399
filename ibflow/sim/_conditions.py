"""Order conditions: what TWS accepts in placeOrder, and when a condition is true.

An order with conditions waits (``PreSubmitted``) until they hold; then TWS submits it, or
cancels it when ``conditionsCancelOrder`` is set. Once true, the conditions are not checked
again. They chain left to right: each condition's conjunction ("a" and, "o" or) joins it to the
next one, and the chain is evaluated in that order without precedence, as TWS's order
conditions dialog reads.

What each condition compares (``is_more`` means "at or above", else "at or below"):

* price (1): the contract's price by trigger method: last (0, 2, 3, 7; the midpoint where nothing
  trades), bid/ask (1, 4: the bid for "above", the ask for "below"), midpoint (8);
* time (3): now against ``yyyymmdd hh:mm:ss [zone]`` ("above" means at or after);
* margin (4): the account's cushion in percent (excess liquidity over net liquidation);
* execution (5): any fill of the symbol (and security type, exchange) in the order's account
  since the order was placed;
* volume (6): the contract's session volume;
* percent change (7): the last price's change from the previous close, in percent.

Pure: the broker hands in a :class:`ConditionView` of the market, the clock and the account.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._ledger import Ledger
from ._model import QuoteState, SimCondition, SimError, SimExecution, SimOrder
from ._order_rules import parse_ib_time, session_open

__all__ = [
    "ConditionView",
    "all_hold",
    "conditions_hold",
    "cushion_percent",
    "holds",
    "parse_conditions",
]

_NAMES = {1: "price", 3: "time", 4: "margin", 5: "execution", 6: "volume", 7: "percent change"}


@dataclass(slots=True)
class ConditionView:
    """What conditions are judged against: the clock, quotes, the order's account and the
    fills booked since the order came."""

    now: float
    quote: Callable[[int], QuoteState]
    ledger: Ledger
    account: str
    executions: Sequence[SimExecution]


def _bad(kind: int, detail: str) -> SimError:
    name = _NAMES.get(kind, str(kind))
    return SimError(201, f"Order rejected - reason:Invalid {name} condition: {detail}")


def _bool(kind: int, text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true"):
        return True
    if t in ("0", "false", ""):
        return False
    raise _bad(kind, f"{text!r} is not a boolean")


def _int(kind: int, text: str) -> int:
    try:
        return int(float(text)) if text.strip() else 0
    except ValueError:
        raise _bad(kind, f"{text!r} is not a number") from None


def _number(kind: int, text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        raise _bad(kind, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad(kind, f"{text!r} is not a finite number")
    return text.strip()


def parse_conditions(raw: Sequence[tuple[int, tuple[str, ...]]]) -> tuple[SimCondition, ...]:
    """The typed conditions of a placeOrder (its raw fields after each condition's type).

    Raises:
        SimError: a field TWS would refuse (an unknown conjunction, a value that is no number,
            a time it cannot read).
    """
    out: list[SimCondition] = []
    for kind, fields in raw:
        conjunction = fields[0].strip().lower() if fields else "a"
        if conjunction not in ("a", "o"):
            raise _bad(kind, f"conjunction {fields[0]!r} is neither 'a' (and) nor 'o' (or)")
        if kind == 1:
            _, more, price, con_id, exchange, method = fields
            cond = SimCondition(
                kind,
                conjunction,
                is_more=_bool(kind, more),
                value=_number(kind, price),
                con_id=_int(kind, con_id),
                exchange=exchange,
                trigger_method=_int(kind, method),
            )
        elif kind == 3:
            _, more, when = fields
            if parse_ib_time(when) is None:
                raise _bad(kind, f"{when!r} is not a time like '20250106 16:00:00 US/Eastern'")
            cond = SimCondition(kind, conjunction, is_more=_bool(kind, more), value=when.strip())
        elif kind == 4:
            _, more, percent = fields
            cond = SimCondition(
                kind, conjunction, is_more=_bool(kind, more), value=_number(kind, percent)
            )
        elif kind == 5:
            _, sec_type, exchange, symbol = fields
            if not symbol.strip():
                raise _bad(kind, "a symbol is required")
            cond = SimCondition(
                kind, conjunction, sec_type=sec_type, exchange=exchange, symbol=symbol
            )
        else:
            _, more, value, con_id, exchange = fields
            cond = SimCondition(
                kind,
                conjunction,
                is_more=_bool(kind, more),
                value=_number(kind, value),
                con_id=_int(kind, con_id),
                exchange=exchange,
            )
        if kind in (1, 6, 7) and cond.con_id <= 0:
            raise _bad(kind, "a contract id is required")
        out.append(cond)
    return tuple(out)


def _compare(value: float | None, cond: SimCondition) -> bool:
    if value is None or not math.isfinite(value):
        return False
    target = float(cond.value)
    return value >= target if cond.is_more else value <= target


def _price(cond: SimCondition, q: QuoteState) -> float | None:
    mid = (q.bid + q.ask) / 2 if q.bid > 0 and q.ask > 0 else None
    method = cond.trigger_method
    if method in (1, 4):
        side = q.bid if cond.is_more else q.ask
        return side if side > 0 else None
    if method == 8:
        return mid
    return q.last if q.last > 0 else mid


def holds(cond: SimCondition, view: ConditionView) -> bool:
    """Whether one condition is true now."""
    kind = cond.kind
    if kind == 1:
        return _compare(_price(cond, view.quote(cond.con_id)), cond)
    if kind == 3:
        when = parse_ib_time(cond.value)
        if when is None:
            return False
        at = when.timestamp()
        return view.now >= at if cond.is_more else view.now < at
    if kind == 4:
        return _compare(cushion_percent(view.ledger, view.account), cond)
    if kind == 5:
        return any(ex.account == view.account and _matches(cond, ex) for ex in view.executions)
    q = view.quote(cond.con_id)
    if kind == 6:
        return _compare(q.volume, cond)
    if q.close <= 0 or q.last <= 0:
        return False
    return _compare((q.last - q.close) / q.close * 100.0, cond)


def _matches(cond: SimCondition, ex: SimExecution) -> bool:
    inst = ex.instrument
    if inst.symbol.upper() != cond.symbol.strip().upper():
        return False
    if cond.sec_type.strip() and inst.sec_type.upper() != cond.sec_type.strip().upper():
        return False
    exchange = cond.exchange.strip().upper()
    return exchange in ("", "SMART") or exchange in (
        inst.exchange.upper(),
        inst.primary_exchange.upper(),
    )


def all_hold(conditions: Sequence[SimCondition], view: ConditionView) -> bool:
    """Whether the chain of ``conditions`` is true now, joined left to right."""
    if not conditions:
        return True
    result = holds(conditions[0], view)
    for before, cond in itertools.pairwise(conditions):
        if before.conjunction == "o":
            result = result or holds(cond, view)
        else:
            result = result and holds(cond, view)
    return result


def cushion_percent(ledger: Ledger, account: str) -> float:
    """The account's cushion in percent: excess liquidity over net liquidation."""
    fig = ledger.figures(account)
    nlv = fig.net_liquidation
    if nlv <= 0:
        return 0.0
    return (fig.equity_with_loan - fig.maint_margin) / nlv * 100.0


def conditions_hold(order: SimOrder, view: ConditionView, *, rth_only: bool) -> bool:
    """Whether ``order``'s conditions are true now; with ``rth_only`` (trading hours enforced
    and no ``conditionsIgnoreRth``) they are checked during regular hours only."""
    if rth_only and not session_open(order.instrument, False, view.now):
        return False
    return all_hold(order.conditions, view)
