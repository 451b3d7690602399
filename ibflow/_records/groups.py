"""What the trades of an OCA group or a bracket share wherever they are followed (a session's
order book, or a hub): a fixed tuple of trades, read as a sequence and done when all are."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["TradeTuple"]


class _Finishing(Protocol):
    @property
    def is_done(self) -> bool: ...


T = TypeVar("T", bound=_Finishing)


class TradeTuple(Generic[T]):
    """The trades placed together, in the order they were placed."""

    def __init__(self, trades: Sequence[T]) -> None:
        self._trades = tuple(trades)

    @property
    def trades(self) -> tuple[T, ...]:
        return self._trades

    def __iter__(self) -> Iterator[T]:
        return iter(self._trades)

    def __len__(self) -> int:
        return len(self._trades)

    def __getitem__(self, index: int) -> T:
        return self._trades[index]

    @property
    def is_done(self) -> bool:
        return all(t.is_done for t in self._trades)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self._trades)
        return f"<{type(self).__name__} [{inner}]>"
