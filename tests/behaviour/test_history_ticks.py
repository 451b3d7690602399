"""Historical ticks: pages of 1,000 fetched one after the other under the (hub's) pacer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import ibflow
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York
END = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


async def test_historical_ticks_are_paged_and_typed(
    api: ibflow.SessionLike, sim: Simulator
) -> None:
    trades = await api.historical_ticks(AAPL, start=START, count=2500)
    assert len(trades) == 2500
    assert all(isinstance(t, ibflow.TradeTick) and t.price > 0 for t in trades)
    assert trades[0].time >= START
    assert [t.time for t in trades] == sorted(t.time for t in trades)
    assert {t.contract.con_id for t in trades} == {265598}
    quotes = await api.historical_ticks(AAPL, end=END, count=1500, what="BID_ASK")
    assert len(quotes) == 1500
    assert all(isinstance(t, ibflow.BidAskTick) and t.time < END for t in quotes)
    assert [t.time for t in quotes] == sorted(t.time for t in quotes)
    assert sim.request_count("historical_ticks") == 5  # three pages, then two
    assert api.pacing_statistics().violations == 0


async def test_historical_ticks_errors_are_typed(api: ibflow.SessionLike, sim: Simulator) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="start"):
        await api.historical_ticks(AAPL, start=START, end=END)
    with pytest.raises(ibflow.InvalidRequest):
        await api.historical_ticks(AAPL, start=START, what="BID")
    with pytest.raises(ibflow.ContractNotFound):
        await api.historical_ticks(ibflow.Stock("NOSUCHTHING"), start=START, count=10)
    assert sim.request_count("historical_ticks") == 0
