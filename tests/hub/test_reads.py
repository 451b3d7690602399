"""Reads through a hub answer what a direct Session answers; errors arrive typed."""

from __future__ import annotations

import pytest

import ibflow
from ibflow.hub import RemoteSession
from ibflow.testing import session_for

from .conftest import HubFactory

PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)


async def test_reads_match_a_direct_session(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory()
    async with (
        RemoteSession(nats_url, hub=hub.name, name="bot-a") as remote,
        session_for(sim, client_id=9) as direct,
    ):
        assert remote.state is ibflow.ConnectionState.READY
        assert remote.accounts == direct.accounts
        assert await remote.positions() == await direct.positions()
        assert await remote.account_summary() == await direct.account_summary()
        aapl = ibflow.Stock("AAPL")
        assert await remote.qualify(aapl) == await direct.qualify(aapl)
        assert await remote.contract_details(aapl) == await direct.contract_details(aapl)
        bars = await remote.history(aapl, period="1h", duration="2 D")
        direct_bars = await direct.history(aapl, period="1h", duration="2 D")
        assert bars
        assert bars == direct_bars
        # Same instants, and the same time zone (the instrument's), not just an offset.
        assert [b.time.tzinfo for b in bars] == [b.time.tzinfo for b in direct_bars]
        clock = await remote.current_time()
        assert clock.tzinfo is not None
        assert abs((clock - await direct.current_time()).total_seconds()) < 2


async def test_errors_arrive_as_the_same_typed_exceptions(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory()
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        with pytest.raises(ibflow.ContractNotFound) as missing:
            await remote.qualify(ibflow.Stock("NOSUCHTHING"))
        assert missing.value.code == 200
        with pytest.raises(ibflow.InvalidRequest, match="period"):
            await remote.history(ibflow.Stock("AAPL"), period="7 parsecs")
        with pytest.raises(ibflow.InvalidRequest, match="account"):
            await remote.positions("NOT-AN-ACCOUNT")
        sim.fail_next("historical_data", 354, "Requested market data is not subscribed.")
        with pytest.raises(ibflow.MarketDataError) as refused:
            await remote.history(ibflow.Stock("AAPL"), period="1h", duration="1 D")
        assert refused.value.code == 354
        assert refused.value.req_id > 0


async def test_pacing_violation_keeps_retry_after(hub_factory: HubFactory, nats_url: str) -> None:
    hub, sim = await hub_factory()
    async with RemoteSession(nats_url, hub=hub.name) as remote:
        sim.fail_next("historical_data", 162, PACING_TEXT)
        with pytest.raises(ibflow.PacingViolation) as paced:
            await remote.history(ibflow.Stock("MSFT"), period="5s", duration="600 S")
        assert paced.value.code == 162
        assert paced.value.retry_after is not None
        assert paced.value.retry_after >= 0.15  # the identical-request window at TEST_SPEED


async def test_no_hub_is_a_clear_connect_error(nats_url: str) -> None:
    with pytest.raises(ibflow.ConnectError, match="no hub named 'nobody'"):
        async with RemoteSession(nats_url, hub="nobody", timeout=0.5):
            pass


async def test_no_nats_server_is_a_connect_error() -> None:
    with pytest.raises(ibflow.ConnectError, match="NATS server"):
        async with RemoteSession("nats://127.0.0.1:1", hub="desk1", timeout=0.5):
            pass


async def test_closed_remote_session_refuses(hub_factory: HubFactory, nats_url: str) -> None:
    hub, _ = await hub_factory()
    remote = RemoteSession(nats_url, hub=hub.name)
    with pytest.raises(ibflow.SessionClosedError):
        await remote.positions()
    async with remote:
        pass
    assert remote.state is ibflow.ConnectionState.CLOSED
    with pytest.raises(ibflow.SessionClosedError):
        await remote.current_time()
