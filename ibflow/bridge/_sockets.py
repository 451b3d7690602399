"""The bridge's websockets: ibflow's live streams, one JSON message per item.

Each socket owns ibflow streams for exactly as long as the client stays: they open before the
handshake completes (so the subscription is live once the client is connected, and a bad symbol
is reported on the socket), and leaving — the client going away, an error, the session closing —
closes them, which sends IB's cancel once.

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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

import ibflow
from ibflow import SecType

from . import _schemas as schemas
from ._errors import close_socket
from ._state import session_of

__all__ = ["router"]

router = APIRouter()

# Several items per quote stream, not one: a Gap marker waiting in a full buffer of one would be
# pushed out by the next quote.
_QUOTE_BUFFER = 16
_ORDER_EVENT_BUFFER = 1024
_BAR_BUFFER = 256

Pump = Callable[[], Coroutine[Any, Any, None]]


class _Sender:
    """Sends one message at a time: several streams share one socket."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, message: BaseModel) -> None:
        async with self._lock:
            await self._websocket.send_text(message.model_dump_json())


Opener = Callable[[ibflow.Session, contextlib.AsyncExitStack, _Sender], Awaitable[list[Pump]]]


async def _serve(websocket: WebSocket, open_streams: Opener) -> None:
    """Open the streams, accept, relay until someone leaves, then close everything once."""
    sender = _Sender(websocket)
    async with contextlib.AsyncExitStack() as streams:
        try:
            pumps = await open_streams(session_of(websocket), streams, sender)
        except ibflow.IBFlowError as exc:
            with contextlib.suppress(WebSocketDisconnect):  # gone during the setup
                await websocket.accept()
                await close_socket(websocket, exc)
            return
        try:
            await websocket.accept()
            client_left = await _relay(websocket, pumps)
        except WebSocketDisconnect:
            return
        except ibflow.IBFlowError as exc:
            await close_socket(websocket, exc)
            return
        if not client_left:
            await close_socket(websocket, None)


async def _relay(websocket: WebSocket, pumps: list[Pump]) -> bool:
    """Run the pumps until the client leaves (True) or a stream ends (False); raise its error."""
    watcher = asyncio.create_task(_until_disconnect(websocket))
    tasks = [asyncio.create_task(pump()) for pump in pumps]
    try:
        done, _ = await asyncio.wait([watcher, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watcher, *tasks):
            task.cancel()
        await asyncio.gather(watcher, *tasks, return_exceptions=True)
    if watcher in done:
        return True
    for task in tasks:
        error = task.exception() if task in done else None
        if error is not None:
            raise error
    return False


async def _until_disconnect(websocket: WebSocket) -> None:
    # Nothing a client sends means anything here; reading is how a close frame is noticed.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


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
    """

    async def open_streams(
        session: ibflow.Session, streams: contextlib.AsyncExitStack, sender: _Sender
    ) -> list[Pump]:
        pumps: list[Pump] = []
        for symbol in _symbols(symbols):
            contract = schemas.ContractSpec(
                symbol=symbol, sec_type=sec_type, exchange=exchange, currency=currency
            ).to_contract()
            stream = await streams.enter_async_context(
                session.quotes(contract, buffer=_QUOTE_BUFFER, overflow="latest")
            )
            pumps.append(_quote_pump(stream, symbol, sender))
        return pumps

    await _serve(websocket, open_streams)


def _quote_pump(
    stream: ibflow.Stream[ibflow.Quote | ibflow.Gap], symbol: str, sender: _Sender
) -> Pump:
    async def pump() -> None:
        async for item in stream:
            if isinstance(item, ibflow.Gap):
                await sender.send(schemas.GapMessage.of(item, symbol))
            else:
                await sender.send(schemas.QuoteMessage.of(item, symbol))

    return pump


@router.websocket("/ws/orders")
async def orders_socket(websocket: WebSocket) -> None:
    """Every event of every order this bridge's session places, from now on, as
    ``{"type": "order", "kind": "status" | "fill" | "commission" | ...}`` messages.
    """

    async def open_streams(
        session: ibflow.Session, streams: contextlib.AsyncExitStack, sender: _Sender
    ) -> list[Pump]:
        events = await streams.enter_async_context(session.order_events(buffer=_ORDER_EVENT_BUFFER))

        async def pump() -> None:
            async for event in events:
                await sender.send(schemas.OrderEventMessage.model_validate(event))

        return [pump]

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

    async def open_streams(
        session: ibflow.Session, streams: contextlib.AsyncExitStack, sender: _Sender
    ) -> list[Pump]:
        tag = symbol.strip().upper()
        contract = schemas.ContractSpec(
            symbol=tag, sec_type=sec_type, exchange=exchange, currency=currency
        ).to_contract()
        bars = await streams.enter_async_context(
            session.live_bars(
                contract, period, lookback, forming, what=what, rth=rth, buffer=_BAR_BUFFER
            )
        )

        async def pump() -> None:
            async for item in bars:
                message: BaseModel = (
                    schemas.GapMessage.of(item, tag)
                    if isinstance(item, ibflow.Gap)
                    else schemas.BarMessage.of(item, tag)
                )
                await sender.send(message)

        return [pump]

    await _serve(websocket, open_streams)
