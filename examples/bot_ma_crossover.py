"""A moving-average crossover bot on live bars that places paper orders.

    python examples/bot_ma_crossover.py            # embedded simulator, until Ctrl-C
    python examples/bot_ma_crossover.py --demo     # the same, stopping by itself after 12 bars
    python examples/bot_ma_crossover.py --port 7497 --symbol MSFT    # a paper TWS

It warms its averages up on the lookback's bars, then on each new bar: when the fast average
crosses above the slow one it buys, when it crosses below it sells what it holds (long or
flat, market orders). A gateway restart shows up as a ``Gap`` in the bars: the session
reconnects by itself and the missed bars follow. SIGINT (Ctrl-C) or SIGTERM stops it cleanly:
the bar subscription and the session are closed, and it exits 0.

With no ``--port`` it runs on the embedded simulator, whose market clock runs 240 times faster
than the wall clock (a one-minute bar every quarter second), and which it restarts once,
a second and a half in, to show the bot riding through a gateway restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import ibflow
from ibflow.sim import Simulator

MARKET_SPEED = 240.0  # the embedded market's clock runs this many times faster than real time


def say(text: str) -> None:
    print(text, flush=True)  # flushed: a supervisor or a pipe sees each line as it happens


@dataclass
class Crossover:
    """The strategy alone: feed it closes, it answers "BUY", "SELL" or None. No I/O."""

    fast: int
    slow: int
    closes: deque[float] = field(init=False)
    spread: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={self.fast}, slow={self.slow}")
        self.closes = deque(maxlen=self.slow)

    def update(self, close: float) -> str | None:
        self.closes.append(close)
        if len(self.closes) < self.slow:
            return None
        fast = sum(list(self.closes)[-self.fast :]) / self.fast
        slow = sum(self.closes) / self.slow
        before, self.spread = self.spread, fast - slow
        if before is None:
            return None
        if before <= 0 < self.spread:
            return "BUY"
        if before >= 0 > self.spread:
            return "SELL"
        return None


@dataclass
class Bot:
    """Trades one contract on the crossover's signals, long or flat."""

    strategy: Crossover
    quantity: float
    live_bars: int = 0
    orders: int = 0
    position: float = 0.0
    gaps: int = 0

    async def run(
        self,
        session: ibflow.Session,
        contract: ibflow.Contract,
        *,
        period: str = "1m",
        lookback: str = "3600 S",
        max_bars: int | None = None,
    ) -> None:
        async with session.live_bars(contract, period, lookback) as bars:
            # The lookback's bars arrive at once: warm up on them, trade only on newer bars.
            warm = [await bars.receive()]
            with contextlib.suppress(ibflow.WouldBlock):
                while True:
                    warm.append(bars.receive_nowait())
            for bar in warm:
                if isinstance(bar, ibflow.Bar):
                    self.strategy.update(bar.close)
            say(f"warmed up on {len(warm)} bars of history; trading new {period} bars")
            async for item in bars:
                if isinstance(item, ibflow.Gap):
                    self.gaps += 1
                    say(
                        f"gap: no data for {item.duration.total_seconds():.1f} s "
                        f"({item.reason}); the missed bars follow"
                    )
                    continue
                self.live_bars += 1
                signal_ = self.strategy.update(item.close)
                if signal_ is not None:
                    await self.act(session, contract, signal_, item)
                if max_bars is not None and self.live_bars >= max_bars:
                    return

    async def act(
        self, session: ibflow.Session, contract: ibflow.Contract, side: str, bar: ibflow.Bar
    ) -> None:
        if (side == "BUY") == (self.position > 0):
            return  # already long on a buy signal, or flat on a sell signal
        quantity = self.quantity if side == "BUY" else self.position
        try:
            trade = await session.place(contract, ibflow.MarketOrder(side, quantity))
        except ibflow.IBFlowError as exc:  # e.g. the link is down: nothing was sent
            say(f"{bar.time:%H:%M} {side} {quantity:g} not placed: {exc}")
            return
        self.orders += 1
        try:
            await trade.wait_filled(timeout=10)
        except ibflow.IBFlowError as exc:
            say(f"{bar.time:%H:%M} order {trade.order_id} not filled: {exc}")
        self.position += trade.filled if side == "BUY" else -trade.filled
        if trade.filled:
            say(
                f"{bar.time:%H:%M} close {bar.close:.2f}: {side} {trade.filled:g} filled @ "
                f"{trade.avg_fill_price:.2f} (order {trade.order_id}), position {self.position:g}"
            )


