"""Order requests, and the broker's events turned into frames for the clients they concern.

Each ``h_*`` handler takes the connection and a cursor positioned after the message id.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._codec import Fields
from .._core import Connection, SimCore
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
    commission_report,
    completed_order,
    exec_details,
    open_order,
    order_status,
    parse_cancel_order,
    parse_place_order,
    parse_req_executions,
)
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
    dispatch(sim, sim.broker.place(c.client_id, req, inst))


def h_cancel_order(c: Connection, f: Fields) -> None:
    assert c.client_id is not None
    order_id, _ = parse_cancel_order(f, version=c.version)
    dispatch(c.sim, c.sim.broker.cancel(c.client_id, order_id))


def h_global_cancel(c: Connection, f: Fields) -> None:
    assert c.client_id is not None
    dispatch(c.sim, c.sim.broker.global_cancel(c.client_id))


def h_open_orders(c: Connection, f: Fields) -> None:
    _send_open_orders(c, c.client_id)


def h_all_open_orders(c: Connection, f: Fields) -> None:
    _send_open_orders(c, None)


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
        c.send(exec_details(req_id, ex, version=c.version))
        c.send(commission_report(ex))
    c.send([Msg.EXECUTION_DATA_END, 1, req_id])


def _send_open_orders(c: Connection, client_id: int | None) -> None:
    for order in c.sim.broker.open_orders(client_id):
        c.send(open_order(order, version=c.version))
        c.send(order_status(order))
    c.send([Msg.OPEN_ORDER_END, 1])


def dispatch(sim: SimCore, events: Iterable[Event]) -> None:
    """Send the broker's events, in order, to the connections each one concerns."""
    for ev in events:
        if isinstance(ev, OrderChanged):
            for conn in sim.owners(ev.order.client_id):
                conn.send(open_order(ev.order, version=conn.version))
                conn.send(order_status(ev.order))
        elif isinstance(ev, OrderError):
            owner = sim.client(ev.client_id)
            if owner is not None:
                owner.error(ev.order_id, ev.code, ev.text)
        elif isinstance(ev, Executed):
            for conn in sim.owners(ev.execution.client_id):
                conn.send(exec_details(-1, ev.execution, version=conn.version))
        elif isinstance(ev, Commission):
            for conn in sim.owners(ev.execution.client_id):
                conn.send(commission_report(ev.execution))
        elif isinstance(ev, PositionChanged):
            push_position(sim, ev.account, ev.instrument)
        elif isinstance(ev, AccountChanged):
            push_account(sim, ev.account)
