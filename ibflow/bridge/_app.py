"""``create_app()``: a FastAPI app that owns or borrows one ibflow Session and serves it.

Services written in other languages, and Python services that would rather not hold a TWS
connection in every process, want IB over HTTP. A TWS login allows few API clients and each
client id owns its orders, so the bridge funnels everything through ONE session: created and
connected in the app's lifespan and closed with it, or handed in by a caller who keeps owning
it (the way to host the bridge inside an app that already has a session, or to mount it, since a
mounted app's lifespan never runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

import ibflow

from . import _routes, _sockets
from ._errors import install
from ._idempotency import IdempotencyStore
from ._state import Bridge

__all__ = ["create_app"]

_DESCRIPTION = """\
Interactive Brokers over HTTP and WebSockets, through one
[ibflow](https://pypi.org/project/ibflow/) Session.

**No authentication.** Anyone who can reach this server can place orders: bind it to
127.0.0.1 (the default of `ibflow bridge`) and never expose it to a network.

Every error answers `{"error": class name, "code": IB code or null, "message": ...}`.
`POST /orders` needs an `Idempotency-Key` header; a repeated key returns the first answer.
"""


def create_app(
    session: ibflow.Session | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    account: str | None = None,
    readonly: bool = False,
    factory: Callable[[], ibflow.Session] | None = None,
    max_idempotency_keys: int = 10_000,
    idempotency_ttl: float = 24 * 3600.0,
) -> FastAPI:
    """The bridge app, serving one session.

    Without ``session``, the app builds one when it starts (``factory()``, or
    ``ibflow.Session(host, port, client_id, account, readonly=readonly)``, where settings left
    out come from the environment as for any Session: ``IBFLOW_PORT``…), connects it before
    serving — a failed connect fails the startup with ibflow's typed error — and closes it on
    shutdown. With ``session``, the caller owns it: the app uses it as it is (connected or not:
    requests answer 503 until it is READY) and never closes it.

    Args:
        session: a session the caller owns (and connects, and closes).
        host, port, client_id, account, readonly: settings for the session the app builds.
        factory: builds the session the app owns, for any other ``Session`` argument.
        max_idempotency_keys: how many ``Idempotency-Key`` answers to remember at most.
        idempotency_ttl: how many seconds an ``Idempotency-Key`` answer is remembered.

    Raises:
        InvalidRequest: a session together with settings or a factory, or bad limits.
    """
    settings = (host, port, client_id, account)
    builds = factory is not None or readonly or any(s is not None for s in settings)
    if session is not None and builds:
        raise ibflow.InvalidRequest(
            "create_app() takes either a session you own or what to build one from "
            "(settings or a factory), not both"
        )
    if factory is not None and (readonly or any(s is not None for s in settings)):
        raise ibflow.InvalidRequest(
            "create_app() takes either a factory or session settings, not both: put the "
            "settings into the factory"
        )
    build = factory
    if session is None and build is None:

        def from_settings() -> ibflow.Session:
            return ibflow.Session(host, port, client_id, account, readonly=readonly)

        build = from_settings
    bridge = Bridge(
        session=session,
        orders=IdempotencyStore(max_keys=max_idempotency_keys, ttl=idempotency_ttl),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned: ibflow.Session | None = None
        if build is not None:
            owned = build()
            try:
                await owned.connect()
            except BaseException:
                await owned.aclose()
                raise
            bridge.session = owned
        try:
            yield
        finally:
            # Orders in flight finish (place() is bounded by the session timeout) before the
            # session they are being placed on goes away.
            await bridge.orders.drain()
            if owned is not None:
                bridge.session = None
                await owned.aclose()

    app = FastAPI(
        title="ibflow bridge",
        version=ibflow.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    bridge.attach(app.state)
    install(app)
    app.include_router(_routes.router)
    app.include_router(_sockets.router)
    return app
