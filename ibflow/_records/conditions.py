"""Order conditions: an order TWS holds until they are true, then submits (or cancels).

Each condition joins the next one with its ``conjunction`` (``"and"`` or ``"or"``; the last
one's is unused), as in TWS's order-conditions dialog. Conditions that watch a market need the
contract's ``con_id`` (qualify the contract first). Pass them as ``conditions=[...]`` to any
order builder. Each class's ``kind`` names its type (``"price"``, ``"time"``…).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

from .._errors import InvalidRequest
from .contracts import Contract
from .values import MAX_PRICE, as_number, as_positive

__all__ = [
    "Condition",
    "ExecutionCondition",
    "MarginCondition",
    "PercentChangeCondition",
    "PriceCondition",
    "TimeCondition",
    "VolumeCondition",
]

Conjunction = Literal["and", "or"]

TRIGGER_METHODS = {
    0: "default",
    1: "double bid/ask",
    2: "last",
    3: "double last",
    4: "bid/ask",
    7: "last or bid/ask",
    8: "midpoint",
}
"""IB's trigger methods for a price condition (how the price is read)."""


def _common(cond: object, *, operator: bool = True) -> None:
    conjunction = getattr(cond, "conjunction", None)
    if conjunction not in ("and", "or"):
        raise InvalidRequest(
            f"{type(cond).__name__}.conjunction joins it to the next condition: 'and' or 'or', "
            f"got {conjunction!r}"
        )
    if operator and not isinstance(getattr(cond, "is_more", None), bool):
        raise InvalidRequest(
            f"{type(cond).__name__}.is_more must be True (at or above) or False (at or below), "
            f"got {getattr(cond, 'is_more', None)!r}"
        )


def _watched(cond: object) -> Contract:
    contract = getattr(cond, "contract", None)
    name = type(cond).__name__
    if not isinstance(contract, Contract):
        raise InvalidRequest(f"{name}.contract must be an ibflow Contract, got {contract!r}")
    if contract.con_id is None:
        raise InvalidRequest(
            f"{name} watches a market by contract id, and {contract.display_name} has none: "
            "qualify it first ([contract] = await session.qualify(contract))"
        )
    return contract


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceCondition:
    """True when ``contract``'s price is at or above (``is_more``) or at or below ``price``.

    ``trigger_method`` is IB's code for which price counts (0 default, 1 double bid/ask, 2 last,
    3 double last, 4 bid/ask, 7 last or bid/ask, 8 midpoint).
    """

    kind: ClassVar[str] = "price"

    contract: Contract
    price: float
    is_more: bool = True
    trigger_method: int = 0
    conjunction: Conjunction = "and"

    def __post_init__(self) -> None:
        _watched(self)
        _common(self)
        object.__setattr__(
            self, "price", as_positive(self.price, "PriceCondition.price", MAX_PRICE)
        )
        if isinstance(self.trigger_method, bool) or self.trigger_method not in TRIGGER_METHODS:
            known = ", ".join(f"{k} ({v})" for k, v in TRIGGER_METHODS.items())
            raise InvalidRequest(
                f"PriceCondition.trigger_method must be one of {known}, got {self.trigger_method!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeCondition:
    """True once the time is past ``time`` (``is_more``), or until it is (``is_more=False``)."""

    kind: ClassVar[str] = "time"

    time: datetime
    is_more: bool = True
    conjunction: Conjunction = "and"

    def __post_init__(self) -> None:
        _common(self)
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise InvalidRequest(
                f"TimeCondition.time must be an aware datetime (with a time zone), got "
                f"{self.time!r}"
            )

    @property
    def wire_time(self) -> str:
        """The time as TWS reads it in a condition: ``yyyymmdd hh:mm:ss UTC``."""
        return self.time.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCondition:
    """True when the account's margin cushion is at or above / at or below ``percent``."""

    kind: ClassVar[str] = "margin"

    percent: int
    is_more: bool = True
    conjunction: Conjunction = "and"

    def __post_init__(self) -> None:
        _common(self)
        value = self.percent
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 100:
            raise InvalidRequest(
                f"MarginCondition.percent is a whole percentage between 1 and 99, got {value!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCondition:
    """True once this account has a fill in ``contract`` (matched by symbol, type, exchange)."""

    kind: ClassVar[str] = "execution"

    contract: Contract
    conjunction: Conjunction = "and"

    def __post_init__(self) -> None:
        if not isinstance(self.contract, Contract):
            raise InvalidRequest(
                f"ExecutionCondition.contract must be an ibflow Contract, got {self.contract!r}"
            )
        _common(self, operator=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeCondition:
    """True when ``contract``'s traded volume today is at or above / at or below ``volume``."""

    kind: ClassVar[str] = "volume"

    contract: Contract
    volume: int
    is_more: bool = True
    conjunction: Conjunction = "and"

    def __post_init__(self) -> None:
        _watched(self)
        _common(self)
        value = self.volume
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31 - 1:
            raise InvalidRequest(
                f"VolumeCondition.volume must be a whole number of shares above 0, got {value!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class PercentChangeCondition:
    """True when ``contract`` moved at least ``change_percent`` percent since the last close.

    ``is_more=True`` holds at or above the change (``2.5`` for +2.5 %); ``False`` at or below
    (``-2.5`` for a fall of 2.5 % or more).
    """

    kind: ClassVar[str] = "percent_change"

    contract: Contract
    change_percent: float
    is_more: bool = True
    conjunction: Conjunction = "and"

    def __post_init__(self) -> None:
        _watched(self)
        _common(self)
        value = as_number(self.change_percent, "PercentChangeCondition.change_percent")
        if value == 0 or abs(value) > 1000:
            raise InvalidRequest(
                "PercentChangeCondition.change_percent is a percentage between -1000 and 1000, "
                f"not 0 (2.5 means +2.5 %), got {self.change_percent!r}"
            )
        object.__setattr__(self, "change_percent", value)


Condition = (
    PriceCondition
    | TimeCondition
    | MarginCondition
    | ExecutionCondition
    | VolumeCondition
    | PercentChangeCondition
)
"""Any order condition."""

CONDITION_TYPES = (
    PriceCondition,
    TimeCondition,
    MarginCondition,
    ExecutionCondition,
    VolumeCondition,
    PercentChangeCondition,
)
