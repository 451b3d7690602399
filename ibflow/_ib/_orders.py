"""Orders across the ib_async border: sending, reading back, and a tap on every order message.

ib_async's own order bookkeeping cannot be trusted as a source of truth: it marks a trade
``Cancelled`` on any error addressed to it, ``Cancelled`` again when you cancel an ``Inactive``
order, and emits ``execDetails`` only for fills it can attach to a trade it already knows.
So ibflow does not listen to ib_async's trade events at all.
:meth:`OrdersPort.install_order_tap` wraps the wrapper callbacks the decoder calls for
orderStatus, openOrder, completedOrder, execDetails and commissionReport, and hands the *raw*
values, converted to ibflow records (``_order_records``), to one listener — the order book in
``ibflow._orders``. ib_async's own handling still runs first and unchanged.

The other functions send orders and cancels, and start the order reads (open orders, completed
orders, executions, what-if, contract details, a snapshot quote) in the ``(req_id, awaitable)``
shape ``Session._request`` routes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import ib_async
from ib_async import ExecutionFilter

from .._log import get_logger
from .._records.contracts import Contract
from .._records.orders import Commission, Fill, Order, OrderPreview, OrderSnapshot
from ._contracts import contract_from_ib, contract_to_ib
from ._errors import map_ib_errors
from ._order_records import (
    OpenOrderUpdate,
    StatusUpdate,
    commission_from_ib,
    execution_problem,
    fill_from_ib,
    int_id,
    number,
    open_update,
    order_to_ib,
    preview_from_ib,
    snapshot_from_ib,
    text_or_none,
)
from ._order_terms import refresh_terms

__all__ = [
    "CompletedCollector",
    "OrderListener",
    "OrdersPort",
    "QuoteSnapshot",
]

log = get_logger("orders")


class OrderListener(Protocol):
    """What :func:`install_order_tap` feeds; called synchronously from ib_async's decoder."""

    def on_status(self, update: StatusUpdate) -> None: ...

    def on_open_order(self, update: OpenOrderUpdate) -> None: ...

    def on_completed_order(self, snapshot: OrderSnapshot) -> None: ...

    def on_execution(self, fill: Fill, live: bool) -> None: ...

    def on_commission(self, commission: Commission) -> None: ...

    def on_order_error(self, order_id: int, code: int, message: str) -> None: ...


_TAPPED = ("orderStatus", "openOrder", "completedOrder", "execDetails", "commissionReport")


# -- reads ---------------------------------------------------------------------------------------


class CompletedCollector:
    """Collects completedOrder snapshots while one ``reqCompletedOrders`` is in flight."""

    def __init__(self) -> None:
        self.rows: list[OrderSnapshot] = []
        self.active = False


@dataclass(frozen=True, slots=True)
class QuoteSnapshot:
    bid: float | None
    ask: float | None
    last: float | None
    close: float | None


