"""The simulated broker's order side: orders, brackets, OCA, time in force, matching and fills.

Pure state machine with no I/O and no asyncio: the server hands it requests and quote changes,
and it answers with a list of events in the order TWS would put them on the wire. Each fill is
booked in the :class:`~._ledger.Ledger` (positions, cash, FX, PnL), which the broker also exposes
for the account views. Keeping it pure makes every order path testable in microseconds.

Decisions worth knowing:

* A new order that fails validation produces only an :class:`OrderError` (no ``OrderChanged``):
  TWS rejects it before it exists, and clients treat the error as the end of the order.
* An order sent with ``transmit=False`` is held: it reports ``PendingSubmit`` until an order of
  its bracket (or a modify of itself) arrives with ``transmit=True``; then the whole bracket goes
  live at once. Children stay ``PreSubmitted`` and cannot fill until their parent has filled.
* Children of one parent behave as an OCA group that reduces the siblings' quantity by each fill
  (ocaType 3), as TWS does for brackets; explicit groups honour ocaType 1 (cancel the others on a
  fill) and 2/3 (reduce them).
* Read-only mode refuses placeOrder, cancelOrder and reqGlobalCancel with error 321.
* An order made ``Inactive`` (:meth:`Broker.inactivate_next`, standing in for a margin or
  permission check that TWS runs after accepting the order) is acknowledged, gets the error,
  then reports ``Inactive``, the sequence logged from a real TWS. It is never worked, yet it
  stays among the open orders, and a cancel still turns it ``Cancelled``.
* The order types beyond MKT/LMT/STP, the algos and the order conditions are checked and
  worked by :mod:`._order_types` and :mod:`._conditions`; the broker holds, releases and fills.
* An execution correction (:meth:`Broker.correct_execution`) replaces the execution in the
  day's record, as reqExecutions then reports it, and the ledger re-derives the position by
  replaying the day's executions.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ._conditions import ConditionView, conditions_hold
from ._events import (
    AccountChanged,
    Commission,
    Event,
    Executed,
    OrderChanged,
    OrderError,
    PositionChanged,
)
from ._inactive import InactiveRules, inactivate
from ._layouts import PlaceOrderRequest, PortfolioItem, format_exec_time
from ._ledger import EPS as _EPS
from ._ledger import CommissionModel, Ledger, MarketLike, Trade, dec, tidy
from ._model import (
    Instrument,
    SimAccount,
    SimError,
    SimExecution,
    SimOrder,
    SimPosition,
    WhatIfResult,
)
from ._order_rules import (
    CANCELED_TEXT,
    INACTIVE_CODE,
    INACTIVE_TEXT,
    READONLY_TEXT,
    average_fill,
    check_request,
    exec_base,
    next_revision,
    normalize_side,
    order_from,
    parse_ib_time,
    select_executions,
    session_open,
)
from ._order_types import (
    Times,
    advance,
    apply_request,
    check_close_entry,
    check_modify,
    check_order_type,
    close_locked,
    estimate_price,
    in_auction,
    start,
    times_for,
    waits_for_trigger,
)

__all__ = [
    "AccountChanged",
    "Broker",
    "Commission",
    "CommissionModel",
    "Event",
    "Executed",
    "MarketLike",
    "OrderChanged",
    "OrderError",
    "PositionChanged",
]


# ---------------------------------------------------------------------------------------------
# Internal records


@dataclass(slots=True)
class _Working:
    """Broker-side flags of one order that clients never see."""

    seq: int
    times: Times  # its arrival, the session open and close after it
    held: bool = False
    commission_charged: float = 0.0
    value_filled: float = 0.0
    notional: Decimal = Decimal(0)  # sum of quantity × price of the fills
    exec_mark: int = 0  # executions booked before the order came (execution conditions)
    conditions_met: bool = False
    last_print: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the last trade it saw


class Broker:
    """Orders of one simulated TWS, shared by all its clients, and the ledger they fill into."""

    def __init__(
        self,
        accounts: Sequence[SimAccount],
        positions: Sequence[SimPosition],
        market: MarketLike,
        *,
        seed: int,
        clock: Callable[[], float],
        commission: CommissionModel | None = None,
        readonly: bool = False,
        instruments: Sequence[Instrument] = (),
        partial_fill_clip: float | None = None,
        enforce_market_hours: bool = False,
    ) -> None:
        self._market = market
        self._clock = clock
        self.commission = commission or CommissionModel()
        self.readonly = readonly
        self.partial_fill_clip = partial_fill_clip if partial_fill_clip else None
        self.enforce_market_hours = enforce_market_hours
        self.ledger = Ledger(
            accounts, positions, market, commission=self.commission, instruments=instruments
        )

        self._orders: dict[tuple[int, int], SimOrder] = {}
        self._working: dict[tuple[int, int], _Working] = {}
        self._executions: list[SimExecution] = []
        self._oca_fired: set[tuple[str, str]] = set()
        self._inactive = InactiveRules()
        self._seq = 0

        rng = random.Random(seed)
        self._next_perm_id = rng.randrange(100_000_000, 1_000_000_000)
        self._exec_prefix = rng.getrandbits(32)
        self._exec_counter = rng.getrandbits(28)

    # -- inspection ------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return self.ledger.accounts

    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        """The live record of one order (for inspection; do not mutate)."""
        return self._orders.get((client_id, order_id))

    def cash(self, account: str) -> dict[str, float]:
        """Cash balances of ``account`` by currency."""
        return self.ledger.cash(account)

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Snapshots of the orders TWS still holds (working, held, inactive), oldest first."""
        return [
            _snap(o)
            for (cid, _), o in self._orders.items()
            if o.is_open and (client_id is None or cid == client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        """Snapshots of the finished orders (filled or cancelled)."""
        return [_snap(o) for o in self._orders.values() if not o.is_open]

    def executions(
        self,
        *,
        client_id: int = 0,
        account: str = "",
        time: str = "",
        symbol: str = "",
        sec_type: str = "",
        exchange: str = "",
        side: str = "",
    ) -> list[SimExecution]:
        """Executions matching a reqExecutions filter; blank fields and client id 0 match all."""
        return select_executions(
            self._executions,
            client_id=client_id,
            account=account,
            time=time,
            symbol=symbol,
            sec_type=sec_type,
            exchange=exchange,
            side=side,
        )

    def positions(self, account: str | None = None) -> list[SimPosition]:
        """Snapshots of the positions (closed ones stay, with quantity 0, as TWS reports them)."""
        return self.ledger.positions(account)

    # -- orders ----------------------------------------------------------------------------

    def place(self, client_id: int, req: PlaceOrderRequest, inst: Instrument) -> list[Event]:
        """A placeOrder: a new order, or a modification when the id is already known."""
        if req.what_if:
            raise ValueError("what-if orders are previewed with Broker.what_if, never placed")
        if self.readonly:
            return [OrderError(req.order_id, client_id, 321, READONLY_TEXT)]
        self.ledger.know(inst)
        key = (client_id, req.order_id)
        existing = self._orders.get(key)
        if existing is not None:
            return self._modify(existing, req, inst)
        try:
            account = self.ledger.resolve_account(req.account)
            self._validate(client_id, req, inst, account, existing=None)
        except SimError as e:
            return [OrderError(req.order_id, client_id, e.code, e.text)]

        order = order_from(req, client_id, inst, account, perm_id=self._new_perm_id())
        apply_request(order, req)
        q = self._market.quote(inst.con_id)
        if req.transmit and not req.parent_id:
            start(order, q)
        self._seq += 1
        self._orders[key] = order
        self._working[key] = _Working(
            seq=self._seq,
            held=not req.transmit,
            times=times_for(inst, self._clock()),
            exec_mark=len(self._executions),
            last_print=(q.last, q.time, q.volume),
        )
        rule = self._inactive.take(inst)
        if rule is not None:
            return inactivate(order, rule)
        if order.oca_group and (account, order.oca_group) in self._oca_fired:
            # Joining a one-cancels-all group after a member filled: TWS cancels on arrival.
            return [OrderChanged(_snap(order)), *self._cancel(order, by_client=False)]
        if not req.transmit:
            return [OrderChanged(_snap(order))]
        return self._release(order)

    def preview_order(self, client_id: int, req: PlaceOrderRequest, inst: Instrument) -> SimOrder:
        """The order a what-if request describes, for the openOrder that carries the preview."""
        account = req.account or (self.accounts[0] if len(self.accounts) == 1 else "")
        order = order_from(
            req, client_id, inst, account, perm_id=0, what_if=True, status="PreSubmitted"
        )
        apply_request(order, req)
        return order

    def what_if(self, req: PlaceOrderRequest, inst: Instrument, client_id: int) -> WhatIfResult:
        """Margin and commission preview of ``req`` as if it filled completely now.

        Raises:
            SimError: the order would be rejected (same checks as :meth:`place`).
        """
        self.ledger.know(inst)
        account = self.ledger.resolve_account(req.account)
        self._validate(client_id, req, inst, account, existing=None, check_margin=False)
        return self.ledger.what_if(account, self._as_filled(req, inst))

    def cancel(self, client_id: int, order_id: int) -> list[Event]:
        """A cancelOrder from ``client_id``."""
        if self.readonly:
            return [OrderError(order_id, client_id, 321, READONLY_TEXT)]
        order = self._orders.get((client_id, order_id))
        if order is None:
            text = f"OrderId {order_id} that needs to be cancelled is not found."
            return [OrderError(order_id, client_id, 10147, text)]
        work = self._working[(client_id, order_id)]
        locked = not work.held and close_locked(order, work.times.close_at, self._clock())
        if not order.is_open or locked:
            text = (
                "Cancel attempted when order is not in a cancellable state.  "
                f"Order permId ={order.perm_id}"
            )
            return [OrderError(order_id, client_id, 161, text)]
        return self._cancel(order, by_client=True)

    def global_cancel(self, client_id: int = -1) -> list[Event]:
        """reqGlobalCancel from ``client_id``: every order that is not done, of every client.

        ``client_id`` only addresses the read-only refusal to the requesting connection.
        """
        if self.readonly:
            return [OrderError(-1, client_id, 321, READONLY_TEXT)]
        events: list[Event] = []
        for order in list(self._orders.values()):
            if order.is_open:
                events += self._cancel(order, by_client=True)
        return events

    def inactivate_next(
        self,
        *,
        symbol: str = "",
        after: int = 0,
        code: int = INACTIVE_CODE,
        text: str = INACTIVE_TEXT,
        acknowledge: bool = True,
    ) -> None:
        """Make a coming new order ``Inactive`` instead of working it.

        Skips ``after`` new orders (of ``symbol`` only, when given), then hits the next one:
        it is acknowledged (``PreSubmitted``; left out with ``acknowledge=False``), gets error
        ``code`` with ``text`` addressed to its id, then reports ``Inactive``. Orders refused
        outright (validation) and modifications are not counted. Each call adds one rule; they
        count independently.

        Raises:
            ValueError: ``after`` is negative.
        """
        self._inactive.add(symbol, after, code, text, acknowledge)

    def on_quote(self, con_id: int) -> list[Event]:
        """The quote of ``con_id`` moved: trigger and fill the resting orders it now reaches."""
        events: list[Event] = []
        now = datetime.fromtimestamp(self._clock(), UTC)
        for order in list(self._orders.values()):
            if order.is_done:
                continue
            if order.instrument.con_id != con_id and all(
                c.con_id != con_id for c in order.conditions
            ):
                continue
            if order.tif == "GTD" and self._expired(order, now):
                events += self._cancel(order, by_client=False)
                continue
            events += self._try_fill(order)
        return events

    # -- account views (the ledger's) -------------------------------------------------------

    def portfolio(self, account: str) -> list[PortfolioItem]:
        return self.ledger.portfolio(account)

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        return self.ledger.account_values(account)

    def account_summary(
        self, account: str, tags: Sequence[str] | str
    ) -> list[tuple[str, str, str]]:
        return self.ledger.account_summary(account, tags)

    def pnl(self, account: str) -> tuple[float, float, float]:
        return self.ledger.pnl(account)

    def pnl_single(
        self, account: str, con_id: int
    ) -> tuple[float, float, float, float, float] | None:
        return self.ledger.pnl_single(account, con_id)

    # -- order lifecycle --------------------------------------------------------------------

    def _new_perm_id(self) -> int:
        self._next_perm_id += 1
        return self._next_perm_id

    def _validate(
        self,
        client_id: int,
        req: PlaceOrderRequest,
        inst: Instrument,
        account: str,
        existing: SimOrder | None,
        *,
        check_margin: bool = True,
    ) -> None:
        check_request(req, inst, existing)
        check_order_type(req, inst, self._market.quote)
        if existing is not None:
            return
        check_close_entry(req, inst, self._clock())
        if req.parent_id:
            parent = self._orders.get((client_id, req.parent_id))
            if parent is None:
                raise SimError(
                    201, f"Order rejected - reason:Parent order {req.parent_id} is unknown."
                )
            if parent.is_done and parent.status != "Filled":
                raise SimError(201, "Order rejected - reason:Parent order is being cancelled.")
        if check_margin:
            short = self.ledger.margin_shortfall(account, self._as_filled(req, inst))
            if short is not None:
                elv, margin, ccy = short
                raise SimError(
                    201,
                    "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
                    f"DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [{elv:.2f} {ccy}] MUST EXCEED "
                    f"THE INITIAL MARGIN [{margin:.2f} {ccy}]",
                )

    def _modify(self, order: SimOrder, req: PlaceOrderRequest, inst: Instrument) -> list[Event]:
        cid, oid = order.client_id, order.order_id
        if order.is_done:
            if order.status == "Filled":
                return [OrderError(oid, cid, 104, "Can't modify a filled order.")]
            return [OrderError(oid, cid, 103, "Duplicate order id")]
        work = self._working[(cid, oid)]
        try:
            if not work.held:  # TWS has not sent it on yet: anything may still change
                check_modify(order, req, work.times.close_at, self._clock())
            self._validate(cid, req, inst, order.account, existing=order, check_margin=False)
        except SimError as e:
            return [OrderError(oid, cid, e.code, e.text)]
        if req.order_type != order.order_type or req.aux_price != order.aux_price:
            order.triggered = False
        apply_request(order, req)
        order.total_quantity = float(req.total_quantity)
        order.order_type = req.order_type
        order.lmt_price = req.lmt_price
        order.aux_price = req.aux_price
        order.tif = req.tif or "DAY"
        order.outside_rth = req.outside_rth
        order.good_till_date = req.good_till_date
        order.order_ref = req.order_ref
        order.transmit = req.transmit
        if self._is_active(order):
            start(order, self._market.quote(inst.con_id))
        if work.held:
            if req.transmit:
                return self._release(order)
            return [OrderChanged(_snap(order))]
        if order.remaining <= _EPS:
            # The new size equals what has already filled: the order is complete.
            self._finish(order, "Filled", "Filled")
            return [OrderChanged(_snap(order)), *self._after_fill(order, 0.0)]
        self._set_resting_status(order)
        events: list[Event] = [OrderChanged(_snap(order))]
        events += self._try_fill(order)
        events += self._time_in_force(order)
        return events

    def _release(self, order: SimOrder) -> list[Event]:
        """Send ``order`` live together with the held members of its bracket."""
        cid = order.client_id
        root_id = order.parent_id or order.order_id
        group: list[SimOrder] = []
        for (ocid, _), o in self._orders.items():
            if ocid != cid or o.is_done:
                continue
            if o is order or (
                self._working[(ocid, o.order_id)].held
                and (o.order_id == root_id or o.parent_id == root_id)
            ):
                group.append(o)
        events: list[Event] = []
        for o in group:
            self._working[(cid, o.order_id)].held = False
            o.transmit = True
            o.status = "PreSubmitted"
            events.append(OrderChanged(_snap(o)))
            if self._set_resting_status(o):
                events.append(OrderChanged(_snap(o)))
        for o in group:
            if not o.is_done:
                events += self._try_fill(o)
                events += self._time_in_force(o)
        return events

    def _set_resting_status(self, order: SimOrder) -> bool:
        """PreSubmitted while waiting (parent unfilled, stop untriggered), else Submitted.

        Returns whether the status changed.
        """
        waiting = (
            not self._parent_filled(order)
            or waits_for_trigger(order)
            or (bool(order.conditions) and not self._working[_key(order)].conditions_met)
        )
        if self.enforce_market_hours and not session_open(
            order.instrument, order.outside_rth, self._clock()
        ):
            waiting = True
        status = "PreSubmitted" if waiting else "Submitted"
        changed = status != order.status
        order.status = status
        return changed

    def _parent_filled(self, order: SimOrder) -> bool:
        if not order.parent_id:
            return True
        parent = self._orders.get((order.client_id, order.parent_id))
        return parent is None or parent.status == "Filled"

    def _is_active(self, order: SimOrder) -> bool:
        if order.is_done or self._working[(order.client_id, order.order_id)].held:
            return False
        return self._parent_filled(order)

    def _try_fill(self, order: SimOrder) -> list[Event]:
        if not self._is_active(order):
            return []
        now = self._clock()
        if (
            self.enforce_market_hours
            and not in_auction(order)
            and not session_open(order.instrument, order.outside_rth, now)
        ):
            return []
        q = self._market.quote(order.instrument.con_id)
        if q.halted:
            return []
        work = self._working[_key(order)]
        if order.conditions and not work.conditions_met:
            fills = self._executions[work.exec_mark :]
            view = ConditionView(now, self._market.quote, self.ledger, order.account, fills)
            rth_only = self.enforce_market_hours and not order.conditions_ignore_rth
            if not conditions_hold(order, view, rth_only=rth_only):
                return []
            work.conditions_met = True
            if order.conditions_cancel_order:
                return self._cancel(order, by_client=False)
        seen, work.last_print = work.last_print, (q.last, q.time, q.volume)
        step = advance(
            order,
            q,
            now=now,
            times=work.times,
            new_print=seen != work.last_print,
        )
        if step.waiting:
            changed = order.status != "PreSubmitted" or step.echo
            order.status = "PreSubmitted"
            return [OrderChanged(_snap(order))] if changed else []
        if step.expire:
            return self._cancel(order, by_client=False)
        events: list[Event] = []
        if order.status != "Submitted" or step.echo:
            order.status = "Submitted"
            events.append(OrderChanged(_snap(order)))
        price = step.price
        if price is None:
            return events
        qty = order.remaining if step.quantity is None else min(step.quantity, order.remaining)
        if self.partial_fill_clip is not None and order.tif != "FOK":
            qty = min(qty, self.partial_fill_clip)
        if qty <= _EPS:
            return events
        events += self._fill(order, qty, price)
        return events

    def _time_in_force(self, order: SimOrder) -> list[Event]:
        """IOC and FOK orders do not rest: whatever did not fill at once is cancelled."""
        if order.is_done or order.tif not in ("IOC", "FOK"):
            return []
        if not self._is_active(order):
            return []
        return self._cancel(order, by_client=False)

    def _fill(self, order: SimOrder, qty: float, price: float) -> list[Event]:
        key = (order.client_id, order.order_id)
        work = self._working[key]
        inst = order.instrument
        mult = inst.multiplier_value
        # Decimal sums on the price grid: an average of 192.05 and 192.07 is 192.06, not
        # 192.05999999999997.
        work.notional += dec(qty) * dec(price)
        order.filled = tidy(dec(order.filled) + dec(qty))
        order.avg_fill_price = tidy(work.notional / dec(order.filled))
        order.last_fill_price = price
        work.value_filled += abs(qty * price * mult)
        total = self.commission.order_total(inst, order.filled, work.value_filled)
        commission = max(round(total - work.commission_charged, 4), 0.0)
        work.commission_charged += commission
        signed = qty if order.action == "BUY" else -qty
        realized = self.ledger.book_fill(order.account, inst, signed, price, commission)
        execution = SimExecution(
            exec_id=self._new_exec_id(),
            order_id=order.order_id,
            client_id=order.client_id,
            perm_id=order.perm_id,
            account=order.account,
            order_ref=order.order_ref,
            instrument=inst,
            time=datetime.fromtimestamp(self._clock(), UTC),
            side="BOT" if order.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            commission=commission,
            commission_currency=self.commission.currency(inst),
            realized_pnl=realized,
        )
        self._executions.append(execution)
        if order.remaining <= _EPS:
            self._finish(order, "Filled", "Filled")
        pos = self.ledger.position(order.account, inst.con_id)
        events: list[Event] = [
            Executed(execution),
            OrderChanged(_snap(order)),
            Commission(execution),
            PositionChanged(order.account, inst, dataclasses.replace(pos)),
            AccountChanged(order.account),
        ]
        events += self._after_fill(order, qty)
        return events

    def _after_fill(self, order: SimOrder, qty: float) -> list[Event]:
        """OCA siblings react to the fill; a filled parent releases its children."""
        events: list[Event] = []
        if order.oca_group and qty > 0 and (order.oca_type or 1) == 1:
            self._oca_fired.add((order.account, order.oca_group))
        for sibling, oca_type in self._oca_siblings(order):
            if sibling.is_done:
                continue
            if oca_type == 1:
                events += self._cancel(sibling, by_client=False)
                continue
            if qty <= 0:
                continue
            sibling.total_quantity = max(sibling.total_quantity - qty, sibling.filled)
            if sibling.remaining <= _EPS:
                events += self._cancel(sibling, by_client=False)
            else:
                events.append(OrderChanged(_snap(sibling)))
        if order.status == "Filled":
            children = [
                o
                for (cid, _), o in self._orders.items()
                if cid == order.client_id and o.parent_id == order.order_id and not o.is_done
            ]
            for child in children:
                if self._working[(child.client_id, child.order_id)].held:
                    continue
                if self._set_resting_status(child):
                    events.append(OrderChanged(_snap(child)))
            for child in children:
                if not child.is_done:
                    events += self._try_fill(child)
        return events

    def _oca_siblings(self, order: SimOrder) -> Iterable[tuple[SimOrder, int]]:
        for (cid, _), other in self._orders.items():
            if other is order or other.is_done:
                continue
            if (
                order.oca_group
                and other.oca_group == order.oca_group
                and (other.account == order.account)
            ):
                yield other, order.oca_type or 1
            elif order.parent_id and cid == order.client_id and other.parent_id == order.parent_id:
                yield other, 3

    def correct_execution(
        self, exec_id: str, *, price: float | None = None, quantity: float | None = None
    ) -> tuple[SimExecution, list[Event]]:
        """TWS corrects an execution: same id with its last part raised, new price or size.

        The corrected execution replaces the original in the day's record (reqExecutions
        reports only it), the order's filled quantity and average price follow, and the
        position, cash and PnL move by exactly what the correction changes. The commission is
        re-priced for the order's corrected totals. A correction that completes a working order
        fills it; one that lowers a filled order's size leaves its status alone.

        Returns the corrected execution and the events to send (execDetails, commissionReport,
        then the position and account pushes).

        Raises:
            ValueError: ``exec_id`` is unknown (or was already replaced by a correction), the
                new price or quantity is not a positive number, or the new quantity would fill
                more than the order's size.
        """
        index = next((i for i, ex in enumerate(self._executions) if ex.exec_id == exec_id), None)
        if index is None:
            superseded = exec_base(exec_id) in {exec_base(ex.exec_id) for ex in self._executions}
            why = "it was already replaced by a correction" if superseded else "no such execution"
            raise ValueError(f"cannot correct execution {exec_id!r}: {why}")
        old = self._executions[index]
        new_price = old.price if price is None else float(price)
        new_qty = old.shares if quantity is None else float(quantity)
        for value, what in ((new_price, "price"), (new_qty, "quantity")):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"a corrected {what} must be a positive number, got {value!r}")
        key = (old.client_id, old.order_id)
        order = self._orders[key]
        filled = order.filled - old.shares + new_qty
        if filled > order.total_quantity + _EPS:
            raise ValueError(
                f"a quantity of {new_qty:g} would fill {filled:g} of order {order.order_id}, "
                f"which is for {order.total_quantity:g}"
            )
        inst = old.instrument
        mult = inst.multiplier_value
        work = self._working[key]
        work.value_filled += abs(new_qty * new_price * mult) - abs(old.shares * old.price * mult)
        total = self.commission.order_total(inst, filled, work.value_filled)
        commission = max(round(old.commission + total - work.commission_charged, 4), 0.0)
        work.commission_charged += commission - old.commission

        same_order = [
            i
            for i, ex in enumerate(self._executions)
            if (ex.client_id, ex.order_id) == key and i != index
        ]
        earlier = [
            (ex.shares, ex.price)
            for ex in self._executions[:index]
            if (ex.client_id, ex.order_id) == key
        ]
        cum_qty, cum_avg = average_fill([*earlier, (new_qty, new_price)])
        corrected = dataclasses.replace(
            old,
            exec_id=next_revision(old.exec_id),
            shares=new_qty,
            price=new_price,
            cum_qty=cum_qty,
            avg_price=cum_avg,
            commission=commission,
        )
        self._executions[index] = corrected
        realized = self.ledger.rebook(old, corrected, self._executions)
        corrected = dataclasses.replace(corrected, realized_pnl=realized)
        self._executions[index] = corrected

        mine = [self._executions[i] for i in sorted([*same_order, index])]
        order.filled, order.avg_fill_price = average_fill((ex.shares, ex.price) for ex in mine)
        work.notional = sum((dec(ex.shares) * dec(ex.price) for ex in mine), Decimal(0))
        order.last_fill_price = mine[-1].price
        pos = self.ledger.position(old.account, inst.con_id)
        events: list[Event] = [
            Executed(corrected),
            Commission(corrected),
            PositionChanged(old.account, inst, dataclasses.replace(pos)),
            AccountChanged(old.account),
        ]
        if not order.is_done and order.remaining <= _EPS:
            self._finish(order, "Filled", "Filled")
            events += [OrderChanged(_snap(order)), *self._after_fill(order, 0.0)]
        return corrected, events

    def _cancel(self, order: SimOrder, *, by_client: bool) -> list[Event]:
        self._finish(order, "Cancelled", "Cancelled by Trader" if by_client else "Cancelled")
        events: list[Event] = [OrderChanged(_snap(order))]
        if by_client:
            events.append(OrderError(order.order_id, order.client_id, 202, CANCELED_TEXT))
        # Cancelling a parent takes its unfilled children with it.
        for (cid, _), child in list(self._orders.items()):
            if cid == order.client_id and child.parent_id == order.order_id and not child.is_done:
                events += self._cancel(child, by_client=by_client)
        return events

    def _finish(self, order: SimOrder, status: str, completed_status: str) -> None:
        order.status = status
        order.completed_status = completed_status
        order.completed_time = format_exec_time(datetime.fromtimestamp(self._clock(), UTC))
        self._working[(order.client_id, order.order_id)].held = False

    def _market_closed(self, order: SimOrder) -> bool:
        if not self.enforce_market_hours:
            return False
        return not session_open(order.instrument, order.outside_rth, self._clock())

    def _expired(self, order: SimOrder, now: datetime) -> bool:
        until = parse_ib_time(order.good_till_date)
        return until is not None and now >= until

    def _new_exec_id(self) -> str:
        self._exec_counter += 1
        return f"{self._exec_prefix:08x}.{self._exec_counter & 0xFFFFFFFF:08x}.01.01"

    def _as_filled(self, req: PlaceOrderRequest, inst: Instrument) -> Trade:
        """``req`` as if it filled completely now: what a margin check books."""
        price = self._estimate_price(req, inst)
        qty = float(req.total_quantity)
        signed = qty if normalize_side(req.action) == "BUY" else -qty
        value = abs(qty * price * inst.multiplier_value)
        return inst, signed, price, self.commission.order_total(inst, qty, value)

    def _estimate_price(self, req: PlaceOrderRequest, inst: Instrument) -> float:
        q = self._market.quote(inst.con_id)
        far = q.ask if normalize_side(req.action) == "BUY" else q.bid
        return estimate_price(req, far if far and far > 0 else self.ledger.mark(inst))


# ---------------------------------------------------------------------------------------------
# Helpers


def _snap(order: SimOrder) -> SimOrder:
    return dataclasses.replace(order)


def _key(order: SimOrder) -> tuple[int, int]:
    return order.client_id, order.order_id
