"""Order messages first in the outbound budget, installed per ``Client`` instance.

IB allows 50 messages a second per connection, and ib_async keeps under it with a throttle in
``Client.sendMsg``: at most ``MaxRequests`` per ``RequestsInterval``, the rest queued first in,
first out. Under subscription churn (quote streams opened and closed faster than the budget
refills) that queue only grows, and an order placed then waits behind every market-data request
queued before it: seconds, where a trader needs milliseconds.

:func:`install_order_priority` replaces ``sendMsg`` on one ``Client`` with the same throttle
and two changes. Order messages (placeOrder, which also modifies, cancelOrder, reqGlobalCancel)
go ahead of every queued message that is not one, in the order they were sent among
themselves. And other messages leave part of the budget (a ninth, at least one message) to
order messages, so an order goes out at once even while the queue is full. Everything stays in
ib_async's own queue, so a disconnect drops queued orders as it drops everything queued (never
sent on the next connection), and ``throttleStart``/``throttleEnd`` fire as before. It is
installed only on the ib_async whose ``sendMsg`` it was written against; otherwise ib_async's
own stays (logged once at DEBUG).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from typing import Any

from ib_async import util
from ib_async.client import Client

from .._log import get_logger

__all__ = ["install_order_priority", "is_order_message", "is_order_priority", "order_reserve"]

log = get_logger("session")

_ATTR = "_ibflow_order_priority"
# placeOrder, cancelOrder, reqGlobalCancel: the message id leads the text.
_ORDER_HEADS = ("3\0", "4\0", "58\0")
# The names ib_async 2.1's sendMsg touches: a release that changes it changes them too.
_EXPECTED_NAMES = frozenset(
    {
        "DEBUG", "MaxRequests", "RequestsInterval", "_isThrottling", "_logger", "_msgQ",
        "_prefix", "_timeQ", "append", "call_at", "conn", "debug", "emit", "encode", "getLoop",
        "isEnabledFor", "len", "logging", "popleft", "replace", "sendMsg", "throttleEnd",
        "throttleStart", "time",
    }
)  # fmt: skip
_fallback_logged = False


def is_order_message(msg: str) -> bool:
    """True for the text of a placeOrder, cancelOrder or reqGlobalCancel."""
    return msg.startswith(_ORDER_HEADS)


def order_reserve(limit: int) -> int:
    """How many of ``limit`` messages per interval only order messages may use."""
    return min(max(1, limit // 9), limit - 1) if limit > 0 else 0


def _unsupported(client: Client) -> str:
    code = getattr(getattr(type(client), "sendMsg", None), "__code__", None)
    if code is None or frozenset(code.co_names) != _EXPECTED_NAMES:
        return "Client.sendMsg is not the one ib_async 2.1 shipped"
    for name in ("_msgQ", "_timeQ"):
        if not isinstance(getattr(client, name, None), deque):
            return f"Client.{name} is not a deque"
    if not callable(getattr(getattr(client, "conn", None), "sendMsg", None)):
        return "Client.conn.sendMsg is missing"
    for name in ("throttleStart", "throttleEnd"):
        if not callable(getattr(getattr(client, name, None), "emit", None)):
            return f"Client.{name} is missing"
    if not isinstance(getattr(client, "MaxRequests", None), int):
        return "Client.MaxRequests is not an int"
    if not callable(getattr(client, "_prefix", None)):
        return "Client._prefix is missing"
    return ""


class _OrdersFirst:
    """``Client.sendMsg`` with order messages ahead of the rest and a share kept for them."""

    __slots__ = ("_client", "_timer")

    def __init__(self, client: Client) -> None:
        # Weak: the handler is an attribute of the client, a strong one would make a cycle.
        self._client = weakref.ref(client)
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, msg: str | None) -> None:
        client = self._client()
        if client is None:
            return
        if msg:
            queue: deque[str] = client._msgQ
            if is_order_message(msg):
                # Behind the order messages already waiting, ahead of everything else.
                ahead = 0
                for queued in queue:
                    if not is_order_message(queued):
                        break
                    ahead += 1
                queue.insert(ahead, msg)
            else:
                queue.append(msg)
        self._drain(client)

    def _wake(self) -> None:
        self._timer = None
        self(None)

    def _drain(self, client: Any) -> None:
        loop = util.getLoop()
        now = loop.time()
        interval = client.RequestsInterval
        times: deque[float] = client._timeQ
        queue: deque[str] = client._msgQ
        while times and now - times[0] >= interval:
            times.popleft()
        limit = client.MaxRequests
        others = limit - order_reserve(limit)
        room = 0
        debug = client._logger.isEnabledFor(logging.DEBUG)
        while queue:
            if limit:
                room = limit if is_order_message(queue[0]) else others
                if len(times) >= room:
                    break
            msg = queue.popleft()
            client.conn.sendMsg(client._prefix(msg.encode()))
            times.append(now)
            if debug:
                client._logger.debug(">>> %s", msg[:-1].replace("\0", ","))
        if queue:
            if not client._isThrottling:
                client._isThrottling = True
                client.throttleStart.emit()
                client._logger.debug("Started to throttle requests")
            # When the oldest sends that fill the head's share have left the window.
            when = times[len(times) - room] + interval
            timer = self._timer
            if timer is None or timer.when() != when:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(when, self._wake)
        elif client._isThrottling:
            client._isThrottling = False
            client.throttleEnd.emit()
            client._logger.debug("Stopped to throttle requests")


def install_order_priority(client: Client) -> bool:
    """Send ``client``'s order messages ahead of its queued requests; True if now in use."""
    global _fallback_logged
    if isinstance(getattr(client, _ATTR, None), _OrdersFirst):
        return True
    why = _unsupported(client)
    if why:
        if not _fallback_logged:
            _fallback_logged = True
            log.debug("order messages keep ib_async's first-in first-out throttle: %s", why)
        return False
    handler = _OrdersFirst(client)
    setattr(client, _ATTR, handler)
    setattr(client, "sendMsg", handler)  # noqa: B010  # an instance attribute over the method
    return True


def is_order_priority(client: Client) -> bool:
    """True if ``client`` sends order messages ahead of its queued requests."""
    return isinstance(getattr(client, _ATTR, None), _OrdersFirst)
