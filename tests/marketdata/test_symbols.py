"""Symbol search (paced to one a second) and market rules over the wire."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow.sim import Simulator


async def test_search_finds_a_symbol_with_its_derivatives(session: ibflow.Session) -> None:
    found = await session.search("appl")
    [aapl] = [d for d in found if d.contract.symbol == "AAPL"]
    assert aapl.contract.con_id == 265598
    assert aapl.contract.sec_type is ibflow.SecType.STOCK
    assert "OPT" in aapl.derivative_sec_types
    assert aapl.description


async def test_searches_are_paced_to_one_a_second(session: ibflow.Session, sim: Simulator) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    first, second = await asyncio.gather(session.search("MSFT"), session.search("SPY"))
    elapsed = loop.time() - started
    assert first
    assert second  # not refused with 321: the second waited its turn
    assert elapsed >= 1.0
    assert sim.request_count("matching_symbols") == 2
    with pytest.raises(ibflow.InvalidRequest, match="search"):
        await session.search("  ")


async def test_market_rule_gives_the_increment_at_each_price(
    session: ibflow.Session, sim: Simulator
) -> None:
    [details] = await session.contract_details(ibflow.Option("AAPL", "20270115", 230, "C"))
    rule = await session.market_rule(details.market_rule_ids[0])
    assert rule.rule_id == details.market_rule_ids[0]
    assert rule.increments[0].low_edge == 0.0
    assert rule.increment_at(2.5) == 0.01
    assert rule.increment_at(3.0) == 0.05
    assert rule.increment_at(12.0) == 0.05
    assert await session.market_rule(rule.rule_id) is rule  # cached for the session
    assert sim.request_count("market_rule") == 1


async def test_an_unknown_market_rule_is_a_typed_error(session: ibflow.Session) -> None:
    with pytest.raises(ibflow.RequestError) as caught:
        await session.market_rule(4242, timeout=2)
    assert caught.value.code == 321
    with pytest.raises(ibflow.InvalidRequest, match="rule_id"):
        await session.market_rule(-1)


async def test_orders_are_checked_against_the_tick_at_their_price(
    session: ibflow.Session,
) -> None:
    call = ibflow.Option("AAPL", "20270115", 230, "C")  # 0.01 below 3.00, 0.05 from 3.00
    with pytest.raises(ibflow.InvalidRequest, match=r"minimum tick 0\.05 at this price"):
        await session.what_if(call, ibflow.LimitOrder("BUY", 1, 3.51))
    assert await session.what_if(call, ibflow.LimitOrder("BUY", 1, 2.51))
    assert await session.what_if(call, ibflow.LimitOrder("BUY", 1, 3.55))
