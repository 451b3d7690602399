"""Market-data records: quotes, ticks, the market data type, the Gap across an outage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from .contracts import Bar, Contract
from .options import Greeks

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
    On an option, ``greeks`` is IB's model computation and ``bid_greeks``, ``ask_greeks`` and
    ``last_greeks`` those at the bid, ask and last price (``None`` until sent, and on other
    instruments).
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
    greeks: Greeks | None = None
    bid_greeks: Greeks | None = None
    ask_greeks: Greeks | None = None
    last_greeks: Greeks | None = None

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
    "greeks",
    "bid_greeks",
    "ask_greeks",
    "last_greeks",
)
if tuple(f.name for f in dataclasses.fields(Quote)) != _QUOTE_FIELDS:  # pragma: no cover
    raise RuntimeError("Quote's fields changed: update _QUOTE_FIELDS and new_quote")

_new_object = object.__new__
# Each field's slot setter, called directly: the frozen dataclass refuses ``setattr``, and
# ``object.__setattr__`` looks the slot up again on every call.
(
    _s_contract,
    _s_time,
    _s_bid,
    _s_ask,
    _s_last,
    _s_bid_size,
    _s_ask_size,
    _s_last_size,
    _s_volume,
    _s_open,
    _s_high,
    _s_low,
    _s_close,
    _s_market_data_type,
    _s_halted,
    _s_greeks,
    _s_bid_greeks,
    _s_ask_greeks,
    _s_last_greeks,
) = (vars(Quote)[name].__set__ for name in _QUOTE_FIELDS)


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
    greeks: Greeks | None = None,
    bid_greeks: Greeks | None = None,
    ask_greeks: Greeks | None = None,
    last_greeks: Greeks | None = None,
) -> Quote:
    """``Quote(...)`` for the hot path: positional, without the frozen dataclass's per-field
    checks (about half the cost). Only for already-clean values (ibflow._ib._market)."""
    q: Quote = _new_object(Quote)
    _s_contract(q, contract)
    _s_time(q, time)
    _s_bid(q, bid)
    _s_ask(q, ask)
    _s_last(q, last)
    _s_bid_size(q, bid_size)
    _s_ask_size(q, ask_size)
    _s_last_size(q, last_size)
    _s_volume(q, volume)
    _s_open(q, open_)
    _s_high(q, high)
    _s_low(q, low)
    _s_close(q, close)
    _s_market_data_type(q, market_data_type)
    _s_halted(q, halted)
    _s_greeks(q, greeks)
    _s_bid_greeks(q, bid_greeks)
    _s_ask_greeks(q, ask_greeks)
    _s_last_greeks(q, last_greeks)
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
