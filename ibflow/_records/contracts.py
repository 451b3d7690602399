"""The records every part of ibflow shares: contracts, their builders, and bars.

Contracts and bars cross every feature (account, orders, streams, history), so they live here,
once, as frozen slotted dataclasses with snake_case fields and ``None`` for absent values — no
NaN, no ``UNSET_DOUBLE``, no mutable objects that change under the reader. Prices and
quantities are ``float``: IB's own wire values are decimal text with at most a few places, and
a float per field keeps the hot streaming path cheap; money totals are rounded where reported.

The builders (``Stock``, ``Forex``, ``Future``, ``Option``, ``Index``) validate their arguments
and raise :class:`~ibflow.InvalidRequest` saying what to fix, so a typo never reaches TWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from .._errors import InvalidRequest

__all__ = [
    "Bar",
    "Contract",
    "Forex",
    "Future",
    "Index",
    "Option",
    "Right",
    "SecType",
    "Stock",
]


class SecType(StrEnum):
    """IB security types ibflow models (the value is IB's code)."""

    STOCK = "STK"
    FOREX = "CASH"
    FUTURE = "FUT"
    OPTION = "OPT"
    INDEX = "IND"
    FUTURE_OPTION = "FOP"
    CFD = "CFD"
    BOND = "BOND"
    FUND = "FUND"
    COMMODITY = "CMDTY"
    CRYPTO = "CRYPTO"
    WARRANT = "WAR"


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """An IB contract. ``con_id`` identifies it uniquely once qualified."""

    sec_type: SecType
    symbol: str
    exchange: str = "SMART"
    currency: str = "USD"
    con_id: int | None = None
    primary_exchange: str | None = None
    local_symbol: str | None = None
    trading_class: str | None = None
    expiry: str | None = None  # yyyymmdd or yyyymm (IB's lastTradeDateOrContractMonth)
    strike: float | None = None
    right: Right | None = None
    multiplier: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sec_type, SecType):
            try:
                object.__setattr__(self, "sec_type", SecType(str(self.sec_type).upper()))
            except ValueError:
                allowed = ", ".join(s.value for s in SecType)
                raise InvalidRequest(
                    f"unknown security type {self.sec_type!r}; use one of {allowed}"
                ) from None
        if self.con_id is not None and (not isinstance(self.con_id, int) or self.con_id <= 0):
            raise InvalidRequest(f"con_id must be a positive integer, got {self.con_id!r}")
        if not self.symbol and self.con_id is None and not self.local_symbol:
            raise InvalidRequest("a contract needs a symbol, a local_symbol or a con_id")

    @property
    def is_qualified(self) -> bool:
        return self.con_id is not None

    def with_con_id(self, con_id: int) -> Contract:
        return replace(self, con_id=con_id)

    @property
    def display_name(self) -> str:
        """What a person calls it: "AAPL", "EUR.USD", "ESH7", "AAPL 20270115 230C"."""
        if self.sec_type is SecType.FOREX:
            return f"{self.symbol}.{self.currency}"
        if self.sec_type is SecType.OPTION and self.expiry and self.strike is not None:
            right = self.right.value if self.right else ""
            return f"{self.symbol} {self.expiry} {self.strike:g}{right}"
        return self.local_symbol or self.symbol


_SYMBOL = re.compile(r"^[A-Za-z0-9.\-/ ]{1,32}$")
_CCY = re.compile(r"^[A-Z]{3}$")


def _symbol(symbol: str, what: str = "symbol") -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip()):
        raise InvalidRequest(f"{what} must be a ticker like 'AAPL', got {symbol!r}")
    return symbol.strip().upper()


def _currency(currency: str) -> str:
    if not isinstance(currency, str) or not _CCY.match(currency.upper()):
        raise InvalidRequest(f"currency must be a 3-letter code like 'USD', got {currency!r}")
    return currency.upper()


def _expiry(expiry: str | date) -> str:
    if isinstance(expiry, datetime):
        expiry = expiry.date()
    if isinstance(expiry, date):
        return expiry.strftime("%Y%m%d")
    text = str(expiry).replace("-", "").strip()
    if not re.fullmatch(r"\d{6}(\d{2})?", text):
        raise InvalidRequest(f"expiry must be 'yyyymmdd', 'yyyymm' or a date, got {expiry!r}")
    return text


