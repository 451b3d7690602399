"""The hub's streams: quotes, ticks, bars, PnL, account and position updates, fanned out.

Each distinct stream (method and arguments) is opened once on the hub's ``Session`` and
published on its own subject, ``ibflow.<hub>.feed.<key>``, however many remote consumers
listen. The key is a digest of the call as the codec writes it (its contract qualified), so
a remote session computes the same subject before asking and misses nothing. Interest is a
lease the remote renews; the hub closes the stream when no lease is left.

Each kind of stream says what it holds at TWS and how it fans out (``FEEDS``). The limits are
the hub's to keep, so TWS never refuses a remote: quotes, real-time bars and ``quote()``
snapshots (while one is in flight) hold market-data lines, counted against ``max_lines``;
tick-by-tick streams count against the hub's own tick-by-tick limit (IB allows few per login);
IB's one tick-by-tick request per instrument per 15 s is the hub session's pacer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

import ibflow

from ._protocol import Subjects, dumps, encode, encode_error, loads

__all__ = ["FEEDS", "FeedKind", "FeedServer", "feed_key"]

_log = logging.getLogger("ibflow.hub")


@dataclass(frozen=True, slots=True)
class FeedKind:
    """What one kind of stream holds at TWS, and how the hub fans it out."""

    line: bool = False  # holds a market-data line, counted against the hub's ``max_lines``
    tick_by_tick: bool = False  # holds one of IB's few tick-by-tick subscriptions
    keep_last: bool = False  # a snapshot stream: a newcomer gets the newest item at once
    conflate: bool = False  # while publishing lags, the hub keeps only the newest item


# The Session streams the hub fans out, by method.
FEEDS: Mapping[str, FeedKind] = {
    "quotes": FeedKind(line=True, keep_last=True, conflate=True),
    "ticks": FeedKind(tick_by_tick=True),
    "realtime_bars": FeedKind(line=True),
    "live_bars": FeedKind(),
    "pnl_updates": FeedKind(keep_last=True),
    "position_pnl_updates": FeedKind(keep_last=True),
    "account_updates": FeedKind(),
    "position_updates": FeedKind(),
}
_INSTRUMENTS = "quotes"  # the streams ``Hub.subscriptions()`` and the statistics list by con_id
_HUB_BUFFER = 4096  # the hub's own reader publishes at once; this only absorbs bursts
_CONFLATED_BUFFER = 256  # a conflating stream's items waiting before only the newest is kept


def feed_key(method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The digest naming one stream: equal calls (after the codec) share one feed."""
    text = json.dumps(encode([method, list(args), dict(kwargs)]), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(eq=False)
class _Feed:
    """One stream of the hub's session, and the leases that keep it open."""

    method: str
    args: list[Any]
    kind: FeedKind
    stream: ibflow.Stream[Any]
    last: bytes | None = None
    leases: dict[str, float] = field(default_factory=dict)  # lease id → expiry (loop time)
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        label = ", ".join(
            a.symbol if isinstance(a, ibflow.Contract) else repr(a) for a in self.args
        )
        return f"{self.method}({label})"


class FeedServer:
    """Opens, publishes and closes the hub's fanned-out streams, and keeps their leases."""

    def __init__(
        self,
        session: ibflow.Session,
        subjects: Subjects,
        *,
        lease_ttl: float,
        max_lines: int,
        max_tick_by_tick: int,
        heard: Callable[[object], None],
    ) -> None:
        self._session = session
        self._max_lines = max_lines
        self._max_tick_by_tick = max_tick_by_tick
        self._heard = heard
        self._subjects = subjects
        self._hub = subjects.root.removeprefix("ibflow.")
        self._lease_ttl = lease_ttl
        self._nc: NATS | None = None
        self._feeds: dict[str, _Feed] = {}  # key → feed
        self._lease_feed: dict[str, str] = {}  # lease id → key
        self._owners: dict[str, str] = {}  # lease id → the remote name that took it
        # key → held while that stream opens or closes; kept (one per distinct stream asked for)
        self._locks: dict[str, asyncio.Lock] = {}
        self._opening_lines = 0  # lines reserved by streams being opened and by snapshots
        self._opening_tick_by_tick = 0  # tick-by-tick subscriptions being opened
        self._subs: list[Subscription] = []
        self._reaper: asyncio.Task[None] | None = None

    @property
    def lines(self) -> int:
        """Market-data lines the open streams and the snapshots in flight hold at TWS."""
        return self._opening_lines + sum(1 for feed in self._feeds.values() if feed.kind.line)

    @property
    def tick_by_tick(self) -> int:
        """Tick-by-tick subscriptions the open streams hold at TWS."""
        held = sum(1 for feed in self._feeds.values() if feed.kind.tick_by_tick)
        return self._opening_tick_by_tick + held

    def instruments(self) -> dict[int, tuple[ibflow.Contract, list[str]]]:
        """The instruments quoted at TWS by ``con_id``: the contract, and the remote name
        holding each of its leases."""
        found: dict[int, tuple[ibflow.Contract, list[str]]] = {}
        for feed in self._feeds.values():
            contract = feed.args[0] if feed.method == _INSTRUMENTS else None
            if isinstance(contract, ibflow.Contract) and contract.con_id is not None:
                owners = [self._owners.get(lease, "?") for lease in feed.leases]
                # One con_id quoted on two exchanges (SMART and a directed one): one instrument.
                _, earlier = found.get(contract.con_id, (contract, []))
                found[contract.con_id] = (contract, earlier + owners)
        return found

    def held(self) -> dict[str, int]:
        """How many leases each remote name holds, on every stream."""
        counts: dict[str, int] = {}
        for owner in self._owners.values():
            counts[owner] = counts.get(owner, 0) + 1
        return counts

    def statistics(self) -> dict[str, int]:
        """The streams other than the instruments' quotes, and the tick-by-tick limit."""
        others = [feed for feed in self._feeds.values() if feed.method != _INSTRUMENTS]
        return {
            "feeds": len(others),
            "feed_leases": sum(len(feed.leases) for feed in others),
            "tick_by_tick_used": self.tick_by_tick,
            "tick_by_tick_limit": self._max_tick_by_tick,
        }

    async def quote(self, remote: str, contract: Any, **options: Any) -> ibflow.Quote:
        """``Session.quote()``: a snapshot holds a line at TWS until it is answered."""
        self._need_line()
        self._opening_lines += 1
        try:
            quote: ibflow.Quote = await self._session.quote(contract, **options)
        finally:
            self._opening_lines -= 1
        return quote

    def _need_line(self) -> None:
        if self.lines >= self._max_lines:
            raise ibflow.MarketDataError(
                101,
                f"hub {self._hub!r} holds all its {self._max_lines} market-data lines",
                hint="release a subscription, or start the hub with more --lines if the IB "
                "account has them",
            )

    async def start(self, nc: NATS) -> None:
        self._nc = nc
        self._subs = [
            await nc.subscribe(self._subjects.renew, cb=self._on_renew),
            await nc.subscribe(self._subjects.release, cb=self._on_release),
        ]
        self._reaper = asyncio.ensure_future(self._reap())

    async def aclose(self) -> None:
        """Stop renewing, close every stream at TWS."""
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        self._subs = []
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for key in list(self._feeds):
            await self._close(key)
        self._nc = None

    async def open(
        self, remote: str, method: str, args: list[Any], kwargs: dict[str, Any], *, lease: str
    ) -> dict[str, Any]:
        """Take ``lease`` for ``remote`` on the stream ``method(*args, **kwargs)``, opening it
        if new; its subject and, for a snapshot stream, its newest item."""
        kind = FEEDS.get(method)
        if kind is None:
            raise ibflow.InvalidRequest(f"the hub streams no {method!r}")
        if not isinstance(lease, str) or not lease:
            raise ibflow.InvalidRequest(f"lease must be a non-empty str, got {lease!r}")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ibflow.InvalidRequest("a stream's arguments travel as a list and a map")
        if {"buffer", "overflow"} & kwargs.keys():
            raise ibflow.InvalidRequest(
                "buffer= and overflow= belong to each consumer, not to the hub's stream"
            )
        if args and isinstance(args[0], ibflow.Contract) and args[0].con_id is None:
            args = [*await self._session.qualify(args[0]), *args[1:]]
        key = feed_key(method, args, kwargs)
        # One lock per stream: opening one (which may wait out IB's pacing) holds up no other.
        async with self._locks.setdefault(key, asyncio.Lock()):
            feed = self._feeds.get(key)
            if feed is None:
                feed = await self._open(key, method, kind, args, kwargs)
        feed.leases[lease] = asyncio.get_running_loop().time() + self._lease_ttl
        self._lease_feed[lease] = key
        self._owners[lease] = remote
        return {
            "subject": self._subjects.feed(key),
            "last": feed.last.decode() if feed.last is not None else None,
        }

    async def _open(
        self, key: str, method: str, kind: FeedKind, args: list[Any], kwargs: dict[str, Any]
    ) -> _Feed:
        if kind.line:
            self._need_line()
        if kind.tick_by_tick and self.tick_by_tick >= self._max_tick_by_tick:
            raise ibflow.MarketDataError(
                10190,
                f"hub {self._hub!r} holds all its {self._max_tick_by_tick} tick-by-tick "
                "subscriptions",
                hint="close a ticks() stream (each contract and kind is one), or start the hub "
                "with more --tick-by-tick if the IB account allows them",
            )
        reader: dict[str, Any] = (
            {"buffer": _CONFLATED_BUFFER, "overflow": ibflow.Overflow.LATEST}
            if kind.conflate
            else {"buffer": _HUB_BUFFER}
        )
        stream = getattr(self._session, method)(*args, **kwargs, **reader)
        self._opening_lines += kind.line
        self._opening_tick_by_tick += kind.tick_by_tick
        try:
            await stream.__aenter__()
        finally:
            self._opening_lines -= kind.line
            self._opening_tick_by_tick -= kind.tick_by_tick
        feed = _Feed(method, args, kind, stream)
        self._feeds[key] = feed
        feed.task = asyncio.ensure_future(self._pump(key, feed))
        _log.info("hub %s: opened %s at TWS", self._hub, feed.name)
        return feed

    async def _publish(self, subject: str, payload: bytes) -> None:
        if self._nc is not None:
            # While NATS is away the client buffers; past its buffer, items are dropped.
            with contextlib.suppress(nats.errors.Error):
                await self._nc.publish(subject, payload)

    async def _pump(self, key: str, feed: _Feed) -> None:
        subject = self._subjects.feed(key)
        try:
            async for item in feed.stream:
                payload = dumps({"item": encode(item)})
                if feed.kind.keep_last:
                    # A snapshot from before an outage is stale: the Gap clears it.
                    feed.last = None if isinstance(item, ibflow.Gap) else payload
                await self._publish(subject, payload)
            final: dict[str, Any] = {"end": True}
        except ibflow.IBFlowError as exc:
            final = {"error": encode_error(exc)}
        await self._publish(subject, dumps(final))
        if self._feeds.get(key) is feed:
            self._forget(key)

    def _end_lease(self, lease: str, feed: _Feed | None) -> None:
        self._lease_feed.pop(lease, None)
        self._owners.pop(lease, None)
        if feed is not None:
            feed.leases.pop(lease, None)

    def _forget(self, key: str) -> _Feed | None:
        feed = self._feeds.pop(key, None)
        if feed is not None:
            for lease in list(feed.leases):
                self._end_lease(lease, None)
        return feed

    async def _close(self, key: str) -> None:
        feed = self._forget(key)
        if feed is None:
            return
        if feed.task is not None:
            feed.task.cancel()
        await feed.stream.aclose()
        _log.info("hub %s: closed %s at TWS (no interest left)", self._hub, feed.name)

    async def _close_if_unused(self, key: str, feed: _Feed) -> None:
        if not feed.leases:
            async with self._locks.setdefault(key, asyncio.Lock()):
                if not feed.leases and self._feeds.get(key) is feed:
                    await self._close(key)

    async def _on_renew(self, msg: Msg) -> None:
        try:
            renewal = loads(msg.data)
            leases = renewal.get("leases", [])
        except (ibflow.InvalidRequest, AttributeError):
            return
        self._heard(renewal.get("name"))
        expiry = asyncio.get_running_loop().time() + self._lease_ttl
        unknown = []
        for lease in leases if isinstance(leases, list) else ():
            if not isinstance(lease, str):
                continue
            feed = self._feeds.get(self._lease_feed.get(lease, ""))
            if feed is None or lease not in feed.leases:
                unknown.append(lease)
            else:
                feed.leases[lease] = expiry
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(dumps({"unknown": unknown}))

    async def _on_release(self, msg: Msg) -> None:
        try:
            lease = loads(msg.data).get("lease")
        except (ibflow.InvalidRequest, AttributeError):
            return
        if not isinstance(lease, str):
            return
        key = self._lease_feed.get(lease)
        feed = self._feeds.get(key) if key is not None else None
        self._end_lease(lease, feed)
        if key is not None and feed is not None:
            await self._close_if_unused(key, feed)

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(0.5, self._lease_ttl / 3))
            now = loop.time()
            for key, feed in list(self._feeds.items()):
                for lease, expiry in list(feed.leases.items()):
                    if expiry < now:
                        self._end_lease(lease, feed)
                await self._close_if_unused(key, feed)
