"""The option model the simulator prices with: Black-Scholes, implied volatility, the chain."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from ibflow.sim import Scenario
from ibflow.sim._instruments import AAPL_OPTION_EXPIRIES, AAPL_OPTION_STRIKES
from ibflow.sim._market import Market
from ibflow.sim._options import (
    black_scholes,
    expiry_time,
    implied_vol,
    model_vol,
    option_chain,
)

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("strike", [150.0, 230.0, 300.0])
@pytest.mark.parametrize("years", [0.01, 0.25, 2.0])
def test_put_call_parity_with_zero_rates(strike: float, years: float) -> None:
    call = black_scholes(230.0, strike, years, 0.3, "C")
    put = black_scholes(230.0, strike, years, 0.3, "P")
    assert call.price - put.price == pytest.approx(230.0 - strike, abs=1e-9)
    assert call.delta - put.delta == pytest.approx(1.0)
    assert call.gamma == pytest.approx(put.gamma)
    assert 0.0 <= call.delta <= 1.0
    assert -1.0 <= put.delta <= 0.0


def test_greeks_match_finite_differences() -> None:
    s, k, t, v = 230.0, 240.0, 0.3, 0.28
    g = black_scholes(s, k, t, v, "C")
    h = 0.01
    up, down = black_scholes(s + h, k, t, v, "C"), black_scholes(s - h, k, t, v, "C")
    assert g.delta == pytest.approx((up.price - down.price) / (2 * h), rel=1e-5)
    assert g.gamma == pytest.approx((up.delta - down.delta) / (2 * h), rel=1e-4)
    vol_up = black_scholes(s, k, t, v + 0.01, "C").price
    assert g.vega == pytest.approx(vol_up - g.price, rel=0.02)  # per vol point
    day_later = black_scholes(s, k, t - 1 / 365, v, "C").price
    assert g.theta == pytest.approx(day_later - g.price, rel=0.02)  # per calendar day


@pytest.mark.parametrize("right", ["C", "P"])
@pytest.mark.parametrize("vol", [0.1, 0.35, 1.5])
def test_implied_vol_inverts_the_price(right: str, vol: float) -> None:
    price = black_scholes(230.0, 220.0, 0.5, vol, right).price
    solved = implied_vol(price, 230.0, 220.0, 0.5, right)
    assert solved == pytest.approx(vol, abs=1e-5)


def test_implied_vol_is_none_where_no_volatility_fits() -> None:
    assert implied_vol(5.0, 230.0, 220.0, 0.5, "C") is None  # below intrinsic (10)
    assert implied_vol(231.0, 230.0, 220.0, 0.5, "C") is None  # above the underlying
    assert implied_vol(12.0, 230.0, 220.0, 0.0, "C") is None  # expired


def test_expired_option_is_worth_its_intrinsic_value() -> None:
    assert black_scholes(230.0, 220.0, 0.0, 0.3, "C").price == 10.0
    assert black_scholes(230.0, 220.0, 0.0, 0.3, "P").price == 0.0
    assert black_scholes(230.0, 220.0, 0.0, 0.3, "C").delta == 1.0


def test_smile_is_higher_in_the_wings() -> None:
    aapl = next(i for i in Scenario.default().instruments if i.symbol == "AAPL")
    atm = model_vol(aapl, 230.0, 230.0)
    assert atm == pytest.approx(aapl.volatility)
    assert model_vol(aapl, 200.0, 230.0) > atm
    assert model_vol(aapl, 260.0, 230.0) > model_vol(aapl, 240.0, 230.0) * 0.98


def test_chain_is_the_universe_unexpired_options() -> None:
    sc = Scenario.default()
    universe = sc.universe()
    aapl = universe.by_name("AAPL")
    assert aapl is not None
    rows = option_chain(universe, aapl, now=NOW)
    options = [i for i in universe if i.sec_type == "OPT"]
    assert {r.exchange for r in rows} == set(options[0].valid_exchanges)
    for row in rows:
        assert row.expirations == AAPL_OPTION_EXPIRIES
        assert row.strikes == AAPL_OPTION_STRIKES
        assert (row.trading_class, row.multiplier) == ("AAPL", "100")
    after_first = expiry_time(options[0]) + 60
    later = option_chain(universe, aapl, now=after_first)
    assert later[0].expirations == AAPL_OPTION_EXPIRIES[1:]
    assert option_chain(universe, aapl, exchange="CBOE", now=NOW)[0].exchange == "CBOE"
    msft = universe.by_name("MSFT")
    assert msft is not None
    assert option_chain(universe, msft, now=NOW) == []


def test_expiry_is_four_pm_new_york() -> None:
    opt = next(i for i in Scenario.default().instruments if i.sec_type == "OPT")
    when = datetime.fromtimestamp(expiry_time(opt), UTC)
    assert (when.hour, when.minute) == (21, 0)  # 16:00 EST in January
    assert math.isfinite(expiry_time(opt))


@pytest.mark.parametrize("right", ["C", "P"])
def test_option_history_is_the_model_on_the_underlying_bars(right: str) -> None:
    sc = Scenario.default()
    market = Market(sc.instruments, seed=0, clock=lambda: NOW, live_from_history=True)
    option = next(i for i in sc.instruments if i.sec_type == "OPT" and i.right == right)
    under = sc.universe().by_con_id(option.under_con_id)
    assert under is not None
    kw = {"end": None, "duration": "2 D", "bar_size": "30 mins", "use_rth": True}
    bars = market.history(option, what="MIDPOINT", **kw)  # type: ignore[arg-type]
    under_bars = {b.time: b for b in market.history(under, what="MIDPOINT", **kw)}  # type: ignore[arg-type]
    assert len(bars) > 10
    for bar in bars:
        u = under_bars[bar.time]
        years = (expiry_time(option) - bar.time) / (365 * 86400)

        def value(spot: float, years: float = years) -> float:
            vol = model_vol(under, option.strike, spot)
            return black_scholes(spot, option.strike, years, vol, right).price

        step = 0.005 if value(u.open) < 3 else 0.025  # half the rule's increment
        assert bar.open == pytest.approx(value(u.open), abs=step + 1e-9)
        assert bar.close == pytest.approx(value(u.close), abs=step + 1e-9)
        rich = u.high if right == "C" else u.low
        assert bar.high == pytest.approx(value(rich), abs=step + 1e-9)
    trades = market.history(option, what="TRADES", **kw)  # type: ignore[arg-type]
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in trades)
    bids = market.history(option, what="BID", **kw)  # type: ignore[arg-type]
    asks = market.history(option, what="ASK", **kw)  # type: ignore[arg-type]
    assert all(b.close < a.close for b, a in zip(bids, asks, strict=True))


def test_option_chart_joins_the_live_quote() -> None:
    sc = Scenario.default()
    market = Market(sc.instruments, seed=0, clock=lambda: NOW, live_from_history=True)
    option = next(i for i in sc.instruments if i.sec_type == "OPT" and i.strike == 230.0)
    [last] = market.history(
        option, end=None, duration="60 S", bar_size="1 min", what="MIDPOINT", use_rth=True
    )[-1:]
    q = market.quote(option.con_id)
    assert q.bid <= last.close <= q.ask
