"""Cancelling orders no ``Trade`` handle covers: by order id, or all of them at once.

A :class:`~ibflow.Trade` follows the orders its session placed or adopted. ``cancel_order``
reaches this client id's open orders by id (through their Trade when the session has one, as
for an order an earlier run placed under the same client id). ``cancel_all`` is TWS's global
cancel (the kill switch's first half): every open order of every client id, and of TWS itself.
Both wait until TWS no longer lists the orders as open, and both are refused client-side on a
read-only session or a live account without ``allow_live``, like every order-mutating call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from .._error_codes import Severity, error_for
from .._errors import InvalidRequest, RequestTimeout
from .._log import get_logger
from .._records.orders import OrderSnapshot, OrderStatus
from .._records.session import Notice
from .._stream import Stream
from ._trade import Trade

if TYPE_CHECKING:
    from .._core import SessionCore

__all__ = ["cancel_all", "cancel_order"]

log = get_logger("orders")

_POLL_FIRST = 0.05  # seconds before the first re-read of the open orders; doubles up to _POLL_MAX
_POLL_MAX = 0.5

_Match = Callable[[OrderSnapshot], bool]
_Read = Callable[[], Awaitable[list[OrderSnapshot]]]


class Orders(Protocol):
    """What the cancels need of the orders feature."""

    def trades(self) -> tuple[Trade, ...]: ...

    async def open_orders(self, *, timeout: float | None = ...) -> list[OrderSnapshot]: ...

    async def every_open_order(self) -> list[OrderSnapshot]: ...

    async def completed_orders(
        self, *, api_only: bool = ..., timeout: float | None = ...
    ) -> list[OrderSnapshot]: ...


async def cancel_order(
    orders: Orders, core: SessionCore, order_id: int, timeout: object
) -> OrderStatus:
    """See :meth:`ibflow.Session.cancel_order`."""
    if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id <= 0:
        raise InvalidRequest(f"order_id must be a positive integer, got {order_id!r}")
    limit = core.limit(timeout)
    core.check_can_trade("cancel an order")
    core.require_ready()
    trade = next(
        (t for t in orders.trades() if t.order_id == order_id and t.client_id == core.client_id),
        None,
    )
    if trade is not None:
        return await trade.cancel(timeout=limit)

    def ours(row: OrderSnapshot) -> bool:
        return row.order_id == order_id and row.client_id == core.client_id

    try:
        async with asyncio.timeout(limit):
            before = [r for r in await orders.open_orders(timeout=None) if ours(r)]
            perm_id = before[0].perm_id if before else None

            def start() -> tuple[int, asyncio.Future[list[OrderSnapshot]]]:
                core.adapter.orders.send_cancel(order_id)
                log.info("order %d: cancel sent (placed by an earlier session)", order_id)
                cleared = _until_listed_none(lambda: orders.open_orders(timeout=None), ours)
                return order_id, asyncio.ensure_future(cleared)

            # Routed by the order id, so TWS's 10147 or 161 for it fails the call.
            await core.request(f"cancel of order {order_id}", start, timeout=None)
            if perm_id is None:
                return OrderStatus.CANCELLED
            done = await orders.completed_orders(timeout=None)
    except TimeoutError:
        raise RequestTimeout(
            f"TWS still lists order {order_id} as open after {limit} s (the cancel was sent "
            "once); check it with open_orders()"
        ) from None
    row = next((r for r in done if r.perm_id == perm_id), None)
    return row.status if row is not None else OrderStatus.CANCELLED


async def cancel_all(orders: Orders, core: SessionCore, timeout: object) -> list[OrderSnapshot]:
    """See :meth:`ibflow.Session.cancel_all`."""
    limit = core.limit(timeout)
    core.check_can_trade("cancel orders")
    core.require_ready()
    try:
        async with asyncio.timeout(limit), core.notices() as notices:
            before = [r for r in await orders.every_open_order() if not r.status.is_done]
            core.adapter.orders.send_global_cancel()
            log.info("global cancel sent (%d open order(s) listed)", len(before))
            refused = asyncio.ensure_future(_refusal(notices))
            cleared = asyncio.ensure_future(
                _until_listed_none(orders.every_open_order, lambda _row: True)
            )
            try:
                await asyncio.wait({refused, cleared}, return_when=asyncio.FIRST_COMPLETED)
                error = refused.result() if refused.done() else None
                if error is not None:
                    raise error
                last = await cleared
            finally:
                for task in (refused, cleared):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            done = await orders.completed_orders(timeout=None) if before else []
    except TimeoutError:
        raise RequestTimeout(
            f"orders were still open {limit} s after the global cancel (it was sent once); "
            "check them with open_orders()"
        ) from None
    return [_final(row, last, done) for row in before]


def _final(
    row: OrderSnapshot, listed: list[OrderSnapshot], done: list[OrderSnapshot]
) -> OrderSnapshot:
    """How an order open before the global cancel ended: its end as TWS's completed orders (or
    its last open-order row) tell it, else cancelled (TWS no longer lists it). The ids stay the
    open order's: a completed order carries no client id."""
    if row.perm_id:
        for rows in (done, listed):
            found = next((r for r in rows if r.perm_id == row.perm_id), None)
            if found is not None:
                return replace(
                    row,
                    status=found.status,
                    filled=found.filled,
                    remaining=found.remaining,
                    avg_fill_price=found.avg_fill_price,
                    completed_time=found.completed_time,
                    completed_status=found.completed_status,
                )
    return replace(row, status=OrderStatus.CANCELLED)


async def _until_listed_none(read: _Read, match: _Match) -> list[OrderSnapshot]:
    """Re-read the open orders, backing off, until none that ``match`` is still working;
    returns the last rows read."""
    pause = _POLL_FIRST
    while True:
        rows = await read()
        if not any(match(r) and not r.status.is_done for r in rows):
            return rows
        await asyncio.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)


async def _refusal(notices: Stream[Notice]) -> Exception | None:
    """The first error TWS sends addressed to no request (a refused global cancel), or
    ``None`` when the session's notices end (the open-orders reads then say why)."""
    async for notice in notices:
        if notice.severity is Severity.ERROR and notice.req_id < 0:
            return error_for(notice.code, notice.message, notice.req_id)
    return None
