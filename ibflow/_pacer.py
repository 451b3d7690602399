"""One pacer for IB's request limits, so long pulls never trip error 162 or a disconnect.

IB enforces limits that ib_async knows nothing about beyond a 45 messages/s send throttle
(``docs/history.md`` has the table): historical requests are refused with error 162 when
an identical one came within 15 s, when six or more for one contract, exchange and data type
come within 2 s, or when more than 60 arrive in ten minutes (BID_ASK counting twice); at most 50
may be open at once; tick-by-tick allows one request per instrument per 15 s; and concurrent
contract lookups can stall the security-definition service. A client that only reacts to 162
keeps hitting it, and IB sometimes answers a violation with silence instead. So ibflow keeps
the books itself and holds a request back until every rule admits it.

Two layers:

* :class:`PacerCore` — the rules as pure bookkeeping over an injected clock: ``delay(key)`` says
  how long until a request may go, ``admit(key)`` records it, ``release()`` closes it. No
  sleeping, so the rules are unit-tested at their exact boundaries without waiting.
* :class:`Pacer` — the asyncio face: ``async with pacer.historical(key, deadline=...)`` waits
  its turn (first come, first served), ``await pacer.tick_by_tick(con_id)``, and
  ``async with pacer.contract_lookup()`` serializes contract lookups.

The overall 50 messages/s limit is not counted here: it is enforced where every outbound byte
passes, ib_async's ``Client.sendMsg`` throttle, configured from
:attr:`PacingRules.messages_per_second` (45 by default, headroom below IB's 50). Counting it
twice would only add latency, and the throttle also sees what this pacer cannot (cancels sent
in ``finally`` blocks, ib_async's own requests after a reconnect).

``time_scale`` shrinks every window (``time_scale=100``: 15 s becomes 0.15 s) to match the
simulator's ``speed`` in tests; ``margin`` is added to every window in real seconds, because
network delay does not shrink with the simulator's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ._errors import InvalidRequest

__all__ = [
    "IB_SMALL_BAR_SECONDS",
    "HistKey",
    "Pacer",
    "PacerCore",
    "PacingDelay",
    "PacingRules",
    "PacingStatistics",
    "Ticket",
]


IB_SMALL_BAR_SECONDS = 30
"""IB applies the identical-request and burst rules to bars of this many seconds and fewer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PacingRules:
    """IB's request limits as the pacer applies them. The defaults are IB's documented limits.

    Args:
        messages_per_second: the overall send rate, all messages combined (IB allows 50; the
            default keeps headroom). Applied to ib_async's send throttle.
        max_open: historical requests open at once.
        identical_window: seconds before an identical historical request may be repeated.
        burst_limit: requests for one contract, exchange and data type allowed per
            ``burst_window`` (IB: six or more in 2 s is a violation, so 5).
        burst_window: seconds.
        period_limit: requests allowed per ``period_window`` (BID_ASK counts ``bid_ask_weight``).
        period_window: seconds (ten minutes).
        bid_ask_weight: how much a BID_ASK request counts.
        tick_by_tick_window: seconds between tick-by-tick requests for one instrument.
        small_bars_only: apply the identical-request and burst rules only to bars of 30
            seconds and smaller, as IB documents (the default); larger bars keep the softer
            throttle of the period and open-request limits. ``False`` applies every rule to
            every bar size (the simulator's ``pacing="strict"``).
        margin: real seconds added to every window to absorb network delay (not scaled).
        time_scale: divide every window by this (match ``Simulator(speed=...)`` in tests).
    """

    messages_per_second: int = 45
    max_open: int = 50
    identical_window: float = 15.0
    burst_limit: int = 5
    burst_window: float = 2.0
    period_limit: int = 60
    period_window: float = 600.0
    bid_ask_weight: int = 2
    tick_by_tick_window: float = 15.0
    small_bars_only: bool = True
    margin: float = 0.25
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "messages_per_second",
            "max_open",
            "burst_limit",
            "period_limit",
            "bid_ask_weight",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequest(
                    f"PacingRules({name}=...) must be a positive integer, got {value!r}"
                )
        for name in (
            "identical_window",
            "burst_window",
            "period_window",
            "tick_by_tick_window",
            "margin",
            "time_scale",
        ):
            value = getattr(self, name)
            positive = name == "time_scale"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or (positive and value == 0)
            ):
                need = "a positive" if positive else "a non-negative"
                raise InvalidRequest(
                    f"PacingRules({name}=...) must be {need} number, got {value!r}"
                )
        if self.bid_ask_weight > self.burst_limit or self.bid_ask_weight > self.period_limit:
            raise InvalidRequest("PacingRules(bid_ask_weight=...) must not exceed the limits")
        if not isinstance(self.small_bars_only, bool):
            raise InvalidRequest("PacingRules(small_bars_only=...) must be True or False")

    def window(self, seconds: float) -> float:
        """A rule's window as the pacer measures it: scaled, plus the margin."""
        return seconds / self.time_scale + self.margin


