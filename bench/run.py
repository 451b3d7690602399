"""Run ibflow's benchmarks and write ``docs/benchmarks.md``.

    python3 bench/run.py            # full sizes
    python3 bench/run.py --quick    # CI-sized: smaller feeds, still 3 runs each (< 3 min)

Benchmarks are not tests: nothing here asserts a time. They exist so that every speed claim in
the README is a number measured on this machine, next to raw ib_async in the same run.

1–3 feeds (flood, steady rates, latency) ``feeds.py``   5, 7 connect/reconnect ``lifecycle.py``
4 memory behind a slow consumer ``memory.py``           6 history under pacing ``history.py``
8 simulator capacity ``capacity.py``; 9 orders through restarts ``reliability.py``; 10 the hub
(latency added, fan-out to processes, orders; a real nats-server) ``hub.py``; 11 the order
journal's writes and what it adds to ``place()`` ``journal.py``; the simulator process and send
stamps ``simproc.py``.

With ``--only``, the sections measured replace their namesakes in the existing output file and
the others stay as they were.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

# Measure the checkout this file lives in, whatever ibflow is installed elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity import sim_capacity
from feeds import FeedPlan, run_feeds, sections
from harness import Section, render
from history import history_bench
from hub import hub_bench
from journal import journal_bench
from lifecycle import connect_bench, reconnect_bench
from memory import memory_bench
from reliability import reliability_bench

import ibflow
from ibflow._ib._fastpath import ENV_VAR, fast_receive_enabled

ROOT = Path(__file__).resolve().parent.parent


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _available(name: str) -> bool:
    return callable(getattr(ibflow.Session, name, None))


async def main(quick: bool, runs: int, out: Path, only: set[str]) -> None:
    for name in ("ib_async", "ibflow", "eventkit"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if not fast_receive_enabled():
        _log(f"note: {ENV_VAR}=0 — ibflow runs without its fast receive path")
    quotes = _available("quotes")
    download = _available("download")
    missing = [
        n for n, ok in (("Session.quotes", quotes), ("Session.download", download)) if not ok
    ]
    plan = (
        FeedPlan(
            flood=100_000,
            rates=[25_000, 50_000, 100_000, 150_000, 250_000, 400_000],
            rate_seconds=0.5,
            latency_rates=[10_000, 50_000],
            latency_seconds=1.0,
            runs=runs,
        )
        if quick
        else FeedPlan(
            flood=400_000,
            rates=[25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 250_000,
                   300_000, 400_000, 500_000, 600_000],
            rate_seconds=2.0,
            latency_rates=[10_000, 50_000],
            latency_seconds=3.0,
            runs=runs,
            latency_repeats=2,
        )
    )  # fmt: skip
    found: dict[str, list[Section]] = {}
    started = time.monotonic()

    def want(key: str) -> bool:
        return not only or key in only

    if want("feeds"):
        _log("1–3: feeds")
        found["feeds"] = sections(await run_feeds(plan, quotes, _log), plan)
    if want("memory"):
        _log("4: memory")
        ticks = 300_000 if quick else 1_000_000
        found["memory"] = [await memory_bench(ticks, 250_000, runs, quotes, _log)]
    if want("connect"):
        _log("5: connect")
        found["connect"] = [await connect_bench(5 if quick else 15, _log)]
    if want("history") and download:
        _log("6: history")
        found["history"] = [await history_bench(100, 61 if quick else 241, runs, _log)]
    if want("reconnect") and quotes:
        _log("7: reconnect")
        found["reconnect"] = [await reconnect_bench(runs, _log)]
    if want("capacity"):
        _log("8: capacity")
        found["capacity"] = [await sim_capacity(100_000 if quick else 400_000, runs)]
    if want("reliability"):
        _log("9: reliability")
        found["reliability"] = [await reliability_bench(10 if quick else 40, runs, _log)]
    if want("hub"):
        _log("10: hub")
        found["hub"] = [await hub_bench(runs, quick, _log)]
    if want("journal"):
        _log("11: journal")
        found["journal"] = [await journal_bench(50 if quick else 200, runs, _log)]
    order = [
        "feeds", "memory", "connect", "history", "reconnect", "capacity", "reliability", "hub",
        "journal",
    ]  # fmt: skip
    result = [sec for key in order for sec in found.get(key, [])]
    elapsed = time.monotonic() - started
    command = "python3 bench/run.py" + (" --quick" if quick else "")
    preamble = (
        f"- ibflow's fast receive path (`ibflow/_ib/_fastpath.py`, on by default, "
        f"`{ENV_VAR}=0` turns it off): {'on' if fast_receive_enabled() else 'off'} in this "
        f"run, which took {elapsed:.0f} s\n"
        "- setup: the simulator runs in its own process (except 8, 9 and 11), so a client that "
        "falls behind cannot slow the feed down; client and simulator each have a core.\n"
    )
    if missing:
        preamble += f"- not measured (API not available yet): {', '.join(missing)}\n"
    text = render(result, runs, command, preamble)
    if only and out.exists():
        text = merge(out.read_text(), text)
    out.write_text(text)
    print(out.read_text())
    _log(f"done in {elapsed:.0f} s → {out}")


def merge(existing: str, measured: str) -> str:
    """``existing`` with each ``## `` section of ``measured`` put in place of its namesake
    (matched by number) or appended; the rest of ``existing`` stays as it was."""

    def split(text: str) -> tuple[str, list[str]]:
        head, *sections = text.split("\n## ")
        return head, sections

    head, sections = split(existing)
    for section in split(measured)[1]:
        number = section.split(".", 1)[0]
        at = [i for i, old in enumerate(sections) if old.split(".", 1)[0] == number]
        if at:
            sections[at[0]] = section
        else:
            sections.append(section)
    return "\n## ".join([head, *sections]).rstrip("\n") + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized runs (< 3 minutes)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (min 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=[
            "feeds",
            "memory",
            "connect",
            "history",
            "reconnect",
            "capacity",
            "reliability",
            "hub",
            "journal",
        ],
        help="run only these benchmarks (repeatable; for development)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.quick, max(3, args.runs), args.out, set(args.only)))
