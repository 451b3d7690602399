"""What every ``ibflow`` command shares: exit codes, connection options, the session, output.

Exit codes are the ``EXIT_*`` constants below (``docs/cli.md`` explains them to users).

Connection options work before the command (``ibflow --sim positions``) and after it
(``ibflow positions --sim``); the command's own value wins. Unset ones come from the environment
exactly as :class:`ibflow.Session` reads it (``IBFLOW_HOST``, ``IBFLOW_PORT``…).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar

import click

import ibflow

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_MISSING_EXTRA",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "Failure",
    "Settings",
    "connection_options",
    "console",
    "contract_for",
    "emit_json",
    "fail",
    "jsonable",
    "min_ticks",
    "open_session",
    "reject_connection_options",
    "run",
    "settings",
]

EXIT_OK = 0
EXIT_FAILED = 1  # TWS unreachable, or it refused or did not answer; a confirmation declined
EXIT_USAGE = 2  # bad input: flag, value, or a request ibflow will not send
EXIT_NOT_FOUND = 3  # an unknown symbol, no such open order
EXIT_MISSING_EXTRA = 4  # pandas or a parquet engine is not installed
EXIT_INTERRUPTED = 130  # Ctrl-C, where it is not the normal end of the command

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_SESSION_TIMEOUT = 15.0
_PIPE_WIDTH = 200
_LOG_LEVELS = (logging.CRITICAL, logging.INFO, logging.DEBUG)
_FOREX = re.compile(r"^[A-Za-z]{3}[./][A-Za-z]{3}$")


class Failure(click.ClickException):
    """A command's failure: one ``ibflow: error: …`` line and ``code`` as the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = code


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise Failure(message, code)


@dataclasses.dataclass(slots=True)
class Settings:
    """Where to connect and how to print, gathered from the group's and the command's flags."""

    host: str | None = None
    port: int | None = None
    client_id: int | None = None
    sim: bool = False
    json: bool = False
    verbose: int = 0

    def check(self) -> None:
        if self.sim and (self.host is not None or self.port is not None):
            raise click.UsageError(
                "--sim runs against the embedded simulator: leave out --host and --port"
            )


def reject_connection_options(where: Settings, command: str, hint: str) -> None:
    """Refuse the group's connection flags for a command they do not apply to."""
    if where.host is not None or where.port is not None or where.client_id is not None:
        raise click.UsageError(f"--host/--port/--client-id do not apply to {command}: {hint}")
    if where.json:
        raise click.UsageError(f"{command} has no --json output")


def settings(ctx: click.Context) -> Settings:
    """This invocation's settings (created by the group; a command's own flags already in)."""
    found = ctx.find_object(Settings)
    return found if found is not None else ctx.ensure_object(Settings)


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value != param.default:  # given: a command's unset flag keeps the group's value
            setattr(settings(ctx), name, value)

    return callback


def connection_options(*, json_flag: bool = True, sim_flag: bool = True) -> Callable[[F], F]:
    """``--host/--port/--client-id`` (and ``--sim``, ``--json``) for a group or a command."""
    options = [
        click.option(
            "--host",
            default=None,
            expose_value=False,
            callback=_store("host"),
            help="TWS/Gateway host (default: IBFLOW_HOST / TWS_HOST, else 127.0.0.1).",
        ),
        click.option(
            "--port",
            type=click.IntRange(1, 65535),
            default=None,
            expose_value=False,
            callback=_store("port"),
            help="TWS/Gateway API port (default: IBFLOW_PORT / TWS_PORT, else 7497).",
        ),
        click.option(
            "--client-id",
            type=click.IntRange(0, 2**31 - 1),
            default=None,
            expose_value=False,
            callback=_store("client_id"),
            help="API client id (default: IBFLOW_CLIENT_ID, else a fresh one).",
        ),
    ]
    if sim_flag:
        options.append(
            click.option(
                "--sim",
                is_flag=True,
                default=False,
                expose_value=False,
                callback=_store("sim"),
                help="Run against an embedded TWS simulator instead of a TWS.",
            )
        )
    options.append(
        click.option(
            "--verbose",
            "-v",
            count=True,
            default=0,
            expose_value=False,
            callback=_store("verbose"),
            help="Show ibflow's log on stderr: -v its steps and warnings, -vv everything.",
        )
    )
    if json_flag:
        options.append(
            click.option(
                "--json",
                is_flag=True,
                default=False,
                expose_value=False,
                callback=_store("json"),
                help="Machine-readable JSON on stdout.",
            )
        )

    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


