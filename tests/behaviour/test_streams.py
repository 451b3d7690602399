"""Quotes, ticks, bars, PnL, account and position streams, and state changes: the same items
from a Session and a RemoteSession."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import ibflow
from ibflow.sim import Simulator

from ..streams.helpers import fast_clock

AAPL = ibflow.Stock("AAPL")


@pytest.fixture
def sim_options() -> dict[str, Any]:
    # An open market whatever the day the suite runs: on a Saturday the last half hour holds no
    # bars, at TWS as in the simulator.
    return {"clock": fast_clock(1.0)}


async def _first(stream: ibflow.Stream[Any], kind: type, timeout: float = 5.0) -> Any:
    """The first item of ``kind`` (a stream may start with a Gap after an outage)."""
    async with asyncio.timeout(timeout):
        async for item in stream:
            if isinstance(item, kind):
                return item
    raise AssertionError(f"the stream ended before a {kind.__name__}")


async def test_quotes_and_a_snapshot(api: ibflow.SessionLike, sim: Simulator) -> None:
    async with api.quotes(AAPL) as quotes:
        sim.push_quote("AAPL", bid=191.25, ask=191.27)
        async with asyncio.timeout(5):
            async for item in quotes:
                if isinstance(item, ibflow.Quote) and item.bid == 191.25:
                    break
        assert item.contract.con_id == 265598
        assert quotes.overflow is ibflow.Overflow.LATEST
    snapshot = await api.quote(AAPL)
    assert snapshot.contract.con_id == 265598
    assert snapshot.bid is not None
    assert abs(snapshot.bid - 191.25) < 2  # the market walks on at the test speed


@pytest.mark.parametrize(
    ("kind", "item_type"),
    [("last", ibflow.TradeTick), ("bid_ask", ibflow.BidAskTick), ("midpoint", ibflow.MidpointTick)],
)
async def test_ticks_of_each_kind(api: ibflow.SessionLike, kind: str, item_type: type) -> None:
    async with api.ticks(AAPL, kind) as ticks:  # type: ignore[call-overload]
        first = await _first(ticks, item_type)
        assert ticks.overflow is ibflow.Overflow.DROP_OLDEST
    assert first.contract.symbol == "AAPL"
    assert first.time.tzinfo is not None


async def test_realtime_and_live_bars(api: ibflow.SessionLike) -> None:
    async with api.realtime_bars(AAPL, "midpoint") as bars:
        bar = await _first(bars, ibflow.Bar)
        assert bar.low <= bar.open <= bar.high
        assert bars.overflow is ibflow.Overflow.ERROR
    async with api.live_bars(AAPL, "1m", "1800 S") as live:
        assert type(await _first(live, ibflow.Bar)) is ibflow.Bar
    with pytest.raises(ibflow.InvalidRequest, match="what"):
        async with api.realtime_bars(AAPL, "OPTION_VOLUME"):
            pass
    with pytest.raises(ibflow.ContractNotFound):
        async with api.ticks(ibflow.Stock("NOSUCHTHING")):
            pass


async def test_pnl_streams(api: ibflow.SessionLike) -> None:
    async with api.pnl_updates() as pnl:
        assert (await _first(pnl, ibflow.PnL)).account == "DU1234567"
    async with api.position_pnl_updates(AAPL) as position_pnl:
        assert (await _first(position_pnl, ibflow.PositionPnL)).position == 100
    async with api.pnl_updates("DU0000000") as unknown:
        with pytest.raises(ibflow.RequestError):
            await _first(unknown, ibflow.PnL)


async def test_account_and_position_updates_follow_a_fill(api: ibflow.SessionLike) -> None:
    async with api.account_updates() as values, api.position_updates() as positions:
        trade = await api.place(AAPL, ibflow.MarketOrder("BUY", 10))
        await trade.wait_filled()
        async with asyncio.timeout(5):
            while True:
                position = await _first(positions, ibflow.Position)
                if position.contract.symbol == "AAPL" and position.quantity == 110:
                    break
        value = await _first(values, ibflow.AccountValue)
        assert value.account == "DU1234567"


async def test_state_changes_through_an_outage(api: ibflow.SessionLike, sim: Simulator) -> None:
    async with api.state_changes() as changes:
        sim.drop_connections()
        async with asyncio.timeout(10):
            seen = []
            async for change in changes:
                seen.append(change.current)
                if change.current is ibflow.ConnectionState.READY:
                    break
    assert seen[0] is ibflow.ConnectionState.RECONNECTING
    assert api.state is ibflow.ConnectionState.READY
    assert api.statistics().reconnects == 1
    assert await api.current_time()


async def test_closing_ends_state_changes_and_refuses_calls(api: ibflow.SessionLike) -> None:
    async with api.state_changes() as changes:
        await api.aclose()
        async with asyncio.timeout(5):
            seen = [change async for change in changes]
    assert [c.current for c in seen][-1:] == [ibflow.ConnectionState.CLOSED]
    assert seen[-1].previous is ibflow.ConnectionState.READY
    assert api.state is ibflow.ConnectionState.CLOSED
    with pytest.raises(ibflow.SessionClosedError):
        await api.positions()
    await api.aclose()  # a second close is harmless
