"""``ibflow orders`` (what is working, of every client id), ``cancel`` and ``flatten``.

TWS lets only the client id that placed an order cancel it, so ``ibflow cancel ORDER_ID`` finds
the order among every client id's open orders and cancels it as that client id. If the program
that placed it is still connected with that id, TWS would refuse a second connection: cancel it
there, or cancel everything with ``ibflow cancel --all`` (TWS's global cancel).
``ibflow flatten`` is the kill switch: it cancels the open orders and closes the positions.
Each of these asks first unless ``--yes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

import ibflow

from . import _format as fmt
from ._common import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    Failure,
    Settings,
    connection_options,
    console,
    emit_json,
    min_ticks,
    open_session,
    run,
    settings,
)

__all__ = ["cancel", "flatten", "orders"]


@click.command()
@click.option("--all", "everything", is_flag=True, help="Also today's filled and cancelled orders.")
@connection_options()
@click.pass_context
def orders(ctx: click.Context, everything: bool) -> None:
    """Open orders of every client id (with --all, today's completed ones too)."""
    where = settings(ctx)
    run(_orders(where, everything), where.verbose)


async def _orders(where: Settings, everything: bool) -> None:
    async with open_session(where, all_open_orders=True) as session:
        rows = await session.open_orders()
        if everything:
            rows += await session.completed_orders()
        if where.json:
            emit_json(rows)
            return
        ticks = await min_ticks(session, [r.contract for r in rows])
    if rows:
        _print(_orders_table(rows, ticks))
    else:
        click.echo("no orders today" if everything else "no open orders")


def _orders_table(rows: Sequence[ibflow.OrderSnapshot], ticks: dict[int, float | None]) -> Any:
    from rich.table import Table

    table = Table()
    columns = ("order", "client", "account", "side", "qty", "contract", "type", "limit", "stop")
    for column in (*columns, "tif", "status", "filled", "avg price"):
        numeric = column in ("order", "client", "qty", "limit", "stop", "filled", "avg price")
        table.add_column(column, justify="right" if numeric else "left")
    for r in rows:
        tick = ticks.get(r.contract.con_id or 0)
        table.add_row(
            fmt.DASH if r.order_id is None else str(r.order_id),
            fmt.DASH if r.client_id is None else str(r.client_id),
            r.account or fmt.DASH,
            r.side.value,
            fmt.quantity(r.quantity),
            r.contract.display_name,
            str(r.order_type),
            fmt.price(r.limit_price, tick),
            fmt.price(r.stop_price, tick),
            str(r.tif),
            r.status.value,
            fmt.quantity(r.filled),
            fmt.price(r.avg_fill_price, tick),
        )
    return table


@click.command()
@click.argument("order_id", type=click.IntRange(min=1), required=False)
@click.option(
    "--all", "everything", is_flag=True, help="Cancel every open order (TWS's global cancel)."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@connection_options()
@click.pass_context
def cancel(ctx: click.Context, order_id: int | None, everything: bool, yes: bool) -> None:
    """Cancel the open order ORDER_ID, or every open order with --all."""
    if (order_id is None) == (not everything):
        raise click.UsageError("give an ORDER_ID or --all (not both)")
    where = settings(ctx)
    if everything:
        run(_cancel_all(where, yes), where.verbose)
    else:
        assert order_id is not None
        run(_cancel_one(where, order_id, yes), where.verbose)


async def _cancel_one(where: Settings, order_id: int, yes: bool) -> None:
    # Looked up under a fresh client id: the owner's may be the one to cancel with next.
    lookup = open_session(where, all_open_orders=True, client_id=ibflow.new_client_id())
    async with lookup as session:
        found = [r for r in await session.open_orders() if r.order_id == order_id]
    if where.client_id is not None:
        found = [r for r in found if r.client_id == where.client_id]
    if not found:
        whose = f" of client id {where.client_id}" if where.client_id is not None else ""
        raise Failure(f"no open order {order_id}{whose} (see `ibflow orders`)", EXIT_NOT_FOUND)
    if len(found) > 1:
        owners = ", ".join(str(r.client_id) for r in found)
        raise Failure(
            f"order id {order_id} is open under client ids {owners}: pick one with --client-id",
            EXIT_USAGE,
        )
    [row] = found
    owner = row.client_id
    if owner is None or owner < 0:
        raise Failure(
            f"order {order_id} was not placed through the API; cancel it in TWS, or cancel "
            "every order with `ibflow cancel --all`"
        )
    _confirm(f"Cancel order {order_id} ({_describe(row)}, client id {owner})?", yes)
    try:
        async with open_session(where, readonly=False, allow_live=True, client_id=owner) as session:
            status = await session.cancel_order(order_id)
    except ibflow.ClientIdInUse:
        raise Failure(
            f"order {order_id} belongs to client id {owner}, which is connected now, and TWS "
            "lets only that client id cancel it: cancel it from that program, or cancel every "
            "order with `ibflow cancel --all`"
        ) from None
    if where.json:
        emit_json({"order_id": order_id, "client_id": owner, "status": status})
    else:
        click.echo(f"order {order_id}: {status.value}")


async def _cancel_all(where: Settings, yes: bool) -> None:
    async with open_session(
        where, readonly=False, allow_live=True, all_open_orders=True
    ) as session:
        rows = await session.open_orders()
        if not rows:
            if where.json:
                emit_json({"cancelled": []})
            else:
                click.echo("no open orders")
            return
        live = "" if session.is_paper else " on a LIVE account"
        _confirm(f"Cancel all {len(rows)} open order(s) of every client id{live}?", yes)
        ended = await session.cancel_all()
    if where.json:
        emit_json({"cancelled": [_ended(r) for r in ended]})
    else:
        click.echo(f"cancelled {len(ended)} order(s)")


def _ended(row: ibflow.OrderSnapshot) -> dict[str, Any]:
    return {
        "order_id": row.order_id,
        "client_id": row.client_id,
        "perm_id": row.perm_id,
        "status": row.status,
    }


@click.command()
@click.argument("symbols", nargs=-1, metavar="[SYMBOL]...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@connection_options()
@click.pass_context
def flatten(ctx: click.Context, symbols: tuple[str, ...], yes: bool) -> None:
    """Cancel the open orders and close every position (or those of SYMBOL…) at the market."""
    wanted = [s.strip().upper() for s in symbols]
    if not all(wanted):
        raise click.UsageError("a SYMBOL cannot be empty")
    where = settings(ctx)
    run(_flatten(where, wanted, yes), where.verbose)


async def _flatten(where: Settings, wanted: list[str], yes: bool) -> None:
    def chosen(contract: ibflow.Contract) -> bool:
        return not wanted or contract.symbol.upper() in wanted

    async with open_session(
        where, readonly=False, allow_live=True, all_open_orders=True
    ) as session:
        held = [p for p in await session.positions() if p.quantity and chosen(p.contract)]
        working = [r for r in await session.open_orders() if chosen(r.contract)]
        if not held and not working:
            if where.json:
                emit_json({"closed": []})
            else:
                click.echo("nothing to flatten: no open order and no position")
            return
        what = ", ".join(f"{fmt.quantity(p.quantity)} {p.contract.display_name}" for p in held)
        live = "" if session.is_paper else " on a LIVE account"
        _confirm(
            f"Cancel {len(working)} open order(s) and close {len(held)} position(s)"
            + (f" ({what})" if what else "")
            + f"{live} at the market?",
            yes,
            "nothing was sent",
        )
        trades = await session.flatten(symbols=wanted or None)
    if where.json:
        emit_json({"closed": [_closed(t) for t in trades]})
        return
    for t in trades:
        click.echo(
            f"order {t.order_id}: {t.order.side.value} {fmt.quantity(t.filled)} "
            f"{t.contract.display_name} filled at {fmt.price(t.avg_fill_price)}"
        )
    click.echo(f"closed {len(trades)} position(s)")


def _closed(trade: ibflow.Trade) -> dict[str, Any]:
    return {
        "order_id": trade.order_id,
        "contract": trade.contract,
        "side": trade.order.side,
        "quantity": trade.filled,
        "avg_price": trade.avg_fill_price,
        "status": trade.status,
    }


def _describe(row: ibflow.OrderSnapshot) -> str:
    terms = f"{row.side.value} {fmt.quantity(row.quantity)} {row.contract.display_name} "
    terms += str(row.order_type)
    if row.limit_price is not None:
        terms += f" {fmt.price(row.limit_price)}"
    if row.stop_price is not None:
        terms += f" stop {fmt.price(row.stop_price)}"
    return terms


def _confirm(question: str, yes: bool, nothing: str = "nothing was cancelled") -> None:
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:  # no answer: stdin closed (or Ctrl-C at the question)
        agreed = False
    if not agreed:
        raise Failure(f"not confirmed: {nothing} (--yes skips the question)")


def _print(renderable: Any) -> None:
    console().print(renderable)
