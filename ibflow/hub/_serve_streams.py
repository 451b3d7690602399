"""The hub's other streams: ticks, bars, PnL, account and position updates, fanned out.

Each distinct stream (method and arguments) is opened once on the hub's ``Session`` and
published on its own subject, ``ibflow.<hub>.feed.<key>``, however many remote consumers
listen. The key is a digest of the call as the codec writes it, so a remote session computes
the same subject before asking and misses nothing. Interest is a lease, as for quotes: the
remote renews it, the hub closes the stream when no lease is left.

Limits are the hub's to keep, so TWS never refuses a remote: real-time bars and ``quote()``
snapshots (while one is in flight) hold market-data lines; tick-by-tick streams count against
the hub's own tick-by-tick limit (IB allows few per login); IB's one tick-by-tick request per
instrument per 15 s is the hub session's pacer's.
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

__all__ = ["FEED_METHODS", "FeedServer", "feed_key", "feed_subject"]

_log = logging.getLogger("ibflow.hub")

# The Session streams the hub fans out this way (quotes have their own, line-counted path).
FEED_METHODS = frozenset(
    {
        "ticks",
        "realtime_bars",
        "live_bars",
        "pnl_updates",
        "position_pnl_updates",
        "account_updates",
        "position_updates",
    }
)
# Streams that hold a market-data line at TWS, as quotes do (real-time bars count against
# the lines); the hub refuses one more when its lines are taken.
_LINE_METHODS = frozenset({"realtime_bars"})
# Streams that hold one of IB's few tick-by-tick subscriptions (one per contract and kind).
_TICK_BY_TICK_METHODS = frozenset({"ticks"})
# Snapshot streams: a newcomer gets the newest item at once, as from a Session's shared stream.
_KEEP_LAST = frozenset({"pnl_updates", "position_pnl_updates"})
_HUB_BUFFER = 4096  # the hub's own reader publishes at once; this only absorbs bursts


def feed_key(method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The digest naming one stream: equal calls (after the codec) share one feed."""
    text = json.dumps(encode([method, list(args), dict(kwargs)]), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def feed_subject(subjects: Subjects, key: str) -> str:
    return f"{subjects.root}.feed.{key}"


def renew_subject(subjects: Subjects) -> str:
    return f"{subjects.root}.feed.renew"


def release_subject(subjects: Subjects) -> str:
    return f"{subjects.root}.feed.release"


@dataclass(eq=False)
class _Feed:
    """One stream of the hub's session, and the leases that keep it open."""

    name: str
    stream: ibflow.Stream[Any]
    holds_line: bool
    keeps_last: bool
    tick_by_tick: bool
    last: bytes | None = None
    leases: dict[str, float] = field(default_factory=dict)  # lease id → expiry (loop time)
    task: asyncio.Task[None] | None = None


class FeedServer:
    """Opens, publishes and closes the hub's fanned-out streams."""

    def __init__(
        self,
        session: ibflow.Session,
        subjects: Subjects,
        lease_ttl: float,
        lines_free: Callable[[], int],
        max_tick_by_tick: int,
    ) -> None:
        self._session = session
        self._lines_free = lines_free
        self._max_tick_by_tick = max_tick_by_tick
        self._subjects = subjects
        self._hub = subjects.root.removeprefix("ibflow.")
        self._lease_ttl = lease_ttl
        self._nc: NATS | None = None
        self._feeds: dict[str, _Feed] = {}  # key → feed
        self._lease_feed: dict[str, str] = {}  # lease id → key
        # key → held while that stream opens or closes; kept (one per distinct stream asked for)
        self._locks: dict[str, asyncio.Lock] = {}
        self._opening_lines = 0  # lines reserved by streams being opened and by snapshots
        self._opening_tick_by_tick = 0  # tick-by-tick subscriptions being opened
        self._subs: list[Subscription] = []
        self._reaper: asyncio.Task[None] | None = None

    @property
    def lines(self) -> int:
        """Market-data lines the open streams hold at TWS."""
        return self._opening_lines + sum(1 for feed in self._feeds.values() if feed.holds_line)

    @property
    def tick_by_tick(self) -> int:
        """Tick-by-tick subscriptions the open streams hold at TWS."""
        held = sum(1 for feed in self._feeds.values() if feed.tick_by_tick)
        return self._opening_tick_by_tick + held

    def statistics(self) -> dict[str, int]:
        return {
            "feeds": len(self._feeds),
            "feed_leases": len(self._lease_feed),
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
        if self._lines_free() <= 0:
            raise ibflow.MarketDataError(
                101,
                f"hub {self._hub!r} holds all its market-data lines",
                hint="release a subscription, or start the hub with more --lines if the IB "
                "account has them",
            )

    async def start(self, nc: NATS) -> None:
        self._nc = nc
        self._subs = [
            await nc.subscribe(renew_subject(self._subjects), cb=self._on_renew),
            await nc.subscribe(release_subject(self._subjects), cb=self._on_release),
        ]
        self._reaper = asyncio.ensure_future(self._reap())

    async def aclose(self) -> None:
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
        """Take ``lease`` on the stream ``method(*args, **kwargs)``, opening it if new."""
        if method not in FEED_METHODS:
            raise ibflow.InvalidRequest(f"the hub streams no {method!r}")
        if not isinstance(lease, str) or not lease:
            raise ibflow.InvalidRequest(f"lease must be a non-empty str, got {lease!r}")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ibflow.InvalidRequest("a stream's arguments travel as a list and a map")
        if {"buffer", "overflow"} & kwargs.keys():
            raise ibflow.InvalidRequest(
                "buffer= and overflow= belong to each consumer, not to the hub's stream"
            )
        key = feed_key(method, args, kwargs)
        # One lock per stream: opening one (which may wait out IB's pacing) holds up no other.
        async with self._locks.setdefault(key, asyncio.Lock()):
            feed = self._feeds.get(key)
            if feed is None:
                feed = await self._open(key, method, args, kwargs)
        feed.leases[lease] = asyncio.get_running_loop().time() + self._lease_ttl
        self._lease_feed[lease] = key
        return {
            "subject": feed_subject(self._subjects, key),
            "last": feed.last.decode() if feed.last is not None else None,
        }

    async def _open(self, key: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> _Feed:
        holds_line = method in _LINE_METHODS
        if holds_line:
            self._need_line()
        tick_by_tick = method in _TICK_BY_TICK_METHODS
        if tick_by_tick and self.tick_by_tick >= self._max_tick_by_tick:
            raise ibflow.MarketDataError(
                10190,
                f"hub {self._hub!r} holds all its {self._max_tick_by_tick} tick-by-tick "
                "subscriptions",
                hint="close a ticks() stream (each contract and kind is one), or start the hub "
                "with more --tick-by-tick if the IB account allows them",
            )
        label = ", ".join(a.symbol if isinstance(a, ibflow.Contract) else repr(a) for a in args)
        stream = getattr(self._session, method)(*args, **kwargs, buffer=_HUB_BUFFER)
        self._opening_lines += holds_line
        self._opening_tick_by_tick += tick_by_tick
        try:
            await stream.__aenter__()
        finally:
            self._opening_lines -= holds_line
            self._opening_tick_by_tick -= tick_by_tick
        keeps_last = method in _KEEP_LAST
        feed = _Feed(f"{method}({label})", stream, holds_line, keeps_last, tick_by_tick)
        self._feeds[key] = feed
        feed.task = asyncio.ensure_future(self._pump(key, feed))
        _log.info("hub %s: opened %s", self._hub, feed.name)
        return feed

    async def _publish(self, subject: str, payload: bytes) -> None:
        if self._nc is not None:
            # While NATS is away the client buffers; past its buffer, items are dropped.
            with contextlib.suppress(nats.errors.Error):
                await self._nc.publish(subject, payload)

    async def _pump(self, key: str, feed: _Feed) -> None:
        subject = feed_subject(self._subjects, key)
        try:
            async for item in feed.stream:
                payload = dumps({"item": encode(item)})
                if feed.keeps_last:
                    # A snapshot from before an outage is stale: the Gap clears it.
                    feed.last = None if isinstance(item, ibflow.Gap) else payload
                await self._publish(subject, payload)
            final: dict[str, Any] = {"end": True}
        except ibflow.IBFlowError as exc:
            final = {"error": encode_error(exc)}
        await self._publish(subject, dumps(final))
        if self._feeds.get(key) is feed:
            self._forget(key)

    def _forget(self, key: str) -> _Feed | None:
        feed = self._feeds.pop(key, None)
        if feed is not None:
            for lease in feed.leases:
                self._lease_feed.pop(lease, None)
        return feed

    async def _close(self, key: str) -> None:
        feed = self._forget(key)
        if feed is None:
            return
        if feed.task is not None:
            feed.task.cancel()
        await feed.stream.aclose()
        _log.info("hub %s: closed %s (no interest left)", self._hub, feed.name)

    async def _close_if_unused(self, key: str, feed: _Feed) -> None:
        if not feed.leases:
            async with self._locks.setdefault(key, asyncio.Lock()):
                if not feed.leases and self._feeds.get(key) is feed:
                    await self._close(key)

    async def _on_renew(self, msg: Msg) -> None:
        try:
            leases = loads(msg.data).get("leases", [])
        except ibflow.InvalidRequest:
            return
        expiry = asyncio.get_running_loop().time() + self._lease_ttl
        unknown = []
        for lease in leases if isinstance(leases, list) else ():
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
        except ibflow.InvalidRequest:
            return
        key = self._lease_feed.pop(lease, None)
        feed = self._feeds.get(key) if key is not None else None
        if key is not None and feed is not None:
            feed.leases.pop(lease, None)
            await self._close_if_unused(key, feed)

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(0.5, self._lease_ttl / 3))
            now = loop.time()
            for key, feed in list(self._feeds.items()):
                for lease, expiry in list(feed.leases.items()):
                    if expiry < now:
                        del feed.leases[lease]
                        self._lease_feed.pop(lease, None)
                await self._close_if_unused(key, feed)
