"""Reads through a hub answer what a direct Session answers; errors arrive typed."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import nats
import pytest

import ibflow
from ibflow.hub import RemoteSession
from ibflow.hub._protocol import Subjects, decode_error, dumps, loads
from ibflow.testing import session_for

from .conftest import HubFactory

WEDNESDAY = datetime(2024, 3, 6, 15, 0, tzinfo=ZoneInfo("America/New_York"))  # bars that are done
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
        bars = await remote.history(aapl, period="1h", duration="2 D", end=WEDNESDAY)
        direct_bars = await direct.history(aapl, period="1h", duration="2 D", end=WEDNESDAY)
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


async def test_every_served_read_answers_as_the_session(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, sim = await hub_factory({"speed": 1.0})
    aapl = ibflow.Stock("AAPL")
    async with (
        RemoteSession(nats_url, hub=hub.name) as remote,
        session_for(sim, client_id=9) as direct,
    ):
        assert await remote.account_values() == await direct.account_values()
        remote_portfolio, direct_portfolio = await remote.portfolio(), await direct.portfolio()
        assert [p.contract for p in remote_portfolio] == [p.contract for p in direct_portfolio]
        assert (await remote.pnl()).account == (await direct.pnl()).account
        assert await remote.head_timestamp(aapl) == await direct.head_timestamp(aapl)
        preview = await remote.what_if(aapl, ibflow.LimitOrder("BUY", 10, 150.0))
        assert preview == await direct.what_if(aapl, ibflow.LimitOrder("BUY", 10, 150.0))
        trade = await remote.place(aapl, ibflow.LimitOrder("BUY", 1, 150.0))
        [snapshot] = await remote.open_orders()
        assert snapshot.order_id == trade.order_id
        assert await trade.cancel() is ibflow.OrderStatus.CANCELLED
        completed = await remote.completed_orders()
        # The direct session is another client id: TWS shows it the order without its id.
        assert [(o.perm_id, o.status) for o in completed] == [
            (o.perm_id, o.status) for o in await direct.completed_orders()
        ]
        assert trade.order_id in [o.order_id for o in completed]


async def test_a_malformed_request_is_invalid_request(
    hub_factory: HubFactory, nats_url: str
) -> None:
    hub, _ = await hub_factory()
    nc = await nats.connect(nats_url)
    try:
        bad = {"name": "x", "args": [{"$r": "Contract", "f": {"colour": "red"}}]}
        reply = await nc.request(Subjects(hub.name).request("qualify"), dumps(bad), timeout=2)
        error = decode_error(loads(reply.data)["error"])
        assert isinstance(error, ibflow.InvalidRequest)
        assert "Contract" in str(error)
        reply = await nc.request(Subjects(hub.name).request("reboot"), dumps({"name": "x"}))
        assert "serves no method 'reboot'" in str(decode_error(loads(reply.data)["error"]))
    finally:
        await nc.close()
