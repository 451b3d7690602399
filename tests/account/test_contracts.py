"""Contract details and qualification through ``ibflow.Session``."""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow.sim import Simulator


async def test_contract_details_of_a_stock(session: ibflow.Session) -> None:
    [details] = await session.contract_details(ibflow.Stock("AAPL"))
    assert details.contract.con_id == 265598
    assert details.contract.primary_exchange == "NASDAQ"
    assert details.min_tick == pytest.approx(0.01)
    assert "SMART" in details.valid_exchanges
    assert details.order_types
    assert details.long_name == "APPLE INC"
    assert details.time_zone
    assert details.trading_hours
    assert details.liquid_hours
    assert details.industry == "Technology"


async def test_contract_details_of_a_future(session: ibflow.Session) -> None:
    [details] = await session.contract_details(ibflow.Future("ES", "20270319", "CME"))
    assert details.contract.sec_type is ibflow.SecType.FUTURE
    assert details.multiplier == 50.0
    assert details.min_tick == pytest.approx(0.25)
    assert details.under_con_id == 11004968
    assert details.valid_exchanges == ("CME", "QBALGO")


async def test_contract_details_of_an_option_chain(session: ibflow.Session) -> None:
    chain = await session.contract_details(
        ibflow.Contract(sec_type=ibflow.SecType.OPTION, symbol="AAPL")
    )
    assert len(chain) >= 30
    assert {d.contract.right for d in chain} == {ibflow.Right.CALL, ibflow.Right.PUT}


async def test_unknown_contract_names_it(session: ibflow.Session) -> None:
    with pytest.raises(ibflow.ContractNotFound, match="NOSUCH") as info:
        await session.contract_details(ibflow.Stock("NOSUCH"))
    assert info.value.code == 200
    with pytest.raises(ibflow.ContractNotFound, match="NOSUCH"):
        await session.qualify(ibflow.Stock("AAPL"), ibflow.Stock("NOSUCH"))


async def test_qualify_fills_in_con_ids_in_order(session: ibflow.Session) -> None:
    aapl, eurusd, es = await session.qualify(
        ibflow.Stock("AAPL"), ibflow.Forex("EURUSD"), ibflow.Future("ES", "202703", "CME")
    )
    assert aapl.con_id == 265598
    assert aapl.exchange == "SMART"
    assert aapl.primary_exchange == "NASDAQ"
    assert eurusd.con_id == 12087792
    assert eurusd.exchange == "IDEALPRO"
    assert es.con_id == 700_000_001
    assert es.multiplier == 50.0
    assert all(c.is_qualified for c in (aapl, eurusd, es))


async def test_qualify_is_cached_per_session(session: ibflow.Session, sim: Simulator) -> None:
    [first] = await session.qualify(ibflow.Stock("MSFT"))
    sent = sim.request_count("contract_data")
    [again] = await session.qualify(ibflow.Stock("MSFT"))
    [qualified_again] = await session.qualify(first)
    assert again == first == qualified_again
    assert sim.request_count("contract_data") == sent


async def test_concurrent_lookups_are_serialized_and_each_gets_its_answer(
    session: ibflow.Session,
) -> None:
    symbols = ["AAPL", "MSFT", "AMZN", "GOOGL", "TSLA", "NVDA", "META", "JPM"]
    results = await asyncio.gather(*(session.qualify(ibflow.Stock(s)) for s in symbols))
    assert [r[0].symbol for r in results] == symbols
    assert len({r[0].con_id for r in results}) == len(symbols)


async def test_ambiguous_contract_lists_the_candidates(
    session: ibflow.Session, sim: Simulator
) -> None:
    bare = ibflow.Contract(sec_type=ibflow.SecType.OPTION, symbol="AAPL")
    with pytest.raises(ibflow.AmbiguousContract, match="matches") as info:
        await session.qualify(bare)
    message = str(info.value)
    assert "AAPL 20270115 230C" in message
    assert "more" in message  # long lists are cut
    candidates = info.value.candidates  # type: ignore[attr-defined]
    assert len(candidates) >= 30
    assert all(isinstance(c, ibflow.Contract) and c.con_id for c in candidates)
    # A candidate qualifies on its own.
    [one] = await session.qualify(candidates[0])
    assert one.con_id == candidates[0].con_id


async def test_bad_input_is_refused_before_sending(session: ibflow.Session, sim: Simulator) -> None:
    sent = sim.request_count("contract_data")
    with pytest.raises(ibflow.InvalidRequest, match="at least one"):
        await session.qualify()
    with pytest.raises(ibflow.InvalidRequest, match="ibflow contract"):
        await session.qualify("AAPL")  # type: ignore[arg-type]
    with pytest.raises(ibflow.InvalidRequest, match="ibflow contract"):
        await session.contract_details({"symbol": "AAPL"})  # type: ignore[arg-type]
    assert sim.request_count("contract_data") == sent
