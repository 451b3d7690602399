"""Run ibflow's benchmarks and write ``docs/benchmarks.md``.

    python bench/run.py            # full sizes
    python bench/run.py --quick    # CI-sized: smaller bursts, still 3 runs each

Benchmarks are not tests: nothing here asserts a time. They exist so that every speed claim in
the README is a number measured on this machine, next to raw ib_async in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import struct
import sys
from pathlib import Path

import ib_async

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Figure, Section, lean_client, render, repeat

from ibflow.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
_LEN = struct.Struct(">I")


# --- 8. simulator capacity --------------------------------------------------------------------


async def sim_capacity(burst: int, runs: int) -> Section:
    async with Simulator(port=0, pacing=False) as sim:
        reader = await lean_client(sim, client_id=1)
        loop = asyncio.get_running_loop()

        async def once() -> float:
            done = reader.expect(burst)
            start = loop.time()
            await sim.burst("AAPL", burst)
            end = await asyncio.wait_for(done, 60)
            return burst / (end - start)

        single = await repeat(runs, once)
        assert reader.transport is not None
        reader.transport.close()

    async with Simulator(port=0, pacing=False) as sim:
        readers = [await lean_client(sim, client_id=10 + i) for i in range(32)]
        per_client = max(1000, burst // 32)

        async def many() -> float:
            dones = [r.expect(per_client) for r in readers]
            start = loop.time()
            await sim.burst("AAPL", per_client)
            ends = await asyncio.wait_for(asyncio.gather(*dones), 60)
            return 32 * per_client / (max(ends) - start)

        fanout = await repeat(runs, many)
        for r in readers:
            assert r.transport is not None
            r.transport.close()
    return Section(
        "Simulator capacity (issue 2, benchmark 8)",
        [
            Figure("one lean raw-socket reader, pre-encoded quote burst", "msg/s", single),
            Figure("32 clients streaming at once (aggregate)", "msg/s", fanout),
        ],
        goal="≥ 100k msg/s to a lean reader; 32 concurrent streaming clients",
        verdict="met" if min(single) >= 100_000 else "not met",
        notes=[
            f"Burst of {burst:,} tickPrice/tickSize frames; the reader only walks frame "
            "lengths, so this is what the simulator can serve, not what a client can decode."
        ],
    )


# --- 1. flood throughput: raw ib_async vs a plain asyncio reader -----------------------------


async def _raw_ib_async_once(sim: Simulator, burst: int, client_id: int) -> float:
    ib = ib_async.IB()
    await ib.connectAsync(sim.host, sim.port, clientId=client_id, timeout=5)
    try:
        ticker = ib.reqMktData(ib_async.Stock("AAPL", "SMART", "USD", conId=265598))
        while ticker.bid != ticker.bid:
            await asyncio.sleep(0.005)
        seen = 0

        def on_pending(tickers: set[ib_async.Ticker]) -> None:
            nonlocal seen
            for t in tickers:
                seen += len(t.ticks)
                _ = (t.bid, t.ask, t.bidSize, t.askSize)

        ib.pendingTickersEvent += on_pending
        client = ib.client
        target = client._numMsgRecv + burst
        loop = asyncio.get_running_loop()
        start = loop.time()
        sender = asyncio.create_task(sim.burst("AAPL", burst))
        while client._numMsgRecv < target:
            await asyncio.sleep(0.001)
        elapsed = loop.time() - start
        await sender
        return burst / elapsed
    finally:
        ib.disconnect()


class _PlainReader(asyncio.Protocol):
    """A plain asyncio client: split frames with offsets and decode every field to its type."""

    def __init__(self, target: int) -> None:
        self.buf = bytearray()
        self.count = 0
        self.target = target
        self.done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.last: tuple[int, int, float, float] | None = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if end - pos - 4 < size:
                break
            fields = bytes(buf[pos + 4 : pos + 4 + size]).split(b"\0")
            pos += 4 + size
            self.count += 1
            if fields[0] == b"1":
                self.last = (int(fields[2]), int(fields[3]), float(fields[4]), float(fields[5]))
            elif fields[0] == b"2":
                self.last = (int(fields[2]), int(fields[3]), 0.0, float(fields[4]))
        del buf[:pos]
        if self.count >= self.target and not self.done.done():
            self.done.set_result(asyncio.get_running_loop().time())


async def _plain_once(sim: Simulator, burst: int, client_id: int) -> float:
    loop = asyncio.get_running_loop()
    reader = await lean_client(sim, client_id=client_id)
    assert reader.transport is not None
    plain = _PlainReader(burst)
    reader.transport.set_protocol(plain)
    start = loop.time()
    await sim.burst("AAPL", burst)
    end = await asyncio.wait_for(plain.done, 60)
    reader.transport.close()
    return burst / (end - start)


async def flood(burst: int, runs: int) -> Section:
    async with Simulator(port=0, pacing=False) as sim:
        raw: list[float] = []
        plain: list[float] = []
        for i in range(runs):
            raw.append(await _raw_ib_async_once(sim, burst, 100 + i))
            plain.append(await _plain_once(sim, burst, 200 + i))
    return Section(
        "Quote flood throughput (issue 7, benchmark 1)",
        [
            Figure("raw ib_async 2.1 (pendingTickers handler)", "msg/s", raw),
            Figure("plain asyncio reader, split + typed decode", "msg/s", plain),
        ],
        notes=[f"Same pre-encoded burst of {burst:,} tickPrice/tickSize frames for every client."],
    )


async def main(quick: bool, runs: int, out: Path) -> None:
    logging.getLogger("ib_async").setLevel(logging.ERROR)
    burst = 100_000 if quick else 400_000
    sections = [await sim_capacity(burst, runs), await flood(burst, runs)]
    command = "python bench/run.py" + (" --quick" if quick else "")
    out.write_text(render(sections, runs, command))
    print(out.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized bursts")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (min 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    asyncio.run(main(args.quick, max(3, args.runs), args.out))
