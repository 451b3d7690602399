"""Accounts, positions, summaries, PnL and contract details, driven by real ib_async."""

from __future__ import annotations

import ib_async
import pytest
from ib_async import Contract, Forex, Option, Stock

from ibflow.sim import Scenario, SimAccount, Simulator
from ibflow.testing import eventually

ACCOUNT = "DU1234567"


async def test_current_time_and_managed_accounts(ib: ib_async.IB, ib_sim: Simulator) -> None:
    now = await ib.reqCurrentTimeAsync()
    assert now.tzinfo is not None
    assert abs(now.timestamp() - ib_sim.clock()) < 5
    ib.client.reqManagedAccts()
    await eventually(lambda: ib_sim.request_count("managed_accts") == 1)


async def test_req_ids_answers_next_valid_id(ib: ib_async.IB, ib_sim: Simulator) -> None:
    seen: list[int] = []
    ib.wrapper.nextValidId = seen.append  # type: ignore[method-assign]
    ib.client.reqIds(1)
    await eventually(lambda: seen)
    assert seen[0] >= 1


async def test_positions_match_the_scenario(ib: ib_async.IB) -> None:
    positions = await ib.reqPositionsAsync()
    by_symbol = {p.contract.symbol: p for p in positions if p.contract.secType == "STK"}
    assert by_symbol["AAPL"].account == ACCOUNT
    assert by_symbol["AAPL"].position > 0
    assert by_symbol["AAPL"].avgCost > 0
    assert by_symbol["AAPL"].contract.conId == 265598


async def test_account_values_portfolio_and_time(ib: ib_async.IB) -> None:
    tags = {v.tag for v in ib.accountValues(ACCOUNT)}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds"} <= tags
    items = ib.portfolio(ACCOUNT)
    aapl = next(i for i in items if i.contract.symbol == "AAPL")
    assert aapl.marketPrice > 0
    assert aapl.marketValue == pytest.approx(aapl.marketPrice * aapl.position, rel=1e-6)


async def test_account_summary_and_ledger_tags(ib: ib_async.IB, ib_sim: Simulator) -> None:
    summary = await ib.accountSummaryAsync(ACCOUNT)
    tags = {v.tag for v in summary}
    assert {
        "NetLiquidation",
        "TotalCashValue",
        "BuyingPower",
        "AvailableFunds",
        "GrossPositionValue",
    } <= tags
    net_liq = next(v for v in summary if v.tag == "NetLiquidation")
    assert float(net_liq.value) > 0
    assert net_liq.currency == "USD"
    assert ib_sim.subscriptions().get("account_summary") == 1


async def test_account_updates_multi(ib: ib_async.IB, ib_sim: Simulator) -> None:
    values: list[ib_async.AccountValue] = []
    ib.accountValueEvent += values.append
    await ib.reqAccountUpdatesMultiAsync(ACCOUNT)  # returns once accountUpdateMultiEnd arrives
    assert any(v.tag == "NetLiquidation" and v.account == ACCOUNT for v in values)
    assert ib_sim.subscriptions()["account_updates_multi"] == 2  # start-up sync's and ours


async def test_pnl_and_pnl_single_update_periodically(ib: ib_async.IB, ib_sim: Simulator) -> None:
    pnl = ib.reqPnL(ACCOUNT)
    single = ib.reqPnLSingle(ACCOUNT, "", 265598)
    await eventually(lambda: pnl.unrealizedPnL == pnl.unrealizedPnL and single.position)
    assert single.position > 0
    updates: list[object] = []
    ib.pnlEvent += updates.append
    await eventually(lambda: len(updates) >= 2, timeout=5)
    assert ib_sim.subscriptions().get("pnl") == 1
    ib.cancelPnL(ACCOUNT)
    ib.cancelPnLSingle(ACCOUNT, "", 265598)
    await eventually(lambda: not ib_sim.subscriptions().get("pnl"))


async def test_contract_details_for_each_security_type(ib: ib_async.IB) -> None:
    [aapl] = await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
    assert aapl.contract.conId == 265598
    assert aapl.minTick == pytest.approx(0.01)
    assert aapl.contract.primaryExchange == "NASDAQ"
    assert "SMART" in aapl.validExchanges.split(",")
    assert aapl.tradingHours
    assert aapl.timeZoneId
    [eurusd] = await ib.reqContractDetailsAsync(Forex("EURUSD"))
    assert eurusd.contract.exchange == "IDEALPRO"
    futures = await ib.reqContractDetailsAsync(Contract(secType="FUT", symbol="ES"))
    assert futures
    assert futures[0].contract.multiplier == "50"
    chain = await ib.reqContractDetailsAsync(Option("AAPL", exchange="SMART"))
    assert len(chain) >= 2 * 3 * 5
    assert {d.contract.right for d in chain} == {"C", "P"}


async def test_unknown_contract_is_error_200(ib: ib_async.IB) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    assert await ib.reqContractDetailsAsync(Stock("NOSUCH", "SMART", "USD")) == []
    assert any(code == 200 for _, code in errors)


async def test_symbol_only_query_is_ambiguous(ib: ib_async.IB) -> None:
    details = await ib.reqContractDetailsAsync(Contract(symbol="AAPL"))
    assert len({d.contract.secType for d in details}) >= 2  # the stock and its options


async def test_qualify_fills_in_con_ids(ib: ib_async.IB) -> None:
    [msft] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    assert msft.conId == 272093


async def test_several_managed_accounts(ib_sim_factory) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario.default()
    scenario.accounts = [SimAccount("DU1111111"), SimAccount("DU2222222", cash=50_000.0)]
    scenario.positions = []
    sim = await ib_sim_factory(scenario=scenario)
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=3)
    try:
        assert ib.managedAccounts() == ["DU1111111", "DU2222222"]
        cash = {
            v.account: float(v.value)
            for v in ib.accountValues()
            if v.tag == "TotalCashValue" and v.currency == "USD"
        }
        assert cash == {
            "DU1111111": pytest.approx(1_000_000.0),
            "DU2222222": pytest.approx(50_000.0),
        }
    finally:
        ib.disconnect()
