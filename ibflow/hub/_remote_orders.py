"""Handles on orders placed through a hub: ``RemoteTrade``, ``RemoteTradeGroup`` and
``RemoteBracketTrade``, shaped as ``Trade``, ``TradeGroup`` and ``BracketTrade``.

A handle keeps what the hub last said about its order; every wait, cancel and change is one
request to the hub, which holds the real ``Trade``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import ibflow
from ibflow._timeouts import SESSION_DEFAULT

__all__ = ["RemoteBracketTrade", "RemoteTrade", "RemoteTradeGroup", "make_handle"]

_DEFAULT: Any = SESSION_DEFAULT
Call = Callable[..., Coroutine[Any, Any, Any]]


class RemoteTrade:
    """An order placed through a hub: its id and key, and waits that ask the hub.

    ``duplicate`` is true when the hub had already placed an order with this key and returned
    that one instead of placing again.
    """

    def __init__(
        self,
        call: Call,
        contract: ibflow.Contract,
        order: ibflow.Order,
        *,
        order_id: int,
        status: ibflow.OrderStatus,
        key: str,
        duplicate: bool,
    ) -> None:
        self._call = call
        self._contract = contract
        self._order = order
        self._order_id = order_id
        self.key = key
        self.duplicate = duplicate
        self._status = status
        self._fills: tuple[ibflow.Fill, ...] = ()
        self._filled = 0.0

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
        """The status as of the last answer from the hub."""
        return self._status

    @property
    def is_done(self) -> bool:
        return self._status.is_done

    @property
    def fills(self) -> tuple[ibflow.Fill, ...]:
        """The fills as of the last answer from the hub."""
        return self._fills

    @property
    def filled(self) -> float:
        return self._filled

    def __repr__(self) -> str:
        return f"<RemoteTrade order {self._order_id} {self._status.value} key={self.key!r}>"

    async def wait_filled(self, *, timeout: float | None = _DEFAULT) -> tuple[ibflow.Fill, ...]:
        """Wait until the order filled completely; its fills, as ``Trade.wait_filled()``.

        Raises:
            OrderCancelled / OrderRejected: the order ended without filling completely.
            RequestTimeout: not filled in time (the order stays working).
        """
        self.update(await self._call("order.wait", [self._order_id], {"until": "filled"}, timeout))
        return self._fills

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> ibflow.OrderStatus:
        """Wait until the order is done (filled, cancelled or inactive); its final status."""
        self.update(await self._call("order.wait", [self._order_id], {"until": "done"}, timeout))
        return self._status

    async def refresh(self) -> ibflow.OrderStatus:
        """Ask the hub for the order's status now."""
        self.update(await self._call("order.wait", [self._order_id], {"until": "now"}, _DEFAULT))
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
        timeout: float | None = _DEFAULT,
    ) -> None:
        """Change the order's quantity or prices at the hub, as ``Trade.modify()``."""
        changes = {"quantity": quantity, "limit_price": limit_price, "stop_price": stop_price}
        self.update(await self._call("order.modify", [self._order_id], changes, timeout))

    def update(self, snapshot: dict[str, Any]) -> None:
        """Take the hub's latest word on this order."""
        self._status = snapshot["status"]
        self._filled = snapshot["filled"]
        self._fills = tuple(snapshot["fills"])
        self._order = snapshot["order"]


class RemoteTradeGroup:
    """The orders of an OCA group placed through a hub, as ``TradeGroup``."""

    def __init__(self, call: Call, trades: Sequence[RemoteTrade]) -> None:
        self._call = call
        self._trades = tuple(trades)

    @property
    def trades(self) -> tuple[RemoteTrade, ...]:
        return self._trades

    @property
    def key(self) -> str:
        return self._trades[0].key if self._trades else ""

    @property
    def duplicate(self) -> bool:
        return bool(self._trades) and self._trades[0].duplicate

    def __iter__(self) -> Iterator[RemoteTrade]:
        return iter(self._trades)

    def __len__(self) -> int:
        return len(self._trades)

    def __getitem__(self, index: int) -> RemoteTrade:
        return self._trades[index]

    @property
    def is_done(self) -> bool:
        return all(t.is_done for t in self._trades)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self._trades)
        return f"<{type(self).__name__} [{inner}]>"

    async def wait_done(
        self, *, timeout: float | None = _DEFAULT
    ) -> tuple[ibflow.OrderStatus, ...]:
        """Wait until every order of the group is done; their statuses."""
        return await self._group("group.wait", timeout)

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> tuple[ibflow.OrderStatus, ...]:
        """Cancel every order of the group that is not done, as ``TradeGroup.cancel()``."""
        return await self._group("group.cancel", timeout)

    async def _group(self, method: str, timeout: float | None) -> tuple[ibflow.OrderStatus, ...]:
        if not self._trades:
            return ()
        ids = [t.order_id for t in self._trades]
        snapshots = await self._call(method, [ids], {}, timeout)
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


def make_handle(call: Call, contract: ibflow.Contract, reply: dict[str, Any]) -> Any:
    """The handle for the hub's answer to ``place()``: a ``RemoteTrade``, or a
    ``RemoteBracketTrade`` / ``RemoteTradeGroup`` of them."""
    trades = [
        RemoteTrade(
            call,
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
        return RemoteBracketTrade(call, trades)
    if reply["kind"] == "group":
        return RemoteTradeGroup(call, trades)
    return trades[0]
