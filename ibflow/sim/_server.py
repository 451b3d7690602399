"""The asyncio shell of the simulator: sockets, connections, dispatch, subscriptions and faults.

Everything that decides *what* to answer lives in the pure modules (codec, scenario, market,
broker, layouts, pacing). This module only decides *when* and *to whom*: it owns the listening
socket, one :class:`_Connection` per client, the subscriptions each client holds, the streaming
loop that moves the market, and the fault switches the reliability tests flip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from . import _features as features
from . import _layouts as layouts
from ._broker import (
    INACTIVE_CODE,
    INACTIVE_TEXT,
    AccountChanged,
    Broker,
    Commission,
    CommissionModel,
    Event,
    Executed,
    OrderChanged,
    OrderError,
    PositionChanged,
)
from ._codec import (
    SERVER_VERSION,
    ClientHello,
    Fields,
    FrameDecoder,
    HandshakeDecoder,
    ProtocolError,
    encode_fields,
    encode_raw,
    negotiate,
)
from ._history import (
    bar_size_seconds,
    format_bar_time,
    format_range,
    historical_request,
)
from ._ids import Msg, Req
from ._market import Market
from ._model import ContractQuery, Instrument, SimError, SimExecution, SimOrder
from ._options import send_option_ticks, with_underlyings
from ._pacing import HistoricalPacing, MessageRate, TickByTickPacing
from ._scenario import Scenario, Universe

log = logging.getLogger("ibflow.sim")

# Data-type dependent tick ids: (live, delayed).
_BID, _ASK, _LAST = (1, 66), (2, 67), (4, 68)
_BID_SIZE, _ASK_SIZE, _LAST_SIZE = (0, 69), (3, 70), (5, 71)
_HIGH, _LOW, _VOLUME, _CLOSE, _OPEN = (6, 72), (7, 73), (8, 74), (9, 75), (14, 76)
_LAST_TIMESTAMP = (45, 88)
_HALTED = 49

FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
REQUEST_KINDS = frozenset(r.name.lower() for r in Req)
# Subscriptions that carry market data: they stop during an 1100 and die with an 1101.
_MARKET_KINDS = (
    frozenset({"mkt_data", "tick_by_tick", "real_time_bars", "historical_data"})
    | features.MARKET_KINDS
)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A connected API client, as the sim sees it."""

    client_id: int
    server_version: int
    peer: str
    connected_at: float


@dataclass(slots=True)
class _Fault:
    """A pending :meth:`Simulator.fail_next`: let ``skip`` requests through, then fail one."""

    code: int
    text: str
    skip: int = 0


@dataclass(slots=True)
class _Sub:
    """One live subscription held by a connection, keyed by (kind, req_id)."""

    kind: str
    req_id: int
    instrument: Instrument | None = None
    params: dict[str, Any] = field(default_factory=dict)
    last_sent: float = 0.0


