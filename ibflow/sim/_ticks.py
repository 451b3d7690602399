"""Historical ticks (reqHistoricalTicks): trades, quotes and midpoints behind the 1-second bars.

A client that downloads ticks and bars of the same second must be able to rebuild one from the
other, so ticks are cut from the 1-second bars the simulator's history serves: within each
second the ticks visit the bar's open, its high and low (in an order drawn per bar), and its
close. TRADES ticks of a second add up to the bar's volume, one trade or more per trade the bar
counts; BID_ASK ticks pair the BID and ASK bars' prices (never crossed); MIDPOINT ticks follow
the MIDPOINT bar, and an index's TRADES ticks its values (without sizes). Seconds without
trades have no TRADES ticks, and an instrument whose 1-second bars carry no volume at all (the
sim's options trade less than once a second) has none. Timestamps are whole seconds.

IB's rules: exactly one of start and end; at most 1,000 ticks per request, counted in whole
seconds (the last second is completed, so a few more can come back); a start returns the first
ticks from it onwards, an end the last ticks before it; the historical pacing rules (identical
request within 15 s, six for one contract in 2 s, 60 in 10 minutes, BID_ASK counting twice).
The search gives up a week from the given time and returns what it found.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._codec import Fields
from ._history import HistKey, check_available, parse_end_datetime, validating_error
from ._ids import Msg
from ._model import Instrument, SimBar, SimError

if TYPE_CHECKING:
    from ._core import Connection
    from ._market import Market

MAX_TICKS = 1000
SEARCH_SECONDS = 7 * 86400
_FIRST_WINDOW = 300
_MAX_WINDOW = 1800  # IB's longest duration for 1-second bars
_WHATS = ("TRADES", "BID_ASK", "MIDPOINT")
_M64 = (1 << 64) - 1

# One tick: (time, price, size) for TRADES and MIDPOINT; (time, bid, ask, bid size, ask size)
# for BID_ASK.
Tick = tuple[float, ...]


def _hash(*parts: int) -> int:
    h = 0x2545F4914F6CDD1D
    for p in parts:
        h = ((h ^ (p & _M64)) * 0x9E3779B97F4A7C15) & _M64
        h ^= h >> 31
    return h


def _route(bar: SimBar, key: int) -> list[int]:
    """Indices into (open, high, low, close): the order a second visits them."""
    return [0, 1, 2, 3] if _hash(key, bar.time) % 2 else [0, 2, 1, 3]


def _dedupe(values: list[float]) -> list[float]:
    out: list[float] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def trade_ticks(bar: SimBar, key: int) -> list[Tick]:
    """The trades of one TRADES second: its OHLC in order, sizes summing to its volume."""
    if bar.volume <= 0:
        return []
    ohlc = (bar.open, bar.high, bar.low, bar.close)
    prices = _dedupe([ohlc[i] for i in _route(bar, key)])
    count = max(bar.count, len(prices))
    prices += [bar.close] * (count - len(prices))
    volume = round(bar.volume)
    share, rest = divmod(volume, count)
    sizes = [share + (1 if i < rest else 0) for i in range(count)]
    return [(bar.time, p, float(s)) for p, s in zip(prices, sizes, strict=True)]


def quote_ticks(bid: SimBar, ask: SimBar, key: int, lot: float) -> list[Tick]:
    """The quotes of one second: the BID and ASK bars' open, extremes and close, paired."""
    bids = (bid.open, bid.high, bid.low, bid.close)
    asks = (ask.open, ask.high, ask.low, ask.close)
    out: list[Tick] = []
    for i in _route(bid, key):
        pair = (bids[i], asks[i])
        if out and (out[-1][1], out[-1][2]) == pair:
            continue
        h = _hash(key, bid.time, i)
        out.append((bid.time, *pair, lot * (1 + h % 20), lot * (1 + (h >> 20) % 20)))
    return out


