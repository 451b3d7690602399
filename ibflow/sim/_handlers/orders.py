"""Order requests, and the broker's events turned into frames for the clients they concern.

Each ``h_*`` handler takes the connection and a cursor positioned after the message id.

Orders belong to the client id that placed them, as on TWS: the broker keys them by (client
id, order id), so another client's cancel or placeOrder under the same id never reaches them.
Orders placed by hand in TWS (:func:`place_manual`) are booked under ``MANUAL_CLIENT`` and
shown to clients as client id 0 with order id 0, until client id 0 binds them (reqOpenOrders
binds the open ones, reqAutoOpenOrders(True) those placed from then on): they then show their
negative id, and client id 0 may modify and cancel them under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .._codec import Fields
from .._core import MANUAL_CLIENT, Connection, SimCore
from .._events import (
    AccountChanged,
    Commission,
    Event,
    Executed,
    OrderChanged,
    OrderError,
    PositionChanged,
)
from .._ids import Msg
from .._layouts import (
    PlaceOrderRequest,
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_status,
    parse_cancel_order,
    parse_place_order,
    parse_req_executions,
)
from .._model import ContractQuery, SimExecution, SimOrder
from .account import push_account, push_position


def h_place_order(c: Connection, f: Fields) -> None:
    assert c.client_id is not None
    req = parse_place_order(f, version=c.version)
    sim = c.sim
    inst = sim.universe.resolve(req.contract)
    if req.what_if:
        result = sim.broker.what_if(req, inst, c.client_id)
        preview = sim.broker.preview_order(c.client_id, req, inst)
        c.send(open_order(preview, what_if=result, version=c.version))
        return
    sim.bump_order_id(c.client_id, req.order_id)
    dispatch(sim, sim.broker.place(_owner(c, req.order_id), req, inst))


def h_cancel_order(c: Connection, f: Fields) -> None:
    assert c.client_id is not None
    order_id, _ = parse_cancel_order(f, version=c.version)
    dispatch(c.sim, c.sim.broker.cancel(_owner(c, order_id), order_id))


def _owner(c: Connection, order_id: int) -> int:
    """Whose order ``order_id`` names for this client: its own, or (client id 0, a negative
    id) an order placed by hand that it has bound."""
    assert c.client_id is not None
    if c.client_id == 0 and order_id in c.sim.bound_manual:
        return MANUAL_CLIENT
    return c.client_id


def place_manual(
    sim: SimCore,
    symbol: str,
    action: str,
    quantity: float,
    *,
    order_type: str,
    limit_price: float | None,
    stop_price: float | None,
    tif: str,
    account: str,
) -> int:
    """An order placed by hand in TWS; returns its perm id (see ``Simulator.place_manual``)."""
    inst = sim.universe.by_name(symbol)
    if inst is None:
        raise KeyError(f"no instrument {symbol!r} in the simulator's universe")
    order_id = sim.new_manual_id()
    binder = sim.client(0)
    if binder is not None and binder.auto_open_orders:
        sim.bound_manual.add(order_id)
    req = PlaceOrderRequest(
        order_id=order_id,
        contract=ContractQuery(con_id=inst.con_id),
        action=action,
        total_quantity=quantity,
        order_type=order_type,
        lmt_price=limit_price,
        aux_price=stop_price,
        tif=tif,
        account=account,
    )
    events = sim.broker.place(MANUAL_CLIENT, req, inst)
    dispatch(sim, events)
    order = sim.broker.order(MANUAL_CLIENT, order_id)
    if order is None:
        refusal = next((e for e in events if isinstance(e, OrderError)), None)
        raise ValueError(f"TWS refused the order: {refusal.text if refusal else 'unknown'}")
    return order.perm_id


def shown(sim: SimCore, order: SimOrder) -> SimOrder:
    """``order`` as clients see it: one placed by hand is client id 0's, with order id 0
    until bound."""
    if order.client_id != MANUAL_CLIENT:
        return order
    bound = order.order_id in sim.bound_manual
    return replace(order, client_id=0, order_id=order.order_id if bound else 0)


def _shown_fill(sim: SimCore, ex: SimExecution) -> SimExecution:
    if ex.client_id != MANUAL_CLIENT:
        return ex
    bound = ex.order_id in sim.bound_manual
    return replace(ex, client_id=0, order_id=ex.order_id if bound else 0)


def h_global_cancel(c: Connection, f: Fields) -> None:
    assert c.client_id is not None
    dispatch(c.sim, c.sim.broker.global_cancel(c.client_id))


def h_open_orders(c: Connection, f: Fields) -> None:
    if c.client_id == 0:
        # Client id 0's reqOpenOrders binds the orders placed by hand that are open now.
        manual = c.sim.broker.open_orders(MANUAL_CLIENT)
        c.sim.bound_manual.update(o.order_id for o in manual)
        _send_open_orders(c, [*c.sim.broker.open_orders(0), *manual])
        return
    _send_open_orders(c, c.sim.broker.open_orders(c.client_id))


def h_all_open_orders(c: Connection, f: Fields) -> None:
    _send_open_orders(c, c.sim.broker.open_orders(None))  # binds nothing


def h_auto_open_orders(c: Connection, f: Fields) -> None:
    f.skip()
    on = f.bool()
    if c.client_id != 0:
        c.error(
            -1, 321, "Error validating request.-'bJ' : cause - Only client id 0 can bind orders"
        )
        return
    c.auto_open_orders = on


def h_completed_orders(c: Connection, f: Fields) -> None:
    api_only = f.bool()
    for order in c.sim.broker.completed_orders():
        if api_only and order.client_id < 0:
            continue
        c.send(completed_order(order, version=c.version))
    c.send([Msg.COMPLETED_ORDERS_END])


def h_executions(c: Connection, f: Fields) -> None:
    req_id, flt = parse_req_executions(f)
    executions = c.sim.broker.executions(
        client_id=flt.client_id,
        account=flt.account,
        time=flt.time,
        symbol=flt.symbol,
        sec_type=flt.sec_type,
        exchange=flt.exchange,
        side=flt.side,
    )
    for ex in executions:
        c.send(exec_details(req_id, _shown_fill(c.sim, ex), version=c.version))
        c.send(commission_report(ex))
    c.send([Msg.EXECUTION_DATA_END, 1, req_id])


def _send_open_orders(c: Connection, orders: list[SimOrder]) -> None:
    for order in orders:
        seen = shown(c.sim, order)
        c.send(open_order(seen, version=c.version))
        c.send(order_status(seen))
    c.send([Msg.OPEN_ORDER_END, 1])


def dispatch(sim: SimCore, events: Iterable[Event]) -> None:
    """Send the broker's events, in order, to the connections each one concerns."""
    for ev in events:
        if isinstance(ev, OrderChanged):
            seen = shown(sim, ev.order)
            for conn in sim.owners(ev.order.client_id):
                conn.send(open_order(seen, version=conn.version))
                conn.send(order_status(seen))
        elif isinstance(ev, OrderError):
            # A refusal about an order placed by hand goes to the client id 0 that bound it.
            bound = ev.client_id == MANUAL_CLIENT and ev.order_id in sim.bound_manual
            owner = sim.client(0 if bound else ev.client_id)
            if owner is not None:
                owner.error(ev.order_id, ev.code, ev.text)
        elif isinstance(ev, Executed):
            fill = _shown_fill(sim, ev.execution)
            for conn in sim.owners(ev.execution.client_id):
                conn.send(exec_details(-1, fill, version=conn.version))
        elif isinstance(ev, Commission):
            for conn in sim.owners(ev.execution.client_id):
                conn.send(commission_report(ev.execution))
        elif isinstance(ev, PositionChanged):
            push_position(sim, ev.account, ev.instrument)
        elif isinstance(ev, AccountChanged):
            push_account(sim, ev.account)
