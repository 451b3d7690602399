"""Staged connect against the simulator: every stage's typed error from a real fault."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

MakeSession = Callable[..., ibflow.Session]


def _free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connect_reaches_ready_and_reports_the_link(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(client_id=11)
    async with session:
        assert session.state is ibflow.ConnectionState.READY
        assert session.accounts == ("DU1234567",)
        assert session.server_version == 178
        assert session.is_paper is True
        assert session.client_id == 11
        assert [c.client_id for c in sim.clients] == [11]
    assert session.state is ibflow.ConnectionState.CLOSED
    await eventually(lambda: not sim.clients)


async def test_closed_port_raises_connect_refused() -> None:
    port = _free_port()
    session = ibflow.Session("127.0.0.1", port, timeout=2.0)
    with pytest.raises(ibflow.ConnectRefused) as caught:
        await session.connect()
    err = caught.value
    assert isinstance(err, ibflow.ConnectError)
    assert isinstance(err, ConnectionRefusedError)
    assert (err.host, err.port) == ("127.0.0.1", port)
    assert "7497" in str(err)
    assert "running" in str(err)
    assert session.state is ibflow.ConnectionState.DISCONNECTED
    await session.aclose()


async def test_silent_handshake_raises_handshake_timeout(
    sim: Simulator, make_session: MakeSession
) -> None:
    sim.silence_handshake(True)
    session = make_session(timeout=0.3)
    with pytest.raises(ibflow.HandshakeTimeout) as caught:
        await session.connect()
    assert isinstance(caught.value, TimeoutError)
    assert "Enable ActiveX and Socket Clients" in str(caught.value).replace("'", "")
    assert "trusted" in str(caught.value)
    assert session.state is ibflow.ConnectionState.DISCONNECTED


async def test_accept_then_close_raises_connection_closed_early(
    sim: Simulator, make_session: MakeSession
) -> None:
    sim.accept_then_close(True)
    session = make_session(timeout=2.0)
    with pytest.raises(ibflow.ConnectionClosedEarly) as caught:
        await session.connect()
    assert not isinstance(caught.value, ibflow.ClientIdInUse)
    assert "gateway behind it is not" in str(caught.value)


async def test_explicit_client_id_in_use_raises_fast_without_timeout(
    sim: Simulator, make_session: MakeSession
) -> None:
    occupant = make_session(client_id=7)
    await occupant.connect()
    # timeout=None: ib_async alone would wait forever for a 326; ibflow must fail at once.
    # The outer guard only keeps a regression from hanging the suite.
    second = make_session(client_id=7, timeout=None)
    async with asyncio.timeout(10):
        with pytest.raises(ibflow.ClientIdInUse) as caught:
            await second.connect()
    err = caught.value
    assert err.client_id == 7
    assert "client_id=7" in str(err)
    assert "326" in str(err)
    assert second.state is ibflow.ConnectionState.DISCONNECTED
    assert occupant.state is ibflow.ConnectionState.READY


async def test_client_id_in_use_names_the_environment_variable(
    sim: Simulator, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    occupant = make_session(client_id=21)
    await occupant.connect()
    monkeypatch.setenv("IBFLOW_CLIENT_ID", "21")
    second = ibflow.Session(sim.host, sim.port, timeout=2.0, heartbeat_interval=None)
    with pytest.raises(ibflow.ClientIdInUse) as caught:
        await second.connect()
    assert "IBFLOW_CLIENT_ID=21" in str(caught.value)
    await second.aclose()


async def test_auto_client_id_in_use_retries_with_a_fresh_id(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()  # no client_id: an automatic one
    taken = session.client_id
    occupant = make_session(client_id=taken)
    await occupant.connect()
    await session.connect()
    assert session.state is ibflow.ConnectionState.READY
    assert session.client_id != taken
    assert sorted(c.client_id for c in sim.clients) == sorted([taken, session.client_id])


@pytest.mark.parametrize(
    ("kind", "part"),
    [
        ("positions", "positions"),
        ("open_orders", "open orders"),
        ("completed_orders", "completed orders"),
        ("account_updates", "account updates"),
        ("account_updates_multi", "account updates for DU***567"),
        ("executions", "executions"),
    ],
)
async def test_missing_sync_answer_raises_sync_timeout_naming_the_part(
    sim: Simulator, make_session: MakeSession, kind: str, part: str
) -> None:
    sim.ignore(kind, True)
    session = make_session(timeout=0.3)
    with pytest.raises(ibflow.SyncTimeout) as caught:
        await session.connect()
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.part == part
    assert part in str(caught.value)
    assert session.state is ibflow.ConnectionState.DISCONNECTED
    await eventually(lambda: not sim.clients)


async def test_sync_timeout_repeats_what_tws_said(
    sim: Simulator, make_session: MakeSession
) -> None:
    sim.fail_next("positions", 321, "Error validating request.-'bX' : cause - simulated")
    session = make_session(timeout=0.3)
    with pytest.raises(ibflow.SyncTimeout) as caught:
        await session.connect()
    assert caught.value.part == "positions"
    assert "321" in str(caught.value)


async def test_api_that_never_starts_raises_sync_timeout_api_start(
    sim: Simulator, make_session: MakeSession
) -> None:
    sim.stall(True)  # the handshake is answered, managedAccounts/nextValidId are held back
    session = make_session(timeout=0.3)
    with pytest.raises(ibflow.SyncTimeout) as caught:
        await session.connect()
    assert caught.value.part == "API start"
    assert "server version 178" in str(caught.value)


async def test_account_not_managed_by_the_login_is_a_config_error(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(account="DU7777777")
    with pytest.raises(ibflow.ConfigError) as caught:
        await session.connect()
    assert caught.value.variable == "account"
    assert "DU***777" in str(caught.value)
    assert "DU7777777" not in str(caught.value)
    await eventually(lambda: not sim.clients)


async def test_connect_with_an_account_syncs_that_account(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(account="DU1234567")
    await session.connect()
    assert session.state is ibflow.ConnectionState.READY
    assert sim.request_count("account_updates") == 1


async def test_cancelled_connect_leaves_no_socket_and_can_be_retried(
    sim: Simulator, make_session: MakeSession
) -> None:
    sim.silence_handshake(True)
    session = make_session(timeout=None)
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.2):
            await session.connect()
    # The caller's own timeout wins: a plain TimeoutError, not one of ibflow's stage errors.
    assert type(caught.value) is TimeoutError
    assert session.state is ibflow.ConnectionState.DISCONNECTED
    sim.silence_handshake(False)
    await session.connect()
    assert session.state is ibflow.ConnectionState.READY
    assert [c.client_id for c in sim.clients] == [session.client_id]


async def test_connect_sends_the_start_up_sync_like_ib_async(
    sim: Simulator, make_session: MakeSession
) -> None:
    await make_session(client_id=3).connect()
    for kind in ("positions", "open_orders", "completed_orders", "executions"):
        assert sim.request_count(kind) == 1, kind
    assert sim.request_count("account_updates_multi") == 1


async def test_readonly_session_skips_the_order_sync(
    sim: Simulator, make_session: MakeSession
) -> None:
    await make_session(readonly=True).connect()
    assert sim.request_count("open_orders") == 0
    assert sim.request_count("completed_orders") == 0
    assert sim.request_count("positions") == 1


async def test_all_open_orders_syncs_every_client_s_orders(
    sim: Simulator, make_session: MakeSession
) -> None:
    await make_session(all_open_orders=True).connect()
    assert sim.request_count("all_open_orders") == 1
    assert sim.request_count("open_orders") == 0


async def test_environment_port_is_used_when_no_argument_is_given(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWS_PORT", "1")  # lower precedence, must lose
    monkeypatch.setenv("IB_PORT", str(sim.port))
    monkeypatch.setenv("IB_CLIENT_ID", "42")
    async with ibflow.Session(timeout=2.0, heartbeat_interval=None) as session:
        assert session.client_id == 42
        assert [c.client_id for c in sim.clients] == [42]


async def test_explicit_port_beats_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBFLOW_PORT", "1")
    async with session_for(sim) as session:
        assert session.state is ibflow.ConnectionState.READY


async def test_too_many_clients_is_a_connect_error_not_a_client_id_error() -> None:
    async with Simulator(port=0, max_clients=1) as sim:
        async with session_for(sim, client_id=1):
            second = session_for(sim, client_id=2)
            with pytest.raises(ibflow.ConnectError) as caught:
                await second.connect()
            assert not isinstance(caught.value, ibflow.ClientIdInUse)
            assert "502" in str(caught.value)
            assert "32" in str(caught.value)
            await second.aclose()