@dataclass(frozen=True, slots=True)
class HistKey:
    """What identifies a historical request to IB's pacing rules.

    Identical requests have every field equal; the burst rule groups by
    ``(con_id, exchange, what)``.
    """

    con_id: int
    exchange: str
    what: str
    end: str = ""
    duration: str = ""
    bar_size: str = ""
    rth: bool = True
    bar_seconds: int = 0

    @property
    def group(self) -> tuple[int, str, str]:
        return (self.con_id, self.exchange, self.what)


@dataclass(frozen=True, slots=True, kw_only=True)
class PacingStatistics:
    """What a session's pacer has done; see ``Session.pacing_statistics()``."""

    rules: PacingRules
    historical_requests: int
    """Historical requests let through."""
    weight: int
    """Their weight against the 10-minute rule (BID_ASK counts double)."""
    open_requests: int
    waits: int
    """Requests that had to wait for a rule."""
    waited: float
    """Seconds spent waiting, summed over requests."""
    violations: int
    """Pacing errors IB (or the simulator) still answered with."""
    tick_by_tick_requests: int
    contract_lookups: int
    first_request_at: float | None
    """Monotonic time of the first historical request (``None``: none yet)."""
    last_request_at: float | None

    @property
    def allowed_per_second(self) -> float:
        """The sustained historical request rate the rules allow (period rule)."""
        scaled = self.rules.period_window / self.rules.time_scale
        return self.rules.period_limit / scaled


class PacingDelay(Exception):
    """Internal: the pacer would have to wait past the caller's deadline.

    Never leaves ibflow; callers turn it into a typed pacing error carrying ``retry_after``.
    """

    def __init__(self, retry_after: float, rule: str) -> None:
        super().__init__(f"{rule}: next slot in {retry_after:.3f} s")
        self.retry_after = retry_after
        self.rule = rule


@dataclass(slots=True)
class Ticket:
    key: HistKey
    released: bool = False


@dataclass(slots=True)
class _Books:
    identical: dict[HistKey, float] = field(default_factory=dict)
    bursts: dict[tuple[int, str, str], deque[tuple[float, int]]] = field(default_factory=dict)
    period: deque[tuple[float, int]] = field(default_factory=deque)
    tick_by_tick: dict[int, float] = field(default_factory=dict)


