"""Session lifecycle, observation (state changes, notices, statistics) and the request router."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from session_helpers import states_until

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

MakeSession = Callable[..., ibflow.Session]
S = ibflow.ConnectionState


async def test_await_connect_returns_a_ready_session(sim: Simulator) -> None:
    session = await ibflow.connect(sim.host, sim.port, timeout=2.0, heartbeat_interval=None)
    try:
        assert isinstance(session, ibflow.Session)
        assert session.state is S.READY
    finally:
        await session.aclose()
    assert session.state is S.CLOSED


async def test_async_with_connect_closes_on_exit(sim: Simulator) -> None:
    async with ibflow.connect(sim.host, sim.port, timeout=2.0) as session:
        assert session.state is S.READY
        client_id = session.client_id
        assert [c.client_id for c in sim.clients] == [client_id]
    assert session.state is S.CLOSED
    await eventually(lambda: not sim.clients)


async def test_a_closed_session_cannot_be_reopened(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    await session.aclose()
    await session.aclose()  # twice is fine
    with pytest.raises(ibflow.SessionClosedError, match="cannot be reopened"):
        await session.connect()
    with pytest.raises(ibflow.SessionClosedError):
        async with session:
            pass


async def test_using_a_session_before_connect_is_a_clear_error(make_session: MakeSession) -> None:
    session = make_session()
    assert session.state is S.DISCONNECTED
    for read in (lambda: session.accounts, lambda: session.server_version):
        with pytest.raises(ibflow.SessionClosedError, match=r"not connected yet|has not connected"):
            read()
    with pytest.raises(ibflow.SessionClosedError, match="connect"):
        await session._core.request("executions", session._core.adapter.start_executions)


async def test_connect_on_a_ready_session_is_a_no_op(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    assert await session.connect() is session
    assert await session.connect() is session
    assert await session is session
    assert len(sim.clients) == 1
    assert session.statistics().connects == 1


async def test_state_changes_follow_the_lifecycle_and_end_after_closed(
    make_session: MakeSession,
) -> None:
    session = make_session()
    feed = session.state_changes()
    await session.connect()
    await session.aclose()
    changes = [(c.previous, c.current) async for c in feed]
    assert changes == [
        (S.DISCONNECTED, S.CONNECTING),
        (S.CONNECTING, S.SYNCING),
        (S.SYNCING, S.READY),
        (S.READY, S.CLOSED),
    ]
    # A feed asked for after the close is already over.
    assert [c async for c in session.state_changes()] == []


async def test_failed_connect_reports_disconnected(
    sim: Simulator, make_session: MakeSession
) -> None:
    sim.silence_handshake(True)
    session = make_session(timeout=0.2)
    feed = session.state_changes()
    with pytest.raises(ibflow.HandshakeTimeout):
        await session.connect()
    changes = await states_until(feed, S.DISCONNECTED)
    assert [c.current for c in changes] == [S.CONNECTING, S.DISCONNECTED]
    assert "handshake" in changes[-1].reason


async def test_notices_are_typed_and_never_raised(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    notices = session.notices()  # before connect: the farm notices follow the handshake
    await session.connect()
    sim.notice(10167, "Requested market data is not subscribed. Displaying delayed market data.")
    sim.notice(2110, "Connectivity between TWS and server is broken. It will be restored.")
    seen: list[ibflow.Notice] = []
    async with asyncio.timeout(3):
        async for notice in notices:
            seen.append(notice)
            if notice.code == 2110:
                break
    by_code = {n.code: n for n in seen}
    for code in (2104, 2106, 2158):
        assert by_code[code].severity is ibflow.Severity.INFO
        assert by_code[code].req_id == -1
    assert by_code[10167].severity is ibflow.Severity.WARNING
    assert "delayed" in by_code[10167].message
    assert by_code[2110].severity is ibflow.Severity.WARNING
    assert session.state is S.READY
    assert session.statistics().notices >= 5


async def test_notices_end_when_the_session_closes(make_session: MakeSession) -> None:
    session = make_session()
    await session.connect()
    notices = session.notices()

    async def drain() -> list[ibflow.Notice]:
        return [n async for n in notices]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0)
    await session.aclose()
    async with asyncio.timeout(2):
        assert await task == []


async def test_statistics_count_traffic_and_heartbeats(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(heartbeat_interval=1.0, heartbeat_timeout=1.0)
    before = session.statistics()
    assert before.connects == 0
    assert before.uptime == 0.0
    await session.connect()
    await eventually(lambda: session.statistics().heartbeats >= 1, timeout=4)
    stats = session.statistics()
    assert stats.state is S.READY
    assert stats.connects == 1
    assert stats.reconnects == 0
    assert stats.messages_in > 0
    assert stats.messages_out >= 7  # startApi + the start-up sync requests + a heartbeat
    assert stats.bytes_in > 0
    assert stats.last_heartbeat_rtt is not None
    assert stats.heartbeat_failures == 0
    assert stats.time_in_state[S.READY] > 0
    assert stats.active_subscriptions == 0
    assert stats.in_flight_requests == 0
    assert sim.request_count("current_time") >= 1


async def test_two_sessions_in_one_process(sim: Simulator, make_session: MakeSession) -> None:
    first = make_session(client_id=1)
    second = make_session(client_id=2)
    await asyncio.gather(first.connect(), second.connect())
    assert sorted(c.client_id for c in sim.clients) == [1, 2]
    assert first._core.adapter is not second._core.adapter
    await first.aclose()
    await eventually(lambda: [c.client_id for c in sim.clients] == [2])
    assert second.state is S.READY
    assert await second._core.request("executions", second._core.adapter.start_executions) >= 0


async def test_two_automatic_client_ids_differ(sim: Simulator) -> None:
    a = session_for(sim, client_id=None)
    b = session_for(sim, client_id=None)
    assert a.client_id != b.client_id
    async with a, b:
        assert len(sim.clients) == 2


# -- the request router (the hook later issues build requests on) ------------------------------


async def test_request_answer_comes_back(sim: Simulator, make_session: MakeSession) -> None:
    session = make_session()
    await session.connect()
    count = await session._core.request("executions", session._core.adapter.start_executions)
    assert count == 0
    assert sim.request_count("executions") == 2  # start-up sync + ours


async def test_request_error_is_routed_by_request_id_and_typed(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    sim.fail_next("executions", 321, "Error validating request.-'bY' : cause - simulated")
    with pytest.raises(ibflow.RequestError) as caught:
        await session._core.request("executions", session._core.adapter.start_executions)
    err = caught.value
    assert err.code == 321
    assert err.req_id > 0
    assert "simulated" in err.message
    assert session.statistics().in_flight_requests == 0
    # The session is still usable afterwards.
    assert await session._core.request("executions", session._core.adapter.start_executions) == 0


async def test_request_timeout_sends_the_cancel_once(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    sim.ignore("executions", True)
    cancelled: list[int] = []
    with pytest.raises(ibflow.RequestTimeout) as caught:
        await session._core.request(
            "executions",
            session._core.adapter.start_executions,
            timeout=0.2,
            cancel=cancelled.append,
        )
    assert isinstance(caught.value, TimeoutError)
    assert len(cancelled) == 1
    assert session.statistics().in_flight_requests == 0


async def test_cancelled_request_cleans_up(sim: Simulator, make_session: MakeSession) -> None:
    session = make_session()
    await session.connect()
    sim.ignore("executions", True)
    cancelled: list[int] = []
    task = asyncio.create_task(
        session._core.request(
            "executions",
            session._core.adapter.start_executions,
            timeout=None,
            cancel=cancelled.append,
        )
    )
    await eventually(lambda: session.statistics().in_flight_requests == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.statistics().in_flight_requests == 0
    assert len(cancelled) == 1


async def test_in_flight_request_fails_with_connection_lost(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(reconnect=None)
    await session.connect()
    sim.ignore("executions", True)
    task = asyncio.create_task(
        session._core.request("executions", session._core.adapter.start_executions, timeout=None)
    )
    await eventually(lambda: session.statistics().in_flight_requests == 1)
    sim.drop_connections()
    with pytest.raises(ibflow.ConnectionLost):
        await task
    with pytest.raises(ibflow.ConnectionLost, match="losing its connection"):
        await session._core.request("executions", session._core.adapter.start_executions)


async def test_aclose_fails_in_flight_requests_with_session_closed(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    sim.ignore("executions", True)
    task = asyncio.create_task(
        session._core.request("executions", session._core.adapter.start_executions, timeout=None)
    )
    await eventually(lambda: session.statistics().in_flight_requests == 1)
    await session.aclose()
    with pytest.raises(ibflow.SessionClosedError):
        await task


async def test_invalid_arguments_are_typed_errors() -> None:
    with pytest.raises(ibflow.InvalidRequest, match="0 does not mean forever"):
        ibflow.Session(timeout=0)
    with pytest.raises(ibflow.InvalidRequest, match="at least 1"):
        ibflow.Session(heartbeat_interval=0.5)
    with pytest.raises(ibflow.InvalidRequest, match="ReconnectPolicy"):
        ibflow.Session(reconnect=5)  # type: ignore[arg-type]
    with pytest.raises(ibflow.ConfigError) as caught:
        ibflow.Session(port=70000)
    assert caught.value.variable == "port"
    assert isinstance(caught.value, ValueError)


async def test_a_session_is_bound_to_its_event_loop(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()

    def other_loop() -> None:
        asyncio.run(session.connect())

    with pytest.raises(ibflow.InvalidRequest, match="another event loop"):
        await asyncio.to_thread(other_loop)
