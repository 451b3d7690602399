"""Two client ids in one process: a trader and a read-only watcher, side by side.

    python examples/two_clients.py                  # embedded simulator
    python examples/two_clients.py --port 7497      # a paper TWS (client ids 11 and 12)

TWS keeps one API connection per client id, and each connection sees its own orders only. The
watcher is a second ``Session`` with its own id, read-only (any order call is refused before
anything is sent) and syncing every client's open orders (``all_open_orders``). While the
trader rests a limit order and then walks it to a fill, the watcher streams quotes, sees the
trader's order in its open orders, and sees the new position. Both run in one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import ibflow
from ibflow.sim import Simulator

AAPL = ibflow.Stock("AAPL")


def say(who: str, text: str) -> None:
    print(f"[{who:7}] {text}", flush=True)


@contextlib.asynccontextmanager
async def gateway(args: argparse.Namespace) -> AsyncIterator[tuple[str | None, int]]:
    """Where to connect: the TWS given, or an embedded simulator."""
    if args.port is not None:
        yield args.host, args.port
        return
    async with Simulator(port=0, seed=7, speed=10) as sim:
        yield sim.host, sim.port


async def stock_position(session: ibflow.Session) -> float:
    """The account's AAPL shares (the account also holds AAPL options)."""
    return sum(
        p.quantity
        for p in await session.positions()
        if p.contract.symbol == "AAPL" and p.contract.sec_type is ibflow.SecType.STOCK
    )


async def trader(session: ibflow.Session, order_seen: asyncio.Event) -> ibflow.Trade:
    quote = await session.quote(AAPL)
    assert quote.bid is not None
    assert quote.ask is not None
    trade = await session.place(AAPL, ibflow.LimitOrder("BUY", 10, round(quote.bid - 1, 2)))
    say("trader", f"order {trade.order_id}: BUY 10 @ {trade.order.limit_price:.2f} rests")
    await order_seen.wait()  # until the watcher has seen it
    await trade.modify(limit_price=round(quote.ask + 1, 2))
    await trade.wait_filled(timeout=10)
    say("trader", f"order {trade.order_id}: filled 10 @ {trade.avg_fill_price:.2f}")
    return trade


async def watcher(
    session: ibflow.Session, trader_id: int, order_seen: asyncio.Event, seconds: float
) -> None:
    before = await stock_position(session)
    async with asyncio.timeout(10):
        while not order_seen.is_set():
            for order in await session.open_orders():
                if order.client_id == trader_id:
                    say(
                        "watcher",
                        f"sees client {trader_id}'s order {order.order_id}: {order.side} "
                        f"{order.quantity:g} {order.contract.symbol} {order.status}",
                    )
                    order_seen.set()
            await asyncio.sleep(0.05)
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds), session.quotes(AAPL) as quotes:
            async for quote in quotes:
                if isinstance(quote, ibflow.Quote):
                    seen += 1
                    if seen <= 3:
                        say("watcher", f"AAPL bid {quote.bid:.2f} ask {quote.ask:.2f}")
    say("watcher", f"{seen} quotes in {seconds:g} s")
    try:
        await session.place(AAPL, ibflow.MarketOrder("SELL", 10))
    except ibflow.SafetyError as exc:
        say("watcher", f"may not trade: {exc}")
    say("watcher", f"AAPL position {before:g} -> {await stock_position(session):g}")


async def main(args: argparse.Namespace) -> int:
    first = args.client_id if args.client_id is not None else (1 if args.port is None else 11)
    async with (
        gateway(args) as (host, port),
        ibflow.Session(host=host, port=port, client_id=first) as trading,
        ibflow.Session(
            host=host, port=port, client_id=first + 1, readonly=True, all_open_orders=True
        ) as watching,
    ):
        if not trading.is_paper:
            raise SystemExit("two_clients: refusing to trade a live account")
        say("main", f"client {trading.client_id} trades, client {watching.client_id} watches")
        order_seen = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(trader(trading, order_seen))
            group.create_task(watcher(watching, trading.client_id, order_seen, args.seconds))
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="TWS/Gateway host (with --port)")
    parser.add_argument("--port", type=int, help="TWS/Gateway port; none: embedded simulator")
    parser.add_argument("--client-id", type=int, help="the trader's id; the watcher's is next")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long to watch quotes")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
