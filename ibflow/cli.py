"""The ``ibflow`` command line: run the simulator, diagnose a connection, serve the bridge.

Built on click (the ``cli`` extra, with rich for output). Every user error — a bad flag, a
scenario file that does not load — ends in one ``ibflow: error: …`` line and exit code 2, never
a traceback, because the first thing a newcomer runs must not greet them with a stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Literal, NoReturn

try:
    import click
except ImportError:  # pragma: no cover - only without the cli extra
    click = None  # type: ignore[assignment]

EXIT_USAGE = 2


def _fail(message: str) -> NoReturn:
    print(f"ibflow: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


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
    # Our own loggers are the readable ones; ib_async's INFO chatter is noise here.
    logging.getLogger("ib_async").setLevel(logging.WARNING)


if click is not None:

    @click.group(
        name="ibflow",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.version_option(package_name="ibflow", prog_name="ibflow")
    def app() -> None:
        """ibflow: an asyncio client for Interactive Brokers TWS, and a TWS simulator."""

    @app.command()
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
    def sim(
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
        from .sim import Scenario, ScenarioError, Simulator

        try:
            loaded = Scenario.from_file(scenario) if scenario is not None else None
        except (ScenarioError, OSError) as exc:
            _fail(str(exc))
        _setup_logging(verbose)

        async def run() -> None:
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
    @click.option(
        "--host", default=None, help="TWS/Gateway host (default: the embedded simulator)."
    )
    @click.option(
        "--port",
        type=click.IntRange(1, 65535),
        default=None,
        help="API port of a real TWS/Gateway (default: the embedded simulator).",
    )
    @click.option(
        "--client-id",
        type=click.IntRange(1, 2**31 - 1),
        default=None,
        help="Client id (default: a fresh one).",
    )
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
    def demo(
        host: str | None, port: int | None, client_id: int | None, trade: bool, seconds: float
    ) -> None:
        """Show ibflow end to end: account, quotes, an order, history (embedded simulator)."""
        from ._demo import run_demo

        raise SystemExit(run_demo(host, port, client_id, trade=trade, seconds=seconds))

    @app.command()
    @click.option("--host", default=None, help="TWS/Gateway host (default: from env, 127.0.0.1).")
    @click.option(
        "--port",
        type=click.IntRange(1, 65535),
        default=None,
        help="API port (default: from env, 7497).",
    )
    @click.option(
        "--client-id",
        type=click.IntRange(1, 2**31 - 1),
        default=None,
        help="Client id to probe with (default: a fresh one).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def doctor(host: str | None, port: int | None, client_id: int | None, as_json: bool) -> None:
        """Walk the connection chain step by step and say what to fix."""
        from ._doctor import main as run_doctor

        raise SystemExit(run_doctor(host, port, client_id, as_json))

    @app.command()
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
    def bridge(host: str | None, port: int | None, sim: bool) -> None:
        """Serve one session over HTTP and WebSockets (TWS settings from TWS_*/IBFLOW_*)."""
        try:
            from .bridge import serve
        except ImportError as exc:
            _fail(str(exc))
        from ._errors import IBFlowError

        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(host=host, port=port, sim=sim))
        except IBFlowError as exc:
            # An unreachable TWS is not a usage error: one line, exit 1 (as doctor's failures).
            print(f"ibflow: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None

    from .hub._cli import hub as _hub

    app.add_command(_hub)


def main() -> None:
    """Console-script entry point."""
    if click is None:
        _fail('the command line needs the cli extra: pip install "ibflow[cli]"')
    try:
        app.main(standalone_mode=False, prog_name="ibflow")
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else exc.format_message())
    except click.UsageError as exc:
        _fail(exc.format_message())
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        raise SystemExit(130) from None
