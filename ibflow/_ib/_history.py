"""Historical requests through ib_async, shaped for the session core's ``request``.

ib_async's ``reqHistoricalDataAsync`` returns ``[]`` both on a timeout and on an IB error (its
``RaiseRequestErrors`` is off by default), which is exactly the silent "no data" users are
bitten by. These functions send the raw request through ib_async's client and hand back
``(req_id, awaitable)``, so the session routes errors by request id (raising them), owns the
timeout, and sends the cancel once. Bars leave as ibflow ``Bar`` (via ``_bars``): nothing
ib_async-typed escapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

import ib_async

from .._records.contracts import Bar, Contract
from ._bars import bar_from_ib
from ._contracts import contract_to_ib

__all__ = ["HistoryPort"]


def _in_zone(bar: Bar, tz: tzinfo) -> Bar:
    return replace(bar, time=bar.time.astimezone(tz))


class HistoryPort:
    """Historical requests and the outbound throttle on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected

    def configure_throttle(self, messages: int, interval: float) -> None:
        """Set ib_async's send throttle: at most ``messages`` per ``interval`` seconds.

        Every outbound message passes ``Client.sendMsg``, so this is where the overall rate limit
        is enforced (see ``ibflow._pacer``).
        """
        client = self._ib.client
        client.MaxRequests = messages
        client.RequestsInterval = interval  # type: ignore[assignment]  # ib_async says int

    def start_historical(
        self,
        contract: Contract,
        *,
        end: str,
        duration: str,
        bar_size: str,
        what: str,
        rth: bool,
        tz: tzinfo,
    ) -> tuple[int, Awaitable[list[Bar]]]:
        """Send reqHistoricalData; the awaitable gives the bars, times in ``tz``.

        ``end`` is IB's endDateTime text (``""``: now). Dates come back in formatDate 1 (zoned
        intraday times; daily bars as dates, dated in ``tz``).
        """
        ib = self._ib
        ib_contract = contract_to_ib(contract)
        req_id = int(ib.client.getReqId())
        raw: list[Any] = []
        future = ib.wrapper.startReq(req_id, ib_contract, container=raw)
        ib.client.reqHistoricalData(
            req_id, ib_contract, end, duration, bar_size, what, rth, 1, False, []
        )

        async def bars() -> list[Bar]:
            answer = await future
            out = []
            for item in answer:
                bar = bar_from_ib(item, tz)
                if bar.time.tzinfo is not tz:
                    bar = _in_zone(bar, tz)
                out.append(bar)
            return out

        return req_id, bars()

    def cancel_historical(self) -> Callable[[int], None]:
        """The cancel for :func:`start_historical`: cancelHistoricalData, and forget the request."""

        def cancel(req_id: int) -> None:
            ib = self._ib
            ib.client.cancelHistoricalData(req_id)
            ib.wrapper._endReq(req_id)

        return cancel

    def start_head_timestamp(
        self, contract: Contract, *, what: str, rth: bool
    ) -> tuple[int, Awaitable[datetime]]:
        """Send reqHeadTimeStamp; the awaitable gives the earliest bar time (aware, UTC)."""
        ib = self._ib
        ib_contract = contract_to_ib(contract)
        req_id = int(ib.client.getReqId())
        future = ib.wrapper.startReq(req_id, ib_contract)
        ib.client.reqHeadTimeStamp(req_id, ib_contract, what, rth, 2)

        async def stamp() -> datetime:
            value = await future
            if not isinstance(value, datetime):
                value = datetime(value.year, value.month, value.day)
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC)

        return req_id, stamp()

    def cancel_head_timestamp(self) -> Callable[[int], None]:
        """The cancel for :func:`start_head_timestamp`."""

        def cancel(req_id: int) -> None:
            ib = self._ib
            ib.client.cancelHeadTimeStamp(req_id)
            ib.wrapper._endReq(req_id)

        return cancel
