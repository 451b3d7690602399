"""Shared plumbing for ibflow's benchmarks: repetition, statistics, lean clients, the report.

Every figure is taken at least three times and reported as worst / median / best, and every
comparison (ibflow vs raw ib_async vs a plain asyncio reader) runs in the same process against
the same simulator, so the numbers in ``docs/benchmarks.md`` compare like with like.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import struct
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version

from ibflow.sim import Simulator
from ibflow.sim._codec import API_PREFIX, encode_fields, encode_raw

_LEN = struct.Struct(">I")

AAPL = 265598


@dataclass
class Figure:
    """One measured quantity over several runs."""

    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    note: str = ""

    @property
    def best(self) -> float:
        return max(self.samples) if self.higher_is_better else min(self.samples)

    @property
    def worst(self) -> float:
        return min(self.samples) if self.higher_is_better else max(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Section:
    title: str
    figures: list[Figure]
    goal: str = ""
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


def verdict(met: bool) -> str:
    return "met" if met else "not met"


async def repeat(runs: int, once: Callable[[], Awaitable[float]]) -> list[float]:
    return [await once() for _ in range(runs)]


def fmt(value: float, unit: str) -> str:
    if unit in ("msg/s", "items"):
        return f"{value:,.0f}"
    if unit in ("ms", "s", "×"):
        return f"{value:,.2f}"
    if unit in ("MB", "%"):
        return f"{value:,.1f}"
    return f"{value:,.3g}"


def weighted_percentile(pairs: Sequence[tuple[float, int]], q: float) -> float:
    """The ``q`` quantile (0..1) of values given as ``(value, weight)``."""
    ordered = sorted(pairs)
    total = sum(w for _, w in ordered)
    if total == 0:
        return float("nan")
    rank = q * total
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen >= rank:
            return value
    return ordered[-1][0]


def rss_mb() -> float:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class LeanReader(asyncio.Protocol):
    """The cheapest possible TWS client: handshake, startApi, then count frames.

    Used to show what the simulator itself can serve; it walks frame lengths without decoding.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.frames = 0
        self.target = 0
        self.done: asyncio.Future[float] | None = None
        self.ready = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, end, frames = 0, len(buf), 0
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if end - pos - 4 < size:
                break
            pos += 4 + size
            frames += 1
        del buf[:pos]
        self.frames += frames
        if not self.ready.is_set() and self.frames >= 6:  # hello, accounts, id, 3 notices
            self.ready.set()
        if self.done is not None and not self.done.done() and self.frames >= self.target:
            self.done.set_result(asyncio.get_running_loop().time())

    def expect(self, count: int) -> asyncio.Future[float]:
        self.target = self.frames + count
        self.done = asyncio.get_running_loop().create_future()
        return self.done


MKT_DATA_AAPL = [
    1,
    11,
    0,  # req id, filled in
    AAPL,
    "AAPL",
    "STK",
    "",
    0.0,
    "",
    "",
    "SMART",
    "",
    "USD",
    "",
    "",
    0,
    "",
    0,
    0,
    "",
]


async def lean_client(
    host: str | Simulator, port: int = 0, *, client_id: int, req_id: int = 1
) -> LeanReader:
    """Connect a LeanReader and subscribe it to AAPL quotes."""
    if isinstance(host, Simulator):
        host, port = host.host, host.port
    loop = asyncio.get_running_loop()
    _, reader = await loop.create_connection(LeanReader, host, port)
    assert reader.transport is not None
    reader.transport.write(API_PREFIX + encode_raw(b"v157..178"))
    await asyncio.sleep(0)
    reader.transport.write(encode_fields([71, 2, client_id, ""]))
    await asyncio.wait_for(reader.ready.wait(), 5)
    before = reader.frames
    request = list(MKT_DATA_AAPL)
    request[2] = req_id
    reader.transport.write(encode_fields(request))
    # tickReqParams, marketDataType and the first full quote arrive; wait for them to settle.
    while reader.frames < before + 11:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    return reader


def machine_header() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f", {int(f.readline().split()[1]) / 1e6:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- machine: {os.cpu_count()} cores, {cpu}{mem}, {platform.system()} "
        f"{platform.release()}\n"
        f"- python: {sys.version.split()[0]}; ib_async {version('ib_async')}; "
        f"aeventkit {version('aeventkit')}; ibflow {version('ibflow')}\n"
    )


def render(sections: list[Section], runs: int, command: str, preamble: str = "") -> str:
    out = [
        "# Benchmarks\n",
        "Generated by `" + command + "`; do not edit by hand. Each figure is worst / median / "
        f"best over {runs} runs (at least), all comparisons measured in the same run against "
        "the same simulator on loopback.\n",
        machine_header(),
    ]
    if preamble:
        out.append(preamble)
    for sec in sections:
        out.append(f"\n## {sec.title}\n")
        if sec.goal:
            out.append(
                f"Goal: {sec.goal}" + (f" — **{sec.verdict}**" if sec.verdict else "") + "\n"
            )
        if sec.figures:
            out.append("| measurement | unit | worst | median | best |")
            out.append("|---|---|---:|---:|---:|")
            for fig in sec.figures:
                out.append(
                    f"| {fig.name} | {fig.unit} | {fmt(fig.worst, fig.unit)} | "
                    f"{fmt(fig.median, fig.unit)} | {fmt(fig.best, fig.unit)} |"
                )
        for table in sec.tables:
            out.append("\n" + table)
        for note in sec.notes:
            out.append(f"\n{note}")
    return "\n".join(out) + "\n"
