"""Options in the simulator: Black-Scholes values and greeks, chains and option computations.

A bot reading an option chain checks it against the quotes it then gets, so every option answer
here derives from one model: Black-Scholes with zero rates and no dividends (put-call parity is
exactly ``C - P = S - K``) on the underlying's live mid, with an implied-volatility smile built
from the underlying's volatility. The market prices its live option quotes with
:func:`option_value`; quotes on an option carry tickOptionComputation messages (bid, ask, last and
model) whose implied volatilities are solved from those very prices; historical bars of an
option are the model on its underlying's bars; ``calculateImpliedVolatility`` and
``calculateOptionPrice`` use the same formulas; ``reqSecDefOptParams`` lists exactly the options
of the universe that have not expired.

Conventions as IB reports them: vega per volatility point (0.01), theta per calendar day, an
option expires at 16:00 in its time zone on its last trade date. IB's "not computed" sentinels
are -1 (implied volatility, option price, pvDividend, underlying price) and -2 (delta, gamma,
vega, theta).

Pure, no I/O: the market prices with it, and :mod:`._handlers.options` answers the requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from ._history import is_available, zone
from ._ids import Msg
from ._model import Instrument, SimBar, SimError
from ._rules import Increments, increment_at, increments

if TYPE_CHECKING:
    from ._universe import Universe

YEAR = 365.0 * 86400.0
NOT_COMPUTED = -1.0  # implied vol, option price, pvDividend, underlying price
NOT_COMPUTED_GREEK = -2.0  # delta, gamma, vega, theta
MIN_VOL, MAX_VOL = 0.005, 5.0

# tickOptionComputation tick types: (live, delayed).
BID_COMPUTATION = (10, 80)
ASK_COMPUTATION = (11, 81)
LAST_COMPUTATION = (12, 82)
MODEL_COMPUTATION = (13, 83)
CUSTOM_COMPUTATION = 53  # answers to calculateImpliedVolatility / calculateOptionPrice


@dataclass(frozen=True, slots=True)
class Greeks:
    """An option's value and sensitivities (vega per vol point, theta per calendar day)."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(spot: float, strike: float, years: float, vol: float, right: str) -> Greeks:
    """Value and greeks of a European call ("C") or put ("P") with zero rates and dividends."""
    call = right == "C"
    if years <= 0.0 or vol <= 0.0:
        intrinsic = max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
        if call:
            delta = 1.0 if spot > strike else 0.0
        else:
            delta = -1.0 if spot < strike else 0.0
        return Greeks(intrinsic, delta, 0.0, 0.0, 0.0)
    root = math.sqrt(years)
    d1 = (math.log(spot / strike) + 0.5 * vol * vol * years) / (vol * root)
    d2 = d1 - vol * root
    if call:
        price = spot * _cdf(d1) - strike * _cdf(d2)
        delta = _cdf(d1)
    else:
        price = strike * _cdf(-d2) - spot * _cdf(-d1)
        delta = _cdf(d1) - 1.0
    density = _pdf(d1)
    return Greeks(
        price=max(price, 0.0),
        delta=delta,
        gamma=density / (spot * vol * root),
        vega=spot * density * root / 100.0,
        theta=-spot * density * vol / (2.0 * root) / 365.0,
    )


def implied_vol(price: float, spot: float, strike: float, years: float, right: str) -> float | None:
    """The volatility at which Black-Scholes gives ``price``; None when no volatility can (a
    price at or below intrinsic value, or above the underlying/strike bound, or expired)."""
    if years <= 0.0 or price <= 0.0 or spot <= 0.0:
        return None
    intrinsic = max(spot - strike, 0.0) if right == "C" else max(strike - spot, 0.0)
    bound = spot if right == "C" else strike
    lo, hi = MIN_VOL, MAX_VOL
    if price <= black_scholes(spot, strike, years, lo, right).price or price <= intrinsic:
        return None
    if price >= bound or price >= black_scholes(spot, strike, years, hi, right).price:
        return None
    for _ in range(80):  # bisection: the value is monotonic in volatility
        mid = 0.5 * (lo + hi)
        if black_scholes(spot, strike, years, mid, right).price < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7:
            break
    return 0.5 * (lo + hi)


def expiry_time(inst: Instrument) -> float:
    """Epoch seconds of the option's expiry: 16:00 in its time zone on its last trade date."""
    d = inst.last_trade_date
    when = datetime(int(d[:4]), int(d[4:6]), int(d[6:8]), 16, 0, tzinfo=zone(inst.time_zone))
    return when.timestamp()


