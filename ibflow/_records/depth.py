"""Market-depth records: an immutable order book, and the venues that offer depth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DepthExchange", "Level", "OrderBook"]


@dataclass(frozen=True, slots=True)
class Level:
    """One row of a book side. ``market_maker`` is the venue (SMART depth) or the market
    maker's id (NASDAQ); ``None`` where IB names none."""

    price: float
    size: float
    market_maker: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderBook:
    """A snapshot of the book: ``bids`` best (highest) first, ``asks`` best (lowest) first.

    ``time`` is when the update that produced it arrived (aware, UTC).
    """

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    time: datetime

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None

    @property
    def spread(self) -> float | None:
        """Best ask minus best bid, when both sides have a row."""
        if not self.bids or not self.asks:
            return None
        return self.asks[0].price - self.bids[0].price


@dataclass(frozen=True, slots=True, kw_only=True)
class DepthExchange:
    """A venue offering market depth (``reqMktDepthExchanges``).

    ``service_data_type`` is IB's "Deep" (one row per price) or "Deep2" (per market maker);
    ``agg_group`` is IB's aggregation group for SMART depth (``None`` if unset).
    """

    exchange: str
    sec_type: str
    listing_exchange: str | None
    service_data_type: str
    agg_group: int | None
