"""A remote session's own state: its transitions as ``StateChange`` streams, and the
``SessionStatistics`` of its link to the hub (NATS messages instead of TWS messages)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import ibflow
from ibflow._stream import StreamWriter

__all__ = ["LinkState"]

_State = ibflow.ConnectionState


class LinkState:
    """The state of one remote session, the time it spent in each, and who listens."""

    def __init__(self) -> None:
        self._state = _State.DISCONNECTED
        self._since = time.monotonic()
        self._time_in: dict[ibflow.ConnectionState, float] = {}
        self._first_ready: float | None = None
        self._connects = 0
        self._reconnects = 0
        self._recovering = False  # RECONNECTING seen since the last READY
        self._listeners: set[StreamWriter[ibflow.StateChange]] = set()
        self.in_flight = 0

    @property
    def current(self) -> ibflow.ConnectionState:
        return self._state

    def set(self, new: ibflow.ConnectionState, reason: str) -> None:
        """Move to ``new``, telling every ``state_changes()`` stream; a no-op if unchanged."""
        old = self._state
        if new is old or old is _State.CLOSED:
            return
        now = time.monotonic()
        self._time_in[old] = self._time_in.get(old, 0.0) + now - self._since
        self._state, self._since = new, now
        if new is _State.RECONNECTING:
            self._recovering = True
        elif new is _State.READY:
            if self._first_ready is None:
                self._first_ready = now
                self._connects = 1
            elif self._recovering:
                self._reconnects += 1
            self._recovering = False
        change = ibflow.StateChange(previous=old, current=new, at=datetime.now(UTC), reason=reason)
        for writer in list(self._listeners):
            writer.send(change)
            if new is _State.CLOSED:
                writer.end()

    def changes(self) -> ibflow.Stream[ibflow.StateChange]:
        """Every change from now on; the stream ends after the change to CLOSED."""

        def close() -> None:
            self._listeners.discard(writer)

        writer: StreamWriter[ibflow.StateChange] = StreamWriter(
            name="state_changes", buffer=64, overflow=ibflow.Overflow.DROP_OLDEST, on_close=close
        )
        if self._state is _State.CLOSED:
            writer.end()
        else:
            self._listeners.add(writer)
        return writer.stream

    def statistics(
        self, nats_stats: dict[str, Any], subscriptions: int
    ) -> ibflow.SessionStatistics:
        """A snapshot: this session's state history and its NATS traffic; no I/O."""
        now = time.monotonic()
        time_in = dict(self._time_in)
        time_in[self._state] = time_in.get(self._state, 0.0) + now - self._since
        uptime = 0.0 if self._first_ready is None else now - self._first_ready
        span = max(uptime, 1.0)
        return ibflow.SessionStatistics(
            state=self._state,
            uptime=uptime,
            connects=self._connects,
            reconnects=self._reconnects,
            reconnect_attempts=int(nats_stats.get("reconnects", 0)),
            time_in_state=time_in,
            messages_in=int(nats_stats.get("in_msgs", 0)),
            messages_out=int(nats_stats.get("out_msgs", 0)),
            bytes_in=int(nats_stats.get("in_bytes", 0)),
            bytes_out=int(nats_stats.get("out_bytes", 0)),
            messages_in_per_second=nats_stats.get("in_msgs", 0) / span,
            messages_out_per_second=nats_stats.get("out_msgs", 0) / span,
            last_heartbeat_rtt=None,
            heartbeats=0,
            heartbeat_failures=0,
            active_subscriptions=subscriptions,
            throttled_requests=0,
            throttle_events=0,
            notices=0,
            in_flight_requests=self.in_flight,
            rejected_executions=0,
            rejected_values=0,
        )
