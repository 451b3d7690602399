"""Historical ticks (``reqHistoricalTicks``) at ib_async's level, as ibflow tick records.

ib_async's ``reqHistoricalTicksAsync`` waits out a 321 (it counts it as a warning) and returns
``[]`` on errors; here the raw request goes out with its id, so the session routes IB's error
to the caller, and the ticks leave as :class:`~ibflow.TradeTick`, :class:`~ibflow.BidAskTick`
or :class:`~ibflow.MidpointTick` with aware UTC times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import ib_async

from .._records.contracts import Contract
from .._records.market import BidAskTick, MidpointTick, Tick, TradeTick
from ._contracts import contract_to_ib
from ._errors import undo_on_error

__all__ = ["TicksPort"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _price(value: float) -> float | None:
    return None if value != value or value == -1.0 else value


def _tick_from_ib(contract: Contract, t: Any) -> Tick:
    if isinstance(t, ib_async.HistoricalTickLast):
        attrib = t.tickAttribLast
        return TradeTick(
            contract=contract,
            time=_utc(t.time),
            price=_price(t.price),
            size=None if t.size != t.size else t.size,
            exchange=t.exchange or None,
            special_conditions=t.specialConditions or None,
            past_limit=bool(attrib and attrib.pastLimit),
            unreported=bool(attrib and attrib.unreported),
        )
    if isinstance(t, ib_async.HistoricalTickBidAsk):
        ba = t.tickAttribBidAsk
        return BidAskTick(
            contract=contract,
            time=_utc(t.time),
            bid=_price(t.priceBid),
            ask=_price(t.priceAsk),
            bid_size=t.sizeBid,
            ask_size=t.sizeAsk,
            bid_past_low=bool(ba and ba.bidPastLow),
            ask_past_high=bool(ba and ba.askPastHigh),
        )
    return MidpointTick(contract=contract, time=_utc(t.time), midpoint=t.price)


def _ib_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")


class TicksPort:
    """Historical tick requests on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected

    def start_historical_ticks(
        self,
        contract: Contract,
        *,
        start: datetime | None,
        end: datetime | None,
        count: int,
        what: str,
        rth: bool,
    ) -> tuple[int, Awaitable[list[Tick]]]:
        """One ``reqHistoricalTicks`` page: ``count`` ticks (IB: at most 1,000, rounded up to
        whole seconds) from ``start`` or before ``end``."""
        ib = self._ib
        req_id = int(ib.client.getReqId())
        ib_contract = contract_to_ib(contract)
        raw: list[Any] = []
        answer = ib.wrapper.startReq(req_id, ib_contract, container=raw)
        with undo_on_error(lambda: self.forget(req_id)):
            ib.client.reqHistoricalTicks(
                req_id, ib_contract, _ib_time(start), _ib_time(end), count, what, rth, True, []
            )

        async def run() -> list[Tick]:
            rows = await answer
            return [_tick_from_ib(contract, t) for t in rows]

        return req_id, run()

    def forget(self, req_id: int) -> None:
        """Drop an abandoned request (IB has no cancel for historical ticks)."""
        wrapper = self._ib.wrapper
        wrapper._futures.pop(req_id, None)
        wrapper._results.pop(req_id, None)
        wrapper._reqId2Contract.pop(req_id, None)
