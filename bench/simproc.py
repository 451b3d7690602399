"""The simulator in its own process, driven over JSON lines, with send-time stamps.

A feed paced at 100k msg/s only means something if the sender keeps its pace while the client
is busy. In one process the simulator and the client share an event loop, so a client that
falls behind also slows the feed and never looks late. Here the simulator runs in a child
process (this file run as a script): the feed keeps its schedule on the other core, and every
``transport.write`` of a burst is stamped with ``time.monotonic()`` (the clock asyncio's
``loop.time()`` reads, the same in both processes on Linux) and the number of frames written so
far. A client that counts the frames it has decoded can then give every tick its latency
from the simulator's send, without a timestamp on the wire. The stamping wraps the sim's
connection transports at run time; the simulator's own files are not changed.

Parent side: ``async with SimProcess(...) as sim: await sim.burst("AAPL", 100_000, rate=50e3)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LEN = struct.Struct(">I")


@dataclass
class BurstResult:
    """What the simulator wrote: per client id, ``(monotonic time, frames so far)`` per write."""

    sent: int
    stamps: dict[int, list[tuple[float, int]]] = field(default_factory=dict)


class SimProcess:
    """A simulator in a child process (parent side)."""

    def __init__(self, *, quiet: bool = True, pacing: bool = False, speed: float = 1.0) -> None:
        self.quiet = quiet
        self.pacing = pacing
        self.speed = speed
        self.host = "127.0.0.1"
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SimProcess:
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            json.dumps({"quiet": self.quiet, "pacing": self.pacing, "speed": self.speed}),
        ]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,
        )
        hello = await self._read()
        self.host, self.port = hello["host"], hello["port"]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(Exception):
            await self.call("stop")
        with contextlib.suppress(ProcessLookupError):
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _read(self) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process exited")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"simulator process: {reply['error']}")
        return reply

    async def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdin is not None
        async with self._lock:
            self._proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}).encode() + b"\n")
            await self._proc.stdin.drain()
            return await self._read()

    async def burst(self, symbol: str, count: int, *, rate: float | None = None) -> BurstResult:
        """``Simulator.burst`` in the child; returns the send stamps per client id."""
        reply = await self.call("burst", symbol=symbol, count=count, rate=rate)
        stamps = {int(k): [(t, n) for t, n in v] for k, v in reply["stamps"].items()}
        return BurstResult(sent=reply["sent"], stamps=stamps)

    async def bursts(self, symbols: list[str], count: int, *, rate: float) -> int:
        """``Simulator.burst`` on several instruments at once (unstamped); frames sent each."""
        return int((await self.call("bursts", symbols=symbols, count=count, rate=rate))["sent"])

    async def quote(self, symbol: str) -> dict[str, float]:
        """The quote a burst saw-tooths around, and the instrument's tick."""
        return await self.call("quote", symbol=symbol)

    async def restart(self, down_for: float) -> float:
        """Restart the simulator; returns the monotonic time it listened again."""
        reply = await self.call("restart", down_for=down_for)
        return float(reply["back_at"])

    async def request_count(self, kind: str) -> int:
        return int((await self.call("request_count", kind=kind))["count"])

    async def refusals(self) -> list[dict[str, Any]]:
        """Historical requests the simulator refused, with the rule (see ``_watch_refusals``)."""
        return list((await self.call("refusals"))["refusals"])

    async def clients(self) -> list[int]:
        return list((await self.call("clients"))["ids"])


# --- child side -------------------------------------------------------------------------------


class _Stamped:
    """Forwards to a transport and logs ``(time, frames so far)`` for every write."""

    def __init__(self, transport: Any, log: list[tuple[float, int]]) -> None:
        self._t = transport
        self._log = log
        self._frames = 0

    def write(self, data: bytes) -> None:
        # The simulator writes whole frames only (a burst batch, or one reply frame).
        pos, end, frames = 0, len(data), 0
        while pos < end:
            pos += 4 + _LEN.unpack_from(data, pos)[0]
            frames += 1
        self._frames += frames
        self._t.write(data)
        self._log.append((time.monotonic(), self._frames))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


