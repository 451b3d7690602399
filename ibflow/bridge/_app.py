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
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

import ibflow

from . import _contract, _routes, _sockets
from ._errors import install
from ._idempotency import IdempotencyStore
from ._legacy import redirect_old_paths
from ._metrics import Metrics, Timing
from ._security import BodyLimit
from ._settings import API_PREFIX, BridgeSettings, resolve_target
from ._state import Bridge

__all__ = ["create_app"]

_DESCRIPTION = """\
Interactive Brokers over HTTP and WebSockets, through one
[ibflow](https://pypi.org/project/ibflow/) Session. It also answers the TWS Bridge Server's
calls (`POST /api/v1/bars`, `GET /api/v1/health`, `POST /api/v1/connect`, `/disconnect`).

**Keep it on 127.0.0.1.** It answers only to localhost host names and to WebSockets from its own
origin unless configured otherwise. With `IBFLOW_BRIDGE_TOKEN` set, order routes,
connect/disconnect and WebSockets need `Authorization: Bearer <token>`.

Every error answers `{"error": class name, "code": IB code or null, "message": ...}`
(`POST /api/v1/bars` answers in its own shape, with `success: false`).
`POST /api/v1/orders` needs an `Idempotency-Key` header; a repeated key returns the first answer.
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
    settings: BridgeSettings | None = None,
    max_idempotency_keys: int = 10_000,
    idempotency_ttl: float = 24 * 3600.0,
) -> FastAPI:
    """The bridge app, serving one session.

    Without ``session``, the app builds one when it starts (``factory()``, or
    ``ibflow.Session(host, port, client_id, account, readonly=readonly)``, where settings left
    out come from the environment as for any Session: ``IBFLOW_PORT``, ``TWS_PORT``…), connects
    it before serving — a failed connect fails the startup with ibflow's typed error — and
    closes it on shutdown; ``POST /api/v1/disconnect`` and ``/connect`` close it and build a new
    one. With ``session``, the caller owns it: the app uses it as it is (connected or not:
    requests answer 503 until it is READY) and never closes it.

    Args:
        session: a session the caller owns (and connects, and closes).
        host, port, client_id, account, readonly: settings for the session the app builds.
        factory: builds the session the app owns, for any other ``Session`` argument.
        settings: the bridge's security and limits; default ``BridgeSettings.from_env()``.
        max_idempotency_keys: how many ``Idempotency-Key`` answers to remember at most.
        idempotency_ttl: how many seconds an ``Idempotency-Key`` answer is remembered.

    Raises:
        InvalidRequest: a session together with settings or a factory, or bad limits.
        ConfigError: an ``IBFLOW_BRIDGE_*`` or ``TWS_MARKET_DATA_TYPE`` variable is unusable.
    """
    given = (host, port, client_id, account)
    builds = factory is not None or readonly or any(s is not None for s in given)
    if session is not None and builds:
        raise ibflow.InvalidRequest(
            "create_app() takes either a session you own or what to build one from "
            "(settings or a factory), not both"
        )
    if factory is not None and (readonly or any(s is not None for s in given)):
        raise ibflow.InvalidRequest(
            "create_app() takes either a factory or session settings, not both: put the "
            "settings into the factory"
        )
    build = factory
    target = None
    if session is None and build is None:
        target = resolve_target(host, port, client_id)

        def from_settings() -> ibflow.Session:
            return ibflow.Session(host, port, client_id, account, readonly=readonly)

        build = from_settings
    settings = settings if settings is not None else BridgeSettings.from_env()

    def current() -> ibflow.Session | None:
        return None if bridge.disconnected else bridge.session

    bridge = Bridge(
        session=session,
        orders=IdempotencyStore(max_keys=max_idempotency_keys, ttl=idempotency_ttl),
        settings=settings,
        metrics=Metrics(current),
        build=build,
        target=target,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if bridge.build is not None and bridge.session is None:
            await bridge.connect()
        try:
            yield
        finally:
            # Orders in flight finish (place() is bounded by the session timeout) before the
            # session they are being placed on goes away.
            await bridge.close()

    app = FastAPI(
        title="ibflow bridge",
        version=ibflow.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    bridge.attach(app.state)
    install(app)
    app.include_router(_contract.router)
    app.include_router(_contract.bars_router)
    app.include_router(_routes.router)
    app.include_router(_sockets.router)
    app.add_api_route("/metrics", _contract.metrics, methods=["GET"], tags=["operations"])
    moved = [r for r in _contract.router.routes if getattr(r, "name", None) == "health"]
    redirect_old_paths(app, [*moved, *_routes.router.routes], API_PREFIX)
    # The last added runs first: the Host check, then CORS, timing, and the body cap.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Timing, metrics=bridge.metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Idempotent-Replayed", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))
    return app
