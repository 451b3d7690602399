"""``ibflow demo``: the whole library in one minute, on the embedded simulator by default.

It is the first thing a newcomer runs, so it shows every layer working end to end — connect,
account, contracts, a quote stream, an order through to its fill, history and a paced download —
and it runs anywhere: with no ``--port`` it starts ``ibflow.sim`` in-process on a free loopback
port. Against a real TWS/Gateway (``--port``) it is read-only unless ``--trade`` is given on a
paper account, because a demo must never surprise anyone with an order.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ibflow import Gap, LimitOrder, Quote, Session, Stock, to_frame

__all__ = ["run_demo"]


@contextlib.asynccontextmanager
async def _target(
    host: str | None, port: int | None, client_id: int | None, trade: bool
) -> AsyncIterator[tuple[Session, bool, str]]:
    """A connected session, and whether the demo may trade on it."""
    if port is None and host is None:
        from .sim import Simulator

        async with Simulator(port=0, seed=7) as sim:
            session = Session(host=sim.host, port=sim.port, client_id=client_id or 1, timeout=10)
            async with session:
                yield session, True, f"embedded simulator on {sim.host}:{sim.port}"
        return
    session = Session(host=host, port=port, client_id=client_id, readonly=not trade, timeout=15)
    async with session:
        if trade and not session.is_paper:
            raise SystemExit("ibflow demo: refusing --trade on a live account")
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
            f"net liquidation {summary.net_liquidation or 0:,.2f} {summary.currency or ''}, "
            f"cash {summary.total_cash or 0:,.2f}, buying power {summary.buying_power or 0:,.2f}"
        )
        table = Table(title="positions")
        for column in ("contract", "quantity", "avg cost"):
            table.add_column(column, justify="right" if column != "contract" else "left")
        for pos in await session.positions():
            table.add_row(pos.contract.display_name, f"{pos.quantity:g}", f"{pos.avg_cost:,.2f}")
        console.print(table)

        [aapl] = await session.qualify(Stock("AAPL"))
        console.print(f"qualified AAPL: con_id {aapl.con_id}, {aapl.primary_exchange}")

        console.rule(f"quotes for {seconds:g} s (an async iterator of immutable snapshots)")
        received = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds), session.quotes(aapl) as quotes:
                async for item in quotes:
                    if isinstance(item, Gap):
                        console.print(f"gap {item.start:%H:%M:%S}–{item.end:%H:%M:%S}")
                        continue
                    received += 1
                    if received <= 5 or received % 10 == 0:
                        _print_quote(console, item)
        console.print(f"{received} quotes; the subscription was cancelled on leaving the block")

        if may_trade:
            console.rule("an order through to its fill")
            snapshot = await session.quote(aapl)
            bid = snapshot.bid or snapshot.last or 100.0
            below = round(bid * 0.98, 2)
            trade_handle = await session.place(aapl, LimitOrder("BUY", 10, below))
            console.print(
                f"order {trade_handle.order_id}: limit {below} rests — {trade_handle.status}"
            )
            ask = (await session.quote(aapl)).ask or bid
            await trade_handle.modify(limit_price=round(ask + 0.05, 2))
            fills = await trade_handle.wait_filled(timeout=10)
            for fill in fills:
                console.print(
                    f"filled {fill.quantity:g} @ {fill.price} (exec {fill.exec_id}), "
                    f"commission {fill.commission.amount if fill.commission else 'pending'}"
                )
            console.print(f"final status {trade_handle.status}")
        else:
            console.print("[dim]read-only: skipping the order step (use --trade on paper)[/]")

        console.rule("history")
        bars = await session.history(aapl, period="1h", duration="2 D")
        frame = to_frame(bars)
        console.print(f"{len(bars)} hourly bars; last three:")
        console.print(frame.tail(3).to_string(index=False))

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


def _print_quote(console: Any, q: Quote) -> None:
    stamp = f"{q.time:%H:%M:%S.%f}"[:-3]
    console.print(
        f"{stamp}  bid {q.bid} x {q.bid_size or 0:g}  ask {q.ask} x {q.ask_size or 0:g}  "
        f"last {q.last}"
    )


def run_demo(
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    *,
    trade: bool = False,
    seconds: float = 3.0,
) -> int:
    """Run the demo; returns the process exit code."""
    from rich.console import Console

    console = Console()
    asyncio.run(_demo(console, host, port, client_id, trade, seconds))
    console.rule("[green]done")
    return 0
