"""Historical bars, paced long downloads and the local cache (issue 6).

The most reported history pains (``../shared/ib-limits.md``, 7 and 8): ib_async returns ``[]``
on a timeout and on an IB error alike, a long pull trips error 162 or is simply never answered,
and nothing remembers what was already fetched. Here:

* ``history()`` validates everything before sending (bar size, duration, IB's step table,
  what-to-show, aware end), sends one request through the session's pacer, and either returns
  the bars or raises a typed error — a timeout raises :class:`~ibflow.RequestTimeout` after the
  IB cancel went out. An identical request within 15 s is answered from memory (IB would refuse
  it), and concurrent identical requests share one answer.
* ``download()`` cuts a range into IB-legal requests on the instrument's bar grid, serves what
  the on-disk cache holds, fetches the gaps with a few requests in flight under the pacer,
  retries after pacing errors with backoff, and returns the bars sorted and unique.
* ``head_timestamp()`` asks for the earliest bar IB has.

The pacing rules live in ``ibflow._pacer`` (one pacer per session, shared with the other
modules that send paced requests), the parsing and planning in ``ibflow._periods``, the store in
``ibflow._cache``, and the ib_async calls in ``ibflow._ib._history``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._cache import HistoryCache, SeriesKey
from ._errors import (
    AmbiguousContract,
    ConnectionLost,
    ContractNotFound,
    IBFlowError,
    InvalidRequest,
    MarketDataError,
    PacingViolation,
    RequestError,
    RequestTimeout,
)
from ._ib._history import (
    cancel_head_timestamp,
    cancel_historical,
    configure_throttle,
    start_head_timestamp,
    start_historical,
)
from ._log import get_logger
from ._models import Bar, Contract
from ._pacer import HistKey, Pacer, PacingDelay, PacingRules, PacingStatistics, pacer_for
from ._per_session import per_session
from ._periods import (
    BarSize,
    Chunk,
    WhatToShow,
    bar_seconds,
    check_request,
    format_end,
    grid_floor,
    idle_weekdays,
    parse_duration,
    parse_period,
    parse_what,
    plan_chunks,
    touches_only,
)
from ._timeouts import SESSION_DEFAULT, resolve_timeout

if TYPE_CHECKING:
    from ._session import Session

__all__ = [
    "BarSize",
    "DownloadProgress",
    "HistoryCache",
    "PacingRules",
    "PacingStatistics",
    "WhatToShow",
]

log = get_logger("history")

_MAX_ATTEMPTS = 6  # a chunk is tried this often before the download gives up
_MAX_CONCURRENCY = 16


_DEFAULT = SESSION_DEFAULT


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadProgress:
    """Where a ``download()`` stands, as given to its ``on_progress`` callback."""

    done: int
    """Requests finished (answered, or found empty)."""
    total: int
    """Requests the download needs (0 when the cache held everything)."""
    bars: int
    """Bars received from IB so far."""
    retries: int
    """Requests repeated after a pacing error, a timeout or a reconnect."""
    elapsed: float
    """Seconds since the download started."""


@dataclass(slots=True)
class _Resolved:
    contract: Contract
    con_id: int
    exchange: str
    tz: tzinfo
    tz_name: str
    # Weekend days the instrument's schedule never trades, for regular hours and for all hours.
    idle_rth: frozenset[int] = frozenset()
    idle_all: frozenset[int] = frozenset()


@dataclass(slots=True)
class _State:
    resolved: dict[Contract, _Resolved] = field(default_factory=dict)
    memo: dict[HistKey, tuple[float, list[Bar]]] = field(default_factory=dict)
    inflight: dict[HistKey, asyncio.Future[list[Bar]]] = field(default_factory=dict)
    resolving: asyncio.Lock = field(default_factory=asyncio.Lock)


def _state(session: object) -> _State:
    return per_session(session, "history", _State)


def _session(api: HistoryAPI) -> Session:
    # The mixin only ever runs as part of a Session; mypy cannot see that from here.
    return cast("Session", api)


class _Abandoned(Exception):
    """The task that owned a shared request gave up (timeout, cancellation): ask again."""


# ---------------------------------------------------------------------------------------------
# argument checks (all before anything is sent)


def _check_contract(contract: object) -> Contract:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"contract must be an ibflow Contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )
    return contract


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be True or False, got {value!r}")
    return value


def _timeout_for(session: Session, timeout: object) -> float | None:
    return resolve_timeout(timeout, session._timeout)


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidRequest(f"{name} must be an aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(
            f"{name}={value!r} is naive; pass an aware datetime (e.g. tzinfo=datetime.UTC or "
            "zoneinfo.ZoneInfo('America/New_York')) so it means one instant"
        )
    return value


def _check_cache(cache: object) -> HistoryCache | None:
    if cache is True:
        return HistoryCache()
    if cache is False or cache is None:
        return None
    if isinstance(cache, HistoryCache):
        return cache
    if isinstance(cache, str | os.PathLike):
        return HistoryCache(cache)
    raise InvalidRequest(
        f"cache must be True (the default cache), False (off), an ibflow.HistoryCache or a "
        f"directory path, got {cache!r}"
    )


def _remaining(deadline: float | None, what: str) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise RequestTimeout(f"{what}: no answer in time")
    return left


# ---------------------------------------------------------------------------------------------
# the mixin


class HistoryAPI:
    """Session methods for this feature; ``Session`` inherits them."""

    async def history(
        self,
        contract: Contract,
        *,
        period: str | BarSize = "5m",
        duration: str | timedelta = "1 D",
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        end: datetime | None = None,
        timeout: float | None = _DEFAULT,
    ) -> list[Bar]:
        """Historical bars for ``contract``, oldest first.

        Args:
            contract: what to fetch, e.g. ``ibflow.Stock("AAPL")``.
            period: the bar size: ``"1s"``, ``"5s"`` … ``"1m"``, ``"5m"``, ``"1h"``, ``"1d"``,
                ``"1w"``, ``"1M"`` (month), or IB's spelling (``"5 mins"``, ``"1 hour"``).
            duration: how far back from ``end``: ``"3600 S"``, ``"1 D"``, ``"2 W"``, ``"1 M"``,
                ``"1 Y"``, or a ``timedelta``. IB's step table limits it per period.
            what: ``TRADES``, ``MIDPOINT``, ``BID``, ``ASK``, ``BID_ASK`` … (:class:`WhatToShow`).
            rth: regular trading hours only.
            end: an aware datetime; ``None`` means now.
            timeout: seconds for the whole call (session default if not given; ``None``
                waits forever).

        Returns:
            Bars with aware times in the instrument's time zone (daily bars: midnight of the
            session date). Empty only when IB answers that the window holds no data.

        Raises:
            InvalidRequest: a bad argument (nothing was sent); the message says what works.
            PacingViolation: IB refused for pacing, or the pacer would hold the request
                past the timeout (then ``req_id`` is -1: nothing was sent); ``retry_after``
                says when to try again.
            MarketDataError: IB has no such data (permissions, no data of this kind).
            ContractNotFound, AmbiguousContract: the contract does not resolve to one.
            RequestTimeout: no answer in time; the IB cancel has been sent.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        contract = _check_contract(contract)
        bar = parse_period(period)
        dur = parse_duration(duration)
        kind = parse_what(what)
        end_text = format_end(end)
        _check_flag(rth, "rth")
        check_request(contract, bar, dur, kind, has_end=end is not None)
        limit = _timeout_for(session, timeout)
        session._require_ready()
        deadline = None if limit is None else time.monotonic() + limit
        resolved = await _resolve(session, contract, deadline)
        key = HistKey(
            con_id=resolved.con_id,
            exchange=resolved.exchange,
            what=kind.value,
            end=end_text,
            duration=str(dur),
            bar_size=bar.value,
            rth=rth,
            bar_seconds=bar_seconds(bar),
        )
        return await _shared(session, resolved, key, deadline)

    async def download(
        self,
        contract: Contract,
        *,
        start: datetime,
        end: datetime | None = None,
        period: str | BarSize = "1m",
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        progress: bool = True,
        on_progress: Callable[[DownloadProgress], object] | None = None,
        cache: bool | HistoryCache | str | os.PathLike[str] = True,
        concurrency: int = 4,
        skip_closed: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[Bar]:
        """All bars of ``contract`` from ``start`` to ``end``, however many requests it takes.

        The range is cut into the longest requests IB's step table allows, on the instrument's
        bar grid; what the cache holds is not asked again; requests that would only cover
        weekend days the instrument never trades are not sent; the rest runs under the
        session's pacer with up to ``concurrency`` requests in flight, and a request refused
        for pacing (or unanswered) is repeated with backoff. Bars fetched before a failure stay
        cached, so running the same download again resumes it.

        Args:
            contract: what to fetch.
            start: aware datetime, first bar time wanted (inclusive).
            end: aware datetime, exclusive; ``None`` (or a future time) means now.
            period: the bar size (see :meth:`history`).
            what: the data type (see :meth:`history`; not ``ADJUSTED_LAST``).
            rth: regular trading hours only.
            progress: show a progress bar (rich) when stderr is a terminal.
            on_progress: called with a :class:`DownloadProgress` at the start and after each
                request.
            cache: ``True``: the default on-disk cache (``IBFLOW_CACHE_DIR`` or the user cache
                directory); ``False``: no cache; or a :class:`HistoryCache` / directory.
            concurrency: requests in flight at once (1 to 16; the pacer still applies).
            skip_closed: leave out requests for Saturdays and Sundays that the instrument's
                schedule (IB's ``liquidHours`` with ``rth``, else ``tradingHours``) shows
                closed with no session touching them: IB answers those with no bars but
                counts them against its pacing limits. A session opening on Sunday evening
                (futures, forex) keeps Sunday. ``False`` asks for every day, e.g. for a
                market that held a special weekend session.
            timeout: seconds for each request's answer (session default if not given). The
                whole download has no time limit: pacing may make it long. Wrap it in
                ``asyncio.timeout()`` to bound it.

        Returns:
            Bars with ``start <= time < end``, sorted by time, one per time.

        Raises:
            InvalidRequest: a bad argument (nothing was sent).
            ConfigError: the cache directory cannot be used.
            PacingViolation: IB kept refusing a request for pacing.
            RequestTimeout: a request stayed unanswered after every retry.
            MarketDataError, ContractNotFound, AmbiguousContract, RequestError: IB refused.
            ConnectionLost, SessionClosedError: the session went away.
        """
        session = _session(self)
        contract = _check_contract(contract)
        first = _aware(start, "start")
        last = _aware(end, "end") if end is not None else datetime.now(UTC)
        if last <= first:
            raise InvalidRequest(
                f"end ({last.isoformat()}) must be after start ({first.isoformat()})"
            )
        bar = parse_period(period)
        kind = parse_what(what)
        if kind is WhatToShow.ADJUSTED_LAST:
            raise InvalidRequest(
                "download() cannot fetch ADJUSTED_LAST (IB serves it only up to now, without an "
                "end date); use history(..., what='ADJUSTED_LAST') or what='TRADES'"
            )
        check_request(contract, bar, None, kind, has_end=False)
        _check_flag(rth, "rth")
        _check_flag(progress, "progress")
        _check_flag(skip_closed, "skip_closed")
        if on_progress is not None and not callable(on_progress):
            raise InvalidRequest(f"on_progress must be a callable or None, got {on_progress!r}")
        if (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or not 1 <= concurrency <= _MAX_CONCURRENCY
        ):
            raise InvalidRequest(
                f"concurrency must be an integer from 1 to {_MAX_CONCURRENCY}, got {concurrency!r}"
            )
        store = _check_cache(cache)
        limit = _timeout_for(session, timeout)
        session._require_ready()

        lookup_deadline = None if limit is None else time.monotonic() + limit
        resolved = await _resolve(session, contract, lookup_deadline)
        idle = (resolved.idle_rth if rth else resolved.idle_all) if skip_closed else frozenset()
        return await _Download(
            session, resolved, bar, kind, rth, store, concurrency, limit, progress, on_progress
        ).run(first, last, idle)

    async def head_timestamp(
        self,
        contract: Contract,
        *,
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime:
        """The time of the earliest bar IB has for ``contract`` and ``what`` (aware, UTC).

        Raises:
            InvalidRequest: a bad argument (nothing was sent).
            MarketDataError: IB has no such data.
            ContractNotFound: IB does not know the contract.
            RequestTimeout: no answer in time; the IB cancel has been sent.
            ConnectionLost, SessionClosedError: the session went away.
        """
        session = _session(self)
        contract = _check_contract(contract)
        kind = parse_what(what)
        _check_flag(rth, "rth")
        check_request(contract, BarSize.DAY_1, None, kind, has_end=False)
        limit = _timeout_for(session, timeout)
        session._require_ready()
        adapter = session._adapter
        return await session._request(
            "reqHeadTimeStamp",
            lambda: start_head_timestamp(adapter, contract, what=kind.value, rth=rth),
            timeout=limit,
            cancel=cancel_head_timestamp(adapter),
        )

    def set_pacing(self, rules: PacingRules) -> None:
        """Replace this session's pacing rules (see :class:`PacingRules`).

        Requests already sent keep counting. ``rules.messages_per_second`` and
        ``rules.time_scale`` also set the send throttle every outbound message passes.

        Raises:
            InvalidRequest: ``rules`` is not a PacingRules.
        """
        if not isinstance(rules, PacingRules):
            raise InvalidRequest(f"rules must be an ibflow.PacingRules(...), got {rules!r}")
        session = _session(self)
        pacer_for(session).set_rules(rules)
        configure_throttle(session._adapter, rules.messages_per_second, 1.0 / rules.time_scale)

    def pacing_statistics(self) -> PacingStatistics:
        """What this session's pacer has let through, held back and seen refused."""
        session = _session(self)
        return pacer_for(session).statistics()


# ---------------------------------------------------------------------------------------------
# one request


async def _resolve(session: Session, contract: Contract, deadline: float | None) -> _Resolved:
    """con_id, exchange and time zone of ``contract``; looked up once per session.

    Goes through the session's ``contract_details()``, which sends lookups one at a time.
    """
    state = _state(session)
    hit = state.resolved.get(contract)
    if hit is not None:
        return hit
    try:
        async with asyncio.timeout(_remaining(deadline, "contract lookup")):
            # Concurrent history calls for one contract make one lookup. (Not the pacer's
            # lookup lock: contract_details() may take that one itself.)
            async with state.resolving:
                hit = state.resolved.get(contract)
                if hit is not None:
                    return hit
                found = await session.contract_details(
                    contract, timeout=_remaining(deadline, "contract lookup")
                )
    except TimeoutError as exc:
        if isinstance(exc, RequestTimeout):
            raise
        raise RequestTimeout(f"contract lookup for {contract.display_name}: no answer") from None
    if contract.con_id is not None:
        found = [d for d in found if d.contract.con_id == contract.con_id] or found
    if len({d.contract.con_id for d in found}) > 1:
        candidates = [d.contract for d in found]
        listed = "; ".join(
            f"{c.display_name} {c.sec_type.value} {c.exchange} {c.currency} con_id={c.con_id}"
            for c in candidates[:10]
        )
        raise AmbiguousContract(
            200,
            f"{contract.display_name} matches {len(found)} contracts: {listed}",
            hint="add the exchange, currency or con_id",
            candidates=candidates,
        )
    details = found[0]
    con_id = details.contract.con_id
    if con_id is None:
        raise ContractNotFound(
            200, f"IB described {contract.display_name} without a con_id", hint="pass a con_id"
        )
    tz_name = details.time_zone or "UTC"
    resolved = _Resolved(
        contract=contract if contract.con_id is not None else contract.with_con_id(con_id),
        con_id=con_id,
        exchange=contract.exchange or details.contract.exchange,
        tz=_zone(tz_name),
        tz_name=tz_name,
        idle_rth=idle_weekdays(details.liquid_hours),
        idle_all=idle_weekdays(details.trading_hours),
    )
    state.resolved[contract] = resolved
    return resolved


def _zone(name: str) -> tzinfo:
    if not name or name.upper() in ("UTC", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r from TWS; bar times are given in UTC", name)
        return UTC


async def _shared(
    session: Session, resolved: _Resolved, key: HistKey, deadline: float | None
) -> list[Bar]:
    """One request, answered from the 15-second memo or shared with an identical one in flight."""
    state = _state(session)
    pacer = pacer_for(session)
    while True:
        now = pacer.core.now()
        ttl = pacer.rules.window(pacer.rules.identical_window)
        hit = state.memo.get(key)
        if hit is not None and now - hit[0] < ttl:
            return list(hit[1])
        running = state.inflight.get(key)
        if running is None:
            break
        try:
            async with asyncio.timeout(_remaining(deadline, "reqHistoricalData")):
                return list(await asyncio.shield(running))
        except _Abandoned:
            continue
        except TimeoutError as exc:
            if isinstance(exc, RequestTimeout):
                raise
            raise RequestTimeout("reqHistoricalData: no answer in time") from None

    shared: asyncio.Future[list[Bar]] = asyncio.get_running_loop().create_future()
    state.inflight[key] = shared
    try:
        bars = await _send(session, resolved, key, pace_deadline=deadline, deadline=deadline)
    except BaseException as exc:
        # Others waiting on the same request get IB's answer; if this caller merely gave up,
        # they ask again themselves.
        shared.set_exception(exc if isinstance(exc, RequestError) else _Abandoned())
        shared.exception()  # retrieved: nobody may be waiting
        raise
    else:
        shared.set_result(bars)
        for stale in [k for k, (t, _) in state.memo.items() if now - t >= ttl]:
            del state.memo[stale]
        state.memo[key] = (pacer.core.now(), bars)
        return list(bars)
    finally:
        if state.inflight.get(key) is shared:
            del state.inflight[key]


async def _send(
    session: Session,
    resolved: _Resolved,
    key: HistKey,
    *,
    pace_deadline: float | None,
    deadline: float | None,
    timeout: float | None = None,
) -> list[Bar]:
    """Send one historical request under the pacer; IB's answer or a typed error.

    ``deadline`` bounds the whole call (history); otherwise ``timeout`` bounds the answer once
    the pacer let the request go (download).
    """
    pacer = pacer_for(session)
    try:
        ticket = await pacer.acquire(key, deadline=pace_deadline)
    except PacingDelay as delay:
        raise _held_back(delay) from None
    adapter = session._adapter
    try:
        limit = timeout if deadline is None else _remaining(deadline, "reqHistoricalData")
        return await session._request(
            "reqHistoricalData",
            lambda: start_historical(
                adapter,
                resolved.contract,
                end=key.end,
                duration=key.duration,
                bar_size=key.bar_size,
                what=key.what,
                rth=key.rth,
                tz=resolved.tz,
            ),
            timeout=limit,
            cancel=cancel_historical(adapter),
        )
    except PacingViolation as exc:
        raise _pacing_error(pacer, key, exc) from exc
    except RequestError as exc:
        if exc.code == 322 and "simultaneous" in exc.message.lower():
            raise _pacing_error(pacer, key, exc) from exc
        if isinstance(exc, MarketDataError) and _no_data(exc):
            return []
        raise
    finally:
        pacer.release(ticket)


def _no_data(exc: RequestError) -> bool:
    # HMDS says a valid query found nothing (weekend, before the first trade): an answer.
    return exc.code == 162 and "returned no data" in exc.message.lower()


def _pacing_error(pacer: Pacer, key: HistKey, exc: RequestError) -> PacingViolation:
    """IB refused for pacing: back the whole pacer off, and say when to retry."""
    retry = pacer.core.retry_after(key)
    pacer.core.violation(retry)
    log.warning("IB refused a historical request for pacing (%s); backing off %.2f s", exc, retry)
    return PacingViolation(
        exc.code, exc.message, exc.req_id, hint=exc.hint or "wait, then retry", retry_after=retry
    )


def _held_back(delay: PacingDelay) -> PacingViolation:
    """The pacer would have to hold a request past its deadline: nothing was sent."""
    error = PacingViolation(
        162,
        "Historical data request pacing violation (held back by ibflow; nothing was sent)",
        retry_after=delay.retry_after,
    )
    error.args = (
        f"ibflow held the historical request back: IB's pacing rule '{delay.rule}' admits it "
        f"in {delay.retry_after:.2f} s, after the timeout. Nothing was sent; retry after "
        "retry_after seconds or give a longer timeout.",
    )
    return error


# ---------------------------------------------------------------------------------------------
# downloads


class _Download:
    """One ``download()`` call: plan, fetch the gaps under the pacer, store, assemble."""

    def __init__(
        self,
        session: Session,
        resolved: _Resolved,
        bar: BarSize,
        what: WhatToShow,
        rth: bool,
        store: HistoryCache | None,
        concurrency: int,
        timeout: float | None,
        progress: bool,
        on_progress: Callable[[DownloadProgress], object] | None,
    ) -> None:
        self.session = session
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
        session = self.session
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
        pacer = pacer_for(session)
        attempt = 0
        while True:
            try:
                bars = await _send(
                    session,
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
                await session._wait_ready(self.timeout)
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
