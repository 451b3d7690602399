"""Fixtures for the bridge tests: a simulator, a session on it, and the app on a real server.

The app runs the way users run it: under a real ``uvicorn.Server`` on 127.0.0.1 with a free
port, inside the test's own event loop, reached over loopback with httpx and the websockets
client. The simulator runs at ``speed=100`` (a quote every few milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

import ibflow
from ibflow.bridge import create_app
from ibflow.sim import Simulator

API = "/api/v1"
# Wednesday 2027-01-13 15:00 UTC: US stocks are trading (10:00 in New York).
MARKET_OPEN = datetime(2027, 1, 13, 15, 0, tzinfo=UTC).timestamp()


def market_clock(factor: float = 120.0) -> Callable[[], float]:
    """A simulator clock inside US trading hours, running ``factor`` times faster than real time."""
    origin = time.monotonic()
    return lambda: MARKET_OPEN + (time.monotonic() - origin) * factor


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    # log_config=None: uvicorn leaves the process's logging configuration alone.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.005)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def sim(ib_sim: Simulator) -> Simulator:
    return ib_sim


@pytest.fixture
def session(ibflow_session: ibflow.Session) -> ibflow.Session:
    return ibflow_session


@pytest.fixture
async def base_url(session: ibflow.Session) -> AsyncIterator[str]:
    async with serving(create_app(session)) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API's routes: ``client.get("/positions")`` reads ``/api/v1/positions``."""
    async with httpx.AsyncClient(base_url=base_url + API, timeout=10) as c:
        yield c


@pytest.fixture
def ws_url(base_url: str) -> Callable[[str], str]:
    """``ws_url("/ws/quotes?symbols=AAPL")``: the websocket URL of a path on the test server."""
    return lambda path: "ws" + base_url.removeprefix("http") + path
