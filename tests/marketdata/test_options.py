"""Options over the wire: chain → specs → qualify → quotes with greeks; the calculator."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = ibflow.Stock("AAPL")


async def test_chain_lists_dates_and_strikes_and_its_specs_qualify(
    session: ibflow.Session,
) -> None:
    chain = await session.option_chain(AAPL)
    assert chain.underlying.con_id == 265598
    assert "SMART" in chain.exchanges
    assert chain.trading_classes == ("AAPL",)
    assert chain.multiplier == 100.0
    assert chain.expirations == (date(2027, 1, 15), date(2027, 2, 19), date(2027, 3, 19))
    assert chain.strikes == (210.0, 220.0, 230.0, 240.0, 250.0)
    specs = chain.contracts(expiry=date(2027, 1, 15), strikes=[220, 230], right="C")
    assert [(c.expiry, c.strike, c.right) for c in specs] == [
        ("20270115", 220.0, ibflow.Right.CALL),
        ("20270115", 230.0, ibflow.Right.CALL),
    ]
    qualified = await session.qualify(*chain.contracts(expiry="20270219"))
    assert len(qualified) == 10
    assert all(c.con_id and c.sec_type is ibflow.SecType.OPTION for c in qualified)


async def test_chain_refuses_what_it_does_not_list(session: ibflow.Session) -> None:
    chain = await session.option_chain(AAPL)
    with pytest.raises(ibflow.InvalidRequest, match="strike 225"):
        chain.contracts(strikes=225)
    with pytest.raises(ibflow.InvalidRequest, match="expiry"):
        chain.contracts(expiry=date(2027, 1, 16))
    with pytest.raises(ibflow.InvalidRequest, match="right"):
        chain.contracts(right="X")
    with pytest.raises(ibflow.InvalidRequest, match="underlying"):
        await session.option_chain(chain.contracts(strikes=230)[0])


async def test_an_underlying_without_options_has_an_empty_chain(session: ibflow.Session) -> None:
    chain = await session.option_chain(ibflow.Stock("MSFT"))
    assert chain.expirations == ()
    assert chain.strikes == ()


async def test_option_quotes_carry_greeks_in_range_that_hold_parity(
    session: ibflow.Session,
) -> None:
    chain = await session.option_chain(AAPL)
    call, put = await session.qualify(*chain.contracts(expiry="20270115", strikes=230))
    assert call.right is ibflow.Right.CALL
    assert put.right is ibflow.Right.PUT
    quotes: dict[ibflow.Right, ibflow.Quote] = {}

    async def watch(contract: ibflow.Contract) -> None:
        async with session.quotes(contract) as stream:
            async for q in stream:
                if isinstance(q, ibflow.Quote) and q.greeks and q.bid_greeks and q.ask_greeks:
                    assert contract.right is not None
                    quotes[contract.right] = q
                    return

    async with asyncio.timeout(5):
        await asyncio.gather(watch(call), watch(put))
    for q in quotes.values():
        for g in (q.greeks, q.bid_greeks, q.ask_greeks):
            assert g is not None
            assert g.implied_vol is not None
            assert 0 < g.implied_vol < 2
            assert g.gamma is not None
            assert g.gamma > 0
            assert g.vega is not None
            assert g.vega > 0
            assert g.theta is not None
            assert g.theta < 0
            assert g.underlying_price is not None
            assert g.underlying_price > 0
        assert q.bid_greeks is not None
        assert q.bid_greeks.option_price == q.bid
        assert q.ask_greeks is not None
        assert q.ask_greeks.option_price == q.ask
    c, p = quotes[ibflow.Right.CALL].greeks, quotes[ibflow.Right.PUT].greeks
    assert c is not None
    assert p is not None
    assert c.delta is not None
    assert 0 < c.delta < 1
    assert p.delta is not None
    assert -1 < p.delta < 0
    assert c.delta - p.delta == pytest.approx(1.0, abs=0.05)
    assert c.option_price is not None
    assert p.option_price is not None
    assert c.underlying_price is not None
    assert p.underlying_price is not None
    # Put-call parity at zero rates: C - P = S - K (each on its own underlying price).
    spot = (c.underlying_price + p.underlying_price) / 2
    assert c.option_price - p.option_price == pytest.approx(spot - 230.0, abs=1.0)


async def test_an_option_snapshot_has_its_model_greeks(session: ibflow.Session) -> None:
    quote = await session.quote(ibflow.Option("AAPL", "20270115", 250, "C"))
    assert quote.greeks is not None
    assert quote.greeks.implied_vol is not None
    assert quote.greeks.implied_vol > 0


async def test_a_stock_quote_has_no_greeks(session: ibflow.Session) -> None:
    quote = await session.quote(AAPL)
    assert quote.greeks is None
    assert quote.bid_greeks is None


async def test_the_calculator_prices_and_inverts(session: ibflow.Session, sim: Simulator) -> None:
    [call] = await session.qualify(ibflow.Option("AAPL", "20270219", 240, "C"))
    priced = await session.option_price(call, 0.3, 231.0)
    assert priced.implied_vol == 0.3
    assert priced.underlying_price == 231.0
    assert priced.option_price is not None
    assert priced.option_price > 0
    assert priced.delta is not None
    assert 0 < priced.delta < 1
    implied = await session.implied_volatility(call, priced.option_price, 231.0)
    assert implied.implied_vol == pytest.approx(0.3, abs=1e-5)
    assert implied.delta == pytest.approx(priced.delta, abs=1e-4)
    # Each calculation is cancelled at TWS once answered.
    await eventually(lambda: sim.request_count("cancel_calc_option_price") == 1)
    await eventually(lambda: sim.request_count("cancel_calc_implied_volat") == 1)


async def test_a_price_below_intrinsic_has_no_implied_vol(session: ibflow.Session) -> None:
    put = ibflow.Option("AAPL", "20270219", 250, "P")
    implied = await session.implied_volatility(put, 1.0, 230.0)  # intrinsic is 20
    assert implied.implied_vol is None
    assert implied.delta is None
    assert implied.option_price == 1.0


async def test_calculator_refusals_are_typed(session: ibflow.Session, sim: Simulator) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="takes an option"):
        await session.option_price(AAPL, 0.3, 230.0)
    [call] = await session.qualify(ibflow.Option("AAPL", "20270115", 230, "C"))
    with pytest.raises(ibflow.InvalidRequest, match="volatility"):
        await session.option_price(call, -0.1, 230.0)
    sim.fail_next("calc_implied_volat", 321, "Error validating request.-'bA' : cause - test")
    with pytest.raises(ibflow.RequestError) as caught:
        await session.implied_volatility(call, 5.0, 230.0, timeout=2)
    assert caught.value.code == 321
