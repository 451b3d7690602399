"""A long download: IB-legal chunks, the cache, a few requests in flight under the pacer."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from .._core import SessionCore
from .._errors import (
    ConnectionLost,
    IBFlowError,
    PacingViolation,
    RequestTimeout,
)
from .._log import get_logger
from .._pacer import HistKey
from .._periods import (
    BarSize,
    Chunk,
    WhatToShow,
    bar_seconds,
    grid_floor,
    plan_chunks,
    touches_only,
)
from .._records.contracts import Bar
from .._records.history import DownloadProgress
from ._cache import HistoryCache, SeriesKey
from ._requests import Resolved, send

__all__ = ["Download"]

log = get_logger("history")

_MAX_ATTEMPTS = 6  # a chunk is tried this often before the download gives up


class Download:
    """One ``download()`` call: plan, fetch the gaps under the pacer, store, assemble."""

    def __init__(
        self,
        core: SessionCore,
        resolved: Resolved,
        bar: BarSize,
        what: WhatToShow,
        rth: bool,
        store: HistoryCache | None,
        concurrency: int,
        timeout: float | None,
        progress: bool,
        on_progress: Callable[[DownloadProgress], object] | None,
    ) -> None:
        self.core = core
        self.resolved = resolved
        self.bar = bar
        self.what = what
        self.rth = rth
        self.store = store
        self.concurrency = concurrency
        self.timeout = timeout
        self.series = SeriesKey(resolved.con_id, bar.value, what.value, rth)
        self.fetched: dict[int, Bar] = {}
        self.done = 0
        self.total = 0
        self.bars = 0
        self.retries = 0
        self.started = time.monotonic()
        self.progress = progress
        self.on_progress = on_progress
        self.settled = 0
        self._tick: Callable[[], None] = lambda: None  # advances the progress bar, if any

    async def run(self, first: datetime, last: datetime, idle: frozenset[int]) -> list[Bar]:
        now = int(time.time())
        lo = math.floor(first.timestamp())
        hi = min(math.ceil(last.timestamp()), now)
        if lo >= hi:
            return []
        tz = self.resolved.tz
        # Bars from this cell on may still change: they are returned, never stored.
        self.settled = grid_floor(now, self.bar, tz)
        store = self.store
        if store is not None:
            gaps = await asyncio.to_thread(store.missing, self.series, lo, hi)
        else:
            gaps = [(lo, hi)]
        chunks: list[Chunk] = []
        skipped = 0
        for gap_lo, gap_hi in gaps:
            for chunk in plan_chunks(gap_lo, gap_hi, self.bar, tz, now):
                if touches_only(chunk.start, chunk.end, idle, tz):
                    # Not stored as empty in the cache either: only IB's answers are.
                    skipped += 1
                elif chunk not in chunks:
                    chunks.append(chunk)
        self.total = len(chunks)
        log.info(
            "download %s %s %s: %d request(s) for %d gap(s), %d closed weekend request(s) left out",
            self.resolved.contract.display_name,
            self.bar.value,
            self.what.value,
            len(chunks),
            len(gaps),
            skipped,
        )
        with self._display() as advance:
            self._tick = advance
            self._report()
            if chunks:
                await self._fetch_all(chunks)
        if store is not None:
            stored = await asyncio.to_thread(store.read, self.series, lo, hi, tz)
            result = {int(b.time.timestamp()): b for b in stored}
            for t, b in self.fetched.items():
                result.setdefault(t, b)
        else:
            result = self.fetched
        return [result[t] for t in sorted(result) if lo <= t < hi]

    async def _fetch_all(self, chunks: list[Chunk]) -> None:
        queue = deque(chunks)

        async def worker() -> None:
            while queue:
                await self._fetch(queue.popleft())

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(chunks))):
                    group.create_task(worker())
        except BaseExceptionGroup as failed:
            raise _first_error(failed) from None

    async def _fetch(self, chunk: Chunk) -> None:
        core = self.core
        key = HistKey(
            con_id=self.resolved.con_id,
            exchange=self.resolved.exchange,
            what=self.what.value,
            end=_end_text(chunk.request_end),
            duration=str(chunk.duration),
            bar_size=self.bar.value,
            rth=self.rth,
            bar_seconds=bar_seconds(self.bar),
        )
        pacer = core.pacer
        attempt = 0
        while True:
            try:
                bars = await send(
                    core,
                    self.resolved,
                    key,
                    pace_deadline=None,
                    deadline=None,
                    timeout=self.timeout,
                )
                break
            except PacingViolation as exc:
                wait = (exc.retry_after or 0.0) * 2**attempt
                failure: IBFlowError = exc
            except RequestTimeout as exc:
                wait = pacer.rules.window(pacer.rules.burst_window) * 2**attempt
                failure = exc
            except ConnectionLost as exc:
                await core.wait_ready(self.timeout)
                wait = 0.0
                failure = exc
            attempt += 1
            if attempt >= _MAX_ATTEMPTS:
                raise failure
            self.retries += 1
            wait = min(wait, pacer.rules.window(pacer.rules.period_window))
            log.info("retrying %s in %.2f s after: %s", key.end or "now", wait, failure)
            await asyncio.sleep(wait)
        self.bars += len(bars)
        cover_end = min(chunk.end, self.settled)
        final = [b for b in bars if int(b.time.timestamp()) < cover_end]
        if self.store is not None:
            await asyncio.to_thread(
                self.store.store,
                self.series,
                self.resolved.tz_name,
                final,
                (chunk.start, cover_end),
            )
            keep = [b for b in bars if int(b.time.timestamp()) >= cover_end]
        else:
            keep = bars
        for b in keep:
            self.fetched[int(b.time.timestamp())] = b
        self.done += 1
        self._tick()
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(
                DownloadProgress(
                    done=self.done,
                    total=self.total,
                    bars=self.bars,
                    retries=self.retries,
                    elapsed=time.monotonic() - self.started,
                )
            )

    @contextlib.contextmanager
    def _display(self) -> Iterator[Callable[[], None]]:
        """A rich progress bar on an interactive stderr, else nothing."""
        if not (self.progress and self.total and sys.stderr.isatty()):
            yield lambda: None
            return
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
        except ImportError:  # rich comes with the "cli" extra
            yield lambda: None
            return
        label = f"{self.resolved.contract.display_name} {self.bar.value} {self.what.value}"
        bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = bar.add_task(label, total=self.total)
        bar.start()
        try:
            yield lambda: bar.advance(task)
        finally:
            bar.stop()


def _end_text(request_end: int | None) -> str:
    if request_end is None:
        return ""
    return datetime.fromtimestamp(request_end, UTC).strftime("%Y%m%d-%H:%M:%S")


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a download reports when a request failed: the first ibflow error, else any."""
    flat: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            flat.append(exc)

    walk(group)
    for exc in flat:
        if isinstance(exc, IBFlowError):
            return exc
    return flat[0]
