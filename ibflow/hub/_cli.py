"""``ibflow hub``: connect one session (to TWS, or to the embedded simulator) and serve it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypedDict, TypeVar

import click

import ibflow

__all__ = ["NatsCredentials", "hub", "nats_credentials", "nats_options"]

_F = TypeVar("_F", bound=Callable[..., Any])


def nats_options(
    url_flag: str = "--nats",
    url_help: str = "The NATS server(s), comma-separated; may carry user:password@ "
    "(default: $IBFLOW_NATS_URL, else nats://127.0.0.1:4222).",
) -> Callable[[_F], _F]:
    """``--nats`` (or ``url_flag``) and the NATS credential flags, each falling back to its
    ``IBFLOW_NATS_*`` variable; they arrive as ``nats_url``, ``nats_user``, ``nats_token``,
    ``nats_creds`` and ``nats_nkey``."""
    options = [
        click.option(url_flag, "nats_url", default=None, help=url_help),
        click.option(
            "--nats-user",
            default=None,
            help="NATS user (default $IBFLOW_NATS_USER); its password comes from "
            "$IBFLOW_NATS_PASSWORD (or give both in the URL instead).",
        ),
        click.option(
            "--nats-token", default=None, help="NATS token (default: $IBFLOW_NATS_TOKEN)."
        ),
        click.option(
            "--nats-creds",
            default=None,
            help="NATS creds file: user JWT and seed (default: $IBFLOW_NATS_CREDS).",
        ),
        click.option(
            "--nats-nkey", default=None, help="NATS nkey seed file (default: $IBFLOW_NATS_NKEY)."
        ),
    ]

    def decorate(command: _F) -> _F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


class NatsCredentials(TypedDict):
    """The credential flags as ``Hub`` / ``RemoteSession`` keyword arguments."""

    user: str | None
    token: str | None
    creds: str | None
    nkey: str | None


def nats_credentials(
    nats_user: str | None, nats_token: str | None, nats_creds: str | None, nats_nkey: str | None
) -> NatsCredentials:
    return {"user": nats_user, "token": nats_token, "creds": nats_creds, "nkey": nats_nkey}


async def serve(
    *,
    nats_url: str | None,
    name: str,
    sim: bool,
    host: str | None,
    port: int | None,
    client_id: int | None,
    readonly_names: tuple[str, ...],
    lines: int,
    tick_by_tick: int,
    lease_ttl: float,
    leader_ttl: float,
    nats_timeout: float,
    replicas: int,
    credentials: NatsCredentials,
) -> None:
    """Lead (or stand by, then lead) until cancelled (Ctrl-C) or SIGTERM."""
    from ._access import connect_nats, resolve_access
    from ._leader import Leadership, LeadershipLost
    from ._server import Hub

    access = resolve_access(nats_url, **credentials)  # refused settings fail before TWS

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
        nc = await connect_nats(access, name=f"ibflow-hub-{name}-lease", timeout=nats_timeout)
        stack.push_async_callback(nc.close)
        lease = Leadership(nc, name, ttl=leader_ttl, replicas=replicas)
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
                        max_tick_by_tick=tick_by_tick,
                        lease_ttl=lease_ttl,
                        connect_timeout=nats_timeout,
                        replicas=replicas,
                        **credentials,
                    ) as served,
                ):
                    kind = "paper" if session.is_paper else "LIVE"
                    print(
                        f"ibflow hub {name}: serving {where} (client {session.client_id}, "
                        f"accounts {', '.join(session.accounts)}, {kind}) on {served.url} under "
                        f"ibflow.{name}.*. Ctrl-C stops it.",
                        flush=True,
                    )
                    await _first(stop.wait(), lease.hold())
            except LeadershipLost as exc:
                print(f"ibflow hub {name}: {exc}; standing by.", file=sys.stderr, flush=True)


async def _first(*coros: Coroutine[Any, Any, Any]) -> bool:
    """Run ``coros`` until one finishes (its error raised); True unless it was the last."""
    from ._protocol import stop_tasks

    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await stop_tasks(set(tasks))
    first = done.pop()
    first.result()
    return first is not tasks[-1]


def _log_to_stderr() -> None:
    """The hub's own lines (subscriptions, orders, the periodic summary) on stderr, unless the
    program configured logging already."""
    log = logging.getLogger("ibflow.hub")
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@click.command()
@nats_options()
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
    "--tick-by-tick",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Tick-by-tick subscriptions (one per contract and kind) the hub may hold at TWS.",
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
@click.option(
    "--replicas",
    type=click.IntRange(1, 5),
    default=1,
    show_default=True,
    help="JetStream replicas of the hub's buckets (3 on a three-node NATS cluster).",
)
def hub(
    nats_url: str | None,
    nats_user: str | None,
    nats_token: str | None,
    nats_creds: str | None,
    nats_nkey: str | None,
    name: str,
    sim: bool,
    host: str | None,
    port: int | None,
    client_id: int | None,
    readonly_names: tuple[str, ...],
    lines: int,
    tick_by_tick: int,
    lease_ttl: float,
    leader_ttl: float,
    nats_timeout: float,
    replicas: int,
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
    _log_to_stderr()
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
                    tick_by_tick=tick_by_tick,
                    lease_ttl=lease_ttl,
                    leader_ttl=leader_ttl,
                    nats_timeout=nats_timeout,
                    replicas=replicas,
                    credentials=nats_credentials(nats_user, nats_token, nats_creds, nats_nkey),
                )
            )
    except ibflow.IBFlowError as exc:
        print(f"ibflow: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