class PacerCore:
    """IB's historical, tick-by-tick and open-request rules as pure bookkeeping.

    ``now`` is any monotonic clock in seconds. A request with key ``k`` may go when
    ``delay(k) == 0``; call ``admit(k)`` when sending it and ``release(ticket)`` when it is
    answered, fails or is cancelled. ``delay`` is ``math.inf`` while the open cap is full (only
    a release can change that).
    """

    def __init__(self, rules: PacingRules, now: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self._now = now
        self._books = _Books()
        self._open = 0
        self._blocked_until = 0.0
        self.admitted = 0
        self.weight = 0
        self.violations = 0
        self.tick_by_tick_admitted = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    @property
    def open_requests(self) -> int:
        return self._open

    def now(self) -> float:
        return self._now()

    def _weight(self, key: HistKey) -> int:
        return self.rules.bid_ask_weight if key.what.upper() == "BID_ASK" else 1

    def _strict(self, key: HistKey) -> bool:
        """Whether the identical-request and burst rules apply to ``key``."""
        return not (self.rules.small_bars_only and key.bar_seconds > IB_SMALL_BAR_SECONDS)

    def delay(self, key: HistKey) -> float:
        """Seconds until ``key`` may be sent (0: now; ``inf``: wait for a release)."""
        return self.explain(key)[0]

    def explain(self, key: HistKey) -> tuple[float, str]:
        """``delay(key)`` and the rule that imposes it."""
        t = self._now()
        rules = self.rules
        if self._open >= rules.max_open:
            return math.inf, f"{rules.max_open} historical requests open"
        waits: list[tuple[float, str]] = [(self._blocked_until - t, "backing off after IB error")]
        weight = self._weight(key)
        if self._strict(key):
            last = self._books.identical.get(key)
            if last is not None:
                waits.append((last + rules.window(rules.identical_window) - t, "identical request"))
            burst = self._books.bursts.get(key.group)
            if burst is not None:
                waits.append(
                    (
                        _slot(
                            burst, t, rules.window(rules.burst_window), rules.burst_limit, weight
                        ),
                        f"{rules.burst_limit} requests per contract and type per "
                        f"{rules.burst_window / rules.time_scale:g} s",
                    )
                )
        waits.append(
            (
                _slot(
                    self._books.period,
                    t,
                    rules.window(rules.period_window),
                    rules.period_limit,
                    weight,
                ),
                f"{rules.period_limit} requests per {rules.period_window / rules.time_scale:g} s",
            )
        )
        wait, rule = max(waits)
        return (max(wait, 0.0), rule)

    def admit(self, key: HistKey) -> Ticket:
        """Record ``key`` as sent now and open (whatever ``delay`` says: the caller decides)."""
        t = self._now()
        weight = self._weight(key)
        if self._strict(key):
            self._books.identical[key] = t
            self._books.bursts.setdefault(key.group, deque()).append((t, weight))
        self._books.period.append((t, weight))
        self.weight += weight
        self._forget(t)
        self._open += 1
        self.admitted += 1
        if self.first_at is None:
            self.first_at = t
        self.last_at = t
        return Ticket(key)

    def release(self, ticket: Ticket) -> None:
        """The request is no longer open (answered, failed or cancelled). Idempotent."""
        if not ticket.released:
            ticket.released = True
            self._open -= 1

    def violation(self, retry_after: float) -> None:
        """IB still refused a request for pacing: hold every historical request back."""
        self.violations += 1
        self._blocked_until = max(self._blocked_until, self._now() + retry_after)

    def retry_after(self, key: HistKey) -> float:
        """How long to wait before repeating ``key`` after IB refused it for pacing.

        At least the identical-request window: IB may have counted the refused request.
        """
        floor = self.rules.window(self.rules.identical_window)
        wait = self.delay(key)
        return max(floor, wait if math.isfinite(wait) else floor)

    # -- tick-by-tick ------------------------------------------------------------------------

    def tick_by_tick_delay(self, con_id: int) -> float:
        """Seconds until a tick-by-tick request for ``con_id`` may go."""
        last = self._books.tick_by_tick.get(con_id)
        if last is None:
            return 0.0
        window = self.rules.window(self.rules.tick_by_tick_window)
        return max(last + window - self._now(), 0.0)

    def admit_tick_by_tick(self, con_id: int) -> None:
        self._books.tick_by_tick[con_id] = self._now()
        self.tick_by_tick_admitted += 1

    def _forget(self, t: float) -> None:
        # Keep long runs bounded: drop entries no rule can see any more.
        rules = self.rules
        books = self._books
        period = books.period
        cutoff = t - rules.window(rules.period_window)
        while period and period[0][0] <= cutoff:
            period.popleft()
        if len(books.identical) > 256:
            cutoff = t - rules.window(rules.identical_window)
            books.identical = {k: v for k, v in books.identical.items() if v > cutoff}
        if len(books.bursts) > 256:
            cutoff = t - rules.window(rules.burst_window)
            for group in list(books.bursts):
                window = books.bursts[group]
                while window and window[0][0] <= cutoff:
                    window.popleft()
                if not window:
                    del books.bursts[group]


def _slot(
    entries: deque[tuple[float, int]], t: float, window: float, limit: int, weight: int
) -> float:
    """Seconds until ``weight`` more fits in a rolling ``window`` holding at most ``limit``.

    An entry stops counting ``window`` seconds after it was made (at exactly that moment).
    """
    cutoff = t - window
    while entries and entries[0][0] <= cutoff:
        entries.popleft()
    excess = sum(w for _, w in entries) + weight - limit
    if excess <= 0:
        return 0.0
    for when, w in entries:
        excess -= w
        if excess <= 0:
            return when + window - t
    return math.inf  # pragma: no cover - weight never exceeds limit (checked in PacingRules)


class Pacer:
    """The asyncio face of :class:`PacerCore`: waits its turn instead of answering "later".

    Waiters are served first come, first served. ``now`` is the clock the rules are kept on
    (``time.monotonic`` by default; asyncio's loop clock is the same one).
    """

    def __init__(
        self,
        rules: PacingRules | None = None,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = PacerCore(rules or PacingRules(), now)
        self._gate = asyncio.Lock()
        self._released = asyncio.Event()
        self._lookup_lock = asyncio.Lock()
        self._tick_lock = asyncio.Lock()
        self.waits = 0
        self.waited = 0.0
        self.lookups = 0

    @property
    def rules(self) -> PacingRules:
        return self.core.rules

    def set_rules(self, rules: PacingRules) -> None:
        """Apply new rules; what was already sent still counts against them."""
        self.core.rules = rules

    def statistics(self) -> PacingStatistics:
        core = self.core
        return PacingStatistics(
            rules=core.rules,
            historical_requests=core.admitted,
            weight=core.weight,
            open_requests=core.open_requests,
            waits=self.waits,
            waited=self.waited,
            violations=core.violations,
            tick_by_tick_requests=core.tick_by_tick_admitted,
            contract_lookups=self.lookups,
            first_request_at=core.first_at,
            last_request_at=core.last_at,
        )

    async def acquire(self, key: HistKey, *, deadline: float | None = None) -> Ticket:
        """Wait until ``key`` may be sent, record it, and return its ticket.

        ``deadline`` is on the pacer's clock; ``None`` waits as long as the rules require.

        Raises:
            PacingDelay: the next slot comes after ``deadline`` (nothing recorded).
        """
        core = self.core
        started = core.now()
        wait, rule = core.explain(key)
        if deadline is not None and math.isfinite(wait) and started + wait > deadline:
            raise PacingDelay(wait, rule)  # fail fast instead of queueing until the deadline
        waited = self._gate.locked()  # queued behind others
        try:
            async with asyncio.timeout(_remaining(deadline, core.now())):
                await self._gate.acquire()
        except TimeoutError:
            raise PacingDelay(*_wait_reason(core, key)) from None
        try:
            while True:
                wait, rule = core.explain(key)
                if wait <= 0:
                    break
                now = core.now()
                if deadline is not None and now + wait > deadline:
                    raise PacingDelay(wait, rule)
                waited = True
                if math.isinf(wait):
                    self._released.clear()
                    try:
                        async with asyncio.timeout(_remaining(deadline, now)):
                            await self._released.wait()
                    except TimeoutError:
                        raise PacingDelay(*_wait_reason(core, key)) from None
                else:
                    await asyncio.sleep(wait)
            ticket = core.admit(key)
            if waited:
                self.waits += 1
                self.waited += core.now() - started
            return ticket
        finally:
            self._gate.release()

    def release(self, ticket: Ticket) -> None:
        """Close a request's slot (idempotent)."""
        self.core.release(ticket)
        self._released.set()

    @contextlib.asynccontextmanager
    async def historical(
        self, key: HistKey, *, deadline: float | None = None
    ) -> AsyncIterator[Ticket]:
        """Hold one historical request's slot for the duration of the block.

        Raises:
            PacingDelay: the next slot comes after ``deadline``.
        """
        ticket = await self.acquire(key, deadline=deadline)
        try:
            yield ticket
        finally:
            self.release(ticket)

    async def tick_by_tick(self, con_id: int, *, deadline: float | None = None) -> None:
        """Wait until a tick-by-tick request for ``con_id`` may go, and record it.

        Raises:
            PacingDelay: the next slot comes after ``deadline``.
        """
        core = self.core
        async with self._tick_lock:
            while (wait := core.tick_by_tick_delay(con_id)) > 0:
                if deadline is not None and core.now() + wait > deadline:
                    raise PacingDelay(wait, "one tick-by-tick request per instrument per 15 s")
                await asyncio.sleep(wait)
            core.admit_tick_by_tick(con_id)

    @contextlib.asynccontextmanager
    async def contract_lookup(self) -> AsyncIterator[None]:
        """Serialize contract lookups (concurrent ones can stall IB's sec-def service).

        Not reentrant: hold it only around the lookup request itself.
        """
        async with self._lookup_lock:
            self.lookups += 1
            yield

    @property
    def lookup_lock(self) -> asyncio.Lock:
        """The lock :meth:`contract_lookup` takes, for callers that hold locks their own way."""
        return self._lookup_lock


def _remaining(deadline: float | None, now: float) -> float | None:
    return None if deadline is None else max(deadline - now, 0.0)


def _wait_reason(core: PacerCore, key: HistKey) -> tuple[float, str]:
    wait, rule = core.explain(key)
    if not math.isfinite(wait):
        wait = core.rules.window(core.rules.burst_window)
    return (max(wait, 0.0), rule if wait > 0 else "requests queued ahead")
