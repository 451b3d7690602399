"""Serve one TWS session to many processes and machines over NATS.

``ibflow hub`` (or :class:`Hub`) owns the TWS connection; :class:`RemoteSession` gives any
process the session's API through it. Needs the ``hub`` extra (``pip install "ibflow[hub]"``).
See ``docs/hub.md`` for what is served today and what is not yet.
"""

try:
    import nats as _nats  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the hub extra
    raise ImportError('ibflow.hub needs the hub extra: pip install "ibflow[hub]"') from exc

from ._remote import RemoteSession, RemoteTrade
from ._server import Hub
from ._stream import RemoteStream

__all__ = ["Hub", "RemoteSession", "RemoteStream", "RemoteTrade"]