@contextlib.asynccontextmanager
async def open_session(
    where: Settings,
    *,
    readonly: bool = True,
    all_open_orders: bool = False,
    allow_live: bool = False,
    client_id: int | None = None,
    follow: bool = False,
) -> AsyncIterator[ibflow.Session]:
    """A connected session on ``where``; with ``--sim``, on a simulator started here and now.

    Commands connect read-only unless they change something and use a fresh client id unless
    one is given. A one-shot command never reconnects (one that lost its TWS should say so,
    not wait); one that ``follow``s a stream keeps the session's heartbeat and reconnects.
    """
    where.check()
    options: dict[str, Any] = {
        "timeout": _SESSION_TIMEOUT,
        "readonly": readonly,
        "all_open_orders": all_open_orders,
        "allow_live": allow_live,
    }
    if not follow:
        options.update(reconnect=None, heartbeat_interval=None)
    chosen = client_id if client_id is not None else where.client_id
    if where.sim:
        from ibflow.sim import Simulator

        async with Simulator(port=0) as sim:
            async with ibflow.Session(sim.host, sim.port, chosen, **options) as session:
                yield session
        return
    async with ibflow.Session(where.host, where.port, chosen, **options) as session:
        yield session


def exit_code_for(error: ibflow.IBFlowError) -> int:
    """The documented exit code of an ibflow error."""
    if isinstance(error, ibflow.InvalidRequest):
        return EXIT_USAGE
    if isinstance(error, ibflow.ContractNotFound | ibflow.AmbiguousContract):
        return EXIT_NOT_FOUND
    return EXIT_FAILED


def run(main: Coroutine[Any, Any, T], verbose: int) -> T:
    """Run a command's coroutine; an ibflow error becomes one line and its exit code.

    ibflow's log goes to stderr at ``verbose``'s level for the run: nothing by default (a
    failure is the command's one error line, said once), steps and warnings with ``-v``,
    everything with ``-vv``.
    """
    with _logging(verbose):
        try:
            return asyncio.run(main)
        except ibflow.IBFlowError as exc:
            raise Failure(str(exc), exit_code_for(exc)) from None


@contextlib.contextmanager
def _logging(verbose: int) -> Iterator[None]:
    logger = logging.getLogger("ibflow")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    level = _LOG_LEVELS[min(verbose, len(_LOG_LEVELS) - 1)]
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def contract_for(symbol: str) -> ibflow.Contract:
    """A stock or ETF by its symbol (``AAPL``), or a currency pair (``EUR.USD``)."""
    try:
        if _FOREX.match(symbol):
            return ibflow.Forex(symbol)
        return ibflow.Stock(symbol)
    except ibflow.InvalidRequest as exc:
        raise Failure(f"{symbol!r} is not a symbol: {exc}", EXIT_USAGE) from None


async def min_ticks(
    session: ibflow.Session, contracts: Iterable[ibflow.Contract]
) -> dict[int, float | None]:
    """The minimum price increment of each qualified contract, by ``con_id`` (``None`` where
    TWS would not say: prices then show two decimals)."""
    con_ids = {c.con_id: c for c in contracts if c.con_id is not None}

    async def one(contract: ibflow.Contract) -> float | None:
        try:
            details = await session.contract_details(contract)
        except ibflow.RequestError:
            return None
        ticks = {d.min_tick for d in details if d.min_tick}
        return ticks.pop() if len(ticks) == 1 else None

    found = await asyncio.gather(*(one(c) for c in con_ids.values()))
    return dict(zip(con_ids, found, strict=True))


def console() -> Any:
    """A rich console on stdout; piped output gets room for wide tables instead of 80 columns."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: records as objects, enums as values, times in ISO 8601."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def emit_json(value: Any) -> None:
    """One JSON document on one line of stdout."""
    sys.stdout.write(json.dumps(jsonable(value), ensure_ascii=False) + "\n")
    sys.stdout.flush()
