"""The ``ibflow`` command line: everyday reads and cancels, the simulator, the doctor, the bridge.

Built on click and rich (the ``cli`` extra). Every failure ends in one ``ibflow: error: …`` line
on stderr and a documented exit code (:mod:`ibflow.cli._common`, ``docs/cli.md``), never a
traceback: the first thing a newcomer runs must not greet them with a stack. This module stays
light so that Ctrl-C during start-up is caught too; the commands load when they run.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Console-script entry point (``ibflow``, ``python -m ibflow``)."""
    try:
        try:
            from ._app import run
        except ImportError as exc:
            if (exc.name or "").partition(".")[0] not in ("click", "rich"):
                raise
            print(
                'ibflow: error: the command line needs the cli extra: pip install "ibflow[cli]"',
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        run()
    except KeyboardInterrupt:
        print("ibflow: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
