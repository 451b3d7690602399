"""Market-data subscriptions at ib_async's level, and the conversions out of its objects.

ib_async files every ticker under ``hash(contract)``, so two requests for one contract share a
mutable ``Ticker`` whose fields change under any reader; it also keeps every request's
bookkeeping forever and hands bars out as ever-growing lists. ibflow's streams need the
opposite: one private ``Ticker`` per request (so quote, tick-by-tick and snapshot requests on one
contract never see each other's data), request ids they own, bounded memory, and an immutable
snapshot built right inside ib_async's callback with as little work as possible.

Each ``open_*`` function sends one streaming request through ib_async's ``client`` (reusing
ib_async's decoder and ``wrapper`` tables) and returns a :class:`Link`: the request id the
session routes errors by, and ``cancel(send)`` which detaches the callback, sends IB's cancel
when told to, and drops ib_async's bookkeeping for that id. ``emit`` callbacks run inside
ib_async's socket handler and must never block.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import ib_async
from ib_async.objects import BarDataList, RealTimeBarList

from .._log import get_logger
from .._records.account import AccountValue, PnL, Position, PositionPnL
from .._records.contracts import Bar, Contract, SecType
from .._records.market import (
    MARKET_DATA_TYPES,
    BidAskTick,
    MarketDataType,
    MidpointTick,
    Quote,
    TradeTick,
    new_quote,
)
from ._account import account_value_from_ib, pnl_from_ib, pnl_single_from_ib, position_from_ib
from ._bars import bar_from_ib, realtime_bar_from_ib
from ._contracts import contract_to_ib
from ._errors import map_ib_errors
from ._errors import undo_on_error as _undo_on_error
from ._fastpath import track_ticker, untrack_ticker
from ._options import greeks_from

__all__ = [
    "Link",
    "MarketPort",
    "ValueGuard",
    "quote_from_ticker",
]

log = get_logger("market")

_LATE_GRACE = 10.0  # s to keep a cancelled ticker's id known, so late ticks are not logged
_MARKET_DATA_TYPES = MARKET_DATA_TYPES
_LIVE = MarketDataType.LIVE
_TBT_TYPES = {"last": "Last", "all_last": "AllLast", "bid_ask": "BidAsk", "midpoint": "MidPoint"}


class Link:
    """One streaming request: its id, and the one way to stop it."""

    __slots__ = ("_stop", "req_id")

    def __init__(self, req_id: int, stop: Callable[[bool], None]) -> None:
        self.req_id = req_id
        self._stop: Callable[[bool], None] | None = stop

    def cancel(self, send: bool) -> None:
        """Detach from ib_async; with ``send``, also send IB's cancel. Only the first call acts."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop(send)


def _new_req_id(ib: ib_async.IB, what: str) -> int:
    with map_ib_errors(what):
        return int(ib.client.getReqId())


def _pop_if(table: dict[Any, Any], key: Any, value: Any) -> None:
    """Remove ``table[key]`` only if it is still ours: ids are reused after a reconnect."""
    if table.get(key) is value:
        del table[key]


def _forget_ticker(ib: ib_async.IB, req_id: int, ticker: ib_async.Ticker) -> None:
    # The table object is captured now: after a reconnect ib_async replaces it, and the old
    # one (with our entry) is simply dropped.
    wrapper = ib.wrapper
    table = wrapper.reqId2Ticker
    _pop_if(wrapper._reqId2Contract, req_id, ticker.contract)
    try:
        asyncio.get_running_loop().call_later(_LATE_GRACE, _pop_if, table, req_id, ticker)
    except RuntimeError:
        _pop_if(table, req_id, ticker)


def _price(value: float) -> float | None:
    # NaN is ib_async's "never sent"; -1 is IB's (and ib_async's) "no price on this side".
    return None if value != value or value == -1.0 else value


def _size(value: float) -> float | None:
    return None if value != value else value


# -- quotes ------------------------------------------------------------------------------------


class ValueGuard:
    """Counts (and logs, sparingly) values from TWS no market can have, replaced by ``None``."""

    __slots__ = ("rejected",)

    def __init__(self) -> None:
        self.rejected = 0

    def reject(self, contract: Contract, fields: list[str], values: list[float]) -> None:
        self.rejected += len(fields)
        if self.rejected <= _LOGGED_REJECTS or self.rejected % 1000 < len(fields):
            shown = ", ".join(f"{f}={v!r}" for f, v in zip(fields, values, strict=True))
            log.warning(
                "impossible quote values for %s from TWS, shown as None: %s (%d so far)",
                contract.display_name,
                shown,
                self.rejected,
            )


