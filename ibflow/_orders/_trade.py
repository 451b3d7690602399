"""The Trade handle: one order's state machine, fed by every source of truth TWS offers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from .._core import SessionCore
from .._error_codes import Severity, error_for, lookup
from .._errors import (
    ConnectionLost,
    IBFlowError,
    InvalidRequest,
    NotOrderOwner,
    OrderCancelled,
    OrderRejected,
    RequestError,
    RequestTimeout,
    SessionClosedError,
)
from .._log import get_logger
from .._records.contracts import Contract
from .._records.orders import (
    ENDS_INACTIVE,
    EPS,
    Commission,
    Fill,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    TimeInForce,
    fmt,
)
from .._timeouts import SESSION_DEFAULT
from ._checks import Facts, check_against_contract, check_rails
from ._modify import FOLLOWED, changed_terms, confirmed, modified, same_value
from ._signal import Signal, wait_until

__all__ = ["Signal", "Trade", "TradeOwner", "wait_until"]

log = get_logger("orders")

_TRAIL_PAIR = ("trail_amount", "trail_percent")

# How long wait_filled() waits for executions once TWS reported the order filled.
_EXEC_GRACE = 2.0


_DEFAULT = SESSION_DEFAULT


class TradeOwner(Protocol):
    """What a Trade needs from the order book that holds it."""

    core: SessionCore
    closed_error: IBFlowError | None
    by_perm: dict[int, Trade]
    link_epoch: int
    signal: Signal

    async def facts(self, contract: Contract) -> Facts: ...

    def publish(self, event: OrderEvent) -> None: ...

    def finished(self, trade: Trade) -> None: ...

    def raise_if_closed(self) -> None: ...


class _Op:
    """A cancel or modify in flight: errors addressed to the order go to it, not to the order."""

    __slots__ = ("error", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self.error: RequestError | None = None


class Trade:
    """A live handle on one order: placed by this session, or adopted from TWS's open orders.

    Its state follows what TWS reports (see ``docs/orders.md``); read it any time, wait for
    an outcome with :meth:`wait_filled` / :meth:`wait_done`, follow it with :meth:`events`, act
    on it with :meth:`cancel` / :meth:`modify` when :attr:`owned`. ``session.place(...)``
    returns it and ``session.trades()`` lists it; you never build one yourself.
    """

    def __init__(
        self,
        book: TradeOwner,
        contract: Contract,
        order: Order,
        order_id: int,
        client_id: int,
        *,
        parent: Trade | None = None,
        oca_group: str = "",
        oca_type: int = 0,
        adopted: bool = False,
        parent_id: int | None = None,
    ) -> None:
        self._book = book
        self._adopted = adopted
        # An adopted child whose parent the session never saw still names it in modifies.
        self._parent_id = parent_id
        self._contract = contract
        self._order = order
        self._order_id = order_id
        self._client_id = client_id
        self._parent = parent
        self._oca_group = oca_group
        self._oca_type = oca_type
        self._perm_id: int | None = None
        self._status = OrderStatus.PENDING_SUBMIT
        self._status_filled = 0.0
        self._status_avg: float | None = None
        self._fills: list[Fill] = []
        self._corrected = False
        self._events: list[OrderEvent] = []
        self._acked = False
        # Rejected before any acknowledgement: place() raises, whatever TWS sends after (it
        # may still report the order, Inactive, in the same read or a later one).
        self._rejected_first = False
        self._error: RequestError | None = None
        self._op: _Op | None = None
        self._op_lock = asyncio.Lock()
        self._modify_sent = False
        # A trailing stop's stop as TWS last reported it (it moves without a modify).
        self._reported_stop: float | None = None
        self._signal = Signal()
        # The link it was sent on: only an order sent before a drop can be lost in transit.
        self._sent_epoch = book.link_epoch
        self._lost_reason: str | None = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def order_id(self) -> int:
        return self._order_id

    @property
    def perm_id(self) -> int | None:
        """IB's permanent id, known once TWS acknowledged the order."""
        return self._perm_id

    @property
    def client_id(self) -> int:
        """The API client id that placed the order (only it may change or cancel it).

        0 for an order placed by hand in TWS (its ``order_id`` is then negative once bound to
        client id 0, and 0 while unbound).
        """
        return self._client_id

    @property
    def owned(self) -> bool:
        """Whether this session may modify and cancel the order: TWS allows that only to the
        client id the order belongs to (see :meth:`cancel`)."""
        return self._order_id != 0 and self._client_id == self._book.core.client_id

    @property
    def adopted(self) -> bool:
        """The session found the order open at TWS instead of placing it itself."""
        return self._adopted

    @property
    def contract(self) -> Contract:
        """The (qualified) contract the order was sent for."""
        return self._contract

    @property
    def order(self) -> Order:
        """The order's current terms, as TWS last reported them."""
        return self._order

    @property
    def parent_id(self) -> int | None:
        return self._parent.order_id if self._parent is not None else self._parent_id

    @property
    def status(self) -> OrderStatus:
        return self._status

    @property
    def is_done(self) -> bool:
        return self._status.is_done

    @property
    def fills(self) -> tuple[Fill, ...]:
        """Executions so far, each once (corrections replace what they correct)."""
        return tuple(self._fills)

    @property
    def filled(self) -> float:
        executed = sum(f.quantity for f in self._fills)
        return max(executed, self._status_filled)

    @property
    def remaining(self) -> float:
        return max(self._order.quantity - self.filled, 0.0)

    @property
    def avg_fill_price(self) -> float | None:
        qty = sum(f.quantity for f in self._fills)
        if qty > EPS:
            return sum(f.quantity * f.price for f in self._fills) / qty
        return self._status_avg

    @property
    def commission(self) -> float | None:
        """Total commission reported so far (``None`` before the first report)."""
        found = [f.commission.amount for f in self._fills if f.commission is not None]
        return sum(found) if found else None

    @property
    def error(self) -> RequestError | None:
        """The last refusal TWS addressed to the order itself (not to a cancel or modify)."""
        return self._error

    @property
    def lost_reason(self) -> str | None:
        """Why the order is ``Lost`` (see :class:`OrderStatus`); ``None`` for any other status."""
        return self._lost_reason if self._status is OrderStatus.LOST else None

    @property
    def history(self) -> tuple[OrderEvent, ...]:
        """Every event so far, oldest first."""
        return tuple(self._events)

    def __repr__(self) -> str:
        o = self._order
        price = f" @ {fmt(o.price)}" if o.price is not None else ""
        return (
            f"<Trade {self._order_id} {o.side.value} {fmt(o.quantity)} "
            f"{self._contract.display_name} {o.order_type.value}{price} {self._status.value} "
            f"filled={fmt(self.filled)}>"
        )

    # -- waiting ---------------------------------------------------------------------------

    async def wait_filled(self, *, timeout: float | None = _DEFAULT) -> tuple[Fill, ...]:
        """Wait until the order has filled completely; returns its fills.

        Cancelling this call (or an ``asyncio.timeout()`` around it) only stops the waiting;
        the order keeps working. When TWS reports the order filled before its executions
        arrive (as after a reconnect), it waits up to two seconds more for them. Commission
        reports may arrive just after.

        Args:
            timeout: seconds to wait (the session default when not given; ``None`` = forever).

        Raises:
            OrderCancelled: the order ended cancelled before filling completely.
            OrderRejected: TWS rejected the order (or reported it ``Inactive``).
            RequestTimeout: not filled within ``timeout``.
            SessionClosedError / ConnectionLost: the session closed (or gave up reconnecting).
        """
        limit = self._book.core.limit(timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._wait(lambda: self._status.is_done, limit, f"order {self._order_id} to fill")
        if self._status is not OrderStatus.FILLED:
            raise self._end_error()
        if not self._executions_in():
            # TWS can report the final status first (a completed order read back after a
            # reconnect comes before the executions): give the executions a moment.
            left = _EXEC_GRACE if limit is None else limit - (loop.time() - started)
            with contextlib.suppress(RequestTimeout):
                await self._wait(self._executions_in, max(min(left, _EXEC_GRACE), 0.001), "")
        return self.fills

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> OrderStatus:
        """Wait until the order is done (filled, cancelled or inactive); returns the status.

        Args:
            timeout: seconds to wait (the session default when not given; ``None`` = forever).

        Raises:
            RequestTimeout: not done within ``timeout``.
            SessionClosedError / ConnectionLost: the session closed (or gave up reconnecting).
        """
        limit = self._book.core.limit(timeout)
        await self._wait(lambda: self._status.is_done, limit, f"order {self._order_id} to finish")
        return self._status

    def events(self) -> AsyncIterator[OrderEvent]:
        """Everything that happens to the order, from its first event, as an async iterator.

        Nothing is ever dropped: the Trade keeps its whole history and each iterator replays
        it from the start, then follows live. Iteration ends once the order is done and its
        executions and commissions are all in; it raises ``ConnectionLost`` if the session
        gives up.
        """
        return _TradeEvents(self)

    async def _wait(self, ready: Callable[[], bool], limit: float | None, what: str) -> None:
        def check() -> bool:
            if ready():
                return True
            self._book.raise_if_closed()
            return False

        await wait_until(self._signal, check, limit, f"waiting for {what}")

    def _end_error(self) -> RequestError:
        status = self._status
        if status is OrderStatus.LOST:
            return OrderCancelled(
                f"order {self._order_id} was lost in transit: {self._lost_reason}",
                order_id=self._order_id,
                status=status,
                filled=self.filled,
            )
        if self._error is not None or status is OrderStatus.INACTIVE:
            if self._error is not None:
                return self._error
            return OrderRejected(
                -1,
                f"TWS reported order {self._order_id} {status.value}: rejected or held by IB; "
                "see trade.history for its messages",
                self._order_id,
            )
        return OrderCancelled(
            f"order {self._order_id} ended {status.value} after filling "
            f"{fmt(self.filled)} of {fmt(self._order.quantity)}",
            order_id=self._order_id,
            status=status,
            filled=self.filled,
        )

    # -- acting ----------------------------------------------------------------------------

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> OrderStatus:
        """Ask TWS to cancel the order and wait until it reports the order done.

        Returns the final status: usually ``Cancelled``, ``Filled`` if it filled first. A done
        order is left alone (nothing is sent), except an ``Inactive`` one, which TWS still
        holds: it is cancelled like a live one. The cancel is sent once; it is not repeated.

        Args:
            timeout: seconds to wait for TWS (the session default when not given).

        Raises:
            SafetyError: the session is read-only, or live without ``allow_live``.
            NotOrderOwner: another client id (or TWS, unbound) owns the order; nothing is sent.
            OrderRejected: TWS refused the cancel (e.g. 10147 not found, 161 not cancellable).
            RequestTimeout: TWS did not confirm within ``timeout`` (the cancel was sent).
            ConnectionLost: the link is down (nothing was sent), or dropped before TWS
                confirmed (the cancel was sent once).
        """
        core = self._book.core
        limit = core.limit(timeout)
        core.check_can_trade("cancel an order")
        self._check_owner("cancel")
        self._book.raise_if_closed()
        if self._cancel_pointless():
            return self._status
        core.require_ready()
        async with self._op_lock:
            if self._cancel_pointless():
                return self._status
            op = _Op("cancel")
            self._op = op
            epoch = self._book.link_epoch
            try:
                core.adapter.orders.send_cancel(self._order_id)
                log.info("order %d: cancel sent", self._order_id)
                await self._wait(
                    lambda: (
                        self._cancel_pointless()
                        or op.error is not None
                        or self._link_dropped(epoch, "cancel")
                    ),
                    limit,
                    f"TWS to confirm the cancel of order {self._order_id} (sent once)",
                )
            finally:
                self._op = None
        if self._cancel_pointless():
            return self._status
        assert op.error is not None
        raise op.error

    def _cancel_pointless(self) -> bool:
        # Inactive is done for trading, but TWS still holds the order until it is cancelled.
        return self._status.is_done and self._status is not OrderStatus.INACTIVE

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
        tif: TimeInForce | str | None = None,
        good_till: datetime | None = None,
        timeout: float | None = _DEFAULT,
    ) -> None:
        """Change the order's terms; returns once TWS reports the new terms.

        The keywords are the builders' parameter names, and each order type takes those its
        builder takes (see ``docs/order-types.md``); the order type, side and contract stay.
        The change is validated like a new order (the builder's checks, the contract's order
        types and minimum tick, the safety rails) and sent once under the same order id.

        Args:
            quantity: the new total quantity (above what has already filled).
            limit_price: the new limit (limit, stop-limit, on-close, if-touched and pegged
                orders).
            stop_price: the new stop (stop and stop-limit orders).
            trigger_price: the new touch price (if-touched orders).
            trail_amount / trail_percent: a trailing stop's new distance (one replaces the
                other); the stop starts again one new distance from the market.
            trail_stop_price: a trailing stop's new stop (it keeps ratcheting from there).
            limit_offset: a trailing stop-limit's new limit distance from its stop.
            offset: a relative or pegged order's new offset.
            cap: a relative order's new cap.
            tif / good_till: the new time in force (and a GTD order's expiry).
            timeout: seconds to wait for TWS (the session default when not given).

        Raises:
            InvalidRequest: nothing to change, a term the order type does not take (the message
                lists those it takes), a value that does not fit, or the order is done.
            SafetyError: read-only, live without ``allow_live``, or over a safety rail.
            NotOrderOwner: another client id (or TWS, unbound) owns the order; nothing is sent.
            OrderRejected: TWS refused the change (the order keeps its old terms).
            RequestTimeout: TWS did not confirm within ``timeout`` (the change was sent).
            ConnectionLost: the link is down (nothing was sent), or dropped before TWS
                confirmed (the change was sent once).
        """
        core = self._book.core
        limit = core.limit(timeout)
        core.check_can_trade("modify an order")
        self._check_owner("modify")
        self._book.raise_if_closed()
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
        asked = {name: value for name, value in given.items() if value is not None}
        current = self._order
        new = modified(current, asked)
        fields = changed_terms(current, new)
        if not fields:
            raise InvalidRequest(
                f"modify() changes nothing: order {self._order_id} already has these terms"
            )
        if self.is_done:
            raise InvalidRequest(
                f"order {self._order_id} is {self._status.value}; a done order cannot be modified"
            )
        if new.quantity <= self.filled + EPS:
            raise InvalidRequest(
                f"quantity must stay above what has filled ({fmt(self.filled)}); to stop the "
                "rest, cancel() the order"
            )
        # TWS keeps a trailing stop where it is (or, for a new distance, starts it again from
        # the market) unless a modify names a new one.
        sent = new if trail_stop_price is not None else replace(new, trail_stop_price=None)
        try:
            async with asyncio.timeout(limit):
                await self._send_modify(new, sent, fields)
        except TimeoutError:
            raise RequestTimeout(
                f"modify of order {self._order_id}: TWS did not confirm within {limit} s"
                + (" (the change was sent once)" if self._modify_sent else "; nothing was sent")
            ) from None

    async def _send_modify(self, new: Order, sent: Order, fields: tuple[str, ...]) -> None:
        core = self._book.core
        self._modify_sent = False
        facts = await self._book.facts(self._contract)
        check_against_contract(sent, facts)
        await check_rails(core, facts, [sent])
        core.require_ready()
        async with self._op_lock:
            if self.is_done:
                raise InvalidRequest(
                    f"order {self._order_id} is {self._status.value}; a done order cannot be "
                    "modified"
                )
            op = _Op("modify")
            self._op = op
            epoch = self._book.link_epoch

            def done() -> bool:
                return confirmed(self._order, self._reported_stop, new, fields)

            try:
                core.adapter.orders.send_order(
                    self._contract,
                    sent,
                    self._order_id,
                    parent_id=self.parent_id or 0,
                    oca_group=self._oca_group,
                    oca_type=self._oca_type,
                    new=False,
                )
                self._modify_sent = True
                log.info("order %d: modify sent (%s)", self._order_id, ", ".join(fields))
                await self._wait(
                    lambda: (
                        done()
                        or op.error is not None
                        or self._status.is_done
                        or self._link_dropped(epoch, "change")
                    ),
                    None,
                    f"TWS to confirm the change of order {self._order_id}",
                )
            finally:
                self._op = None
        if done():
            if "trail_stop_price" in fields:
                self._order = replace(self._order, trail_stop_price=new.trail_stop_price)
            return
        if op.error is not None:
            raise op.error
        raise OrderRejected(
            104,
            f"order {self._order_id} ended {self._status.value} before TWS confirmed the change",
            self._order_id,
        )

    def _link_dropped(self, epoch: int, what: str) -> bool:
        """Raise ``ConnectionLost`` if the link dropped since ``epoch`` (never returns True)."""
        if self._book.link_epoch != epoch:
            raise ConnectionLost(
                f"the link dropped while waiting for TWS to confirm the {what} of order "
                f"{self._order_id}; it was sent once and may or may not have arrived. The "
                "order's state is reconciled after the reconnect: check trade.status then."
            )
        return False

    def _check_owner(self, action: str) -> None:
        """Raise :class:`NotOrderOwner` unless this session's client id may change the order."""
        if self.owned:
            return
        current = self._book.core.client_id
        owner, order_id = self._client_id, self._order_id
        perm = f" (perm id {self._perm_id})" if self._perm_id else ""
        if order_id == 0:
            message = (
                f"cannot {action} order{perm}: it was placed by hand in TWS and is not bound to "
                "an API client, and TWS lets the API change only bound orders. Connect with "
                "client_id=0: ibflow then asks TWS to bind orders placed by hand from then on "
                "(reqAutoOpenOrders), and its start-up sync binds the open ones unless "
                "all_open_orders=True. Nothing was sent."
            )
        elif owner == 0 and order_id < 0:
            message = (
                f"cannot {action} order {order_id}{perm}: it was placed by hand in TWS and is "
                f"bound to client id 0, while this session is client id {current}. TWS lets "
                "only client id 0 change it: connect with client_id=0. Nothing was sent."
            )
        else:
            message = (
                f"cannot {action} order {order_id}{perm}: it belongs to client id {owner}, "
                f"and this session is client id {current}. TWS lets only the client id that "
                f"placed an order {action} it: connect with client_id={owner} (a bot that keeps "
                "one id across restarts uses ibflow.client_id_for(name)), or act from the "
                "program that placed it; session.cancel_all() cancels every client id's "
                "orders. Nothing was sent."
            )
        raise NotOrderOwner(message, owner_client_id=owner, order_id=order_id)

    # -- state machine (called from the order book) -----------------------------------------

    def _emit(self, kind: OrderEventKind, **extra: Any) -> None:
        event = OrderEvent(
            kind=kind,
            order_id=self._order_id,
            perm_id=self._perm_id,
            status=self._status,
            filled=self.filled,
            remaining=self.remaining,
            at=datetime.now(UTC),
            **extra,
        )
        self._events.append(event)
        self._book.publish(event)

    def _wake(self) -> None:
        self._signal.fire()
        self._book.signal.fire()

    def _ack(self, perm_id: int | None) -> None:
        self._acked = True
        if perm_id and self._perm_id != perm_id:
            self._perm_id = perm_id
            self._book.by_perm[perm_id] = self

    def _transition(self, status: OrderStatus) -> bool:
        current = self._status
        if status is current:
            return False
        if current is OrderStatus.INACTIVE and status in ENDS_INACTIVE:
            pass  # a way out of a terminal status: TWS cancelled the order it held
        elif current is OrderStatus.LOST:
            # ibflow's own verdict gives way to TWS's word, should it ever come.
            log.warning(
                "order %d: reported %s by TWS after it was marked Lost", self._order_id, status
            )
        elif current.is_done:
            log.debug("order %d: ignoring %s after the final %s", self._order_id, status, current)
            return False
        self._status = status
        log.info("order %d: %s -> %s", self._order_id, current.value, status.value)
        if status.is_done and not current.is_done:
            self._book.finished(self)
        return True

    def _lose(self, reason: str) -> None:
        """End the order ``Lost``: sent, never acknowledged, and unknown to TWS after all."""
        self._lost_reason = reason
        if self._transition(OrderStatus.LOST):
            log.warning("order %d: %s", self._order_id, reason)
            self._emit(OrderEventKind.STATUS, message=reason)
        self._wake()

    def _on_status(
        self,
        status: OrderStatus | None,
        *,
        perm_id: int | None,
        filled: float | None = None,
        avg: float | None = None,
    ) -> None:
        self._ack(perm_id)
        if filled is not None and filled > self._status_filled:
            self._status_filled = filled
            if avg:
                self._status_avg = avg
        if status is not None and self._transition(status):
            self._emit(OrderEventKind.STATUS)
        self._wake()

    def _on_terms(self, quantity: float, terms: Mapping[str, Any]) -> None:
        """Follow the terms an openOrder reports (see ``OpenOrderUpdate.terms``)."""
        current = self._order
        if "trail_stop_price" in terms:
            self._reported_stop = terms["trail_stop_price"]
        reported: dict[str, Any] = {"quantity": quantity}
        if terms.get("order_type") in (None, current.order_type):
            reported.update(terms)
        changes: dict[str, Any] = {}
        for name, value in reported.items():
            if name not in FOLLOWED or (value is None and name not in _TRAIL_PAIR):
                continue
            if not same_value(getattr(current, name), value):
                changes[name] = value
        if all(reported.get(name) is None for name in _TRAIL_PAIR):
            for name in _TRAIL_PAIR:
                changes.pop(name, None)  # a report without its trailing distance: keep ours
        if not changes:
            return
        if changes.get("tif", TimeInForce.GTD) is not TimeInForce.GTD:
            changes["good_till"] = None
        try:
            self._order = replace(current, **changes)
        except InvalidRequest as exc:
            log.warning("order %d: TWS reports terms ibflow cannot hold (%s)", self._order_id, exc)
            return
        self._emit(OrderEventKind.MODIFIED)

    def _on_fill(self, fill: Fill, corrects: Fill | None) -> None:
        self._ack(fill.perm_id)
        if corrects is not None:
            self._fills = [fill if f.exec_id == corrects.exec_id else f for f in self._fills]
            # The executions are the record now: the filled figure of an earlier orderStatus
            # counted the corrected execution at its old size.
            self._corrected = True
            self._status_filled = min(self._status_filled, sum(f.quantity for f in self._fills))
        else:
            self._fills.append(fill)
        self._emit(OrderEventKind.FILL, fill=fill, corrects=corrects)
        # Executions are TWS's own record: when they add up to the order, it is filled, even if
        # the orderStatus for it never comes.
        executed = sum(f.quantity for f in self._fills)
        if executed >= self._order.quantity - EPS and self._transition(OrderStatus.FILLED):
            self._emit(OrderEventKind.STATUS)
        self._wake()

    def _on_commission(self, commission: Commission) -> Fill | None:
        for index, fill in enumerate(self._fills):
            if fill.exec_id == commission.exec_id:
                if fill.commission == commission:
                    return None
                updated = replace(fill, commission=commission)
                self._fills[index] = updated
                self._emit(OrderEventKind.COMMISSION, fill=updated)
                self._wake()
                return updated
        return None

    def _on_error(self, code: int, message: str) -> None:
        row = lookup(code)
        self._emit(OrderEventKind.MESSAGE, code=code, message=message)
        if row.severity is Severity.ERROR:
            error = error_for(code, message, self._order_id)
            if not isinstance(error, OrderRejected):
                error = OrderRejected(code, message, self._order_id, hint=row.hint)
            if self._op is not None:
                self._op.error = error
            else:
                self._error = error
                self._rejected_first = self._rejected_first or not self._acked
        self._wake()

    def _executions_in(self) -> bool:
        """The executions received account for everything TWS says has filled."""
        wanted = self._status_filled
        if self._status is OrderStatus.FILLED and not self._corrected:
            # (A correction may leave a filled order's executions short of its quantity.)
            wanted = max(wanted, self._order.quantity)
        return sum(f.quantity for f in self._fills) >= wanted - EPS

    def _settled(self) -> bool:
        """Done, with every execution and commission in: nothing more will happen."""
        return (
            self._status.is_done
            and self._executions_in()
            and all(f.commission is not None for f in self._fills)
        )


class _TradeEvents:
    """``async for event in trade.events()``: the trade's history, then live events."""

    def __init__(self, trade: Trade) -> None:
        self._trade = trade
        self._index = 0

    def __aiter__(self) -> _TradeEvents:
        return self

    async def __anext__(self) -> OrderEvent:
        trade = self._trade
        while True:
            if self._index < len(trade._events):
                event = trade._events[self._index]
                self._index += 1
                return event
            if trade._settled():
                raise StopAsyncIteration
            closed = trade._book.closed_error
            if closed is not None:
                if isinstance(closed, SessionClosedError):
                    raise StopAsyncIteration
                raise closed
            await trade._signal.changed()
