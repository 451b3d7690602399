"""``ibflow bridge``: connect one session, then serve it with uvicorn until interrupted.

The command connects before it serves, so "TWS is not running" is one readable line from the
CLI instead of a uvicorn startup traceback; the app owns that session (``POST
/api/v1/disconnect`` and ``/connect`` work) and closes it, and with ``--sim`` the embedded
simulator, after the server stopped. It refuses to listen beyond loopback without a token.
"""

from __future__ import annotations

import contextlib
import dataclasses

import uvicorn

import ibflow

from ._app import create_app
from ._settings import BridgeSettings, bind_address, is_loopback, log_level
from ._state import bridge_of_app

__all__ = ["serve"]

_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


async def serve(
    *,
    host: str | None = None,
    port: int | None = None,
    sim: bool = False,
    settings: BridgeSettings | None = None,
) -> None:
    """Serve the bridge on ``host:port`` until the process is interrupted.

    Args:
        host: the address to bind (default ``HOST``, else 127.0.0.1). Beyond loopback it needs
            a token (``IBFLOW_BRIDGE_TOKEN``).
        port: the HTTP port (default ``PORT``, else 8000; 0: any free port, uvicorn logs it).
        sim: start ``ibflow.sim`` in-process and connect to it instead of a real TWS.
        settings: the bridge's security and limits; default ``BridgeSettings.from_env()``.

    Raises:
        ConfigError: a non-loopback address without a token, or an unusable variable.
        IBFlowError: the session could not connect (``ConnectRefused``…).
    """
    settings = settings if settings is not None else BridgeSettings.from_env()
    host, port = bind_address(host, port)
    level = log_level()
    if not is_loopback(host):
        if settings.token is None:
            raise ibflow.ConfigError(
                f"refusing to serve on {host}: beyond loopback anyone who reaches the bridge "
                "could place orders. Set IBFLOW_BRIDGE_TOKEN to a long random secret, or bind "
                "127.0.0.1",
                variable="IBFLOW_BRIDGE_TOKEN",
            )
        if host not in _ANY_ADDRESS and host not in settings.allowed_hosts:
            settings = dataclasses.replace(
                settings, allowed_hosts=(*settings.allowed_hosts, host.strip("[]"))
            )
    if level is not None:
        ibflow.configure_logging(level)
    async with contextlib.AsyncExitStack() as stack:
        if sim:
            from ibflow.sim import Simulator

            simulator = await stack.enter_async_context(Simulator(port=0, seed=7))
            app = create_app(host=simulator.host, port=simulator.port, settings=settings)
            where = f"the embedded simulator on {simulator.host}:{simulator.port}"
        else:
            app = create_app(settings=settings)
            target = bridge_of_app(app).target
            where = f"TWS/IB Gateway at {target.describe() if target else 'the configured address'}"
        bridge = bridge_of_app(app)
        stack.push_async_callback(bridge.close)
        session = await bridge.connect()
        kind = "paper" if session.is_paper else "LIVE"
        print(
            f"ibflow bridge: connected to {where} as client {session.client_id}, accounts "
            f"{', '.join(session.accounts)} ({kind}){_extras(settings)}. "
            "API under /api/v1, OpenAPI docs at /docs. Ctrl-C stops it.",
            flush=True,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=(level or "INFO").lower(),
            ws_max_size=settings.max_body_bytes,  # a WebSocket message is capped like a body
        )
        await uvicorn.Server(config).serve()


def _extras(settings: BridgeSettings) -> str:
    """What the environment switched on, and by which variable."""
    parts = []
    if settings.market_data_type is not None:
        source = settings.sources.get("market_data_type", "settings")
        parts.append(f"{settings.market_data_type.value} market data ({source})")
    if settings.token is not None:
        parts.append(f"token required ({settings.sources.get('token', 'settings')})")
    if settings.cors_origins:
        parts.append(f"CORS for {', '.join(settings.cors_origins)}")
    return f"; {'; '.join(parts)}" if parts else ""
