"""The ``ibflow`` command line: run the simulator, diagnose a connection.

Built on typer (the ``cli`` extra). Every user error — a bad flag, a scenario file that does not
load — ends in one ``ibflow: error: …`` line and exit code 2, never a traceback, because the
first thing a newcomer runs must not greet them with a stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

try:
    import click
    import typer
except ImportError:  # pragma: no cover - only without the cli extra
    typer = None  # type: ignore[assignment]

EXIT_USAGE = 2


def _fail(message: str) -> NoReturn:
    print(f"ibflow: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[RichHandler(show_path=False, markup=False, rich_tracebacks=False)],
    )
    # Our own loggers are the readable ones; ib_async's INFO chatter is noise here.
    logging.getLogger("ib_async").setLevel(logging.WARNING)


if typer is not None:
    app = typer.Typer(
        name="ibflow",
        help="ibflow: an asyncio client for Interactive Brokers TWS, and a TWS simulator.",
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    def _version(value: bool) -> None:
        if value:
            from ._version import __version__

            print(f"ibflow {__version__}")
            raise typer.Exit()

    @app.callback()
    def _root(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
        ] = False,
    ) -> None:
        """ibflow: an asyncio client for Interactive Brokers TWS, and a TWS simulator."""

    @app.command()
    def sim(
        host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = (
            "127.0.0.1"
        ),
        port: Annotated[
            int, typer.Option(min=0, max=65535, help="Port to listen on (7497 = paper TWS).")
        ] = 7497,
        seed: Annotated[int, typer.Option(help="Seed for prices, bars and fills.")] = 0,
        scenario: Annotated[
            Path | None,
            typer.Option(help="Scenario file (.toml or .json): accounts, universe, prices."),
        ] = None,
        readonly: Annotated[
            bool, typer.Option("--readonly", help="Refuse orders with error 321, as TWS does.")
        ] = False,
        speed: Annotated[
            float, typer.Option(min=0.001, help="Time scale: 10 makes every limit 10x shorter.")
        ] = 1.0,
        no_pacing: Annotated[
            bool, typer.Option("--no-pacing", help="Do not enforce IB's message/history limits.")
        ] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every frame.")] = False,
    ) -> None:
        """Run the TWS simulator until Ctrl-C; point any TWS API client at it."""
        from .sim import Scenario, ScenarioError, Simulator

        try:
            loaded = Scenario.from_file(scenario) if scenario is not None else None
        except (ScenarioError, OSError) as exc:
            _fail(str(exc))
        _setup_logging(verbose)

        async def run() -> None:
            simulator = Simulator(
                host=host, port=port, seed=seed, scenario=loaded, readonly=readonly,
                speed=speed, pacing=not no_pacing,
            )
            try:
                await simulator.start()
            except OSError as exc:
                _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
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
            asyncio.run(run())

    @app.command()
    def doctor(
        host: Annotated[str | None, typer.Option(help="TWS/Gateway host.")] = None,
        port: Annotated[int | None, typer.Option(min=1, max=65535, help="API port.")] = None,
        client_id: Annotated[
            int | None, typer.Option(min=1, max=2**31 - 1, help="Client id to probe with.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Walk the connection chain step by step and say what to fix."""
        from ._doctor import main as run_doctor

        raise typer.Exit(run_doctor(host, port, client_id, as_json))


def main() -> None:
    """Console-script entry point."""
    if typer is None:
        _fail('the command line needs the cli extra: pip install "ibflow[cli]"')
    try:
        code = app(standalone_mode=False)
    except click.UsageError as exc:
        _fail(exc.format_message())
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        raise SystemExit(130) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)
