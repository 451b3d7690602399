"""``ibflow hub``: connect one session (to TWS, or to the embedded simulator) and serve it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from typing import Any

import click

import ibflow

__all__ = ["hub"]


async def serve(
    *,
    nats_url: str,
    name: str,
    sim: bool,
    host: str | None,
    port: int | None,
    client_id: int | None,
    readonly_names: tuple[str, ...],
    lines: int,
    lease_ttl: float,
    leader_ttl: float,
    nats_timeout: float,
) -> None:
    """Lead (or stand by, then lead) until cancelled (Ctrl-C) or SIGTERM."""
    from ._leader import Leadership, LeadershipLost
    from ._protocol import connect_nats
    from ._server import Hub

    async with contextlib.AsyncExitStack() as stack:
        if sim:
            from ibflow.sim import Simulator

            simulator = await stack.enter_async_context(Simulator(port=0, seed=7))
            host, port = simulator.host, simulator.port
            where = f"the embedded simulator on {host}:{port}"
        else:
            where = "TWS/IB Gateway"
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        nc = await connect_nats(nats_url, name=f"ibflow-hub-{name}-lease", timeout=nats_timeout)
        stack.push_async_callback(nc.close)
        lease = Leadership(nc, name, ttl=leader_ttl)
        stack.push_async_callback(lease.release)  # after the session closed: a clean handover
        while not stop.is_set():
            if not await lease.try_acquire():
                print(
                    f"ibflow hub {name}: standing by; another hub leads, this one takes over "
                    f"when its {lease.ttl:g} s lease expires.",
                    flush=True,
                )
                if not await _first(lease.acquire(), stop.wait()):
                    break
            try:
                async with (
                    ibflow.Session(host, port, client_id) as session,
                    Hub(
                        session,
                        nats_url,
                        name=name,
                        readonly_names=readonly_names,
                        max_lines=lines,
                        lease_ttl=lease_ttl,
                        connect_timeout=nats_timeout,
                    ),
                ):
                    kind = "paper" if session.is_paper else "LIVE"
                    print(
                        f"ibflow hub {name}: serving {where} (client {session.client_id}, "
                        f"accounts {', '.join(session.accounts)}, {kind}) on {nats_url} under "
                        f"ibflow.{name}.*. Ctrl-C stops it.",
                        flush=True,
                    )
                    await _first(stop.wait(), lease.hold())
            except LeadershipLost as exc:
                print(f"ibflow hub {name}: {exc}; standing by.", file=sys.stderr, flush=True)


async def _first(*coros: Coroutine[Any, Any, Any]) -> bool:
    """Run ``coros`` until one finishes (its error raised); True unless it was the last."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = done.pop()
    first.result()
    return first is not tasks[-1]


@click.command()
@click.option(
    "--nats",
    "nats_url",
    default="nats://127.0.0.1:4222",
    show_default=True,
    help="The NATS server (JetStream on).",
)
@click.option("--name", required=True, help="The hub's name; remote sessions use hub=NAME.")
@click.option("--sim", is_flag=True, help="Serve the embedded simulator instead of a TWS.")
@click.option("--host", default=None, help="TWS/Gateway host (default: from env, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="API port (default: from env)."
)
@click.option(
    "--client-id",
    type=click.IntRange(0, 2**31 - 1),
    default=None,
    help="Client id (default: a fresh one).",
)
@click.option(
    "--readonly-name",
    "readonly_names",
    multiple=True,
    help="A remote name that may read but not trade (repeat for more).",
)
@click.option(
    "--lines",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Market-data lines the hub may use at TWS.",
)
@click.option(
    "--lease-ttl",
    type=click.FloatRange(min=0.5),
    default=3.0,
    show_default=True,
    help="Seconds a consumer's interest lasts without renewal.",
)
@click.option(
    "--leader-ttl",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds of the leadership lease: a standby hub of the same name takes over this "
    "long after the leader stopped renewing it.",
)
@click.option(
    "--nats-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the NATS server at start.",
)
def hub(
    nats_url: str,
    name: str,
    sim: bool,
    host: str | None,
    port: int | None,
    client_id: int | None,
    readonly_names: tuple[str, ...],
    lines: int,
    lease_ttl: float,
    leader_ttl: float,
    nats_timeout: float,
) -> None:
    """Serve one TWS session to remote sessions over NATS (extra: hub)."""
    try:
        import nats  # noqa: F401
    except ImportError:
        print(
            'ibflow: error: ibflow hub needs the hub extra: pip install "ibflow[hub]"',
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve(
                    nats_url=nats_url,
                    name=name,
                    sim=sim,
                    host=host,
                    port=port,
                    client_id=client_id,
                    readonly_names=readonly_names,
                    lines=lines,
                    lease_ttl=lease_ttl,
                    leader_ttl=leader_ttl,
                    nats_timeout=nats_timeout,
                )
            )
    except ibflow.IBFlowError as exc:
        print(f"ibflow: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