def years_left(inst: Instrument, now: float) -> float:
    return max(expiry_time(inst) - now, 0.0) / YEAR


def model_vol(under: Instrument, strike: float, spot: float) -> float:
    """The smile: the underlying's volatility, higher for low strikes and far wings."""
    x = math.log(strike / spot)
    base = max(under.volatility, 0.05)
    return min(max(base * (1.0 - 0.3 * x + 0.8 * x * x), MIN_VOL * 2), MAX_VOL / 2)


def option_greeks(inst: Instrument, under: Instrument, spot: float, now: float) -> Greeks:
    """Model value and greeks of ``inst`` with its underlying at ``spot``."""
    vol = model_vol(under, inst.strike, spot)
    return black_scholes(spot, inst.strike, years_left(inst, now), vol, inst.right)


def option_value(inst: Instrument, under: Instrument, spot: float, now: float) -> float:
    """The model price the market quotes ``inst`` around."""
    return option_greeks(inst, under, spot, now).price


def option_history(
    history: Callable[..., list[SimBar]],
    inst: Instrument,
    under: Instrument,
    bars: list[SimBar],
    end: datetime | None,
    duration: str,
    bar_size: str,
    what: str,
    use_rth: bool,
) -> list[SimBar]:
    """An option's bars re-priced on its underlying's bars of the same request (``history`` is
    the market's), over the option's sessions; its own bars where the underlying has none."""
    has_mid = is_available("MIDPOINT", under.sec_type)
    series = "TRADES" if what == "TRADES" or not has_mid else "MIDPOINT"
    try:
        under_bars = history(
            under,
            end=end,
            duration=duration,
            bar_size=bar_size,
            what=series,
            use_rth=use_rth or inst.eth == inst.rth,
        )
    except SimError:
        return bars
    return priced_bars(bars, under_bars, inst, under, what)


def priced_bars(
    own: list[SimBar], under_bars: list[SimBar], inst: Instrument, under: Instrument, what: str
) -> list[SimBar]:
    """An option's historical bars priced by the model on its underlying's bars.

    Each bar takes the model value of the underlying's open, high, low and close at the bar's
    start (the option's high comes from the underlying's high for a call, its low for a put),
    on the option's price grid; BID and ASK sit half an increment below and above, rounded
    outwards. Volumes and counts stay the option's own; a bar whose time the underlying lacks
    keeps its own prices.
    """
    grid = increments(inst)
    by_time = {b.time: b for b in under_bars}
    out: list[SimBar] = []
    for bar in own:
        u = by_time.get(bar.time)
        if u is None:
            out.append(bar)
            continue
        years = years_left(inst, float(bar.time))
        vol_at = {s: model_vol(under, inst.strike, s) for s in (u.open, u.high, u.low, u.close)}
        value = {
            s: black_scholes(s, inst.strike, years, v, inst.right).price for s, v in vol_at.items()
        }
        o, c = value[u.open], value[u.close]
        hi, lo = max(value[u.high], value[u.low]), min(value[u.high], value[u.low])
        out.append(_on_grid(bar, grid, what, o, max(hi, o, c), min(lo, o, c), c))
    return out


def _snap(grid: Increments, value: float, mode: str = "nearest", fine: float = 1.0) -> float:
    """``value`` on the grid ("down", "up" or "nearest"), at least one step."""
    step = increment_at(grid, value) * fine
    k = value / step
    n = (
        math.floor(k + 1e-9)
        if mode == "down"
        else math.ceil(k - 1e-9)
        if mode == "up"
        else round(k)
    )
    return round(max(n, 1) * step, 6)


