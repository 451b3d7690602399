"""Market data, order events and PnL as bounded async iterators (issue 5)."""

from __future__ import annotations

__all__: list[str] = []


class StreamsAPI:
    """Session methods for this feature; ``Session`` inherits them."""