def market_clock(speed: float) -> Callable[[], float]:
    """The latest weekday's 15:00 UTC (a New York morning), running ``speed`` times faster."""
    day = datetime.now(UTC)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    opening = day.replace(hour=15, minute=0, second=0, microsecond=0).timestamp()
    started = time.monotonic()
    return lambda: opening + (time.monotonic() - started) * speed


@contextlib.asynccontextmanager
async def connected(args: argparse.Namespace) -> AsyncIterator[ibflow.Session]:
    """A session on the gateway given, or on an embedded simulator restarted once."""
    if args.port is not None:
        async with ibflow.Session(host=args.host, port=args.port, client_id=args.client_id) as s:
            if not s.is_paper:
                raise SystemExit("bot_ma_crossover: refusing to trade a live account")
            say(f"connected to {args.host or '127.0.0.1'}:{args.port}, account {s.accounts[0]}")
            yield s
        return
    clock = market_clock(MARKET_SPEED)
    async with Simulator(port=0, seed=args.seed, speed=100, clock=clock) as sim:

        async def restart_later() -> None:
            await asyncio.sleep(args.restart_after)
            say("simulator: gateway restarting (down for 0.5 s)")
            await sim.restart(down_for=0.5)

        async with ibflow.Session(host=sim.host, port=sim.port, client_id=args.client_id or 1) as s:
            say(f"embedded simulator on {sim.host}:{sim.port}, market time {MARKET_SPEED:g}x")
            restarter = asyncio.create_task(restart_later()) if args.restart_after else None
            try:
                yield s
            finally:
                if restarter is not None:
                    restarter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await restarter


async def main(args: argparse.Namespace) -> int:
    # SIGINT and SIGTERM cancel the bot; every `async with` on the way out closes what it opened.
    me = asyncio.current_task()
    assert me is not None
    stopped_by: list[str] = []

    def stop(sig: signal.Signals) -> None:
        if not stopped_by:
            stopped_by.append(sig.name)
            me.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)

    bot = Bot(Crossover(args.fast, args.slow), args.quantity)
    contract = ibflow.Stock(args.symbol)
    try:
        async with connected(args) as session:
            say(
                f"bot: {args.symbol} {args.period} bars, moving averages {args.fast}/{args.slow}, "
                f"{args.quantity:g} shares a trade"
            )
            await bot.run(session, contract, period=args.period, max_bars=args.max_bars)
        reason = "max bars reached"
    except asyncio.CancelledError:
        if not stopped_by:
            raise
        me.uncancel()
        reason = stopped_by[0]
    say(
        f"stopped ({reason}): {bot.live_bars} new bars, {bot.gaps} gaps, {bot.orders} orders, "
        f"position {bot.position:g} {args.symbol}"
    )
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="TWS/Gateway host (with --port)")
    parser.add_argument("--port", type=int, help="TWS/Gateway port; none: embedded simulator")
    parser.add_argument("--client-id", type=int)
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--period", default="1m", help="bar size, e.g. 30s, 1m, 5m")
    parser.add_argument("--fast", type=int, default=3, help="fast average, in bars")
    parser.add_argument("--slow", type=int, default=8, help="slow average, in bars")
    parser.add_argument("--quantity", type=float, default=10)
    parser.add_argument("--max-bars", type=int, help="stop after this many new bars")
    parser.add_argument("--demo", action="store_true", help="stop after 12 bars (--max-bars 12)")
    parser.add_argument("--seed", type=int, default=7, help="the embedded market's seed")
    parser.add_argument(
        "--restart-after",
        type=float,
        default=1.5,
        help="embedded simulator: restart it after this many seconds (0: never)",
    )
    args = parser.parse_args(argv)
    if args.demo and args.max_bars is None:
        args.max_bars = 12
    if not 1 <= args.fast < args.slow:
        parser.error("need 1 <= --fast < --slow")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
