"""IB's order algos: :class:`Algo` (any strategy by name, with its parameters) and the
:func:`Adaptive` builder.

An algo rides on a market or limit order (``algo=`` of :func:`MarketOrder` and
:func:`LimitOrder`); TWS works the order by the strategy instead of sending it to the book at
once. Strategy names and parameter tags are IB's own spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal

from .._errors import InvalidRequest
from .values import as_ascii, fmt

__all__ = ["Adaptive", "Algo"]

STRATEGIES = (
    "Adaptive",
    "ArrivalPx",
    "BalanceImpactRisk",
    "ClosePx",
    "DarkIce",
    "MinImpact",
    "PctVol",
    "Twap",
    "Vwap",
)
"""IB's algo strategy names (``algoStrategy``) that take a plain market or limit order."""

ADAPTIVE_PRIORITIES = ("Patient", "Normal", "Urgent")

ParamValue = str | int | float | Decimal | bool | time


def _param_text(tag: str, value: object) -> str:
    """One parameter as TWS reads it: ``1``/``0`` for flags, ``hh:mm:ss`` (zone kept) for times."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidRequest(f"algo parameter {tag} must be finite, got {value!r}")
        return fmt(number)
    if isinstance(value, time):
        if value.tzinfo is None:
            raise InvalidRequest(
                f"algo parameter {tag} takes a time with a zone (TWS needs one, e.g. "
                f"'09:30:00 US/Eastern' as text), got {value!r}"
            )
        return value.strftime("%H:%M:%S") + " " + str(value.tzinfo)
    text = as_ascii(value, f"algo parameter {tag}", 64)
    if text is None:
        raise InvalidRequest(f"algo parameter {tag} is empty; give it a value or leave it out")
    return text


@dataclass(frozen=True, slots=True, init=False)
class Algo:
    """An IB algo: ``Algo("Vwap", {"maxPctVol": 0.1, "noTakeLiq": True})``.

    ``params`` maps IB's parameter tags to values: numbers, ``True``/``False`` (sent as
    ``1``/``0``), text such as ``"09:30:00 US/Eastern"``, or a ``datetime.time`` with a zone.
    They are kept as ``(tag, text)`` pairs in the order given.

    Raises:
        InvalidRequest: an unknown strategy, a malformed tag, a repeated tag or a bad value.
    """

    strategy: str
    params: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        strategy: str,
        params: Mapping[str, ParamValue] | tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        name = as_ascii(strategy, "algo strategy", 32)
        known = {s.upper(): s for s in STRATEGIES}
        if name is None or name.upper() not in known:
            raise InvalidRequest(
                f"unknown algo strategy {strategy!r}; IB's strategies are {', '.join(STRATEGIES)}"
            )
        items = list(params.items()) if isinstance(params, Mapping) else list(params or ())
        pairs: list[tuple[str, str]] = []
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise InvalidRequest(
                    f"algo params must be a mapping of tag to value, got the item {item!r}"
                )
            tag, value = item
            if not isinstance(tag, str) or not tag.isascii() or not tag.isidentifier():
                raise InvalidRequest(
                    f"algo parameter tags are IB's names (letters and digits, e.g. "
                    f"'maxPctVol'), got {tag!r}"
                )
            if any(tag == seen for seen, _ in pairs):
                raise InvalidRequest(f"algo parameter {tag} is given twice")
            pairs.append((tag, _param_text(tag, value)))
        object.__setattr__(self, "strategy", known[name.upper()])
        object.__setattr__(self, "params", tuple(pairs))

    def param(self, tag: str) -> str | None:
        """The text of parameter ``tag``, or ``None`` when it is not set."""
        return next((value for name, value in self.params if name == tag), None)


def Adaptive(priority: str = "Normal") -> Algo:
    """IB's Adaptive algo: a marketable order worked between the bid and ask.

    ``priority`` trades speed for price: ``"Patient"``, ``"Normal"`` or ``"Urgent"``.

    Raises:
        InvalidRequest: an unknown priority.
    """
    chosen = next(
        (p for p in ADAPTIVE_PRIORITIES if isinstance(priority, str) and p == priority.title()),
        None,
    )
    if chosen is None:
        raise InvalidRequest(
            f"Adaptive priority must be one of {', '.join(ADAPTIVE_PRIORITIES)}, got {priority!r}"
        )
    return Algo("Adaptive", {"adaptivePriority": chosen})
