"""What the broker tells the server after a request or a quote move, in TWS's wire order."""

from __future__ import annotations

from dataclasses import dataclass

from ._model import Instrument, SimExecution, SimOrder, SimPosition

__all__ = [
    "AccountChanged",
    "Commission",
    "Event",
    "Executed",
    "OrderChanged",
    "OrderError",
    "PositionChanged",
]


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """The order's state changed; the server sends openOrder then orderStatus.

    ``order`` is a snapshot taken when the event was made, never the live record.
    """

    order: SimOrder


@dataclass(frozen=True, slots=True)
class OrderError:
    """An errMsg for ``order_id``, to the connection of ``client_id``."""

    order_id: int
    client_id: int
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class Executed:
    """A fill; the server sends execDetails with reqId -1."""

    execution: SimExecution


@dataclass(frozen=True, slots=True)
class Commission:
    """The commission of a fill; the server sends commissionReport (after its execDetails)."""

    execution: SimExecution


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position changed; ``position`` is its snapshot after the change."""

    account: str
    instrument: Instrument
    position: SimPosition | None = None


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Cash, margin or PnL of ``account`` changed: push account values / summary / PnL."""

    account: str


Event = OrderChanged | OrderError | Executed | Commission | PositionChanged | AccountChanged
