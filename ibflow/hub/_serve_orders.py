"""The hub's order desk: what a placement returns to a remote session, and the calls on the
trades the hub placed (waits, cancels, changes), by order id."""

from __future__ import annotations

import inspect
from typing import Any

import ibflow

__all__ = ["MODIFY_TERMS", "OrderDesk", "describe"]

# What ``Trade.modify()`` may change, under the builders' names: its keywords but the timeout.
MODIFY_TERMS = frozenset(inspect.signature(ibflow.Trade.modify).parameters) - {"self", "timeout"}


def describe(placed: ibflow.Trade | ibflow.TradeGroup) -> dict[str, Any]:
    """A placement as it travels: its kind and each order's id and status (entry first)."""
    trades: tuple[ibflow.Trade, ...]
    if isinstance(placed, ibflow.Trade):
        kind, trades = "order", (placed,)
    else:
        kind = "bracket" if isinstance(placed, ibflow.BracketTrade) else "group"
        trades = placed.trades
    return {
        "kind": kind,
        "orders": [{"order_id": t.order_id, "status": t.status, "order": t.order} for t in trades],
    }


class OrderDesk:
    """The trades placed through one hub since it started, by order id."""

    def __init__(self, hub: str, trades: dict[int, ibflow.Trade]) -> None:
        self._hub = hub
        self._trades = trades

    def keep(self, placed: ibflow.Trade | ibflow.TradeGroup) -> None:
        for trade in (placed,) if isinstance(placed, ibflow.Trade) else placed.trades:
            self._trades[trade.order_id] = trade

    def knows(self, order_id: int) -> bool:
        """True for an order this hub placed since it started."""
        return order_id in self._trades

    def trade(self, order_id: object) -> ibflow.Trade:
        trade = self._trades.get(order_id) if isinstance(order_id, int) else None
        if trade is None:
            raise ibflow.InvalidRequest(
                f"order {order_id!r} was not placed through hub {self._hub!r} since it started"
            )
        return trade

    @staticmethod
    def snapshot(trade: ibflow.Trade) -> dict[str, Any]:
        return {
            "status": trade.status,
            "fills": trade.fills,
            "filled": trade.filled,
            "order": trade.order,
        }

    async def wait(self, order_id: int, *, until: str, timeout: float | None) -> dict[str, Any]:
        trade = self.trade(order_id)
        if until == "filled":
            await trade.wait_filled(timeout=timeout)
        elif until == "done":
            await trade.wait_done(timeout=timeout)
        elif until != "now":
            raise ibflow.InvalidRequest(f"until must be filled, done or now, got {until!r}")
        return self.snapshot(trade)

    async def modify(self, order_id: int, *, timeout: float | None, **terms: Any) -> dict[str, Any]:
        """``Trade.modify()`` with the terms a remote sent (the builders' names)."""
        unknown = sorted(set(terms) - MODIFY_TERMS)
        if unknown:
            raise ibflow.InvalidRequest(
                f"modify takes {', '.join(sorted(MODIFY_TERMS))}; not {', '.join(unknown)}"
            )
        trade = self.trade(order_id)
        await trade.modify(**terms, timeout=timeout)
        return self.snapshot(trade)

    async def cancel_group(
        self, order_ids: list[int], *, timeout: float | None
    ) -> list[dict[str, Any]]:
        """Cancel what is not done in a group, as ``TradeGroup.cancel()``."""
        group = ibflow.TradeGroup([self.trade(i) for i in order_ids])
        await group.cancel(timeout=timeout)
        return [self.snapshot(t) for t in group.trades]
