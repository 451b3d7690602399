"""Serve one TWS session to many processes and machines over NATS.

``ibflow hub`` (or :class:`Hub`) owns the TWS connection; :class:`RemoteSession` gives any
process the session's API through it. Needs the ``hub`` extra (``pip install "ibflow[hub]"``).
See ``docs/hub.md`` for what is served today and what is not yet.
"""

from typing import Any

try:
    from ._remote import RemoteBracketTrade, RemoteSession, RemoteTrade, RemoteTradeGroup
    from ._server import Hub
except ModuleNotFoundError as _missing:  # pragma: no cover - only without the hub extra
    if not (_missing.name or "").startswith("nats"):
        raise
    _reason = _missing

    def __getattr__(name: str) -> Any:
        raise ImportError('ibflow.hub needs the hub extra: pip install "ibflow[hub]"') from _reason


__all__ = ["Hub", "RemoteBracketTrade", "RemoteSession", "RemoteTrade", "RemoteTradeGroup"]
