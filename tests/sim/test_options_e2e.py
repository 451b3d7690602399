"""Option chains, option quotes with greeks and the calculate requests, over real ib_async."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import ib_async
import pytest
from ib_async import Option, Stock

from ibflow.sim import Simulator
from ibflow.sim._instruments import AAPL_OPTION_EXPIRIES, AAPL_OPTION_STRIKES
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


def clock_from(when: datetime) -> Callable[[], float]:
    """A clock that starts at ``when`` and runs with the wall clock, so option expiries in the
    default scenario stay in the future whenever the tests run."""
    base, started = when.timestamp(), time.time()
    return lambda: base + time.time() - started


TUESDAY = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # before every default expiry, market open


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, speed=100, clock=clock_from(TUESDAY)) as s:
        yield s


@pytest.fixture
async def ib(sim: Simulator) -> AsyncIterator[ib_async.IB]:
    client = ib_async.IB()
    await client.connectAsync(sim.host, sim.port, clientId=1, timeout=5)
    try:
        yield client
    finally:
        client.disconnect()


async def test_chain_lists_the_universe_options_and_every_one_qualifies(
    ib: ib_async.IB,
) -> None:
    chains = await ib.reqSecDefOptParamsAsync("AAPL", "", "STK", 265598)
    assert "SMART" in {c.exchange for c in chains}
    assert len({c.exchange for c in chains}) == len(chains)
    smart = next(c for c in chains if c.exchange == "SMART")
    assert smart.tradingClass == "AAPL"
    assert smart.multiplier == "100"
    assert smart.underlyingConId == "265598"
    assert tuple(smart.expirations) == AAPL_OPTION_EXPIRIES
    assert tuple(smart.strikes) == AAPL_OPTION_STRIKES
    specs = [
        Option("AAPL", expiry, strike, right, "SMART", tradingClass=smart.tradingClass)
        for expiry in smart.expirations
        for strike in smart.strikes
        for right in ("C", "P")
    ]
    qualified = await ib.qualifyContractsAsync(*specs)
    assert len(qualified) == len(specs)
    assert all(c.conId and c.multiplier == "100" for c in qualified)


async def test_chain_of_an_underlying_without_options_is_empty(ib: ib_async.IB) -> None:
    assert await ib.reqSecDefOptParamsAsync("MSFT", "", "STK", 272093) == []


async def test_chain_of_an_unknown_underlying_is_error_200(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    assert await ib.reqSecDefOptParamsAsync("NOPE", "", "STK", 999) == []
    assert errors == [200]


async def test_option_quotes_carry_greeks_that_hold_parity(ib: ib_async.IB) -> None:
    call, put = await ib.qualifyContractsAsync(
        Option("AAPL", "20270115", 230, "C", "SMART"),
        Option("AAPL", "20270115", 230, "P", "SMART"),
    )
    tc = ib.reqMktData(call, "", False, False)
    tp = ib.reqMktData(put, "", False, False)
    await eventually(
        lambda: all(
            t.modelGreeks and t.bidGreeks and t.askGreeks and t.bid == t.bid for t in (tc, tp)
        )
    )
    for t in (tc, tp):
        bid_g, ask_g, model = t.bidGreeks, t.askGreeks, t.modelGreeks
        assert bid_g is not None
        assert ask_g is not None
        assert model is not None
        assert bid_g.optPrice == t.bid
        assert ask_g.optPrice == t.ask
        assert 0.0 < bid_g.impliedVol <= model.impliedVol <= ask_g.impliedVol < 2.0
        assert model.gamma > 0
        assert model.vega > 0
        assert model.theta < 0
        assert model.pvDividend == 0.0
        assert t.bid < t.ask
        tick = 0.01 if t.bid < 3 else 0.05
        assert round(t.bid / tick, 6).is_integer()
    mc, mp = tc.modelGreeks, tp.modelGreeks
    assert mc is not None
    assert mp is not None
    assert 0.0 < mc.delta < 1.0
    assert -1.0 < mp.delta < 0.0
    if mc.undPrice == mp.undPrice:  # both computed on the same underlying price
        assert mc.optPrice - mp.optPrice == pytest.approx(mc.undPrice - 230.0, abs=1e-6)
    assert mc.delta - mp.delta == pytest.approx(1.0, abs=0.05)


async def test_option_quotes_move_with_the_underlying(ib: ib_async.IB, sim: Simulator) -> None:
    [call] = await ib.qualifyContractsAsync(Option("AAPL", "20270219", 220, "C", "SMART"))
    ticker = ib.reqMktData(call, "", False, False)
    await eventually(lambda: ticker.modelGreeks is not None)
    seen: set[float] = set()

    def on_update(_: object) -> None:
        greeks = ticker.modelGreeks
        if greeks is not None and greeks.undPrice is not None:
            seen.add(greeks.undPrice)

    ticker.updateEvent += on_update
    await eventually(lambda: len(seen) >= 3, timeout=5)
    assert "mkt_data" in sim.subscriptions()


async def test_delayed_option_quotes_use_delayed_computation_ticks(ib: ib_async.IB) -> None:
    ib.reqMarketDataType(3)
    [put] = await ib.qualifyContractsAsync(Option("AAPL", "20270319", 210, "P", "SMART"))
    ticker = ib.reqMktData(put, "", False, False)
    await eventually(lambda: ticker.modelGreeks is not None and ticker.bidGreeks is not None)
    assert ticker.marketDataType == 3


async def test_snapshot_of_an_option_has_its_model_greeks(ib: ib_async.IB) -> None:
    [call] = await ib.qualifyContractsAsync(Option("AAPL", "20270115", 250, "C", "SMART"))
    [ticker] = await ib.reqTickersAsync(call)
    assert ticker.modelGreeks is not None
    assert ticker.modelGreeks.impliedVol is not None
    assert ticker.modelGreeks.impliedVol > 0


async def test_calculate_requests_invert_each_other(ib: ib_async.IB, sim: Simulator) -> None:
    [call] = await ib.qualifyContractsAsync(Option("AAPL", "20270219", 240, "C", "SMART"))
    priced = await ib.calculateOptionPriceAsync(call, 0.3, 231.0)
    assert priced is not None
    assert priced.optPrice is not None
    assert priced.impliedVol == 0.3
    assert priced.undPrice == 231.0
    assert 0.0 < priced.delta < 1.0
    implied = await ib.calculateImpliedVolatilityAsync(call, priced.optPrice, 231.0)
    assert implied is not None
    assert implied.impliedVol == pytest.approx(0.3, abs=1e-5)
    assert implied.delta == pytest.approx(priced.delta, abs=1e-4)
    await eventually(lambda: sim.request_count("cancel_calc_option_price") == 1)
    await eventually(lambda: sim.request_count("cancel_calc_implied_volat") == 1)


async def test_implied_vol_below_intrinsic_is_not_computed(ib: ib_async.IB) -> None:
    [call] = await ib.qualifyContractsAsync(Option("AAPL", "20270219", 210, "C", "SMART"))
    result = await ib.calculateImpliedVolatilityAsync(call, 5.0, 230.0)  # intrinsic is 20
    assert result is not None
    assert result.impliedVol is None
    assert result.delta is None
    assert result.optPrice == 5.0


async def test_calculate_on_a_stock_is_refused(ib: ib_async.IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    [stock] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    # ib_async waits 4 s after a 321 (it counts it as a warning): watch the error instead.
    ib.client.calculateOptionPrice(ib.client.getReqId(), stock, 0.3, 230.0, [])
    await eventually(lambda: errors == [321])


async def test_expired_expiries_leave_the_chain() -> None:
    after_first = datetime(2027, 1, 20, 15, 0, tzinfo=UTC)
    async with Simulator(port=0, speed=100, clock=clock_from(after_first)) as s:
        client = ib_async.IB()
        await client.connectAsync(s.host, s.port, clientId=1, timeout=5)
        try:
            chains = await client.reqSecDefOptParamsAsync("AAPL", "", "STK", 265598)
            assert tuple(chains[0].expirations) == AAPL_OPTION_EXPIRIES[1:]
        finally:
            client.disconnect()
