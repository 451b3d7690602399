"""State the feature modules keep for each Session, without the Session knowing of it.

Accounts, orders, streams, history and pacing each keep books per session: locks, caches, the
stream hubs, the order book, the pacer. ``Session`` only inherits their methods; each module
asks here for its own entry, made on first use. Entries live in the session's ``__dict__`` so
they go with it, even when they point back at it (the order book does, which a table keyed
weakly by the session would keep alive forever).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["peek", "per_session"]

T = TypeVar("T")


def _key(name: str) -> str:
    return f"_ibflow_{name}"


def per_session(owner: object, name: str, make: Callable[[], T]) -> T:
    """``owner``'s entry ``name``, made with ``make()`` the first time it is asked for."""
    table = vars(owner)
    found = table.get(_key(name))
    if found is None:
        found = table[_key(name)] = make()
    return cast(T, found)


def peek(owner: object, name: str) -> Any:
    """``owner``'s entry ``name`` if it was made, else ``None`` (nothing is made)."""
    return vars(owner).get(_key(name))
