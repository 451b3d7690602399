"""Reconnect, heartbeat, 1100/1101/1102 and the subscription registry, against real faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from session_helpers import states_until

import ibflow
from ibflow._registry import SubscriptionHandler
from ibflow.sim import Simulator
from ibflow.testing import eventually

MakeSession = Callable[..., ibflow.Session]
S = ibflow.ConnectionState


class RecordingSubscription:
    """A subscription as a stream module would register it; records what the session did."""

    kind = "test"

    def __init__(self, session: ibflow.Session) -> None:
        self.session = session
        self.resubscribed: list[tuple[bool, S]] = []
        self.link_downs = 0
        self.closed: list[ibflow.IBFlowError | None] = []
        self.errors: list[ibflow.RequestError] = []
        self.new_ids: list[int] = []

    async def resubscribe(self, fresh_link: bool) -> int | None:
        self.resubscribed.append((fresh_link, self.session.state))
        # ib_async restarts its request ids after a reconnect, so the new id may equal the old.
        new_id = self.session._core.adapter.next_req_id()
        self.new_ids.append(new_id)
        return new_id

    def on_error(self, error: ibflow.RequestError) -> None:
        self.errors.append(error)

    def on_link_down(self) -> None:
        self.link_downs += 1

    def on_close(self, error: ibflow.IBFlowError | None) -> None:
        self.closed.append(error)


def _register(session: ibflow.Session) -> tuple[RecordingSubscription, int]:
    sub = RecordingSubscription(session)
    handler: SubscriptionHandler = sub
    req_id = session._core.adapter.next_req_id()
    session._core.subscriptions.add(req_id, handler)
    return sub, req_id


async def test_reconnects_after_a_gateway_restart(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(client_id=5)
    await session.connect()
    ib_before = session._core.adapter._ib
    sub, _ = _register(session)
    feed = session.state_changes()

    restart = asyncio.create_task(sim.restart(down_for=0.3))
    changes = await states_until(feed, S.READY)
    await restart

    states = [c.current for c in changes]
    assert states[0] is S.RECONNECTING
    assert states[-2:] == [S.SYNCING, S.READY]
    assert session.state is S.READY
    assert session._core.adapter._ib is ib_before  # the same IB instance, kept across reconnects
    assert session.client_id == 5
    assert [c.client_id for c in sim.clients] == [5]
    stats = session.statistics()
    assert stats.reconnects == 1
    assert stats.reconnect_attempts >= 1
    assert stats.time_in_state[S.RECONNECTING] > 0
    # The registry re-issued the subscription on the new link, before READY, and keys it by
    # the id the subscription now uses.
    assert sub.link_downs == 1
    assert sub.resubscribed == [(True, S.SYNCING)]
    assert session._core.subscriptions.get(sub.new_ids[0]) is sub
    assert len(session._core.subscriptions) == 1
    # A fresh start-up sync ran on the new link.
    assert sim.request_count("positions") == 2
    # And requests work again.
    assert await session._core.request("executions", session._core.adapter.start_executions) == 0


async def test_without_reconnect_a_lost_link_closes_the_session(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(reconnect=None)
    await session.connect()
    sub, _ = _register(session)
    feed = session.state_changes()
    sim.drop_connections()
    changes = [c async for c in feed]  # ends after CLOSED
    assert [c.current for c in changes] == [S.CLOSED]
    assert isinstance(changes[0].error, ibflow.ConnectionLost)
    assert session.state is S.CLOSED
    assert len(sub.closed) == 1
    assert isinstance(sub.closed[0], ibflow.ConnectionLost)
    with pytest.raises(ibflow.ConnectionLost):
        session._core.require_ready()
    with pytest.raises(ibflow.SessionClosedError):
        await session.connect()


async def test_reconnect_gives_up_after_max_attempts(
    sim: Simulator, make_session: MakeSession
) -> None:
    policy = ibflow.ReconnectPolicy(initial=0.01, maximum=0.02, max_attempts=2)
    session = make_session(reconnect=policy, timeout=0.5)
    await session.connect()
    feed = session.state_changes()
    await sim.aclose()  # the gateway goes away for good
    changes = await states_until(feed, S.CLOSED)
    assert changes[-1].current is S.CLOSED
    assert isinstance(changes[-1].error, ibflow.ConnectionLost)
    assert "gave up reconnecting" in str(changes[-1].error)
    assert "after 2 attempts" in str(changes[-1].error)
    assert session.statistics().reconnect_attempts == 2


async def test_heartbeat_detects_a_stalled_gateway(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(reconnect=None, heartbeat_interval=1.0, heartbeat_timeout=0.3)
    await session.connect()
    feed = session.state_changes()
    sim.stall(True)  # the socket stays open, nothing comes back: a half-open link
    changes = await states_until(feed, S.CLOSED)
    assert "heartbeat" in changes[-1].reason
    assert session.statistics().heartbeat_failures == 1
    await eventually(lambda: not sim.clients)


async def test_heartbeat_failure_reconnects_once_the_gateway_answers_again(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(heartbeat_interval=1.0, heartbeat_timeout=0.3, timeout=0.3)
    await session.connect()
    feed = session.state_changes()
    sim.stall(True)
    changes = await states_until(feed, S.RECONNECTING)
    assert "heartbeat" in changes[-1].reason
    sim.stall(False)
    await states_until(feed, S.READY)
    assert session.state is S.READY
    assert session.statistics().reconnects == 1


async def test_1100_waits_for_1102_without_resubscribing(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    sub, _ = _register(session)
    feed = session.state_changes()
    sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
    changes = await states_until(feed, S.RECONNECTING)
    assert "1100" in changes[-1].reason
    assert sub.link_downs == 1
    sim.notice(1102, "Connectivity between IB and TWS has been restored - data maintained.")
    await states_until(feed, S.READY)
    assert sub.resubscribed == []
    assert [c.client_id for c in sim.clients] == [session.client_id]  # same socket throughout


async def test_1101_reissues_subscriptions_then_ready(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    sub, old_id = _register(session)
    feed = session.state_changes()
    sim.notice(1100, "Connectivity between IB and Trader Workstation has been lost.")
    await states_until(feed, S.RECONNECTING)
    sim.notice(1101, "Connectivity between IB and TWS has been restored - data lost.")
    await states_until(feed, S.READY)
    assert sub.resubscribed == [(False, S.RECONNECTING)]
    assert sub.new_ids[0] != old_id  # same link: ids keep increasing
    assert session._core.subscriptions.get(old_id) is None
    assert session._core.subscriptions.get(sub.new_ids[0]) is sub
    assert session.statistics().reconnects == 0  # the socket never dropped


async def test_request_in_flight_during_a_drop_fails_and_the_next_one_works(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session()
    await session.connect()
    sim.ignore("executions", True)
    task = asyncio.create_task(
        session._core.request("executions", session._core.adapter.start_executions, timeout=None)
    )
    await eventually(lambda: session.statistics().in_flight_requests == 1)
    feed = session.state_changes()
    sim.ignore("executions", False)
    sim.drop_connections()
    with pytest.raises(ibflow.ConnectionLost):
        await task
    with pytest.raises(ibflow.ConnectionLost, match="reconnecting"):
        session._core.require_ready()
    await states_until(feed, S.READY)
    assert await session._core.request("executions", session._core.adapter.start_executions) == 0


async def test_aclose_during_reconnect_stops_it(sim: Simulator, make_session: MakeSession) -> None:
    slow = ibflow.ReconnectPolicy(initial=5.0, maximum=5.0)
    session = make_session(reconnect=slow)
    await session.connect()
    feed = session.state_changes()
    sim.drop_connections()
    await states_until(feed, S.RECONNECTING)
    await session.aclose()
    assert session.state is S.CLOSED
    assert [c.current async for c in feed] == [S.CLOSED]
