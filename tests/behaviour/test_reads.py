"""Reads, history and typed errors: the same answers from a Session and a RemoteSession."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import ibflow
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")
NEW_YORK = ZoneInfo("America/New_York")
WEDNESDAY = datetime(2024, 3, 6, 15, 0, tzinfo=NEW_YORK)  # bars that are done
PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)


async def test_the_link_and_the_account(api: ibflow.SessionLike) -> None:
    assert api.state is ibflow.ConnectionState.READY
    assert api.accounts == ("DU1234567",)
    assert api.is_paper
    positions = {
        (p.contract.symbol, p.contract.sec_type): p.quantity for p in await api.positions()
    }
    assert positions[("AAPL", ibflow.SecType.STOCK)] == 100
    summary = await api.account_summary()
    assert isinstance(summary, ibflow.AccountSummary)
    assert all(isinstance(v, ibflow.AccountValue) for v in await api.account_values())
    assert any(item.contract.symbol == "AAPL" for item in await api.portfolio())
    assert isinstance(await api.pnl(), ibflow.PnL)
    clock = await api.current_time()
    assert clock.tzinfo is not None
    stats = api.statistics()
    assert stats.state is ibflow.ConnectionState.READY
    assert stats.connects == 1
    assert stats.messages_in > 0


async def test_contracts(api: ibflow.SessionLike) -> None:
    [aapl] = await api.qualify(AAPL)
    assert aapl.con_id == 265598
    [details] = await api.contract_details(AAPL)
    assert details.contract.con_id == 265598
    with pytest.raises(ibflow.ContractNotFound) as missing:
        await api.qualify(ibflow.Stock("NOSUCHTHING"))
    assert missing.value.code == 200
    with pytest.raises(ibflow.InvalidRequest, match="account"):
        await api.positions("NOT-AN-ACCOUNT")


async def test_history_head_timestamp_and_download(api: ibflow.SessionLike) -> None:
    bars = await api.history(AAPL, period="1h", duration="2 D", end=WEDNESDAY)
    assert len(bars) == 13  # Tuesday's regular session, and Wednesday's until 15:00
    assert all(isinstance(b.time.tzinfo, ZoneInfo) for b in bars)  # the instrument's zone
    assert [b.time for b in bars] == sorted(b.time for b in bars)
    head = await api.head_timestamp(AAPL)
    assert head.tzinfo is not None
    assert head < WEDNESDAY
    downloaded = await api.download(
        AAPL, start=WEDNESDAY - timedelta(days=2), end=WEDNESDAY, period="1h", progress=False
    )
    assert {b.time for b in bars} <= {b.time for b in downloaded}
    assert all(WEDNESDAY - timedelta(days=2) <= b.time < WEDNESDAY for b in downloaded)
    with pytest.raises(ibflow.InvalidRequest, match="period"):
        await api.history(AAPL, period="7 parsecs")


async def test_typed_errors_keep_their_fields(api: ibflow.SessionLike, sim: Simulator) -> None:
    sim.fail_next("historical_data", 354, "Requested market data is not subscribed.")
    with pytest.raises(ibflow.MarketDataError) as refused:
        await api.history(AAPL, period="1h", duration="1 D")
    assert refused.value.code == 354
    assert refused.value.req_id > 0
    sim.fail_next("historical_data", 162, PACING_TEXT)
    with pytest.raises(ibflow.PacingViolation) as paced:
        await api.history(ibflow.Stock("MSFT"), period="5s", duration="600 S")
    assert paced.value.code == 162
    assert paced.value.retry_after is not None
    assert paced.value.retry_after >= 0.15  # the identical-request window at TEST_SPEED