def path_ticks(bar: SimBar, key: int) -> list[Tick]:
    """Sizeless ticks of one second (midpoints, index values): the bar's open, extremes and
    close."""
    ohlc = (bar.open, bar.high, bar.low, bar.close)
    return [(bar.time, p, 0.0) for p in _dedupe([ohlc[i] for i in _route(bar, key)])]


def _seconds(
    market: Market,
    inst: Instrument,
    what: str,
    lo: int,
    hi: int,
    use_rth: bool,
) -> list[SimBar]:
    """The 1-second ``what`` bars starting in [lo, hi); none where no session runs."""
    span = max(hi - lo, 30)  # IB's shortest duration in seconds
    end = datetime.fromtimestamp(hi, UTC)
    try:
        bars = market.history(
            inst, end=end, duration=f"{span} S", bar_size="1 secs", what=what, use_rth=use_rth
        )
    except SimError as exc:
        if exc.code == 162:  # nothing in this window: no session, or before the first data
            return []
        raise
    return [b for b in bars if lo <= b.time < hi]


def _windows(start: int, stop: int) -> Iterator[tuple[int, int]]:
    """Windows from ``start`` towards ``stop`` (either direction), growing to IB's maximum."""
    size = _FIRST_WINDOW
    t = start
    while t != stop:
        if stop > start:
            nxt = min(t + size, stop)
            yield t, nxt
        else:
            nxt = max(t - size, stop)
            yield nxt, t
        t = nxt
        size = min(size * 2, _MAX_WINDOW)


def historical_ticks(
    market: Market,
    inst: Instrument,
    what: str,
    *,
    start: float | None,
    end: float | None,
    count: int,
    use_rth: bool,
    now: float,
    seed: int,
    ignore_size: bool = False,
) -> list[Tick]:
    """At least ``count`` ticks (whole seconds) from ``start`` on, or before ``end``; fewer when
    a week's search finds no more. Oldest first."""
    key = _hash(seed, inst.con_id)
    lot = 100.0 if inst.sec_type == "STK" else 1.0
    last_second = math.floor(now)  # the second in progress is not history yet
    if start is not None:
        first = math.ceil(start)
        if first >= last_second:
            return []  # nothing has happened after that start yet
        spans = _windows(first, min(first + SEARCH_SECONDS, last_second))
        forward = True
    else:
        assert end is not None
        last = min(math.floor(end), last_second)
        spans = _windows(last, last - SEARCH_SECONDS)
        forward = False
    chunks: list[list[Tick]] = []
    found = 0
    for lo, hi in spans:
        if lo >= hi:
            continue
        chunk, in_session = _ticks_between(
            market, inst, what, lo, hi, use_rth, key, lot, ignore_size
        )
        if in_session and not chunk:
            break  # its 1-second bars carry no volume: it trades less than once a second
        by_second = _group(chunk)
        if not forward:
            by_second.reverse()
        taken: list[list[Tick]] = []
        for second in by_second:
            taken.append(second)
            found += len(second)
            if found >= count:
                break
        chunks += taken  # oldest first going forwards, newest first going back
        if found >= count:
            break
    if not forward:
        chunks.reverse()
    out: list[Tick] = []
    for second in chunks:
        out += second
    return out


def _group(ticks: list[Tick]) -> list[list[Tick]]:
    """Ticks split into their seconds, in time order."""
    out: list[list[Tick]] = []
    for tick in ticks:
        if out and out[-1][0][0] == tick[0]:
            out[-1].append(tick)
        else:
            out.append([tick])
    return out


