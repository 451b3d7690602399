"""Historical bars, paced long downloads and the local cache (issue 6)."""

from __future__ import annotations

__all__: list[str] = []


class HistoryAPI:
    """Session methods for this feature; ``Session`` inherits them."""
