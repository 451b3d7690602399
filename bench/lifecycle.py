"""Benchmarks 5 and 7: connect-to-ready against raw ib_async, and reconnect to flowing quotes.

Both use the simulator in its own process, like a real gateway: the client's event loop does
only client work.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import ib_async
from harness import Figure, Section, verdict
from simproc import SimProcess

import ibflow


async def _ibflow_connect(sim: SimProcess, client_id: int) -> float:
    session = ibflow.Session(host=sim.host, port=sim.port, client_id=client_id, timeout=10)
    started = time.perf_counter()
    await session.connect()
    elapsed = time.perf_counter() - started
    await session.aclose()
    await _settle(sim)
    return elapsed


async def _raw_connect(sim: SimProcess, client_id: int) -> float:
    ib = ib_async.IB()
    started = time.perf_counter()
    await ib.connectAsync(sim.host, sim.port, clientId=client_id, timeout=10)
    elapsed = time.perf_counter() - started
    ib.disconnect()
    await _settle(sim)
    return elapsed


async def _settle(sim: SimProcess) -> None:
    """The same pause after either client: the simulator has seen the close, then 20 ms.

    Without it the order biased the figures: a client that connects right after another one
    closed finds both processes busy-warm, one that connects after an idle pause does not.
    """
    deadline = time.monotonic() + 2
    while await sim.clients() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)


async def connect_bench(runs: int, log: Callable[[str], None]) -> Section:
    ours: list[float] = []
    raw: list[float] = []
    async with SimProcess(quiet=True) as sim:
        # One warm-up each: imports, first-use caches.
        await _ibflow_connect(sim, 600)
        await _raw_connect(sim, 601)
        cid = 610
        for i in range(runs):
            pair = [(ours, _ibflow_connect), (raw, _raw_connect)]
            if i % 2:
                pair.reverse()  # alternate who goes first
            for into, once in pair:
                cid += 1
                into.append(await once(sim, cid) * 1000)
    ratio = statistics.median(ours) / statistics.median(raw)
    log(f"  connect: ibflow {statistics.median(ours):.1f} ms, raw {statistics.median(raw):.1f} ms")
    return Section(
        "5. Connect-to-ready",
        [
            Figure("ibflow.Session: connect() until READY", "ms", ours, higher_is_better=False),
            Figure("raw ib_async: IB.connectAsync()", "ms", raw, higher_is_better=False),
            Figure("ratio ibflow / raw (medians)", "×", [ratio], higher_is_better=False),
        ],
        goal=f"ibflow ≤ 1.1× raw ib_async (measured {ratio:.2f}× at the medians)",
        verdict=verdict(ratio <= 1.1),
        notes=[
            f"{runs} connects each, alternating which goes first, fresh client ids, the default "
            "scenario (positions, orders, account values, executions synced). Both do the "
            "same start-up sync; ibflow runs it in stages with a timeout and error per stage."
        ],
    )


async def reconnect_bench(runs: int, log: Callable[[str], None]) -> Section:
    policy = ibflow.ReconnectPolicy(initial=0.1, maximum=0.25)
    to_quotes: list[float] = []
    to_ready: list[float] = []
    down_for = 1.0
    async with SimProcess(quiet=False, speed=10) as sim:
        session = ibflow.Session(
            host=sim.host,
            port=sim.port,
            client_id=700,
            timeout=5,
            reconnect=policy,
            heartbeat_interval=None,
        )
        await session.connect()
        quotes: list[float] = []
        gaps: list[Any] = []
        ready: list[float] = []

        async def consume(stream: Any) -> None:
            async for item in stream:
                if isinstance(item, ibflow.Gap):
                    gaps.append(item)
                else:
                    quotes.append(time.monotonic())

        async def watch() -> None:
            async for change in session.state_changes():
                if change.current is ibflow.ConnectionState.READY:
                    ready.append(time.monotonic())

        watcher = asyncio.create_task(watch())
        async with session.quotes(ibflow.Stock("AAPL")) as stream:
            reader = asyncio.create_task(consume(stream))
            try:
                while not quotes:
                    await asyncio.sleep(0.01)
                for _ in range(runs):
                    seen_gaps = len(gaps)
                    back_at = await sim.restart(down_for)
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline:
                        if len(gaps) > seen_gaps and quotes and quotes[-1] > back_at:
                            break
                        await asyncio.sleep(0.005)
                    else:
                        raise RuntimeError("quotes did not flow again within 20 s")
                    first = next(t for t in quotes if t > back_at)
                    up = next((t for t in ready if t > back_at), first)
                    to_quotes.append(first - back_at)
                    to_ready.append(up - back_at)
                    log(f"  reconnect: READY {up - back_at:.3f} s, quotes {first - back_at:.3f} s")
                    await asyncio.sleep(0.3)
            finally:
                reader.cancel()
                watcher.cancel()
        await session.aclose()
    bound = 1.0 + policy.maximum
    return Section(
        "7. Reconnect: simulator back → quotes flowing",
        [
            Figure("port listening again → first quote after the Gap", "s", to_quotes, False),
            Figure("port listening again → session READY", "s", to_ready, False),
        ],
        goal=f"≤ 1 s plus the configured backoff (ReconnectPolicy(initial=0.1, maximum=0.25): "
        f"≤ {bound:.2f} s, worst run)",
        verdict=verdict(max(to_quotes) <= bound),
        notes=[
            f"The simulator process restarts (every socket dropped, port refused for "
            f"{down_for:g} s, then listening again); the stream stays open, yields one Gap and "
            "is re-subscribed by the session. Times are from the simulator's own monotonic "
            "clock reading when it listened again to the consumer receiving a Quote. The "
            "backoff is jittered (uniform up to its ceiling), so runs differ."
        ],
    )
