"""History records: the progress of a long download."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DownloadProgress"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadProgress:
    """Where a ``download()`` stands, as given to its ``on_progress`` callback."""

    done: int
    """Requests finished (answered, or found empty)."""
    total: int
    """Requests the download needs (0 when the cache held everything)."""
    bars: int
    """Bars received from IB so far."""
    retries: int
    """Requests repeated after a pacing error, a timeout or a reconnect."""
    elapsed: float
    """Seconds since the download started."""
