"""Orders across the ib_async border: sending, reading back, and a tap on every order message.

ib_async's own order bookkeeping cannot be trusted as a source of truth: it marks a trade
``Cancelled`` on any error addressed to it, ``Cancelled`` again when you cancel an ``Inactive``
order, and emits ``execDetails`` only for fills it can attach to a trade it already knows.
So ibflow does not listen to ib_async's trade events at all.
:meth:`OrdersPort.install_order_tap` wraps the wrapper callbacks the decoder calls for
orderStatus, openOrder, completedOrder, execDetails and commissionReport, and hands the *raw*
values, converted to ibflow records, to one listener — the order book in ``ibflow._orders``.
ib_async's own handling still runs first and unchanged.

The other functions send orders and cancels, and start the order reads (open orders, completed
orders, executions, what-if, contract details, a snapshot quote) in the ``(req_id, awaitable)``
shape ``Session._request`` routes. camelCase, ``UNSET_DOUBLE`` and empty-string sentinels stop
here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import ib_async
from ib_async import ExecutionFilter

from .._log import get_logger
from .._records import orders as m
from .._records.contracts import Contract
from .._records.orders import Commission, Fill, Order, OrderPreview, OrderSnapshot
from ._contracts import contract_from_ib, contract_to_ib
from ._errors import map_ib_errors
from ._order_terms import aux_price, put_terms, refresh_terms, reported_terms, terms_from_ib

__all__ = [
    "CompletedCollector",
    "OpenOrderUpdate",
    "OrderListener",
    "OrdersPort",
    "QuoteSnapshot",
    "StatusUpdate",
    "commission_from_ib",
    "fill_from_ib",
    "number",
    "order_to_ib",
    "preview_from_ib",
    "snapshot_from_ib",
]

log = get_logger("orders")

_UNSET_LIMIT = 1e300  # IB writes 1.7976931348623157E308 (float max) for "not set"
_UNSET_INT = 2**31 - 1
# Order types whose lmtPrice is a limit (or a relative or pegged order's cap).
_HAS_LIMIT = frozenset({"LMT", "STP LMT", "LOC", "LIT", "REL", "PEG MID", "PEGMID"})


# -- values ------------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A finite float, or ``None`` for IB's "not set" spellings (``""``, NaN, float max)."""
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(out) or abs(out) >= _UNSET_LIMIT:
        return None
    return out


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _int_id(value: Any) -> int | None:
    try:
        out = int(value)
    except (TypeError, ValueError):
        return None
    return out if 0 < out < _UNSET_INT else None


def _order_id(value: Any) -> int | None:
    """An order id; TWS gives orders placed by hand negative ids once bound to client id 0,
    and 0 (``None`` here) while unbound."""
    try:
        out = int(value)
    except (TypeError, ValueError):
        return None
    return out if out != 0 and abs(out) < _UNSET_INT else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_ib_time(text: str) -> datetime | None:
    """``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd-hh:mm:ss`` (UTC), as TWS writes times."""
    text = (text or "").strip()
    if not text:
        return None
    zone = "UTC"
    if "-" in text[:9]:
        stamp = text
    else:
        parts = text.split()
        if len(parts) >= 3:
            zone = parts[2]
        stamp = "-".join(parts[:2])
    try:
        naive = datetime.strptime(stamp, "%Y%m%d-%H:%M:%S")
    except ValueError:
        return None
    if zone.upper() in ("UTC", "GMT", "Z"):
        return naive.replace(tzinfo=UTC)
    try:
        tz: Any = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = UTC
    return naive.replace(tzinfo=tz)


def _price_fields(order_type: str, lmt: Any, aux: Any) -> tuple[float | None, float | None]:
    """(limit, stop) as the order type uses them; IB fills unused price fields with 0 or unset."""
    kind = order_type.upper()
    limit = number(lmt) if kind in _HAS_LIMIT else None
    stop = number(aux) if kind in ("STP", "STP LMT") else None
    return limit, stop


# -- conversions ---------------------------------------------------------------------------------


def order_to_ib(
    spec: Order,
    order_id: int,
    *,
    parent_id: int = 0,
    transmit: bool = True,
    oca_group: str = "",
    oca_type: int = 0,
    what_if: bool = False,
) -> ib_async.Order:
    """The ib_async order to send for ``spec`` (a fresh object each time)."""
    good_till = ""
    if spec.good_till is not None:
        good_till = spec.good_till.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
    unset = ib_async.util.UNSET_DOUBLE
    aux = aux_price(spec)
    order = ib_async.Order(
        orderId=order_id,
        action=spec.side.value,
        totalQuantity=float(spec.quantity),
        orderType=spec.order_type.value,
        lmtPrice=spec.limit_price if spec.limit_price is not None else unset,
        auxPrice=aux if aux is not None else unset,
        tif=spec.tif.value,
        goodTillDate=good_till,
        outsideRth=spec.outside_rth,
        account=spec.account or "",
        orderRef=spec.order_ref or "",
        transmit=transmit,
        parentId=parent_id,
        ocaGroup=oca_group,
        ocaType=oca_type,
        whatIf=what_if,
    )
    put_terms(order, spec)
    return order


