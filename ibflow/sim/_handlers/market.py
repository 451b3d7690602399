"""Contract details and market data: quotes, tick-by-tick and real-time bars.

Each ``h_*`` handler takes the connection and a cursor positioned after the message id; the
``send_*`` helpers write the streamed frames the market loop pushes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from .._codec import Fields
from .._core import Connection, Sub
from .._depth import MAX_DEPTH_SUBSCRIPTIONS
from .._ids import Msg
from .._layouts import contract_data
from .._model import Instrument, SimError
from .._pacing import TICK_BY_TICK_ERROR
from .options import send_option_ticks

# Data-type dependent tick ids: (live, delayed).
_BID, _ASK, _LAST = (1, 66), (2, 67), (4, 68)
_HIGH, _LOW, _VOLUME, _CLOSE, _OPEN = (6, 72), (7, 73), (8, 74), (9, 75), (14, 76)
_LAST_TIMESTAMP = (45, 88)
_HALTED = 49
_TICK_BY_TICK_TYPES = {"Last": 1, "AllLast": 2, "BidAsk": 3, "MidPoint": 4}


def h_contract_data(c: Connection, f: Fields) -> None:
    f.skip()
    req_id = f.int()
    query = f.contract()
    matches = c.sim.universe.match(query)
    if not matches:
        c.error(req_id, 200, "No security definition has been found for the request")
        return
    today = datetime.fromtimestamp(c.sim.clock(), UTC).date()
    for inst in matches:
        c.send(contract_data(req_id, inst, today=today))
    c.send([Msg.CONTRACT_DATA_END, 1, req_id])


def h_mkt_data(c: Connection, f: Fields) -> None:
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
    sim = c.sim
    inst = sim.universe.resolve(query)
    if not (snapshot or regulatory):
        _need_line(c)
        c.subs[("mkt_data", req_id)] = Sub(
            "mkt_data",
            req_id,
            inst,
            params={"generic": generic_ticks, "halted": sim.market.quote(inst.con_id).halted},
        )
    c.send([Msg.TICK_REQ_PARAMS, req_id, inst.min_tick, "9c0001", 3])
    c.send([Msg.MARKET_DATA_TYPE, 1, req_id, c.market_data_type])
    send_full_quote(c, req_id, inst)
    if snapshot or regulatory:
        c.send([Msg.TICK_SNAPSHOT_END, 1, req_id])


def h_cancel_mkt_data(c: Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("mkt_data", f.int()), None)


def h_market_data_type(c: Connection, f: Fields) -> None:
    f.skip()
    kind = f.int()
    if kind not in (1, 2, 3, 4):
        raise SimError(
            321, f"Error validating request.-'bS' : cause - invalid market data type {kind}"
        )
    c.market_data_type = kind


def h_tick_by_tick(c: Connection, f: Fields) -> None:
    req_id = f.int()
    query = f.contract()
    tick_type = f.str()
    f.int()  # numberOfTicks: history before the stream is not simulated
    if tick_type not in _TICK_BY_TICK_TYPES:
        raise SimError(
            321, f"Error validating request.-'bU' : cause - invalid tick type {tick_type!r}"
        )
    sim = c.sim
    inst = sim.universe.resolve(query)
    # IB allows as many simultaneous tick-by-tick subscriptions as market depth ones, counted
    # apart from the market data lines (a tick-by-tick stream holds none).
    in_use = sim.subscriptions().get("tick_by_tick", 0)
    if ("tick_by_tick", req_id) not in c.subs and in_use >= MAX_DEPTH_SUBSCRIPTIONS:
        raise SimError(*TICK_BY_TICK_ERROR)
    if sim.tbt_pacing is not None:
        err = sim.tbt_pacing.admit(inst.con_id)
        if err is not None:
            raise err
    c.subs[("tick_by_tick", req_id)] = Sub(
        "tick_by_tick", req_id, inst, params={"type": _TICK_BY_TICK_TYPES[tick_type]}
    )


def h_cancel_tick_by_tick(c: Connection, f: Fields) -> None:
    c.subs.pop(("tick_by_tick", f.int()), None)


def h_real_time_bars(c: Connection, f: Fields) -> None:
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
    _need_line(c)
    start = int(c.sim.clock()) // 5 * 5
    c.subs[("real_time_bars", req_id)] = Sub(
        "real_time_bars", req_id, inst, params={"what": what, "rth": use_rth, "next": start}
    )


def h_cancel_real_time_bars(c: Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("real_time_bars", f.int()), None)


def _need_line(c: Connection) -> None:
    """Refuse a subscription that would hold a market data line when all are taken (101)."""
    lines = c.sim.scenario.market_data_lines
    if c.sim.lines_in_use() >= lines:
        raise SimError(101, f"Max number of tickers has been reached ({lines})")


# ---------------------------------------------------------------------------------------------
# Streamed frames


def send_full_quote(c: Connection, req_id: int, inst: Instrument) -> None:
    q = c.sim.market.quote(inst.con_id)
    d = 1 if c.market_data_type in (3, 4) else 0
    tick_price = Msg.TICK_PRICE
    c.send([tick_price, 6, req_id, _BID[d], q.bid, q.bid_size, 0])
    c.send([tick_price, 6, req_id, _ASK[d], q.ask, q.ask_size, 0])
    c.send([tick_price, 6, req_id, _LAST[d], q.last, q.last_size, 0])
    c.send([Msg.TICK_SIZE, 6, req_id, _VOLUME[d], q.volume])
    c.send([tick_price, 6, req_id, _HIGH[d], q.high, 0, 0])
    c.send([tick_price, 6, req_id, _LOW[d], q.low, 0, 0])
    c.send([tick_price, 6, req_id, _OPEN[d], q.open, 0, 0])
    c.send([tick_price, 6, req_id, _CLOSE[d], q.close, 0, 0])
    c.send([Msg.TICK_STRING, 6, req_id, _LAST_TIMESTAMP[d], str(int(q.time))])
    if q.halted:
        c.send([Msg.TICK_GENERIC, 6, req_id, _HALTED, 1])
    if inst.sec_type == "OPT":
        send_option_ticks(c, req_id, inst)


def send_quote_update(c: Connection, sub: Sub, inst: Instrument) -> None:
    q = c.sim.market.quote(inst.con_id)
    d = 1 if c.market_data_type in (3, 4) else 0
    req_id = sub.req_id
    c.send([Msg.TICK_PRICE, 6, req_id, _BID[d], q.bid, q.bid_size, 0])
    c.send([Msg.TICK_PRICE, 6, req_id, _ASK[d], q.ask, q.ask_size, 0])
    c.send([Msg.TICK_PRICE, 6, req_id, _LAST[d], q.last, q.last_size, 0])
    c.send([Msg.TICK_SIZE, 6, req_id, _VOLUME[d], q.volume])
    c.send([Msg.TICK_STRING, 6, req_id, _LAST_TIMESTAMP[d], str(int(q.time))])
    if q.halted != sub.params.get("halted", False):
        sub.params["halted"] = q.halted
        c.send([Msg.TICK_GENERIC, 6, req_id, _HALTED, 1 if q.halted else 0])
    if inst.sec_type == "OPT":
        send_option_ticks(c, req_id, inst)


def send_tick_by_tick(c: Connection, sub: Sub, inst: Instrument) -> None:
    q = c.sim.market.quote(inst.con_id)
    kind = sub.params["type"]
    now = int(c.sim.clock())
    if kind in (1, 2):
        c.send(
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
        c.send([Msg.TICK_BY_TICK, sub.req_id, 3, now, q.bid, q.ask, q.bid_size, q.ask_size, 0])
    else:
        c.send([Msg.TICK_BY_TICK, sub.req_id, 4, now, (q.bid + q.ask) / 2])


def maybe_send_realtime_bar(c: Connection, sub: Sub) -> None:
    """The next 5-second bar of ``sub``, once 5 s (scaled by speed) passed since the last."""
    assert sub.instrument is not None
    sim = c.sim
    due = sub.last_sent + 5.0 / sim.speed
    if sub.last_sent and time.monotonic() < due:
        return
    sub.last_sent = time.monotonic()
    # Bars advance 5 s of market time each, so at speed > 1 they run ahead of the wall
    # clock instead of repeating one stamp.
    start = sub.params["next"]
    sub.params["next"] = start + 5
    bar = sim.market.realtime_bar(sub.instrument, start, sub.params["what"])
    c.send(
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
