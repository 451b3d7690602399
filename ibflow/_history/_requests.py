"""One historical request: resolving the instrument, sharing identical requests, pacing, retries."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from .._account import Contracts
from .._core import SessionCore
from .._errors import (
    AmbiguousContract,
    ContractNotFound,
    InvalidRequest,
    MarketDataError,
    PacingViolation,
    RequestError,
    RequestTimeout,
)
from .._log import get_logger
from .._pacer import HistKey, Pacer, PacingDelay
from .._records.contracts import Bar, Contract
from .._schedule import idle_weekdays, zone_of
from ._cache import HistoryCache

__all__ = [
    "Resolved",
    "State",
    "aware",
    "check_cache",
    "check_contract",
    "check_flag",
    "remaining",
    "resolve",
    "send",
    "shared",
]

log = get_logger("history")

_PACING_RETRIES = 3  # pacing refusals waited out within one call before giving up


@dataclass(slots=True)
class Resolved:
    contract: Contract
    con_id: int
    exchange: str
    tz: tzinfo
    tz_name: str
    # Weekend days the instrument's schedule never trades, for regular hours and for all hours.
    idle_rth: frozenset[int] = frozenset()
    idle_all: frozenset[int] = frozenset()


@dataclass(slots=True)
class State:
    """What history keeps per session: resolved instruments, recent answers, shared requests."""

    core: SessionCore
    contracts: Contracts
    resolved: dict[Contract, Resolved] = field(default_factory=dict)
    memo: dict[HistKey, tuple[float, list[Bar]]] = field(default_factory=dict)
    inflight: dict[HistKey, asyncio.Future[list[Bar]]] = field(default_factory=dict)
    resolving: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Abandoned(Exception):
    """The task that owned a shared request gave up (timeout, cancellation): ask again."""


def check_contract(contract: object) -> Contract:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"contract must be an ibflow Contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )
    return contract


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be True or False, got {value!r}")
    return value


def aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidRequest(f"{name} must be an aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(
            f"{name}={value!r} is naive; pass an aware datetime (e.g. tzinfo=datetime.UTC or "
            "zoneinfo.ZoneInfo('America/New_York')) so it means one instant"
        )
    return value


def check_cache(cache: object) -> HistoryCache | None:
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


def remaining(deadline: float | None, what: str) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise RequestTimeout(f"{what}: no answer in time")
    return left


async def resolve(state: State, contract: Contract, deadline: float | None) -> Resolved:
    """con_id, exchange and time zone of ``contract``; looked up once per session.

    Goes through the session's ``contract_details()``, which sends lookups one at a time.
    """
    hit = state.resolved.get(contract)
    if hit is not None:
        return hit
    try:
        async with asyncio.timeout(remaining(deadline, "contract lookup")):
            # Concurrent history calls for one contract make one lookup. (Not the pacer's
            # lookup lock: contract_details() may take that one itself.)
            async with state.resolving:
                hit = state.resolved.get(contract)
                if hit is not None:
                    return hit
                found = await state.contracts.contract_details(
                    contract, timeout=remaining(deadline, "contract lookup")
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
    resolved = Resolved(
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
    zone = zone_of(name)
    if zone is None:
        if name:
            log.warning("unknown time zone %r from TWS; bar times are given in UTC", name)
        return UTC
    return zone


async def shared(
    state: State, resolved: Resolved, key: HistKey, deadline: float | None
) -> list[Bar]:
    """One request, answered from the 15-second memo or shared with an identical one in flight."""
    core = state.core
    pacer = core.pacer
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
            async with asyncio.timeout(remaining(deadline, "reqHistoricalData")):
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
        bars = await send(
            core, resolved, key, pace_deadline=deadline, deadline=deadline, retry_pacing=True
        )
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


async def send(
    core: SessionCore,
    resolved: Resolved,
    key: HistKey,
    *,
    pace_deadline: float | None,
    deadline: float | None,
    timeout: float | None = None,
    retry_pacing: bool = False,
) -> list[Bar]:
    """Send one historical request under the pacer; IB's answer or a typed error.

    ``deadline`` bounds the whole call (history); otherwise ``timeout`` bounds the answer once
    the pacer let the request go (download). With ``retry_pacing``, a pacing refusal IB still
    sends (another program's requests count too) is waited out and the request sent again, as
    long as that fits before ``deadline``.
    """
    pacer = core.pacer
    adapter = core.adapter
    refusals = 0
    while True:
        try:
            ticket = await pacer.acquire(key, deadline=pace_deadline)
        except PacingDelay as delay:
            raise _held_back(delay) from None
        try:
            limit = timeout if deadline is None else remaining(deadline, "reqHistoricalData")
            return await core.request(
                "reqHistoricalData",
                lambda: adapter.history.start_historical(
                    resolved.contract,
                    end=key.end,
                    duration=key.duration,
                    bar_size=key.bar_size,
                    what=key.what,
                    rth=key.rth,
                    tz=resolved.tz,
                ),
                timeout=limit,
                cancel=adapter.history.cancel_historical(),
            )
        except PacingViolation as exc:
            error = _pacing_error(pacer, key, exc)
        except RequestError as exc:
            if exc.code == 322 and "simultaneous" in exc.message.lower():
                error = _pacing_error(pacer, key, exc)
            elif isinstance(exc, MarketDataError) and _no_data(exc):
                return []
            else:
                raise
        finally:
            pacer.release(ticket)
        refusals += 1
        wait = error.retry_after or 0.0
        fits = deadline is None or time.monotonic() + wait < deadline
        if not retry_pacing or refusals > _PACING_RETRIES or not fits:
            raise error
        log.info("retrying a historical request refused for pacing in %.2f s", wait)


def _no_data(exc: RequestError) -> bool:
    # HMDS says a valid query found nothing (weekend, before the first trade): an answer.
    return exc.code == 162 and "returned no data" in exc.message.lower()


def _pacing_error(pacer: Pacer, key: HistKey, exc: RequestError) -> PacingViolation:
    """IB refused for pacing: back the whole pacer off, and say when to retry."""
    retry = pacer.core.retry_after(key)
    pacer.core.violation(retry)
    log.warning("IB refused a historical request for pacing (%s); backing off %.2f s", exc, retry)
    return PacingViolation(
        exc.code,
        exc.message,
        exc.req_id,
        hint=(
            f"IB's pacing rules admit it again in {retry:.2f} s: wait retry_after seconds, or "
            "give a timeout long enough for ibflow to wait and retry"
        ),
        retry_after=retry,
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
