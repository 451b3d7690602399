"""The public docstrings of the Session's market-data methods (quotes, options, depth…).

``Session`` keeps one delegating line per method; these texts are what ``help()`` and the docs
show for them, kept here so the class stays readable and within the size rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["documented"]

F = TypeVar("F", bound=Callable[..., Any])

QUOTES = """Live quotes of ``contract`` as immutable :class:`Quote` snapshots.

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

QUOTE = """One snapshot quote of ``contract`` (``reqMktData`` with ``snapshot=True``).

Raises:
    InvalidRequest: a bad argument (nothing sent).
    ContractNotFound / AmbiguousContract: the contract is unknown or ambiguous.
    MarketDataError: IB refused the data (354, 10089, 10168…).
    RequestTimeout: no complete snapshot within ``timeout``.
    ConnectionLost: the link dropped before the answer.
"""

TICKS = """Tick-by-tick data: trades (``"last"``, ``"all_last"``), ``"bid_ask"`` or
``"midpoint"``, one item per tick, shared per contract and kind.

Raises:
    InvalidRequest: a bad argument (at once, nothing sent).
    ContractNotFound / AmbiguousContract: on entering the block.
    MarketDataError / RequestError: from the iterator, when IB refuses the request.
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

REALTIME_BARS = """IB's 5-second real-time bars; after a reconnect the missed bars are backfilled.

Raises:
    InvalidRequest: a bad argument (at once, nothing sent).
    ContractNotFound / AmbiguousContract: on entering the block.
    RequestError: from the iterator, when IB refuses the request.
    SlowConsumer: from the iterator, when the reader fell ``buffer`` bars behind.
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

LIVE_BARS = """Bars of ``period`` that keep coming (history with keepUpToDate).

First the ``lookback`` history's completed bars, then each bar as it completes. With
``include_forming=True`` the bar in progress is also yielded, as a :class:`FormingBar`,
on every update. After a reconnect the bars of the gap come from the new history.
The buffer grows to hold the initial history. IB counts the request as a historical
one, open until the stream closes: entering the block waits for a slot under the
session's historical pacing, as ``history()`` and ``download()`` do.

Args:
    contract: the instrument.
    period: the bar length, spelled as for :meth:`history` (``"5s"`` … ``"1m"``,
        ``"5m"``, ``"1h"``, ``"1d"``, ``"1w"``, ``"1M"`` for a month, or IB's
        ``"5 mins"``); at least 5 seconds.
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

PNL_UPDATES = """The account's daily, unrealized and realized PnL, as TWS updates it (``reqPnL``).

``account`` defaults to the session's account, or its only one.

Raises:
    InvalidRequest: a bad argument, or several accounts and no ``account``.
    RequestError: from the iterator, when IB refuses the request (unknown account).
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

POSITION_PNL_UPDATES = """One position's PnL as TWS updates it (``reqPnLSingle``).

Raises:
    InvalidRequest: a bad argument, or several accounts and no ``account``.
    ContractNotFound / AmbiguousContract: on entering the block.
    RequestError: from the iterator, when IB refuses the request.
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

ACCOUNT_UPDATES = """Account values as they change (every account, or only ``account``).

Rides on the account subscriptions the session keeps anyway, so it sends nothing. A
value is yielded when it changes; after a :class:`Gap`, every value TWS re-sends.

Raises:
    InvalidRequest: a bad argument.
    SlowConsumer: from the iterator, when the reader fell ``buffer`` values behind.
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

POSITION_UPDATES = """\
Positions as they change (every account, or only ``account``); a closed position
arrives with ``quantity`` 0. Rides on the session's own ``reqPositions``.

Raises:
    InvalidRequest: a bad argument.
    SlowConsumer: from the iterator, when the reader fell ``buffer`` positions behind.
    ConnectionLost: from the iterator, when the link drops and reconnect is off.
"""

SET_MARKET_DATA_TYPE = """\
Choose live, frozen, delayed or delayed-frozen data for quotes requested from now on.

Each :class:`Quote` says which type it carries. The choice survives reconnects. TWS
does not answer this request, so it returns once it is sent.

Raises:
    InvalidRequest: an unknown ``kind`` (nothing sent).
    ConnectionLost / SessionClosedError: the session is not connected.
"""

OPTION_CHAIN = """The options listed on ``underlying`` (IB's ``reqSecDefOptParams``).

``chain = await session.option_chain(ibflow.Stock("AAPL"))`` gives the venues, trading
classes, multiplier, expiry dates and strikes, merged over the venues that list them;
``chain.contracts(expiry=..., strikes=..., right="C")`` builds the ``Option`` specs to
qualify, quote or trade. An underlying without options has an empty chain.

Raises:
    InvalidRequest: ``underlying`` is not a contract, or is itself an option.
    ContractNotFound / AmbiguousContract: the underlying is unknown or not unique.
    RequestTimeout / ConnectionLost / SessionClosedError: as for every request.
"""

IMPLIED_VOLATILITY = """IB's implied volatility (and greeks) of ``option`` at ``price``, given the
underlying at ``underlying_price`` (``calculateImpliedVolatility``).

A price IB cannot invert (below the intrinsic value) gives ``implied_vol`` ``None``.

Raises:
    InvalidRequest: not an option, or a price that is not a positive number.
    ContractNotFound / AmbiguousContract: the option is unknown or not unique.
    RequestError: IB refused the calculation (321).
    RequestTimeout / ConnectionLost / SessionClosedError: as for every request.
"""

OPTION_PRICE = """\
IB's model price (and greeks) of ``option`` at ``volatility`` (0.3 = 30 %), given the
underlying at ``underlying_price`` (``calculateOptionPrice``).

Raises:
    InvalidRequest: not an option, or a value that is not a positive number.
    ContractNotFound / AmbiguousContract: the option is unknown or not unique.
    RequestError: IB refused the calculation (321).
    RequestTimeout / ConnectionLost / SessionClosedError: as for every request.
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

Raises:
    RequestTimeout / ConnectionLost / SessionClosedError: as for every request.
"""


def documented(text: str) -> Callable[[F], F]:
    """Give the decorated Session method its public docstring."""

    def apply(func: F) -> F:
        func.__doc__ = text
        return func

    return apply
