"""Market depth (level 2): order-book snapshots built from IB's book operations.

IB sends a book as row operations per side: insert a row at a position (the rows below move
down), update the row at a position, delete it (the rows below move up). The hub here applies
them exactly so, keeps at most ``rows`` rows per side, and hands every consumer an immutable
:class:`~ibflow.OrderBook` per batch. TWS sends one side's operations, then the other's, and a
TCP read may end between them: a batch that leaves the book crossed is the first half of a move,
so it is held back until the rest arrives (a book still crossed after a few batches is shown
as it is: that is the market). Like quotes, one IB subscription serves every consumer of
the same book; after an outage the book starts empty again behind a Gap.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from datetime import datetime

from .._account import Contracts
from .._core import SessionCore
from .._errors import InvalidRequest
from .._log import get_logger
from .._records.contracts import Contract
from .._records.depth import DepthExchange, Level, OrderBook
from .._records.market import Gap
from .._stream import Overflow, Stream
from .._timeouts import SESSION_DEFAULT
from ._api import _check_contract, _subscribe, _where
from ._hubs import Link, MarketState, _Hub

__all__ = ["MarketDepth"]

log = get_logger("streams")

_DEFAULT = SESSION_DEFAULT
_MAX_ROWS = 50
_INSERT, _UPDATE, _DELETE = 0, 1, 2
_BID = 1
_HOLD_CROSSED = 3  # batches a crossed book may wait for the rest of its move


def _apply(side: list[Level], position: int, operation: int, level: Level, rows: int) -> bool:
    """One IB book operation on one side; False if it does not fit the book as we hold it."""
    if operation == _INSERT and 0 <= position <= len(side):
        side.insert(position, level)
        del side[rows:]
    elif operation == _UPDATE and 0 <= position < len(side):
        side[position] = level
    elif operation == _UPDATE and position == len(side) < rows:
        side.append(level)  # an update of the next free row adds it, as TWS's own book does
    elif operation == _DELETE and 0 <= position < len(side):
        del side[position]
    else:
        return False
    return True


class _DepthHub(_Hub[OrderBook]):
    kind = "depth"
    keep_last = True

    def __init__(
        self, state: MarketState, key: Hashable, contract: Contract, rows: int, smart: bool
    ) -> None:
        super().__init__(state, key)
        self.contract = contract
        self.rows = rows
        self.smart = smart
        self.bids: list[Level] = []
        self.asks: list[Level] = []
        self.held = 0  # consecutive batches that left the book crossed

    def _before_open(self) -> None:
        self.bids.clear()  # TWS sends the whole book again on a new subscription
        self.asks.clear()
        self.held = 0

    def _open(self) -> Link:
        return self.core.adapter.depth.open_depth(self.contract, self.rows, self.smart, self.on_ops)

    def on_ops(self, ops: list[tuple[int, int, int, float, float, str]], time: datetime) -> None:
        rows = self.rows
        for position, operation, side, price, size, maker in ops:
            book = self.bids if side == _BID else self.asks
            if not _apply(book, position, operation, Level(price, size, maker or None), rows):
                log.debug(
                    "depth of %s: ignored operation %d at row %d of %d",
                    self.contract.display_name,
                    operation,
                    position,
                    len(book),
                )
        bids, asks = self.bids, self.asks
        if bids and asks and bids[0].price >= asks[0].price and self.held < _HOLD_CROSSED:
            self.held += 1
            return
        self.held = 0
        self.deliver(OrderBook(bids=tuple(bids), asks=tuple(asks), time=time))


def _at(resolved: Contract | None, exchange: str) -> Contract:
    assert resolved is not None  # depth always resolves its contract
    return replace(resolved, exchange=exchange)


def _check_rows(rows: object) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= _MAX_ROWS:
        raise InvalidRequest(f"rows must be an integer from 1 to {_MAX_ROWS}, got {rows!r}")
    return rows


class MarketDepth:
    """Order-book streams and the list of venues that offer depth."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self._core = core
        self._state = MarketState(core, contracts)

    def depth(
        self,
        contract: Contract,
        rows: int = 10,
        smart: bool = False,
        *,
        buffer: int = 16,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[OrderBook | Gap]:
        """See :meth:`ibflow.Session.depth`."""
        c = _check_contract(contract)
        n = _check_rows(rows)
        if not isinstance(smart, bool):
            raise InvalidRequest(f"smart must be True or False, got {smart!r}")
        state = self._state
        return _subscribe(
            state,
            name=f"depth {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            # Depth is asked of a venue: keep the exchange given, whatever qualify resolved.
            key=lambda r, _a: ("depth", _where(r)[0], c.exchange, n, smart),
            make_hub=lambda r, _a, k: _DepthHub(state, k, _at(r, c.exchange), n, smart),
        )

    async def depth_exchanges(self, *, timeout: float | None = _DEFAULT) -> list[DepthExchange]:
        """See :meth:`ibflow.Session.depth_exchanges`."""
        core = self._core
        return await core.request(
            "reqMktDepthExchanges",
            lambda: core.adapter.depth.start_depth_exchanges(),
            timeout=core.limit(timeout),
        )
