"""Benchmark 8: what the simulator itself can serve, to lean raw-socket readers.

Measured in process with readers that only walk frame lengths, so the figure bounds every
client benchmark from above: the simulator is never what a client measurement is waiting on.
"""

from __future__ import annotations

import asyncio

from harness import Figure, Section, lean_client, repeat, verdict

from ibflow.sim import Simulator


async def sim_capacity(burst: int, runs: int) -> Section:
    loop = asyncio.get_running_loop()
    async with Simulator(port=0, pacing=False) as sim:
        reader = await lean_client(sim, client_id=1)

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
        connected = len(sim.clients)
        for r in readers:
            assert r.transport is not None
            r.transport.close()
    return Section(
        "8. Simulator capacity",
        [
            Figure("one lean raw-socket reader, pre-encoded quote burst", "msg/s", single),
            Figure("32 clients streaming at once (aggregate)", "msg/s", fanout),
        ],
        goal="≥ 100k msg/s to a lean reader; 32 concurrent streaming clients",
        verdict=verdict(min(single) >= 100_000 and connected == 32),
        notes=[
            f"Burst of {burst:,} tickPrice/tickSize frames; the reader only walks frame "
            "lengths, so this is what the simulator can serve, not what a client can decode. "
            f"{connected} clients were connected and subscribed for the fan-out figure."
        ],
    )
