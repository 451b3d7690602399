"""Cancelling orders no ``Trade`` handle covers: by order id, or all of them at once.

A :class:`~ibflow.Trade` follows the orders its session placed. An order an earlier program or
run placed under the same client id has no handle in this session, yet TWS lets that client id
cancel it; ``cancel_order`` reaches it by id. ``cancel_all_orders`` is TWS's global cancel: every
open order of every client id, and of TWS itself. Both wait until TWS no longer lists the
orders as open, and both are refused client-side on a read-only session or a live account
without ``allow_live``, like every order-mutating call.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, cast

from ._error_codes import Severity, error_for
from ._errors import InvalidRequest, RequestTimeout
from ._ib import _orders as _wire
from ._ib._errors import map_ib_errors
from ._log import get_logger
from ._orders import OrderSnapshot, OrderStatus
from ._timeouts import SESSION_DEFAULT, resolve_timeout

if TYPE_CHECKING:
    from ._session import Notice, Session

__all__ = ["CancelsAPI"]

log = get_logger("orders")

_POLL_FIRST = 0.05  # seconds before the first re-read of the open orders; doubles up to _POLL_MAX
_POLL_MAX = 0.5


class CancelsAPI:
    """Session methods for cancelling by order id and globally; ``Session`` inherits them."""

    async def cancel_order(
        self, order_id: int, *, timeout: float | None = SESSION_DEFAULT
    ) -> OrderStatus:
        """Cancel this client id's open order ``order_id``, whichever session placed it.

        An order this session placed is cancelled through its Trade (``trade.cancel()``).
        Otherwise the cancel is sent once and the call returns when TWS no longer lists the
        order as open.

        Returns:
            The order's final status as TWS reports it among today's completed orders
            (``Cancelled``, or ``Filled`` if it filled first); ``Cancelled`` when TWS lists it
            nowhere any more.

        Raises:
            InvalidRequest: ``order_id`` is not a positive integer.
            SafetyError: the session is read-only, or live without ``allow_live``.
            OrderRejected: TWS refused the cancel: 10147 when this client id has no open order
                with that id (only the placing client id may cancel an order), 161 when the
                order cannot be cancelled any more.
            RequestTimeout: TWS still lists the order after ``timeout`` (the cancel was sent).
            ConnectionLost, SessionClosedError: the session went away.
        """
        session = cast("Session", self)
        if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id <= 0:
            raise InvalidRequest(f"order_id must be a positive integer, got {order_id!r}")
        limit = resolve_timeout(timeout, session._timeout)
        session._check_can_trade("cancel an order")
        session._require_ready()
        mine = [t for t in session.trades() if t.client_id == session.client_id]
        trade = next((t for t in mine if t.order_id == order_id), None)
        if trade is not None:
            return await trade.cancel(timeout=limit)

        def ours(row: OrderSnapshot) -> bool:
            return row.order_id == order_id and row.client_id == session.client_id

        try:
            async with asyncio.timeout(limit):
                before = [r for r in await session.open_orders(timeout=None) if ours(r)]
                perm_id = before[0].perm_id if before else None

                async def gone() -> None:
                    await _until_listed_none(session, ours)

                def start() -> tuple[int, asyncio.Future[None]]:
                    _wire.send_cancel(session._adapter, order_id)
                    log.info("order %d: cancel sent (placed by an earlier session)", order_id)
                    return order_id, asyncio.ensure_future(gone())

                # Routed by the order id, so TWS's 10147 or 161 for it fails the call.
                await session._request(f"cancel of order {order_id}", start, timeout=None)
                if perm_id is None:
                    return OrderStatus.CANCELLED
                done = await session.completed_orders(timeout=None)
        except TimeoutError:
            raise RequestTimeout(
                f"TWS still lists order {order_id} as open after {limit} s (the cancel was "
                "sent once); check it with open_orders()"
            ) from None
        row = next((r for r in done if r.perm_id == perm_id), None)
        return row.status if row is not None else OrderStatus.CANCELLED

    async def cancel_all_orders(self, *, timeout: float | None = SESSION_DEFAULT) -> None:
        """Cancel every open order of the account: all client ids' and TWS's own (global cancel).

        Returns when TWS lists no open order any more (the orders this session can list: its
        own client id's, or every client id's with ``all_open_orders=True``).

        Raises:
            SafetyError: the session is read-only, or live without ``allow_live``.
            RequestError: TWS refused the global cancel (e.g. 321 in read-only API mode).
            RequestTimeout: orders were still open after ``timeout`` (the cancel was sent).
            ConnectionLost, SessionClosedError: the session went away.
        """
        session = cast("Session", self)
        limit = resolve_timeout(timeout, session._timeout)
        session._check_can_trade("cancel orders")
        session._require_ready()
        notices = session.notices()
        try:
            async with asyncio.timeout(limit), notices:
                with map_ib_errors("reqGlobalCancel"):
                    _wire.send_global_cancel(session._adapter)
                log.info("global cancel sent")
                refused = asyncio.ensure_future(_refusal(notices))
                cleared = asyncio.ensure_future(_until_listed_none(session, lambda _row: True))
                try:
                    await asyncio.wait({refused, cleared}, return_when=asyncio.FIRST_COMPLETED)
                    error = refused.result() if refused.done() else None
                    if error is not None:
                        raise error
                    await cleared
                finally:
                    for task in (refused, cleared):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        except TimeoutError:
            raise RequestTimeout(
                f"orders were still open {limit} s after the global cancel (it was sent once); "
                "check them with open_orders()"
            ) from None


async def _until_listed_none(session: Session, match: _Match) -> None:
    """Re-read the open orders, backing off, until none that ``match`` is still working."""
    pause = _POLL_FIRST
    while any(match(r) and not r.status.is_done for r in await session.open_orders(timeout=None)):
        await asyncio.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)


async def _refusal(notices: _Notices) -> Exception | None:
    """The first error TWS sends addressed to no request (a refused global cancel), or
    ``None`` when the session's notices end (the open-orders reads then say why)."""
    async for notice in notices:
        if notice.severity is Severity.ERROR and notice.req_id < 0:
            return error_for(notice.code, notice.message, notice.req_id)
    return None


if TYPE_CHECKING:
    from collections.abc import Callable

    from ._session import Feed

    _Match = Callable[[OrderSnapshot], bool]
    _Notices = Feed[Notice]
