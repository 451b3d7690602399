"""Fan-out at scale: eight remote processes on the same twenty instruments hold twenty lines.

Each consumer is its own Python process with its own NATS connection, as bots on other
machines would be; the simulator counts the market-data requests it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
from pathlib import Path

from ibflow.testing import eventually

from .conftest import HubFactory

CONSUMERS = 8
STOCKS = "AAPL MSFT AMZN GOOGL TSLA NVDA META JPM XOM KO SPY QQQ IWM TLT".split()
PAIRS = ["EUR.USD", "GBP.USD", "USD.JPY", "AUD.USD"]

_CONSUMER = """
import asyncio, contextlib, sys
import ibflow
from ibflow.hub import RemoteSession

STOCKS, PAIRS = sys.argv[4].split(), sys.argv[5].split()
CONTRACTS = (
    [ibflow.Stock(s) for s in STOCKS]
    + [ibflow.Forex(p) for p in PAIRS]
    + [ibflow.Index("SPX", "CBOE"), ibflow.Future("ES", "202703", "CME")]
)

async def main():
    counts = [0] * len(CONTRACTS)
    live = asyncio.Event()

    async def consume(i, stream):
        async for item in stream:
            if isinstance(item, ibflow.Quote):
                counts[i] += 1
                if all(c >= 2 for c in counts):
                    live.set()

    async with RemoteSession(sys.argv[1], hub=sys.argv[2], name=sys.argv[3]) as remote:
        async with contextlib.AsyncExitStack() as stack:
            streams = [
                await stack.enter_async_context(remote.quotes(c)) for c in CONTRACTS
            ]
            tasks = [asyncio.ensure_future(consume(i, s)) for i, s in enumerate(streams)]
            await live.wait()  # the newest quote of each at once, then a fresh one of each
            print("live", flush=True)
            await asyncio.gather(*tasks)

asyncio.run(main())
"""


async def test_eight_processes_on_twenty_instruments_hold_twenty_lines(
    hub_factory: HubFactory, nats_url: str, tmp_path: Path
) -> None:
    hub, sim = await hub_factory(lease_ttl=1.0)  # the simulator's market moves every 10 ms
    script = tmp_path / "consumer.py"
    script.write_text(textwrap.dedent(_CONSUMER))
    consumers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            nats_url,
            hub.name,
            f"bot-{i}",
            " ".join(STOCKS),
            " ".join(PAIRS),
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(CONSUMERS)
    ]
    try:
        async with asyncio.timeout(30):
            lines = await asyncio.gather(*(c.stdout.readline() for c in consumers if c.stdout))
        assert lines == [b"live\n"] * CONSUMERS  # every consumer got quotes on all twenty
        assert sim.subscriptions().get("mkt_data") == 20
        assert sim.request_count("mkt_data") == 20  # not 160
        assert sorted(hub.subscriptions().values()) == [CONSUMERS] * 20
        stats = hub.statistics()
        assert (stats["consumers"], stats["leases"]) == (CONSUMERS, 20 * CONSUMERS)

        consumers[0].kill()  # SIGKILL: no goodbye, only the lease can tell
        await consumers[0].wait()
        await eventually(
            lambda: sorted(hub.subscriptions().values()) == [CONSUMERS - 1] * 20, timeout=4
        )
        assert sim.subscriptions().get("mkt_data") == 20

        for consumer in consumers[1:]:
            consumer.kill()
        await asyncio.gather(*(c.wait() for c in consumers))
        # Nobody left: the hub cancels every line at TWS once the leases lapse.
        await eventually(lambda: sim.subscriptions().get("mkt_data", 0) == 0, timeout=4)
        assert hub.subscriptions() == {}
    finally:
        for consumer in consumers:
            if consumer.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    consumer.kill()
                await consumer.wait()
