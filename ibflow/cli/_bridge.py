"""``ibflow bridge``: serve one session over HTTP and WebSockets (the ``bridge`` extra)."""

from __future__ import annotations

import asyncio
import contextlib

import click

import ibflow

from ._common import EXIT_FAILED, EXIT_MISSING_EXTRA, fail, reject_connection_options, settings

__all__ = ["bridge"]


@click.command()
@click.option(
    "--host",
    default=None,
    help="Address to bind (default: HOST, else 127.0.0.1; beyond loopback needs a token).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="HTTP port (default: PORT, else 8000; 0 = any free port).",
)
@click.option("--sim", is_flag=True, help="Serve the embedded simulator instead of a TWS.")
@click.pass_context
def bridge(ctx: click.Context, host: str | None, port: int | None, sim: bool) -> None:
    """Serve one session over HTTP and WebSockets (TWS settings from TWS_*/IBFLOW_*)."""
    where = settings(ctx)
    reject_connection_options(
        where, "ibflow bridge", "its TWS settings come from TWS_*/IBFLOW_* variables"
    )
    try:
        from ibflow.bridge import serve
    except ImportError as exc:
        fail(str(exc), EXIT_MISSING_EXTRA)
    # A bridge that cannot start (no TWS, a bad setting) is one line and exit 1, as doctor's
    # failures; it logs as its LOG_LEVEL says, so the CLI leaves logging alone.
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(host=host, port=port, sim=sim or where.sim))
    except ibflow.IBFlowError as exc:
        fail(str(exc), EXIT_FAILED)
