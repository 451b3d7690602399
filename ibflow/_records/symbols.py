"""Symbol search results and market rules (IB's price increments by price level)."""

from __future__ import annotations

from dataclasses import dataclass

from .contracts import Contract

__all__ = ["ContractDescription", "MarketRule", "PriceIncrement"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractDescription:
    """One match of a symbol search (``reqMatchingSymbols``).

    ``contract`` carries the con_id, symbol, type, primary exchange (as ``exchange``) and
    currency; ``derivative_sec_types`` lists the kinds of derivatives IB has on it ("OPT",
    "FUT"…); ``description`` is the company or product name, when IB sends one.
    """

    contract: Contract
    derivative_sec_types: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PriceIncrement:
    """From ``low_edge`` upwards (to the next level's edge), prices step by ``increment``."""

    low_edge: float
    increment: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketRule:
    """A market rule (``reqMarketRule``): the price increment at each price level.

    A contract's rule ids are in its details (``marketRuleIds``, one per valid exchange).
    """

    rule_id: int
    increments: tuple[PriceIncrement, ...]

    def increment_at(self, price: float) -> float:
        """The tick size that applies at ``price`` (the level whose low edge it reaches)."""
        size = abs(price)
        step = self.increments[0].increment
        for level in self.increments:
            if size >= level.low_edge:
                step = level.increment
        return step
