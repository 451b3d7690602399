"""Orders TWS accepts and then holds ``Inactive``: the broker's stand-in for the margin and
permission checks TWS runs after acknowledging an order (``Broker.inactivate_next``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._events import Event, OrderChanged, OrderError
from ._model import Instrument, SimOrder

__all__ = ["InactiveRule", "InactiveRules", "inactivate"]


@dataclass(slots=True)
class InactiveRule:
    """One pending ``inactivate_next``: which order it hits and what TWS says."""

    symbol: str  # upper case; "" matches every instrument
    skip: int
    code: int
    text: str
    acknowledge: bool = True


class InactiveRules:
    """The pending rules; each counts the new orders it sees on its own."""

    def __init__(self) -> None:
        self._rules: list[InactiveRule] = []

    def add(self, symbol: str, after: int, code: int, text: str, acknowledge: bool) -> None:
        """Hit the new order after ``after`` others (of ``symbol`` only, when given).

        Raises:
            ValueError: ``after`` is negative.
        """
        if after < 0:
            raise ValueError(f"after must be 0 or more, got {after!r}")
        self._rules.append(InactiveRule(symbol.strip().upper(), after, code, text, acknowledge))

    def take(self, inst: Instrument) -> InactiveRule | None:
        """The rule that makes this new order Inactive (removed), counting it for the others."""
        hit: InactiveRule | None = None
        for rule in list(self._rules):
            if rule.symbol and rule.symbol != inst.symbol.upper():
                continue
            if rule.skip == 0 and hit is None:
                hit = rule
                self._rules.remove(rule)
            elif rule.skip > 0:
                rule.skip -= 1
        return hit


def inactivate(order: SimOrder, rule: InactiveRule) -> list[Event]:
    """Acknowledge ``order``, send the rule's error, then report it ``Inactive``.

    TWS acknowledges the order before the check that refuses it, then sends the reason and the
    Inactive status, as logged from a real TWS. Other logs show the reason first, before any
    acknowledgement.
    """
    events: list[Event] = []
    if rule.acknowledge:
        order.status = "PreSubmitted"
        events.append(OrderChanged(dataclasses.replace(order)))
    events.append(OrderError(order.order_id, order.client_id, rule.code, rule.text))
    order.status = "Inactive"
    events.append(OrderChanged(dataclasses.replace(order)))
    return events
