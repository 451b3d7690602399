"""Option records: greeks from IB's option computations, and an underlying's option chain.

IB marks a figure it could not compute with a sentinel (-1 for prices and volatility, -2 for
the greeks); here such a figure is ``None``, never a NaN or a negative placeholder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from .._errors import InvalidRequest
from .contracts import Contract, Option, Right

__all__ = ["Greeks", "OptionChain"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Greeks:
    """One option computation (IB's ``tickOptionComputation``); ``None`` where IB had none.

    ``implied_vol`` is annualized (0.25 = 25 %); ``theta`` is per calendar day; ``vega`` per one
    point (100 %) of volatility, as IB reports them. ``option_price`` is the price the figures
    were computed for, ``underlying_price`` the underlying's price they assumed.
    """

    implied_vol: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    option_price: float | None = None
    underlying_price: float | None = None


def _strike_set(strikes: float | Iterable[float] | None, listed: tuple[float, ...]) -> list[float]:
    if strikes is None:
        return list(listed)
    wanted = [strikes] if isinstance(strikes, int | float) else list(strikes)
    chosen = []
    for strike in wanted:
        if isinstance(strike, bool) or not isinstance(strike, int | float):
            raise InvalidRequest(f"strikes must be numbers, got {strike!r}")
        match = next((s for s in listed if abs(s - float(strike)) < 1e-9), None)
        if match is None:
            listing = (
                f"listed strikes run from {listed[0]:g} to {listed[-1]:g}"
                if listed
                else "it lists none"
            )
            raise InvalidRequest(f"strike {strike!r} is not in the chain; {listing}")
        chosen.append(match)
    return chosen


def _expiry_set(
    expiry: date | str | Iterable[date | str] | None, listed: tuple[date, ...]
) -> list[date]:
    if expiry is None:
        return list(listed)
    wanted = [expiry] if isinstance(expiry, date | str) else list(expiry)
    chosen = []
    for item in wanted:
        day = item if isinstance(item, date) else _parse_day(item)
        if day not in listed:
            shown = ", ".join(d.isoformat() for d in listed[:6])
            raise InvalidRequest(
                f"expiry {item!r} is not in the chain; it lists {shown}"
                + (" …" if len(listed) > 6 else "")
            )
        chosen.append(day)
    return chosen


def _parse_day(text: str) -> date:
    digits = str(text).replace("-", "").strip()
    if len(digits) != 8 or not digits.isdigit():
        raise InvalidRequest(f"expiry must be a date or 'yyyymmdd', got {text!r}")
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionChain:
    """The options listed on one underlying (IB's ``reqSecDefOptParams``), merged over venues.

    ``expirations`` and ``strikes`` are sorted; ``exchanges`` are the venues that list them
    (SMART among them for US options). Pick contracts with :meth:`contracts`.
    """

    underlying: Contract
    exchanges: tuple[str, ...]
    trading_classes: tuple[str, ...]
    multiplier: float | None
    expirations: tuple[date, ...]
    strikes: tuple[float, ...]

    def contracts(
        self,
        expiry: date | str | Iterable[date | str] | None = None,
        strikes: float | Iterable[float] | None = None,
        right: str | Right | None = None,
        *,
        exchange: str = "SMART",
    ) -> list[Contract]:
        """``Option`` specs for the chosen expiries, strikes and right (all of each by default).

        Qualify them with ``session.qualify(*specs)`` before quoting or trading.

        Raises:
            InvalidRequest: an expiry or strike the chain does not list, or a bad right.
        """
        days = _expiry_set(expiry, self.expirations)
        chosen = _strike_set(strikes, self.strikes)
        rights = [Right.CALL, Right.PUT] if right is None else [_right_of(right)]
        trading_class = self.trading_classes[0] if len(self.trading_classes) == 1 else None
        return [
            Option(
                self.underlying.symbol,
                day,
                strike,
                r,
                exchange,
                self.underlying.currency,
                multiplier=self.multiplier,
                trading_class=trading_class,
            )
            for day in days
            for strike in chosen
            for r in rights
        ]


def _right_of(right: str | Right) -> Right:
    text = str(right.value if isinstance(right, Right) else right).strip().upper()
    mapped = {"C": Right.CALL, "CALL": Right.CALL, "P": Right.PUT, "PUT": Right.PUT}.get(text)
    if mapped is None:
        raise InvalidRequest(f"right must be 'C' or 'P' (or 'CALL'/'PUT'), got {right!r}")
    return mapped
