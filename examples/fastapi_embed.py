"""A Session inside your own FastAPI app: opened in the lifespan, shared by the routes.

    python examples/fastapi_embed.py                     # embedded simulator, http://127.0.0.1:8000
    python examples/fastapi_embed.py --port 7497         # a paper TWS
    python examples/fastapi_embed.py --demo              # serve, call its own routes, exit
    curl http://127.0.0.1:8000/quote/AAPL

The app starts one ``ibflow.Session`` when it starts and closes it when it stops; every
request uses that one session (one TWS connection, one client id). Requests run on the same
event loop as the session, so the routes simply ``await`` it. ibflow's typed errors become
HTTP statuses: an unknown symbol is a 404, a TWS that is away is a 503.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request

import ibflow
from ibflow.sim import Simulator


def create_app(
    host: str | None = None, port: int | None = None, client_id: int | None = None
) -> FastAPI:
    """The app; with no ``port`` its lifespan also runs an embedded simulator."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            where = (host, port)
            if port is None:
                sim = await stack.enter_async_context(Simulator(port=0, seed=7))
                where = (sim.host, sim.port)
            app.state.session = await stack.enter_async_context(
                ibflow.Session(host=where[0], port=where[1], client_id=client_id)
            )
            yield  # the app serves here; leaving closes the session, then the simulator

    app = FastAPI(title="my trading service", lifespan=lifespan)

    @app.get("/health")
    async def health(session: SessionDep) -> dict[str, Any]:
        return {
            "state": session.state.value,
            "accounts": list(session.accounts),
            "paper": session.is_paper,
        }

    @app.get("/quote/{symbol}")
    async def quote(symbol: str, session: SessionDep) -> dict[str, Any]:
        try:
            q = await session.quote(ibflow.Stock(symbol.upper()), timeout=5)
        except ibflow.ContractNotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except (ibflow.ConnectionLost, ibflow.SessionClosedError, ibflow.RequestTimeout) as exc:
            raise HTTPException(503, str(exc)) from exc
        return {"symbol": q.contract.symbol, "bid": q.bid, "ask": q.ask, "last": q.last}

    @app.get("/positions")
    async def positions(session: SessionDep) -> list[dict[str, Any]]:
        return [
            {
                "contract": p.contract.display_name,
                "quantity": p.quantity,
                "avg_cost": None if p.avg_cost is None else round(p.avg_cost, 2),
            }
            for p in await session.positions()
        ]

    return app


def get_session(request: Request) -> ibflow.Session:
    return request.app.state.session  # type: ignore[no-any-return]


SessionDep = Annotated[ibflow.Session, Depends(get_session)]


async def serve(args: argparse.Namespace) -> int:
    app = create_app(args.host, args.port, args.client_id)
    config = uvicorn.Config(app, host="127.0.0.1", port=args.http_port, log_level="info")
    server = uvicorn.Server(config)
    if not args.demo:
        await server.serve()  # until Ctrl-C
        return 0
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                return 1  # it could not start (the error is in the log)
            await asyncio.sleep(0.05)
        [socket] = server.servers[0].sockets
        base = f"http://127.0.0.1:{socket.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for path in ("/health", "/quote/AAPL", "/positions", "/quote/NOSUCHSYMBOL"):
                answer = await client.get(path)
                print(f"GET {path} -> {answer.status_code} {answer.text}", flush=True)
    finally:
        server.should_exit = True
        await serving
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="TWS/Gateway host (with --port)")
    parser.add_argument("--port", type=int, help="TWS/Gateway port; none: embedded simulator")
    parser.add_argument("--client-id", type=int)
    parser.add_argument("--http-port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--demo", action="store_true", help="call the routes once, then exit")
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has shut down
        sys.exit(asyncio.run(serve(parse())))
