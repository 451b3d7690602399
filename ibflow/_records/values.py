"""The value checks every order record shares: numbers, enums and wire text, each refused with
an :class:`InvalidRequest` that names the field and says what it takes."""

from __future__ import annotations

import math
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from .._errors import InvalidRequest
from .contracts import check_text

__all__ = [
    "EPS",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "as_ascii",
    "as_enum",
    "as_number",
    "as_positive",
    "fmt",
]

E = TypeVar("E", bound=StrEnum)

EPS = 1e-9  # quantities and prices closer than this are equal

MAX_QUANTITY = 1e9
"""The largest order quantity ibflow sends (no instrument trades more in one order)."""
MAX_PRICE = 1e9
"""The largest limit or stop price ibflow sends; TWS reads float max as "no price"."""


def as_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidRequest(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (OverflowError, ValueError):  # a huge int, a signalling Decimal NaN
        out = math.nan
    if not math.isfinite(out):
        raise InvalidRequest(f"{what} must be a finite number, got {value!r}")
    return out


def as_positive(value: object, what: str, limit: float) -> float:
    out = as_number(value, what)
    if out <= 0:
        raise InvalidRequest(f"{what} must be greater than 0, got {value!r}")
    if out > limit:
        raise InvalidRequest(f"{what} must be at most {limit:,.0f}, got {value!r}")
    return out


def as_enum(cls: type[E], value: object, what: str) -> E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        text = value.strip().upper()
        for member in cls:
            if text in (member.value.upper(), member.name):
                return member
    allowed = ", ".join(repr(m.value) for m in cls)
    raise InvalidRequest(f"{what} must be one of {allowed}, got {value!r}")


def as_ascii(value: object, what: str, limit: int = 128) -> str | None:
    """Stripped printable ASCII, or ``None`` for ``None`` and blank text."""
    if value is None:
        return None
    # The one wire-text check first: strip() would silently drop \x1c-\x1f.
    text = check_text(value, what, limit=limit).strip()
    if not text:
        return None
    if len(text) > limit or not all(32 <= ord(ch) < 127 for ch in text):
        raise InvalidRequest(
            f"{what} must be printable ASCII of at most {limit} characters (TWS refuses "
            f"anything else), got {value!r}"
        )
    return text


def fmt(value: float) -> str:
    """A quantity or price for a message: no float noise, no needless zeros."""
    return f"{value:.10g}"
