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
    "MAX_TEXT",
    "Bar",
    "Contract",
    "Forex",
    "Future",
    "Index",
    "Option",
    "Right",
    "SecType",
    "Stock",
    "check_text",
]

MAX_TEXT = 128
"""The longest string ibflow sends in a contract field or an id (IB's own are far shorter)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_NUMBER = 1e9  # strikes and multipliers beyond this are typos, not instruments
_MAX_CON_ID = 2**31 - 1


def check_text(value: object, name: str, *, limit: int = MAX_TEXT) -> str:
    """``value`` if it is a string that may go on the wire, else :class:`InvalidRequest`.

    A control character (NUL is TWS's field separator) would shift the fields of the request
    it is part of, and an oversized string can exceed TWS's frame limit and drop the link.
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string, got {type(value).__name__} {value!r:.80}")
    if len(value) > limit:
        raise InvalidRequest(
            f"{name} is {len(value):,} characters long; at most {limit} are allowed"
        )
    bad = _CONTROL.search(value)
    if bad is not None:
        raise InvalidRequest(
            f"{name} contains the control character {bad.group()!r} at position {bad.start()} "
            f"in {value!r:.80}; remove it (TWS reads control characters as field separators)"
        )
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name} must be a number, got {value!r:.80}")
    number = float(value)
    if not -_MAX_NUMBER <= number <= _MAX_NUMBER:  # NaN and infinities fail here too
        raise InvalidRequest(
            f"{name} must be a finite number of at most {_MAX_NUMBER:g}, got {value!r}"
        )
    return number


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
        con_id = self.con_id
        if con_id is not None and (
            isinstance(con_id, bool) or not isinstance(con_id, int) or not 0 < con_id <= _MAX_CON_ID
        ):
            raise InvalidRequest(f"con_id must be a positive 32-bit integer, got {con_id!r:.80}")
        # The one check for every string of a contract, whoever built it: no Contract that
        # could corrupt a request exists, so nothing downstream has to check again.
        for name in ("symbol", "exchange", "currency"):
            check_text(getattr(self, name), f"contract {name}")
        for name in ("primary_exchange", "local_symbol", "trading_class", "expiry"):
            value = getattr(self, name)
            if value is not None:
                check_text(value, f"contract {name}")
        for name in ("strike", "multiplier"):
            value = getattr(self, name)
            if value is not None:
                _number(value, f"contract {name}")
        if self.right is not None and not isinstance(self.right, Right):
            object.__setattr__(self, "right", _right(self.right))
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


def _code(value: object, name: str) -> str:
    """An exchange-like code, upper-cased; wrong types are refused before ``.upper()``."""
    return check_text(value, name).upper()


def _symbol(symbol: str, what: str = "symbol") -> str:
    # Checked before stripping: str.strip() would remove some control characters quietly.
    if not _SYMBOL.match(check_text(symbol, what).strip()):
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
    text = check_text(expiry, "expiry").replace("-", "").strip()
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
        exchange=_code(exchange, "exchange"),
        currency=_currency(currency),
        primary_exchange=(
            _code(primary_exchange, "primary_exchange") if primary_exchange is not None else None
        ),
        con_id=con_id,
    )


def Forex(pair: str, exchange: str = "IDEALPRO", *, con_id: int | None = None) -> Contract:
    """A currency pair: ``Forex("EURUSD")`` or ``Forex("EUR.USD")`` (base, then quote)."""
    text = check_text(pair, "forex pair").replace(".", "").replace("/", "").strip().upper()
    if not re.fullmatch(r"[A-Z]{6}", text):
        raise InvalidRequest(
            f"a forex pair is six letters like 'EURUSD' or 'EUR.USD', got {pair!r}"
        )
    return Contract(
        sec_type=SecType.FOREX,
        symbol=text[:3],
        currency=text[3:],
        exchange=_code(exchange, "exchange"),
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
    if not _code(exchange, "exchange") or exchange.upper() == "SMART":
        raise InvalidRequest("futures need their exchange, e.g. 'CME' (SMART does not route them)")
    return Contract(
        sec_type=SecType.FUTURE,
        symbol=_symbol(symbol),
        expiry=_expiry(expiry),
        exchange=_code(exchange, "exchange"),
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
        exchange=_code(exchange, "exchange"),
        currency=_currency(currency),
        multiplier=_positive(multiplier, "multiplier") if multiplier is not None else None,
        trading_class=trading_class,
        con_id=con_id,
    )


def Index(
    symbol: str, exchange: str, currency: str = "USD", *, con_id: int | None = None
) -> Contract:
    """An index (not tradable; for quotes and history): ``Index("SPX", "CBOE")``."""
    if not _code(exchange, "exchange") or exchange.upper() == "SMART":
        raise InvalidRequest("indexes need their exchange, e.g. 'CBOE' for SPX")
    return Contract(
        sec_type=SecType.INDEX,
        symbol=_symbol(symbol),
        exchange=_code(exchange, "exchange"),
        currency=_currency(currency),
        con_id=con_id,
    )


def _positive(value: float, what: str) -> float:
    number = _number(value, what)
    if not number > 0:
        raise InvalidRequest(f"{what} must be a positive number, got {value!r}")
    return number


def _right(right: str | Right) -> Right:
    if isinstance(right, Right):
        return right
    text = check_text(right, "option right").strip().upper()
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