def _ticks_between(
    market: Market,
    inst: Instrument,
    what: str,
    lo: int,
    hi: int,
    use_rth: bool,
    key: int,
    lot: float,
    ignore_size: bool,
) -> tuple[list[Tick], bool]:
    """The ticks of the seconds in [lo, hi), and whether any session second lies there."""
    if what in ("TRADES", "MIDPOINT"):
        bars = _seconds(market, inst, what, lo, hi, use_rth)
        if what == "TRADES" and inst.sec_type != "IND":
            return [t for b in bars for t in trade_ticks(b, key)], bool(bars)
        # An index prints values, not trades: its TRADES ticks have no size, like midpoints.
        return [t for b in bars for t in path_ticks(b, key)], bool(bars)
    bids = _seconds(market, inst, "BID", lo, hi, use_rth)
    asks = _seconds(market, inst, "ASK", lo, hi, use_rth)
    quotes: list[Tick] = []
    for b, a in zip(bids, asks, strict=True):
        for q in quote_ticks(b, a, key, lot):
            if ignore_size and quotes and quotes[-1][1:3] == q[1:3]:
                continue
            quotes.append(q)
    return quotes, bool(bids)


# ---------------------------------------------------------------------------------------------
# Wire layouts


def historical_ticks_message(
    req_id: int, what: str, ticks: list[Tick], exchange: str
) -> list[object]:
    """historicalTicks (96, MIDPOINT), historicalTicksBidAsk (97) or historicalTicksLast (98):
    count, the ticks, then ``done`` (always 1: every request is answered in one message)."""
    out: list[object]
    if what == "TRADES":
        out = [int(Msg.HISTORICAL_TICKS_LAST), req_id, len(ticks)]
        for t in ticks:
            out += [int(t[0]), 0, t[1], round(t[2]), exchange, ""]
    elif what == "BID_ASK":
        out = [int(Msg.HISTORICAL_TICKS_BID_ASK), req_id, len(ticks)]
        for q in ticks:
            assert len(q) == 5
            out += [int(q[0]), 0, q[1], q[2], round(q[3]), round(q[4])]
    else:
        out = [int(Msg.HISTORICAL_TICKS), req_id, len(ticks)]
        for t in ticks:
            out += [int(t[0]), 0, t[1], round(t[2])]
    out.append(True)
    return out


# ---------------------------------------------------------------------------------------------
# Handler


def h_historical_ticks(c: Connection, f: Fields) -> None:
    req_id = f.int()
    query = f.contract()
    f.bool()  # includeExpired
    start_text = f.str().strip()
    end_text = f.str().strip()
    count = f.int()
    what = f.str().strip().upper()
    use_rth = f.bool()
    ignore_size = f.bool()
    sim = c.sim
    inst = sim.universe.resolve(query)
    if what not in _WHATS:
        raise validating_error(f"Invalid whatToShow {what!r} for historical ticks")
    if bool(start_text) == bool(end_text):
        raise validating_error("Exactly one of start and end date/time must be specified")
    if count <= 0:
        raise validating_error(f"Invalid number of ticks {count}")
    now = sim.clock()
    start = parse_end_datetime(start_text, inst.time_zone, now) if start_text else None
    end = parse_end_datetime(end_text, inst.time_zone, now) if end_text else None
    for series in ("BID", "ASK") if what == "BID_ASK" else (what,):
        check_available(inst, series, 1)
    token = None
    if sim.hist_pacing is not None:
        key = HistKey(
            con_id=inst.con_id,
            exchange=inst.exchange,
            what=what,
            end=f"{start_text}|{end_text}",
            duration=f"{count} ticks",
            bar_size="ticks",
            use_rth=use_rth,
        )
        token, err = sim.hist_pacing.admit(key)
        if err is not None:
            raise err
    try:
        ticks = historical_ticks(
            sim.market,
            inst,
            what,
            start=start.timestamp() if start is not None else None,
            end=end.timestamp() if end is not None else None,
            count=min(count, MAX_TICKS),
            use_rth=use_rth,
            now=now,
            seed=sim.seed,
            ignore_size=ignore_size,
        )
    finally:
        if sim.hist_pacing is not None and token is not None:
            sim.hist_pacing.finished(token)
    exchange = inst.primary_exchange or inst.exchange
    c.send(historical_ticks_message(req_id, what, ticks, exchange))
