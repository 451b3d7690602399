"""The historical price series of the simulator: a pure function of (seed, conId, time).

A client that stitches a download from overlapping requests, or repeats one, must see identical
bars. The log price is therefore a function of time, not a walk: a sum of octaves of hashed,
piecewise-linear noise (knot spacing 1 s, 4 s, 16 s, … ~194 days, amplitude ∝ √spacing). Its
increments scale like a Brownian motion with the instrument's volatility from seconds to months,
it stays in a band around the scenario price over decades, and any instant costs ~13 hash
look-ups, cached while bars are generated in time order. Opens and closes agree across bar
sizes (both are the path at the boundary); highs and lows are sampled per bar.

Also here: the trading sessions bars are cut along. Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ._history import (
    DAY,
    WEEK,
    Duration,
    check_available,
    check_combination,
    no_data_error,
    parse_bar_size,
    parse_duration,
    parse_what,
    window_start,
    zone,
)
from ._model import Instrument, SimBar
from ._options import option_history

_M64 = (1 << 64) - 1
_SQRT3 = math.sqrt(3.0)
_CALENDAR_YEAR = 365.25 * DAY

# History path: 13 octaves with knot spacing 4**k seconds (1 s … ~194 days). _PATH_SCALE makes
# the increment variance over 1 min … 1 month match sigma² · Δt / year (measured: 0.70).
_OCTAVES = 13
_OCTAVE_BASE = 4
_PATH_SCALE = 0.70
_VOL_OF_VOL = 0.6  # volatility of the simulated volatility series (HISTORICAL_VOLATILITY)

_TRADES_LIKE = frozenset({"TRADES", "ADJUSTED_LAST"})
_VOL_SERIES = frozenset({"HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY"})

# Known first-data dates (UTC) for the real conIds the default universe uses.
_KNOWN_HEADS = {
    265598: datetime(1980, 12, 12, 14, 30, tzinfo=UTC),  # AAPL
    272093: datetime(1986, 3, 13, 14, 30, tzinfo=UTC),  # MSFT
    756733: datetime(1993, 1, 29, 14, 30, tzinfo=UTC),  # SPY
}


def _from_minutes(bar_seconds: int, what: str) -> bool:
    """Whether a bar is built from its minute bars: 2 minutes to an hour, price series."""
    return 60 < bar_seconds <= 3600 and bar_seconds % 60 == 0 and what not in _VOL_SERIES


@dataclass(frozen=True, slots=True)
class Profile:
    """Market micro-structure per secType."""

    quote_lot: float  # bid/ask sizes are multiples of this
    max_quote_lots: int
    trade_prob: float  # chance a step prints a trade
    trade_lot: float
    max_trade_lots: int
    max_spread: int  # ticks
    trading_seconds: float  # per year: scales the live walk's volatility
    hist_rate: float  # historical volume per second of regular session
    avg_trade: float  # shares/contracts per trade, for bar counts


PROFILES = {
    "STK": Profile(100.0, 30, 0.6, 100.0, 10, 3, 252 * 6.5 * 3600, 400.0, 150.0),
    "CASH": Profile(500_000.0, 20, 0.0, 0.0, 0, 4, 260 * 24 * 3600, 0.0, 1.0),
    "FUT": Profile(1.0, 60, 0.7, 1.0, 20, 1, 252 * 23 * 3600, 60.0, 3.0),
    "OPT": Profile(1.0, 50, 0.1, 1.0, 10, 5, 252 * 6.5 * 3600, 0.1, 2.0),
    "IND": Profile(0.0, 0, 0.0, 0.0, 0, 1, 252 * 6.5 * 3600, 0.0, 1.0),
}


# ---------------------------------------------------------------------------------------------
# Hashing


def _mix(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _gauss(h: int) -> float:
    """Approximately standard normal from 64 hash bits (sum of four uniforms, bounded at ±3.5)."""
    s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48)
    return (s / 65536.0 - 2.0) * _SQRT3


def _unit(h: int) -> float:
    """Uniform in [0, 1) from 64 hash bits."""
    return (h >> 11) * (1.0 / (1 << 53))


def hash_key(*parts: int) -> int:
    h = 0
    for p in parts:
        h = _mix(h ^ (p & _M64))
    return h


def decimals(tick: float) -> int:
    exponent = Decimal(repr(tick)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 2


# ---------------------------------------------------------------------------------------------
# The historical path


class _Path:
    """Deviation of the log price from its base as a pure function of epoch time."""

    __slots__ = ("_amps", "_g0", "_g1", "_idx", "_keys", "_lens", "_n")

    def __init__(self, key: int, sigma: float) -> None:
        self._n = _OCTAVES
        self._lens = [float(_OCTAVE_BASE**k) for k in range(_OCTAVES)]
        self._keys = [_mix(key ^ (k * 0x632BE59BD9B4E019)) for k in range(_OCTAVES)]
        self._amps = [_PATH_SCALE * sigma * math.sqrt(ln / _CALENDAR_YEAR) for ln in self._lens]
        # Cached knot values per octave; requests walk forward in time, so most look-ups hit.
        self._idx = [-2] * _OCTAVES
        self._g0 = [0.0] * _OCTAVES
        self._g1 = [0.0] * _OCTAVES

    def coarsest_below(self, spacing: float) -> int:
        """How many of the finest octaves vary faster than ``spacing`` / 4."""
        k = 0
        while k < self._n - 1 and self._lens[k] * 4 < spacing:
            k += 1
        return k

    def at(self, t: float, skip: int = 0) -> float:
        """The deviation at ``t``; ``skip`` leaves out that many of the finest octaves (for
        samples between bar boundaries, where they would only add noise below the wick)."""
        total = 0.0
        lens, keys, amps, idx, g0s, g1s = (
            self._lens,
            self._keys,
            self._amps,
            self._idx,
            self._g0,
            self._g1,
        )
        for k in range(skip, self._n):
            x = t / lens[k]
            i = math.floor(x)
            if i != idx[k]:
                if i == idx[k] + 1:
                    g0s[k] = g1s[k]
                else:
                    g0s[k] = _gauss(_mix(keys[k] ^ i))
                g1s[k] = _gauss(_mix(keys[k] ^ (i + 1)))
                idx[k] = i
            g0 = g0s[k]
            total += amps[k] * (g0 + (g1s[k] - g0) * (x - i))
        return total


@dataclass(slots=True)
class Session:
    day: date  # the session date (IB dates daily bars by it)
    open: int  # epoch seconds
    close: int
    midnight: int  # epoch of 00:00 local on the session date
    offset: int  # UTC offset (s) at the open; sessions never straddle a DST change


@dataclass(slots=True)
class _Hist:
    """Per-instrument constants of the historical series."""

    inst: Instrument
    key: int
    path: _Path
    vol_path: _Path
    base: float
    tick: float
    dec: int
    sigma: float
    profile: Profile


# ---------------------------------------------------------------------------------------------
# Sessions


def midnight(inst: Instrument, day: date) -> int:
    z = zone(inst.time_zone)
    return int(datetime(day.year, day.month, day.day, tzinfo=z).timestamp())


def session_on(inst: Instrument, use_rth: bool, day: date) -> Session | None:
    """The session dated ``day`` (None on weekends). A session whose start is not before its
    end began the previous evening (forex, futures)."""
    if day.weekday() >= 5:
        return None
    start, end = inst.rth if use_rth else inst.eth
    z = zone(inst.time_zone)
    sh, sm, eh, em = int(start[:2]), int(start[2:]), int(end[:2]), int(end[2:])
    open_day = day
    close_day = day
    if (sh, sm) > (eh, em):
        open_day = day - timedelta(days=1)
    elif (sh, sm) == (eh, em):
        close_day = day + timedelta(days=1)
    opened = datetime(open_day.year, open_day.month, open_day.day, sh, sm, tzinfo=z)
    closed = datetime(close_day.year, close_day.month, close_day.day, eh, em, tzinfo=z)
    midnight = datetime(day.year, day.month, day.day, tzinfo=z)
    offset = opened.utcoffset()
    return Session(
        day,
        int(opened.timestamp()),
        int(closed.timestamp()),
        int(midnight.timestamp()),
        int(offset.total_seconds()) if offset is not None else 0,
    )


def sessions_between(inst: Instrument, use_rth: bool, lo: float, hi: float) -> list[Session]:
    """Sessions that overlap [lo, hi), in time order."""
    z = zone(inst.time_zone)
    day = datetime.fromtimestamp(lo, z).date() - timedelta(days=1)
    last = datetime.fromtimestamp(hi, z).date() + timedelta(days=2)
    out = []
    while day <= last:
        s = session_on(inst, use_rth, day)
        if s is not None and s.close > lo and s.open < hi:
            out.append(s)
        day += timedelta(days=1)
    return out


def nth_last_session_open(inst: Instrument, use_rth: bool, end: float, n: int) -> int:
    """Open of the n-th most recent session that opened before ``end`` ("N D" durations)."""
    z = zone(inst.time_zone)
    day = datetime.fromtimestamp(end, z).date() + timedelta(days=1)
    found = 0
    for _ in range(n * 2 + 14):
        s = session_on(inst, use_rth, day)
        if s is not None and s.open < end:
            found += 1
            if found == n:
                return s.open
        day -= timedelta(days=1)
    return int(end - n * DAY)


# ---------------------------------------------------------------------------------------------
# History


class HistorySeries:
    """Historical bars and head timestamps of a universe, all derived from ``seed``."""

    def __init__(
        self,
        *,
        seed: int,
        clock: Callable[[], float],
        instruments: Mapping[int, Instrument] | None = None,
    ) -> None:
        self._seed = seed
        self._clock = clock
        self._instruments: Mapping[int, Instrument] = instruments or {}
        self._hist: dict[int, _Hist] = {}

    def state(self, inst: Instrument) -> _Hist:
        h = self._hist.get(inst.con_id)
        if h is None:
            key = hash_key(self._seed, inst.con_id, 2)
            sigma = max(inst.volatility, 0.0)
            profile = PROFILES.get(inst.sec_type, PROFILES["STK"])
            base = max(inst.price, inst.min_tick * 4)
            h = _Hist(
                inst,
                key,
                _Path(key, sigma),
                _Path(_mix(key ^ 0xB0B), _VOL_OF_VOL),
                base,
                inst.min_tick,
                decimals(inst.min_tick),
                sigma,
                profile,
            )
            self._hist[inst.con_id] = h
        return h

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
        """Historical bars ending at ``end`` (None = now), oldest first; SimError when refused.

        Validates duration, bar size and whatToShow (321), the step size and data availability
        (162), and raises 162 "HMDS query returned no data" when the window holds no session
        after the head timestamp. Intraday bars are aligned to local midnight and clipped to
        sessions (an hourly RTH series starts 09:30, 10:00, …); daily bars are one per session,
        timed at local midnight of the session date; weekly and monthly bars aggregate the
        daily ones; bars of two minutes to an hour aggregate their minute bars, so they agree
        exactly with every smaller size, as TWS's do. ``N D`` means the last N sessions. The bar
        in progress at ``end`` is cut at ``end``; every complete bar is a pure function of
        (seed, conId, start, whatToShow). An option's bars are re-priced by the option model on
        its underlying's bars.
        """
        dur = parse_duration(duration)
        bar_seconds = parse_bar_size(bar_size)
        what_norm = parse_what(what)
        check_combination(dur, bar_seconds)
        check_available(instrument, what_norm, bar_seconds)
        now = self._clock()
        end_ts = now if end is None else min(end.timestamp(), now)
        start_ts = self._window_start(instrument, use_rth, dur, end_ts)
        head = self.head_timestamp(instrument, what=what_norm, use_rth=use_rth).timestamp()
        start_ts = max(start_ts, head)
        bars: list[SimBar] = []
        if start_ts < end_ts:
            h = self.state(instrument)
            sessions = sessions_between(instrument, use_rth, start_ts, end_ts)
            if bar_seconds < DAY:
                bars = self._intraday(h, sessions, bar_seconds, start_ts, end_ts, what_norm)
            else:
                daily = self._daily(h, sessions, start_ts, end_ts, what_norm)
                bars = daily if bar_seconds == DAY else self._group(h, daily, bar_seconds)
        if not bars:
            raise no_data_error(instrument, what_norm)
        under = self._instruments.get(instrument.under_con_id)
        if instrument.sec_type == "OPT" and under is not None:
            # The underlying's bars of the same request, re-priced by the option model.
            request = (end, duration, bar_size, what_norm, use_rth)
            bars = option_history(self.history, instrument, under, bars, *request)
        return bars

    def _window_start(self, inst: Instrument, use_rth: bool, dur: Duration, end_ts: float) -> float:
        if dur.unit == "D":
            return nth_last_session_open(inst, use_rth, end_ts, dur.count)
        end_dt = datetime.fromtimestamp(end_ts, zone(inst.time_zone))
        return window_start(dur, end_dt).timestamp()

    def _intraday(
        self,
        h: _Hist,
        sessions: list[Session],
        bar_seconds: int,
        start_ts: float,
        end_ts: float,
        what: str,
    ) -> list[SimBar]:
        bars = []
        for s in sessions:
            local_open = s.open + s.offset
            b = local_open - local_open % bar_seconds - s.offset
            while b < s.close:
                t0 = max(b, s.open)
                if t0 >= end_ts:
                    break
                t1 = min(b + bar_seconds, s.close)
                if t0 >= start_ts:
                    if _from_minutes(bar_seconds, what):
                        bars.append(self._of_minutes(h, t0, min(t1, end_ts), s.close, what))
                    else:
                        bars.append(self._bar(h, t0, min(t1, end_ts), t1 - t0, what))
                b += bar_seconds
        return bars

    def _of_minutes(self, h: _Hist, t0: float, t1: float, close: float, what: str) -> SimBar:
        """A bar of several minutes as TWS builds it: its 1-minute bars, aggregated.

        High, low, volume and count are then exactly those of the minute bars (and of any
        bar size between), as on TWS; each minute bar is the one a 1-minute request returns.
        """
        minutes = []
        spans = []
        a = t0
        while a < t1:
            b = min(a - a % 60 + 60, close)
            minutes.append(self._bar(h, a, min(b, t1), b - a, what))
            spans.append(min(b, t1) - a)
            a = b
        first = minutes[0]
        if what == "BID_ASK":  # time-averaged bid and ask, the highest ask, the lowest bid
            total = sum(spans)
            return SimBar(
                first.time,
                round(
                    sum(m.open * s for m, s in zip(minutes, spans, strict=True)) / total, h.dec + 1
                ),
                max(m.high for m in minutes),
                min(m.low for m in minutes),
                round(
                    sum(m.close * s for m, s in zip(minutes, spans, strict=True)) / total, h.dec + 1
                ),
                first.volume,
                first.wap,
                first.count,
            )
        volume = sum(m.volume for m in minutes)
        wap = first.wap
        if first.volume >= 0 and volume > 0:
            wap = round(sum(m.wap * m.volume for m in minutes) / volume, h.dec + 2)
        return SimBar(
            first.time,
            first.open,
            max(m.high for m in minutes),
            min(m.low for m in minutes),
            minutes[-1].close,
            volume if first.volume >= 0 else first.volume,
            wap,
            sum(m.count for m in minutes) if first.count >= 0 else first.count,
        )

    def _daily(
        self, h: _Hist, sessions: list[Session], start_ts: float, end_ts: float, what: str
    ) -> list[SimBar]:
        bars = []
        for s in sessions:
            if s.open < start_ts or s.open >= end_ts:
                continue
            bar = self._bar(h, s.open, min(s.close, end_ts), s.close - s.open, what)
            bars.append(replace(bar, time=s.midnight))
        return bars

    def _group(self, h: _Hist, daily: list[SimBar], bar_seconds: int) -> list[SimBar]:
        z = zone(h.inst.time_zone)
        groups: dict[tuple[int, int], list[SimBar]] = {}
        for bar in daily:
            d = datetime.fromtimestamp(bar.time, z).date()
            key = d.isocalendar()[:2] if bar_seconds == WEEK else (d.year, d.month)
            groups.setdefault(key, []).append(bar)
        out = []
        for members in groups.values():
            vol = sum(b.volume for b in members)
            if members[0].volume < 0:
                vol, wap, count = -1.0, -1.0, -1
            else:
                wap = (
                    round(sum(b.wap * b.volume for b in members) / vol, h.dec + 2)
                    if vol > 0
                    else members[-1].close
                )
                count = sum(b.count for b in members)
            out.append(
                SimBar(
                    members[0].time,
                    members[0].open,
                    max(b.high for b in members),
                    min(b.low for b in members),
                    members[-1].close,
                    vol,
                    wap,
                    count,
                )
            )
        return out

    def _half_spread_ticks(self, h: _Hist, t: float) -> float:
        """Half the quoted spread at time ``t``, in ticks (1–3 ticks wide, per minute)."""
        return (1 + _mix(h.key ^ 0x5EED ^ int(t // 60)) % max(h.profile.max_spread, 1)) * 0.5

    def _bar(self, h: _Hist, t0: float, t1: float, full: float, what: str) -> SimBar:
        """One bar from t0 to t1 (t1 < t0 + full for the bar in progress)."""
        # Highs and lows come from samples (plus a wick), so they agree only roughly across
        # bar sizes; longer bars get more samples to keep the error small.
        n = 8 if full <= 60 else 16 if full <= 3600 else 32
        n = max(1, min(n, int(full)))
        step = full / n
        path = h.vol_path if what in _VOL_SERIES else h.path
        times = [t0 + step * i for i in range(n + 1) if t0 + step * i < t1] + [t1]
        skip = path.coarsest_below(step)
        logs = [path.at(t, 0 if i == 0 else skip) for i, t in enumerate(times)]
        logs[-1] = path.at(t1)
        # Wicks: the excursion between samples, drawn per bar so highs and lows are not just
        # the sampled points.
        bk = _mix(h.key ^ int(t0) ^ (int(full) << 40))
        sigma = _VOL_OF_VOL if what in _VOL_SERIES else h.sigma
        wick = sigma * math.sqrt(step / _CALENDAR_YEAR)
        hi_log = max(logs) + wick * abs(_gauss(bk))
        lo_log = min(logs) - wick * abs(_gauss(_mix(bk)))
        start = int(t0)
        if what in _VOL_SERIES:
            base = max(h.inst.volatility, 0.01) * (0.9 if what == "HISTORICAL_VOLATILITY" else 1.0)
            o, c = (round(base * math.exp(x), 6) for x in (logs[0], logs[-1]))
            hi, lo = round(base * math.exp(hi_log), 6), round(base * math.exp(lo_log), 6)
            return SimBar(start, o, max(hi, o, c), min(lo, o, c), c, -1.0, -1.0, -1)
        tick, dec, base = h.tick, h.dec, h.base
        if what in _TRADES_LIKE or what == "MIDPOINT":
            grid = tick if what != "MIDPOINT" else tick / 2
            gdec = dec if what != "MIDPOINT" else dec + 1
            ko = round(base * math.exp(logs[0]) / grid)
            kc = round(base * math.exp(logs[-1]) / grid)
            kh = max(math.ceil(base * math.exp(hi_log) / grid - 1e-9), ko, kc)
            kl = max(min(math.floor(base * math.exp(lo_log) / grid + 1e-9), ko, kc), 1)
            o, hi, lo, c = (round(k * grid, gdec) for k in (ko, kh, kl, kc))
            if what == "MIDPOINT":
                return SimBar(start, o, hi, lo, c, -1.0, -1.0, -1)
            return self._with_volume(h, start, t1 - t0, full, bk, o, hi, lo, c)
        # Quote-side series: bid = mid − half spread floored to the grid, ask = ceiled.
        sides = []
        for t, x in zip(times, logs, strict=True):
            m = base * math.exp(x) / tick
            hs = self._half_spread_ticks(h, t)
            sides.append((max(math.floor(m - hs + 1e-9), 1), max(math.ceil(m + hs - 1e-9), 2)))
        bids = [b for b, _ in sides]
        asks = [a for _, a in sides]
        hs0 = self._half_spread_ticks(h, t0)
        bid_hi = max(max(bids), math.floor(base * math.exp(hi_log) / tick - hs0 + 1e-9))
        bid_lo = max(min(min(bids), math.floor(base * math.exp(lo_log) / tick - hs0 + 1e-9)), 1)
        ask_hi = max(max(asks), math.ceil(base * math.exp(hi_log) / tick + hs0 - 1e-9))
        ask_lo = max(min(min(asks), math.ceil(base * math.exp(lo_log) / tick + hs0 - 1e-9)), 2)
        if what == "BID":
            ks = (bids[0], bid_hi, bid_lo, bids[-1])
        elif what == "ASK":
            ks = (asks[0], ask_hi, ask_lo, asks[-1])
        else:  # BID_ASK: time-average bid, the ASK bar's high, the BID bar's low, average ask
            return SimBar(
                start,
                round(sum(bids) / len(bids) * tick, dec + 1),
                round(ask_hi * tick, dec),
                round(bid_lo * tick, dec),
                round(sum(asks) / len(asks) * tick, dec + 1),
                -1.0,
                -1.0,
                -1,
            )
        o, hi, lo, c = (round(k * tick, dec) for k in ks)
        return SimBar(start, o, hi, lo, c, -1.0, -1.0, -1)

    def _with_volume(
        self,
        h: _Hist,
        start: int,
        span: float,
        full: float,
        bk: int,
        o: float,
        hi: float,
        lo: float,
        c: float,
    ) -> SimBar:
        wap = round((o + hi + lo + c) / 4, h.dec + 2)
        profile = h.profile
        if profile.hist_rate <= 0:
            return SimBar(start, o, hi, lo, c, 0.0, wap, 0)
        lot = profile.trade_lot or 1.0
        factor = 0.5 + _unit(_mix(bk ^ 0x7011))
        lots = int(profile.hist_rate * span * factor / lot)
        volume = float(lots) * lot
        count = max(1, int(volume / profile.avg_trade)) if volume > 0 else 0
        return SimBar(start, o, hi, lo, c, volume, wap, count)

    def head_timestamp(self, instrument: Instrument, *, what: str, use_rth: bool) -> datetime:
        """The earliest bar time (UTC) the sim has for this instrument and whatToShow.

        Real dates for the well-known conIds (AAPL 1980-12-12), otherwise a fixed date derived
        from the conId: 1985–2012 for stocks and indices, 2005–2007 for forex, two years before
        expiry for futures, one year for options. 162 when ``what`` does not exist.
        """
        what_norm = what.strip().upper()
        check_available(instrument, parse_what(what_norm), DAY)
        known = _KNOWN_HEADS.get(instrument.con_id)
        if known is not None:
            return known
        h = _mix(hash_key(instrument.con_id, 0x4EAD))
        sec = instrument.sec_type
        if sec in ("FUT", "OPT") and len(instrument.last_trade_date) >= 8:
            ltd = instrument.last_trade_date
            expiry = date(int(ltd[:4]), int(ltd[4:6]), int(ltd[6:8]))
            first = expiry - timedelta(days=730 if sec == "FUT" else 365)
        elif sec == "CASH":
            first = date(2005, 1, 3) + timedelta(days=h % 1000)
        else:
            first = date(1985, 1, 2) + timedelta(days=h % (28 * 365))
        for _ in range(7):
            s = session_on(instrument, use_rth, first)
            if s is not None:
                return datetime.fromtimestamp(s.open, UTC)
            first += timedelta(days=1)
        return datetime(first.year, first.month, first.day, tzinfo=UTC)  # pragma: no cover
