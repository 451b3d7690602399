"""Market data, PnL and account events as bounded async iterators.

ib_async offers a mutable ``Ticker`` shared per contract and eventkit's ``aiter()`` over an
unbounded queue: readers see state overwritten under them, memory grows behind a slow consumer,
two consumers of one contract cancel each other, and subscriptions silently die after a gateway
restart. Every stream here is a
:class:`~ibflow.Stream` : immutable items, a bounded buffer with a
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

from ._api import Market

__all__ = ["Market"]
