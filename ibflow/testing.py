"""Test your own trading code against ``ibflow.sim``: pytest fixtures and helpers.

Installed as a pytest plugin (entry point ``ibflow``). With pytest-asyncio installed the
fixtures are simply there, and an ``async def`` test that asks for one of them runs on asyncio
without a marker, in pytest-asyncio's default strict mode too:

    async def test_my_bot(ibflow_session, ib_sim):
        ib_sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        ...

Fixtures:
    ``ib_sim``: a fresh simulator on a free loopback port (default scenario, seed 0, limits
    time-scaled ``TEST_SPEED`` times so pacing rules cost milliseconds).
    ``ib_sim_factory``: start more, with your own arguments
    (``await ib_sim_factory(readonly=True)``); all are shut down when the test ends.
    ``ibflow_session``: a READY :class:`ibflow.Session` on ``ib_sim`` (see :func:`session_for`).
    ``clean_ib_env``: the test sees no ``IBFLOW_*``, ``IB_*`` or ``TWS_*`` variable from the
    shell, and gets an empty history cache of its own (the fixtures above use it).

Helpers: :func:`eventually`, :func:`session_for`, :data:`FAST_RECONNECT`.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from ibflow import ReconnectPolicy, Session
from ibflow.sim import Simulator

__all__ = [
    "ENV_PREFIXES",
    "FAST_RECONNECT",
    "TEST_SPEED",
    "SimFactory",
    "eventually",
    "session_for",
]

SimFactory = Callable[..., Awaitable[Simulator]]

TEST_SPEED = 100.0
"""The ``speed=`` of the fixtures' simulators: IB's time limits run 100 times faster."""

FAST_RECONNECT = ReconnectPolicy(initial=0.02, maximum=0.1)
"""Reconnect within 20–100 ms of a lost link, so a test waits milliseconds, not seconds."""

ENV_PREFIXES = ("IBFLOW_", "IB_", "TWS_")
"""Environment variables ``clean_ib_env`` removes: they could aim a session elsewhere."""

# A switch for a whole run (ibflow's own receive path on or off), not a connection setting.
_KEPT_ENV = frozenset({"IBFLOW_FAST_RECEIVE"})
_CACHE_ENV = "IBFLOW_CACHE_DIR"
_POLL = 0.005
# The async fixtures below: an ``async def`` test that uses one runs on asyncio.
_ASYNC_FIXTURES = frozenset({"ib_sim", "ib_sim_factory", "ibflow_session"})


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true, checking every few milliseconds.

    For state with no event to await: a simulator's counters, a trade's status.

    Raises:
        TimeoutError: still false after ``timeout`` seconds; the message names the predicate.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"eventually(timeout=...) must be a positive number, got {timeout!r}")
    try:
        async with asyncio.timeout(timeout):
            # Polling is the point: the state it watches has no event to await.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(_POLL)
    except TimeoutError:
        raise TimeoutError(f"{_describe(predicate)} still false after {timeout} s") from None


def _describe(predicate: Callable[[], object]) -> str:
    name = getattr(predicate, "__qualname__", repr(predicate))
    code = getattr(predicate, "__code__", None)
    if code is None:
        return name
    return f"{name} ({Path(code.co_filename).name}:{code.co_firstlineno})"


def session_for(sim: Simulator, **settings: Any) -> Session:
    """A :class:`ibflow.Session` aimed at ``sim``, not connected yet.

    Test-friendly defaults, each of which ``settings`` may override: ``client_id=1``,
    ``timeout=5.0``, no heartbeat, ``reconnect=FAST_RECONNECT``. Use it as
    ``async with session_for(sim) as session:``.
    """
    settings.setdefault("client_id", 1)
    settings.setdefault("timeout", 5.0)
    settings.setdefault("heartbeat_interval", None)
    settings.setdefault("reconnect", FAST_RECONNECT)
    return Session(sim.host, sim.port, **settings)


@pytest.fixture
def clean_ib_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No ``IBFLOW_*``/``IB_*``/``TWS_*`` settings from the shell; returns the test's own history
    cache directory (``IBFLOW_CACHE_DIR``, not created yet). ``IBFLOW_FAST_RECEIVE`` is kept."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name not in _KEPT_ENV:
            monkeypatch.delenv(name)
    cache = tmp_path_factory.mktemp("ibflow") / "cache"
    monkeypatch.setenv(_CACHE_ENV, str(cache))
    return cache


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixtures need pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def ib_sim_factory(clean_ib_env: Path) -> AsyncIterator[SimFactory]:
        """Start simulators on demand: ``sim = await ib_sim_factory(readonly=True)``.

        The test runs in a clean environment (``clean_ib_env``): nothing it connects can pick
        up the shell's IB settings.
        """
        started: list[Simulator] = []

        async def start(**kwargs: Any) -> Simulator:
            kwargs.setdefault("port", 0)
            kwargs.setdefault("speed", TEST_SPEED)
            sim = Simulator(**kwargs)
            await sim.start()
            started.append(sim)
            return sim

        try:
            yield start
        finally:
            for sim in reversed(started):
                await sim.aclose()

    @pytest_asyncio.fixture
    async def ib_sim(ib_sim_factory: SimFactory) -> Simulator:
        """A running simulator on 127.0.0.1 with a free port: use ``.host`` and ``.port``."""
        return await ib_sim_factory()

    @pytest_asyncio.fixture
    async def ibflow_session(ib_sim: Simulator) -> AsyncIterator[Session]:
        """A READY session on ``ib_sim`` (:func:`session_for`'s defaults), closed afterwards."""
        async with session_for(ib_sim) as session:
            yield session

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_pycollect_makeitem(
        collector: pytest.Module | pytest.Class, name: str, obj: object
    ) -> Generator[None, object, object]:
        """Mark ``async def`` tests that use the fixtures above to run on asyncio.

        Innermost of the wrappers, so pytest-asyncio sees the mark when it takes the item.
        """
        result = yield
        items = result if isinstance(result, list) else [result]
        for item in items:
            if (
                isinstance(item, pytest.Function)
                and inspect.iscoroutinefunction(item.obj)
                and item.get_closest_marker("asyncio") is None
                and not _ASYNC_FIXTURES.isdisjoint(item.fixturenames)
            ):
                item.add_marker(pytest.mark.asyncio)
        return result
