"""Where a session routes IB's answers: in-flight requests and live subscriptions by request id.

Errors are matched to their caller by request id through one router (a cancelled call's late
answer can never reach the next caller), and every subscription that must survive a reconnect is
registered here to be re-issued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ._errors import ConnectionLost, IBFlowError, RequestError
from ._log import get_logger

__all__ = ["RequestRouter", "SubscriptionHandler", "SubscriptionRegistry"]

log = get_logger("session")


class SubscriptionHandler(Protocol):
    """What a stream registers in ``session._subscriptions`` to survive reconnects.

    The session calls ``resubscribe`` after a reconnect (``fresh_link=True``) and after IB
    error 1101 (``fresh_link=False``: same socket, TWS lost the data); it returns the request id
    it now uses, or ``None`` when it ended itself. ``on_error`` gets request-level errors
    addressed to its id, ``on_link_down`` is called when the link drops (a gap starts), and
    ``on_close`` ends it for good (``ConnectionLost`` when the session gave up, ``None`` on a
    normal close).
    """

    kind: str

    async def resubscribe(self, fresh_link: bool) -> int | None: ...

    def on_error(self, error: RequestError) -> None: ...

    def on_link_down(self) -> None: ...

    def on_close(self, error: IBFlowError | None) -> None: ...


class SubscriptionRegistry:
    """Live subscriptions keyed by request id, and those waiting to be re-issued.

    A subscription whose re-issue fails because the link dropped again waits for the next
    round (the next READY); only a refusal (an IB error, a bad request) or the session's end
    closes it.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, SubscriptionHandler] = {}
        self._waiting: dict[SubscriptionHandler, None] = {}  # an ordered set
        self._round = 0
        self._lock = asyncio.Lock()

    def add(self, req_id: int, handler: SubscriptionHandler) -> None:
        self._by_id[req_id] = handler

    def remove(self, req_id: int) -> SubscriptionHandler | None:
        return self._by_id.pop(req_id, None)

    def forget(self, handler: SubscriptionHandler, req_id: int | None) -> None:
        """Drop ``handler`` for good, whether it is live under ``req_id`` or waiting."""
        if req_id is not None and self._by_id.get(req_id) is handler:
            del self._by_id[req_id]
        self._waiting.pop(handler, None)

    def get(self, req_id: int) -> SubscriptionHandler | None:
        return self._by_id.get(req_id)

    def _handlers(self) -> list[SubscriptionHandler]:
        return [*self._by_id.values(), *self._waiting]

    def __len__(self) -> int:
        return len(self._by_id) + len(self._waiting)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for handler in self._handlers():
            counts[handler.kind] = counts.get(handler.kind, 0) + 1
        return counts

    def fail(self, req_id: int, error: RequestError) -> bool:
        handler = self._by_id.get(req_id)
        if handler is None:
            return False
        _guarded(handler.on_error, error)
        return True

    def link_down(self) -> None:
        for handler in self._handlers():
            _guarded(handler.on_link_down)

    async def resubscribe_all(self, fresh_link: bool) -> bool:
        """Re-issue every subscription, one at a time; a later call takes over what is left.

        Returns False when a later call took over before this one finished.
        """
        self._round += 1
        round_ = self._round
        async with self._lock:
            if round_ != self._round:
                return False  # a newer round is queued behind this one and will do it all
            for handler in self._by_id.values():
                self._waiting[handler] = None
            self._by_id.clear()
            for handler in list(self._waiting):
                if round_ != self._round:
                    return False
                if handler not in self._waiting:
                    continue  # closed meanwhile
                del self._waiting[handler]
                try:
                    new_id = await handler.resubscribe(fresh_link)
                except asyncio.CancelledError:
                    self._waiting[handler] = None
                    raise
                except (ConnectionError, TimeoutError) as exc:
                    # The link dropped (again) or went silent: try again at the next round.
                    log.info("%s subscription waits for the next reconnect: %s", handler.kind, exc)
                    self._waiting[handler] = None
                    continue
                except Exception as exc:
                    log.warning("could not re-issue a %s subscription: %r", handler.kind, exc)
                    error = exc if isinstance(exc, IBFlowError) else None
                    _guarded(
                        handler.on_close,
                        error
                        or ConnectionLost(
                            f"the {handler.kind} subscription could not be resumed: {exc!r}"
                        ),
                    )
                    continue
                if new_id is not None:
                    self._by_id[new_id] = handler
            return True

    def close_all(self, error: IBFlowError | None) -> None:
        handlers = self._handlers()
        self._by_id.clear()
        self._waiting.clear()
        for handler in handlers:
            _guarded(handler.on_close, error)


def _guarded(func: Callable[..., object], *args: object) -> None:
    """Call a hook from a sibling module; its bug must not break the session's bookkeeping."""
    try:
        func(*args)
    except Exception:
        log.exception("subscription hook %r failed", func)


class _Pending:
    """One in-flight request: a future that fails when IB errors its id or the link drops."""

    __slots__ = ("failed", "name", "req_id")

    def __init__(self, name: str, req_id: int | None) -> None:
        self.name = name
        self.req_id = req_id
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(self, error: BaseException) -> None:
        if not self.failed.done():
            self.failed.set_exception(error)


class RequestRouter:
    """Routes IB errors to the request that caused them, by request id."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Pending] = {}
        self._all: set[_Pending] = set()

    def track(self, name: str, req_id: int | None) -> _Pending:
        pending = _Pending(name, req_id)
        self._all.add(pending)
        if req_id is not None:
            self._by_id[req_id] = pending
        return pending

    def untrack(self, pending: _Pending) -> None:
        self._all.discard(pending)
        if pending.req_id is not None and self._by_id.get(pending.req_id) is pending:
            del self._by_id[pending.req_id]
        if pending.failed.done() and not pending.failed.cancelled():
            pending.failed.exception()  # mark retrieved
        else:
            pending.failed.cancel()

    def fail(self, req_id: int, error: BaseException) -> bool:
        pending = self._by_id.get(req_id)
        if pending is None:
            return False
        pending.fail(error)
        return True

    def fail_all(self, error: BaseException) -> None:
        for pending in list(self._all):
            pending.fail(error)

    def __len__(self) -> int:
        return len(self._all)
