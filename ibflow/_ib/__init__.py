"""The only package that imports ib_async.

Everything ibflow needs from ib_async goes through :class:`IBAdapter` (one reusable
``ib_async.IB`` per session) and :func:`map_ib_errors` (ib_async's exceptions into ibflow's).
Keeping the dependency behind this one door means ib_async's types, events and exceptions never
reach users, and a future ib_async (v3 changes numeric types and records) touches only here.
"""

from ._adapter import IBAdapter, LinkInfo, QuoteProbe, Traffic
from ._errors import ESCAPING_BUILTINS, map_ib_errors, translate

__all__ = [
    "ESCAPING_BUILTINS",
    "IBAdapter",
    "LinkInfo",
    "QuoteProbe",
    "Traffic",
    "map_ib_errors",
    "translate",
]
