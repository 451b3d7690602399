"""``ibflow quote`` (a live table, or one snapshot) and ``ibflow bars`` (history to a table or
a file)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

import ibflow

from . import _format as fmt
from ._common import (
    EXIT_MISSING_EXTRA,
    EXIT_USAGE,
    Failure,
    Settings,
    connection_options,
    console,
    contract_for,
    emit_json,
    min_ticks,
    open_session,
    run,
    settings,
)

__all__ = ["bars", "quote"]

_REFRESH = 0.25  # seconds between redraws of the live table
_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
_FILE_TYPES = (".csv", ".parquet")


# -- quote ------------------------------------------------------------------------------------


@click.command()
@click.argument("symbols", nargs=-1, required=True)
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@connection_options()
@click.pass_context
def quote(ctx: click.Context, symbols: tuple[str, ...], once: bool) -> None:
    """Quotes of SYMBOL… (AAPL, EUR.USD): a live table until Ctrl-C, or --once."""
    where = settings(ctx)
    contracts = [contract_for(s) for s in symbols]
    if once:
        run(_snapshot(where, contracts), where.verbose)
        return
    try:
        run(_live(where, contracts), where.verbose)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a live quote ends: exit 0


async def _snapshot(where: Settings, contracts: Sequence[ibflow.Contract]) -> None:
    async with open_session(where) as session:
        qualified = await session.qualify(*contracts)
        quotes = await asyncio.gather(*(session.quote(c) for c in qualified))
        if where.json:
            emit_json(quotes)
            return
        ticks = await min_ticks(session, qualified)
    console().print(_quote_table(quotes, ticks))


async def _live(where: Settings, contracts: Sequence[ibflow.Contract]) -> None:
    screen = console()
    table = screen.is_terminal and not where.json
    async with open_session(where, follow=True) as session, contextlib.AsyncExitStack() as stack:
        qualified = await session.qualify(*contracts)
        ticks = {} if where.json else await min_ticks(session, qualified)
        streams = [await stack.enter_async_context(session.quotes(c)) for c in qualified]
        latest: dict[ibflow.Contract, ibflow.Quote] = {}
        changed = asyncio.Event()

        async def follow(stream: ibflow.Stream[ibflow.Quote | ibflow.Gap]) -> None:
            async for item in stream:
                if where.json:
                    emit_json({"gap": item} if isinstance(item, ibflow.Gap) else item)
                elif isinstance(item, ibflow.Gap):
                    screen.print(f"gap {item.start:%H:%M:%S}–{item.end:%H:%M:%S}: reconnected")
                elif table:
                    latest[item.contract] = item
                    changed.set()
                else:
                    screen.print(_quote_line(item, ticks.get(item.contract.con_id or 0)))

        async with asyncio.TaskGroup() as group:
            for stream in streams:
                group.create_task(follow(stream))
            if table:
                group.create_task(_redraw(screen, qualified, latest, ticks, changed))


async def _redraw(
    console: Any,
    order: Sequence[ibflow.Contract],
    latest: dict[ibflow.Contract, ibflow.Quote],
    ticks: dict[int, float | None],
    changed: asyncio.Event,
) -> None:
    """Redraw the table in the order the symbols were given, at most every ``_REFRESH`` s."""
    from rich.live import Live

    with Live(_quote_table([], ticks), console=console, auto_refresh=False) as live:
        while True:
            await changed.wait()
            changed.clear()
            rows = [latest[c] for c in order if c in latest]
            live.update(_quote_table(rows, ticks), refresh=True)
            await asyncio.sleep(_REFRESH)


def _quote_table(quotes: Sequence[ibflow.Quote], ticks: dict[int, float | None]) -> Any:
    from rich.table import Table

    table = Table()
    for column in ("symbol", "bid", "ask", "last", "bid size", "ask size", "volume", "data", "at"):
        table.add_column(column, justify="left" if column in ("symbol", "data") else "right")
    for q in quotes:
        tick = ticks.get(q.contract.con_id or 0)
        table.add_row(
            q.contract.display_name,
            fmt.price(q.bid, tick),
            fmt.price(q.ask, tick),
            fmt.price(q.last, tick),
            fmt.quantity(q.bid_size),
            fmt.quantity(q.ask_size),
            fmt.quantity(q.volume),
            q.market_data_type.value + (" HALTED" if q.halted else ""),
            f"{q.time.astimezone():%H:%M:%S}",
        )
    return table


def _quote_line(q: ibflow.Quote, tick: float | None) -> str:
    return (
        f"{q.time.astimezone():%H:%M:%S.%f}"[:-3]
        + f"  {q.contract.display_name}  bid {fmt.price(q.bid, tick)} x {fmt.quantity(q.bid_size)}"
        + f"  ask {fmt.price(q.ask, tick)} x {fmt.quantity(q.ask_size)}"
        + f"  last {fmt.price(q.last, tick)}"
    )


# -- bars -------------------------------------------------------------------------------------


@click.command()
@click.argument("symbol")
@click.option(
    "--period", default="5m", show_default=True, help="Bar size: 1s 5s … 1m 5m … 1h 1d 1w 1M."
)
@click.option(
    "--duration",
    default="1 D",
    show_default=True,
    help="How far back: N S|D|W|M|Y, e.g. '3600 S', '1 D', '2 W'.",
)
@click.option(
    "--what",
    default="TRADES",
    show_default=True,
    help="TRADES, MIDPOINT, BID, ASK, BID_ASK, ADJUSTED_LAST …",
)
@click.option(
    "--rth/--all", default=True, show_default=True, help="Regular trading hours, or all hours."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the bars to FILE.csv or FILE.parquet (needs pandas).",
)
@connection_options()
@click.pass_context
def bars(
    ctx: click.Context,
    symbol: str,
    period: str,
    duration: str,
    what: str,
    rth: bool,
    out: Path | None,
) -> None:
    """Historical bars of SYMBOL, as a table, JSON or a file.

    A duration one request cannot cover is downloaded in IB-legal pieces under IB's pacing
    rules, with a progress bar on a terminal.
    """
    where = settings(ctx)
    contract = contract_for(symbol)
    back = _parse_duration(duration)
    if out is not None:
        _check_writable(out)
    tick, got = run(_fetch(where, contract, period, duration, back, what, rth), where.verbose)
    if out is not None:
        _write(got, out)
        if where.json:
            emit_json({"path": str(out), "bars": len(got)})
        else:
            click.echo(f"wrote {len(got)} bars to {out}")
    elif where.json:
        emit_json(got)
    else:
        console().print(_bars_table(got, tick))


def _parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise Failure(
            f"--duration must be a number and a unit S, D, W, M or Y, like '1 D'; got {text!r}",
            EXIT_USAGE,
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).upper()])


def _check_writable(out: Path) -> None:
    if out.suffix.lower() not in _FILE_TYPES:
        raise Failure(f"--out must end in .csv or .parquet, got {out.name!r}", EXIT_USAGE)
    if not _importable("pandas"):
        raise Failure(
            "--out needs pandas: pip install 'ibflow[pandas]' (or print the bars without --out)",
            EXIT_MISSING_EXTRA,
        )
    if out.suffix.lower() == ".parquet" and not any(
        _importable(engine) for engine in ("pyarrow", "fastparquet")
    ):
        raise Failure(
            "writing parquet needs pyarrow: pip install 'ibflow[parquet]' (or use FILE.csv)",
            EXIT_MISSING_EXTRA,
        )
    if not out.parent.is_dir():
        raise Failure(f"--out: the directory {str(out.parent)!r} does not exist", EXIT_USAGE)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


async def _fetch(
    where: Settings,
    contract: ibflow.Contract,
    period: str,
    duration: str,
    back: timedelta,
    what: str,
    rth: bool,
) -> tuple[float | None, list[ibflow.Bar]]:
    """The bars, and the contract's minimum tick for showing them."""
    async with open_session(where) as session:
        [qualified] = await session.qualify(contract)
        try:
            got = await session.history(
                qualified, period=period, duration=duration, what=what, rth=rth
            )
        except ibflow.InvalidRequest as refused:
            if "download()" not in str(refused):
                raise
            # Longer than one request may be (the error says so, pointing at download()):
            # download it in IB-legal, paced pieces instead.
            end = datetime.now(UTC)
            got = await session.download(
                qualified,
                start=end - back,
                end=end,
                period=period,
                what=what,
                rth=rth,
                cache=not where.sim,  # simulated bars must not land in the real cache
            )
        ticks = {} if where.json else await min_ticks(session, [qualified])
    return ticks.get(qualified.con_id or 0), got


def _write(got: list[ibflow.Bar], out: Path) -> None:
    try:
        frame = ibflow.to_frame(got)
        if out.suffix.lower() == ".csv":
            frame.to_csv(out)
        else:
            frame.to_parquet(out)
    except ImportError as exc:
        raise Failure(str(exc), EXIT_MISSING_EXTRA) from None
    except OSError as exc:
        raise Failure(f"cannot write {out}: {exc.strerror or exc}") from None


def _bars_table(got: Sequence[ibflow.Bar], tick: float | None) -> Any:
    from rich.table import Table

    table = Table(caption=f"{len(got)} bars")
    daily = all(b.time.hour == b.time.minute == b.time.second == 0 for b in got)
    stamp = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S %Z"
    for column in ("time", "open", "high", "low", "close", "volume", "wap", "count"):
        table.add_column(column, justify="left" if column == "time" else "right")
    for bar in got:
        table.add_row(
            bar.time.strftime(stamp),
            fmt.price(bar.open, tick),
            fmt.price(bar.high, tick),
            fmt.price(bar.low, tick),
            fmt.price(bar.close, tick),
            fmt.quantity(bar.volume),
            fmt.price(bar.wap, tick),
            fmt.quantity(bar.count),
        )
    return table
