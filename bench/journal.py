"""What the order journal costs: one write of each kind, and ``place()`` with and without it.

    python3 bench/journal.py [--orders 100]

The journal writes inline, on the event loop's thread (WAL, ``synchronous=NORMAL``): an
intent before each placeOrder, then small records for acknowledgements, statuses and fills.
This prints how long each blocks the loop (median and 99th percentile) on this machine's
disk, and the median
``place()`` round trip against the simulator (in this process) with no journal, with one,
and with a key, spaced to stay under TWS's 50 messages a second.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ibflow
from ibflow._orders._journal import Journal, JournalEntry
from ibflow.sim import Scenario, Simulator

AAPL = ibflow.Stock("AAPL", con_id=265598)


def _timed(call: Callable[[int], object], n: int) -> tuple[float, float]:
    spans = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        spans.append(time.perf_counter() - started)
    spans.sort()
    return statistics.median(spans) * 1e6, spans[int(len(spans) * 0.99)] * 1e6


def writes(n: int, folder: Path) -> None:
    journal = Journal(folder / "writes.db")
    spec = ibflow.LimitOrder("BUY", 10, 190.05, order_ref="k")
    fill = ibflow.Fill(
        exec_id="",
        order_id=1,
        perm_id=1,
        client_id=1,
        contract=AAPL,
        side=ibflow.Side.BUY,
        quantity=10,
        price=190.05,
        time=datetime.now(UTC),
    )

    def intent(i: int) -> object:
        entry = JournalEntry(f"k{i}", 1, i, None, "", 0, AAPL, spec)
        return journal.write_intents([entry])

    rows = [
        ("intent", _timed(intent, n)),
        ("status", _timed(lambda i: journal.write_event(i, "status", {"s": 1}), n)),
        (
            "fill",
            _timed(lambda i: journal.write_fill(i, dataclasses.replace(fill, exec_id=f"e{i}")), n),
        ),
    ]
    journal.close()
    for name, (median, p99) in rows:
        print(f"{name:28} median {median:8.1f} µs   p99 {p99:8.1f} µs")


async def places(n: int, folder: Path) -> None:
    quiet = dataclasses.replace(Scenario.default(), tick_interval=1e6)
    async with Simulator(port=0, scenario=quiet, pacing="off") as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        for label, journal, keyed in (
            ("place(), no journal", None, False),
            ("place(), journal", folder / "place.db", False),
            ("place(key=...), journal", folder / "keyed.db", True),
        ):
            async with ibflow.Session(
                sim.host, sim.port, client_id=1, journal=journal, heartbeat_interval=None
            ) as session:
                await session.place(AAPL, ibflow.LimitOrder("BUY", 1, 150.0))  # warm up
                spans = []
                for i in range(n):
                    order = ibflow.LimitOrder("BUY", 1, 150.0)
                    started = time.perf_counter()
                    if keyed:
                        await session.place(AAPL, order, key=f"b{i}")
                    else:
                        await session.place(AAPL, order)
                    spans.append(time.perf_counter() - started)
                    # Under TWS's 50 messages a second, which the session's pacer enforces.
                    await asyncio.sleep(0.03)
                await session.cancel_all()
            print(f"{label:28} median {statistics.median(spans) * 1e3:8.3f} ms")


def main() -> None:
    for name in ("ib_async", "ibflow"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        writes(2000, Path(folder))
        asyncio.run(places(args.orders, Path(folder)))


if __name__ == "__main__":
    main()
