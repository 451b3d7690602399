"""History requests: historical bars (with keepUpToDate updates) and the head timestamp.

Each ``h_*`` handler takes the connection and a cursor positioned after the message id.
"""

from __future__ import annotations

from .._codec import Fields
from .._core import Connection, Sub
from .._history import bar_size_seconds, format_bar_time, format_range, historical_request
from .._ids import Msg
from .._model import SimError


def h_historical_data(c: Connection, f: Fields) -> None:
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
    sim = c.sim
    inst = sim.universe.resolve(query)
    request = historical_request(
        inst,
        end_text=end_text,
        bar_size=bar_size,
        duration=duration,
        what=what,
        use_rth=use_rth,
        keep_up_to_date=keep_up,
        now=sim.clock(),
    )
    pacing = sim.hist_pacing
    token = None
    if pacing is not None:
        token, err = pacing.admit(request.pacing_key)
        if err is not None:
            raise err
    try:
        bars = sim.market.history(
            inst,
            end=request.end,
            duration=duration,
            bar_size=bar_size,
            what=what,
            use_rth=use_rth,
        )
    finally:
        if pacing is not None and token is not None:
            pacing.finished(token)
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
    c.send(fields)
    if keep_up:
        c.subs[("historical_data", req_id)] = Sub(
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


def h_cancel_historical_data(c: Connection, f: Fields) -> None:
    f.skip()
    c.subs.pop(("historical_data", f.int()), None)


def h_head_timestamp(c: Connection, f: Fields) -> None:
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


def h_cancel_head_timestamp(c: Connection, f: Fields) -> None:
    """Nothing to stop: the head timestamp was answered at once, and TWS ignores the cancel."""


def send_bar_update(c: Connection, sub: Sub, now: float) -> None:
    """historicalDataUpdate of a keepUpToDate subscription: the bar forming at ``now``."""
    assert sub.instrument is not None
    bar = c.sim.market.forming_bar(sub.instrument, sub.params["seconds"], now, sub.params["what"])
    text = format_bar_time(
        bar, sub.params["bar_size"], sub.params["format"], sub.instrument.time_zone
    )
    c.send(
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
