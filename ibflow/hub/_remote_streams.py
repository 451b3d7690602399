"""A remote session's streams: quotes, ticks, bars, PnL, account and positions.

Entering a stream qualifies its contract at the hub, listens on the feed's subject (its name
is a digest of the call, computed here as the hub computes it), then takes a lease the hub
keeps while this side renews it. Closing the stream releases the lease at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, overload

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

import ibflow
from ibflow._stream import StreamWriter
from ibflow._timeouts import SESSION_DEFAULT

from ._protocol import Subjects, decode, decode_error, dumps, encode, loads
from ._serve_streams import FEEDS, feed_key

__all__ = ["FeedClient", "RemoteStreams"]

Call = Callable[..., Coroutine[Any, Any, Any]]


def deliver(stream: StreamWriter[Any], payload: bytes) -> None:
    """One message of a hub stream subject into ``stream``: an item, a gap, an error, the end."""
    try:
        message = loads(payload)
        if "item" in message:
            item = decode(message["item"])
            if isinstance(item, ibflow.Gap):
                stream.send_marker(item)
            else:
                stream.send(item)
        elif "error" in message:
            stream.fail(decode_error(message["error"]))
        elif message.get("end"):
            stream.end()
    except ibflow.IBFlowError as exc:
        stream.fail(exc)


@dataclass(eq=False)
class _Open:
    writer: StreamWriter[Any]
    method: str
    args: list[Any]
    kwargs: dict[str, Any]


# Opening ticks() may wait at the hub for IB's one tick-by-tick request per instrument per
# 15 s (the hub session's pacer holds it, as a Session's does): allow for that wait.
_PACED_OPEN = 30.0


class FeedClient:
    """The open streams of one remote session, and the renewal of their leases."""

    def __init__(
        self, subjects: Subjects, name: str, call: Call, nats_link: Callable[[], NATS | None]
    ) -> None:
        self._subjects = subjects
        self._name = name
        self._call = call
        self._link = nats_link
        self._open: dict[str, _Open] = {}  # lease id → stream
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._open)

    def open(
        self,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        buffer: int,
        overflow: ibflow.Overflow | str,
        name: str,
    ) -> ibflow.Stream[Any]:
        """The stream of the hub's ``method(*args, **kwargs)``; ``args[0]`` may be a contract,
        qualified at the hub on entering."""
        lease = uuid.uuid4().hex
        subscription: list[Any] = []
        delivered: list[bool] = []

        async def start() -> None:
            call_args = list(args)
            if call_args and isinstance(call_args[0], ibflow.Contract):
                (call_args[0],) = await self._call("qualify", [call_args[0]], {}, SESSION_DEFAULT)
            nc = self._link()
            if nc is None:
                raise ibflow.SessionClosedError("the remote session is closed")

            async def on_message(msg: Msg) -> None:
                delivered.append(True)
                deliver(writer, msg.data)

            subject = self._subjects.feed(feed_key(method, call_args, kwargs))
            sub = await nc.subscribe(subject, cb=on_message, pending_msgs_limit=buffer * 4)
            subscription.append(sub)
            await nc.flush()
            opened = _Open(writer, method, call_args, kwargs)
            reply = await self._take(lease, opened)
            self._open[lease] = opened
            if reply["last"] is not None and not delivered:
                deliver(writer, reply["last"].encode())

        def close() -> None:
            self._open.pop(lease, None)
            self._background(self._release(lease, subscription))

        writer: StreamWriter[Any] = StreamWriter(
            name=name, buffer=buffer, overflow=overflow, start=start, on_close=close
        )
        return writer.stream

    def mark_gap(self, gap: ibflow.Gap) -> None:
        for opened in self._open.values():
            opened.writer.send_marker(gap)

    def end_all(self) -> None:
        for opened in list(self._open.values()):
            opened.writer.end()

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, lease: str, subscription: list[Any]) -> None:
        nc = self._link()
        if nc is None:
            return
        with contextlib.suppress(nats.errors.Error):
            for sub in subscription:
                await sub.unsubscribe()
            await nc.publish(self._subjects.release, dumps({"lease": lease}))

    async def _take(self, lease: str, opened: _Open) -> Any:
        """Ask the hub for ``lease`` on the stream, opening it there if need be."""
        paced = FEEDS[opened.method].tick_by_tick
        return await self._call(
            "feed.open",
            [opened.method, opened.args, opened.kwargs],
            {"lease": lease},
            _PACED_OPEN if paced else SESSION_DEFAULT,
            timeout_arg=False,
        )

    async def renew(self, lease_ttl: float) -> None:
        """Renew every open lease once; re-take those the hub forgot (it restarted, or this
        side was away too long). Sent with no stream open too: the hub counts it as a sign of
        life."""
        nc = self._link()
        if nc is None or not nc.is_connected:
            return
        try:
            renewal = dumps({"name": self._name, "leases": list(self._open)})
            msg = await nc.request(self._subjects.renew, renewal, timeout=lease_ttl)
            unknown = loads(msg.data).get("unknown", [])
        except (nats.errors.Error, ibflow.IBFlowError):
            return  # the hub is away; the next round tries again
        for lease in unknown:
            opened = self._open.get(lease)
            if opened is not None:
                with contextlib.suppress(ibflow.IBFlowError):
                    await self._take(lease, opened)


_TICK_KINDS = frozenset(kind.value for kind in ibflow.TickKind)


class RemoteStreams:
    """The stream methods of ``RemoteSession``, each one ``FeedClient`` call."""

    _feeds: FeedClient

    def quotes(
        self,
        contract: ibflow.Contract,
        *,
        buffer: int = 256,
        overflow: ibflow.Overflow | str = ibflow.Overflow.LATEST,
    ) -> ibflow.Stream[ibflow.Quote | ibflow.Gap]:
        """Live quotes of ``contract``, as ``Session.quotes()``: one line at TWS, shared.

        Entering the block qualifies the contract at the hub, listens on its subject and
        takes a lease the session renews until the stream closes; a consumer joining an
        instrument the hub quotes already gets its newest quote at once.

        Raises:
            InvalidRequest: a bad argument (at once).
            ContractNotFound / AmbiguousContract / MarketDataError: on entering the block.
            MarketDataError / ConnectionLost: from the iterator, as the hub's stream fails.
        """
        return self._feed("quotes", contract, [], {}, buffer, overflow)

    @overload
    def ticks(
        self,
        contract: ibflow.Contract,
        kind: Literal["last", "all_last", ibflow.TickKind.LAST, ibflow.TickKind.ALL_LAST] = ...,
        *,
        buffer: int = ...,
        overflow: ibflow.Overflow | str = ...,
    ) -> ibflow.Stream[ibflow.TradeTick | ibflow.Gap]: ...

    @overload
    def ticks(
        self,
        contract: ibflow.Contract,
        kind: Literal["bid_ask", ibflow.TickKind.BID_ASK],
        *,
        buffer: int = ...,
        overflow: ibflow.Overflow | str = ...,
    ) -> ibflow.Stream[ibflow.BidAskTick | ibflow.Gap]: ...

    @overload
    def ticks(
        self,
        contract: ibflow.Contract,
        kind: Literal["midpoint", ibflow.TickKind.MIDPOINT],
        *,
        buffer: int = ...,
        overflow: ibflow.Overflow | str = ...,
    ) -> ibflow.Stream[ibflow.MidpointTick | ibflow.Gap]: ...

    def ticks(
        self,
        contract: ibflow.Contract,
        kind: str = "last",
        *,
        buffer: int = 1024,
        overflow: ibflow.Overflow | str = ibflow.Overflow.DROP_OLDEST,
    ) -> ibflow.Stream[Any]:
        """As ``Session.ticks()``: one tick-by-tick subscription at the hub per contract and
        kind, however many remote consumers."""
        # One spelling per kind ("BID_ASK", TickKind.BID_ASK…), so equal calls share one stream.
        if isinstance(kind, str) and kind.lower() in _TICK_KINDS:
            kind = kind.lower()
        return self._feed("ticks", contract, [kind], {}, buffer, overflow)

    def realtime_bars(
        self,
        contract: ibflow.Contract,
        what: str = "TRADES",
        *,
        rth: bool = False,
        buffer: int = 256,
        overflow: ibflow.Overflow | str = ibflow.Overflow.ERROR,
    ) -> ibflow.Stream[ibflow.Bar | ibflow.Gap]:
        """As ``Session.realtime_bars()``, fanned out by the hub."""
        return self._feed("realtime_bars", contract, [what], {"rth": rth}, buffer, overflow)

    def live_bars(
        self,
        contract: ibflow.Contract,
        period: str = "1m",
        lookback: str = "1 D",
        include_forming: bool = False,
        *,
        what: str = "TRADES",
        rth: bool = False,
        buffer: int = 256,
        overflow: ibflow.Overflow | str = ibflow.Overflow.ERROR,
    ) -> ibflow.Stream[ibflow.Bar | ibflow.Gap]:
        """As ``Session.live_bars()``, fanned out by the hub (the lookback comes first)."""
        options = {"what": what, "rth": rth}
        args = [period, lookback, include_forming]
        return self._feed("live_bars", contract, args, options, buffer, overflow)

    def pnl_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: ibflow.Overflow | str = ibflow.Overflow.LATEST,
    ) -> ibflow.Stream[ibflow.PnL | ibflow.Gap]:
        """As ``Session.pnl_updates()``, fanned out by the hub."""
        return self._feed("pnl_updates", None, [account], {}, buffer, overflow)

    def position_pnl_updates(
        self,
        contract: ibflow.Contract,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: ibflow.Overflow | str = ibflow.Overflow.LATEST,
    ) -> ibflow.Stream[ibflow.PositionPnL | ibflow.Gap]:
        """As ``Session.position_pnl_updates()``, fanned out by the hub."""
        return self._feed("position_pnl_updates", contract, [account], {}, buffer, overflow)

    def account_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: ibflow.Overflow | str = ibflow.Overflow.ERROR,
    ) -> ibflow.Stream[ibflow.AccountValue | ibflow.Gap]:
        """As ``Session.account_updates()``, fanned out by the hub."""
        return self._feed("account_updates", None, [account], {}, buffer, overflow)

    def position_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: ibflow.Overflow | str = ibflow.Overflow.ERROR,
    ) -> ibflow.Stream[ibflow.Position | ibflow.Gap]:
        """As ``Session.position_updates()``, fanned out by the hub."""
        return self._feed("position_updates", None, [account], {}, buffer, overflow)

    def _feed(
        self,
        method: str,
        contract: ibflow.Contract | None,
        args: list[Any],
        options: dict[str, Any],
        buffer: int,
        overflow: ibflow.Overflow | str,
    ) -> ibflow.Stream[Any]:
        if contract is None:
            call_args = args
        elif not isinstance(contract, ibflow.Contract):
            raise ibflow.InvalidRequest(
                f"contract must be an ibflow.Contract, got {type(contract).__name__}"
            )
        else:
            call_args = [contract, *args]
        encode([call_args, options])  # what cannot travel is refused at once
        label = contract.symbol if contract is not None else ",".join(map(str, args))
        return self._feeds.open(
            method, call_args, options, buffer=buffer, overflow=overflow, name=f"{method}({label})"
        )
