"""Live prices for the simulator: quotes, real-time bars and keepUpToDate updates.

Live quotes must start at the scenario price and be cheap to advance thousands of times a
second: each instrument has its own ``random.Random`` walk, stepped by ``step()``. Real-time bars
and keepUpToDate updates aggregate those steps, so they agree with the ticks a client sees.
Historical bars come from :mod:`._series`, a pure function of time.

Pure: no I/O, no asyncio. Time comes from the injected ``clock`` (epoch seconds).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ._history import DAY, WEEK, validating_error
from ._model import Instrument, QuoteState, SimBar, SimError
from ._options import option_value
from ._rules import increment_at, increments
from ._series import PROFILES, HistorySeries, decimals, hash_key, midnight, sessions_between

REALTIME_WHATS = ("TRADES", "MIDPOINT", "BID", "ASK")


# ---------------------------------------------------------------------------------------------
# Live state


@dataclass(slots=True)
class _Tape:
    """Recent steps of one instrument, read by real-time and keepUpToDate bar builders."""

    entries: deque[tuple[bool, float, float, float, float]] = field(
        default_factory=lambda: deque(maxlen=8192)
    )
    seq: int = 0  # number of entries ever appended
    rt_start: int | None = None
    rt_entries: list[tuple[bool, float, float, float, float]] = field(default_factory=list)
    rt_cursor: int = 0
    rt_bars: dict[str, SimBar] = field(default_factory=dict)
    forming: dict[tuple[int, bool], _Forming] = field(default_factory=dict)

    def since(self, cursor: int) -> list[tuple[bool, float, float, float, float]]:
        n = self.seq - cursor
        if n <= 0:
            return []
        n = min(n, len(self.entries))
        return list(self.entries)[-n:]


@dataclass(slots=True)
class _Forming:
    start: int
    cursor: int
    acc: dict[str, list[float]]  # what -> [open, high, low, close, volume, price·volume, count]


class _Live:
    __slots__ = (
        "dec",
        "index",
        "inst",
        "mid",
        "profile",
        "quote",
        "rng",
        "sigma",
        "spread",
        "tape",
        "tick",
    )

    def __init__(
        self, inst: Instrument, quote: QuoteState, rng: random.Random, sigma: float, mid: float
    ) -> None:
        self.inst = inst
        self.quote = quote
        self.rng = rng
        self.sigma = sigma
        self.mid = mid
        self.tick = inst.min_tick
        self.dec = decimals(inst.min_tick)
        self.profile = PROFILES.get(inst.sec_type, PROFILES["STK"])
        self.spread = 1
        self.index = inst.sec_type == "IND"
        self.tape: _Tape | None = None


class Market:
    """Quotes, historical bars and real-time bars for a universe, all derived from ``seed``.

    ``quote``/``step``/``push`` return the instrument's live :class:`QuoteState` object itself
    (no copy, so ``step`` stays cheap); copy it if you keep it.

    Live quotes start at ``Instrument.price`` (the scenario's starting price), while history is
    a band around that price that does not pass through it "now": the two meet with a jump of a
    few percent. ``live_from_history=True`` starts each live quote at the historical path's
    value at first use instead, so charts join up (at the cost of the exact starting price).
    ``tick_interval`` (seconds between steps, before any speed-up) scales the live volatility.
    """

    def __init__(
        self,
        instruments: Sequence[Instrument],
        *,
        seed: int,
        clock: Callable[[], float],
        tick_interval: float = 0.25,
        live_from_history: bool = False,
    ) -> None:
        self._instruments = {inst.con_id: inst for inst in instruments}
        self._live_from_history = live_from_history
        self._seed = seed
        self._clock = clock
        self._tick_interval = tick_interval
        self._live: dict[int, _Live] = {}
        self._frozen: set[int] = set()
        self._series = HistorySeries(seed=seed, clock=clock, instruments=self._instruments)

    # -- live quotes --------------------------------------------------------------------------

    def _instrument(self, con_id: int) -> Instrument:
        inst = self._instruments.get(con_id)
        if inst is None:
            raise SimError(200, "No security definition has been found for the request")
        return inst

    def _init_live(self, con_id: int) -> _Live:
        inst = self._instrument(con_id)
        rng = random.Random(hash_key(self._seed, con_id, 1))
        profile = PROFILES.get(inst.sec_type, PROFILES["STK"])
        sigma = inst.volatility * math.sqrt(self._tick_interval / profile.trading_seconds)
        price = max(inst.price, inst.min_tick * 2)
        if self._live_from_history:
            h = self._series.state(inst)
            price = max(h.base * math.exp(h.path.at(self._clock())), inst.min_tick * 2)
        q = QuoteState(bid=0.0, ask=0.0, last=0.0)
        lv = _Live(inst, q, rng, sigma, price)
        theo = self._theo(lv)
        if theo is not None:
            price = lv.mid = theo
        lv.spread = 1 + int(rng.random() * profile.max_spread)
        self._set_book(lv, price)
        last = self._round(lv, price)
        q.last = last
        q.open = q.high = q.low = last
        # Previous session's close: one day's move away from the starting price.
        day_sigma = inst.volatility / math.sqrt(252.0)
        q.close = self._round(lv, price * math.exp(-day_sigma * rng.gauss(0.0, 1.0)))
        q.time = self._clock()
        if profile.trade_prob == 0.0:
            q.last_size = 0.0
        else:
            q.last_size = profile.trade_lot * (1 + int(rng.random() * profile.max_trade_lots))
        self._live[con_id] = lv
        return lv

    def _theo(self, lv: _Live) -> float | None:
        """An option's model price on its underlying's live mid (None for anything else); it
        also moves the option's tick to its market rule's increment at that price."""
        inst = lv.inst
        under = self._instruments.get(inst.under_con_id) if inst.sec_type == "OPT" else None
        if under is None:
            return None
        uq = self.quote(under.con_id)
        spot = (uq.bid + uq.ask) / 2 if uq.bid > 0 and uq.ask > 0 else uq.last
        price = max(option_value(inst, under, spot, self._clock()), inst.min_tick)
        # The whole quote must sit on the rule's grid: near a level's low edge the ask may be
        # above it, so price on the coarser increment from a widest spread below the edge.
        grid = increments(inst)
        lv.tick = increment_at(grid, price + lv.profile.max_spread * grid[0][1])
        lv.dec = decimals(lv.tick)
        return price

    @staticmethod
    def _round(lv: _Live, price: float) -> float:
        return round(round(price / lv.tick) * lv.tick, lv.dec)

    def _set_book(self, lv: _Live, mid: float) -> None:
        """Bid/ask on the tick grid around ``mid`` with the current spread, and fresh sizes."""
        q, tick, spread, profile = lv.quote, lv.tick, lv.spread, lv.profile
        bid_k = max(math.floor(mid / tick - spread * 0.5 + 0.5), 1)
        q.bid = round(bid_k * tick, lv.dec)
        q.ask = round((bid_k + spread) * tick, lv.dec)
        if profile.quote_lot:
            rnd = lv.rng.random
            q.bid_size = profile.quote_lot * (1 + int(rnd() * profile.max_quote_lots))
            q.ask_size = profile.quote_lot * (1 + int(rnd() * profile.max_quote_lots))
        else:
            q.bid_size = q.ask_size = 0.0

    def quote(self, con_id: int) -> QuoteState:
        """The instrument's current quote, started at its scenario price on first use."""
        lv = self._live.get(con_id)
        if lv is None:
            lv = self._init_live(con_id)
        return lv.quote

    def freeze(self, con_id: int, on: bool = True) -> None:
        """Stop (``on=False``: restart) the random walk of ``con_id``: only pushes move it."""
        if on:
            self._frozen.add(con_id)
        else:
            self._frozen.discard(con_id)

    def step(self, con_id: int) -> QuoteState:
        """Advance one tick: move the mid, requote bid/ask/sizes, maybe print a trade."""
        lv = self._live.get(con_id)
        if lv is None:
            lv = self._init_live(con_id)
        q = lv.quote
        if q.halted or con_id in self._frozen:
            return q
        rng = lv.rng
        profile = lv.profile
        theo = self._theo(lv)
        if theo is not None:
            mid = theo
        else:
            mid = lv.mid * math.exp(lv.sigma * rng.gauss(0.0, 1.0))
            if mid < lv.tick * 2:  # reflect at the bottom so prices stay positive
                mid = lv.tick * 4 - mid
        lv.mid = mid
        if rng.random() < 0.1:
            lv.spread = 1 + int(rng.random() * profile.max_spread)
        self._set_book(lv, mid)
        traded = False
        if profile.trade_prob:
            if rng.random() < profile.trade_prob:
                traded = True
                last = q.ask if rng.random() < 0.5 else q.bid
                size = profile.trade_lot * (1 + int(rng.random() * profile.max_trade_lots))
                q.last = last
                q.last_size = size
                q.volume += size
                q.time = self._clock()
        else:
            # Forex and indices have no trade prints: "last" follows the mid. An index's value
            # still counts as its TRADES series.
            last = self._round(lv, mid)
            q.last = last
            q.time = self._clock()
            traded = lv.index
        last = q.last
        if last > q.high:
            q.high = last
        elif last < q.low:
            q.low = last
        tape = lv.tape
        if tape is not None:
            tape.entries.append((traded, last, q.last_size if traded else 0.0, q.bid, q.ask))
            tape.seq += 1
        return q

    def push(
        self,
        con_id: int,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
        last_size: float | None = None,
        volume: float | None = None,
        halted: bool | None = None,
    ) -> QuoteState:
        """Override fields of the live quote (``Simulator.push_quote``); later steps continue
        from the new prices.

        Given bid/ask are kept as given; a missing side is moved only if the book would be
        crossed. Given only ``last``, bid and ask are recentred around it with the current
        spread. A new last counts as a trade (high/low/volume/time).
        """
        lv = self._live.get(con_id)
        if lv is None:
            lv = self._init_live(con_id)
        q = lv.quote
        tick = lv.tick
        if bid is not None or ask is not None:
            if bid is not None:
                q.bid = bid
            if ask is not None:
                q.ask = ask
            if q.bid >= q.ask:
                if ask is None:
                    q.ask = round(q.bid + lv.spread * tick, lv.dec)
                elif bid is None:
                    q.bid = round(max(q.ask - lv.spread * tick, tick), lv.dec)
            lv.mid = (q.bid + q.ask) / 2
            if q.bid < q.ask:
                lv.spread = max(1, round((q.ask - q.bid) / tick))
        elif last is not None:
            spread = lv.spread
            bid_k = max(round(last / tick) - spread // 2, 1)
            if bid_k * tick > last:
                bid_k -= 1
            q.bid = round(bid_k * tick, lv.dec)
            q.ask = round((bid_k + spread) * tick, lv.dec)
            lv.mid = (q.bid + q.ask) / 2
        if bid_size is not None:
            q.bid_size = bid_size
        if ask_size is not None:
            q.ask_size = ask_size
        if last_size is not None:
            q.last_size = last_size
        if last is not None:
            q.last = last
            q.high = max(q.high, last)
            q.low = min(q.low, last)
            q.time = self._clock()
            if volume is None and lv.profile.trade_prob:
                q.volume += q.last_size
            if lv.tape is not None:
                lv.tape.entries.append((True, last, q.last_size, q.bid, q.ask))
                lv.tape.seq += 1
        if volume is not None:
            q.volume = volume
        if halted is not None:
            q.halted = halted
        return q

    # -- real-time and keepUpToDate bars ------------------------------------------------------

    def _tape(self, con_id: int) -> tuple[_Live, _Tape]:
        lv = self._live.get(con_id)
        if lv is None:
            lv = self._init_live(con_id)
        if lv.tape is None:
            lv.tape = _Tape()
        return lv, lv.tape

    def realtime_bar(self, instrument: Instrument, start: int, what: str) -> SimBar:
        """The 5-second bar labelled ``start``: every step since the previous distinct ``start``.

        Call it once per bar boundary with increasing starts; every caller asking for the same
        ``start`` (several clients, several whatToShow) gets the same bar. Tracking begins with
        the first call, whose bar is therefore flat. Only steps feed these bars, so keep calling
        ``step`` for instruments with real-time bar subscribers.
        """
        what = what.upper()
        if what not in REALTIME_WHATS:
            raise validating_error(f"What to show value of {what} rejected.")
        lv, tape = self._tape(instrument.con_id)
        if tape.rt_start != start:
            tape.rt_entries = tape.since(tape.rt_cursor)
            tape.rt_cursor = tape.seq
            tape.rt_start = start
            tape.rt_bars = {}
        bar = tape.rt_bars.get(what)
        if bar is None:
            acc = self._new_acc(lv, what, session=False)
            self._merge(acc, tape.rt_entries, what, first_is_open=True)
            bar = self._acc_bar(lv, acc, start, what)
            tape.rt_bars[what] = bar
        return bar

    def forming_bar(
        self,
        instrument: Instrument,
        bar_seconds: int,
        now: float,
        what: str,
        *,
        use_rth: bool = False,
    ) -> SimBar:
        """The bar being formed at ``now`` for a keepUpToDate subscription (historicalDataUpdate).

        The bar opens at the live price when first asked for (or, for daily and longer bars,
        carries the session's open/high/low/volume) and then takes in every step; a new bar
        starts when ``now`` crosses into the next bar period. ``now`` must come from the same
        clock as the Market's.
        """
        what = what.upper()
        if what not in REALTIME_WHATS:
            raise validating_error("Source price not supported with live updates")
        lv, tape = self._tape(instrument.con_id)
        start = self._period_start(instrument, bar_seconds, now, use_rth)
        key = (bar_seconds, use_rth)
        st = tape.forming.get(key)
        if st is None or st.start != start:
            acc = {
                w: self._new_acc(lv, w, session=bar_seconds >= DAY and st is None)
                for w in REALTIME_WHATS
            }
            st = _Forming(start, tape.seq, acc)
            tape.forming[key] = st
        else:
            entries = tape.since(st.cursor)
            st.cursor = tape.seq
            for w, a in st.acc.items():
                self._merge(a, entries, w, first_is_open=False)
        return self._acc_bar(lv, st.acc[what], start, what)

    @staticmethod
    def _value(what: str, entry: tuple[bool, float, float, float, float]) -> float:
        if what == "TRADES":
            return entry[1]
        if what == "BID":
            return entry[3]
        if what == "ASK":
            return entry[4]
        return (entry[3] + entry[4]) / 2

    def _new_acc(self, lv: _Live, what: str, *, session: bool) -> list[float]:
        q = lv.quote
        if what == "TRADES":
            if session:
                return [q.open, q.high, q.low, q.last, q.volume, q.volume * q.last, 0.0]
            v = q.last
        elif what == "BID":
            v = q.bid
        elif what == "ASK":
            v = q.ask
        else:
            v = (q.bid + q.ask) / 2
        return [v, v, v, v, 0.0, 0.0, 0.0]

    def _merge(
        self,
        acc: list[float],
        entries: list[tuple[bool, float, float, float, float]],
        what: str,
        *,
        first_is_open: bool,
    ) -> None:
        trades = what == "TRADES"
        first = first_is_open
        for e in entries:
            if trades and not e[0]:
                continue
            v = self._value(what, e)
            if first:
                acc[0] = acc[1] = acc[2] = v
                first = False
            if v > acc[1]:
                acc[1] = v
            if v < acc[2]:
                acc[2] = v
            acc[3] = v
            if trades:
                acc[4] += e[2]
                acc[5] += e[2] * v
                acc[6] += 1

    def _acc_bar(self, lv: _Live, acc: list[float], start: int, what: str) -> SimBar:
        o, h, lo, c, vol, pv, count = acc
        if what == "MIDPOINT":
            o, h, lo, c = (round(x, lv.dec + 1) for x in (o, h, lo, c))
        if what == "TRADES":
            wap = round(pv / vol, lv.dec + 2) if vol > 0 else c
            return SimBar(start, o, h, lo, c, vol, wap, int(count))
        return SimBar(start, o, h, lo, c, -1.0, -1.0, -1)

    def _period_start(self, inst: Instrument, bar_seconds: int, now: float, use_rth: bool) -> int:
        sessions = sessions_between(inst, use_rth, now - 8 * DAY, now + DAY)
        current = None
        for s in sessions:
            if s.open <= now:
                current = s
        if bar_seconds >= DAY:
            if current is None:
                return int(now // DAY * DAY)
            if bar_seconds == DAY:
                return current.midnight
            day = current.day
            first = (
                day - timedelta(days=day.weekday()) if bar_seconds == WEEK else day.replace(day=1)
            )
            return midnight(inst, first)
        if current is not None and now < current.close:
            local = int(now) + current.offset
            bar_local = local - local % bar_seconds
            return max(bar_local - current.offset, current.open)
        return int(now) - int(now) % bar_seconds

    # -- history ------------------------------------------------------------------------------

    def history(
        self,
        instrument: Instrument,
        *,
        end: datetime | None,
        duration: str,
        bar_size: str,
        what: str,
        use_rth: bool,
    ) -> list[SimBar]:
        """Historical bars ending at ``end`` (None = now), oldest first; SimError when refused."""
        return self._series.history(
            instrument, end=end, duration=duration, bar_size=bar_size, what=what, use_rth=use_rth
        )

    def head_timestamp(self, instrument: Instrument, *, what: str, use_rth: bool) -> datetime:
        """The first bar IB has for ``instrument`` and ``what``."""
        return self._series.head_timestamp(instrument, what=what, use_rth=use_rth)
