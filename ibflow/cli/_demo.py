"""``ibflow demo``: the whole library in one minute, on the embedded simulator by default.

It is the first thing a newcomer runs, so it shows every layer working end to end — connect,
account, contracts, a quote stream, an order through its change to its fill, history and a
paced download — and it runs anywhere: with no ``--port`` it starts ``ibflow.sim`` in-process
on a free loopback port, and it needs nothing beyond the ``cli`` extra (pandas only adds a
line). Against a real TWS/Gateway (``--port``) it is read-only unless ``--trade`` is given on a
paper account, because a demo must never surprise anyone with an order. It uses the public
``ibflow`` namespace only, as a user's program would.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import ibflow

from . import _format as fmt

__all__ = ["run_demo"]


@contextlib.asynccontextmanager
async def _target(
    host: str | None, port: int | None, client_id: int | None, trade: bool
) -> AsyncIterator[tuple[ibflow.Session, bool, str]]:
    """A connected session, and whether the demo may trade on it."""
    if port is None and host is None:
        from ibflow.sim import Simulator

        async with Simulator(port=0, seed=7) as sim:
            session = ibflow.Session(sim.host, sim.port, client_id or 1, timeout=10)
            async with session:
                yield session, True, f"embedded simulator on {sim.host}:{sim.port}"
        return
    session = ibflow.Session(host, port, client_id, readonly=not trade, timeout=15)
    async with session:
        if trade and not session.is_paper:
            raise ibflow.SafetyError("ibflow demo: refusing --trade on a live account")
        yield session, trade, f"TWS/Gateway at {host or 'default host'}:{port or 'default port'}"


async def _demo(
    console: Any,
    host: str | None,
    port: int | None,
    client_id: int | None,
    trade: bool,
    seconds: float,
) -> None:
    from rich.table import Table

    async with _target(host, port, client_id, trade) as (session, may_trade, where):
        console.rule(f"[bold]ibflow demo[/] — {where}")
        console.print(
            f"connected as client {session.client_id}, server version "
            f"{session.server_version}, accounts {', '.join(session.accounts)} "
            f"({'paper' if session.is_paper else 'LIVE'})"
        )

        summary = await session.account_summary()
        console.print(
            f"net liquidation {fmt.money(summary.net_liquidation, summary.currency)}, "
            f"cash {fmt.money(summary.total_cash)}, "
            f"buying power {fmt.money(summary.buying_power)}"
        )
        table = Table(title="positions")
        for column in ("contract", "quantity", "avg cost"):
            table.add_column(column, justify="right" if column != "contract" else "left")
        for pos in await session.positions():
            table.add_row(
                pos.contract.display_name, fmt.quantity(pos.quantity), fmt.money(pos.avg_cost)
            )
        console.print(table)

        [aapl] = await session.qualify(ibflow.Stock("AAPL"))
        [details] = await session.contract_details(aapl)
        tick = details.min_tick
        console.print(
            f"qualified AAPL: con_id {aapl.con_id}, {aapl.primary_exchange}, "
            f"min tick {fmt.price(tick, tick)}"
        )

        console.rule(f"quotes for {seconds:g} s (an async iterator of immutable snapshots)")
        received = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds), session.quotes(aapl) as quotes:
                async for item in quotes:
                    if isinstance(item, ibflow.Gap):
                        console.print(f"gap {item.start:%H:%M:%S}–{item.end:%H:%M:%S}")
                        continue
                    received += 1
                    if received <= 5 or received % 10 == 0:
                        _print_quote(console, item, tick)
        console.print(f"{received} quotes; the subscription was cancelled on leaving the block")

        if may_trade:
            await _order_step(console, session, aapl, tick)
        else:
            console.print("[dim]read-only: skipping the order step (use --trade on paper)[/]")

        console.rule("history")
        bars = await session.history(aapl, period="1h", duration="2 D")
        console.print(f"{len(bars)} hourly bars; last three:")
        console.print(_bars_table(bars[-3:], tick))
        if importlib.util.find_spec("pandas") is not None:
            frame = ibflow.to_frame(bars)
            console.print(f"ibflow.to_frame(bars): a DataFrame of {frame.shape[0]} rows")
        else:
            console.print("[dim]ibflow.to_frame(bars) gives a DataFrame with ibflow[pandas][/]")

        # Up to the start of today: settled bars, so the repeat is served wholly from the cache.
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with tempfile.TemporaryDirectory() as cache_dir:
            week = await session.download(
                aapl,
                start=end - timedelta(days=7),
                end=end,
                period="5m",
                cache=cache_dir,
                progress=console.is_terminal,
            )
            again = await session.download(
                aapl,
                start=end - timedelta(days=7),
                end=end,
                period="5m",
                cache=cache_dir,
                progress=False,
            )
        console.print(
            f"downloaded {len(week)} five-minute bars under IB's pacing rules; "
            f"the repeat came from the local cache ({len(again)} bars)"
        )

        stats = session.statistics()
        console.rule("session statistics")
        console.print(
            f"messages in {stats.messages_in:,}, out {stats.messages_out:,}; "
            f"connects {stats.connects}, reconnects {stats.reconnects}"
        )


async def _order_step(
    console: Any, session: ibflow.Session, aapl: ibflow.Contract, tick: float | None
) -> None:
    """A limit below the market rests; raised above the ask, it fills."""
    console.rule("an order through its change to its fill")
    snapshot = await session.quote(aapl)
    bid = snapshot.bid or snapshot.last or 100.0
    below = _on_tick(bid * 0.98, tick)
    trade = await session.place(aapl, ibflow.LimitOrder("BUY", 10, below))
    console.print(
        f"order {trade.order_id}: BUY 10 limit {fmt.price(below, tick)}, 2% under the bid "
        f"{fmt.price(bid, tick)}: it rests — {trade.status}"
    )
    ask = (await session.quote(aapl)).ask or bid
    above = _on_tick(ask + 5 * (tick or 0.01), tick)
    await trade.modify(limit_price=above)
    console.print(
        f"order {trade.order_id}: modified to limit {fmt.price(above, tick)}, above the ask "
        f"{fmt.price(ask, tick)}, so it crosses — {trade.status}"
    )
    for fill in await trade.wait_filled(timeout=10):
        commission = fill.commission
        console.print(
            f"filled {fmt.quantity(fill.quantity)} @ {fmt.price(fill.price, tick)} "
            f"(exec {fill.exec_id}), commission "
            + (fmt.money(commission.amount, commission.currency) if commission else "pending")
        )
    console.print(f"final status {trade.status}")


def _on_tick(value: float, tick: float | None) -> float:
    step = tick or 0.01
    return round(round(value / step) * step, fmt.tick_decimals(step))


def _bars_table(bars: list[ibflow.Bar], tick: float | None) -> Any:
    from rich.table import Table

    table = Table()
    for column in ("time", "open", "high", "low", "close", "volume"):
        table.add_column(column, justify="left" if column == "time" else "right")
    for bar in bars:
        table.add_row(
            f"{bar.time:%Y-%m-%d %H:%M %Z}",
            fmt.price(bar.open, tick),
            fmt.price(bar.high, tick),
            fmt.price(bar.low, tick),
            fmt.price(bar.close, tick),
            fmt.quantity(bar.volume),
        )
    return table


def _print_quote(console: Any, q: ibflow.Quote, tick: float | None) -> None:
    stamp = f"{q.time:%H:%M:%S.%f}"[:-3]
    console.print(
        f"{stamp}  bid {fmt.price(q.bid, tick)} x {fmt.quantity(q.bid_size)}  "
        f"ask {fmt.price(q.ask, tick)} x {fmt.quantity(q.ask_size)}  "
        f"last {fmt.price(q.last, tick)}"
    )


async def run_demo(
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    *,
    trade: bool = False,
    seconds: float = 3.0,
) -> None:
    """Run the demo, printing to stdout.

    Raises:
        IBFlowError: the session could not connect, or a step failed.
    """
    from rich.console import Console

    console = Console(highlight=False)
    await _demo(console, host, port, client_id, trade, seconds)
    console.rule("[green]done")
