"""Market data, PnL and account events as bounded async iterators (issue 5).

ib_async offers a mutable ``Ticker`` shared per contract and eventkit's ``aiter()`` over an
unbounded queue: readers see state overwritten under them, memory grows behind a slow consumer,
two consumers of one contract cancel each other, and subscriptions silently die after a gateway
restart (``../shared/ib-limits.md``, pains 2, 13, 14). Every stream here is a
:class:`~ibflow.Stream` (see ``ibflow/_stream.py``): immutable items, a bounded buffer with a
named overflow policy, and an IB subscription that lives exactly as long as the stream.

How the session methods below behave, all of them:

- ``async with session.quotes(c) as quotes: async for item in quotes: ...``. Entering the block
  qualifies the contract and sends the request (``ContractNotFound`` etc. raise there); leaving
  it (normally, by ``break``, by an exception or by cancellation) or ``aclose()`` sends IB's
  cancel exactly once.
- Consumers of the same data (same contract and kind, same account…) share ONE IB subscription
  (one market-data line), each with its own buffer and policy; the cancel goes out when the last
  one leaves. A newcomer to a quote or PnL subscription gets the latest snapshot at once.
- An IB error for the subscription's request (354, 10089/10168, 101, 200…) is raised, mapped
  (``MarketDataError``, ``ContractNotFound``…), from the next ``__anext__`` of every consumer;
  a lost link with ``reconnect=None`` raises ``ConnectionLost``; ``session.aclose()`` ends the
  iteration quietly.
- Reconnect (the session's ``reconnect`` policy on): the stream stays open, is re-subscribed
  automatically, and yields ONE :class:`Gap` item, in the same iterator and in order, between
  the last item before the outage and the first after it. Streams are therefore typed
  ``Stream[X | Gap]``: check ``isinstance(item, Gap)``. Bar streams backfill the missing bars
  from history right after the Gap (``realtime_bars`` from 5-second history, ``live_bars`` from
  its own keepUpToDate history). A Gap is never dropped in favour of data.

Defaults: quotes and PnL are snapshots, so their overflow policy is ``"latest"`` (conflate);
ticks drop the oldest; bars, account values and positions are never dropped (``"error"``,
raising ``SlowConsumer``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    overload,
)

from ._account import AccountValue, PnL, Position, PositionPnL
from ._errors import (
    IBFlowError,
    InvalidRequest,
    RequestError,
    RequestTimeout,
)
from ._log import get_logger
from ._models import Bar, Contract
from ._pacer import HistKey, _Ticket, pacer_for
from ._per_session import per_session
from ._periods import BarSize, bar_seconds
from ._stream import (
    Overflow,
    SlowConsumer,
    Stream,
    StreamClosed,
    StreamError,
    StreamStatistics,
    WouldBlock,
)
from ._timeouts import SESSION_DEFAULT, resolve_timeout

if TYPE_CHECKING:
    from ._session import Session

__all__ = [
    "BidAskTick",
    "FormingBar",
    "Gap",
    "MarketDataType",
    "MidpointTick",
    "Overflow",
    "Quote",
    "SlowConsumer",
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamStatistics",
    "Tick",
    "TickKind",
    "TradeTick",
    "WouldBlock",
]

log = get_logger("streams")

T = TypeVar("T")

# -- records -------------------------------------------------------------------------------------


class MarketDataType(StrEnum):
    """Which kind of market data TWS sends (``reqMarketDataType``)."""

    LIVE = "live"
    FROZEN = "frozen"
    """The last live values, after the market closed."""
    DELAYED = "delayed"
    """Delayed 15–20 minutes (no market-data subscription needed)."""
    DELAYED_FROZEN = "delayed_frozen"


MARKET_DATA_TYPES: Final[dict[int, MarketDataType]] = {
    1: MarketDataType.LIVE,
    2: MarketDataType.FROZEN,
    3: MarketDataType.DELAYED,
    4: MarketDataType.DELAYED_FROZEN,
}
_MARKET_DATA_CODES: Final[dict[MarketDataType, int]] = {v: k for k, v in MARKET_DATA_TYPES.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """An immutable snapshot of one contract's top of book, as of ``time``.

    A field is ``None`` until TWS has sent it (or when IB says there is none, e.g. no bid).
    ``time`` is when the update arrived (aware, UTC). ``market_data_type`` says whether the
    values are live, frozen or delayed; ``halted`` is True while TWS reports a trading halt.
    """

    contract: Contract
    time: datetime
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    last_size: float | None = None
    volume: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    market_data_type: MarketDataType = MarketDataType.LIVE
    halted: bool = False

    @property
    def midpoint(self) -> float | None:
        """``(bid + ask) / 2`` when both sides are present."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


_QUOTE_FIELDS: Final = (
    "contract",
    "time",
    "bid",
    "ask",
    "last",
    "bid_size",
    "ask_size",
    "last_size",
    "volume",
    "open",
    "high",
    "low",
    "close",
    "market_data_type",
    "halted",
)
if tuple(f.name for f in dataclasses.fields(Quote)) != _QUOTE_FIELDS:  # pragma: no cover
    raise RuntimeError("Quote's fields changed: update _QUOTE_FIELDS and new_quote")

_new_object = object.__new__
_set = object.__setattr__


