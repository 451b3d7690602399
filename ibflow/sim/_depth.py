"""Market depth (level 2): a book around each quote, streamed as TWS streams it.

The book's top rows are the live quote itself (price and size), so depth and top of book never
disagree; deeper levels sit on the instrument's price grid, come and go, and change size as the
market runs, all from a hash of (seed, conId, price, time), so every client sees the same book.

What goes to a client is the difference between the rows it has and the rows it should have,
in TWS's operations: insert at a position (the rows below move down), update a position, delete
a position (the rows below move up). The sim never lets a side grow past the requested rows,
never crosses the book, and sends the first book as inserts.

Forms, as IB chooses them: ``updateMktDepthL2`` (with a market maker) for SMART depth
(``isSmartDepth``: one row per venue and price, the venue as market maker) and for NASDAQ
(TotalView-style market-maker ids); ``updateMktDepth`` for the other venues. Limits: three
depth subscriptions at once for the whole TWS (error 309, IB's text), a venue must offer depth
for the contract (error 10092 otherwise, also for SMART without ``isSmartDepth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._codec import Fields
from ._core import Sub
from ._ids import Msg
from ._model import Instrument, QuoteState, SimError
from ._rules import increment_at, increments

if TYPE_CHECKING:
    from ._core import Connection, SimCore

MAX_DEPTH_SUBSCRIPTIONS = 3
MAX_ROWS = 50
INSERT, UPDATE, DELETE = 0, 1, 2
ASK, BID = 0, 1

DEPTH_LIMIT_TEXT = "Max number (3) of market depth requests has been reached"
NO_DEPTH_TEXT = "Deep market data is not supported for this combination of security type/exchange"

# (venue, secType) → (listing exchange, service data type); "Deep2" venues name market makers.
DEPTH_VENUES: dict[tuple[str, str], tuple[str, str]] = {
    ("NASDAQ", "STK"): ("NASDAQ", "Deep2"),
    ("ARCA", "STK"): ("", "Deep"),
    ("NYSE", "STK"): ("NYSE", "Deep"),
    ("BATS", "STK"): ("", "Deep"),
    ("IEX", "STK"): ("", "Deep"),
    ("EDGX", "STK"): ("", "Deep"),
    ("CME", "FUT"): ("", "Deep"),
    ("IDEALPRO", "CASH"): ("", "Deep"),
    ("CBOE", "OPT"): ("", "Deep"),
}
_SMART_VENUES = ("NASDAQ", "ARCA", "NYSE", "BATS", "IEX", "EDGX")
_MARKET_MAKERS = ("NSDQ", "ARCX", "EDGX", "BATS", "NITE", "GSCO", "MSCO", "UBSS", "CDRG", "VIRT")
_LOTS = {"STK": 100.0, "CASH": 100_000.0}

# Market seconds between size changes of a level, and between levels appearing or vanishing.
_SIZE_PERIOD = 2.0
_PRESENCE_PERIOD = 15.0
_M64 = (1 << 64) - 1


def _hash(*parts: int) -> int:
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = ((h ^ (p & _M64)) * 0xBF58476D1CE4E5B9) & _M64
        h ^= h >> 29
    return h


@dataclass(frozen=True, slots=True)
class Row:
    """One row of one side of the book."""

    price: float
    size: float
    maker: str = ""

    @property
    def key(self) -> tuple[float, str]:
        return (self.price, self.maker)


def _increment(inst: Instrument, price: float) -> float:
    return increment_at(increments(inst), price)


def _ladder(inst: Instrument, top: float, side: int, count: int) -> list[float]:
    """``count`` prices from ``top`` away from the spread, on the instrument's price grid."""
    out = [top]
    price = top
    while len(out) < count:
        if side == BID:
            price = round(price - _increment(inst, price - inst.min_tick / 2), 10)
            if price <= 0:
                break
        else:
            price = round(price + _increment(inst, price), 10)
        out.append(price)
    return out


