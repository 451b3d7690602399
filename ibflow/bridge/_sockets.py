"""The bridge's websockets: ibflow's live streams, one JSON message per item.

Each socket owns ibflow streams for exactly as long as the client stays: they open before the
handshake completes (so the subscription is live once the client is connected, and a bad symbol
is reported on the socket), and leaving — the client going away, an error, the session closing —
closes them, which sends IB's cancel once. A handshake from another site's page (its
``Origin``), or without the bridge's token when one is configured, is refused before anything
is opened.

``/ws/quotes`` also takes ``{"action": "subscribe" | "unsubscribe", "symbols": [...]}``
messages. Each connection has an allowance of such changes (a burst, refilled at a steady rate)
and a cap on symbols at once, so one client churning subscriptions cannot use up the session's
message budget that every other client and every order shares; a change over the limit is
refused with an error message and the socket stays open.

Memory stays bounded behind a slow client. The bridge sends one message at a time and waits
for the socket to take it; meanwhile items wait in the stream's own bounded buffer, where
ibflow's overflow policy decides: quotes use ``"latest"`` (a slow reader skips to the newest
quote), order events and bars use ``"error"`` (never a silent loss: the socket is closed with
``SlowConsumer`` and the client re-reads ``GET /orders`` or history).

A failure ends the socket with an ``{"type": "error", ...}`` message (the same body as the HTTP
errors) and a close frame whose reason names the error: 1008 when the request itself is wrong
(unknown symbol, bad period), 1013 when trying again later may work (TWS unreachable, pacing,
slow consumer), 1011 otherwise. When the session closes, the socket closes normally (1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

import ibflow
from ibflow import SecType

from . import _requests as requests
from . import _schemas as schemas
from ._errors import close_socket, error_message
from ._metrics import Metrics
from ._security import admit_socket
from ._state import bridge_of, session_of

__all__ = ["router"]

router = APIRouter()

# Several items per quote stream, not one: a Gap marker waiting in a full buffer of one would be
# pushed out by the next quote.
_QUOTE_BUFFER = 16
_ORDER_EVENT_BUFFER = 1024
_BAR_BUFFER = 256

Pump = Callable[[], Coroutine[Any, Any, None]]
OnMessage = Callable[[str], Awaitable[None]]


class _Allowance:
    """A token bucket: ``burst`` changes at once, refilled at ``rate`` per second."""

    def __init__(self, burst: int, rate: float) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self, count: int) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if count > self._tokens:
            return False
        self._tokens -= count
        return True


class _Connection:
    """One socket's streams and their pumps; the first failure or end stops them all."""

    def __init__(self, websocket: WebSocket, metrics: Metrics) -> None:
        self._websocket = websocket
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._streams: dict[Hashable, tuple[ibflow.Stream[Any], Pump]] = {}
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._outcome: asyncio.Future[bool] | None = None

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._streams

    async def send(self, message: BaseModel | dict[str, Any]) -> None:
        text = message.model_dump_json() if isinstance(message, BaseModel) else json.dumps(message)
        async with self._lock:
            await self._websocket.send_text(text)

    def add(self, key: Hashable, stream: ibflow.Stream[Any], pump: Pump) -> None:
        """Own an opened stream; its pump runs from :meth:`run` on (at once when running)."""
        self._metrics.watch(stream)
        self._streams[key] = (stream, pump)
        if self._outcome is not None:
            self._start(key, pump)

    async def remove(self, key: Hashable) -> None:
        stream, _pump = self._streams.pop(key)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._release(stream)

    async def close(self) -> None:
        for key in list(self._streams):
            await self.remove(key)

    async def run(self, on_message: OnMessage | None) -> bool:
        """Relay until the client leaves (True) or a stream ends (False); raise its error."""
        self._outcome = asyncio.get_running_loop().create_future()
        for key, (_stream, pump) in self._streams.items():
            self._start(key, pump)
        watcher = asyncio.create_task(self._watch(on_message))
        try:
            return await self._outcome
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    def _start(self, key: Hashable, pump: Pump) -> None:
        task = asyncio.create_task(pump())
        self._tasks[key] = task
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        outcome = self._outcome
        if task.cancelled() or outcome is None or outcome.done():
            return
        error = task.exception()
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(False)

    async def _watch(self, on_message: OnMessage | None) -> None:
        outcome = self._outcome
        assert outcome is not None
        try:
            while True:
                message = await self._websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if on_message is not None and text is not None:
                    await on_message(text)
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # a bug in a handler: end the socket with it
            if not outcome.done():
                outcome.set_exception(exc)
            return
        if not outcome.done():
            outcome.set_result(True)

    async def _release(self, stream: ibflow.Stream[Any]) -> None:
        await stream.aclose()
        self._metrics.release(stream)