def _watch_refusals(sim: Any) -> list[dict[str, Any]]:
    """Record every historical request the simulator refuses, with the rule that refused it.

    The rule is read back from the pacing books just before the refusal, so a benchmark can
    say why a violation happened without changing the simulator.
    """
    refusals: list[dict[str, Any]] = []
    books = sim.hist_pacing
    if books is None:
        return refusals
    admit = books.admit

    def watched(key: Any) -> Any:
        t = books._now()
        group = (key.con_id, key.exchange, key.what.upper())
        last = books._last_identical.get(key)
        burst = [round(t - x, 4) for x, _ in books._bursts.get(group, ())]
        weight = books._period_weight
        token, error = admit(key)
        if error is not None:
            if last is not None and t - last < books.identical_window:
                rule = "identical"
            elif len([x for x in burst if x < books.burst_window]) + 1 >= books.burst_limit:
                rule = "burst"
            else:
                rule = "period"
            refusals.append(
                {"t": t, "rule": rule, "code": error.code, "burst_ages": burst, "period": weight}
            )
        return token, error

    books.admit = watched
    return refusals


async def _child(options: dict[str, Any]) -> None:
    from ibflow.sim import Scenario, Simulator

    scenario = Scenario.default()
    if options.get("quiet"):
        # No market steps: only the frames a benchmark asks for flow, so frame counts line up.
        scenario = dataclasses.replace(scenario, tick_interval=1e6)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    async with Simulator(
        port=0,
        scenario=scenario,
        pacing=bool(options.get("pacing")),
        speed=float(options.get("speed", 1.0)),
    ) as sim:
        refusals = _watch_refusals(sim)
        reply({"host": sim.host, "port": sim.port})
        while line := await reader.readline():
            req = json.loads(line)
            cmd = req.pop("cmd")
            try:
                if cmd == "stop":
                    reply({"ok": True})
                    break
                if cmd == "burst":
                    logs: dict[int, list[tuple[float, int]]] = {}
                    wrapped = []
                    for cid, conn in sim._clients.items():
                        if conn.transport is not None:
                            logs[cid] = []
                            wrapped.append((conn, conn.transport))
                            conn.transport = _Stamped(conn.transport, logs[cid])  # type: ignore[assignment]
                    try:
                        sent = await sim.burst(req["symbol"], req["count"], rate=req["rate"])
                    finally:
                        for conn, transport in wrapped:
                            if conn.transport is not None:
                                conn.transport = transport
                    reply({"sent": sent, "stamps": logs})
                elif cmd == "bursts":
                    sent_each = await asyncio.gather(
                        *(sim.burst(s, req["count"], rate=req["rate"]) for s in req["symbols"])
                    )
                    reply({"sent": min(sent_each)})
                elif cmd == "quote":
                    inst = sim.universe.by_name(req["symbol"])
                    assert inst is not None
                    q = sim.market.quote(inst.con_id)
                    reply(
                        {"bid": q.bid, "ask": q.ask, "tick": inst.min_tick, "con_id": inst.con_id}
                    )
                elif cmd == "restart":
                    await sim.restart(req["down_for"])
                    reply({"back_at": time.monotonic()})
                elif cmd == "request_count":
                    reply({"count": sim.request_count(req["kind"])})
                elif cmd == "refusals":
                    reply({"refusals": refusals})
                elif cmd == "clients":
                    reply({"ids": [c.client_id for c in sim.clients]})
                else:
                    reply({"error": f"unknown command {cmd!r}"})
            except Exception as exc:  # report, keep serving
                reply({"error": repr(exc)})


if __name__ == "__main__":
    import logging

    # Serve from the checkout this file lives in, whatever ibflow is installed elsewhere.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_child(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
