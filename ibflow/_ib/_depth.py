"""Market depth at ib_async's level: the raw book operations of one request, and the venues.

ib_async keeps a ticker's book as a dict by position and treats IB's insert like an update,
so after an insert the rows below it are wrong. The operations themselves are exact: they
arrive in ``ticker.domTicks`` for each batch, and :meth:`DepthPort.open_depth` hands them on
as plain tuples for the feature to apply with IB's insert/update/delete semantics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import ib_async

from .._records.contracts import Contract
from .._records.depth import DepthExchange
from ._contracts import contract_to_ib
from ._errors import map_ib_errors
from ._errors import undo_on_error as _undo_on_error
from ._market import Link, _forget_ticker, _new_req_id

__all__ = ["DepthOp", "DepthPort"]

# (position, operation 0 insert / 1 update / 2 delete, side 0 ask / 1 bid, price, size, maker)
DepthOp = tuple[int, int, int, float, float, str]


def _exchange_from_ib(d: ib_async.DepthMktDataDescription) -> DepthExchange:
    agg = d.aggGroup
    return DepthExchange(
        exchange=d.exchange,
        sec_type=d.secType,
        listing_exchange=d.listingExch or None,
        service_data_type=d.serviceDataType,
        agg_group=None if agg is None or agg == ib_async.util.UNSET_INTEGER else int(agg),
    )


def _forget(ib: ib_async.IB) -> None:
    ib.wrapper._futures.pop("mktDepthExchanges", None)


class DepthPort:
    """Depth subscriptions and the depth-venue list on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected

    def open_depth(
        self,
        contract: Contract,
        rows: int,
        smart: bool,
        emit: Callable[[list[DepthOp], datetime], None],
    ) -> Link:
        """``reqMktDepth``; ``emit`` gets each batch of book operations, in arrival order."""
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqMktDepth")
        ib_contract = contract_to_ib(contract)
        ticker = ib_async.Ticker(contract=ib_contract, defaults=wrapper.defaults)

        def on_update(t: ib_async.Ticker) -> None:
            ticks = t.domTicks
            if not ticks:
                return
            ops = [(d.position, d.operation, d.side, d.price, d.size, d.marketMaker) for d in ticks]
            ticks.clear()
            emit(ops, t.time or datetime.now(UTC))

        def stop(send: bool) -> None:
            ticker.updateEvent -= on_update
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelMktDepth(req_id, smart)
            _forget_ticker(ib, req_id, ticker)

        ticker.updateEvent += on_update
        wrapper.reqId2Ticker[req_id] = ticker
        wrapper._reqId2Contract[req_id] = ib_contract
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqMktDepth"):
            ib.client.reqMktDepth(req_id, ib_contract, rows, smart, [])
        return Link(req_id, stop)

    def start_depth_exchanges(self) -> tuple[None, Awaitable[list[DepthExchange]]]:
        """``reqMktDepthExchanges`` (no request id: IB answers the one pending request)."""
        ib = self._ib
        answer = ib.wrapper.startReq("mktDepthExchanges")
        with _undo_on_error(lambda: _forget(ib)):
            ib.client.reqMktDepthExchanges()

        async def run() -> list[DepthExchange]:
            return [_exchange_from_ib(d) for d in await answer]

        return None, run()
