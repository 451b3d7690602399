"""``ibflow bridge``: connect one session, then serve it with uvicorn until interrupted.

The command connects before it serves, so "TWS is not running" is one readable line from the
CLI instead of a uvicorn startup traceback; the app then borrows that session, and the session
(and with ``--sim`` the embedded simulator) is closed after the server stopped.
"""

from __future__ import annotations

import contextlib
import sys

import uvicorn

import ibflow

from ._app import create_app

__all__ = ["serve"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


async def serve(*, host: str = "127.0.0.1", port: int = 8000, sim: bool = False) -> None:
    """Serve the bridge on ``host:port`` until the process is interrupted.

    Args:
        host: the address to bind; keep it on loopback (the bridge has no authentication).
        port: the HTTP port (0: any free port; uvicorn logs the one it got).
        sim: start ``ibflow.sim`` in-process and connect to it instead of a real TWS.

    Raises:
        IBFlowError: the session could not connect (``ConnectRefused``, ``ConfigError``…).
    """
    async with contextlib.AsyncExitStack() as stack:
        if sim:
            from ibflow.sim import Simulator

            simulator = await stack.enter_async_context(Simulator(port=0, seed=7))
            session = ibflow.Session(host=simulator.host, port=simulator.port)
            where = f"the embedded simulator on {simulator.host}:{simulator.port}"
        else:
            session = ibflow.Session()
            where = "TWS/IB Gateway (settings from IBFLOW_HOST, IBFLOW_PORT…)"
        stack.push_async_callback(session.aclose)
        await session.connect()
        print(
            f"ibflow bridge: connected to {where} as client {session.client_id}, accounts "
            f"{', '.join(session.accounts)} ({'paper' if session.is_paper else 'LIVE'}). "
            "OpenAPI docs at /docs. Ctrl-C stops it.",
            flush=True,
        )
        if host not in _LOOPBACK:
            print(
                f"ibflow bridge: WARNING: binding to {host}; the bridge has no authentication "
                "and can place orders. Keep it on 127.0.0.1.",
                file=sys.stderr,
                flush=True,
            )
        config = uvicorn.Config(create_app(session), host=host, port=port, log_level="info")
        await uvicorn.Server(config).serve()