_LOGGED_REJECTS = 20
_MAX = sys.float_info.max
# Prices that may go below zero (spreads, a future's settlement); a stock's cannot.
_SIGNED_PRICES = frozenset({SecType.FUTURE, SecType.INDEX, SecType.CFD, SecType.COMMODITY})
_QUOTE_VALUES = (
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
)
_PRICE_COUNT = 3  # bid, ask, last: then sizes and volume, then open/high/low/close


def _screen(
    values: list[float | None], floor: float, contract: Contract, guard: ValueGuard
) -> None:
    """Replace non-finite or impossible values by None in place (the rare path)."""
    fields: list[str] = []
    bad: list[float] = []
    for n, v in enumerate(values):
        if v is None:
            continue
        low = 0.0 if _PRICE_COUNT <= n < _PRICE_COUNT + 4 else floor
        if not low <= v < _MAX:
            values[n] = None
            if v != _MAX:  # the largest double is TWS's "unset", not a wrong value
                fields.append(_QUOTE_VALUES[n])
                bad.append(v)
    if fields:
        guard.reject(contract, fields, bad)


def quote_from_ticker(
    ticker: ib_async.Ticker, contract: Contract, guard: ValueGuard | None = None
) -> Quote:
    """An immutable snapshot of ``ticker`` (built inside ib_async's callback: keep it lean).

    Values no market can have (infinite, NaN sizes, a negative stock price or size) become
    ``None`` and are counted in ``guard``; IB's own "none" markers (-1, NaN) are just ``None``.
    """
    t = ticker
    bid: float | None = t.bid
    ask: float | None = t.ask
    last: float | None = t.last
    bid_size: float | None = t.bidSize
    ask_size: float | None = t.askSize
    last_size: float | None = t.lastSize
    if bid != bid or bid == -1.0:
        bid = bid_size = None
    elif bid_size != bid_size:
        bid_size = None
    if ask != ask or ask == -1.0:
        ask = ask_size = None
    elif ask_size != ask_size:
        ask_size = None
    if last != last or last == -1.0:
        last = last_size = None
    elif last_size != last_size:
        last_size = None
    volume: float | None = t.volume
    if volume != volume:
        volume = None
    open_: float | None = t.open
    if open_ != open_ or open_ == -1.0:
        open_ = None
    high: float | None = t.high
    if high != high or high == -1.0:
        high = None
    low: float | None = t.low
    if low != low or low == -1.0:
        low = None
    close: float | None = t.close
    if close != close or close == -1.0:
        close = None
    floor = -_MAX if contract.sec_type in _SIGNED_PRICES else 0.0
    # One cheap pass for the common case: every value present is finite and in range.
    if not (
        (bid is None or floor <= bid < _MAX)
        and (ask is None or floor <= ask < _MAX)
        and (last is None or floor <= last < _MAX)
        and (bid_size is None or 0.0 <= bid_size < _MAX)
        and (ask_size is None or 0.0 <= ask_size < _MAX)
        and (last_size is None or 0.0 <= last_size < _MAX)
        and (volume is None or 0.0 <= volume < _MAX)
        and (open_ is None or floor <= open_ < _MAX)
        and (high is None or floor <= high < _MAX)
        and (low is None or floor <= low < _MAX)
        and (close is None or floor <= close < _MAX)
    ):
        values: list[float | None] = [
            bid,
            ask,
            last,
            bid_size,
            ask_size,
            last_size,
            volume,
            open_,
            high,
            low,
            close,
        ]
        _screen(values, floor, contract, guard or ValueGuard())
        bid, ask, last, bid_size, ask_size, last_size, volume, open_, high, low, close = values
    halted = t.halted
    model, bid_g, ask_g, last_g = t.modelGreeks, t.bidGreeks, t.askGreeks, t.lastGreeks
    return new_quote(
        contract,
        t.time or datetime.now(UTC),
        bid,
        ask,
        last,
        bid_size,
        ask_size,
        last_size,
        volume,
        open_,
        high,
        low,
        close,
        _MARKET_DATA_TYPES.get(t.marketDataType, _LIVE),
        halted == halted and halted > 0,
        None if model is None else greeks_from(model),
        None if bid_g is None else greeks_from(bid_g),
        None if ask_g is None else greeks_from(ask_g),
        None if last_g is None else greeks_from(last_g),
    )


# -- tick-by-tick ------------------------------------------------------------------------------


# -- bars --------------------------------------------------------------------------------------


