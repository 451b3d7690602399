"""Numbers for people: prices on the contract's tick, money in cents, quantities without ``.0``.

Floats from the wire carry binary drift (``192.05999999999997``); people read prices in the
contract's minimum tick and money in cents, so human output goes through here. ``--json``
output keeps the numbers as they are.
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["DASH", "money", "price", "quantity", "tick_decimals"]

DASH = "–"
_FALLBACK_DECIMALS = 2
_MAX_DECIMALS = 8


def tick_decimals(tick: float | None) -> int:
    """How many decimals a price on ``tick`` needs (0.01 → 2, 0.00005 → 5, 0.25 → 2)."""
    if tick is None or not math.isfinite(tick) or tick <= 0:
        return _FALLBACK_DECIMALS
    exponent = Decimal(repr(tick)).normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) else _FALLBACK_DECIMALS
    return min(max(places, 0), _MAX_DECIMALS)


def price(value: float | None, tick: float | None = None) -> str:
    """``value`` rounded to the nearest ``tick`` (two decimals when the tick is unknown)."""
    if value is None or not math.isfinite(value):
        return DASH
    places = tick_decimals(tick)
    if tick is not None and math.isfinite(tick) and tick > 0:
        value = round(value / tick) * tick
    return f"{value:,.{places}f}"


def money(value: float | None, currency: str | None = None) -> str:
    """``value`` in cents, with the currency after it when given."""
    if value is None or not math.isfinite(value):
        return DASH
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def quantity(value: float | None) -> str:
    """``100`` for 100.0, ``0.5`` for a fractional share; no exponent for big numbers."""
    if value is None or not math.isfinite(value):
        return DASH
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.8f}".rstrip("0").rstrip(".")
