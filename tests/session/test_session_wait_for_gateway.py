"""``wait_for_gateway``: a bot started before its gateway retries the first connect."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import ibflow
from ibflow.sim import Simulator
from ibflow.testing import FAST_RECONNECT

States = list[ibflow.StateChange]


def _free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _session(port: int, wait: float | None) -> ibflow.Session:
    return ibflow.Session(
        "127.0.0.1",
        port,
        client_id=1,
        timeout=2.0,
        heartbeat_interval=None,
        reconnect=FAST_RECONNECT,
        wait_for_gateway=wait,
    )


async def _collect(session: ibflow.Session, into: States) -> None:
    async for change in session.state_changes():
        into.append(change)


async def test_the_first_connect_waits_for_a_gateway_that_comes_up_late() -> None:
    port = _free_port()
    session = _session(port, 10.0)
    changes: States = []
    watcher = asyncio.create_task(_collect(session, changes))
    connecting = asyncio.create_task(session.connect())
    try:
        await asyncio.sleep(0.4)  # several refused attempts
        assert not connecting.done()
        async with Simulator(port=port) as sim:
            await asyncio.wait_for(connecting, 5)
            assert session.state is ibflow.ConnectionState.READY
            assert [c.client_id for c in sim.clients] == [1]
            await session.aclose()
    finally:
        await session.aclose()
        await watcher
    waits = [c for c in changes if "waiting for the gateway" in c.reason]
    assert len(waits) >= 2
    assert all(c.current is ibflow.ConnectionState.DISCONNECTED for c in waits)
    assert "ConnectRefused" in waits[0].reason
    assert [c.current for c in changes][-2:] == [
        ibflow.ConnectionState.READY,
        ibflow.ConnectionState.CLOSED,
    ]


async def test_the_wait_ends_with_the_last_error_when_the_time_passes() -> None:
    session = _session(_free_port(), 0.3)
    started = time.monotonic()
    with pytest.raises(ibflow.ConnectRefused):
        await session.connect()
    assert 0.3 <= time.monotonic() - started < 2.0
    assert session.state is ibflow.ConnectionState.DISCONNECTED
    await session.aclose()


async def test_without_it_a_refused_connect_fails_at_once() -> None:
    session = _session(_free_port(), None)
    changes: States = []
    watcher = asyncio.create_task(_collect(session, changes))
    await asyncio.sleep(0)
    with pytest.raises(ibflow.ConnectRefused):
        await session.connect()
    await session.aclose()
    await watcher
    assert [c.current for c in changes] == [
        ibflow.ConnectionState.CONNECTING,
        ibflow.ConnectionState.DISCONNECTED,
        ibflow.ConnectionState.CLOSED,
    ]


async def test_aclose_ends_the_wait() -> None:
    session = _session(_free_port(), 30.0)
    connecting = asyncio.create_task(session.connect())
    await asyncio.sleep(0.2)
    await session.aclose()
    with pytest.raises(ibflow.SessionClosedError):
        await asyncio.wait_for(connecting, 2)


@pytest.mark.parametrize("wait", [0, -1.0, float("inf"), float("nan"), "5", True])
def test_wait_for_gateway_must_be_a_positive_number(wait: object) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="wait_for_gateway"):
        _session(1, wait)  # type: ignore[arg-type]
