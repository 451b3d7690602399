"""Positions, account values, summary, portfolio and PnL through ``ibflow.Session``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import ib_async
import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import ACCOUNT, SECOND, buy

AAPL_ID = 265598


async def test_positions_match_the_scenario(session: ibflow.Session) -> None:
    positions = await session.positions()
    by_symbol = {p.contract.display_name: p for p in positions}
    assert set(by_symbol) == {"AAPL", "MSFT", "SPY", "AAPL 20270115 230C"}
    aapl = by_symbol["AAPL"]
    assert aapl.account == ACCOUNT
    assert aapl.quantity == 100
    assert aapl.avg_cost == pytest.approx(180.0)
    assert aapl.contract.con_id == AAPL_ID
    assert aapl.contract.sec_type is ibflow.SecType.STOCK
    call = by_symbol["AAPL 20270115 230C"]
    assert call.contract.right is ibflow.Right.CALL
    assert call.avg_cost == pytest.approx(1250.0)


async def test_positions_are_fresh_from_tws(session: ibflow.Session, sim: Simulator) -> None:
    before = sim.request_count("positions")
    await session.positions()
    await session.positions()
    assert sim.request_count("positions") == before + 2


async def test_positions_portfolio_and_pnl_follow_a_fill(
    session: ibflow.Session, sim: Simulator, trader: ib_async.IB
) -> None:
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    before_pnl = await session.pnl()
    await buy(trader, AAPL_ID, 10)

    positions = {p.contract.con_id: p for p in await session.positions()}
    assert positions[AAPL_ID].quantity == 110
    items = {i.contract.con_id: i for i in await session.portfolio()}
    aapl = items[AAPL_ID]
    assert aapl.quantity == 110
    assert aapl.market_price is not None
    assert aapl.market_price > 0
    assert aapl.market_value == pytest.approx(aapl.market_price * 110, rel=1e-6)
    after_pnl = await session.pnl()
    assert after_pnl.account == ACCOUNT
    assert after_pnl.unrealized is not None
    assert after_pnl.unrealized != before_pnl.unrealized


async def test_a_new_position_appears_and_a_closed_one_goes(
    session: ibflow.Session, sim: Simulator, trader: ib_async.IB
) -> None:
    tlt = 15547841
    assert tlt not in {p.contract.con_id for p in await session.positions()}
    await buy(trader, tlt, 7)
    [new] = [p for p in await session.positions() if p.contract.con_id == tlt]
    assert new.quantity == 7
    order = ib_async.MarketOrder("SELL", 7)
    trade = trader.placeOrder(ib_async.Contract(conId=tlt, exchange="SMART"), order)
    while not trade.isDone():
        await trader.updateEvent
    assert tlt not in {p.contract.con_id for p in await session.positions()}


async def test_account_values(session: ibflow.Session) -> None:
    values = await session.account_values()
    assert {v.account for v in values} == {ACCOUNT}
    by_tag = {(v.tag, v.currency): v for v in values}
    net_liq = by_tag[("NetLiquidation", "USD")]
    assert net_liq.number is not None
    assert net_liq.number > 0
    assert {"TotalCashValue", "BuyingPower", "AvailableFunds"} <= {v.tag for v in values}
    assert all(v.model_code is None for v in values)


async def test_account_summary(session: ibflow.Session, sim: Simulator) -> None:
    summary = await session.account_summary()
    assert summary.account == ACCOUNT
    assert summary.currency == "USD"
    assert summary.net_liquidation is not None
    assert summary.net_liquidation > 0
    assert summary.total_cash == pytest.approx(1_000_000.0, rel=0.1)
    assert summary.buying_power is not None
    assert summary.available_funds is not None
    assert summary.gross_position_value is not None
    assert summary.gross_position_value > 0
    assert float(summary.tags["NetLiquidation"]) == summary.net_liquidation
    # One-off: the subscription is cancelled once the answer is in (IB allows only two).
    await eventually(lambda: not sim.subscriptions().get("account_summary"))


async def test_pnl_is_one_off(session: ibflow.Session, sim: Simulator) -> None:
    pnl = await session.pnl(ACCOUNT)
    assert pnl.account == ACCOUNT
    assert pnl.unrealized is not None
    await eventually(lambda: not sim.subscriptions().get("pnl"))


async def test_current_time_is_aware_and_close_to_the_sim_clock(
    session: ibflow.Session, sim: Simulator
) -> None:
    now = await session.current_time()
    assert now.tzinfo is not None
    assert now.utcoffset() == UTC.utcoffset(now)
    assert abs(now.timestamp() - sim.clock()) < 5
    assert isinstance(now, datetime)


async def test_unknown_account_names_the_managed_ones(session: ibflow.Session) -> None:
    for call in (
        session.positions,
        session.account_values,
        session.account_summary,
        session.portfolio,
        session.pnl,
    ):
        with pytest.raises(ibflow.InvalidRequest, match=r"DU\*\*\*567") as info:
            await call("DU0000000")
        assert "not managed" in str(info.value)


async def test_bad_timeout_is_refused_before_sending(
    session: ibflow.Session, sim: Simulator
) -> None:
    before = sim.request_count("positions")
    for bad in (0, -1, float("nan"), "5", True):
        with pytest.raises(ibflow.InvalidRequest, match="timeout"):
            await session.positions(timeout=bad)  # type: ignore[arg-type]
    assert sim.request_count("positions") == before


# -- several accounts ----------------------------------------------------------------------------


async def test_several_accounts(
    multi_sim: Simulator, make_session: Callable[..., ibflow.Session]
) -> None:
    async with make_session(multi_sim) as s:
        assert set(s.accounts) == {ACCOUNT, SECOND}
        everything = await s.positions()
        assert {(p.account, p.contract.symbol) for p in everything} == {
            (ACCOUNT, "AAPL"),
            (SECOND, "SPY"),
        }
        [spy] = await s.positions(SECOND)
        assert spy.account == SECOND
        assert spy.quantity == 20
        values = await s.account_values()
        assert {v.account for v in values} == {ACCOUNT, SECOND}
        cash = {
            v.account: v.number
            for v in await s.account_values(SECOND)
            if v.tag == "TotalCashValue" and v.currency == "USD"
        }
        assert cash == {SECOND: pytest.approx(50_000.0, rel=0.5)}
        items = await s.portfolio()
        assert {(i.account, i.contract.symbol) for i in items} == {
            (ACCOUNT, "AAPL"),
            (SECOND, "SPY"),
        }
        # No session account: the update stream is switched off again afterwards.
        await eventually(lambda: _last_account_updates(multi_sim) == ("0", SECOND))
        with pytest.raises(ibflow.InvalidRequest, match="several"):
            await s.account_summary()
        with pytest.raises(ibflow.InvalidRequest, match="several"):
            await s.pnl()
        second = await s.account_summary(SECOND)
        first = await s.account_summary(ACCOUNT)
        assert second.account == SECOND
        assert first.account == ACCOUNT
        assert second.net_liquidation != first.net_liquidation
        assert (await s.pnl(SECOND)).account == SECOND


async def test_session_account_is_the_default(
    multi_sim: Simulator, make_session: Callable[..., ibflow.Session]
) -> None:
    async with make_session(multi_sim, account=SECOND) as s:
        assert {p.account for p in await s.positions()} == {SECOND}
        assert (await s.account_summary()).account == SECOND
        assert {i.account for i in await s.portfolio(ACCOUNT)} == {ACCOUNT}
        # Reading another account's portfolio hands the update stream back afterwards.
        await eventually(lambda: _last_account_updates(multi_sim) == ("1", SECOND))
        assert {i.account for i in await s.portfolio()} == {SECOND}
        assert (await s.pnl()).account == SECOND


def _last_account_updates(sim: Simulator) -> tuple[str, str]:
    """(subscribe flag, account) of the session's latest reqAccountUpdates."""
    sent = [fields for cid, kind, fields in sim.requests if cid == 1 and kind == "account_updates"]
    return (sent[-1][2], sent[-1][3]) if sent else ("", "")
