"""Historical ticks: any number of them, fetched in IB's pages of 1,000 under the pacer.

IB answers ``reqHistoricalTicks`` with at most 1,000 ticks (rounded up to whole seconds) and
counts each request against the historical pacing rules. A larger ``count`` is paged here:
forwards from ``start`` (the next page starts the second after the last tick) or backwards from
``end`` (the next page ends where the earliest tick so far begins), each page waiting its turn
with the session's pacer, so no page is refused for pacing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from .._account import Contracts
from .._core import SessionCore
from .._errors import InvalidRequest, PacingViolation
from .._pacer import HistKey
from .._records.contracts import Contract
from .._records.market import Tick
from .._timeouts import SESSION_DEFAULT
from ._requests import aware, check_contract, check_flag

__all__ = ["HistoricalTicks"]

_DEFAULT = SESSION_DEFAULT
PAGE: Final = 1000  # IB's most ticks per request
_WHATS: Final = ("TRADES", "BID_ASK", "MIDPOINT")
_RETRIES: Final = 3  # pages refused for pacing anyway (another client's requests) are repeated
_SECOND = timedelta(seconds=1)


def _check_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidRequest(f"count must be a positive integer, got {count!r}")
    return count


def _check_what(what: object) -> str:
    if isinstance(what, str) and what.upper() in _WHATS:
        return what.upper()
    raise InvalidRequest(f"what must be one of {', '.join(_WHATS)}; got {what!r}")


class HistoricalTicks:
    """Historical tick requests, paged and paced."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self._core = core
        self._contracts = contracts

    async def historical_ticks(
        self,
        contract: Contract,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        count: int = PAGE,
        what: str = "TRADES",
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[Tick]:
        """See :meth:`ibflow.Session.historical_ticks`."""
        core = self._core
        check_contract(contract)
        if (start is None) == (end is None):
            raise InvalidRequest(
                "give exactly one of start= (ticks from then on) or end= (ticks before it)"
            )
        when = aware(start if start is not None else end, "start" if start else "end")
        wanted = _check_count(count)
        kind = _check_what(what)
        check_flag(rth, "rth")
        limit = core.limit(timeout)
        core.require_ready()
        resolved = contract
        if contract.con_id is None:
            [resolved] = await self._contracts.qualify(contract, timeout=limit)
        ticks: list[Tick] = []
        forwards = start is not None
        while len(ticks) < wanted:
            n = min(PAGE, wanted - len(ticks))
            page = await self._page(resolved, when, forwards, n, kind, rth, limit)
            if forwards:
                ticks.extend(page)
                if len(page) < n:
                    break  # nothing more yet: the ticks reach the present
                when = page[-1].time + _SECOND
            else:
                page = [t for t in page if not ticks or t.time < ticks[0].time]
                if not page:
                    break
                ticks[:0] = page
                when = page[0].time
        return ticks[:wanted] if forwards else ticks[-wanted:]

    async def _page(
        self,
        contract: Contract,
        when: datetime,
        forwards: bool,
        n: int,
        what: str,
        rth: bool,
        limit: float | None,
    ) -> list[Tick]:
        core = self._core
        adapter = core.adapter
        key = HistKey(
            con_id=contract.con_id or 0,
            exchange=contract.exchange,
            what=what,
            end=("from " if forwards else "to ") + when.isoformat(),
            duration=f"{n} ticks",
            bar_size="ticks",
            rth=rth,
        )
        refused = 0
        while True:
            async with core.pacer.historical(key):
                try:
                    return await core.request(
                        "reqHistoricalTicks",
                        lambda: adapter.ticks.start_historical_ticks(
                            contract,
                            start=when if forwards else None,
                            end=None if forwards else when,
                            count=n,
                            what=what,
                            rth=rth,
                        ),
                        timeout=limit,
                        cancel=adapter.ticks.forget,
                    )
                except PacingViolation:
                    refused += 1
                    if refused > _RETRIES:
                        raise
                    # The pacer holds every historical request back for a while, this one too.
                    core.pacer.core.violation(core.pacer.core.retry_after(key))
