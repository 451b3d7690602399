"""Hubs: one IB subscription fanned out to every stream that shares it, re-issued after outages."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any, Final, Generic, Protocol, TypeVar

from .._account import Contracts
from .._core import SessionCore
from .._errors import IBFlowError, PacingViolation, RequestError, RequestTimeout
from .._log import get_logger
from .._pacer import IB_SMALL_BAR_SECONDS, HistKey, Ticket
from .._periods import BarSize, bar_seconds
from .._records.account import AccountValue, PnL, Position, PositionPnL
from .._records.contracts import Bar, Contract
from .._records.market import (
    FormingBar,
    Gap,
    Quote,
    Tick,
    TickKind,
)
from .._stream import StreamWriter

__all__ = ["MarketState", "ensure_market_data_type", "epoch_of", "live_key"]

log = get_logger("streams")

T = TypeVar("T")


class MarketState:
    """What the market-data feature keeps per session: shared subscriptions, the data type."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self.core = core
        self.contracts = contracts
        self.hubs: dict[Hashable, _Hub[Any]] = {}
        self.md_type = 1
        self.md_epoch = -1
        self.tap_ids = itertools.count(-1, -1)  # registry keys that can never be a req id


def epoch_of(core: SessionCore) -> int:
    """Which connection the session is on: request ids of an older one mean nothing now."""
    return core.reconnects


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_market_data_type(state: MarketState) -> None:
    """TWS forgets ``reqMarketDataType`` with the connection: re-send it on a new one."""
    core = state.core
    epoch = epoch_of(core)
    if state.md_type != 1 and state.md_epoch != epoch:
        core.adapter.market.send_market_data_type(state.md_type)
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

    def __init__(self, state: MarketState, key: Hashable) -> None:
        self.state = state
        self.core = state.core
        self.key = key
        # Writers never keep their consumer's stream alive: a stream dropped without closing
        # it (a bare ``async for`` left by ``break``) is collected and released here.
        self.streams: list[StreamWriter[T | Gap]] = []
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
        self.core.subscriptions.add(self.req_id, self)

    def _set_link(self, link: Link) -> None:
        self.link = link
        self.req_id = link.req_id
        self.epoch = epoch_of(self.core)

    def add(self, writer: StreamWriter[T | Gap]) -> None:
        self.streams.append(writer)
        if self.last is not None:
            writer.send(self.last)

    def remove(self, writer: StreamWriter[T | Gap]) -> None:
        if self.closed:
            return
        if writer in self.streams:
            self.streams.remove(writer)
        if not self.streams:
            self._shutdown(send=True)

    def _live(self) -> list[StreamWriter[T | Gap]]:
        return [w for w in self.streams if not w.closed]

    def deliver(self, item: T) -> None:
        """One item from IB, to every consumer (called inside ib_async callbacks)."""
        if self.gap_start is not None:
            self._gap_on_data()
        if self.keep_last:
            self.last = item
        for writer in self.streams:
            writer.send(item)

    def _gap_on_data(self) -> None:
        if self.lazy_gap:
            self._gap("the connection to TWS/IB Gateway was lost and re-established")
        elif self.core.state == "ready":
            # Data flows again and the session is READY without having re-subscribed us:
            # TWS regained IB with the data kept (1102). After 1101 or a reconnect the session
            # stays not-READY until every subscription was re-issued.
            self._gap("TWS lost its connection to IB and regained it (1100/1102)")

    def _put_all(self, items: list[T]) -> None:
        """A known backlog (history) for every consumer, never counted as overflow."""
        for stream in self._live():
            stream.grow(len(items) + stream.buffer_size)
            for item in items:
                stream.send(item)

    def _gap(self, reason: str) -> Gap:
        end = _now()
        gap = Gap(start=self.gap_start or end, end=end, reason=reason)
        self.gap_start = None
        self.last = None  # a snapshot from before the outage is stale
        for stream in self._live():
            stream.send_marker(gap)
        self._on_gap()
        return gap

    def _on_gap(self) -> None:
        """Runs right after a Gap went out."""

    def _link_is_current(self) -> bool:
        return self.epoch == epoch_of(self.core) and self.core.adapter.is_connected

    def _shutdown(self, send: bool) -> None:
        if self.closed:
            return
        self.closed = True
        state = self.state
        if state.hubs.get(self.key) is self:
            del state.hubs[self.key]
        self.core.subscriptions.forget(self, self.req_id)
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
                stream.end()
            else:
                stream.fail(error)

    # -- SubscriptionHandler (called by the session) -------------------------------------

    async def resubscribe(self, fresh_link: bool) -> int | None:
        if self.closed:
            return None
        if not self._live():
            self._shutdown(send=False)
            return None
        self._detach(fresh_link)
        self._reopen(fresh_link)
        return self.req_id

    def _detach(self, fresh_link: bool) -> None:
        """Let go of the request of the lost link (cancelling it when TWS still holds it)."""
        old, self.link = self.link, None
        if old is not None:
            old.cancel(not fresh_link and self._link_is_current())
        self._on_shutdown()
        if self.gap_start is None and not self.lazy_gap:
            self.gap_start = _now()  # 1101 without 1100 first

    def _reopen(self, fresh_link: bool) -> None:
        """Send the request again, then mark the Gap (no data can arrive before this returns).

        If it raises (the link dropped again), the session retries later and one Gap spans
        both outages.
        """
        self._before_open()
        self._set_link(self._open())
        if self.gap_start is not None:
            gap = self._gap(
                "the connection to TWS/IB Gateway was lost and re-established; re-subscribed"
                if fresh_link
                else "TWS lost its connection to IB (1100/1101); re-subscribed"
            )
            self._after_gap(gap, fresh_link)

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

    def __init__(self, state: MarketState, key: Hashable, contract: Contract) -> None:
        super().__init__(state, key)
        self.contract = contract

    def _before_open(self) -> None:
        ensure_market_data_type(self.state)

    def _open(self) -> Link:
        return self.core.adapter.market.open_quotes(self.contract, self.deliver)


