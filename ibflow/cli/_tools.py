"""``ibflow demo`` and ``ibflow doctor``: the tour of the library, and the diagnosis of a TWS
(or, with ``--hub``, of a hub)."""

from __future__ import annotations

import click

from ..hub._cli import nats_credentials, nats_options
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
@nats_options(url_flag="--hub", url_help="Diagnose a hub on this NATS server instead of a TWS.")
@click.option("--name", default=None, help="With --hub: the hub's name (default: every hub heard).")
@click.pass_context
def doctor(
    ctx: click.Context,
    nats_url: str | None,
    nats_user: str | None,
    nats_token: str | None,
    nats_creds: str | None,
    nats_nkey: str | None,
    name: str | None,
) -> None:
    """Walk the connection chain step by step and say what to fix; or, with --hub, show a
    hub's statistics."""
    where = settings(ctx)
    if where.sim:
        raise click.UsageError("doctor diagnoses a real TWS/Gateway; --sim does not apply")
    if nats_url is not None:
        from .._doctor import hub_main

        credentials = nats_credentials(nats_user, nats_token, nats_creds, nats_nkey)
        raise SystemExit(hub_main(nats_url, name, credentials, where.json))
    if name is not None or any((nats_user, nats_token, nats_creds, nats_nkey)):
        raise click.UsageError("--name and the --nats-* flags go with --hub")
    from .._doctor import main as run_doctor

    raise SystemExit(run_doctor(where.host, where.port, where.client_id, where.json))
