"""``ibflow.connect(...)``: a Session to ``await`` or enter, with Session's own signature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from ._session import Session

__all__ = ["connect"]

P = ParamSpec("P")
R = TypeVar("R")


def _settings_of(_: Callable[P, Any]) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Give the decorated function the signature of ``_`` (for type checkers and IDEs)."""

    def apply(func: Callable[..., R]) -> Callable[P, R]:
        return func

    return apply


@_settings_of(Session)
def connect(*args: Any, **kwargs: Any) -> Session:
    """A :class:`Session` to use with ``await`` or ``async with``.

    ``session = await ibflow.connect(...)`` connects and returns the READY session (close it
    with ``await session.aclose()``); ``async with ibflow.connect(...) as session:`` closes it
    on exit. Arguments are those of :class:`Session`.
    """
    return Session(*args, **kwargs)