class _Connection(asyncio.Protocol):
    """One client socket: handshake, framing, per-connection limits and outgoing writes."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.hello: ClientHello | None = None
        self.handshake = HandshakeDecoder()
        self.frames = FrameDecoder()
        self.version = 0
        self.client_id: int | None = None
        self.peer = ""
        self.connected_at = time.time()
        self.subs: dict[tuple[str, int], _Sub] = {}
        self.market_data_type = 1
        self.auto_open_orders = False
        self.rate = MessageRate(speed=sim.speed) if sim.pacing else None
        self.closed = False
        self.writable = asyncio.Event()
        self.writable.set()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not checked with isinstance, since uvloop's TCPTransport does
        # not derive from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.sim._pending.add(self)
        if self.sim._accept_then_close:
            log.info("fault: accepted %s and closing at once", self.peer)
            self.close()

    def data_received(self, data: bytes) -> None:
        try:
            if self.hello is None:
                hello, rest = self.handshake.feed(data)
                if hello is None:
                    return
                self.hello = hello
                self._on_hello(hello)
                data = rest
                if self.closed or not data:
                    return
            for fields in self.frames.feed(data):
                if self.closed:
                    return
                self._on_message(fields)
        except ProtocolError as exc:
            log.warning("client %s sent bad bytes (%s); closing", self.peer, exc)
            self.close()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()
        self.sim._pending.discard(self)
        if self.client_id is not None and self.sim._clients.get(self.client_id) is self:
            del self.sim._clients[self.client_id]
            log.info("client %s (id %d) disconnected", self.peer, self.client_id)
        self.subs.clear()

    # -- writing -----------------------------------------------------------------------------

    def send(self, fields: Sequence[object]) -> None:
        self.write(encode_fields(fields))

    def write(self, frame: bytes) -> None:
        if self.closed or self.transport is None:
            return
        sim = self.sim
        if sim._stalled:
            sim._stalled_frames.append((self, frame))
        elif sim._delay > 0:
            asyncio.get_running_loop().call_later(sim._delay, self._write_now, frame)
        else:
            self.transport.write(frame)

    def _write_now(self, frame: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(frame)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send([Msg.ERR_MSG, 2, req_id, code, text, ""])

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    # -- handshake ---------------------------------------------------------------------------

    def _on_hello(self, hello: ClientHello) -> None:
        if self.sim._silence_handshake:
            log.info("fault: not answering the handshake of %s", self.peer)
            return
        version = negotiate(hello, SERVER_VERSION)
        if version is None:
            log.warning(
                "client %s offers v%d..%d, no overlap with %d; closing",
                self.peer,
                hello.min_version,
                hello.max_version,
                SERVER_VERSION,
            )
            self.close()
            return
        self.version = version
        stamp = datetime.fromtimestamp(self.sim.clock(), UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self.transport.write(encode_fields([version, stamp]))  # type: ignore[union-attr]

    def _on_start_api(self, f: Fields) -> None:
        f.skip()  # version
        client_id = f.int()
        sim = self.sim
        if client_id in sim._clients:
            log.info("client %s asked for id %d, which is in use: 326", self.peer, client_id)
            self.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            self.close()
            return
        if len(sim._clients) >= sim.max_clients:
            self.error(-1, 502, "Couldn't connect to TWS. Too many API clients are connected.")
            self.close()
            return
        self.client_id = client_id
        sim._pending.discard(self)
        sim._clients[client_id] = self
        log.info("client %s connected as id %d (v%d)", self.peer, client_id, self.version)
        self.send([Msg.MANAGED_ACCTS, 1, ",".join(sim.broker.accounts)])
        self.send([Msg.NEXT_VALID_ID, 1, sim._next_order_id(client_id)])
        for code, text in FARM_NOTICES:
            self.error(-1, code, text)

    # -- dispatch ----------------------------------------------------------------------------

    def _on_message(self, fields: list[str]) -> None:
        if not fields:
            return
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("client %s sent a frame with message id %r", self.peer, fields[0])
            return
        if self.client_id is None:
            if msg_id == Req.START_API:
                self._on_start_api(Fields(fields))
            else:
                log.warning("client %s sent id %d before startApi", self.peer, msg_id)
            return
        if self.rate is not None:
            verdict = self.rate.on_message()
            if verdict == "disconnect":
                self.error(-1, 100, "Max rate of messages per second has been exceeded.")
                log.warning("client %d keeps exceeding 50 msg/s; disconnecting", self.client_id)
                self.close()
                return
            if verdict == "violation":
                self.error(-1, 100, "Max rate of messages per second has been exceeded.")
                return
            if verdict == "dropped":
                return
        try:
            req = Req(msg_id)
        except ValueError:
            log.info("client %d: request id %d is not simulated", self.client_id, msg_id)
            return
        kind = req.name.lower()
        self.sim._record(self.client_id, kind, fields)
        if kind in self.sim._ignored:
            return
        fault = self.sim._fail_next.get(kind)
        if fault is not None:
            if fault.skip > 0:
                fault.skip -= 1
            else:
                del self.sim._fail_next[kind]
                # Never handled: a failed placeOrder leaves no order behind, as when TWS
                # rejects one before accepting it.
                self.error(_req_id_of(req, fields), fault.code, fault.text)
                return
        handler = _HANDLERS.get(req)
        if handler is None:
            return
        try:
            handler(self, Fields(fields))
        except SimError as exc:
            self.error(_req_id_of(req, fields), exc.code, exc.text)
        except ProtocolError as exc:
            log.warning("client %d sent a malformed %s: %s", self.client_id, kind, exc)
            self.error(_req_id_of(req, fields), 320, f"Error reading request: {exc}")


def _req_id_of(req: Req, fields: list[str]) -> int:
    """Where a request carries its request (or order) id, for addressing an error to it."""
    pos = _REQ_ID_POS.get(req)
    if pos is None or pos >= len(fields):
        return -1
    try:
        return int(fields[pos])
    except ValueError:
        return -1


_REQ_ID_POS = {
    Req.MKT_DATA: 2,
    Req.CANCEL_MKT_DATA: 2,
    Req.PLACE_ORDER: 1,
    Req.CANCEL_ORDER: 2,
    Req.EXECUTIONS: 2,
    Req.CONTRACT_DATA: 2,
    Req.HISTORICAL_DATA: 1,
    Req.CANCEL_HISTORICAL_DATA: 2,
    Req.REAL_TIME_BARS: 2,
    Req.CANCEL_REAL_TIME_BARS: 2,
    Req.ACCOUNT_SUMMARY: 2,
    Req.CANCEL_ACCOUNT_SUMMARY: 2,
    Req.ACCOUNT_UPDATES_MULTI: 2,
    Req.CANCEL_ACCOUNT_UPDATES_MULTI: 2,
    Req.HEAD_TIMESTAMP: 1,
    Req.CANCEL_HEAD_TIMESTAMP: 1,
    Req.PNL: 1,
    Req.CANCEL_PNL: 1,
    Req.PNL_SINGLE: 1,
    Req.CANCEL_PNL_SINGLE: 1,
    Req.TICK_BY_TICK: 1,
    Req.CANCEL_TICK_BY_TICK: 1,
    **features.REQ_ID_POS,
}

# ---------------------------------------------------------------------------------------------
# Request handlers. Each takes the connection and a cursor positioned after the message id.


def _h_ids(c: _Connection, f: Fields) -> None:
    assert c.client_id is not None
    c.send([Msg.NEXT_VALID_ID, 1, c.sim._next_order_id(c.client_id)])


def _h_current_time(c: _Connection, f: Fields) -> None:
    c.send([Msg.CURRENT_TIME, 1, int(c.sim.clock())])


def _h_managed_accts(c: _Connection, f: Fields) -> None:
    c.send([Msg.MANAGED_ACCTS, 1, ",".join(c.sim.broker.accounts)])


def _h_positions(c: _Connection, f: Fields) -> None:
    for pos in c.sim.broker.positions():
        c.send(layouts.position(pos))
    c.send([Msg.POSITION_END, 1])
    c.subs[("positions", 0)] = _Sub("positions", 0)


def _h_cancel_positions(c: _Connection, f: Fields) -> None:
    c.subs.pop(("positions", 0), None)


def _h_account_updates(c: _Connection, f: Fields) -> None:
    f.skip()
    subscribe = f.bool()
    account = f.str() or c.sim.broker.accounts[0]
    c.subs.pop(("account_updates", 0), None)
    if not subscribe:
        return
    c.sim._check_account(account)
    c.subs[("account_updates", 0)] = _Sub("account_updates", 0, params={"account": account})
    c.sim._send_account_updates(c, account)
    c.send([Msg.ACCT_DOWNLOAD_END, 1, account])


def _h_account_updates_multi(c: _Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    account = f.str()
    model_code = f.str()
    accounts = c.sim.broker.accounts if account in ("", "All") else [account]
    for acct in accounts:
        c.sim._check_account(acct)
    sub = _Sub("account_updates_multi", req_id, params={"accounts": accounts, "model": model_code})
    c.subs[("account_updates_multi", req_id)] = sub
    c.sim._send_account_multi(c, sub)
    c.send([Msg.ACCOUNT_UPDATE_MULTI_END, 1, req_id])


def _h_cancel_account_updates_multi(c: _Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("account_updates_multi", f.int()), None)


def _h_account_summary(c: _Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    group = f.str()
    tags = [t.strip() for t in f.str().split(",") if t.strip()]
    if group not in ("All", ""):
        raise SimError(321, f"Error validating request.-'b6' : cause - Unknown group '{group}'")
    sub = _Sub("account_summary", req_id, params={"tags": tags})
    c.subs[("account_summary", req_id)] = sub
    c.sim._send_account_summary(c, sub)


def _h_cancel_account_summary(c: _Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("account_summary", f.int()), None)


def _h_pnl(c: _Connection, f: Fields) -> None:
    req_id = f.int()
    account = f.str()
    c.sim._check_account(account)
    sub = _Sub("pnl", req_id, params={"account": account})
    c.subs[("pnl", req_id)] = sub
    c.sim._send_pnl(c, sub)


def _h_cancel_pnl(c: _Connection, f: Fields) -> None:
    c.subs.pop(("pnl", f.int()), None)


def _h_pnl_single(c: _Connection, f: Fields) -> None:
    req_id = f.int()
    account = f.str()
    f.skip()  # model code
    con_id = f.int()
    c.sim._check_account(account)
    if c.sim.universe.by_con_id(con_id) is None:
        raise SimError(200, "No security definition has been found for the request")
    sub = _Sub("pnl_single", req_id, params={"account": account, "con_id": con_id})
    c.subs[("pnl_single", req_id)] = sub
    c.sim._send_pnl(c, sub)


def _h_cancel_pnl_single(c: _Connection, f: Fields) -> None:
    c.subs.pop(("pnl_single", f.int()), None)


def _h_contract_data(c: _Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    query = f.contract()
    matches = c.sim.universe.match(query)
    if not matches:
        c.error(req_id, 200, "No security definition has been found for the request")
        return
    today = datetime.fromtimestamp(c.sim.clock(), UTC).date()
    for inst in matches:
        c.send(layouts.contract_data(req_id, inst, today=today))
    c.send([Msg.CONTRACT_DATA_END, 1, req_id])


def _h_mkt_data(c: _Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    query = f.contract()
    if query.sec_type == "BAG":
        raise SimError(321, "Error validating request.-'bK' : cause - combos are not simulated")
    if f.bool():  # delta-neutral contract
        f.skip(3)
    generic_ticks = f.str()
    snapshot = f.bool()
    regulatory = f.bool()
    inst = c.sim.universe.resolve(query)
    sim = c.sim
    if not (snapshot or regulatory):
        if sim.lines_in_use() >= sim.scenario.market_data_lines:
            raise SimError(
                101,
                f"Max number of tickers has been reached ({sim.scenario.market_data_lines})",
            )
        c.subs[("mkt_data", req_id)] = _Sub(
            "mkt_data",
            req_id,
            inst,
            params={"generic": generic_ticks, "halted": sim.market.quote(inst.con_id).halted},
        )
    c.send([Msg.TICK_REQ_PARAMS, req_id, inst.min_tick, "9c0001", 3])
    c.send([Msg.MARKET_DATA_TYPE, 1, req_id, c.market_data_type])
    sim._send_full_quote(c, req_id, inst)
    if snapshot or regulatory:
        c.send([Msg.TICK_SNAPSHOT_END, 1, req_id])


def _h_cancel_mkt_data(c: _Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("mkt_data", f.int()), None)


def _h_market_data_type(c: _Connection, f: Fields) -> None:
    f.skip()
    kind = f.int()
    if kind not in (1, 2, 3, 4):
        raise SimError(
            321, f"Error validating request.-'bS' : cause - invalid market data type {kind}"
        )
    c.market_data_type = kind


def _h_tick_by_tick(c: _Connection, f: Fields) -> None:
    req_id = f.int()
    query = f.contract()
    tick_type = f.str()
    f.int()  # numberOfTicks: history before the stream is not simulated
    types = {"Last": 1, "AllLast": 2, "BidAsk": 3, "MidPoint": 4}
    if tick_type not in types:
        raise SimError(
            321, f"Error validating request.-'bU' : cause - invalid tick type {tick_type!r}"
        )
    inst = c.sim.universe.resolve(query)
    sim = c.sim
    if sim.tbt_pacing is not None:
        err = sim.tbt_pacing.admit(inst.con_id)
        if err is not None:
            raise err
    c.subs[("tick_by_tick", req_id)] = _Sub(
        "tick_by_tick", req_id, inst, params={"type": types[tick_type]}
    )


def _h_cancel_tick_by_tick(c: _Connection, f: Fields) -> None:
    c.subs.pop(("tick_by_tick", f.int()), None)


def _h_real_time_bars(c: _Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    query = f.contract()
    bar_size = f.int()
    what = f.str().upper()
    use_rth = f.bool()
    if bar_size != 5:
        raise SimError(
            321, "Error validating request.-'bY' : cause - Invalid bar size: only 5 seconds"
        )
    if what not in ("TRADES", "MIDPOINT", "BID", "ASK"):
        raise SimError(321, f"Error validating request.-'bY' : cause - Invalid whatToShow {what!r}")
    inst = c.sim.universe.resolve(query)
    start = int(c.sim.clock()) // 5 * 5
    c.subs[("real_time_bars", req_id)] = _Sub(
        "real_time_bars", req_id, inst, params={"what": what, "rth": use_rth, "next": start}
    )


def _h_cancel_real_time_bars(c: _Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("real_time_bars", f.int()), None)


def _h_historical_data(c: _Connection, f: Fields) -> None:
    req_id = f.int()
    query = f.contract()
    f.bool()  # includeExpired
    end_text = f.str()
    bar_size = f.str()
    duration = f.str()
    use_rth = f.bool()
    what = f.str().upper()
    format_date = f.int(1)
    if query.sec_type == "BAG":
        raise SimError(321, "Error validating request.-'bP' : cause - combos are not simulated")
    keep_up = f.bool() if f.remaining else False
    inst = c.sim.universe.resolve(query)
    c.sim._serve_history(
        c, req_id, inst, end_text, bar_size, duration, use_rth, what, format_date, keep_up
    )


def _h_cancel_historical_data(c: _Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("historical_data", f.int()), None)


def _h_head_timestamp(c: _Connection, f: Fields) -> None:
    req_id = f.int()
    query = f.contract()
    f.bool()  # includeExpired
    use_rth = f.bool()
    what = f.str().upper()
    format_date = f.int(1)
    inst = c.sim.universe.resolve(query)
    stamp = c.sim.market.head_timestamp(inst, what=what, use_rth=use_rth)
    text = str(int(stamp.timestamp())) if format_date == 2 else stamp.strftime("%Y%m%d-%H:%M:%S")
    c.send([Msg.HEAD_TIMESTAMP, req_id, text])


def _h_place_order(c: _Connection, f: Fields) -> None:
    assert c.client_id is not None
    req = layouts.parse_place_order(f, version=c.version)
    sim = c.sim
    inst = sim.universe.resolve(req.contract)
    if req.what_if:
        result = sim.broker.what_if(req, inst, c.client_id)
        preview = sim.broker.preview_order(c.client_id, req, inst)
        c.send(layouts.open_order(preview, what_if=result, version=c.version))
        return
    sim._bump_order_id(c.client_id, req.order_id)
    sim._dispatch(sim.broker.place(c.client_id, req, inst))


def _h_cancel_order(c: _Connection, f: Fields) -> None:
    assert c.client_id is not None
    order_id, _ = layouts.parse_cancel_order(f, version=c.version)
    c.sim._dispatch(c.sim.broker.cancel(c.client_id, order_id))


def _h_global_cancel(c: _Connection, f: Fields) -> None:
    assert c.client_id is not None
    c.sim._dispatch(c.sim.broker.global_cancel(c.client_id))


def _h_open_orders(c: _Connection, f: Fields) -> None:
    c.sim._send_open_orders(c, c.client_id)


def _h_all_open_orders(c: _Connection, f: Fields) -> None:
    c.sim._send_open_orders(c, None)


def _h_auto_open_orders(c: _Connection, f: Fields) -> None:
    f.skip()
    on = f.bool()
    if c.client_id != 0:
        c.error(
            -1, 321, "Error validating request.-'bJ' : cause - Only client id 0 can bind orders"
        )
        return
    c.auto_open_orders = on


def _h_completed_orders(c: _Connection, f: Fields) -> None:
    api_only = f.bool()
    for order in c.sim.broker.completed_orders():
        if api_only and order.client_id < 0:
            continue
        c.send(layouts.completed_order(order, version=c.version))
    c.send([Msg.COMPLETED_ORDERS_END])


def _h_executions(c: _Connection, f: Fields) -> None:
    req_id, flt = layouts.parse_req_executions(f)
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
        c.send(layouts.exec_details(req_id, ex, version=c.version))
        c.send(layouts.commission_report(ex))
    c.send([Msg.EXECUTION_DATA_END, 1, req_id])


_HANDLERS: dict[Req, Callable[[_Connection, Fields], None]] = {
    Req.IDS: _h_ids,
    Req.CURRENT_TIME: _h_current_time,
    Req.MANAGED_ACCTS: _h_managed_accts,
    Req.POSITIONS: _h_positions,
    Req.CANCEL_POSITIONS: _h_cancel_positions,
    Req.ACCOUNT_UPDATES: _h_account_updates,
    Req.ACCOUNT_UPDATES_MULTI: _h_account_updates_multi,
    Req.CANCEL_ACCOUNT_UPDATES_MULTI: _h_cancel_account_updates_multi,
    Req.ACCOUNT_SUMMARY: _h_account_summary,
    Req.CANCEL_ACCOUNT_SUMMARY: _h_cancel_account_summary,
    Req.PNL: _h_pnl,
    Req.CANCEL_PNL: _h_cancel_pnl,
    Req.PNL_SINGLE: _h_pnl_single,
    Req.CANCEL_PNL_SINGLE: _h_cancel_pnl_single,
    Req.CONTRACT_DATA: _h_contract_data,
    Req.MKT_DATA: _h_mkt_data,
    Req.CANCEL_MKT_DATA: _h_cancel_mkt_data,
    Req.MARKET_DATA_TYPE: _h_market_data_type,
    Req.TICK_BY_TICK: _h_tick_by_tick,
    Req.CANCEL_TICK_BY_TICK: _h_cancel_tick_by_tick,
    Req.REAL_TIME_BARS: _h_real_time_bars,
    Req.CANCEL_REAL_TIME_BARS: _h_cancel_real_time_bars,
    Req.HISTORICAL_DATA: _h_historical_data,
    Req.CANCEL_HISTORICAL_DATA: _h_cancel_historical_data,
    Req.HEAD_TIMESTAMP: _h_head_timestamp,
    Req.PLACE_ORDER: _h_place_order,
    Req.CANCEL_ORDER: _h_cancel_order,
    Req.GLOBAL_CANCEL: _h_global_cancel,
    Req.OPEN_ORDERS: _h_open_orders,
    Req.ALL_OPEN_ORDERS: _h_all_open_orders,
    Req.AUTO_OPEN_ORDERS: _h_auto_open_orders,
    Req.COMPLETED_ORDERS: _h_completed_orders,
    Req.EXECUTIONS: _h_executions,
    **features.HANDLERS,
}


# ---------------------------------------------------------------------------------------------


class Simulator:
    """A TWS/IB Gateway on loopback that any TWS API client can connect to.

    ``async with Simulator(port=0) as sim:`` starts it on a free port (``sim.port``); it speaks
    the text protocol at server version 178 and enforces IB's limits, time-scaled by ``speed``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        scenario: Scenario | None = None,
        readonly: bool = False,
        speed: float = 1.0,
        *,
        pacing: bool = True,
        max_clients: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        # A private copy: the broker mutates accounts and positions, and a user may reuse one
        # Scenario for several simulators.
        self.scenario = scenario.copy() if scenario is not None else Scenario.default()
        if self.scenario.seed is not None:
            seed = self.scenario.seed
        self.host = host
        self.port = port
        self.seed = seed
        self.readonly = readonly
        self.speed = speed
        self.pacing = pacing
        self.max_clients = max_clients
        self.clock = clock
        self.universe = Universe(self.scenario.instruments)
        # Live quotes start where the historical path is now, so a chart and a quote agree.
        self.market = Market(
            self.scenario.instruments,
            seed=seed,
            clock=clock,
            tick_interval=self.scenario.tick_interval,
            live_from_history=True,
        )
        sc = self.scenario
        self.broker = Broker(
            sc.accounts,
            sc.positions,
            self.market,
            seed=seed,
            clock=clock,
            readonly=readonly,
            instruments=sc.instruments,
            commission=CommissionModel(
                per_share=sc.commission_per_share,
                min_per_order=sc.min_commission,
                max_rate=sc.max_commission_rate,
                forex_rate=sc.forex_commission_rate,
                forex_min=sc.forex_min_commission,
                future_per_contract=sc.future_commission,
                option_per_contract=sc.option_commission,
                option_min=sc.option_min_commission,
            ),
            partial_fill_clip=sc.fill_clip or None,
            enforce_market_hours=sc.enforce_market_hours,
        )
        self.hist_pacing = HistoricalPacing(speed=speed) if pacing else None
        self.tbt_pacing = TickByTickPacing(speed=speed) if pacing else None
        self.features = features.FeatureState()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._clients: dict[int, _Connection] = {}
        self._pending: set[_Connection] = set()
        self._order_ids: dict[int, int] = {}
        self._silence_handshake = False
        self._accept_then_close = False
        self._stalled = False
        self._stalled_frames: list[tuple[_Connection, bytes]] = []
        self._delay = 0.0
        self._fail_next: dict[str, _Fault] = {}
        self._ignored: set[str] = set()
        self._requests: Counter[str] = Counter()
        self._request_log: deque[tuple[int, str, tuple[str, ...]]] = deque(maxlen=10_000)
        self._ib_link_down = False  # between a 1100 notice and its 1101/1102
        self._step = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind and listen; with ``port=0`` the OS picks a free port, read it from ``sim.port``."""
        await self._listen()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._run_market(), name="ibflow-sim-market")
        log.info(
            "simulator listening on %s:%d (server version %d)", self.host, self.port, SERVER_VERSION
        )

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """Run until cancelled (the CLI's Ctrl-C)."""
        if self._server is None:
            await self.start()
        await asyncio.Event().wait()

    # -- faults ------------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every client socket at once, as a crashing gateway does."""
        for conn in [*self._clients.values(), *self._pending]:
            conn.abort()
        self._clients.clear()
        self._pending.clear()

    async def restart(self, down_for: float = 1.0) -> None:
        """Drop everyone, refuse connections for ``down_for`` seconds, then listen again."""
        if self._server is not None:
            self._server.close()
            self.drop_connections()
            await self._server.wait_closed()
            self._server = None
        self.drop_connections()
        log.info("fault: gateway down for %.2fs", down_for)
        await asyncio.sleep(down_for)
        await self._listen()
        log.info("fault: gateway back on port %d", self.port)

    def silence_handshake(self, on: bool = True) -> None:
        """Accept TCP but never answer the API handshake (API not enabled / prompt pending)."""
        self._silence_handshake = on

    def accept_then_close(self, on: bool = True) -> None:
        """Accept TCP then close immediately (a relay whose gateway is down)."""
        self._accept_then_close = on

    def stall(self, on: bool = True) -> None:
        """Hold every outgoing frame until un-stalled (a half-open socket or a hung gateway)."""
        self._stalled = on
        if not on:
            frames, self._stalled_frames = self._stalled_frames, []
            for conn, frame in frames:
                conn.write(frame)

    def delay(self, seconds: float) -> None:
        """Delay every outgoing frame by ``seconds`` (0 turns it off)."""
        self._delay = max(0.0, seconds)

    def notice(
        self, code: int, text: str, *, req_id: int = -1, client_id: int | None = None
    ) -> None:
        """Send an errMsg (1100/1101/1102, 2103–2110, 10197, …) to everyone, or to one client.

        With a ``req_id`` the error is addressed to that request, as TWS addresses errors of a
        running subscription. The connectivity codes act as they do in TWS: after 1100 no
        market data flows; 1102 resumes it; 1101 ("data lost") also drops every market-data
        subscription, which clients must request again.
        """
        if code == 1100:
            self._ib_link_down = True
        elif code in (1101, 1102):
            self._ib_link_down = False
            if code == 1101:
                for conn in self._clients.values():
                    for key in [k for k, sub in conn.subs.items() if sub.kind in _MARKET_KINDS]:
                        del conn.subs[key]
        targets = (
            list(self._clients.values())
            if client_id is None
            else [c for cid, c in self._clients.items() if cid == client_id]
        )
        for conn in targets:
            conn.error(req_id, code, text)

    def fail_next(self, kind: str, code: int, text: str, *, after: int = 0) -> None:
        """Answer a coming request of ``kind`` (e.g. ``"historical_data"``) with this error.

        The first ``after`` requests of ``kind`` are answered normally, the one after them gets
        the error instead of an answer (addressed to its request id, or to the order id for
        ``"place_order"`` and ``"cancel_order"``). A failed placeOrder never reaches the broker:
        the order does not exist, and with a rejection code (201, 203…) clients treat the
        error as its end. One fault is pending per kind; a new call replaces it.

        Raises:
            ValueError: ``kind`` is not a request kind, or ``after`` is negative.
        """
        if after < 0:
            raise ValueError(f"after must be 0 or more, got {after!r}")
        self._fail_next[self._kind(kind)] = _Fault(code, text, after)

    def inactivate_next(
        self,
        symbol: str | None = None,
        *,
        after: int = 0,
        code: int = INACTIVE_CODE,
        text: str = INACTIVE_TEXT,
        acknowledge: bool = True,
    ) -> None:
        """Make a coming new order ``Inactive``: TWS holds it but will not work it.

        Skips ``after`` new orders (of ``symbol`` only, when given) and hits the next one, as
        TWS does when its checks after accepting an order refuse it (margin, permissions,
        trading hours). The placing client gets openOrder/orderStatus ``PreSubmitted`` (not
        with ``acknowledge=False``: TWS has been seen sending the error first), then error
        ``code`` with ``text`` addressed to the order id (TWS's wording starts with
        ``"Order rejected - reason:"``), then openOrder/orderStatus ``Inactive``. The order
        never fills, stays among the open orders with status ``Inactive``, and a cancel turns
        it ``Cancelled`` (with error 202). Orders refused outright and modifications are not
        counted; each call adds one more such order.

        Raises:
            KeyError: no instrument in the universe has that symbol.
            ValueError: ``after`` is negative.
        """
        name = self._instrument(symbol, "").symbol if symbol is not None else ""
        self.broker.inactivate_next(
            symbol=name, after=after, code=code, text=text, acknowledge=acknowledge
        )

    def correct_fill(
        self, exec_id: str, *, price: float | None = None, quantity: float | None = None
    ) -> str:
        """Correct an execution the way TWS does; returns the correction's execution id.

        The correction keeps the id and raises its last part (``….01`` → ``….02``). The
        clients that receive the order's fills (its client, and client 0 when it binds orders
        with reqAutoOpenOrders) get the corrected execDetails (reqId -1), then its
        commissionReport; reqExecutions and :attr:`fills` report it instead of the original;
        positions, average cost, cash and PnL move by the difference and are pushed to their
        subscribers.

        Raises:
            ValueError: ``exec_id`` is unknown or already corrected, or the new price or
                quantity is not positive, or would overfill the order.
        """
        corrected, events = self.broker.correct_execution(exec_id, price=price, quantity=quantity)
        log.info("fault: execution %s corrected as %s", exec_id, corrected.exec_id)
        self._dispatch(events)
        return corrected.exec_id

    def ignore(self, kind: str, on: bool = True) -> None:
        """Never answer requests of ``kind`` (a sync answer that never comes)."""
        if on:
            self._ignored.add(self._kind(kind))
        else:
            self._ignored.discard(self._kind(kind))

    def send_malformed(self) -> None:
        """Send every client one frame that is not a valid message (a tickPrice cut short)."""
        frame = encode_raw(b"1\x006\x00not-a-number\x00")
        for conn in list(self._clients.values()):
            conn.write(frame)

    @staticmethod
    def _kind(kind: str) -> str:
        k = kind.lower()
        if k not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}; use one of {sorted(REQUEST_KINDS)}")
        return k

    # -- market control ----------------------------------------------------------------------

    def push_quote(
        self,
        symbol: str,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
        last_size: float | None = None,
        volume: float | None = None,
        halted: bool | None = None,
        sec_type: str = "",
    ) -> None:
        """Set an instrument's quote now; subscribers get the ticks and resting orders match."""
        inst = self._instrument(symbol, sec_type)
        self.market.push(
            inst.con_id,
            bid=bid,
            ask=ask,
            last=last,
            bid_size=bid_size,
            ask_size=ask_size,
            last_size=last_size,
            volume=volume,
            halted=halted,
        )
        self._after_move(inst)

    async def burst(self, symbol: str, count: int, *, rate: float | None = None) -> int:
        """Send ``count`` quote ticks for ``symbol`` to every market-data subscriber, fast.

        The frames are encoded once up front, so the cost is the socket's, not the sim's: this is
        the flood the benchmarks measure client receive paths with. ``rate`` paces the feed in
        messages per second (None = as fast as the sockets take it). Returns frames sent per
        subscriber; the prices are a deterministic saw-tooth around the current quote.
        """
        inst = self._instrument(symbol, "")
        q = self.market.quote(inst.con_id)
        targets = [
            (conn, sub.req_id)
            for conn in self._clients.values()
            for sub in conn.subs.values()
            if sub.kind == "mkt_data"
            and sub.instrument is not None
            and sub.instrument.con_id == inst.con_id
        ]
        if not targets or count <= 0:
            return 0
        tick = inst.min_tick
        cycle = 1000
        blocks: dict[int, list[bytes]] = {}
        for conn, req_id in targets:
            frames = []
            for i in range(cycle):
                step = (i % 50 - 25) * tick
                if i % 4 == 0:
                    frames.append(
                        encode_fields([Msg.TICK_PRICE, 6, req_id, 1, q.bid + step, 100 + i % 7, 0])
                    )
                elif i % 4 == 1:
                    frames.append(
                        encode_fields([Msg.TICK_PRICE, 6, req_id, 2, q.ask + step, 200 + i % 5, 0])
                    )
                elif i % 4 == 2:
                    frames.append(encode_fields([Msg.TICK_SIZE, 6, req_id, 0, 300 + i % 11]))
                else:
                    frames.append(encode_fields([Msg.TICK_SIZE, 6, req_id, 3, 400 + i % 13]))
            blocks[id(conn)] = frames
        loop = asyncio.get_running_loop()
        batch = 500 if rate is None else max(1, min(500, int(rate / 200)))
        started = loop.time()
        sent = 0
        while sent < count:
            n = min(batch, count - sent)
            for conn, _ in targets:
                frames = blocks[id(conn)]
                start = sent % cycle
                chunk = frames[start : start + n]
                if len(chunk) < n:
                    chunk += frames[: n - len(chunk)]
                if conn.transport is not None and not conn.closed:
                    conn.transport.write(b"".join(chunk))
            sent += n
            for conn, _ in targets:
                await conn.writable.wait()
            if rate is not None:
                delay = started + sent / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        return sent

    def _instrument(self, symbol: str, sec_type: str) -> Instrument:
        if not sec_type:
            found = self.universe.by_name(symbol)
            if found is not None:
                return found
        matches = self.universe.match(ContractQuery(symbol=symbol, sec_type=sec_type))
        if not matches:
            raise KeyError(f"no instrument {symbol!r} in the simulator's universe")
        return matches[0]

    # -- inspection --------------------------------------------------------------------------

    @property
    def clients(self) -> list[ClientInfo]:
        return [
            ClientInfo(cid, c.version, c.peer, c.connected_at) for cid, c in self._clients.items()
        ]

    def subscriptions(self) -> dict[str, int]:
        """Active subscriptions by kind across all clients (e.g. ``{"mkt_data": 2}``)."""
        counts: Counter[str] = Counter()
        for conn in self._clients.values():
            for sub in conn.subs.values():
                counts[sub.kind] += 1
        return dict(counts)

    def lines_in_use(self) -> int:
        return sum(
            1
            for c in self._clients.values()
            for s in c.subs.values()
            if s.kind in ("mkt_data", "tick_by_tick", "real_time_bars")
        )

    def request_count(self, kind: str) -> int:
        return self._requests[self._kind(kind)]

    @property
    def requests(self) -> list[tuple[int, str, tuple[str, ...]]]:
        """The most recent requests as (client id, kind, raw fields), oldest first."""
        return list(self._request_log)

    @property
    def orders(self) -> list[SimOrder]:
        return [*self.broker.open_orders(None), *self.broker.completed_orders()]

    @property
    def fills(self) -> list[SimExecution]:
        return self.broker.executions()

    def _record(self, client_id: int, kind: str, fields: list[str]) -> None:
        self._requests[kind] += 1
        self._request_log.append((client_id, kind, tuple(fields)))
        log.debug("client %d → %s %s", client_id, kind, fields[1:])

    # -- ids ---------------------------------------------------------------------------------

    def _next_order_id(self, client_id: int) -> int:
        return self._order_ids.setdefault(client_id, 1)

    def _bump_order_id(self, client_id: int, order_id: int) -> None:
        if order_id >= self._order_ids.get(client_id, 1):
            self._order_ids[client_id] = order_id + 1

    def _check_account(self, account: str) -> None:
        if account and account not in self.broker.accounts:
            raise SimError(
                321, f"Error validating request.-'bA' : cause - Unknown account {account}"
            )

    # -- broker events to frames ---------------------------------------------------------------

    def _owner(self, client_id: int) -> Iterable[_Connection]:
        conn = self._clients.get(client_id)
        if conn is not None:
            yield conn
        master = self._clients.get(0)
        if master is not None and client_id != 0 and master.auto_open_orders:
            yield master

    def _dispatch(self, events: Iterable[Event]) -> None:
        for ev in events:
            if isinstance(ev, OrderChanged):
                for conn in self._owner(ev.order.client_id):
                    conn.send(layouts.open_order(ev.order, version=conn.version))
                    conn.send(layouts.order_status(ev.order))
            elif isinstance(ev, OrderError):
                owner = self._clients.get(ev.client_id)
                if owner is not None:
                    owner.error(ev.order_id, ev.code, ev.text)
            elif isinstance(ev, Executed):
                for conn in self._owner(ev.execution.client_id):
                    conn.send(layouts.exec_details(-1, ev.execution, version=conn.version))
            elif isinstance(ev, Commission):
                for conn in self._owner(ev.execution.client_id):
                    conn.send(layouts.commission_report(ev.execution))
            elif isinstance(ev, PositionChanged):
                self._push_position(ev.account, ev.instrument)
            elif isinstance(ev, AccountChanged):
                self._push_account(ev.account)

    def _push_position(self, account: str, inst: Instrument) -> None:
        pos = next(
            (p for p in self.broker.positions(account) if p.instrument.con_id == inst.con_id),
            None,
        )
        for conn in self._clients.values():
            if ("positions", 0) in conn.subs and pos is not None:
                conn.send(layouts.position(pos))
            sub = conn.subs.get(("account_updates", 0))
            if sub is not None and sub.params["account"] == account:
                for item in self.broker.portfolio(account):
                    if item.instrument.con_id == inst.con_id:
                        conn.send(layouts.portfolio_value(item))

    def _push_account(self, account: str) -> None:
        for conn in self._clients.values():
            for sub in list(conn.subs.values()):
                if sub.kind == "account_updates" and sub.params["account"] == account:
                    self._send_account_values(conn, account)
                elif sub.kind == "account_updates_multi" and account in sub.params["accounts"]:
                    self._send_account_multi(conn, sub, only=account)
                elif sub.kind == "account_summary":
                    self._send_account_summary(conn, sub, end=False)

    # -- account frames ----------------------------------------------------------------------

    def _send_account_values(self, conn: _Connection, account: str) -> None:
        for key, value, currency in self.broker.account_values(account):
            conn.send([Msg.ACCT_VALUE, 2, key, value, currency, account])
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%H:%M")
        conn.send([Msg.ACCT_UPDATE_TIME, 1, stamp])

    def _send_account_updates(self, conn: _Connection, account: str) -> None:
        self._send_account_values(conn, account)
        for item in self.broker.portfolio(account):
            conn.send(layouts.portfolio_value(item))

    def _send_account_multi(self, conn: _Connection, sub: _Sub, only: str | None = None) -> None:
        for account in sub.params["accounts"]:
            if only is not None and account != only:
                continue
            for key, value, currency in self.broker.account_values(account):
                conn.send(
                    [
                        Msg.ACCOUNT_UPDATE_MULTI,
                        1,
                        sub.req_id,
                        account,
                        sub.params["model"],
                        key,
                        value,
                        currency,
                    ]
                )

    def _send_account_summary(self, conn: _Connection, sub: _Sub, *, end: bool = True) -> None:
        for account in self.broker.accounts:
            for tag, value, currency in self.broker.account_summary(account, sub.params["tags"]):
                conn.send([Msg.ACCOUNT_SUMMARY, 1, sub.req_id, account, tag, value, currency])
        if end:
            conn.send([Msg.ACCOUNT_SUMMARY_END, 1, sub.req_id])

    def _send_pnl(self, conn: _Connection, sub: _Sub) -> None:
        account = sub.params["account"]
        if sub.kind == "pnl":
            daily, unrealized, realized = self.broker.pnl(account)
            conn.send([Msg.PNL, sub.req_id, daily, unrealized, realized])
            return
        single = self.broker.pnl_single(account, sub.params["con_id"])
        if single is None:
            # No position: TWS reports zero position and unset PnL values.
            conn.send([Msg.PNL_SINGLE, sub.req_id, 0, None, None, None, None])
            return
        pos, daily, unrealized, realized, value = single
        conn.send([Msg.PNL_SINGLE, sub.req_id, pos, daily, unrealized, realized, value])

    def _send_open_orders(self, conn: _Connection, client_id: int | None) -> None:
        for order in self.broker.open_orders(client_id):
            conn.send(layouts.open_order(order, version=conn.version))
            conn.send(layouts.order_status(order))
        conn.send([Msg.OPEN_ORDER_END, 1])

    # -- market data frames ------------------------------------------------------------------

    def _send_full_quote(self, conn: _Connection, req_id: int, inst: Instrument) -> None:
        q = self.market.quote(inst.con_id)
        d = 1 if conn.market_data_type in (3, 4) else 0
        tick_price = Msg.TICK_PRICE
        conn.send([tick_price, 6, req_id, _BID[d], q.bid, q.bid_size, 0])
        conn.send([tick_price, 6, req_id, _ASK[d], q.ask, q.ask_size, 0])
        conn.send([tick_price, 6, req_id, _LAST[d], q.last, q.last_size, 0])
        conn.send([Msg.TICK_SIZE, 6, req_id, _VOLUME[d], q.volume])
        conn.send([tick_price, 6, req_id, _HIGH[d], q.high, 0, 0])
        conn.send([tick_price, 6, req_id, _LOW[d], q.low, 0, 0])
        conn.send([tick_price, 6, req_id, _OPEN[d], q.open, 0, 0])
        conn.send([tick_price, 6, req_id, _CLOSE[d], q.close, 0, 0])
        conn.send([Msg.TICK_STRING, 6, req_id, _LAST_TIMESTAMP[d], str(int(q.time))])
        if q.halted:
            conn.send([Msg.TICK_GENERIC, 6, req_id, _HALTED, 1])
        if inst.sec_type == "OPT":
            send_option_ticks(conn, req_id, inst)

    def _send_quote_update(self, conn: _Connection, sub: _Sub, inst: Instrument) -> None:
        q = self.market.quote(inst.con_id)
        d = 1 if conn.market_data_type in (3, 4) else 0
        req_id = sub.req_id
        conn.send([Msg.TICK_PRICE, 6, req_id, _BID[d], q.bid, q.bid_size, 0])
        conn.send([Msg.TICK_PRICE, 6, req_id, _ASK[d], q.ask, q.ask_size, 0])
        conn.send([Msg.TICK_PRICE, 6, req_id, _LAST[d], q.last, q.last_size, 0])
        conn.send([Msg.TICK_SIZE, 6, req_id, _VOLUME[d], q.volume])
        conn.send([Msg.TICK_STRING, 6, req_id, _LAST_TIMESTAMP[d], str(int(q.time))])
        if q.halted != sub.params.get("halted", False):
            sub.params["halted"] = q.halted
            conn.send([Msg.TICK_GENERIC, 6, req_id, _HALTED, 1 if q.halted else 0])
        if inst.sec_type == "OPT":
            send_option_ticks(conn, req_id, inst)

    def _send_tick_by_tick(self, conn: _Connection, sub: _Sub, inst: Instrument) -> None:
        q = self.market.quote(inst.con_id)
        kind = sub.params["type"]
        now = int(self.clock())
        if kind in (1, 2):
            conn.send(
                [
                    Msg.TICK_BY_TICK,
                    sub.req_id,
                    kind,
                    now,
                    q.last,
                    q.last_size,
                    0,
                    inst.primary_exchange or inst.exchange,
                    "",
                ]
            )
        elif kind == 3:
            conn.send(
                [Msg.TICK_BY_TICK, sub.req_id, 3, now, q.bid, q.ask, q.bid_size, q.ask_size, 0]
            )
        else:
            conn.send([Msg.TICK_BY_TICK, sub.req_id, 4, now, (q.bid + q.ask) / 2])

    # -- history -----------------------------------------------------------------------------

    def _serve_history(
        self,
        conn: _Connection,
        req_id: int,
        inst: Instrument,
        end_text: str,
        bar_size: str,
        duration: str,
        use_rth: bool,
        what: str,
        format_date: int,
        keep_up: bool,
    ) -> None:
        request = historical_request(
            inst,
            end_text=end_text,
            bar_size=bar_size,
            duration=duration,
            what=what,
            use_rth=use_rth,
            keep_up_to_date=keep_up,
            now=self.clock(),
        )
        token = None
        if self.hist_pacing is not None:
            token, err = self.hist_pacing.admit(request.pacing_key)
            if err is not None:
                raise err
        try:
            bars = self.market.history(
                inst,
                end=request.end,
                duration=duration,
                bar_size=bar_size,
                what=what,
                use_rth=use_rth,
            )
        finally:
            if self.hist_pacing is not None and token is not None:
                self.hist_pacing.finished(token)
        fields: list[object] = [
            Msg.HISTORICAL_DATA,
            req_id,
            *format_range(request.start, request.end, inst.time_zone),
            len(bars),
        ]
        for bar in bars:
            fields += [
                format_bar_time(bar, bar_size, format_date, inst.time_zone),
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.wap,
                bar.count,
            ]
        conn.send(fields)
        if keep_up:
            conn.subs[("historical_data", req_id)] = _Sub(
                "historical_data",
                req_id,
                inst,
                params={
                    "bar_size": bar_size,
                    "what": what,
                    "format": format_date,
                    "seconds": bar_size_seconds(bar_size),
                    "count": len(bars),
                },
            )

    # -- the market loop ---------------------------------------------------------------------

    def _after_move(self, inst: Instrument) -> None:
        self._dispatch(self.broker.on_quote(inst.con_id))
        if self._ib_link_down:
            return
        for conn in list(self._clients.values()):
            for sub in list(conn.subs.values()):
                if sub.instrument is None or sub.instrument.con_id != inst.con_id:
                    continue
                if sub.kind == "mkt_data":
                    self._send_quote_update(conn, sub, inst)
                elif sub.kind == "tick_by_tick":
                    self._send_tick_by_tick(conn, sub, inst)
                elif sub.kind in features.MOVE_HOOKS:
                    features.MOVE_HOOKS[sub.kind](self, conn, sub, inst)

    async def _run_market(self) -> None:
        # Faster time makes the market move more often, but never beyond 100 steps a second:
        # past that the sim would only be flooding its own clients.
        interval = max(self.scenario.tick_interval / self.speed, 0.01)
        while True:
            await asyncio.sleep(interval)
            try:
                self._tick()
            except Exception:  # a bug in one tick must not kill the market for everyone
                log.exception("simulator market step failed")

    def _tick(self) -> None:
        self._step += 1
        moving: dict[int, Instrument] = {}
        for conn in self._clients.values():
            for sub in conn.subs.values():
                if sub.instrument is not None:
                    moving[sub.instrument.con_id] = sub.instrument
        for order in self.broker.open_orders(None):
            moving.setdefault(order.instrument.con_id, order.instrument)
        for con_id, inst in with_underlyings(self.universe, moving).items():
            self.market.step(con_id)
            self._after_move(inst)
        now = self.clock()
        periodic = self._step % max(1, round(1.0 / self.scenario.tick_interval)) == 0
        for conn in list(self._clients.values()):
            for sub in list(conn.subs.values()):
                if self._ib_link_down and sub.kind in _MARKET_KINDS:
                    continue
                if sub.kind == "real_time_bars":
                    self._maybe_realtime_bar(conn, sub, now)
                elif sub.kind == "historical_data":
                    self._send_bar_update(conn, sub, now)
                elif periodic and sub.kind in ("pnl", "pnl_single"):
                    self._send_pnl(conn, sub)
                elif sub.kind in features.TICK_HOOKS:
                    features.TICK_HOOKS[sub.kind](self, conn, sub, now)

    def _maybe_realtime_bar(self, conn: _Connection, sub: _Sub, now: float) -> None:
        assert sub.instrument is not None
        due = sub.last_sent + 5.0 / self.speed
        if sub.last_sent and time.monotonic() < due:
            return
        sub.last_sent = time.monotonic()
        # Bars advance 5 s of market time each, so at speed > 1 they run ahead of the wall
        # clock instead of repeating one stamp.
        start = sub.params["next"]
        sub.params["next"] = start + 5
        bar = self.market.realtime_bar(sub.instrument, start, sub.params["what"])
        conn.send(
            [
                Msg.REAL_TIME_BARS,
                3,
                sub.req_id,
                bar.time,
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.wap,
                bar.count,
            ]
        )

    def _send_bar_update(self, conn: _Connection, sub: _Sub, now: float) -> None:
        assert sub.instrument is not None
        bar = self.market.forming_bar(
            sub.instrument, sub.params["seconds"], now, sub.params["what"]
        )
        text = format_bar_time(
            bar, sub.params["bar_size"], sub.params["format"], sub.instrument.time_zone
        )
        conn.send(
            [
                Msg.HISTORICAL_DATA_UPDATE,
                sub.req_id,
                bar.count,
                text,
                bar.open,
                bar.close,
                bar.high,
                bar.low,
                bar.wap,
                bar.volume,
            ]
        )