def _history_list(
    req_id: int,
    ib_contract: ib_async.Contract,
    duration: str,
    bar_size: str,
    what: str,
    rth: bool,
    keep_up: bool,
) -> BarDataList:
    bars = BarDataList()
    bars.reqId = req_id
    bars.contract = ib_contract
    bars.endDateTime = ""
    bars.durationStr = duration
    bars.barSizeSetting = bar_size
    bars.whatToShow = what
    bars.useRTH = rth
    bars.formatDate = 2
    bars.keepUpToDate = keep_up
    bars.chartOptions = []
    return bars


def _converted(rows: list[Any]) -> list[Bar]:
    out: list[Bar] = []
    for row in rows:
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            out.append(bar_from_ib(row))
    return out


# -- PnL ---------------------------------------------------------------------------------------


# -- account events the session already subscribes to -------------------------------------------


class MarketPort:
    """Market-data subscriptions and snapshots on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected
        self.guard = ValueGuard()

    def open_quotes(self, contract: Contract, emit: Callable[[Quote], None]) -> Link:
        """``reqMktData`` (streaming) with a private ``Ticker``; ``emit`` gets one Quote per batch.

        ib_async applies a whole TCP read to the ticker, then fires its update event once: that is
        where the snapshot is built, so a burst of ticks costs one Quote, not one per tick.
        """
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqMktData")
        ib_contract = contract_to_ib(contract)
        ticker = ib_async.Ticker(contract=ib_contract, defaults=wrapper.defaults)

        guard = self.guard

        def on_update(t: ib_async.Ticker) -> None:
            emit(quote_from_ticker(t, contract, guard))

        def stop(send: bool) -> None:
            ticker.updateEvent -= on_update
            untrack_ticker(ib.client, req_id, ticker)
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelMktData(req_id)
            _forget_ticker(ib, req_id, ticker)

        ticker.updateEvent += on_update
        wrapper.reqId2Ticker[req_id] = ticker
        wrapper._reqId2Contract[req_id] = ib_contract
        # The ticker is private to this stream and its ``ticks`` list is never read, which is
        # what tracking asks for.
        track_ticker(ib.client, req_id, ticker)
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqMktData"):
            ib.client.reqMktData(req_id, ib_contract, "", False, False, [])
        return Link(req_id, stop)

    def start_snapshot(self, contract: Contract) -> tuple[int, Awaitable[Quote]]:
        """``reqMktData`` with ``snapshot=True``; the answer is the Quote at ``tickSnapshotEnd``.

        Returns ``(req_id, answer)`` for ``Session._request``; cancel with :func:`cancel_mkt_data`.
        """
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "market data snapshot")
        ib_contract = contract_to_ib(contract)
        ticker = ib_async.Ticker(contract=ib_contract, defaults=wrapper.defaults)
        wrapper.reqId2Ticker[req_id] = ticker
        done = wrapper.startReq(req_id, ib_contract)

        def forget() -> None:
            _pop_if(wrapper._futures, req_id, done)
            wrapper._results.pop(req_id, None)
            _forget_ticker(ib, req_id, ticker)

        with _undo_on_error(forget), map_ib_errors("market data snapshot"):
            ib.client.reqMktData(req_id, ib_contract, "", True, False, [])

        async def run() -> Quote:
            try:
                await done
            finally:
                forget()
            return quote_from_ticker(ticker, contract, self.guard)

        return req_id, run()

    def cancel_mkt_data(self, req_id: int) -> None:
        """``cancelMktData`` for a request abandoned on timeout or cancellation."""
        with contextlib.suppress(Exception):
            self._ib.client.cancelMktData(req_id)

    def send_market_data_type(self, code: int) -> None:
        """``reqMarketDataType``: 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""
        with map_ib_errors("reqMarketDataType"):
            self._ib.client.reqMarketDataType(code)

    def open_ticks(
        self,
        contract: Contract,
        kind: str,
        emit: Callable[[TradeTick | BidAskTick | MidpointTick], None],
    ) -> Link:
        """``reqTickByTickData`` for ``kind`` ("last", "all_last", "bid_ask", "midpoint")."""
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqTickByTickData")
        ib_contract = contract_to_ib(contract)
        ticker = ib_async.Ticker(contract=ib_contract, defaults=wrapper.defaults)

        def on_update(t: ib_async.Ticker) -> None:
            for tick in t.tickByTicks:
                if isinstance(tick, ib_async.TickByTickAllLast):
                    attrib = tick.tickAttribLast
                    emit(
                        TradeTick(
                            contract=contract,
                            time=tick.time,
                            price=_price(tick.price),
                            size=_size(tick.size),
                            exchange=tick.exchange or None,
                            special_conditions=tick.specialConditions or None,
                            past_limit=bool(attrib and attrib.pastLimit),
                            unreported=bool(attrib and attrib.unreported),
                        )
                    )
                elif isinstance(tick, ib_async.TickByTickBidAsk):
                    ba = tick.tickAttribBidAsk
                    emit(
                        BidAskTick(
                            contract=contract,
                            time=tick.time,
                            bid=_price(tick.bidPrice),
                            ask=_price(tick.askPrice),
                            bid_size=_size(tick.bidSize),
                            ask_size=_size(tick.askSize),
                            bid_past_low=bool(ba and ba.bidPastLow),
                            ask_past_high=bool(ba and ba.askPastHigh),
                        )
                    )
                elif isinstance(tick, ib_async.TickByTickMidPoint):
                    emit(MidpointTick(contract=contract, time=tick.time, midpoint=tick.midPoint))

        def stop(send: bool) -> None:
            ticker.updateEvent -= on_update
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelTickByTickData(req_id)
            _forget_ticker(ib, req_id, ticker)

        ticker.updateEvent += on_update
        wrapper.reqId2Ticker[req_id] = ticker
        wrapper._reqId2Contract[req_id] = ib_contract
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqTickByTickData"):
            ib.client.reqTickByTickData(req_id, ib_contract, _TBT_TYPES[kind], 0, False)
        return Link(req_id, stop)

    def open_realtime_bars(
        self, contract: Contract, what: str, rth: bool, emit: Callable[[Bar], None]
    ) -> Link:
        """``reqRealTimeBars`` (5-second bars); ib_async's bar list is emptied after each update."""
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqRealTimeBars")
        ib_contract = contract_to_ib(contract)
        bars = RealTimeBarList()
        bars.reqId = req_id
        bars.contract = ib_contract
        bars.barSize = 5
        bars.whatToShow = what
        bars.useRTH = rth
        bars.realTimeBarsOptions = []

        def on_update(updated: RealTimeBarList, _has_new: bool) -> None:
            for bar in updated:
                emit(realtime_bar_from_ib(bar))
            updated.clear()  # ib_async would keep every bar of the day

        def stop(send: bool) -> None:
            bars.updateEvent -= on_update
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelRealTimeBars(req_id)
            _pop_if(wrapper.reqId2Subscriber, req_id, bars)
            _pop_if(wrapper._reqId2Contract, req_id, ib_contract)

        bars.updateEvent += on_update
        wrapper.startSubscription(req_id, bars, ib_contract)
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqRealTimeBars"):
            ib.client.reqRealTimeBars(req_id, ib_contract, 5, what, rth, [])
        return Link(req_id, stop)

    def open_live_bars(
        self,
        contract: Contract,
        *,
        bar_size: str,
        duration: str,
        what: str,
        rth: bool,
        on_history: Callable[[list[Bar]], None],
        on_update: Callable[[Bar, bool], None],
    ) -> Link:
        """``reqHistoricalData`` with ``keepUpToDate``: the history, then updates of the last bar.

        ``on_history`` gets the initial bars (the last one still forming); ``on_update(bar,
        new)`` gets every update of the forming bar, ``new=True`` when a new bar began (the
        previous one is then complete). Each callback runs at most as often as IB sends.
        """
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqHistoricalData")
        ib_contract = contract_to_ib(contract)
        bars = _history_list(req_id, ib_contract, duration, bar_size, what, rth, keep_up=True)
        answer = wrapper.startReq(req_id, ib_contract, container=bars)
        live = True
        history_sent = False

        def send_history() -> None:
            # ib_async ends the request inside the frame that carries the history, but the
            # future's callbacks run a moment later: updates read in the same chunk land in
            # ``bars`` first. Whichever comes first hands over the whole list (an update that
            # began a new bar has completed the last historical one), then trims it.
            nonlocal history_sent
            history_sent = True
            on_history(_converted(list(bars)))
            del bars[:-1]  # ib_async compares updates with the last bar only

        def history_done(fut: asyncio.Future[Any]) -> None:
            if live and not history_sent and not fut.cancelled() and fut.exception() is None:
                send_history()

        def updated(_bars: BarDataList, has_new: bool) -> None:
            if not bars or not live:
                return
            if not history_sent:
                if answer.done() and not answer.cancelled() and answer.exception() is None:
                    send_history()  # this update is part of what it delivers
                return  # before the end of the history, an update only extends it
            converted = _converted(bars[-1:])
            if converted:
                on_update(converted[0], has_new)
            if len(bars) > 1:
                del bars[:-1]

        def stop(send: bool) -> None:
            nonlocal live
            live = False
            bars.updateEvent -= updated
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelHistoricalData(req_id)
            _pop_if(wrapper._futures, req_id, answer)
            wrapper._results.pop(req_id, None)
            _pop_if(wrapper.reqId2Subscriber, req_id, bars)
            _pop_if(wrapper._reqId2Contract, req_id, ib_contract)
            if not answer.done():
                answer.cancel()

        answer.add_done_callback(history_done)
        bars.updateEvent += updated
        wrapper.startSubscription(req_id, bars, ib_contract)
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqHistoricalData"):
            ib.client.reqHistoricalData(
                req_id, ib_contract, "", duration, bar_size, what, rth, 2, True, []
            )
        return Link(req_id, stop)

    def fetch_bars(
        self,
        contract: Contract,
        *,
        duration: str,
        bar_size: str,
        what: str,
        rth: bool,
        done: Callable[[list[Bar] | None], None],
    ) -> Link:
        """A one-off ``reqHistoricalData`` ending now; ``done`` gets the bars, or None on failure.

        Used to backfill a gap; never raises into the callback's caller.
        """
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqHistoricalData")
        ib_contract = contract_to_ib(contract)
        bars = _history_list(req_id, ib_contract, duration, bar_size, what, rth, keep_up=False)
        answer = wrapper.startReq(req_id, ib_contract, container=bars)
        live = True

        def finished(fut: asyncio.Future[Any]) -> None:
            if not live:
                return
            if fut.cancelled() or fut.exception() is not None:
                done(None)
            else:
                done(_converted(list(fut.result())))

        def stop(send: bool) -> None:
            nonlocal live
            live = False
            if send and not answer.done():
                with contextlib.suppress(Exception):
                    ib.client.cancelHistoricalData(req_id)
            _pop_if(wrapper._futures, req_id, answer)
            wrapper._results.pop(req_id, None)
            _pop_if(wrapper._reqId2Contract, req_id, ib_contract)
            if not answer.done():
                answer.cancel()

        answer.add_done_callback(finished)
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqHistoricalData"):
            ib.client.reqHistoricalData(
                req_id, ib_contract, "", duration, bar_size, what, rth, 2, False, []
            )
        return Link(req_id, stop)

    def open_pnl(self, account: str, emit: Callable[[PnL], None]) -> Link:
        """``reqPnL``, registered by request id only (ib_async's one-per-account key is left alone,
        so a one-off ``session.pnl()`` on the same account is unaffected)."""
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqPnL")
        record = ib_async.PnL(account, "")

        def on_update(p: ib_async.PnL) -> None:
            if p is record:
                emit(pnl_from_ib(p))

        def stop(send: bool) -> None:
            ib.pnlEvent -= on_update
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelPnL(req_id)
            _pop_if(wrapper.reqId2PnL, req_id, record)

        wrapper.reqId2PnL[req_id] = record
        ib.pnlEvent += on_update
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqPnL"):
            ib.client.reqPnL(req_id, account, "")
        return Link(req_id, stop)

    def open_position_pnl(
        self, account: str, con_id: int, emit: Callable[[PositionPnL], None]
    ) -> Link:
        """``reqPnLSingle`` for one position, registered by request id only."""
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqPnLSingle")
        record = ib_async.PnLSingle(account, "", con_id)

        def on_update(p: ib_async.PnLSingle) -> None:
            if p is record:
                emit(pnl_single_from_ib(p))

        def stop(send: bool) -> None:
            ib.pnlSingleEvent -= on_update
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelPnLSingle(req_id)
            _pop_if(wrapper.reqId2PnlSingle, req_id, record)

        wrapper.reqId2PnlSingle[req_id] = record
        ib.pnlSingleEvent += on_update
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqPnLSingle"):
            ib.client.reqPnLSingle(req_id, account, "", con_id)
        return Link(req_id, stop)

    def tap_account_values(self, emit: Callable[[AccountValue], None]) -> Callable[[], None]:
        """Listen to account values from the session's own account subscriptions; returns detach."""
        ib = self._ib

        def on_value(value: ib_async.AccountValue) -> None:
            emit(account_value_from_ib(value))

        ib.accountValueEvent += on_value

        def detach() -> None:
            ib.accountValueEvent -= on_value

        return detach

    def tap_positions(self, emit: Callable[[Position], None]) -> Callable[[], None]:
        """Listen to position changes from the session's ``reqPositions``; returns detach.

        Rows of security types ibflow does not model are skipped.
        """
        ib = self._ib

        def on_position(position: ib_async.Position) -> None:
            try:
                converted = position_from_ib(position)
            except ValueError:
                return
            emit(converted)

        ib.positionEvent += on_position

        def detach() -> None:
            ib.positionEvent -= on_position

        return detach