class OrdersPort:
    """Placing, cancelling and reading orders on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected
        # The highest order id handed out in this session's life. TWS's nextValidId does not
        # count an order lost in transit, and ib_async restarts its counter from it on every
        # connect: each API start raises the shared counter above this, so no id is sent twice.
        self._highest_order_id = 0
        self.rejected_executions = 0
        """Executions from the server with impossible numbers, dropped (see the tap)."""
        ib.client.apiStart.connect(self._keep_ids_rising)

    def _keep_ids_rising(self) -> None:
        self._ib.client.updateReqId(self._highest_order_id + 1)

    def install_order_tap(self, listener: OrderListener) -> Callable[[], None]:
        """Feed ``listener`` from every order message this adapter's ``IB`` decodes.

        The decoder looks wrapper methods up by name on each message, so instance attributes that
        wrap the originals see every frame, whichever request caused it and whether or not
        ib_async knows the order. ib_async's handling runs first; a listener error is logged and
        never reaches the decoder. Returns a function that removes the tap.
        """
        ib = self._ib
        wrapper = ib.wrapper
        originals: dict[str, Callable[..., Any]] = {
            name: getattr(wrapper, name) for name in _TAPPED
        }
        installed: dict[str, Callable[..., Any]] = {}

        def guarded(what: str, call: Callable[[], None]) -> None:
            try:
                call()
            except Exception:
                log.exception("order book failed to handle %s", what)

        def order_status(
            orderId: int,
            status: str,
            filled: float,
            remaining: float,
            avgFillPrice: float,
            permId: int,
            parentId: int,
            lastFillPrice: float,
            clientId: int,
            whyHeld: str,
            mktCapPrice: float = 0.0,
        ) -> None:
            originals["orderStatus"](
                orderId,
                status,
                filled,
                remaining,
                avgFillPrice,
                permId,
                parentId,
                lastFillPrice,
                clientId,
                whyHeld,
                mktCapPrice,
            )
            update = StatusUpdate(
                order_id=int(orderId),
                client_id=int(clientId),
                perm_id=int_id(permId),
                status=str(status),
                filled=number(filled),
                remaining=number(remaining),
                avg_fill_price=number(avgFillPrice),
                parent_id=int_id(parentId),
                why_held=text_or_none(whyHeld),
            )
            guarded("orderStatus", lambda: listener.on_status(update))

        def open_order(
            orderId: int,
            contract: ib_async.Contract,
            order: ib_async.Order,
            orderState: ib_async.OrderState,
        ) -> None:
            update = None
            if not order.whatIf:
                update = open_update(orderId, contract, order, orderState.status)
            originals["openOrder"](orderId, contract, order, orderState)
            if update is not None:
                guarded("openOrder terms", lambda: refresh_terms(wrapper, order))
                done = update
                guarded("openOrder", lambda: listener.on_open_order(done))

        def completed_order(
            contract: ib_async.Contract, order: ib_async.Order, orderState: ib_async.OrderState
        ) -> None:
            originals["completedOrder"](contract, order, orderState)

            def deliver() -> None:
                try:
                    snapshot = snapshot_from_ib(
                        contract,
                        order,
                        orderState.status,
                        completed_time=orderState.completedTime,
                        completed_status=orderState.completedStatus,
                        completed=True,
                    )
                except ValueError as exc:
                    log.debug("skipping a completed order ibflow cannot represent: %s", exc)
                    return
                listener.on_completed_order(snapshot)

            guarded("completedOrder", deliver)

        def exec_details(
            reqId: int, contract: ib_async.Contract, execution: ib_async.Execution
        ) -> None:
            problem = execution_problem(execution)
            if problem is not None:
                # Neither ib_async's caches nor the order book ever see it.
                self.rejected_executions += 1
                log.warning(
                    "rejected an execution from the server: %s (exec id %s, order %s)",
                    problem,
                    execution.execId,
                    execution.orderId,
                )
                return
            originals["execDetails"](reqId, contract, execution)

            def deliver() -> None:
                try:
                    fill = fill_from_ib(contract_from_ib(contract), execution)
                except ValueError as exc:
                    log.debug("skipping an execution ibflow cannot represent: %s", exc)
                    return
                listener.on_execution(fill, int(reqId) == -1)

            guarded("execDetails", deliver)

        def commission_report(report: ib_async.CommissionReport) -> None:
            # ib_async rewrites an unset realized PnL to 0.0 in place: convert first.
            commission = commission_from_ib(report)
            originals["commissionReport"](report)
            if commission is not None:
                found = commission
                guarded("commissionReport", lambda: listener.on_commission(found))

        def on_error(reqId: int, errorCode: int, errorString: str, _contract: Any) -> None:
            # -1 is TWS's id for notices about no request; other ids name an order: positive
            # ones the API's, negative ones orders placed in TWS and bound to client id 0.
            order_id = int(reqId)
            if order_id > 0 or order_id < -1:
                guarded(
                    "an order error",
                    lambda: listener.on_order_error(order_id, int(errorCode), str(errorString)),
                )

        installed.update(
            orderStatus=order_status,
            openOrder=open_order,
            completedOrder=completed_order,
            execDetails=exec_details,
            commissionReport=commission_report,
        )
        for name, func in installed.items():
            setattr(wrapper, name, func)
        ib.errorEvent.connect(on_error)

        def uninstall() -> None:
            with contextlib.suppress(Exception):
                ib.errorEvent.disconnect(on_error)
            for name, func in installed.items():
                # Only undo our own layer; someone may have wrapped ours since.
                if wrapper.__dict__.get(name) is func:
                    if getattr(type(wrapper), name, None) is getattr(
                        originals[name], "__func__", None
                    ):
                        del wrapper.__dict__[name]
                    else:
                        setattr(wrapper, name, originals[name])

        return uninstall

    def known_open_orders(self) -> list[OpenOrderUpdate]:
        """The open orders this link has already reported (at the start-up sync, or since),
        with their last status: what an order book made after the sync starts from."""
        out: list[OpenOrderUpdate] = []
        for trade in self._ib.openTrades():
            st = trade.orderStatus
            if not st.status:
                continue
            out.append(
                open_update(
                    trade.order.orderId,
                    trade.contract,
                    trade.order,
                    st.status,
                    filled=number(st.filled),
                    avg_fill_price=number(st.avgFillPrice),
                )
            )
        return out

    def forget_order(
        self, client_id: int, order_id: int, perm_id: int | None, exec_ids: Iterable[str]
    ) -> None:
        """Drop ib_async's own records of a finished order (its trade and its fills).

        ib_async keeps every order and execution it saw for the life of the connection;
        ibflow's order book decides what is kept, so this bounds ib_async's share too.
        """
        wrapper = self._ib.wrapper
        trade = wrapper.trades.pop((client_id, order_id), None)
        if perm_id and wrapper.permId2Trade.get(perm_id, trade) is trade:
            wrapper.permId2Trade.pop(perm_id, None)
        for exec_id in exec_ids:
            wrapper.fills.pop(exec_id, None)

    def next_order_id(self) -> int:
        """A fresh order id from ib_async's shared request/order id counter.

        Never one handed out before in this session's life, whatever TWS's nextValidId says
        after a reconnect.
        """
        client = self._ib.client
        with map_ib_errors("placeOrder"):
            client.updateReqId(self._highest_order_id + 1)
            order_id = int(client.getReqId())
        self._highest_order_id = order_id
        return order_id

    def send_order(
        self,
        contract: Contract,
        spec: Order,
        order_id: int,
        *,
        parent_id: int = 0,
        transmit: bool = True,
        oca_group: str = "",
        oca_type: int = 0,
        new: bool = True,
    ) -> None:
        """Send one placeOrder: a new order, or (``new=False``) a change under the same id.

        New orders go through ``IB.placeOrder`` so ib_async knows them too (it logs every status
        of an order it does not know as an error). Changes go to the client directly: ib_async
        refuses to re-place an order it has marked done on its own.
        """
        ib = self._ib
        ib_contract = contract_to_ib(contract)
        ib_order = order_to_ib(
            spec,
            order_id,
            parent_id=parent_id,
            transmit=transmit,
            oca_group=oca_group,
            oca_type=oca_type,
        )
        with map_ib_errors("placeOrder" if new else "placeOrder (modify)"):
            if new:
                ib.placeOrder(ib_contract, ib_order)
            else:
                ib.client.placeOrder(order_id, ib_contract, ib_order)

    def send_cancel(self, order_id: int) -> None:
        """Send one cancelOrder, straight to the client.

        ``IB.cancelOrder`` would also mark the order ``Cancelled`` locally when it is ``Inactive``
        or held, before TWS says so; ibflow waits for TWS.
        """
        with map_ib_errors("cancelOrder"):
            self._ib.client.cancelOrder(order_id, "")

    def send_global_cancel(self) -> None:
        """Send one reqGlobalCancel: TWS cancels every open order of every client id."""
        with map_ib_errors("reqGlobalCancel"):
            self._ib.client.reqGlobalCancel()

    def start_open_orders(self, all_clients: bool) -> tuple[None, Awaitable[list[OrderSnapshot]]]:
        """``reqOpenOrders`` (this client id's) or ``reqAllOpenOrders`` (every client's).

        ib_async files the answer under one fixed key: the caller must not run two at once.
        """
        ib = self._ib
        answer = ib.reqAllOpenOrdersAsync() if all_clients else ib.reqOpenOrdersAsync()

        async def run() -> list[OrderSnapshot]:
            # An order that changes while the answer streams in (a trailing stop's ratchet, a
            # status) is reported twice, the newer last: keep one row per order.
            latest = {id(trade): trade for trade in await answer}
            out: list[OrderSnapshot] = []
            for trade in latest.values():
                st = trade.orderStatus
                try:
                    out.append(
                        snapshot_from_ib(
                            trade.contract,
                            trade.order,
                            st.status,
                            filled=number(st.filled),
                            remaining=number(st.remaining),
                            avg_fill_price=number(st.avgFillPrice),
                        )
                    )
                except ValueError as exc:
                    log.warning("skipping an open order ibflow cannot represent (%s)", exc)
            return out

        return None, run()

    def start_completed_orders(
        self, collector: CompletedCollector, api_only: bool
    ) -> tuple[None, Awaitable[list[OrderSnapshot]]]:
        """``reqCompletedOrders``; the rows come through the tap into ``collector``.

        ib_async's own list drops the completion time and reason, which the tap keeps.
        """
        ib = self._ib
        collector.rows = []
        collector.active = True
        answer = ib.wrapper.startReq("completedOrders")
        ib.client.reqCompletedOrders(api_only)

        async def run() -> list[OrderSnapshot]:
            try:
                await answer
                return list(collector.rows)
            finally:
                collector.active = False

        return None, run()

    def start_fills(self, since: datetime | None) -> tuple[int, Awaitable[list[Fill]]]:
        """``reqExecutions`` for every client id, with each execution's commission report.

        Commission reports for executions ib_async had already seen land on its cached fill, not
        on the fresh one in the answer, so they are taken from the cache.
        """
        ib = self._ib
        req_id = int(ib.client.getReqId())
        answer = ib.wrapper.startReq(req_id)
        time = since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S") if since is not None else ""
        ib.client.reqExecutions(req_id, ExecutionFilter(time=time))

        async def run() -> list[Fill]:
            rows = await answer
            out: list[Fill] = []
            for row in rows:
                report = row.commissionReport
                if not report.execId:
                    known = ib.wrapper.fills.get(row.execution.execId)
                    if known is not None:
                        report = known.commissionReport
                try:
                    contract = contract_from_ib(row.contract)
                    out.append(fill_from_ib(contract, row.execution, commission_from_ib(report)))
                except ValueError as exc:
                    log.warning("skipping an execution ibflow cannot represent (%s)", exc)
            return out

        return req_id, run()

    def start_what_if(self, contract: Contract, spec: Order) -> tuple[int, Awaitable[OrderPreview]]:
        """A what-if placeOrder: TWS previews margin and commission and places nothing."""
        ib = self._ib
        req_id = self.next_order_id()  # a placeOrder: its id is an order id
        ib_contract = contract_to_ib(contract)
        answer = ib.wrapper.startReq(req_id, ib_contract)
        ib.client.placeOrder(req_id, ib_contract, order_to_ib(spec, req_id, what_if=True))

        async def run() -> OrderPreview:
            state = await answer
            if not isinstance(state, ib_async.OrderState):
                raise ValueError("TWS answered the what-if order without a preview")
            return preview_from_ib(state)

        return req_id, run()

    def start_snapshot_quote(
        self, contract: Contract
    ) -> tuple[int, Awaitable[QuoteSnapshot], Callable[[int], None]]:
        """A one-off market-data snapshot (ends with tickSnapshotEnd); returns a cancel too."""
        ib = self._ib
        req_id = int(ib.client.getReqId())
        ib_contract = contract_to_ib(contract)
        answer = ib.wrapper.startReq(req_id, ib_contract)
        ticker = ib.wrapper.startTicker(req_id, ib_contract, "snapshot")
        ib.client.reqMktData(req_id, ib_contract, "", True, False, [])

        async def run() -> QuoteSnapshot:
            try:
                await answer
            finally:
                with contextlib.suppress(Exception):
                    ib.wrapper.endTicker(ticker, "snapshot")

            def positive(value: Any) -> float | None:
                out = number(value)
                return out if out is not None and out > 0 else None

            return QuoteSnapshot(
                bid=positive(ticker.bid),
                ask=positive(ticker.ask),
                last=positive(ticker.last),
                close=positive(ticker.close),
            )

        def cancel(rid: int) -> None:
            ib.client.cancelMktData(rid)

        return req_id, run(), cancel
