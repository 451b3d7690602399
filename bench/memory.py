"""Benchmark 4: memory behind a slow consumer — ibflow's bounded stream vs eventkit's ``aiter()``.

Each consumer runs in a fresh child process (this file with ``--child``) so its resident set
size is its own: it connects to the simulator process, subscribes to AAPL, reports its RSS,
then reads the feed 100× slower than the simulator sends it. It samples its RSS until every
frame of the burst has been received by the client library, and reports the growth (peak −
baseline) without draining what the slow consumer still owes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

# Measure the checkout this file lives in, whatever ibflow is installed elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import AAPL, Figure, Section, rss_mb, verdict
from simproc import SimProcess

EVENTKIT = "raw ib_async: `async for` over eventkit `ticker.updateEvent.aiter()` (per chunk)"
EVENTKIT_TICKS = (
    "raw ib_async: `async for` over eventkit `aiter()` of every tick (pendingTickers → Event)"
)
IBFLOW = "ibflow: `async for` over session.quotes (buffer 256, overflow latest)"


async def _child(
    kind: str, host: str, port: int, client_id: int, per_item: float, count: int
) -> None:
    loop = asyncio.get_running_loop()
    # The consumer spends ``per_item`` seconds on each item, sleeping in slices of >= 10 ms.
    batch = max(1, round(0.01 / per_item))
    handled = 0

    async def slow(items: Any) -> None:
        nonlocal handled
        async for _item in items:
            handled += 1
            if handled % batch == 0:
                await asyncio.sleep(per_item * batch)

    if kind in ("eventkit", "eventkit_ticks"):
        import eventkit
        import ib_async

        ib = ib_async.IB()
        await ib.connectAsync(host, port, clientId=client_id, timeout=10)
        client = ib.client
        ticker = ib.reqMktData(ib_async.Stock("AAPL", "SMART", "USD", conId=AAPL))
        while ticker.bid != ticker.bid:
            await asyncio.sleep(0.005)
        source: Any = ticker.updateEvent.aiter()
        if kind == "eventkit_ticks":
            # Every tick through eventkit, as a user who must not lose ticks has to do it.
            ticks = eventkit.Event("ticks")

            def on_pending(tickers: set[Any]) -> None:
                for t in tickers:
                    for tick in t.ticks:
                        ticks.emit(tick)

            ib.pendingTickersEvent += on_pending
            source = ticks.aiter()
        stream = None
    else:
        import ibflow

        session = ibflow.Session(
            host=host, port=port, client_id=client_id, timeout=10, heartbeat_interval=None
        )
        await session.connect()
        client = session._core.adapter._ib.client
        stream = session.quotes(ibflow.Stock("AAPL"))
        await stream.__aenter__()
        source = stream
    await asyncio.sleep(0.2)

    consumer = loop.create_task(slow(source))
    await asyncio.sleep(0.2)
    base_frames = client._numMsgRecv
    baseline = rss_mb()
    peak = baseline
    sys.stdout.write(json.dumps({"ready": True, "rss": baseline}) + "\n")
    sys.stdout.flush()
    started = time.monotonic()
    while client._numMsgRecv - base_frames < count:
        await asyncio.sleep(0.02)
        peak = max(peak, rss_mb())
        if time.monotonic() - started > 120:
            break
    await asyncio.sleep(0.1)
    peak = max(peak, rss_mb())
    received = client._numMsgRecv - base_frames
    stats: dict[str, Any] = {}
    if stream is not None and hasattr(stream, "statistics"):
        st = stream.statistics()
        stats = {
            k: getattr(st, k) for k in ("received", "dropped", "max_buffered") if hasattr(st, k)
        }
    sys.stdout.write(
        json.dumps(
            {
                "baseline": baseline,
                "peak": peak,
                "received": received,
                "handled": handled,
                "stats": stats,
            }
        )
        + "\n"
    )
    sys.stdout.flush()
    consumer.cancel()
    sys.stdout.close()
    # Leave at once: draining what a slow consumer still owes is not the point.
    import os

    os._exit(0)


async def _one(
    sim: SimProcess, kind: str, client_id: int, rate: float, per_item: float, count: int
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        sim.host,
        str(sim.port),
        str(client_id),
        str(per_item),
        str(count),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert ready.get("ready")
        await sim.burst("AAPL", count, rate=rate)
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        result: dict[str, Any] = json.loads(line)
    finally:
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return result


SLOW = 0.04  # seconds per item: 25 items/s, a consumer that writes each quote somewhere


async def memory_bench(count: int, rate: float, runs: int, with_ibflow: bool, log: Any) -> Section:
    per_tick = 100.0 / rate  # 100x slower than the feed
    cases = [
        (EVENTKIT, "eventkit", per_tick),
        (EVENTKIT_TICKS, "eventkit_ticks", per_tick),
        (EVENTKIT + ", 25 items/s", "eventkit", SLOW),
    ]
    if with_ibflow:
        cases = [(IBFLOW, "ibflow", per_tick), (IBFLOW + ", 25 items/s", "ibflow", SLOW), *cases]
    growth: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    last: dict[str, dict[str, Any]] = {}
    async with SimProcess(quiet=True) as sim:
        cid = 300
        for _ in range(runs):
            for label, kind, per_item in cases:
                cid += 1
                res = await _one(sim, kind, cid, rate, per_item, count)
                growth[label].append(res["peak"] - res["baseline"])
                last[label] = res
                log(f"  memory {label}: +{res['peak'] - res['baseline']:.1f} MB, {res}")
    figs = [Figure(label, "MB", growth[label], higher_is_better=False) for label, _, _ in cases]
    notes = [
        f"{count:,} tickPrice/tickSize frames paced at {rate:,.0f} msg/s. The consumer spends "
        f"{per_tick * 1000:g} ms per item ({rate / 100:,.0f} items/s, 100× slower than the "
        f"feed), or {SLOW * 1000:g} ms per item where the row says 25 items/s. RSS growth = peak "
        "RSS while the frames arrive − RSS after subscribing, in a fresh process per run; "
        "what the slow consumer still owes is not drained.",
        "ib_async emits `ticker.updateEvent` once per received chunk (here ~500 frames), not "
        "per tick, so eventkit's unbounded queue grows by one reference to the same mutable "
        "Ticker per chunk: little memory, but the ticks of earlier chunks are overwritten in "
        "that Ticker before a slow consumer looks. Keeping every tick through `aiter()` (the "
        "per-tick row) queues every tick: that is the unbounded growth. ibflow's stream is "
        "bounded (256 items, overflow `latest`: superseded snapshots are dropped and counted).",
    ]
    stats = [
        (f"{1 / per_item:,.0f} items/s", last[label].get("stats"))
        for label, kind, per_item in cases
        if kind == "ibflow"
    ]
    if stats:
        notes.append(
            "ibflow stream statistics, last run: "
            + "; ".join(f"consumer at {speed}: {st}" for speed, st in stats)
            + "."
        )
    section = Section("4. Memory behind a slow consumer", figs, notes=notes)
    if with_ibflow:
        worst = max(max(growth[label]) for label, kind, _ in cases if kind == "ibflow")
        section.goal = "ibflow ≤ 20 MB RSS growth (worst run, both consumer speeds)"
        section.verdict = verdict(worst <= 20.0)
    else:
        section.goal = "ibflow ≤ 20 MB RSS growth — ibflow rows pending (session.quotes missing)"
    return section


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    _, _, kind, host, port, cid, per_item, count = sys.argv
    asyncio.run(_child(kind, host, int(port), int(cid), float(per_item), int(count)))
