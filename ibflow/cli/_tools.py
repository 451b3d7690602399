"""``ibflow demo``, ``ibflow doctor`` and ``ibflow sim``: the tour, the diagnosis, the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import click

from ._common import EXIT_USAGE, Failure, Settings, connection_options, fail, run, settings

__all__ = ["demo", "doctor", "reject_connection_options", "sim"]


def reject_connection_options(where: Settings, command: str, hint: str) -> None:
    """Refuse the group's connection flags for a command they do not apply to."""
    if where.host is not None or where.port is not None or where.client_id is not None:
        raise click.UsageError(f"--host/--port/--client-id do not apply to {command}: {hint}")
    if where.json:
        raise click.UsageError(f"{command} has no --json output")


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
    from .._demo import run_demo

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


def _setup_logging(verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[
            RichHandler(
                console=Console(stderr=True),
                show_path=False,
                markup=False,
                rich_tracebacks=False,
            )
        ],
    )


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (loopback by default).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=7497,
    show_default=True,
    help="Port to listen on (7497 = paper TWS, 0 = any free port).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for prices, bars and fills."
)
@click.option(
    "--scenario",
    type=click.Path(path_type=Path),
    default=None,
    help="Scenario file (.toml or .json): accounts, universe, prices.",
)
@click.option("--readonly", is_flag=True, help="Refuse orders with error 321, as TWS does.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="Time scale: 10 makes every time-based limit 10x shorter.",
)
@click.option("--no-pacing", is_flag=True, help="Do not enforce IB's message/history limits.")
@click.option("--verbose", "-v", is_flag=True, help="Log every request in detail.")
@click.pass_context
def sim(
    ctx: click.Context,
    host: str,
    port: int,
    seed: int,
    scenario: Path | None,
    readonly: bool,
    speed: float,
    no_pacing: bool,
    verbose: bool,
) -> None:
    """Run the TWS simulator until Ctrl-C; point any TWS API client at it."""
    where = settings(ctx)
    reject_connection_options(where, "ibflow sim", "give its own: ibflow sim --host H --port P")
    if where.sim:
        raise click.UsageError("ibflow sim is the simulator; --sim does not apply")
    from ibflow.sim import Scenario, ScenarioError, Simulator

    try:
        loaded = Scenario.from_file(scenario) if scenario is not None else None
    except (ScenarioError, OSError) as exc:
        fail(str(exc), EXIT_USAGE)
    _setup_logging(verbose)

    async def serve() -> None:
        simulator = Simulator(
            host=host,
            port=port,
            seed=seed,
            scenario=loaded,
            readonly=readonly,
            speed=speed,
            pacing=not no_pacing,
        )
        try:
            await simulator.start()
        except OSError as exc:
            raise Failure(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_USAGE
            ) from None
        accounts = ",".join(simulator.broker.accounts)
        print(
            f"ibflow sim: TWS API on {simulator.host}:{simulator.port} "
            f"(server version 178, accounts {accounts}, seed {seed}). Ctrl-C stops it.",
            flush=True,
        )
        try:
            await simulator.serve_forever()
        finally:
            await simulator.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