Opener = Callable[[ibflow.Session, _Connection], Awaitable[None]]


async def _serve(
    websocket: WebSocket,
    open_streams: Opener,
    on_message: Callable[[ibflow.Session, _Connection], OnMessage] | None = None,
) -> None:
    """Admit, open the streams, accept, relay until someone leaves, then close everything."""
    if not await admit_socket(websocket):
        return
    metrics = bridge_of(websocket).metrics
    path = websocket.url.path
    connection = _Connection(websocket, metrics)
    metrics.websockets.labels(path).inc()
    try:
        try:
            session = session_of(websocket)
            await open_streams(session, connection)
        except ibflow.IBFlowError as exc:
            with contextlib.suppress(WebSocketDisconnect):  # gone during the setup
                await websocket.accept()
                await close_socket(websocket, exc)
            return
        try:
            await websocket.accept()
            handler = on_message(session, connection) if on_message is not None else None
            client_left = await connection.run(handler)
        except WebSocketDisconnect:
            return
        except ibflow.IBFlowError as exc:
            await close_socket(websocket, exc)
            return
        if not client_left:
            await close_socket(websocket, None)
    finally:
        await connection.close()
        metrics.websockets.labels(path).dec()


def _symbols(text: str) -> list[str]:
    found = list(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not found:
        raise ibflow.InvalidRequest("symbols= needs at least one symbol, e.g. symbols=AAPL,MSFT")
    return found


@router.websocket("/ws/quotes")
async def quotes_socket(
    websocket: WebSocket,
    symbols: Annotated[str, Query(description="Comma-separated: AAPL,MSFT (EUR.USD for CASH).")],
    sec_type: Annotated[SecType, Query(description="For every symbol.")] = SecType.STOCK,
    exchange: str | None = None,
    currency: str | None = None,
) -> None:
    """Live quotes, one ``{"type": "quote", "symbol": ...}`` message per update; a
    ``{"type": "gap", ...}`` message marks a reconnect. A slow client skips to the newest quote.
    Send ``{"action": "subscribe" | "unsubscribe", "symbols": ["MSFT"]}`` to change the set.
    """
    settings = bridge_of(websocket).settings

    async def subscribe(
        session: ibflow.Session, connection: _Connection, wanted: list[str]
    ) -> list[str]:
        added = []
        for symbol in wanted:
            if symbol in connection:
                continue
            if len(connection) >= settings.max_subscriptions:
                raise _Refused(
                    "TooManySubscriptions",
                    f"one socket streams at most {settings.max_subscriptions} symbols; "
                    "unsubscribe some first",
                )
            contract = requests.ContractSpec(
                symbol=symbol, sec_type=sec_type, exchange=exchange, currency=currency
            ).to_contract()
            stream = session.quotes(contract, buffer=_QUOTE_BUFFER, overflow="latest")
            await stream.__aenter__()  # a failed open releases the stream itself
            connection.add(symbol, stream, _quote_pump(stream, symbol, connection))
            added.append(symbol)
        return added

    async def open_streams(session: ibflow.Session, connection: _Connection) -> None:
        if len(_symbols(symbols)) > settings.max_subscriptions:
            raise ibflow.InvalidRequest(
                f"one socket streams at most {settings.max_subscriptions} symbols"
            )
        await subscribe(session, connection, _symbols(symbols))

    def changes(session: ibflow.Session, connection: _Connection) -> OnMessage:
        allowance = _Allowance(settings.subscription_burst, settings.subscriptions_per_second)

        async def on_message(text: str) -> None:
            try:
                action, wanted = _parse_change(text)
                if not allowance.take(len(wanted)):
                    bridge_of(websocket).metrics.churn_refused.inc()
                    raise _Refused(
                        "TooManySubscriptionChanges",
                        f"at most {settings.subscription_burst} subscribe/unsubscribe changes "
                        f"at once and {settings.subscriptions_per_second:g} per second per "
                        "connection; this request changed nothing, try again shortly",
                    )
                if action == "subscribe":
                    done = await subscribe(session, connection, wanted)
                else:
                    done = [s for s in wanted if s in connection]
                    for symbol in done:
                        await connection.remove(symbol)
                await connection.send({"type": f"{action}d", "symbols": done})
            except _Refused as refused:
                await connection.send(_error(refused.error, refused.message))
            except ibflow.IBFlowError as exc:
                await connection.send(error_message(schemas.ErrorBody.of(exc)))

        return on_message

    await _serve(websocket, open_streams, changes)


class _Refused(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def _error(error: str, message: str) -> dict[str, Any]:
    return error_message(schemas.ErrorBody(error=error, code=None, message=message))


def _parse_change(text: str) -> tuple[str, list[str]]:
    """``(action, symbols)`` of a subscription message.

    Raises:
        InvalidRequest: not JSON, an unknown action, or no symbols.
    """
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    action = message.get("action") if isinstance(message, dict) else None
    if action not in ("subscribe", "unsubscribe"):
        raise ibflow.InvalidRequest(
            'send {"action": "subscribe" or "unsubscribe", "symbols": ["AAPL", ...]}'
        )
    assert isinstance(message, dict)
    raw = message.get("symbols", message.get("symbol"))
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        raw = ",".join(raw)
    if not isinstance(raw, str):
        raise ibflow.InvalidRequest('"symbols" must be a list of symbols or "AAPL,MSFT"')
    return action, _symbols(raw)


def _quote_pump(
    stream: ibflow.Stream[ibflow.Quote | ibflow.Gap], symbol: str, connection: _Connection
) -> Pump:
    async def pump() -> None:
        async for item in stream:
            if isinstance(item, ibflow.Gap):
                await connection.send(schemas.GapMessage.of(item, symbol))
            else:
                await connection.send(schemas.QuoteMessage.of(item, symbol))

    return pump


@router.websocket("/ws/orders")
async def orders_socket(websocket: WebSocket) -> None:
    """Every event of every order this bridge's session places, from now on, as
    ``{"type": "order", "kind": "status" | "fill" | "commission" | ...}`` messages.
    """

    async def open_streams(session: ibflow.Session, connection: _Connection) -> None:
        events = session.order_events(buffer=_ORDER_EVENT_BUFFER)
        await events.__aenter__()

        async def pump() -> None:
            async for event in events:
                await connection.send(schemas.OrderEventMessage.model_validate(event))

        connection.add("orders", events, pump)

    await _serve(websocket, open_streams)


@router.websocket("/ws/bars")
async def bars_socket(
    websocket: WebSocket,
    symbol: str,
    period: Annotated[str, Query(description='"5s" … "1m", "5m", "1h", "1d".')] = "1m",
    lookback: Annotated[str, Query(description='History first: "3600 S", "1 D"…')] = "1 D",
    forming: Annotated[bool, Query(description="Also send the bar in progress.")] = False,
    what: str = "TRADES",
    rth: bool = False,
    sec_type: SecType = SecType.STOCK,
    exchange: str | None = None,
    currency: str | None = None,
) -> None:
    """Bars that keep coming: the lookback's history, then each bar as it completes, as
    ``{"type": "bar", ...}`` messages; ``{"type": "gap", ...}`` marks a reconnect.
    """

    async def open_streams(session: ibflow.Session, connection: _Connection) -> None:
        tag = symbol.strip().upper()
        contract = requests.ContractSpec(
            symbol=tag, sec_type=sec_type, exchange=exchange, currency=currency
        ).to_contract()
        bars = session.live_bars(
            contract, period, lookback, forming, what=what, rth=rth, buffer=_BAR_BUFFER
        )
        await bars.__aenter__()

        async def pump() -> None:
            async for item in bars:
                message: BaseModel = (
                    schemas.GapMessage.of(item, tag)
                    if isinstance(item, ibflow.Gap)
                    else schemas.BarMessage.of(item, tag)
                )
                await connection.send(message)

        connection.add("bars", bars, pump)

    await _serve(websocket, open_streams)
