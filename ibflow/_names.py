"""Public names show as ``ibflow.Name``, not as the private module that defines them."""

from __future__ import annotations

import typing

__all__ = ["claim"]


def claim(objects: typing.Iterable[object]) -> None:
    """Set ``__module__ = "ibflow"`` on each class or function defined inside ibflow.

    Its own annotations are resolved first, in the module that wrote them, so
    ``typing.get_type_hints`` keeps working on it once its ``__module__`` says ``ibflow``.
    """
    for obj in objects:
        if not callable(obj) or not getattr(obj, "__module__", "").startswith("ibflow."):
            continue
        own = vars(obj).get("__annotations__") if isinstance(obj, type) else obj.__annotations__
        if own:
            hints = typing.get_type_hints(obj, include_extras=True)
            obj.__annotations__ = {key: hints[key] for key in own}
        obj.__module__ = "ibflow"
