"""Recording a subscription on a connection, for the handlers that live outside the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._model import Instrument

if TYPE_CHECKING:
    from ._server import _Connection, _Sub


def subscribe(
    c: _Connection,
    kind: str,
    req_id: int,
    instrument: Instrument | None = None,
    params: dict[str, Any] | None = None,
) -> _Sub:
    """Record (or replace) the subscription ``(kind, req_id)``, as the core handlers do."""
    from ._server import _Sub  # the server imports the handler modules: import it lazily

    sub = _Sub(kind, req_id, instrument, params or {})
    c.subs[(kind, req_id)] = sub
    return sub