def commission_from_ib(report: ib_async.CommissionReport) -> Commission | None:
    """A commission report, or ``None`` for the empty placeholder ib_async keeps on a fill."""
    if not report.execId:
        return None
    amount = number(report.commission)
    return m.Commission(
        exec_id=report.execId,
        amount=amount if amount is not None else 0.0,
        currency=_text(report.currency),
        realized_pnl=number(report.realizedPNL),
    )


def execution_problem(execution: ib_async.Execution) -> str | None:
    """What makes an execution impossible (a non-finite or non-positive size, a non-finite or
    negative price), or ``None`` when its numbers make sense."""
    try:
        shares = float(execution.shares)
        price = float(execution.price)
    except (TypeError, ValueError):
        return f"unreadable size {execution.shares!r} or price {execution.price!r}"
    if not math.isfinite(shares) or shares <= 0:
        return f"impossible size {execution.shares!r}"
    if not math.isfinite(price) or price < 0:
        return f"impossible price {execution.price!r}"
    return None


def fill_from_ib(
    contract: Contract, execution: ib_async.Execution, commission: Commission | None = None
) -> Fill:
    """One execution; ``ValueError`` for a side ibflow does not know or impossible numbers."""
    side = {"BOT": "BUY", "BUY": "BUY", "SLD": "SELL", "SELL": "SELL"}.get(
        (execution.side or "").upper()
    )
    if side is None:
        raise ValueError(f"unknown execution side {execution.side!r}")
    problem = execution_problem(execution)
    if problem is not None:
        raise ValueError(problem)
    time = execution.time
    when = _aware(time) if isinstance(time, datetime) else datetime.now(UTC)
    return m.Fill(
        exec_id=execution.execId,
        order_id=_int_id(execution.orderId),
        perm_id=_int_id(execution.permId),
        client_id=int(execution.clientId) if execution.clientId is not None else None,
        contract=contract,
        side=m.Side(side),
        quantity=float(execution.shares),
        price=float(execution.price),
        time=when,
        account=_text(execution.acctNumber),
        exchange=_text(execution.exchange),
        cumulative_quantity=number(execution.cumQty),
        avg_price=number(execution.avgPrice),
        order_ref=_text(execution.orderRef),
        commission=commission,
    )


def snapshot_from_ib(
    contract: ib_async.Contract,
    order: ib_async.Order,
    status: str,
    *,
    filled: float | None = None,
    remaining: float | None = None,
    avg_fill_price: float | None = None,
    completed_time: str = "",
    completed_status: str = "",
    completed: bool = False,
) -> OrderSnapshot:
    """One order as TWS reports it; ``ValueError`` for what ibflow cannot represent."""
    order_type_raw = (order.orderType or "").upper()
    try:
        order_type: m.OrderType | str = m.OrderType(order_type_raw)
    except ValueError:
        order_type = order_type_raw
    tif_raw = (order.tif or "").upper()
    try:
        tif: m.TimeInForce | str = m.TimeInForce(tif_raw) if tif_raw else m.TimeInForce.DAY
    except ValueError:
        tif = tif_raw
    limit, stop = _price_fields(order_type_raw, order.lmtPrice, order.auxPrice)
    quantity = float(order.totalQuantity)
    if completed:
        done = number(order.filledQuantity)
        filled = done if done is not None else filled
    filled_qty = filled if filled is not None else 0.0
    left = remaining if remaining is not None else max(quantity - filled_qty, 0.0)
    return m.OrderSnapshot(
        order_id=_order_id(order.orderId),
        perm_id=_int_id(order.permId),
        client_id=None if completed else int(order.clientId),
        parent_id=_int_id(order.parentId),
        contract=contract_from_ib(contract),
        side=m.Side((order.action or "").upper()),
        quantity=quantity,
        order_type=order_type,
        limit_price=limit,
        stop_price=stop,
        tif=tif,
        outside_rth=bool(order.outsideRth),
        account=_text(order.account),
        order_ref=_text(order.orderRef),
        oca_group=_text(order.ocaGroup),
        status=m.OrderStatus(status),
        filled=filled_qty,
        remaining=left,
        avg_fill_price=number(avg_fill_price) or None,
        completed_time=_parse_ib_time(completed_time),
        completed_status=_text(completed_status),
        **terms_from_ib(order, number),
    )


