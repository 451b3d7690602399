"""Symbol search and market rules over real ib_async."""

from __future__ import annotations

import asyncio

import ib_async
from ib_async import Option, Stock

from ibflow.sim import Scenario, Simulator
from ibflow.sim._rules import increment_at, increments
from ibflow.sim._symbols import MAX_MATCHES, matching_symbols
from ibflow.testing import eventually


async def test_search_finds_symbols_and_names(ib: ib_async.IB) -> None:
    found = await ib.reqMatchingSymbolsAsync("appl")
    assert found is not None
    [apple] = found
    assert (apple.contract.symbol, apple.contract.secType) == ("AAPL", "STK")
    assert apple.contract.conId == 265598
    assert apple.contract.primaryExchange == "NASDAQ"
    assert apple.derivativeSecTypes == ["OPT"]
    assert apple.contract.description == "APPLE INC"
    await asyncio.sleep(0.02)
    found = await ib.reqMatchingSymbolsAsync("S")
    assert found is not None
    assert [d.contract.symbol for d in found] == ["SPY", "SPX"]
    assert found[1].contract.secType == "IND"


async def test_a_second_search_within_a_second_is_refused(ib: ib_async.IB) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    ib.client.reqMatchingSymbols(101, "MSFT")
    ib.client.reqMatchingSymbols(102, "MSFT")
    await eventually(lambda: errors)
    assert errors == [(102, 321)]
    await asyncio.sleep(0.02)  # one second at speed 100
    assert await ib.reqMatchingSymbolsAsync("MSFT")


def test_search_ranks_exact_then_prefix_then_name_and_stops_at_16() -> None:
    universe = Scenario.default().universe()
    assert [i.symbol for i, _ in matching_symbols(universe, "spy")] == ["SPY"]
    assert matching_symbols(universe, "  ") == []
    assert len(matching_symbols(universe, "I")) <= MAX_MATCHES
    names = [i.symbol for i, _ in matching_symbols(universe, "T")]
    assert names[:2] == ["TSLA", "TLT"]  # symbols first, then names with a word "T…"


async def test_every_rule_id_of_the_details_resolves(ib: ib_async.IB) -> None:
    for contract in (
        Stock("AAPL", "SMART", "USD"),
        Option("AAPL", "20270115", 230, "C", "SMART"),
        ib_async.Forex("USDJPY"),
        ib_async.Future("ES", "202703", "CME"),
    ):
        [details] = await ib.reqContractDetailsAsync(contract)
        ids = details.marketRuleIds.split(",")
        assert len(ids) == len(details.validExchanges.split(","))
        assert len(set(ids)) == 1
        grid = await ib.reqMarketRuleAsync(int(ids[0]))
        assert grid is not None
        assert grid[0].lowEdge == 0.0
        assert grid[0].increment == details.minTick


async def test_option_rule_has_two_levels_and_quotes_follow_it(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    [call] = await ib.qualifyContractsAsync(Option("AAPL", "20270319", 210, "C", "SMART"))
    [details] = await ib.reqContractDetailsAsync(call)
    grid = await ib.reqMarketRuleAsync(int(details.marketRuleIds.split(",")[0]))
    assert grid is not None
    assert [(p.lowEdge, p.increment) for p in grid] == [(0.0, 0.01), (3.0, 0.05)]
    ticker = ib.reqMktData(call, "", False, False)
    await eventually(lambda: ticker.bid == ticker.bid and ticker.ask == ticker.ask)
    inst = ib_sim.universe.by_con_id(call.conId)
    assert inst is not None
    for price in (ticker.bid, ticker.ask):
        step = increment_at(increments(inst), price)
        assert abs(price / step - round(price / step)) < 1e-6


async def test_an_unknown_rule_is_an_error(ib: ib_async.IB) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    ib.client.reqMarketRule(4242)
    await eventually(lambda: errors)
    assert errors == [(-1, 321)]
