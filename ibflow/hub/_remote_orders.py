"""Handles on orders placed through a hub: ``RemoteTrade``, ``RemoteTradeGroup`` and
``RemoteBracketTrade``, shaped as ``Trade``, ``TradeGroup`` and ``BracketTrade``.

A handle follows its order in the hub's order journal (``_remote_events.OrderTracker``), so
its waits hold across a hub failover and for an order placed before this process started;
cancels and changes are requests to the hub, which holds the real ``Trade``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibflow
from ibflow._records.groups import TradeTuple
from ibflow._timeouts import SESSION_DEFAULT

from ._remote_events import EXEC_GRACE, OrderTracker, end_error

__all__ = [
    "OrderLink",
    "RemoteBracketTrade",
    "RemoteTrade",
    "RemoteTradeGroup",
    "check_key",
    "make_handle",
]

_DEFAULT: Any = SESSION_DEFAULT
Call = Callable[..., Coroutine[Any, Any, Any]]


_KEY_LIMIT = 64


def check_key(key: object) -> str:
    """``key`` if ``Session.place(key=)`` would take it (the same rules on both); else
    ``InvalidRequest``."""
    if not isinstance(key, str):
        raise ibflow.InvalidRequest(f"key must be a string, got {type(key).__name__} {key!r:.80}")
    if not key or len(key) > _KEY_LIMIT or not all(33 <= ord(ch) < 127 for ch in key):
        raise ibflow.InvalidRequest(
            f"key must be 1 to {_KEY_LIMIT} printable ASCII characters without spaces, got "
            f"{key!r:.80}"
        )
    if ":" in key:
        raise ibflow.InvalidRequest(
            f"key {key!r:.80} contains ':' (as Session.place, which keeps ':' for the legs of "
            "a bracket or OCA group); use another separator, such as '-' or '.'"
        )
    return key


@dataclass(frozen=True, slots=True)
class OrderLink:
    """What an order handle needs of its session: calls to the hub, the journal's tracker, and
    the session's default timeout."""

    call: Call
    tracker: OrderTracker
    timeout: float | None

    def limit(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is _DEFAULT else timeout


class RemoteTrade:
    """An order placed through a hub: its id and key, and waits that follow the hub's journal.

    ``duplicate`` is true when the hub had already placed an order with this key and returned
    that one instead of placing again.
    """

    def __init__(
        self,
        link: OrderLink,
        contract: ibflow.Contract,
        order: ibflow.Order,
        *,
        order_id: int,
        status: ibflow.OrderStatus,
        key: str,
        duplicate: bool,
    ) -> None:
        self._link = link
        self._call = link.call
        self._contract = contract
        self._order = order
        self._order_id = order_id
        self.key = key
        self.duplicate = duplicate
        self._status = status
        self._fills: tuple[ibflow.Fill, ...] = ()
        self._filled = 0.0
        self._answered_done = False  # the hub's full answer said done; the journal may trail

    @property
    def order_id(self) -> int:
        return self._order_id

    @property
    def contract(self) -> ibflow.Contract:
        return self._contract

    @property
    def order(self) -> ibflow.Order:
        """The order's terms as of the last answer from the hub (``modify()`` changes them)."""
        return self._order

    @property
    def status(self) -> ibflow.OrderStatus:
        """The status as of the latest order event in the hub's journal (or answer from the
        hub)."""
        return self._status

    @property
    def is_done(self) -> bool:
        return self._status.is_done

    @property
    def fills(self) -> tuple[ibflow.Fill, ...]:
        """The fills received so far, oldest first."""
        return self._fills

    @property
    def filled(self) -> float:
        return self._filled

    def __repr__(self) -> str:
        return f"<RemoteTrade order {self._order_id} {self._status.value} key={self.key!r}>"

    def sync(self) -> bool:
        """Take the journal's view of the order; True once it is done."""
        journal = self._link.tracker.get(self._order_id)
        fills = {f.exec_id: f for f in (*self._fills, *journal.fills.values())}
        self._fills = tuple(sorted(fills.values(), key=lambda f: (f.time, f.exec_id)))
        self._filled = max(self._filled, journal.filled, sum(f.quantity for f in self._fills))
        if journal.status.is_done or not self._answered_done:
            self._status = journal.status
        if self._filled >= self._order.quantity and not self._status.is_done:
            self._status = ibflow.OrderStatus.FILLED
        return self._status.is_done

    async def wait_filled(self, *, timeout: float | None = _DEFAULT) -> tuple[ibflow.Fill, ...]:
        """Wait until the order filled completely; its fills, as ``Trade.wait_filled()``.

        Follows the order's events and fills in the hub's journal, so it works across a hub
        failover and for an order placed before this process started (same ``key``).

        Raises:
            OrderCancelled / OrderRejected: the order ended without filling completely.
            RequestTimeout: not filled in time (the order stays working).
        """
        tracker = self._link.tracker
        what = f"order {self._order_id} to fill"
        await tracker.wait(self.sync, self._link.limit(timeout), what)
        if self._status is not ibflow.OrderStatus.FILLED:
            raise end_error(self._order_id, tracker.get(self._order_id), self._order.quantity)
        with contextlib.suppress(ibflow.RequestTimeout):  # executions may trail the status
            await tracker.wait(
                lambda: self.sync() and sum(f.quantity for f in self._fills) >= self._filled,
                EXEC_GRACE,
                what,
            )
        return self._fills

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> ibflow.OrderStatus:
        """Wait until the order is done (filled, cancelled or inactive); its final status,
        following the hub's journal as ``wait_filled()``."""
        await self._link.tracker.wait(
            self.sync, self._link.limit(timeout), f"order {self._order_id} to finish"
        )
        return self._status

    async def refresh(self) -> ibflow.OrderStatus:
        """Ask the hub for the order's status now (the journal's, for an order an earlier
        hub placed)."""
        try:
            self.update(
                await self._call("order.wait", [self._order_id], {"until": "now"}, _DEFAULT)
            )
        except ibflow.InvalidRequest:
            self.sync()
        return self._status

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> ibflow.OrderStatus:
        """Cancel the order at the hub, as ``Trade.cancel()``; the resulting status."""
        status: ibflow.OrderStatus = await self._call("order.cancel", [self._order_id], {}, timeout)
        self._status = status
        return status

    async def modify(
        self,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trigger_price: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        trail_stop_price: float | None = None,
        limit_offset: float | None = None,
        offset: float | None = None,
        cap: float | None = None,
        tif: ibflow.TimeInForce | str | None = None,
        good_till: datetime | None = None,
        timeout: float | None = _DEFAULT,
    ) -> None:
        """Change the order's terms at the hub, as ``Trade.modify()`` (only those given)."""
        given = {
            "quantity": quantity,
            "limit_price": limit_price,
            "stop_price": stop_price,
            "trigger_price": trigger_price,
            "trail_amount": trail_amount,
            "trail_percent": trail_percent,
            "trail_stop_price": trail_stop_price,
            "limit_offset": limit_offset,
            "offset": offset,
            "cap": cap,
            "tif": tif,
            "good_till": good_till,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        self.update(await self._call("order.modify", [self._order_id], changes, timeout))

    def update(self, snapshot: dict[str, Any]) -> None:
        """Take the hub's latest word on this order."""
        self._status = snapshot["status"]
        self._answered_done = self._status.is_done
        self._filled = snapshot["filled"]
        self._fills = tuple(snapshot["fills"])
        self._order = snapshot["order"]


class RemoteTradeGroup(TradeTuple[RemoteTrade]):
    """The orders of an OCA group placed through a hub, as ``TradeGroup``."""

    def __init__(self, link: OrderLink, trades: Sequence[RemoteTrade]) -> None:
        super().__init__(trades)
        self._link = link

    @property
    def key(self) -> str:
        return self._trades[0].key if self._trades else ""

    @property
    def duplicate(self) -> bool:
        return bool(self._trades) and self._trades[0].duplicate

    async def wait_done(
        self, *, timeout: float | None = _DEFAULT
    ) -> tuple[ibflow.OrderStatus, ...]:
        """Wait until every order of the group is done; their statuses, following the hub's
        journal as ``RemoteTrade.wait_done()``."""
        await self._link.tracker.wait(
            lambda: all([t.sync() for t in self._trades]),
            self._link.limit(timeout),
            f"orders {', '.join(str(t.order_id) for t in self._trades)} to finish",
        )
        return tuple(t.status for t in self._trades)

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> tuple[ibflow.OrderStatus, ...]:
        """Cancel every order of the group that is not done, as ``TradeGroup.cancel()``."""
        if not self._trades:
            return ()
        ids = [t.order_id for t in self._trades]
        snapshots = await self._link.call("group.cancel", [ids], {}, timeout)
        for trade, snapshot in zip(self._trades, snapshots, strict=True):
            trade.update(snapshot)
        return tuple(t.status for t in self._trades)


class RemoteBracketTrade(RemoteTradeGroup):
    """The three orders of a bracket placed through a hub, as ``BracketTrade``."""

    @property
    def parent(self) -> RemoteTrade:
        return self._trades[0]

    @property
    def take_profit(self) -> RemoteTrade:
        return self._trades[1]

    @property
    def stop_loss(self) -> RemoteTrade:
        return self._trades[2]


def make_handle(link: OrderLink, contract: ibflow.Contract, reply: dict[str, Any]) -> Any:
    """The handle for the hub's answer to ``place()``: a ``RemoteTrade``, or a
    ``RemoteBracketTrade`` / ``RemoteTradeGroup`` of them."""
    trades = [
        RemoteTrade(
            link,
            contract,
            placed["order"],
            order_id=placed["order_id"],
            status=placed["status"],
            key=reply["key"],
            duplicate=reply["duplicate"],
        )
        for placed in reply["orders"]
    ]
    if reply["kind"] == "bracket":
        return RemoteBracketTrade(link, trades)
    if reply["kind"] == "group":
        return RemoteTradeGroup(link, trades)
    return trades[0]
