"""Orders placed together: an OCA group or a bracket, waited on and cancelled as one."""

from __future__ import annotations

import asyncio

from .._records.groups import TradeTuple
from .._records.orders import OrderStatus
from .._timeouts import SESSION_DEFAULT
from ._trade import Trade, wait_until

__all__ = ["BracketTrade", "TradeGroup"]

_DEFAULT = SESSION_DEFAULT


class TradeGroup(TradeTuple[Trade]):
    """The trades of one bracket or OCA group, placed together."""

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> tuple[OrderStatus, ...]:
        """Wait until every order of the group is done; returns their statuses.

        Raises:
            RequestTimeout: not all done within ``timeout`` (the session default if not given).
            SessionClosedError / ConnectionLost: the session closed (or gave up reconnecting).
        """
        if not self._trades:
            return ()
        book = self._trades[0]._book
        limit = book.core.limit(timeout)

        def ready() -> bool:
            if self.is_done:
                return True
            book.raise_if_closed()
            return False

        await wait_until(book.signal, ready, limit, "waiting for the group to finish")
        return tuple(t.status for t in self._trades)

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> tuple[OrderStatus, ...]:
        """Cancel every order of the group that is not done; returns the final statuses.

        For a bracket whose entry has not filled, only the entry is cancelled (TWS cancels its
        children with it).

        Raises:
            SafetyError, OrderRejected, RequestTimeout, ConnectionLost: as ``Trade.cancel``.
        """
        if not self._trades:
            return ()
        limit = self._trades[0]._book.core.limit(timeout)
        targets = [
            t for t in self._trades if not t.is_done and (t._parent is None or t._parent.is_done)
        ]
        await asyncio.gather(*(t.cancel(timeout=limit) for t in targets))
        return await self.wait_done(timeout=limit)


class BracketTrade(TradeGroup):
    """The three trades of a bracket: ``parent``, ``take_profit``, ``stop_loss``."""

    @property
    def parent(self) -> Trade:
        return self._trades[0]

    @property
    def take_profit(self) -> Trade:
        return self._trades[1]

    @property
    def stop_loss(self) -> Trade:
        return self._trades[2]
