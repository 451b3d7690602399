"""A remote session's view of the hub's one pacer.

Every remote ``history()``, ``download()`` and tick-by-tick request goes through the hub
session's pacer, so its statistics describe all the hub's remotes together. The hub sends them
with its greeting and in every heartbeat; ``pacing_statistics()`` returns the newest, without
a round trip. The rules are the hub operator's to set: a remote may not change them for
everyone else.
"""

from __future__ import annotations

from typing import Any

import ibflow

from ._protocol import decode

__all__ = ["RemotePacing"]


class RemotePacing:
    """``pacing_statistics()`` and ``set_pacing()`` of ``RemoteSession``."""

    _hub: str
    _pacing: ibflow.PacingStatistics | None = None

    def _take_pacing(self, data: dict[str, Any]) -> None:
        """Keep the pacer statistics of a greeting or a heartbeat, if it carries them."""
        encoded = data.get("pacing")
        if encoded is not None:
            pacing = decode(encoded)
            if isinstance(pacing, ibflow.PacingStatistics):
                self._pacing = pacing

    def pacing_statistics(self) -> ibflow.PacingStatistics:
        """What the hub's one pacer has let through, held back and seen refused, for all its
        remote sessions, as of the hub's last heartbeat (a quarter of a second at most).

        Raises:
            SessionClosedError: the session has not greeted a hub yet.
        """
        if self._pacing is None:
            raise ibflow.SessionClosedError(
                f"no pacing statistics from hub {self._hub!r} yet: connect the remote session "
                "first (async with RemoteSession(...))"
            )
        return self._pacing

    def set_pacing(self, rules: ibflow.PacingRules) -> None:
        """Refused: the pacing rules are the hub's, shared by all its remote sessions.

        Raises:
            SafetyError: always; the hub's operator sets them on the hub's ``Session``.
        """
        raise ibflow.SafetyError(
            f"pacing is set at hub {self._hub!r}, whose one pacer every remote session shares: "
            "a remote may not change it for the others. Set it on the hub's Session "
            "(session.set_pacing(rules) before serving it with Hub(session, ...))"
        )
