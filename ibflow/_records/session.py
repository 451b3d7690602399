"""Session records: the connection state, its changes, TWS's notices, the reconnect policy."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .._error_codes import Severity
from .._errors import IBFlowError, InvalidRequest
from .._timeouts import is_positive_number


class ConnectionState(StrEnum):
    """Where a session is in its life.

    ``DISCONNECTED`` (not connected yet, or the first connect failed) → ``CONNECTING``
    (TCP, handshake, API start) → ``SYNCING`` (start-up sync) → ``READY``. A lost link goes to
    ``RECONNECTING`` (and through ``SYNCING`` back to ``READY``), or to ``CLOSED`` when
    reconnecting is off or gives up. IB error 1100 also shows as ``RECONNECTING`` until TWS
    reports 1101/1102. ``aclose()`` ends in ``CLOSED``, for good.
    """

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    SYNCING = "syncing"
    READY = "ready"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition of :class:`ConnectionState`, as yielded by ``state_changes()``."""

    previous: ConnectionState
    current: ConnectionState
    at: datetime
    reason: str
    error: IBFlowError | None = None
    """Why the session closed after a lost link (a ``ConnectionLost``), else ``None``."""


@dataclass(frozen=True, slots=True)
class Notice:
    """An informational or unsolicited message from TWS (2104, 1101, 10167…); never raised."""

    code: int
    message: str
    severity: Severity
    req_id: int
    summary: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter for reconnecting after a lost link.

    Attempt ``n`` (from 0) waits a random time in ``[0, min(maximum, initial * 2**n)]``, so a
    fleet of clients does not hammer a gateway that just came back.

    Args:
        initial: the ceiling of the first wait, in seconds.
        maximum: the largest ceiling, in seconds.
        max_attempts: give up after this many attempts (``None``: never give up).
    """

    initial: float = 0.5
    maximum: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("initial", "maximum"):
            value = getattr(self, name)
            if not is_positive_number(value):
                raise InvalidRequest(
                    f"ReconnectPolicy({name}=...) must be a positive number of seconds, "
                    f"got {value!r}"
                )
        if self.maximum < self.initial:
            raise InvalidRequest(
                f"ReconnectPolicy(maximum={self.maximum!r}) must not be below "
                f"initial={self.initial!r}"
            )
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise InvalidRequest(
                "ReconnectPolicy(max_attempts=...) must be a positive integer or None "
                f"(never give up), got {self.max_attempts!r}"
            )

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt ``attempt`` (0-based)."""
        if attempt < 0:
            raise InvalidRequest(f"attempt must be >= 0, got {attempt}")
        return min(self.maximum, self.initial * 2.0 ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A jittered wait before attempt ``attempt``: uniform in ``[0, ceiling(attempt)]``."""
        return (rng or random.Random()).uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStatistics:
    """A snapshot of what a session has done; see ``Session.statistics()``."""

    state: ConnectionState
    uptime: float
    """Seconds since the first successful connect (0 before it)."""
    connects: int
    """Successful initial connects (0 or 1)."""
    reconnects: int
    """Successful reconnects after a lost link."""
    reconnect_attempts: int
    time_in_state: Mapping[ConnectionState, float]
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    messages_in_per_second: float
    """Average since the first connect (over at least one second)."""
    messages_out_per_second: float
    last_heartbeat_rtt: float | None
    """Round trip of the last answered heartbeat, in seconds."""
    heartbeats: int
    heartbeat_failures: int
    active_subscriptions: int
    throttled_requests: int
    """Requests held back right now by the client-side 45 messages/s throttle."""
    throttle_events: int
    """How many times that throttle engaged."""
    notices: int
    in_flight_requests: int
    rejected_executions: int
    """Executions from the server with impossible numbers (NaN, infinite or non-positive size,
    non-finite or negative price): logged and dropped, never applied to an order."""
    rejected_values: int
    """Quote values from TWS no market can have (infinite, NaN, a negative size or stock
    price), delivered as ``None`` instead."""


DEFAULT_RECONNECT = ReconnectPolicy()
"""The reconnect policy a session uses unless told otherwise."""