def _on_grid(
    bar: SimBar, grid: Increments, what: str, o: float, hi: float, lo: float, c: float
) -> SimBar:
    values = (o, hi, lo, c)
    if what == "MIDPOINT":
        o, hi, lo, c = (_snap(grid, v, fine=0.5) for v in values)
        return replace(bar, open=o, high=hi, low=lo, close=c)
    if what in ("BID", "ASK", "BID_ASK"):
        bid = [_snap(grid, v - increment_at(grid, v) / 2, "down") for v in values]
        ask = [_snap(grid, v + increment_at(grid, v) / 2, "up") for v in values]
        if what == "BID":
            return replace(bar, open=bid[0], high=bid[1], low=bid[2], close=bid[3])
        if what == "ASK":
            return replace(bar, open=ask[0], high=ask[1], low=ask[2], close=ask[3])
        return replace(  # time-average bid, highest ask, lowest bid, time-average ask
            bar,
            open=round((bid[0] + bid[3]) / 2, 6),
            high=ask[1],
            low=bid[2],
            close=round((ask[0] + ask[3]) / 2, 6),
        )
    o, hi, lo, c = (_snap(grid, v) for v in values)
    wap = round((o + hi + lo + c) / 4, 6) if bar.volume > 0 else bar.wap
    return replace(bar, open=o, high=hi, low=lo, close=c, wap=wap)


def with_underlyings(universe: Universe, moving: Mapping[int, Instrument]) -> dict[int, Instrument]:
    """The instruments to move this market step: options' underlyings join them, and every
    underlying moves before the options priced from it."""
    out: dict[int, Instrument] = {}
    options: dict[int, Instrument] = {}
    for con_id, inst in moving.items():
        if inst.sec_type == "OPT":
            options[con_id] = inst
            under = universe.by_con_id(inst.under_con_id)
            if under is not None:
                out.setdefault(under.con_id, under)
        else:
            out.setdefault(con_id, inst)
    out.update(options)
    return out


# ---------------------------------------------------------------------------------------------
# Wire layouts


def option_computation(
    req_id: int,
    tick_type: int,
    *,
    implied_vol: float | None,
    greeks: Greeks | None,
    price: float | None,
    under_price: float | None,
) -> list[object]:
    """tickOptionComputation (id 21) at v178: no version field, tickAttrib, then eight values.

    Missing values go out as IB's "not computed" sentinels; greeks without an implied
    volatility are not computed either.
    """
    g = greeks
    return [
        int(Msg.TICK_OPTION_COMPUTATION),
        req_id,
        tick_type,
        0,  # tickAttrib: return-based volatility
        implied_vol if implied_vol is not None else NOT_COMPUTED,
        g.delta if g is not None else NOT_COMPUTED_GREEK,
        price if price is not None else NOT_COMPUTED,
        0.0 if g is not None else NOT_COMPUTED,  # pvDividend: no dividends
        g.gamma if g is not None else NOT_COMPUTED_GREEK,
        g.vega if g is not None else NOT_COMPUTED_GREEK,
        g.theta if g is not None else NOT_COMPUTED_GREEK,
        under_price if under_price is not None else NOT_COMPUTED,
    ]


def sec_def_opt_params(
    req_id: int, exchange: str, under_con_id: int, trading_class: str, multiplier: str,
    expirations: list[str], strikes: list[float],
) -> list[object]:  # fmt: skip
    """securityDefinitionOptionParameter (id 75): one exchange's expirations and strikes."""
    return [
        int(Msg.SECURITY_DEFINITION_OPTION_PARAMETER),
        req_id,
        exchange,
        under_con_id,
        trading_class,
        multiplier,
        len(expirations),
        *expirations,
        len(strikes),
        *(float(s) for s in strikes),
    ]


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One securityDefinitionOptionParameter message's content."""

    exchange: str
    trading_class: str
    multiplier: str
    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


def option_chain(
    universe: Universe, under: Instrument, *, exchange: str = "", now: float
) -> list[ChainRow]:
    """The rows reqSecDefOptParams answers for ``under``: one per (exchange, trading class,
    multiplier) of its unexpired options, in the order the options list their exchanges."""
    today = datetime.fromtimestamp(now, zone(under.time_zone)).strftime("%Y%m%d")
    groups: dict[tuple[str, str, str], tuple[set[str], set[float]]] = {}
    for inst in universe:
        if inst.sec_type != "OPT" or inst.under_con_id != under.con_id:
            continue
        if inst.last_trade_date < today or expiry_time(inst) <= now:
            continue
        for ex in inst.valid_exchanges or (inst.exchange,):
            if exchange and ex.upper() != exchange.strip().upper():
                continue
            exps, strikes = groups.setdefault(
                (ex, inst.trading_class, inst.multiplier), (set(), set())
            )
            exps.add(inst.last_trade_date)
            strikes.add(inst.strike)
    return [
        ChainRow(ex, tc, mult, tuple(sorted(exps)), tuple(sorted(strikes)))
        for (ex, tc, mult), (exps, strikes) in groups.items()
    ]
