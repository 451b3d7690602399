"""``ibflow positions`` and ``ibflow account``: what the login holds, and its headline numbers."""

from __future__ import annotations

from typing import Any

import click

from . import _format as fmt
from ._common import (
    Settings,
    connection_options,
    console,
    emit_json,
    min_ticks,
    open_session,
    run,
    settings,
)

__all__ = ["account", "positions"]

_SUMMARY_ROWS = (
    ("net liquidation", "net_liquidation"),
    ("total cash", "total_cash"),
    ("buying power", "buying_power"),
    ("available funds", "available_funds"),
    ("excess liquidity", "excess_liquidity"),
    ("initial margin", "init_margin"),
    ("maintenance margin", "maint_margin"),
    ("gross position value", "gross_position_value"),
    ("equity with loan", "equity_with_loan"),
)


@click.command()
@connection_options()
@click.pass_context
def positions(ctx: click.Context) -> None:
    """Every position of every account of the login."""
    where = settings(ctx)
    run(_positions(where), where.verbose)


async def _positions(where: Settings) -> None:
    async with open_session(where) as session:
        held = await session.positions()
        if where.json:
            emit_json(held)
            return
        ticks = await min_ticks(session, [p.contract for p in held])
    from rich.table import Table

    if not held:
        click.echo("no positions")
        return
    table = Table()
    for column in ("account", "contract", "type", "quantity", "avg cost"):
        table.add_column(column, justify="right" if column in ("quantity", "avg cost") else "left")
    for p in held:
        tick = ticks.get(p.contract.con_id or 0)
        # IB's average cost includes the multiplier (an option at 2.50 costs 250.00).
        multiplied = p.contract.multiplier not in (None, 1.0)
        table.add_row(
            p.account,
            p.contract.display_name,
            p.contract.sec_type.value,
            fmt.quantity(p.quantity),
            fmt.money(p.avg_cost) if multiplied else fmt.price(p.avg_cost, tick),
        )
    _print(table)


@click.command()
@click.option("--account", "account_id", default=None, help="One account (default: every one).")
@connection_options()
@click.pass_context
def account(ctx: click.Context, account_id: str | None) -> None:
    """The headline numbers of each account: net liquidation, cash, buying power, margin."""
    where = settings(ctx)
    run(_account(where, account_id), where.verbose)


async def _account(where: Settings, account_id: str | None) -> None:
    async with open_session(where) as session:
        chosen = [account_id] if account_id is not None else list(session.accounts)
        summaries = [await session.account_summary(a) for a in chosen]
    if where.json:
        emit_json(summaries)
        return
    from rich.table import Table

    table = Table()
    table.add_column("")
    for summary in summaries:
        title = summary.account + (f" ({summary.currency})" if summary.currency else "")
        table.add_column(title, justify="right")
    for label, name in _SUMMARY_ROWS:
        table.add_row(label, *(fmt.money(getattr(s, name)) for s in summaries))
    _print(table)


def _print(renderable: Any) -> None:
    console().print(renderable)