def preview_from_ib(state: ib_async.OrderState) -> OrderPreview:
    """The margin and commission preview TWS sends for a what-if order."""
    return m.OrderPreview(
        init_margin_before=number(state.initMarginBefore),
        maint_margin_before=number(state.maintMarginBefore),
        equity_with_loan_before=number(state.equityWithLoanBefore),
        init_margin_change=number(state.initMarginChange),
        maint_margin_change=number(state.maintMarginChange),
        equity_with_loan_change=number(state.equityWithLoanChange),
        init_margin_after=number(state.initMarginAfter),
        maint_margin_after=number(state.maintMarginAfter),
        equity_with_loan_after=number(state.equityWithLoanAfter),
        commission=number(state.commission),
        min_commission=number(state.minCommission),
        max_commission=number(state.maxCommission),
        commission_currency=_text(state.commissionCurrency),
        warning=_text(state.warningText),
    )


# -- the tap ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One orderStatus frame, values as TWS sent them (unset → ``None``)."""

    order_id: int
    client_id: int
    perm_id: int | None
    status: str
    filled: float | None
    remaining: float | None
    avg_fill_price: float | None
    parent_id: int | None
    why_held: str | None


@dataclass(frozen=True, slots=True)
class OpenOrderUpdate:
    """One openOrder frame (not a what-if preview): the order's current terms and status.

    ``snapshot`` is the whole order as a record (``None`` when ibflow cannot represent it), so
    an order this session did not place can be adopted; ``oca_type`` is not part of it.
    ``terms`` are the price terms its type uses, under :class:`Order`'s names (see
    ``reported_terms``), with ``tif`` (``None`` if ibflow does not know it) and ``good_till``.
    ``algo_or_conditions``: the order carries an algo or conditions (the snapshot names only
    the algo).
    """

    order_id: int
    client_id: int
    perm_id: int | None
    status: str
    quantity: float
    limit_price: float | None
    stop_price: float | None
    snapshot: OrderSnapshot | None = None
    oca_type: int = 0
    terms: Mapping[str, Any] = field(default_factory=dict)
    algo_or_conditions: bool = False


def _open_update(
    order_id: int,
    contract: ib_async.Contract,
    order: ib_async.Order,
    status: str,
    *,
    filled: float | None = None,
    avg_fill_price: float | None = None,
) -> OpenOrderUpdate:
    limit, stop = _price_fields(order.orderType or "", order.lmtPrice, order.auxPrice)
    try:
        snapshot: OrderSnapshot | None = snapshot_from_ib(
            contract, order, status, filled=filled, avg_fill_price=avg_fill_price
        )
    except ValueError:
        snapshot = None
    terms: dict[str, Any] = dict(reported_terms(order, number))
    try:
        terms["tif"] = m.TimeInForce((order.tif or "DAY").upper())
    except ValueError:
        terms["tif"] = None
    terms["good_till"] = _parse_ib_time(order.goodTillDate or "")
    try:
        terms["order_type"] = m.OrderType((order.orderType or "").upper())
    except ValueError:
        terms["order_type"] = None
    return OpenOrderUpdate(
        order_id=int(order_id),
        client_id=int(order.clientId),
        perm_id=_int_id(order.permId),
        status=str(status),
        quantity=float(order.totalQuantity),
        limit_price=limit,
        stop_price=stop,
        snapshot=snapshot,
        oca_type=int(order.ocaType or 0),
        terms=terms,
        algo_or_conditions=bool((order.algoStrategy or "").strip() or order.conditions),
    )


class OrderListener(Protocol):
    """What :func:`install_order_tap` feeds; called synchronously from ib_async's decoder."""

    def on_status(self, update: StatusUpdate) -> None: ...

    def on_open_order(self, update: OpenOrderUpdate) -> None: ...

    def on_completed_order(self, snapshot: OrderSnapshot) -> None: ...

    def on_execution(self, fill: Fill, live: bool) -> None: ...

    def on_commission(self, commission: Commission) -> None: ...

    def on_order_error(self, order_id: int, code: int, message: str) -> None: ...


_TAPPED = ("orderStatus", "openOrder", "completedOrder", "execDetails", "commissionReport")


# -- sending ------------------------------------------------------------------------------------


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
                perm_id=_int_id(permId),
                status=str(status),
                filled=number(filled),
                remaining=number(remaining),
                avg_fill_price=number(avgFillPrice),
                parent_id=_int_id(parentId),
                why_held=_text(whyHeld),
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
                update = _open_update(orderId, contract, order, orderState.status)
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
                _open_update(
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
