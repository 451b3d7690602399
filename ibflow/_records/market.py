"""Market-data records: quotes, ticks, the market data type, the Gap across an outage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from .contracts import Bar, Contract

__all__ = [
    "BidAskTick",
    "FormingBar",
    "Gap",
    "MarketDataType",
    "MidpointTick",
    "Quote",
    "Tick",
    "TickKind",
    "TradeTick",
]


class MarketDataType(StrEnum):
    """Which kind of market data TWS sends (``reqMarketDataType``)."""

    LIVE = "live"
    FROZEN = "frozen"
    """The last live values, after the market closed."""
    DELAYED = "delayed"
    """Delayed 15–20 minutes (no market-data subscription needed)."""
    DELAYED_FROZEN = "delayed_frozen"


MARKET_DATA_TYPES: Final[dict[int, MarketDataType]] = {
    1: MarketDataType.LIVE,
    2: MarketDataType.FROZEN,
    3: MarketDataType.DELAYED,
    4: MarketDataType.DELAYED_FROZEN,
}
MARKET_DATA_CODES: Final[dict[MarketDataType, int]] = {v: k for k, v in MARKET_DATA_TYPES.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """An immutable snapshot of one contract's top of book, as of ``time``.

    A field is ``None`` until TWS has sent it (or when IB says there is none, e.g. no bid).
    ``time`` is when the update arrived (aware, UTC). ``market_data_type`` says whether the
    values are live, frozen or delayed; ``halted`` is True while TWS reports a trading halt.
    """

    contract: Contract
    time: datetime
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    last_size: float | None = None
    volume: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    market_data_type: MarketDataType = MarketDataType.LIVE
    halted: bool = False

    @property
    def midpoint(self) -> float | None:
        """``(bid + ask) / 2`` when both sides are present."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


_QUOTE_FIELDS: Final = (
    "contract",
    "time",
    "bid",
    "ask",
    "last",
    "bid_size",
    "ask_size",
    "last_size",
    "volume",
    "open",
    "high",
    "low",
    "close",
    "market_data_type",
    "halted",
)
if tuple(f.name for f in dataclasses.fields(Quote)) != _QUOTE_FIELDS:  # pragma: no cover
    raise RuntimeError("Quote's fields changed: update _QUOTE_FIELDS and new_quote")

_new_object = object.__new__
_set = object.__setattr__


def new_quote(
    contract: Contract,
    time: datetime,
    bid: float | None,
    ask: float | None,
    last: float | None,
    bid_size: float | None,
    ask_size: float | None,
    last_size: float | None,
    volume: float | None,
    open_: float | None,
    high: float | None,
    low: float | None,
    close: float | None,
    market_data_type: MarketDataType,
    halted: bool,
) -> Quote:
    """``Quote(...)`` for the hot path: positional, without the frozen dataclass's per-field
    checks (about half the cost). Only for already-clean values (ibflow._ib._market)."""
    q: Quote = _new_object(Quote)
    _set(q, "contract", contract)
    _set(q, "time", time)
    _set(q, "bid", bid)
    _set(q, "ask", ask)
    _set(q, "last", last)
    _set(q, "bid_size", bid_size)
    _set(q, "ask_size", ask_size)
    _set(q, "last_size", last_size)
    _set(q, "volume", volume)
    _set(q, "open", open_)
    _set(q, "high", high)
    _set(q, "low", low)
    _set(q, "close", close)
    _set(q, "market_data_type", market_data_type)
    _set(q, "halted", halted)
    return q


class TickKind(StrEnum):
    """The tick-by-tick feeds IB offers (``reqTickByTickData``)."""

    LAST = "last"
    """Trades, as on the consolidated tape (odd lots and some venues excluded)."""
    ALL_LAST = "all_last"
    """Every trade, including odd lots and off-exchange prints."""
    BID_ASK = "bid_ask"
    MIDPOINT = "midpoint"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One tick-by-tick item: a :class:`TradeTick`, :class:`BidAskTick` or
    :class:`MidpointTick`. ``time`` is when it arrived (aware, UTC)."""

    contract: Contract
    time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeTick(Tick):
    """One trade from the ``last``/``all_last`` tick-by-tick feed."""

    price: float | None
    size: float | None
    exchange: str | None = None
    special_conditions: str | None = None
    past_limit: bool = False
    unreported: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BidAskTick(Tick):
    """One change of the best bid/ask from the ``bid_ask`` tick-by-tick feed."""

    bid: float | None
    ask: float | None
    bid_size: float | None
    ask_size: float | None
    bid_past_low: bool = False
    ask_past_high: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MidpointTick(Tick):
    """One change of the midpoint from the ``midpoint`` tick-by-tick feed."""

    midpoint: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """Data may be missing between ``start`` and ``end``: the link (or TWS's link to IB) was
    down, and the subscription was re-issued at ``end``. Yielded once per outage, in order.
    """

    start: datetime
    end: datetime
    reason: str

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class FormingBar(Bar):
    """The bar still being formed (``live_bars(..., include_forming=True)``).

    Yielded on every update of the current period; the same ``time`` then arrives once more as a
    plain, complete :class:`~ibflow.Bar` when the next period begins.
    """
