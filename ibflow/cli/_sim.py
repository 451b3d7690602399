"""``ibflow sim``: the TWS simulator on its own, for any TWS API client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Literal

import click

from ._common import EXIT_USAGE, Failure, fail, reject_connection_options, settings

__all__ = ["sim"]


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
@click.option(
    "--pacing",
    type=click.Choice(["ib", "strict", "off"]),
    default="ib",
    show_default=True,
    help="IB's request limits. ib: the 15 s identical-request and six-in-2 s history rules "
    "on bars of 30 s and smaller, larger bars only 60 requests in 10 min and 50 open; "
    "strict: those rules on every bar size; off: no limits.",
)
@click.option("--no-pacing", is_flag=True, help="Same as --pacing off.")
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
    pacing: Literal["ib", "strict", "off"],
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
            pacing="off" if no_pacing else pacing,
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
