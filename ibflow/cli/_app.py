"""The ``ibflow`` group and its commands; :func:`run` turns every failure into one line.

A new command is a click command in its own module, added to :data:`COMMANDS`.
"""

from __future__ import annotations

import sys

import click

from ..hub._cli import hub
from ._account import account, positions
from ._bridge import bridge
from ._common import EXIT_INTERRUPTED, EXIT_USAGE, Settings, connection_options
from ._market import bars, quote
from ._orders import cancel, flatten, orders
from ._sim import sim
from ._tools import demo, doctor

__all__ = ["COMMANDS", "app", "run"]

COMMANDS: tuple[click.Command, ...] = (
    quote,
    bars,
    positions,
    account,
    orders,
    cancel,
    flatten,
    demo,
    doctor,
    sim,
    bridge,
    hub,
)


@click.group(name="ibflow", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ibflow", prog_name="ibflow")
@connection_options()
@click.pass_context
def app(ctx: click.Context) -> None:
    """ibflow: an asyncio client for Interactive Brokers TWS, and a TWS simulator.

    Exit codes: 0 done, 1 TWS unreachable or refused, 2 bad input, 3 not found,
    4 missing optional dependency, 130 interrupted (see docs/cli.md).
    """
    ctx.ensure_object(Settings)


for _command in COMMANDS:
    app.add_command(_command)


def run(args: list[str] | None = None) -> None:
    """Run the command line; exits with the command's code."""
    try:
        code = app.main(args=args, standalone_mode=False, prog_name="ibflow")
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else exc.format_message())
        raise SystemExit(0) from None
    except click.ClickException as exc:
        print(f"ibflow: error: {exc.format_message()}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code if exc.exit_code else EXIT_USAGE) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        print("ibflow: interrupted", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    raise SystemExit(code if isinstance(code, int) else 0)