def book_side(
    inst: Instrument,
    q: QuoteState,
    side: int,
    rows: int,
    *,
    seed: int,
    market_time: float,
    venues: tuple[str, ...] = (),
    makers: bool = False,
) -> list[Row]:
    """The best ``rows`` rows of one side: the quote on top, then the deeper levels present now.

    With ``venues`` every price level is split into one to three rows, one per venue, whose
    sizes add up to the level's size; with ``makers`` each level carries a market-maker id.
    """
    top = q.bid if side == BID else q.ask
    if top <= 0:
        return []
    lot = _LOTS.get(inst.sec_type, 1.0)
    top_size = q.bid_size if side == BID else q.ask_size
    size_bucket = int(market_time / _SIZE_PERIOD)
    presence = int(market_time / _PRESENCE_PERIOD)
    out: list[Row] = []
    for k, price in enumerate(_ladder(inst, top, side, rows * 4 + 4)):
        tick_index = round(price / inst.min_tick)
        base = (seed, inst.con_id, side, tick_index)
        if k > 0 and _hash(*base, presence) % 100 >= 75:
            continue  # no orders at this price right now
        if k == 0 and top_size > 0:
            size = top_size
        else:
            phase = _hash(*base) % 97
            size = lot * (1 + _hash(*base, (size_bucket + phase) // 3) % 30)
        out.extend(_rows_at(price, size, lot, base, venues, makers))
        if len(out) >= rows:
            break
    return out[:rows]


def _rows_at(
    price: float,
    size: float,
    lot: float,
    base: tuple[int, ...],
    venues: tuple[str, ...],
    makers: bool,
) -> list[Row]:
    if makers:
        return [Row(price, size, _MARKET_MAKERS[_hash(*base, 7) % len(_MARKET_MAKERS)])]
    if not venues:
        return [Row(price, size)]
    lots = max(int(size // lot), 1)
    count = min(1 + _hash(*base, 11) % 3, lots)
    first = _hash(*base, 13) % len(venues)
    chosen = sorted({(first + 2 * i) % len(venues) for i in range(count)})
    shares = [lots // len(chosen)] * len(chosen)
    shares[0] += lots - sum(shares)
    rows = [Row(price, n * lot, venues[v]) for v, n in zip(chosen, shares, strict=True)]
    rows[0] = Row(price, rows[0].size + (size - lots * lot), rows[0].maker)
    return rows


def diff_side(old: list[Row], new: list[Row], capacity: int) -> list[tuple[int, int, Row]]:
    """TWS operations (operation, position, row) that turn ``old`` into ``new``.

    Inserts and deletes shift the rows below them; a side never holds more than ``capacity``
    rows along the way, and ``new`` must be sorted the way ``old`` is (best first).
    """
    work = list(old)
    ops: list[tuple[int, int, Row]] = []
    wanted = {r.key for r in new}
    for pos, target in enumerate(new):
        while pos < len(work) and work[pos].key not in wanted:
            ops.append((DELETE, pos, work.pop(pos)))
        if pos < len(work) and work[pos].key == target.key:
            if work[pos].size != target.size:
                ops.append((UPDATE, pos, target))
                work[pos] = target
            continue
        if len(work) >= capacity:
            ops.append((DELETE, len(work) - 1, work.pop()))
        work.insert(pos, target)
        ops.append((INSERT, pos, target))
    while len(work) > len(new):
        ops.append((DELETE, len(work) - 1, work.pop()))
    return ops


# ---------------------------------------------------------------------------------------------
# Wire layouts


def depth_update(
    req_id: int, position: int, operation: int, side: int, price: float, size: float
) -> list[object]:
    """updateMktDepth (id 12): no market maker."""
    return [int(Msg.MARKET_DEPTH), 1, req_id, position, operation, side, price, round(size)]


def depth_update_l2(
    req_id: int,
    position: int,
    maker: str,
    operation: int,
    side: int,
    price: float,
    size: float,
    smart: bool,
) -> list[object]:
    """updateMktDepthL2 (id 13): with the market maker (or venue) and the isSmartDepth flag."""
    return [
        int(Msg.MARKET_DEPTH_L2),
        1,
        req_id,
        position,
        maker,
        operation,
        side,
        price,
        round(size),
        smart,
    ]


def depth_exchanges(universe: list[Instrument]) -> list[tuple[str, str, str, str, int]]:
    """reqMktDepthExchanges' rows: the depth venues some instrument of the universe trades on."""
    offered = {
        (ex, inst.sec_type) for inst in universe for ex in (*inst.valid_exchanges, inst.exchange)
    }
    return [
        (venue, sec_type, listing, service, 1)
        for (venue, sec_type), (listing, service) in DEPTH_VENUES.items()
        if (venue, sec_type) in offered
    ]


def mkt_depth_exchanges(rows: list[tuple[str, str, str, str, int]]) -> list[object]:
    """mktDepthExchanges (id 80): count, then exchange, secType, listingExch, serviceDataType,
    aggGroup per row (the layout since server version 143)."""
    out: list[object] = [int(Msg.MKT_DEPTH_EXCHANGES), len(rows)]
    for row in rows:
        out += list(row)
    return out


# ---------------------------------------------------------------------------------------------
# Handlers and the market hook


def _form(inst: Instrument, exchange: str, smart: bool) -> tuple[tuple[str, ...], bool]:
    """(venues for SMART rows, market makers?) for a request, or SimError 10092."""
    if smart:
        if inst.sec_type != "STK":
            raise SimError(10092, NO_DEPTH_TEXT)
        offered = tuple(v for v in _SMART_VENUES if v in inst.valid_exchanges)
        return offered or (inst.primary_exchange or inst.exchange,), False
    venue = exchange.strip().upper() or inst.exchange
    venue = "NASDAQ" if venue == "ISLAND" else venue
    known = DEPTH_VENUES.get((venue, inst.sec_type))
    if known is None or venue not in (*inst.valid_exchanges, inst.exchange):
        raise SimError(10092, NO_DEPTH_TEXT)
    return (), known[1] == "Deep2"


def _market_time(sim: SimCore) -> float:
    return sim.clock() * sim.speed


def _book(sim: SimCore, sub: Sub, inst: Instrument) -> tuple[list[Row], list[Row]]:
    q = sim.market.quote(inst.con_id)
    p = sub.params
    kw = {
        "seed": sim.seed,
        "market_time": _market_time(sim),
        "venues": p["venues"],
        "makers": p["makers"],
    }
    return (
        book_side(inst, q, BID, p["rows"], **kw),
        book_side(inst, q, ASK, p["rows"], **kw),
    )


def _send_ops(c: Connection, sub: Sub, side: int, ops: list[tuple[int, int, Row]]) -> None:
    l2 = sub.params["l2"]
    smart = sub.params["smart"]
    for op, pos, row in ops:
        size = 0.0 if op == DELETE else row.size
        if l2:
            c.send(depth_update_l2(sub.req_id, pos, row.maker, op, side, row.price, size, smart))
        else:
            c.send(depth_update(sub.req_id, pos, op, side, row.price, size))


def on_move(sim: SimCore, c: Connection, sub: Sub, inst: Instrument) -> None:
    """After the instrument moved: send what changed in the book."""
    bids, asks = _book(sim, sub, inst)
    rows = sub.params["rows"]
    _send_ops(c, sub, BID, diff_side(sub.params["bids"], bids, rows))
    _send_ops(c, sub, ASK, diff_side(sub.params["asks"], asks, rows))
    sub.params["bids"], sub.params["asks"] = bids, asks


def h_mkt_depth(c: Connection, f: Fields) -> None:
    f.skip()  # version
    req_id = f.int()
    query = f.contract()
    rows = min(max(f.int(), 1), MAX_ROWS)
    smart = f.bool()
    sim = c.sim
    inst = sim.universe.resolve(query)
    venues, makers = _form(inst, query.exchange, smart)
    in_use = sim.subscriptions().get("mkt_depth", 0)
    if ("mkt_depth", req_id) not in c.subs and in_use >= MAX_DEPTH_SUBSCRIPTIONS:
        raise SimError(309, DEPTH_LIMIT_TEXT)
    sub = c.subs[("mkt_depth", req_id)] = Sub(
        "mkt_depth",
        req_id,
        inst,
        {
            "rows": rows,
            "smart": smart,
            "venues": venues,
            "makers": makers,
            "l2": smart or makers,
            "bids": [],
            "asks": [],
        },
    )
    on_move(sim, c, sub, inst)


def h_cancel_mkt_depth(c: Connection, f: Fields) -> None:
    f.skip()  # version
    c.subs.pop(("mkt_depth", f.int()), None)


def h_mkt_depth_exchanges(c: Connection, f: Fields) -> None:
    c.send(mkt_depth_exchanges(depth_exchanges(list(c.sim.universe))))
