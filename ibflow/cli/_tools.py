"""``ibflow demo`` and ``ibflow doctor``: the tour of the library, and the diagnosis of a TWS."""

from __future__ import annotations

import click

from ._common import connection_options, run, settings

__all__ = ["demo", "doctor"]


@click.command()
@connection_options(json_flag=False)
@click.option(
    "--trade", is_flag=True, help="Against a real paper account, also place the demo order."
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.5, max=600),
    default=3.0,
    show_default=True,
    help="How long to stream quotes.",
)
@click.pass_context
def demo(ctx: click.Context, trade: bool, seconds: float) -> None:
    """Show ibflow end to end: account, quotes, an order, history (embedded simulator)."""
    where = settings(ctx)
    if where.json:
        raise click.UsageError("demo has no --json output")
    where.check()
    from ._demo import run_demo

    real = where.host is not None or where.port is not None
    run(
        run_demo(
            where.host if real else None,
            where.port if real else None,
            where.client_id,
            trade=trade,
            seconds=seconds,
        ),
        where.verbose,
    )


@click.command()
@connection_options(sim_flag=False)
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Walk the connection chain step by step and say what to fix."""
    where = settings(ctx)
    if where.sim:
        raise click.UsageError("doctor diagnoses a real TWS/Gateway; --sim does not apply")
    from .._doctor import main as run_doctor

    raise SystemExit(run_doctor(where.host, where.port, where.client_id, where.json))