def new_quote(
    contract: Contract,
    time: datetime,
    bid: float | None,
    ask: float | None,
    last: float | None,
    bid_size: float | None,
    ask_size: float | None,
    last_size: float | None,
    volume: float | None,
    open_: float | None,
    high: float | None,
    low: float | None,
    close: float | None,
    market_data_type: MarketDataType,
    halted: bool,
) -> Quote:
    """``Quote(...)`` for the hot path: positional, without the frozen dataclass's per-field
    checks (about half the cost). Only for already-clean values (ibflow._ib._market)."""
    q: Quote = _new_object(Quote)
    _set(q, "contract", contract)
    _set(q, "time", time)
    _set(q, "bid", bid)
    _set(q, "ask", ask)
    _set(q, "last", last)
    _set(q, "bid_size", bid_size)
    _set(q, "ask_size", ask_size)
    _set(q, "last_size", last_size)
    _set(q, "volume", volume)
    _set(q, "open", open_)
    _set(q, "high", high)
    _set(q, "low", low)
    _set(q, "close", close)
    _set(q, "market_data_type", market_data_type)
    _set(q, "halted", halted)
    return q


class TickKind(StrEnum):
    """The tick-by-tick feeds IB offers (``reqTickByTickData``)."""

    LAST = "last"
    """Trades, as on the consolidated tape (odd lots and some venues excluded)."""
    ALL_LAST = "all_last"
    """Every trade, including odd lots and off-exchange prints."""
    BID_ASK = "bid_ask"
    MIDPOINT = "midpoint"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One tick-by-tick item: a :class:`TradeTick`, :class:`BidAskTick` or
    :class:`MidpointTick`. ``time`` is when it arrived (aware, UTC)."""

    contract: Contract
    time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeTick(Tick):
    """One trade from the ``last``/``all_last`` tick-by-tick feed."""

    price: float | None
    size: float | None
    exchange: str | None = None
    special_conditions: str | None = None
    past_limit: bool = False
    unreported: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BidAskTick(Tick):
    """One change of the best bid/ask from the ``bid_ask`` tick-by-tick feed."""

    bid: float | None
    ask: float | None
    bid_size: float | None
    ask_size: float | None
    bid_past_low: bool = False
    ask_past_high: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MidpointTick(Tick):
    """One change of the midpoint from the ``midpoint`` tick-by-tick feed."""

    midpoint: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """Data may be missing between ``start`` and ``end``: the link (or TWS's link to IB) was
    down, and the subscription was re-issued at ``end``. Yielded once per outage, in order.
    """

    start: datetime
    end: datetime
    reason: str

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class FormingBar(Bar):
    """The bar still being formed (``live_bars(..., include_forming=True)``).

    Yielded on every update of the current period; the same ``time`` then arrives once more as a
    plain, complete :class:`~ibflow.Bar` when the next period begins.
    """


# -- per-session state ---------------------------------------------------------------------------


class _State:
    """What the streams keep per session: shared subscriptions, lookups, the data type."""

    def __init__(self) -> None:
        self.hubs: dict[Hashable, _Hub[Any]] = {}
        self.md_type = 1
        self.md_epoch = -1
        self.tap_ids = itertools.count(-1, -1)  # registry keys that can never be a req id


def _state(session: Session) -> _State:
    return per_session(session, "streams", _State)


def _epoch(session: Session) -> int:
    """Which connection the session is on: request ids of an older one mean nothing now."""
    return session._reconnects


def _now() -> datetime:
    return datetime.now(UTC)


def _ensure_market_data_type(session: Session) -> None:
    """TWS forgets ``reqMarketDataType`` with the connection: re-send it on a new one."""
    from ._ib import _market

    state = _state(session)
    epoch = _epoch(session)
    if state.md_type != 1 and state.md_epoch != epoch:
        _market.send_market_data_type(session._adapter, state.md_type)
        state.md_epoch = epoch


class Link(Protocol):
    """One request feeding a hub (``ibflow._ib._market.Link`` or a tap on session data)."""

    req_id: int

    def cancel(self, send: bool) -> None: ...


# IB errors after which TWS keeps the subscription: the cancel must still be sent.
_KEEPS_SUBSCRIPTION: Final = frozenset({10197})
_BACKFILL_MIN_SECONDS = 300
_BACKFILL_MAX_SECONDS = 3600  # IB serves 5-second bars for at most an hour per request
_HELD_MAX = 720  # live bars held while a backfill is in flight (an hour of 5-second bars)


class _Hub(Generic[T]):
    """One IB subscription fanned out to its consumer streams; the session's handler for it.

    Subclasses send the request in :meth:`_open`. Everything here runs synchronously (inside
    ib_async callbacks or the session's hooks), so no consumer can slip in between two steps.
    """

    kind = "stream"
    keep_last = False  # newcomers get the latest item (snapshot kinds)
    # Taps on data the session re-syncs itself (account values, positions) see the first data
    # of a new connection before the session re-subscribes anyone: their Gap goes out then.
    lazy_gap = False

    def __init__(self, session: Session, key: Hashable) -> None:
        self.session = session
        self.key = key
        # Weak: a stream its consumer dropped without closing it (a bare ``async for`` left
        # by ``break``) is collected, and its finalizer releases it here.
        self.streams: list[weakref.ref[Stream[T | Gap]]] = []
        self.link: Link | None = None
        self.req_id: int | None = None
        self.epoch = 0
        self.closed = False
        self.last: T | None = None
        self.gap_start: datetime | None = None

    # -- to override ---------------------------------------------------------------------

    def _open(self) -> Link:
        raise NotImplementedError

    def _before_open(self) -> None:
        """Runs before every (re)subscription."""

    def _after_gap(self, gap: Gap, fresh_link: bool) -> None:
        """Runs after a Gap was delivered and the request re-issued."""

    def _on_shutdown(self) -> None:
        """Release whatever the subclass holds besides the link."""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._before_open()
        self._set_link(self._open())
        assert self.req_id is not None
        self.session._subscriptions.add(self.req_id, self)

    def _set_link(self, link: Link) -> None:
        self.link = link
        self.req_id = link.req_id
        self.epoch = _epoch(self.session)

    def add(self, ref: weakref.ref[Stream[T | Gap]]) -> None:
        self.streams.append(ref)
        stream = ref()
        if stream is not None and self.last is not None:
            stream._put(self.last)

    def remove(self, ref: weakref.ref[Stream[T | Gap]]) -> None:
        if self.closed:
            return
        if ref in self.streams:
            self.streams.remove(ref)
        if not self.streams:
            self._shutdown(send=True)

    def _live(self) -> list[Stream[T | Gap]]:
        return [s for s in (ref() for ref in self.streams) if s is not None]

    def deliver(self, item: T) -> None:
        """One item from IB, to every consumer (called inside ib_async callbacks)."""
        if self.gap_start is not None:
            self._gap_on_data()
        if self.keep_last:
            self.last = item
        for ref in self.streams:
            stream = ref()
            if stream is not None:
                stream._put(item)

    def _gap_on_data(self) -> None:
        if self.lazy_gap:
            self._gap("the connection to TWS/IB Gateway was lost and re-established")
        elif self.session._state == "ready":
            # Data flows again and the session is READY without having re-subscribed us:
            # TWS regained IB with the data kept (1102). After 1101 or a reconnect the session
            # stays not-READY until every subscription was re-issued.
            self._gap("TWS lost its connection to IB and regained it (1100/1102)")

    def _put_all(self, items: list[T]) -> None:
        """A known backlog (history) for every consumer, never counted as overflow."""
        for stream in self._live():
            stream._grow(len(items) + stream.buffer_size)
            for item in items:
                stream._put(item)

    def _gap(self, reason: str) -> Gap:
        end = _now()
        gap = Gap(start=self.gap_start or end, end=end, reason=reason)
        self.gap_start = None
        self.last = None  # a snapshot from before the outage is stale
        for stream in self._live():
            stream._put_marker(gap)
        self._on_gap()
        return gap

    def _on_gap(self) -> None:
        """Runs right after a Gap went out."""

    def _link_is_current(self) -> bool:
        return self.epoch == _epoch(self.session) and self.session._adapter.is_connected

    def _shutdown(self, send: bool) -> None:
        if self.closed:
            return
        self.closed = True
        state = _state(self.session)
        if state.hubs.get(self.key) is self:
            del state.hubs[self.key]
        registry = self.session._subscriptions
        if self.req_id is not None and registry.get(self.req_id) is self:
            registry.remove(self.req_id)
        link, self.link = self.link, None
        if link is not None:
            link.cancel(send and self._link_is_current())
        self._on_shutdown()

    def _finish(self, error: BaseException | None, *, send: bool = False) -> None:
        self._shutdown(send)
        streams = self._live()
        self.streams = []
        for stream in streams:
            if error is None:
                stream._end()
            else:
                stream._fail(error)

    # -- SubscriptionHandler (called by the session) -------------------------------------

    async def resubscribe(self, fresh_link: bool) -> int | None:
        if self.closed:
            return None
        if not self._live():
            self._shutdown(send=False)
            return None
        old, self.link = self.link, None
        if old is not None:
            old.cancel(not fresh_link and self._link_is_current())
        self._on_shutdown()
        gap = None
        if not self.lazy_gap or self.gap_start is not None:
            gap = self._gap(
                "the connection to TWS/IB Gateway was lost and re-established; re-subscribed"
                if fresh_link
                else "TWS lost its connection to IB (1100/1101); re-subscribed"
            )
        self._before_open()
        self._set_link(self._open())
        if gap is not None:
            self._after_gap(gap, fresh_link)
        return self.req_id

    def on_error(self, error: RequestError) -> None:
        self._finish(error, send=error.code in _KEEPS_SUBSCRIPTION)

    def on_link_down(self) -> None:
        if self.gap_start is None:
            self.gap_start = _now()

    def on_close(self, error: IBFlowError | None) -> None:
        self._finish(error)


class _QuoteHub(_Hub[Quote]):
    kind = "quotes"
    keep_last = True

    def __init__(self, session: Session, key: Hashable, contract: Contract) -> None:
        super().__init__(session, key)
        self.contract = contract

    def _before_open(self) -> None:
        _ensure_market_data_type(self.session)

    def _open(self) -> Link:
        from ._ib import _market

        return _market.open_quotes(self.session._adapter, self.contract, self.deliver)


class _TickHub(_Hub[Tick]):
    kind = "ticks"

    def __init__(
        self, session: Session, key: Hashable, contract: Contract, tick_kind: TickKind
    ) -> None:
        super().__init__(session, key)
        self.contract = contract
        self.tick_kind = tick_kind

    def _open(self) -> Link:
        from ._ib import _market

        return _market.open_ticks(
            self.session._adapter, self.contract, self.tick_kind.value, self.deliver
        )


class _RealtimeBarHub(_Hub[Bar]):
    """5-second bars; after an outage the missing bars come from 5-second history."""

    kind = "realtime_bars"

    def __init__(
        self, session: Session, key: Hashable, contract: Contract, what: str, rth: bool
    ) -> None:
        super().__init__(session, key)
        self.contract = contract
        self.what = what
        self.rth = rth
        self.last_time: datetime | None = None
        self.held: deque[Bar] | None = None  # live bars waiting for the backfill
        self.backfill: Link | None = None
        self.timer: asyncio.TimerHandle | None = None

    def _open(self) -> Link:
        from ._ib import _market

        return _market.open_realtime_bars(
            self.session._adapter, self.contract, self.what, self.rth, self.on_bar
        )

    def on_bar(self, bar: Bar) -> None:
        if self.held is not None:
            self.held.append(bar)
            return
        self.last_time = bar.time
        self.deliver(bar)

    def _after_gap(self, gap: Gap, fresh_link: bool) -> None:
        from ._ib import _market

        # Bar times are TWS's clock, gap times ours: ask for a generous window (it is one
        # request either way) and keep only the bars after the last one delivered.
        since = min(self.last_time or gap.start, gap.start)
        seconds = int((_now() - since).total_seconds()) + 10
        seconds = min(max(seconds // 5 * 5 + 5, _BACKFILL_MIN_SECONDS), _BACKFILL_MAX_SECONDS)
        self.held = deque(maxlen=_HELD_MAX)
        try:
            self.backfill = _market.fetch_bars(
                self.session._adapter,
                self.contract,
                duration=f"{seconds} S",
                bar_size="5 secs",
                what=self.what,
                rth=self.rth,
                done=self._backfilled,
            )
        except IBFlowError as exc:
            log.warning("could not backfill %s real-time bars: %s", self.contract.symbol, exc)
            self._backfilled(None)
            return
        limit = self.session._timeout
        if limit is not None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(limit, self._backfilled, None)

    def _backfilled(self, bars: list[Bar] | None) -> None:
        held, self.held = self.held, None
        if held is None or self.closed:
            return
        self._stop_backfill()
        if bars is None:
            log.warning("backfill of %s real-time bars failed or timed out", self.contract.symbol)
        first_live = held[0].time if held else None
        missing = [
            b
            for b in bars or ()
            if (self.last_time is None or b.time > self.last_time)
            and (first_live is None or b.time < first_live)
        ]
        if missing:
            self._put_all(missing)
            self.last_time = missing[-1].time
        for bar in held:
            self.on_bar(bar)

    def _stop_backfill(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        backfill, self.backfill = self.backfill, None
        if backfill is not None:
            backfill.cancel(self._link_is_current())

    def _on_shutdown(self) -> None:
        self.held = None
        self._stop_backfill()


class _LiveBarHub(_Hub[Bar]):
    """keepUpToDate history for one consumer: completed bars, and the forming bar if asked."""

    kind = "live_bars"

    def __init__(
        self,
        session: Session,
        key: Hashable,
        contract: Contract,
        *,
        bar_size: str,
        lookback: str,
        what: str,
        rth: bool,
        include_forming: bool,
        ticket: _Ticket | None,
    ) -> None:
        super().__init__(session, key)
        self.contract = contract
        self.bar_size = bar_size
        self.lookback = lookback
        self.what = what
        self.rth = rth
        self.include_forming = include_forming
        self.last_complete: datetime | None = None
        self.forming: Bar | None = None
        self.timer: asyncio.TimerHandle | None = None
        # The pacer slot of the open request: a keepUpToDate request stays open at IB (and
        # counts against its open-request limit) until it is cancelled.
        self.ticket = ticket

    def start(self) -> None:
        try:
            super().start()
        except BaseException:
            self._on_shutdown()  # the slot taken for a request that was never sent
            raise

    def _before_open(self) -> None:
        if self.ticket is None:
            # A re-subscription after a reconnect happens inside the reconnect and cannot wait
            # its turn; it is still booked, so downloads and other streams wait for it.
            key = _live_key(self.contract, self.bar_size, self.lookback, self.what, self.rth)
            self.ticket = pacer_for(self.session).core.admit(key)

    def _open(self) -> Link:
        from ._ib import _market

        self.forming = None
        link = _market.open_live_bars(
            self.session._adapter,
            self.contract,
            bar_size=self.bar_size,
            duration=self.lookback,
            what=self.what,
            rth=self.rth,
            on_history=self.on_history,
            on_update=self.on_update,
        )
        limit = self.session._timeout
        if limit is not None:
            self.timer = asyncio.get_running_loop().call_later(limit, self._history_timeout)
        return link

    def _history_timeout(self) -> None:
        self.timer = None
        self._finish(
            RequestTimeout(
                f"live bars for {self.contract.display_name}: no history within "
                f"{self.session._timeout} s"
            ),
            send=True,
        )

    def _complete(self, bar: Bar) -> None:
        if self.last_complete is None or bar.time > self.last_complete:
            self.last_complete = bar.time
            self.deliver(bar)

    def on_history(self, bars: list[Bar]) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not bars:
            return
        *complete, forming = bars
        fresh = [b for b in complete if self.last_complete is None or b.time > self.last_complete]
        if fresh:
            self._put_all(fresh)
            self.last_complete = fresh[-1].time
        self.forming = forming
        if self.include_forming:
            self.deliver(_forming(forming))

    def on_update(self, bar: Bar, new: bool) -> None:
        previous = self.forming
        if new and previous is not None and previous.time < bar.time:
            self._complete(previous)
        self.forming = bar
        if self.include_forming:
            self.deliver(_forming(bar))

    def _on_shutdown(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            pacer_for(self.session).release(ticket)


def _live_key(contract: Contract, bar_size: str, lookback: str, what: str, rth: bool) -> HistKey:
    """The pacer's view of a keepUpToDate request (it ends now, like any "up to now" one)."""
    return HistKey(
        con_id=contract.con_id or 0,
        exchange=contract.exchange or "",
        what=what,
        duration=lookback,
        bar_size=bar_size,
        rth=rth,
        bar_seconds=bar_seconds(BarSize(bar_size)),
    )


def _forming(bar: Bar) -> FormingBar:
    return FormingBar(**{f.name: getattr(bar, f.name) for f in dataclasses.fields(bar)})


class _PnLHub(_Hub[PnL]):
    kind = "pnl"
    keep_last = True

    def __init__(self, session: Session, key: Hashable, account: str) -> None:
        super().__init__(session, key)
        self.account = account

    def _open(self) -> Link:
        from ._ib import _market

        return _market.open_pnl(self.session._adapter, self.account, self.deliver)


class _PositionPnLHub(_Hub[PositionPnL]):
    kind = "position_pnl"
    keep_last = True

    def __init__(self, session: Session, key: Hashable, account: str, con_id: int) -> None:
        super().__init__(session, key)
        self.account = account
        self.con_id = con_id

    def _open(self) -> Link:
        from ._ib import _market

        return _market.open_position_pnl(
            self.session._adapter, self.account, self.con_id, self.deliver
        )


class _TapLink:
    """A listener on data the session already subscribes to: no IB request of its own."""

    def __init__(self, req_id: int, detach: Callable[[], None]) -> None:
        self.req_id = req_id
        self._detach: Callable[[], None] | None = detach

    def cancel(self, send: bool) -> None:
        detach, self._detach = self._detach, None
        if detach is not None:
            detach()


class _AccountValueHub(_Hub[AccountValue]):
    """Account values that changed, from the session's account subscriptions."""

    kind = "account_updates"
    lazy_gap = True

    def __init__(self, session: Session, key: Hashable, account: str | None) -> None:
        super().__init__(session, key)
        self.account = account
        self.seen: dict[tuple[str, str, str | None, str | None], str] = {}

    def _open(self) -> Link:
        from ._ib import _market

        detach = _market.tap_account_values(self.session._adapter, self.on_value)
        return _TapLink(next(_state(self.session).tap_ids), detach)

    def on_value(self, value: AccountValue) -> None:
        if self.account is not None and value.account != self.account:
            return
        if self.gap_start is not None:
            self._gap_on_data()  # before the check below: the re-sent values are news again
        # TWS reports each value through both account subscriptions the session holds.
        key = (value.account, value.tag, value.currency, value.model_code)
        if self.seen.get(key) == value.value:
            return
        self.seen[key] = value.value
        self.deliver(value)

    def _on_gap(self) -> None:
        self.seen.clear()


class _PositionHub(_Hub[Position]):
    kind = "position_updates"
    lazy_gap = True

    def __init__(self, session: Session, key: Hashable, account: str | None) -> None:
        super().__init__(session, key)
        self.account = account

    def _open(self) -> Link:
        from ._ib import _market

        detach = _market.tap_positions(self.session._adapter, self.on_position)
        return _TapLink(next(_state(self.session).tap_ids), detach)

    def on_position(self, position: Position) -> None:
        if self.account is None or position.account == self.account:
            self.deliver(position)


# -- argument checks -------------------------------------------------------------------------------


_DEFAULT = SESSION_DEFAULT

_PERIODS: Final[dict[str, str]] = {
    "5s": "5 secs",
    "10s": "10 secs",
    "15s": "15 secs",
    "30s": "30 secs",
    "1m": "1 min",
    "2m": "2 mins",
    "3m": "3 mins",
    "5m": "5 mins",
    "10m": "10 mins",
    "15m": "15 mins",
    "20m": "20 mins",
    "30m": "30 mins",
    "1h": "1 hour",
    "2h": "2 hours",
    "3h": "3 hours",
    "4h": "4 hours",
    "8h": "8 hours",
    "1d": "1 day",
    "1w": "1 week",
}
_IB_PERIODS: Final = frozenset(_PERIODS.values())
_LOOKBACK = re.compile(r"^\s*(\d+)\s*([SDWMYsdwmy])\s*$")
_BAR_WHATS: Final = ("TRADES", "MIDPOINT", "BID", "ASK")


def _check_contract(contract: object) -> Contract:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"expected an ibflow contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )
    return contract


def _check_account(account: object) -> str | None:
    if account is not None and (not isinstance(account, str) or not account.strip()):
        raise InvalidRequest(f"account must be an account id like 'DU1234567', got {account!r}")
    return account.strip() if isinstance(account, str) else None


def _check_tick_kind(kind: object) -> TickKind:
    if isinstance(kind, str) and kind.lower() in TickKind.__members__.values():
        return TickKind(kind.lower())
    allowed = ", ".join(repr(k.value) for k in TickKind)
    raise InvalidRequest(f"kind must be one of {allowed}; got {kind!r}")


def _check_what(what: object) -> str:
    if isinstance(what, str) and what.upper() in _BAR_WHATS:
        return what.upper()
    raise InvalidRequest(f"what must be one of {', '.join(_BAR_WHATS)}; got {what!r}")


def _check_period(period: object) -> str:
    if isinstance(period, str):
        text = " ".join(period.split())
        if text.lower() in _PERIODS:
            return _PERIODS[text.lower()]
        if text in _IB_PERIODS:
            return text
    allowed = ", ".join(_PERIODS)
    raise InvalidRequest(
        f"period must be one of {allowed} (or IB's spelling such as '5 mins'); got {period!r}. "
        "Live bars need at least 5 seconds."
    )


def _check_lookback(lookback: object) -> str:
    match = _LOOKBACK.match(lookback) if isinstance(lookback, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise InvalidRequest(
            f"lookback must be an IB duration such as '3600 S', '1 D', '2 W', '1 M' or '1 Y'; "
            f"got {lookback!r}"
        )
    return f"{int(match.group(1))} {match.group(2).upper()}"


def _check_timeout(session: Session, timeout: object) -> float | None:
    return resolve_timeout(timeout, session._timeout)


def _check_market_data_type(kind: object) -> MarketDataType:
    if isinstance(kind, str) and kind.lower() in MarketDataType.__members__.values():
        return MarketDataType(kind.lower())
    allowed = ", ".join(repr(k.value) for k in MarketDataType)
    raise InvalidRequest(f"market data type must be one of {allowed}; got {kind!r}")


def _default_account(session: Session, account: str | None) -> str:
    if account is not None:
        return account
    if session._config.account is not None:
        return session._config.account
    accounts = session.accounts
    if len(accounts) == 1:
        return accounts[0]
    raise InvalidRequest(
        f"this login manages {len(accounts)} accounts; pass account= (one of {', '.join(accounts)})"
    )


async def _resolve(session: Session, contract: Contract, timeout: float | None) -> Contract:
    """The contract with its con_id: streams are shared and routed by con_id.

    ``qualify`` caches per session and serializes lookups under the session's pacer.
    """
    if contract.con_id is not None:
        return contract
    [qualified] = await session.qualify(contract, timeout=timeout)
    return qualified


def _where(contract: Contract | None) -> tuple[int | None, str | None]:
    """What makes two market-data requests the same: the instrument and where it is quoted."""
    if contract is None:
        return None, None
    return contract.con_id, contract.exchange


def _subscribe(
    session: Session,
    *,
    name: str,
    buffer: int,
    overflow: Overflow | str,
    key: Callable[[Contract | None, str | None], Hashable],
    make_hub: Callable[[Contract | None, str | None, Hashable], _Hub[Any]],
    contract: Contract | None = None,
    account: str | None = None,
    needs_account: bool = False,
    before_open: Callable[[Contract], Awaitable[None]] | None = None,
) -> Stream[Any]:
    """A stream whose ``start`` joins (or opens) the hub under ``key``.

    The hooks hold the stream only weakly, so a stream dropped while open is collected and
    released by its finalizer.
    """
    joined: list[_Hub[Any]] = []
    ref: weakref.ref[Stream[Any]]

    async def start() -> None:
        session._require_ready()
        resolved = await _resolve(session, contract, session._timeout) if contract else None
        session._require_ready()
        acct = _default_account(session, account) if needs_account else account
        hub_key = key(resolved, acct)
        state = _state(session)
        hub = state.hubs.get(hub_key)
        if hub is None or hub.closed:
            if before_open is not None and resolved is not None:
                await before_open(resolved)
                hub = state.hubs.get(hub_key)  # another consumer may have opened it meanwhile
        if hub is None or hub.closed:
            hub = make_hub(resolved, acct, hub_key)
            hub.start()
            state.hubs[hub_key] = hub
        joined.append(hub)
        hub.add(ref)

    def release() -> None:
        if joined:
            joined[0].remove(ref)

    stream: Stream[Any] = Stream(
        name=name, buffer=buffer, overflow=overflow, start=start, on_close=release
    )
    ref = weakref.ref(stream)
    return stream


def _as_session(api: object) -> Session:
    """The mixin's ``self`` is always the Session that inherits it."""
    return api  # type: ignore[return-value]


# -- the session methods ---------------------------------------------------------------------


class StreamsAPI:
    """Session methods for this feature; ``Session`` inherits them."""

    def quotes(
        self,
        contract: Contract,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[Quote | Gap]:
        """Live quotes of ``contract`` as immutable :class:`Quote` snapshots.

        ``async with session.quotes(contract) as quotes: async for quote in quotes: ...``.
        One market-data line per contract however many consumers; a :class:`Gap` item marks a
        reconnect. Default policy ``"latest"``: a slow reader skips to the newest quote.

        Args:
            contract: what to quote; qualified (``con_id`` looked up) on entering the block.
            buffer: how many quotes may wait for this consumer.
            overflow: what a full buffer does: ``"latest"``, ``"drop_oldest"`` or ``"error"``.

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            MarketDataError: from the iterator, when IB refuses the data (354, 10089, 101…).
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        c = _check_contract(contract)
        return _subscribe(
            session,
            name=f"quotes {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda r, _a: ("quotes", *_where(r)),
            make_hub=lambda r, _a, k: _QuoteHub(session, k, r),  # type: ignore[arg-type]
        )

    async def quote(self, contract: Contract, *, timeout: float | None = _DEFAULT) -> Quote:
        """One snapshot quote of ``contract`` (``reqMktData`` with ``snapshot=True``).

        Raises:
            InvalidRequest: a bad argument (nothing sent).
            ContractNotFound / AmbiguousContract: the contract is unknown or ambiguous.
            MarketDataError: IB refused the data (354, 10089, 10168…).
            RequestTimeout: no complete snapshot within ``timeout``.
            ConnectionLost: the link dropped before the answer.
        """
        session = _as_session(self)
        from ._ib import _market

        c = _check_contract(contract)
        limit = _check_timeout(session, timeout)
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        resolved = await _resolve(session, c, limit)
        _ensure_market_data_type(session)
        remaining = None if deadline is None else max(deadline - loop.time(), 0.001)
        adapter = session._adapter
        return await session._request(
            f"quote snapshot for {c.display_name}",
            lambda: _market.start_snapshot(adapter, resolved),
            timeout=remaining,
            cancel=lambda rid: _market.cancel_mkt_data(adapter, rid),
        )

    @overload
    def ticks(
        self,
        contract: Contract,
        kind: Literal["last", "all_last", TickKind.LAST, TickKind.ALL_LAST] = ...,
        *,
        buffer: int = ...,
        overflow: Overflow | str = ...,
    ) -> Stream[TradeTick | Gap]: ...

    @overload
    def ticks(
        self,
        contract: Contract,
        kind: Literal["bid_ask", TickKind.BID_ASK],
        *,
        buffer: int = ...,
        overflow: Overflow | str = ...,
    ) -> Stream[BidAskTick | Gap]: ...

    @overload
    def ticks(
        self,
        contract: Contract,
        kind: Literal["midpoint", TickKind.MIDPOINT],
        *,
        buffer: int = ...,
        overflow: Overflow | str = ...,
    ) -> Stream[MidpointTick | Gap]: ...

    def ticks(
        self,
        contract: Contract,
        kind: str = "last",
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.DROP_OLDEST,
    ) -> Stream[Any]:
        """Tick-by-tick data: trades (``"last"``, ``"all_last"``), ``"bid_ask"`` or
        ``"midpoint"``, one item per tick, shared per contract and kind.

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            MarketDataError / RequestError: from the iterator, when IB refuses the request.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        c = _check_contract(contract)
        tick_kind = _check_tick_kind(kind)
        return _subscribe(
            session,
            name=f"{tick_kind.value} ticks {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda r, _a: ("ticks", *_where(r), tick_kind),
            make_hub=lambda r, _a, k: _TickHub(session, k, r, tick_kind),  # type: ignore[arg-type]
            # IB allows one tick-by-tick request per instrument per 15 s: wait, don't trip it.
            before_open=lambda r: pacer_for(session).tick_by_tick(r.con_id or 0),
        )

    def realtime_bars(
        self,
        contract: Contract,
        what: str = "TRADES",
        *,
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]:
        """IB's 5-second real-time bars; after a reconnect the missed bars are backfilled.

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            RequestError: from the iterator, when IB refuses the request.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` bars behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        c = _check_contract(contract)
        what_ = _check_what(what)
        if not isinstance(rth, bool):
            raise InvalidRequest(f"rth must be True or False, got {rth!r}")
        return _subscribe(
            session,
            name=f"real-time bars {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda r, _a: ("realtime_bars", *_where(r), what_, rth),
            make_hub=lambda r, _a, k: _RealtimeBarHub(session, k, r, what_, rth),  # type: ignore[arg-type]
        )

    def live_bars(
        self,
        contract: Contract,
        period: str = "1m",
        lookback: str = "1 D",
        include_forming: bool = False,
        *,
        what: str = "TRADES",
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]:
        """Bars of ``period`` that keep coming (history with keepUpToDate).

        First the ``lookback`` history's completed bars, then each bar as it completes. With
        ``include_forming=True`` the bar in progress is also yielded, as a :class:`FormingBar`,
        on every update. After a reconnect the bars of the gap come from the new history.
        The buffer grows to hold the initial history. IB counts the request as a historical
        one, open until the stream closes: entering the block waits for a slot under the
        session's historical pacing, as ``history()`` and ``download()`` do.

        Args:
            contract: the instrument.
            period: the bar length: ``"5s"`` … ``"30s"``, ``"1m"``, ``"5m"``, ``"15m"``,
                ``"1h"``, ``"1d"``, ``"1w"`` (or IB's spelling, ``"5 mins"``).
            lookback: how much history comes first, as an IB duration (``"1 D"``, ``"3600 S"``).
            include_forming: also yield the bar in progress, as :class:`FormingBar` items.
            what: ``"TRADES"``, ``"MIDPOINT"``, ``"BID"`` or ``"ASK"``.
            rth: regular trading hours only.
            buffer: how many bars may wait for this consumer (after the history).
            overflow: what a full buffer does (default ``"error"``: bars are never dropped).

        Raises:
            InvalidRequest: a bad argument (at once, nothing sent).
            ContractNotFound / AmbiguousContract: on entering the block.
            RequestError / PacingViolation: from the iterator, when IB refuses the request.
            RequestTimeout: from the iterator, when the history does not come in time.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` bars behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        c = _check_contract(contract)
        bar_size = _check_period(period)
        duration = _check_lookback(lookback)
        what_ = _check_what(what)
        if not isinstance(include_forming, bool) or not isinstance(rth, bool):
            raise InvalidRequest("include_forming and rth must be True or False")
        # Every consumer opens its own request, so the slot taken here is the hub's.
        taken: list[_Ticket] = []

        async def take_slot(resolved: Contract) -> None:
            key = _live_key(resolved, bar_size, duration, what_, rth)
            taken.append(await pacer_for(session).acquire(key))

        return _subscribe(
            session,
            name=f"{bar_size} live bars {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda _r, _a: ("live_bars", object()),  # one request per consumer
            # A keepUpToDate request is a historical request to IB's pacing rules.
            before_open=take_slot,
            make_hub=lambda r, _a, k: _LiveBarHub(
                session,
                k,
                r,  # type: ignore[arg-type]
                bar_size=bar_size,
                lookback=duration,
                what=what_,
                rth=rth,
                include_forming=include_forming,
                ticket=taken.pop() if taken else None,
            ),
        )

    def pnl_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PnL | Gap]:
        """The account's daily, unrealized and realized PnL, as TWS updates it (``reqPnL``).

        ``account`` defaults to the session's account, or its only one.

        Raises:
            InvalidRequest: a bad argument, or several accounts and no ``account``.
            RequestError: from the iterator, when IB refuses the request (unknown account).
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        acct = _check_account(account)
        return _subscribe(
            session,
            name=f"PnL {acct or 'default account'}",
            buffer=buffer,
            overflow=overflow,
            account=acct,
            needs_account=True,
            key=lambda _r, a: ("pnl", a),
            make_hub=lambda _r, a, k: _PnLHub(session, k, a),  # type: ignore[arg-type]
        )

    def position_pnl_updates(
        self,
        contract: Contract,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PositionPnL | Gap]:
        """One position's PnL as TWS updates it (``reqPnLSingle``).

        Raises:
            InvalidRequest: a bad argument, or several accounts and no ``account``.
            ContractNotFound / AmbiguousContract: on entering the block.
            RequestError: from the iterator, when IB refuses the request.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        c = _check_contract(contract)
        acct = _check_account(account)
        return _subscribe(
            session,
            name=f"position PnL {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            account=acct,
            needs_account=True,
            key=lambda r, a: ("position_pnl", a, r.con_id if r else None),
            make_hub=lambda r, a, k: _PositionPnLHub(
                session,
                k,
                a,  # type: ignore[arg-type]
                r.con_id if r and r.con_id else 0,
            ),
        )

    def account_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[AccountValue | Gap]:
        """Account values as they change (every account, or only ``account``).

        Rides on the account subscriptions the session keeps anyway, so it sends nothing. A
        value is yielded when it changes; after a :class:`Gap`, every value TWS re-sends.

        Raises:
            InvalidRequest: a bad argument.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` values behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        acct = _check_account(account)
        return _subscribe(
            session,
            name=f"account updates {acct or 'all accounts'}",
            buffer=buffer,
            overflow=overflow,
            account=acct,
            key=lambda _r, a: ("account_updates", a),
            make_hub=lambda _r, a, k: _AccountValueHub(session, k, a),
        )

    def position_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Position | Gap]:
        """Positions as they change (every account, or only ``account``); a closed position
        arrives with ``quantity`` 0. Rides on the session's own ``reqPositions``.

        Raises:
            InvalidRequest: a bad argument.
            SlowConsumer: from the iterator, when the reader fell ``buffer`` positions behind.
            ConnectionLost: from the iterator, when the link drops and reconnect is off.
        """
        session = _as_session(self)
        acct = _check_account(account)
        return _subscribe(
            session,
            name=f"position updates {acct or 'all accounts'}",
            buffer=buffer,
            overflow=overflow,
            account=acct,
            key=lambda _r, a: ("position_updates", a),
            make_hub=lambda _r, a, k: _PositionHub(session, k, a),
        )

    async def set_market_data_type(
        self, kind: MarketDataType | str, *, timeout: float | None = _DEFAULT
    ) -> None:
        """Choose live, frozen, delayed or delayed-frozen data for quotes requested from now on.

        Each :class:`Quote` says which type it carries. The choice survives reconnects. TWS
        does not answer this request, so it returns once it is sent.

        Raises:
            InvalidRequest: an unknown ``kind`` (nothing sent).
            ConnectionLost / SessionClosedError: the session is not connected.
        """
        session = _as_session(self)
        from ._ib import _market

        chosen = _check_market_data_type(kind)
        _check_timeout(session, timeout)
        session._require_ready()
        code = _MARKET_DATA_CODES[chosen]
        _market.send_market_data_type(session._adapter, code)
        state = _state(session)
        state.md_type = code
        state.md_epoch = _epoch(session)