# The builders are functions named like the classes people know from IB's API.
def Stock(
    symbol: str,
    exchange: str = "SMART",
    currency: str = "USD",
    *,
    primary_exchange: str | None = None,
    con_id: int | None = None,
) -> Contract:
    """A stock or ETF, SMART-routed in USD by default: ``Stock("AAPL")``."""
    return Contract(
        sec_type=SecType.STOCK,
        symbol=_symbol(symbol),
        exchange=exchange.upper(),
        currency=_currency(currency),
        primary_exchange=primary_exchange.upper() if primary_exchange else None,
        con_id=con_id,
    )


def Forex(pair: str, exchange: str = "IDEALPRO", *, con_id: int | None = None) -> Contract:
    """A currency pair: ``Forex("EURUSD")`` or ``Forex("EUR.USD")`` (base, then quote)."""
    text = pair.replace(".", "").replace("/", "").strip().upper() if isinstance(pair, str) else ""
    if not re.fullmatch(r"[A-Z]{6}", text):
        raise InvalidRequest(
            f"a forex pair is six letters like 'EURUSD' or 'EUR.USD', got {pair!r}"
        )
    return Contract(
        sec_type=SecType.FOREX,
        symbol=text[:3],
        currency=text[3:],
        exchange=exchange.upper(),
        local_symbol=f"{text[:3]}.{text[3:]}",
        con_id=con_id,
    )


def Future(
    symbol: str,
    expiry: str | date,
    exchange: str,
    currency: str = "USD",
    *,
    multiplier: float | None = None,
    local_symbol: str | None = None,
    trading_class: str | None = None,
    con_id: int | None = None,
) -> Contract:
    """A futures contract: ``Future("ES", "202703", "CME")``."""
    if not exchange or exchange.upper() == "SMART":
        raise InvalidRequest("futures need their exchange, e.g. 'CME' (SMART does not route them)")
    return Contract(
        sec_type=SecType.FUTURE,
        symbol=_symbol(symbol),
        expiry=_expiry(expiry),
        exchange=exchange.upper(),
        currency=_currency(currency),
        multiplier=_positive(multiplier, "multiplier") if multiplier is not None else None,
        local_symbol=local_symbol,
        trading_class=trading_class,
        con_id=con_id,
    )


def Option(
    symbol: str,
    expiry: str | date,
    strike: float,
    right: str | Right,
    exchange: str = "SMART",
    currency: str = "USD",
    *,
    multiplier: float | None = 100.0,
    trading_class: str | None = None,
    con_id: int | None = None,
) -> Contract:
    """An equity or index option: ``Option("AAPL", "20270115", 230, "C")``."""
    return Contract(
        sec_type=SecType.OPTION,
        symbol=_symbol(symbol),
        expiry=_expiry(expiry),
        strike=_positive(strike, "strike"),
        right=_right(right),
        exchange=exchange.upper(),
        currency=_currency(currency),
        multiplier=_positive(multiplier, "multiplier") if multiplier is not None else None,
        trading_class=trading_class,
        con_id=con_id,
    )


def Index(
    symbol: str, exchange: str, currency: str = "USD", *, con_id: int | None = None
) -> Contract:
    """An index (not tradable; for quotes and history): ``Index("SPX", "CBOE")``."""
    if not exchange or exchange.upper() == "SMART":
        raise InvalidRequest("indexes need their exchange, e.g. 'CBOE' for SPX")
    return Contract(
        sec_type=SecType.INDEX,
        symbol=_symbol(symbol),
        exchange=exchange.upper(),
        currency=_currency(currency),
        con_id=con_id,
    )


def _positive(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a positive number, got {value!r}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise InvalidRequest(f"{what} must be a positive number, got {value!r}")
    return number


def _right(right: str | Right) -> Right:
    text = str(right.value if isinstance(right, Right) else right).strip().upper()
    mapped = {"C": Right.CALL, "CALL": Right.CALL, "P": Right.PUT, "PUT": Right.PUT}.get(text)
    if mapped is None:
        raise InvalidRequest(f"option right must be 'C' or 'P' (or 'CALL'/'PUT'), got {right!r}")
    return mapped


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One OHLCV bar. ``time`` is the bar's start (aware); daily bars are midnight in the
    exchange's zone. ``volume``/``wap``/``count`` are None where IB reports none (e.g. MIDPOINT).
    """

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    wap: float | None = None
    count: int | None = None