class _TickHub(_Hub[Tick]):
    kind = "ticks"

    def __init__(
        self, state: MarketState, key: Hashable, contract: Contract, tick_kind: TickKind
    ) -> None:
        super().__init__(state, key)
        self.contract = contract
        self.tick_kind = tick_kind

    def _open(self) -> Link:
        return self.core.adapter.market.open_ticks(
            self.contract, self.tick_kind.value, self.deliver
        )


class _RealtimeBarHub(_Hub[Bar]):
    """5-second bars; after an outage the missing bars come from 5-second history."""

    kind = "realtime_bars"

    def __init__(
        self, state: MarketState, key: Hashable, contract: Contract, what: str, rth: bool
    ) -> None:
        super().__init__(state, key)
        self.contract = contract
        self.what = what
        self.rth = rth
        self.last_time: datetime | None = None
        self.held: deque[Bar] | None = None  # live bars waiting for the backfill
        self.backfill: Link | None = None
        self.timer: asyncio.TimerHandle | None = None

    def _open(self) -> Link:
        return self.core.adapter.market.open_realtime_bars(
            self.contract, self.what, self.rth, self.on_bar
        )

    def on_bar(self, bar: Bar) -> None:
        if self.held is not None:
            self.held.append(bar)
            return
        self.last_time = bar.time
        self.deliver(bar)

    def _after_gap(self, gap: Gap, fresh_link: bool) -> None:
        # Bar times are TWS's clock, gap times ours: ask for a generous window (it is one
        # request either way) and keep only the bars after the last one delivered.
        since = min(self.last_time or gap.start, gap.start)
        seconds = int((_now() - since).total_seconds()) + 10
        seconds = min(max(seconds // 5 * 5 + 5, _BACKFILL_MIN_SECONDS), _BACKFILL_MAX_SECONDS)
        self.held = deque(maxlen=_HELD_MAX)
        try:
            self.backfill = self.core.adapter.market.fetch_bars(
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
        limit = self.core.timeout
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
        state: MarketState,
        key: Hashable,
        contract: Contract,
        *,
        bar_size: str,
        lookback: str,
        what: str,
        rth: bool,
        include_forming: bool,
        ticket: Ticket | None,
    ) -> None:
        super().__init__(state, key)
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
        self.waiter: asyncio.Task[None] | None = None  # a re-subscription waiting its turn
        self.resumed = False  # re-subscribed at least once

    def start(self) -> None:
        try:
            super().start()
        except BaseException:
            self._on_shutdown()  # the slot taken for a request that was never sent
            raise

    def _key(self) -> HistKey:
        return live_key(self.contract, self.bar_size, self.lookback, self.what, self.rth)

    def _before_open(self) -> None:
        if self.ticket is None:
            self.ticket = self.core.pacer.core.admit(self._key())

    async def resubscribe(self, fresh_link: bool) -> int | None:
        """Re-send at once when IB's rules allow it; else wait for the pacer in the background.

        A request for bars of 30 s or less re-sent within 15 s of the last one is refused
        (162), so it waits its turn without holding up the reconnect; the lookback history
        then fills the gap. While it waits, the hub stays registered under a placeholder key,
        so another drop, a close or the next round still reach it.
        """
        if self.closed or not self._live():
            return await super().resubscribe(fresh_link)
        self._detach(fresh_link)
        key = self._key()
        # IB applies its 15 s and burst rules to small bars only; larger ones go at once.
        if key.bar_seconds > IB_SMALL_BAR_SECONDS or self.core.pacer.core.delay(key) <= 0:
            self._reopen(fresh_link)
            return self.req_id
        return self._wait_turn(fresh_link)

    def _wait_turn(self, fresh_link: bool) -> int:
        placeholder = next(self.state.tap_ids)
        self.req_id = placeholder
        self.waiter = asyncio.create_task(
            self._reopen_in_turn(placeholder, fresh_link),
            name=f"ibflow-live-bars-{self.contract.display_name}",
        )
        return placeholder

    async def _reopen_in_turn(self, placeholder: int, fresh_link: bool) -> None:
        pacer = self.core.pacer
        log.info("live bars for %s wait for IB's pacing rules", self.contract.display_name)
        ticket = await pacer.acquire(self._key())
        registry = self.core.subscriptions
        if self.closed or registry.get(placeholder) is not self:
            pacer.release(ticket)  # closed, or a new round of re-subscription has it now
            return
        self.ticket = ticket
        self.waiter = None
        try:
            self._reopen(fresh_link)
        except (ConnectionError, TimeoutError) as exc:
            log.info("live bars for %s wait for the next reconnect: %s", self.contract, exc)
            return  # still registered under the placeholder: the next round re-issues it
        except IBFlowError as exc:
            self._finish(exc)
            return
        registry.remove(placeholder)
        assert self.req_id is not None
        registry.add(self.req_id, self)

    def _after_gap(self, gap: Gap, fresh_link: bool) -> None:
        self.resumed = True

    def on_error(self, error: RequestError) -> None:
        if isinstance(error, PacingViolation) and self.resumed and not self.closed:
            # A re-sent request refused for pacing (another program's requests count too):
            # back off like history does, then try again; the stream goes on.
            pacer = self.core.pacer
            wait = pacer.core.retry_after(self._key())
            pacer.core.violation(wait)
            log.warning(
                "live bars for %s refused for pacing after a reconnect; retrying in %.2f s",
                self.contract.display_name,
                wait,
            )
            registry = self.core.subscriptions
            old_id = self.req_id
            self._detach(fresh_link=True)
            self.gap_start = None  # the Gap already went out; the lookback fills this wait
            if old_id is not None:
                registry.remove(old_id)
            registry.add(self._wait_turn(fresh_link=True), self)
            return
        super().on_error(error)

    def _open(self) -> Link:
        self.forming = None
        link = self.core.adapter.market.open_live_bars(
            self.contract,
            bar_size=self.bar_size,
            duration=self.lookback,
            what=self.what,
            rth=self.rth,
            on_history=self.on_history,
            on_update=self.on_update,
        )
        limit = self.core.timeout
        if limit is not None:
            self.timer = asyncio.get_running_loop().call_later(limit, self._history_timeout)
        return link

    def _history_timeout(self) -> None:
        self.timer = None
        self._finish(
            RequestTimeout(
                f"live bars for {self.contract.display_name}: no history within "
                f"{self.core.timeout} s"
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
        waiter, self.waiter = self.waiter, None
        if waiter is not None and waiter is not asyncio.current_task():
            waiter.cancel()
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            self.core.pacer.release(ticket)


def live_key(contract: Contract, bar_size: str, lookback: str, what: str, rth: bool) -> HistKey:
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

    def __init__(self, state: MarketState, key: Hashable, account: str) -> None:
        super().__init__(state, key)
        self.account = account

    def _open(self) -> Link:
        return self.core.adapter.market.open_pnl(self.account, self.deliver)


class _PositionPnLHub(_Hub[PositionPnL]):
    kind = "position_pnl"
    keep_last = True

    def __init__(self, state: MarketState, key: Hashable, account: str, con_id: int) -> None:
        super().__init__(state, key)
        self.account = account
        self.con_id = con_id

    def _open(self) -> Link:
        return self.core.adapter.market.open_position_pnl(self.account, self.con_id, self.deliver)


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

    def __init__(self, state: MarketState, key: Hashable, account: str | None) -> None:
        super().__init__(state, key)
        self.account = account
        self.seen: dict[tuple[str, str, str | None, str | None], str] = {}

    def _open(self) -> Link:
        detach = self.core.adapter.market.tap_account_values(self.on_value)
        return _TapLink(next(self.state.tap_ids), detach)

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

    def __init__(self, state: MarketState, key: Hashable, account: str | None) -> None:
        super().__init__(state, key)
        self.account = account

    def _open(self) -> Link:
        detach = self.core.adapter.market.tap_positions(self.on_position)
        return _TapLink(next(self.state.tap_ids), detach)

    def on_position(self, position: Position) -> None:
        if self.account is None or position.account == self.account:
            self.deliver(position)
