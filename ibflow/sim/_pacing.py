"""The request limits TWS enforces, so clients meet them in tests instead of in production.

Three independent meters, each pure (an injectable monotonic clock, no sleeping) and scaled by
``speed``: with ``speed=100`` every window is a hundred times shorter (15 s becomes 0.15 s), so a
test can cross a ten-minute limit in six seconds. The server owns their scope (one
:class:`MessageRate` per connection; the historical and tick-by-tick meters per TWS session,
shared by all clients, as IB's farms see a single user).

Limits (IB's "Historical Data Limitations", "Tick-by-Tick Data" and order-limitation pages):

* 50 messages per second per client; beyond it error 100, and repeated violations disconnect.
* Historical data: no identical request within 15 s; six or more requests for the same contract,
  exchange and whatToShow within 2 s is a violation (IB applies these two to bars of 30 s and
  smaller); at most 60 requests in any 10 minutes; BID_ASK counts twice; at most 50 requests
  open at once.
* Tick-by-tick: at most one request per instrument per 15 s (and, in the market handlers, as
  many at once as depth subscriptions, three, counted apart from the market data lines).

Codes and texts: 162 "Historical Market Data Service error message:Historical data request pacing
violation" is IB's documented text; 322 "...Only 50 simultaneous API historical data requests
allowed." is what TWS users report. For the tick-by-tick rule IB documents no message, so the sim
answers with 10190, IB's code for exceeding tick-by-tick limits, and its text.

Refused requests do not count against any window (TWS did not run them).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from ._history import PACING_VIOLATION, TOO_MANY_OPEN, HistKey
from ._model import SimError

MESSAGE_RATE_ERROR = (100, "Max rate of messages per second has been exceeded.")
TICK_BY_TICK_ERROR = (10190, "Max number of tick-by-tick requests has been reached.")
# The largest bar size IB's identical-request and burst rules apply to.
SMALL_BAR_SECONDS = 30

RateVerdict = Literal["ok", "violation", "dropped", "disconnect"]

__all__ = ["HistKey", "HistoricalPacing", "MessageRate", "TickByTickPacing"]


class MessageRate:
    """50 messages per rolling second for one connection.

    ``on_message`` returns "ok"; "violation" for the first message over the limit in an episode
    (the server drops it and sends error 100); "dropped" for the rest of that episode (dropped
    without another error, so a flood is not answered by a flood). Violations are counted once
    per second-long episode; the third
    episode within ``strike_window`` seconds returns "disconnect", as TWS closes the socket of a
    client that keeps flooding it. Over-limit messages do not fill the window.
    """

    def __init__(
        self,
        *,
        limit: int = 50,
        window: float = 1.0,
        strikes: int = 3,
        strike_window: float = 10.0,
        speed: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        enabled: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.limit = limit
        self.window = window / speed
        self.strikes = strikes
        self.strike_window = strike_window / speed
        self.enabled = enabled
        self._now = now
        self._times: deque[float] = deque()
        self._strikes: deque[float] = deque()

    def on_message(self) -> RateVerdict:
        if not self.enabled:
            return "ok"
        t = self._now()
        times = self._times
        cutoff = t - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if len(times) < self.limit:
            times.append(t)
            return "ok"
        strikes = self._strikes
        if strikes and t - strikes[-1] < self.window:
            return "dropped"  # same episode: already answered with error 100
        while strikes and strikes[0] <= t - self.strike_window:
            strikes.popleft()
        strikes.append(t)
        return "disconnect" if len(strikes) >= self.strikes else "violation"


class HistoricalPacing:
    """IB's historical-data pacing rules plus the 50-open-requests cap.

    ``admit(key)`` returns ``(token, None)`` or ``(None, SimError)`` (162 pacing violation, 322
    too many open); pass the token to ``finished`` when the request is answered, fails, or its
    keepUpToDate subscription is cancelled. With ``small_bars_only=True`` (IB's rule, the
    simulator's default) the identical-request and burst rules apply only to bars of 30 s and
    smaller, while larger bars keep the softer limits (60 requests in 10 minutes, 50 open);
    ``False`` applies every rule to every bar size.
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        enabled: bool = True,
        small_bars_only: bool = False,
        identical_window: float = 15.0,
        burst_window: float = 2.0,
        burst_limit: int = 6,
        period_window: float = 600.0,
        period_limit: int = 60,
        max_open: int = 50,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.enabled = enabled
        self.small_bars_only = small_bars_only
        self.identical_window = identical_window / speed
        self.burst_window = burst_window / speed
        self.burst_limit = burst_limit
        self.period_window = period_window / speed
        self.period_limit = period_limit
        self.max_open = max_open
        self._now = now
        self._last_identical: dict[HistKey, float] = {}
        self._bursts: dict[tuple[int, str, str], deque[tuple[float, int]]] = {}
        self._period: deque[tuple[float, int]] = deque()
        self._period_weight = 0
        self._open: set[int] = set()
        self._next_token = 1

    @property
    def open_requests(self) -> int:
        return len(self._open)

    def admit(self, key: HistKey) -> tuple[int | None, SimError | None]:
        """Check ``key`` against every rule: ``(token, None)`` when admitted (the request is
        recorded and counted open), ``(None, error)`` when refused (nothing is recorded)."""
        t = self._now()
        if self.enabled and len(self._open) >= self.max_open:
            return None, SimError(322, TOO_MANY_OPEN)
        if self.enabled:
            weight = 2 if key.what.upper() == "BID_ASK" else 1
            group = (key.con_id, key.exchange, key.what.upper())
            small = not (self.small_bars_only and key.bar_seconds > SMALL_BAR_SECONDS)
            if small:
                last = self._last_identical.get(key)
                if last is not None and t - last < self.identical_window:
                    return None, SimError(162, PACING_VIOLATION)
                burst = self._bursts.get(group)
                if burst is not None:
                    _expire(burst, t - self.burst_window)
                    if sum(w for _, w in burst) + weight >= self.burst_limit:
                        return None, SimError(162, PACING_VIOLATION)
            self._expire_period(t)
            if self._period_weight + weight > self.period_limit:
                return None, SimError(162, PACING_VIOLATION)
            if small:
                self._last_identical[key] = t
                self._bursts.setdefault(group, deque()).append((t, weight))
            self._period.append((t, weight))
            self._period_weight += weight
            self._forget_stale(t)
        token = self._next_token
        self._next_token += 1
        self._open.add(token)
        return token, None

    def finished(self, token: int) -> None:
        """The request behind ``token`` is no longer open (idempotent)."""
        self._open.discard(token)

    def _expire_period(self, t: float) -> None:
        period = self._period
        cutoff = t - self.period_window
        while period and period[0][0] <= cutoff:
            self._period_weight -= period.popleft()[1]

    def _forget_stale(self, t: float) -> None:
        # Keep the bookkeeping bounded in long runs: drop entries no rule can see any more.
        if len(self._last_identical) > 1024:
            cutoff = t - self.identical_window
            self._last_identical = {k: v for k, v in self._last_identical.items() if v > cutoff}
        if len(self._bursts) > 1024:
            cutoff = t - self.burst_window
            for g in list(self._bursts):
                _expire(self._bursts[g], cutoff)
                if not self._bursts[g]:
                    del self._bursts[g]


def _expire(window: deque[tuple[float, int]], cutoff: float) -> None:
    while window and window[0][0] <= cutoff:
        window.popleft()


class TickByTickPacing:
    """At most one tick-by-tick request per instrument per 15 s (``admit`` returns a SimError
    10190 otherwise)."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        enabled: bool = True,
        window: float = 15.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.enabled = enabled
        self.window = window / speed
        self._now = now
        self._last: dict[int, float] = {}

    def admit(self, con_id: int) -> SimError | None:
        """Record a request for ``con_id``, or return the error if one came less than 15 s ago."""
        if not self.enabled:
            return None
        t = self._now()
        last = self._last.get(con_id)
        if last is not None and t - last < self.window:
            return SimError(*TICK_BY_TICK_ERROR)
        self._last[con_id] = t
        return None
