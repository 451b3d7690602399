"""A remote session's historical ticks, fetched by the hub under its one pacer.

``Session.historical_ticks()`` fetches pages of 1,000 ticks one after the other, each a
historical request IB paces; through a hub every page goes through the hub session's pacer,
so remote callers together never trip IB's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import ibflow
from ibflow._timeouts import SESSION_DEFAULT

__all__ = ["RemoteHistory"]

_PAGE = 1000  # ticks per request, IB's most
_SECOND = timedelta(seconds=1)


class RemoteHistory:
    """``historical_ticks()`` of ``RemoteSession``."""

    _timeout: float | None
    _call: Callable[..., Coroutine[Any, Any, Any]]  # RemoteSession's request to the hub

    async def historical_ticks(
        self,
        contract: ibflow.Contract,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        count: int = 1000,
        what: str = "TRADES",
        rth: bool = True,
        timeout: float | None = SESSION_DEFAULT,
    ) -> list[ibflow.Tick]:
        """As ``Session.historical_ticks()``, fetched by the hub under its one pacer.

        Each page of 1,000 ticks is one call to the hub (a page is about half a megabyte:
        NATS carries a megabyte per message by default). ``timeout`` bounds each page's
        answer at the hub, as on a ``Session``; the pacer's waits are not bounded: wrap the
        call in ``asyncio.timeout()``.
        """
        per_page = self._timeout if timeout is SESSION_DEFAULT else timeout
        options = {"what": what, "rth": rth, "timeout": per_page}
        if isinstance(count, bool) or not isinstance(count, int) or count <= _PAGE:
            return await self._ticks_page(contract, start, end, count, options)
        # Paged here as the hub's session pages: forwards after the last tick's second,
        # backwards before the first one's.
        ticks: list[ibflow.Tick] = []
        forwards = start is not None
        while len(ticks) < count:
            n = min(_PAGE, count - len(ticks))
            page = await self._ticks_page(contract, start, end, n, options)
            if forwards:
                ticks.extend(page)
                if len(page) < n:
                    break  # the ticks reach the present
                start = page[-1].time + _SECOND
            else:
                page = [t for t in page if not ticks or t.time < ticks[0].time]
                if not page:
                    break
                ticks[:0] = page
                end = page[0].time
        return ticks[:count] if forwards else ticks[-count:]

    async def _ticks_page(
        self,
        contract: ibflow.Contract,
        start: datetime | None,
        end: datetime | None,
        count: int,
        options: dict[str, Any],
    ) -> list[ibflow.Tick]:
        # No wait here beyond the hub's: its pacer may hold the page back for a while.
        result: list[ibflow.Tick] = await self._call(
            "historical_ticks",
            [contract],
            {"start": start, "end": end, "count": count, **options},
            None,
            timeout_arg=False,
        )
        return result
