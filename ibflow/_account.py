"""Account, portfolio, contract and order-history reads on the Session (issue 4)."""

from __future__ import annotations

__all__: list[str] = []


class AccountAPI:
    """Session methods for this feature; ``Session`` inherits them."""
