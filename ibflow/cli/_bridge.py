"""``ibflow bridge``: serve one session over HTTP and WebSockets (the ``bridge`` extra)."""

from __future__ import annotations

import contextlib

import click

from ._common import EXIT_MISSING_EXTRA, fail, reject_connection_options, run, settings

__all__ = ["bridge"]


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. It has no authentication and can place orders: keep loopback.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="HTTP port (0 = any free port).",
)
@click.option("--sim", is_flag=True, help="Serve the embedded simulator instead of a TWS.")
@click.pass_context
def bridge(ctx: click.Context, host: str, port: int, sim: bool) -> None:
    """Serve one session over HTTP and WebSockets (TWS settings from IBFLOW_* variables)."""
    where = settings(ctx)
    reject_connection_options(
        where, "ibflow bridge", "its TWS settings come from IBFLOW_* variables"
    )
    try:
        from ibflow.bridge import serve
    except ImportError as exc:
        fail(str(exc), EXIT_MISSING_EXTRA)
    # An unreachable TWS is not a usage error: one line, exit 1 (as doctor's failures).
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(host=host, port=port, sim=sim or where.sim), verbose=None)
