"""What every endpoint of one bridge app shares: its session, settings, stores and counters.

All of it lives on ``app.state`` rather than in module globals, so several bridge apps (one per
account, say) can run in one process, and an app mounted inside another still finds its own.

A session cannot be reopened once closed, so ``POST /api/v1/disconnect`` closes the app's
session and ``POST /api/v1/connect`` builds a new one from the same recipe. A session the
caller handed in is the caller's: the bridge may connect it, but never closes or replaces it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Query
from starlette.requests import HTTPConnection

import ibflow
from ibflow import ConnectionState

from ._errors import BridgeError
from ._idempotency import IdempotencyStore
from ._requests import ContractQuery
from ._settings import BridgeSettings, Target

if TYPE_CHECKING:
    from ._metrics import Metrics

__all__ = ["Bridge", "ContractDep", "SessionDep", "bridge_of", "bridge_of_app", "session_of"]

_STATE_KEY = "ibflow_bridge"


@dataclass(slots=True)
class Bridge:
    session: ibflow.Session | None
    orders: IdempotencyStore
    settings: BridgeSettings
    metrics: Metrics
    build: Callable[[], ibflow.Session] | None
    """How to make a new session; ``None`` when the caller handed one in and owns it."""
    target: Target | None
    """Where the built sessions connect (unknown for a session handed in or a factory)."""
    started: float = field(default_factory=time.monotonic)
    disconnected: bool = False
    """The session was closed on request (``POST /api/v1/disconnect``)."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def attach(self, state: object) -> None:
        setattr(state, _STATE_KEY, self)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started

    async def connect(self) -> ibflow.Session:
        """The app's session, connected: the current one, or a new one from the recipe.

        Raises:
            IBFlowError: the connect failed (``ConnectRefused``…); no session is left half-open.
            BridgeError: the session was handed in closed, so there is none to connect (409).
        """
        async with self._lock:
            session = self.session
            if session is not None and session.state is not ConnectionState.CLOSED:
                fresh = session.statistics().connects == 0
                await session.connect()  # returns at once when it already connected
            elif self.build is None:
                raise BridgeError(
                    409,
                    "SessionNotOwned",
                    "the bridge was given a closed session and cannot build another: the app "
                    "that created it must connect a new one",
                )
            else:
                session = self.build()
                try:
                    await session.connect()
                except BaseException:
                    await session.aclose()
                    raise
                fresh = True
                self.session = session
            self.disconnected = False
            if fresh and self.settings.market_data_type is not None:
                await session.set_market_data_type(self.settings.market_data_type)
            return session

    async def disconnect(self) -> bool:
        """Close the app's session (after the orders in flight); False if none was open.

        Raises:
            BridgeError: the session belongs to whoever handed it in (409).
        """
        if self.build is None:
            raise BridgeError(
                409,
                "SessionNotOwned",
                "this bridge serves a session its host application owns; close it there",
            )
        async with self._lock:
            session = self.session
            if session is None or session.state is ConnectionState.CLOSED:
                return False
            await self.orders.drain()
            self.metrics.retire(session)
            self.disconnected = True
            await session.aclose()
            return True

    async def close(self) -> None:
        """On shutdown: let orders in flight finish, then close a session the app owns."""
        await self.orders.drain()
        if self.build is not None and self.session is not None:
            session, self.session = self.session, None
            await session.aclose()


def bridge_of(conn: HTTPConnection) -> Bridge:
    return bridge_of_app(conn.app)


def bridge_of_app(app: Any) -> Bridge:
    """The bridge state of an app made by ``create_app()``."""
    return cast(Bridge, getattr(app.state, _STATE_KEY))


def session_of(conn: HTTPConnection) -> ibflow.Session:
    """The app's session.

    Raises:
        SessionClosedError: the app has not started it, or it was disconnected on request.
    """
    bridge = bridge_of(conn)
    session = bridge.session
    if bridge.disconnected:
        raise ibflow.SessionClosedError(
            "the bridge was disconnected from TWS (POST /api/v1/disconnect); "
            "POST /api/v1/connect connects it again"
        )
    if session is None:
        raise ibflow.SessionClosedError(
            "the bridge has no session: create_app() without a session connects one in the "
            "app's lifespan, which has not run (a mounted app never runs it: pass a session "
            "you connect yourself)"
        )
    return session


def contract_of(spec: Annotated[ContractQuery, Query()]) -> ibflow.Contract:
    """The contract described by the query string (``symbol=AAPL&sec_type=STK``…).

    Raises:
        InvalidRequest: ibflow refuses the description.
    """
    return spec.to_contract()


SessionDep = Annotated[ibflow.Session, Depends(session_of)]
ContractDep = Annotated[ibflow.Contract, Depends(contract_of)]
