"""One meaning of ``timeout=`` everywhere in ibflow.

Every public coroutine takes a keyword-only ``timeout=``: a positive number of seconds, ``None``
to wait forever, or (the default) the session's own timeout. ``0`` is refused rather than read
as "forever" — the ib_async convention that makes a typo hang a program. Keeping the marker and
the check here means every feature says the same thing to a user who gets it wrong.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from ._errors import InvalidRequest

__all__ = [
    "SESSION_DEFAULT",
    "SessionDefault",
    "check_timeout",
    "is_positive_number",
    "resolve_timeout",
]


class SessionDefault:
    """Marker for "use the session's timeout" in per-call ``timeout=`` arguments."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<session default>"


# Typed Any so it can stand as the default of a ``timeout: float | None`` parameter.
SESSION_DEFAULT: Any = SessionDefault()


def is_positive_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float above 0 (``True`` is not a number here)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """A validated number of seconds, or None; ``InvalidRequest`` names ``name`` otherwise."""
    if value is None:
        return None
    if not is_positive_number(value):
        raise InvalidRequest(
            f"{name} must be a positive number of seconds, or None to wait forever; got "
            f"{value!r} (0 does not mean forever in ibflow)"
        )
    return float(value)


def resolve_timeout(value: object, default: float | None, name: str = "timeout") -> float | None:
    """``value`` checked, or ``default`` when it is the session-default marker."""
    if isinstance(value, SessionDefault):
        return default
    return check_timeout(value, name)
