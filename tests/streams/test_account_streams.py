"""PnL, position PnL, account values and positions as streams."""

from __future__ import annotations

import asyncio

import ib_async
import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .helpers import AAPL, lines

ACCOUNT = "DU1234567"


async def test_pnl_updates_share_one_request(session: ibflow.Session, sim: Simulator) -> None:
    async with session.pnl_updates() as one, session.pnl_updates(ACCOUNT) as two:
        first = await anext(one)
        assert isinstance(first, ibflow.PnL)
        assert first.account == ACCOUNT
        assert first.daily is None or first.daily == first.daily
        assert isinstance(await anext(two), ibflow.PnL)
        assert lines(sim, "pnl") == 1
    await eventually(lambda: lines(sim, "pnl") == 0)
    assert sim.request_count("cancel_pnl") == 1


async def test_position_pnl_updates(session: ibflow.Session, sim: Simulator) -> None:
    async with session.position_pnl_updates(AAPL) as updates:
        item = await anext(updates)
        assert isinstance(item, ibflow.PositionPnL)
        assert item.con_id == (await session.quote(AAPL)).contract.con_id
        assert item.position == 100
    await eventually(lambda: lines(sim, "pnl_single") == 0)


async def test_pnl_for_an_unknown_account_raises(session: ibflow.Session) -> None:
    async with session.pnl_updates("DU0000000") as updates:
        with pytest.raises(ibflow.RequestError):
            await anext(updates)


async def test_account_values_and_positions_follow_a_fill(
    session: ibflow.Session, sim: Simulator
) -> None:
    async with session.account_updates(ACCOUNT) as values, session.position_updates() as positions:
        await asyncio.sleep(0.05)
        # Another API client trades; TWS pushes the new position and values to every client.
        other = ib_async.IB()
        await other.connectAsync(sim.host, sim.port, clientId=7)
        try:
            contract = ib_async.Stock("AAPL", "SMART", "USD")
            await other.qualifyContractsAsync(contract)
            other.placeOrder(contract, ib_async.MarketOrder("BUY", 10))
            async with asyncio.timeout(5):
                position = await anext(positions)
                while not (
                    isinstance(position, ibflow.Position) and position.contract.symbol == "AAPL"
                ):
                    position = await anext(positions)
            assert position.quantity == 110
            value = await anext(values)
            assert isinstance(value, ibflow.AccountValue)
            assert value.account == ACCOUNT
        finally:
            other.disconnect()
        assert values.statistics().dropped == 0


async def test_account_streams_send_nothing_and_validate(
    session: ibflow.Session, sim: Simulator
) -> None:
    before = len(sim.requests)
    async with session.account_updates(), session.position_updates():
        pass
    assert len(sim.requests) == before
    with pytest.raises(ibflow.InvalidRequest, match="account"):
        session.pnl_updates(42)  # type: ignore[arg-type]
