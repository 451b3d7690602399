"""The public docstrings of the Session's longer methods: contracts, orders, market data, history.

``Session`` keeps one delegating line per method; these texts are what ``help()`` and the docs
show for them, kept here so the class stays readable and within the size rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["documented"]

F = TypeVar("F", bound=Callable[..., Any])

OPTION_CHAIN = """The options listed on ``underlying`` (IB's ``reqSecDefOptParams``).

``chain = await session.option_chain(ibflow.Stock("AAPL"))`` gives the venues, trading
classes, multiplier, expiry dates and strikes, merged over the venues that list them;
``chain.contracts(expiry=..., strikes=..., right="C")`` builds the ``Option`` specs to
qualify, quote or trade. An underlying without options has an empty chain.

Raises:
    InvalidRequest: ``underlying`` is not a contract, or is itself an option.
    ContractNotFound / AmbiguousContract: the underlying is unknown or not unique.
"""

IMPLIED_VOLATILITY = """IB's implied volatility (and greeks) of ``option`` at ``price``, given the
underlying at ``underlying_price`` (``calculateImpliedVolatility``).

A price IB cannot invert (below the intrinsic value) gives ``implied_vol`` ``None``.

Raises:
    InvalidRequest: not an option, or a price that is not a positive number.
    ContractNotFound / AmbiguousContract: the option is unknown or not unique.
    RequestError: IB refused the calculation (321).
"""

OPTION_PRICE = """\
IB's model price (and greeks) of ``option`` at ``volatility`` (0.3 = 30 %), given the
underlying at ``underlying_price`` (``calculateOptionPrice``).

Raises:
    InvalidRequest: not an option, or a value that is not a positive number.
    ContractNotFound / AmbiguousContract: the option is unknown or not unique.
    RequestError: IB refused the calculation (321).
"""

DEPTH = """\
The order book of ``contract`` (level 2) as immutable :class:`OrderBook` snapshots.

``async with session.depth(contract, rows=10) as books: async for book in books: ...``. Each
snapshot holds up to ``rows`` :class:`Level` rows per side, best first, built from TWS's
insert/update/delete operations; a batch of operations gives one snapshot. One subscription
per book however many consumers; default policy ``"latest"``: a slow reader skips to the newest
book. After a reconnect a :class:`Gap` comes first, then the book as TWS sends it afresh.

Args:
    contract: the instrument; qualified on entering the block.
    rows: rows per side (1 to 50).
    smart: SMART depth, aggregated over venues (each row names its venue as
        ``market_maker``); ``False`` asks the contract's own exchange.
    buffer: how many books may wait for this consumer.
    overflow: what a full buffer does: ``"latest"``, ``"drop_oldest"`` or ``"error"``.

Raises:
    InvalidRequest: a bad argument (at once, nothing sent).
    ContractNotFound / AmbiguousContract: on entering the block.
    MarketDataError: from the iterator, when IB refuses the book: 309 (at most 3 depth
        subscriptions at once for the login), 10092 (no depth for this venue: try
        ``smart=True`` or an exchange from :meth:`depth_exchanges`), 354 (no subscription).
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

DEPTH_EXCHANGES = """\
The venues that offer market depth, with IB's service type (``reqMktDepthExchanges``).
"""

HISTORICAL_TICKS = """\
Historical ticks of ``contract``, oldest first: ``count`` of them from ``start`` on, or the
``count`` before ``end`` (give one of the two).

``what`` picks the kind: ``"TRADES"`` gives :class:`TradeTick` items, ``"BID_ASK"``
:class:`BidAskTick`, ``"MIDPOINT"`` :class:`MidpointTick` (times aware, UTC). IB serves at
most 1,000 per request; more are fetched in pages, one after the other, each under the
session's pacer (IB counts them as historical requests), so none is refused for pacing.
Fewer come back when the ticks reach the present.

Args:
    contract: the instrument (qualified on the way, once per session).
    start, end: aware datetimes; exactly one of them.
    count: how many ticks (any positive number; pages of 1,000).
    what: ``"TRADES"``, ``"BID_ASK"`` or ``"MIDPOINT"``.
    rth: regular trading hours only.
    timeout: seconds for each page's answer (the session's timeout by default); the
        pacer's waits are not counted: wrap the call in ``asyncio.timeout()`` to bound it.

Raises:
    InvalidRequest: a bad argument, or both or neither of ``start`` and ``end`` (nothing sent).
    ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
    MarketDataError / RequestError: IB refused (no such data, 162/321).
    PacingViolation: IB kept refusing a page for pacing.
"""

SEARCH = """\
Contracts whose symbol starts with ``pattern`` or whose name holds it (``reqMatchingSymbols``).

``await session.search("appl")`` lists up to 16 :class:`ContractDescription` matches, each
with the derivative types IB has on it. IB allows one search a second: a search within a
second of the previous one waits its turn (the wait counts against ``timeout``).

Raises:
    InvalidRequest: an empty pattern.
    RequestError: IB refused the search (321).
"""

MARKET_RULE = """\
IB's market rule ``rule_id``: the price increment at each price level (``reqMarketRule``).

A contract's rule ids are in ``(await session.contract_details(c))[0].market_rule_ids``;
``rule.increment_at(price)`` is the tick that applies at a price. Rules are cached for the
session.

Raises:
    InvalidRequest: ``rule_id`` is not a non-negative integer.
    RequestError: IB does not know the rule (321).
"""

SCANNER_PARAMETERS = """\
What TWS can scan (``reqScannerParameters``): its scan codes, instruments, locations and
filter codes, parsed into a :class:`ScannerParameters` (the XML itself is kept in ``xml``).

Raises:
    RequestError: TWS refused, or sent text that is not XML.
"""

SCAN = """\
Run one scan and return its results, ranked (rank 0 first).

``await session.scan(ibflow.ScannerSubscription(code="TOP_PERC_GAIN", rows=10,
filters={"priceAbove": 5}))``. The subscription is cancelled once the results are in.

Raises:
    InvalidRequest: not a :class:`ScannerSubscription`.
    RequestError: TWS refused the scan (321: an unknown code, location or filter; 162: too
        many scanner subscriptions at once, IB allows 10).
"""

SCANNER = """\
A scan that keeps running: each item is the full, ranked result list as TWS updates it.

``async with session.scanner(sub) as scans: async for results in scans: ...``. One IB
subscription per identical scan however many consumers; default policy ``"latest"``: a slow
reader skips to the newest list. After a reconnect a :class:`Gap` comes first, then the
re-subscribed scan's results.

Raises:
    InvalidRequest: not a :class:`ScannerSubscription` (at once, nothing sent).
    RequestError: from the iterator, when TWS refuses the scan (321, 162).
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

LIVE_BARS = """\
Bars of ``period`` that keep coming (history with keepUpToDate).

First the ``lookback`` history, then each bar as it completes (and, with
``include_forming``, the bar in progress as :class:`FormingBar` items); after a
reconnect the request is re-sent when IB's pacing allows and the gap's bars come from
its history. Entering the block waits for a slot under the session's pacing.

Args:
    contract: the instrument.
    period: the bar length, spelled as for :meth:`history`; at least 5 seconds.
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


HISTORY = """\
Historical bars for ``contract``, oldest first.

Args:
    contract: what to fetch, e.g. ``ibflow.Stock("AAPL")``.
    period: the bar size: ``"1s"``, ``"5s"`` … ``"1m"``, ``"5m"``, ``"1h"``, ``"1d"``,
        ``"1w"``, ``"1M"`` (month), or IB's spelling (``"5 mins"``, ``"1 hour"``).
    duration: how far back from ``end``: ``"3600 S"``, ``"1 D"``, ``"2 W"``, ``"1 M"``,
        ``"1 Y"``, or a ``timedelta``. IB's step table limits it per period.
    what: ``TRADES``, ``MIDPOINT``, ``BID``, ``ASK``, ``BID_ASK`` … (:class:`WhatToShow`).
    rth: regular trading hours only.
    end: an aware datetime; ``None`` means now.

Returns:
    Bars with aware times in the instrument's time zone (daily bars: midnight of the
    session date). Empty only when IB answers that the window holds no data.

Raises:
    InvalidRequest: a bad argument (nothing was sent); the message says what works.
    PacingViolation: waiting out IB's pacing would pass the timeout (``req_id`` -1:
        nothing was sent); ``retry_after`` says when to try again.
    MarketDataError: IB has no such data (permissions, no data of this kind).
    ContractNotFound, AmbiguousContract: the contract does not resolve to one.
"""


DOWNLOAD = """\
All bars of ``contract`` from ``start`` to ``end``, however many requests it takes.

Cut into IB-legal requests on the instrument's bar grid, served from the cache where it
can, paced, retried with backoff, and resumable (see ``docs/history.md``).

Args:
    contract: what to fetch.
    start: aware datetime, first bar time wanted (inclusive).
    end: aware datetime, exclusive; ``None`` (or a future time) means now.
    period, what, rth: as for :meth:`history` (``what`` not ``ADJUSTED_LAST``).
    progress: show a progress bar (rich) when stderr is a terminal.
    on_progress: called with a :class:`DownloadProgress` after each request.
    cache: ``True`` (the default on-disk cache), ``False``, a :class:`HistoryCache` or
        a directory.
    concurrency: requests in flight at once (1 to 16; the pacer still applies).
    skip_closed: leave out weekend days the instrument's schedule shows closed.
    timeout: seconds for each request's answer; bound the whole download with
        ``asyncio.timeout()``.

Returns:
    Bars with ``start <= time < end``, sorted by time, one per time.

Raises:
    InvalidRequest / ConfigError: a bad argument or cache directory (nothing sent).
    PacingViolation / RequestTimeout: IB kept refusing, or never answered, a request.
    MarketDataError, ContractNotFound, AmbiguousContract, RequestError: IB refused.
    ConnectionLost, SessionClosedError: the session went away.
"""

TRADING_SESSIONS = """\
When ``contract`` trades, as TWS lists it (about a week ahead).

Parsed from the contract details' ``liquidHours`` (``rth=True``, regular hours) or
``tradingHours`` (``rth=False``, all hours) in the contract's own time zone, so each
session's ``open`` and ``close`` are aware datetimes that stay right across a daylight
saving change. Days TWS lists as closed (holidays, weekends) have no session.

Args:
    contract: the instrument (qualified on the way, once per session).
    start, end: only sessions overlapping ``[start, end)`` (aware datetimes).
    rth: regular trading hours (``liquidHours``) or all hours (``tradingHours``).

Raises:
    InvalidRequest: a bad argument (naive datetimes included).
    ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
    RequestError: TWS sent no readable schedule for it.
"""


TRADES = """The orders this session follows, oldest first: all live ones, the latest done ones.

Besides the orders it placed, the session adopts the open orders TWS reports: always this client
id's (a bot restarted with the same id can cancel and modify them), every other client id's with
``all_open_orders=True`` (``trade.owned`` is then ``False``). Done orders beyond the session's
``max_finished_trades`` are dropped, oldest first.
"""

CANCEL_ORDER = """Cancel this client id's open order by id, also one an earlier run placed; returns
its final status (``OrderRejected`` 10147: no such open order; see ``docs/orders.md``)."""

FILLS = """Executions of the account (every client id), with their commission reports.

Args:
    since: only executions at or after this aware datetime (TWS keeps about a day).

Raises:
    InvalidRequest: ``since`` is not an aware datetime.
"""

WHAT_IF = """Preview an order's margin impact and commission; nothing is placed.

The order is validated against the contract as for ``place()``; the safety rails do
not apply (nothing trades).

Raises:
    InvalidRequest: a bad argument, or the order does not fit the contract.
    ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
    OrderRejected / RequestError: TWS refused the preview.
"""

PLACE = """\
Place an order (or a bracket, or an OCA group) and return once TWS acknowledged it.

Checked first against the safety rails and the contract (tick, size increment): a
refusal sends nothing. Timed out or cancelled before the acknowledgement, the order is
cancelled once; it is never re-sent (see ``docs/orders.md``). With a journal open, an
order without a key or an ``order_ref`` of its own is sent with a journal reference
(``:j`` and 16 hex digits) as its ``orderRef``, by which it is found again at TWS.

Args:
    contract: what to trade.
    order: an :class:`Order`, a :class:`Bracket` (→ :class:`BracketTrade`) or an
        :class:`OcaGroup` (→ :class:`TradeGroup`).
    key: your name for this order, unique per account (1-64 printable ASCII characters, no
        spaces or ``:``), sent as IB's ``orderRef``. If an order under this key is already known
        (placed by this session, in the journal, open at TWS for any client id, or
        completed today), its Trade is returned and nothing is sent. A bracket's legs get
        ``key``, ``key:tp``, ``key:sl``; an OCA group's ``key:1``…``key:n``.

Raises:
    InvalidRequest: a bad argument (or key, or an ``order_ref`` other than the key), or the
        order does not fit the contract.
    SafetyError: read-only session, live account without ``allow_live``, over
        ``max_order_quantity`` / ``max_order_notional``, only some legs of a keyed group
        known, or the journal could not record the order.
    ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
    OrderRejected: TWS rejected the order before acknowledging it; its ``trade``
        keeps following the order (TWS may hold it ``Inactive``). A later rejection
        ends the returned Trade with ``trade.error`` instead.
"""

CANCEL_ALL = """\
The kill switch's first half: TWS's global cancel (``reqGlobalCancel``), then wait until no
order of any client id is open.

The cancel reaches every open order of the account: this client id's, other client ids' and
those placed in TWS itself. It is sent once; the call re-reads every client id's open orders
until none is working.

Returns:
    One :class:`OrderSnapshot` per order that was open when the cancel went out, as it ended
    (``Cancelled``, or ``Filled`` if it filled first), from TWS's completed orders.

Raises:
    SafetyError: read-only session, or a live account without ``allow_live`` (nothing sent).
    RequestError: TWS refused the global cancel (321 in read-only API mode).
    RequestTimeout: orders were still open after ``timeout``.
"""

FLATTEN = """\
The kill switch: cancel the open orders, then close every position with market orders.

Without ``symbols``, it is :meth:`cancel_all` followed by closing every position of the
session's account (every account's when none is set). With ``symbols``, only this client id's
open orders on those symbols are cancelled and only their positions closed; a symbol matches a
position's ``contract.symbol``, so ``["AAPL"]`` closes the stock and its options. Positions are
read after the cancels are done. Each one is closed by one order for its whole size: a market
order, or a limit order at the bid (to sell) or the ask (to buy) where the contract does not
take market orders. The session's ``max_order_quantity`` and ``max_order_notional`` still
apply. The call returns once every closing order filled.

Args:
    symbols: the symbols to flatten (``["AAPL", "MSFT"]``); ``None`` flattens everything.

Returns:
    The closing :class:`Trade` of each position, filled, in TWS's position order; empty when
    there was nothing to close.

Raises:
    SafetyError: read-only session, a live account without ``allow_live``, or (with
        ``symbols``) an open order on them that another client id placed; nothing was sent.
    InvalidRequest: ``symbols`` is not a list of symbols.
    OrderRejected / OrderCancelled: a closing order did not fill.
    RequestTimeout: not done within ``timeout`` (the closing orders sent are in
        :meth:`trades`).
"""


def documented(text: str) -> Callable[[F], F]:
    """Give the decorated Session method its public docstring."""

    def apply(func: F) -> F:
        func.__doc__ = text
        return func

    return apply
