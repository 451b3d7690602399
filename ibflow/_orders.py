"""Placing and tracking orders: builders, validation, the Trade handle (issue 4)."""

from __future__ import annotations

__all__: list[str] = []


class OrdersAPI:
    """Session methods for this feature; ``Session`` inherits them."""
