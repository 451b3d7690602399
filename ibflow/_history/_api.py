"""The history feature: what Session offers for historical bars and downloads."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .._account import Contracts
from .._core import SessionCore
from .._errors import (
    InvalidRequest,
)
from .._pacer import HistKey, PacingRules, PacingStatistics
from .._periods import (
    BarSize,
    WhatToShow,
    bar_seconds,
    check_request,
    format_end,
    parse_duration,
    parse_period,
    parse_what,
)
from .._records.contracts import Bar, Contract
from .._records.history import DownloadProgress
from .._timeouts import SESSION_DEFAULT
from ._cache import HistoryCache
from ._download import Download
from ._requests import State, aware, check_cache, check_contract, check_flag, resolve, shared

__all__ = ["History"]

_DEFAULT = SESSION_DEFAULT
_MAX_CONCURRENCY = 16


class History:
    """Historical bars, paced downloads and head timestamps."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self._core = core
        self._state = State(core, contracts)

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
        """See :meth:`ibflow.Session.history`."""
        core = self._core
        contract = check_contract(contract)
        bar = parse_period(period)
        dur = parse_duration(duration)
        kind = parse_what(what)
        end_text = format_end(end)
        check_flag(rth, "rth")
        check_request(contract, bar, dur, kind, has_end=end is not None)
        limit = core.limit(timeout)
        core.require_ready()
        deadline = None if limit is None else time.monotonic() + limit
        resolved = await resolve(self._state, contract, deadline)
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
        return await shared(self._state, resolved, key, deadline)

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
        """See :meth:`ibflow.Session.download`."""
        core = self._core
        contract = check_contract(contract)
        first = aware(start, "start")
        last = aware(end, "end") if end is not None else datetime.now(UTC)
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
        check_flag(rth, "rth")
        check_flag(progress, "progress")
        check_flag(skip_closed, "skip_closed")
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
        store = check_cache(cache)
        limit = core.limit(timeout)
        core.require_ready()

        lookup_deadline = None if limit is None else time.monotonic() + limit
        resolved = await resolve(self._state, contract, lookup_deadline)
        idle = (resolved.idle_rth if rth else resolved.idle_all) if skip_closed else frozenset()
        return await Download(
            core, resolved, bar, kind, rth, store, concurrency, limit, progress, on_progress
        ).run(first, last, idle)

    async def head_timestamp(
        self,
        contract: Contract,
        *,
        what: str | WhatToShow = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime:
        """See :meth:`ibflow.Session.head_timestamp`."""
        core = self._core
        contract = check_contract(contract)
        kind = parse_what(what)
        check_flag(rth, "rth")
        check_request(contract, BarSize.DAY_1, None, kind, has_end=False)
        limit = core.limit(timeout)
        core.require_ready()
        adapter = core.adapter
        return await core.request(
            "reqHeadTimeStamp",
            lambda: adapter.history.start_head_timestamp(contract, what=kind.value, rth=rth),
            timeout=limit,
            cancel=adapter.history.cancel_head_timestamp(),
        )

    def set_pacing(self, rules: PacingRules) -> None:
        """See :meth:`ibflow.Session.set_pacing`."""
        if not isinstance(rules, PacingRules):
            raise InvalidRequest(f"rules must be an ibflow.PacingRules(...), got {rules!r}")
        core = self._core
        core.pacer.set_rules(rules)
        core.adapter.history.configure_throttle(rules.messages_per_second, 1.0 / rules.time_scale)

    def pacing_statistics(self) -> PacingStatistics:
        """See :meth:`ibflow.Session.pacing_statistics`."""
        core = self._core
        return core.pacer.statistics()
