"""A linear receive path for ib_async's ``Client``, installed per instance.

ib_async 2.1 parses incoming bytes in ``Client._onSocketHasData``: it appends each chunk to a
``bytes`` buffer and, after every frame, re-slices the rest of the buffer. When the client falls
behind, asyncio hands it 256 KiB chunks holding ~12k frames, and re-copying the remainder after
each one makes the cost per chunk grow with the square of its size, exactly when speed matters
(ib_async has been reported at ~55k msg/s under a flood; this machine's
figures are in ``docs/benchmarks.md``).

:func:`install_fast_receive` swaps that handler, on one ``Client`` instance, for one that walks
the frames of a chunk by offset and trims the buffer once per chunk (an all-ASCII chunk, as
quotes are, is also decoded to text once instead of frame by frame). Everything else stays
ib_async's: the same decoder (``client.decoder.interpret``), the same handshake detection and
start-up sniffing of ``nextValidId``/``managedAccounts``, the same counters, hooks, debug log
and disconnect handling, in the same order. It is installed only on the ib_async version it was
written against and only if the attributes it uses have the expected shape; otherwise ib_async's
own handler stays (logged once at DEBUG). ``IBFLOW_FAST_RECEIVE=0`` turns it off.

Ticks are most of what arrives, and ib_async's decoder and wrapper spend about 2 µs on each
(a generic field-conversion loop, a ``TickData`` per tick, a ``ticks`` list nobody reads here):
that caps any receive path in front of them near twice ib_async's own speed. So the tickers
ibflow's quote streams own are registered with :func:`track_ticker`, and for them the frames a
quote is made of (bid, ask, last, their sizes, volume, open/high/low/close, live and delayed)
are applied to the ``Ticker`` right here, field for field as ib_async's ``priceSizeTick`` and
``tickSize`` would, minus the ``ticks`` list. Any other frame, any other request, and any value
ib_async treats specially (a size of 0, an empty or malformed field) still goes to ib_async's
decoder, in arrival order.

A frame of a shape none of this expects (empty, a field short or long, not a number) is never
an error here: it goes to ib_async's decoder, which logs it, and the frames behind it in the
chunk are handled at once.
"""

from __future__ import annotations

import logging
import os
import struct
import weakref
from typing import Any

import ib_async
from ib_async.client import Client

from .._log import get_logger

__all__ = [
    "ENV_VAR",
    "fast_receive_enabled",
    "install_fast_receive",
    "is_fast_receive",
    "track_ticker",
    "uninstall_fast_receive",
    "untrack_ticker",
]

log = get_logger("session")

ENV_VAR = "IBFLOW_FAST_RECEIVE"
_OFF = frozenset({"0", "false", "no", "off"})
_SUPPORTED = (2, 1)  # ib_async major.minor this handler mirrors
_ATTR = "_ibflow_fast_receive"

# The names ib_async 2.1's handler touches. If a 2.1.x release changes what it does, its set of
# names changes too, and the replacement is not installed.
_EXPECTED_NAMES = frozenset(
    {
        "CONNECTED", "Client", "DEBUG", "MinClientVersion", "_accounts", "_apiReady", "_data",
        "_hasReqId", "_logger", "_numBytesRecv", "_numMsgRecv", "_onSocketDisconnected",
        "_serverVersion", "_tcpDataArrived", "_tcpDataProcessed", "apiStart", "connState",
        "connectAck", "debug", "decode", "decoder", "emit", "info", "int", "interpret",
        "isEnabledFor", "join", "len", "logging", "pop", "serverVersion", "split", "startApi",
        "struct", "unpack", "updateReqId", "wrapper",
    }
)  # fmt: skip

# What ib_async 2.1's tick handling reads and writes: if a 2.1.x release changes what these do,
# their names change too, and tracked tickers go back to ib_async's decoder.
_EXPECTED_TICK_NAMES = {
    "priceSizeTick": frozenset(
        {
            "PRICE_TICK_MAP", "TickData", "_logger", "add", "append", "ask", "askSize", "bid",
            "bidSize", "close", "contract", "defaultEmptyPrice", "defaultEmptySize", "error",
            "get", "last", "lastSize", "lastTime", "pendingTickers", "prevAsk", "prevAskSize",
            "prevBid", "prevBidSize", "prevLast", "prevLastSize", "reqId2Ticker", "setattr",
            "ticks",
        }
    ),
    "tickSize": frozenset(
        {
            "SIZE_TICK_MAP", "TickData", "_logger", "add", "append", "ask", "askSize", "bid",
            "bidSize", "contract", "defaultEmptyPrice", "defaultEmptySize", "error", "get",
            "isUnset", "last", "lastSize", "lastTime", "pendingTickers", "prevAskSize",
            "prevBidSize", "prevLastSize", "reqId2Ticker", "setattr", "ticks",
        }
    ),
}  # fmt: skip
_EXPECTED_DECODER_NAMES = frozenset({"float", "int", "priceSizeTick", "wrapper"})

_unpack_from = struct.Struct(">I").unpack_from
_fallback_logged = False
_ticks_fallback_logged = False

# Tick types whose value only lands in one Ticker attribute (ib_async's PRICE_TICK_MAP and
# SIZE_TICK_MAP entries a quote reads), keyed by the type as it arrives on the wire.
_PRICE_ATTRS = {
    "6": "high", "72": "high", "7": "low", "73": "low",
    "9": "close", "75": "close", "14": "open", "76": "open",
}  # fmt: skip
_SIZE_ATTRS = {"8": "volume", "74": "volume"}


def fast_receive_enabled() -> bool:
    """False when ``IBFLOW_FAST_RECEIVE`` is ``0`` (or false/no/off); on by default."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in _OFF


def _unsupported(client: Client) -> str:
    """Why the fast path cannot be installed on ``client``, or ``""`` if it can."""
    info = getattr(ib_async, "__version_info__", ())
    if tuple(info[:2]) != _SUPPORTED:
        return f"ib_async {getattr(ib_async, '__version__', '?')} is not {_SUPPORTED}.x"
    original = getattr(type(client), "_onSocketHasData", None)
    code = getattr(original, "__code__", None)
    if code is None or frozenset(code.co_names) != _EXPECTED_NAMES:
        return "Client._onSocketHasData is not the one ib_async 2.1 shipped"
    conn = getattr(client, "conn", None)
    has_data = getattr(conn, "hasData", None)
    if has_data is None or not callable(getattr(has_data, "connect", None)):
        return "Client.conn.hasData is missing"
    if client._onSocketHasData not in has_data:
        return "Client._onSocketHasData is not connected to conn.hasData"
    decoder = getattr(client, "decoder", None)
    if not callable(getattr(decoder, "interpret", None)) or not hasattr(decoder, "serverVersion"):
        return "Client.decoder has no interpret/serverVersion"
    wrapper = getattr(client, "wrapper", None)
    if not callable(getattr(wrapper, "connectAck", None)):
        return "Client.wrapper has no connectAck"
    for name in ("startApi", "updateReqId", "_onSocketDisconnected"):
        if not callable(getattr(client, name, None)):
            return f"Client.{name} is missing"
    if not callable(getattr(getattr(client, "apiStart", None), "emit", None)):
        return "Client.apiStart is missing"
    if not isinstance(getattr(client, "_logger", None), logging.Logger):
        return "Client._logger is missing"
    shapes: dict[str, type | tuple[type, ...]] = {
        "_data": (bytes, bytearray),
        "_numBytesRecv": int,
        "_numMsgRecv": int,
        "_serverVersion": int,
        "_apiReady": bool,
        "_hasReqId": bool,
        "_accounts": list,
        "MinClientVersion": int,
        "CONNECTED": int,
    }
    for name, kind in shapes.items():
        if not isinstance(getattr(client, name, None), kind):
            return f"Client.{name} is missing or not {kind}"
    for name in ("_tcpDataArrived", "_tcpDataProcessed"):
        if not hasattr(client, name):
            return f"Client.{name} is missing"
    return ""


def _ticks_unsupported(client: Client) -> str:
    """Why tick frames cannot be decoded here for ``client``, or ``""`` if they can."""
    wrapper = getattr(client, "wrapper", None)
    for name, expected in _EXPECTED_TICK_NAMES.items():
        code = getattr(getattr(type(wrapper), name, None), "__code__", None)
        if code is None or frozenset(code.co_names) != expected:
            return f"Wrapper.{name} is not the one ib_async 2.1 shipped"
    if not isinstance(getattr(wrapper, "pendingTickers", None), set):
        return "Wrapper.pendingTickers is not a set"
    if not isinstance(getattr(wrapper, "reqId2Ticker", None), dict):
        return "Wrapper.reqId2Ticker is not a dict"
    handlers = getattr(getattr(client, "decoder", None), "handlers", None)
    if not isinstance(handlers, dict):
        return "Decoder.handlers is missing"
    price = getattr(handlers.get(1), "__func__", None)
    code = getattr(price, "__code__", None)
    if code is None or frozenset(code.co_names) != _EXPECTED_DECODER_NAMES:
        return "the decoder's tickPrice handler is not the one ib_async 2.1 shipped"
    size = handlers.get(2)
    cells = dict(
        zip(
            getattr(getattr(size, "__code__", None), "co_freevars", ()),
            (c.cell_contents for c in getattr(size, "__closure__", None) or ()),
            strict=False,
        )
    )
    if cells.get("methodName") != "tickSize" or cells.get("types") != [int, int, float]:
        return "the decoder's tickSize handler is not the one ib_async 2.1 shipped"
    return ""


class _FastReceive:
    """ib_async's receive handler, with offsets instead of a re-slice per frame."""

    __slots__ = ("_client", "active", "decodes_ticks", "owner", "tickers")

    def __init__(self, client: Client) -> None:
        # A weak reference: the handler lives in the client's own event, so a strong one would
        # make a cycle that only the garbage collector could free.
        self._client = weakref.ref(client)
        self.active = True
        # Tracked tickers by request id as sent on the wire, and the ``reqId2Ticker`` table
        # they were filed in: ib_async replaces that table when it resets for a new
        # connection, and request ids start over, so a stale entry must never match.
        self.tickers: dict[str, Any] = {}
        self.owner: object = None
        self.decodes_ticks = _may_decode_ticks(client)

    def live_tickers(self, client: Any) -> dict[str, Any]:
        """The tracked tickers, forgotten first if ib_async reset since they were tracked."""
        tickers = self.tickers
        if tickers and self.owner is not client.wrapper.reqId2Ticker:
            tickers.clear()
        return tickers

    def __call__(self, data: bytes) -> None:
        client = self._client()
        if client is None:
            return
        if not self.active:
            type(client)._onSocketHasData(client, data)
            return
        self._receive(client, data)

    def _receive(self, client: Any, data: bytes) -> None:
        logger = client._logger
        debug = logger.isEnabledFor(logging.DEBUG)
        if client._tcpDataArrived:
            client._tcpDataArrived()

        pending = client._data
        if pending:
            # Grow in place: a frame larger than one chunk (a year of bars) is then copied
            # once per chunk, not once per chunk for everything received so far.
            if type(pending) is not bytearray:
                pending = bytearray(pending)
            pending += data
            buf: bytes | bytearray = pending
        else:
            buf = data
        # While frames are handled the whole chunk stays in ``_data``; ``reset()`` (a callback
        # disconnecting) replaces it, which is how a reset is noticed below.
        client._data = buf
        client._numBytesRecv += len(data)

        if client._serverVersion and client._apiReady and not debug:
            _steady(client, buf, self.live_tickers(client))
        elif not _starting(client, buf, debug):
            return  # the server is too old: disconnected, as ib_async does
        if client._tcpDataProcessed:
            client._tcpDataProcessed()


def _steady(client: Any, buf: bytes | bytearray, tickers: dict[str, Any]) -> None:
    """Hand every complete frame of ``buf`` to the decoder; keep the rest in ``_data``.

    The API is up and debug logging is off, so every frame goes straight to the decoder,
    except the ticks of tracked tickers that :func:`_price_tick` and :func:`_size_tick` apply
    themselves. When the chunk is all ASCII (quotes are), one decode serves all its frames:
    byte offsets are character offsets then, and each slice is what a per-frame decode would
    have produced.
    """
    interpret = client.decoder.interpret
    # tcpDataArrived (above) gave the wrapper a fresh set for this chunk.
    pending = client.wrapper.pendingTickers
    unpack_from = _unpack_from
    text = buf.decode("ascii") if buf.isascii() else None
    end = len(buf)
    pos = 0
    try:
        while end - pos > 4:
            frame_end = pos + 4 + unpack_from(buf, pos)[0]
            if frame_end > end:
                break
            if text is None:
                fields = buf[pos + 4 : frame_end].decode(errors="backslashreplace").split("\0")
            else:
                fields = text[pos + 4 : frame_end].split("\0")
            pos = frame_end
            fields.pop()  # the empty field after the last NUL
            client._numMsgRecv += 1
            if tickers:
                # Only a frame of a tick's exact shape is looked at here; anything else (an
                # empty frame, a field short or long) is the decoder's to handle or log.
                count = len(fields)
                if count == 7 and fields[0] == "1":
                    ticker = tickers.get(fields[2])
                    if ticker is not None and _price_tick(ticker, fields, pending):
                        continue  # no callback ran, so no reset to look for
                elif count == 5 and fields[0] == "2":
                    ticker = tickers.get(fields[2])
                    if ticker is not None and _size_tick(ticker, fields, pending):
                        continue
            interpret(fields)
            if client._data is not buf:
                break  # reset by a callback: the rest of this chunk is dropped, as before
    finally:
        _keep_rest(client, buf, pos)


def _price_tick(ticker: Any, fields: list[str], pending: set[Any]) -> bool:
    """ib_async's ``priceSizeTick`` for the tick types a quote reads; False: not handled here.

    ``fields`` is a tickPrice frame of seven fields. Unhandled (and left to ib_async,
    untouched): an empty or malformed number, a bid or ask of size 0 (ib_async blanks the
    side), a last of -1 with size 0 (ib_async's TICK-NYSE rule), and every other tick type.
    """
    kind = fields[3]
    text = fields[4]
    if not text:
        return False
    try:
        price = float(text)
        size = float(fields[5] or 0)
    except ValueError:
        return False
    if kind == "1" or kind == "66":
        if not size:
            return False
        ticker.prevBid = ticker.bid
        ticker.prevBidSize = ticker.bidSize
        ticker.bid = price
        ticker.bidSize = size
    elif kind == "2" or kind == "67":
        if not size:
            return False
        ticker.prevAsk = ticker.ask
        ticker.prevAskSize = ticker.askSize
        ticker.ask = price
        ticker.askSize = size
    elif kind == "4" or kind == "68":
        if price == -1 and not size:
            return False
        ticker.prevLast = ticker.last
        ticker.prevLastSize = ticker.lastSize
        ticker.last = price
        ticker.lastSize = size
    else:
        name = _PRICE_ATTRS.get(kind)
        if name is None:
            return False
        setattr(ticker, name, price)
    pending.add(ticker)
    return True


def _size_tick(ticker: Any, fields: list[str], pending: set[Any]) -> bool:
    """ib_async's ``tickSize`` for bid size, ask size and volume; False: not handled here.

    ``fields`` is a tickSize frame of five fields.
    """
    kind = fields[3]
    try:
        size = float(fields[4] or 0)
    except ValueError:
        return False
    if kind == "0" or kind == "69":
        if not size:
            return False
        if size == ticker.bidSize:
            return True  # ib_async ignores a repeated size: the ticker is not even pending
        ticker.prevBidSize = ticker.bidSize
        ticker.bidSize = size
    elif kind == "3" or kind == "70":
        if not size:
            return False
        if size == ticker.askSize:
            return True
        ticker.prevAskSize = ticker.askSize
        ticker.askSize = size
    else:
        name = _SIZE_ATTRS.get(kind)
        if name is None:
            return False
        setattr(ticker, name, size)
    pending.add(ticker)
    return True


def _keep_rest(client: Any, buf: bytes | bytearray, pos: int) -> None:
    # Also on an exception, so frames already handled are never handled twice.
    if client._data is buf and pos:
        client._data = buf[pos:]


def _starting(client: Any, buf: bytes | bytearray, debug: bool) -> bool:
    """Every step of ib_async's handler: handshake, API-ready sniffing, debug log.

    Returns False when the server was too old and the client disconnected.
    """
    logger = client._logger
    interpret = client.decoder.interpret
    unpack_from = _unpack_from
    end = len(buf)
    pos = 0
    try:
        while end - pos > 4:
            frame_end = pos + 4 + unpack_from(buf, pos)[0]
            if frame_end > end:
                break
            fields = buf[pos + 4 : frame_end].decode(errors="backslashreplace").split("\0")
            pos = frame_end
            fields.pop()
            client._numMsgRecv += 1
            if debug:
                logger.debug("<<< %s", ",".join(fields))

            if not client._serverVersion and len(fields) == 2:
                # The handshake answer: server version and connection time.
                client._serverVersion = int(fields[0])
                if client._serverVersion < client.MinClientVersion:
                    client._onSocketDisconnected("TWS/gateway version must be >= 972")
                    return False
                client.decoder.serverVersion = client._serverVersion
                client.connState = Client.CONNECTED
                client.startApi()
                client.wrapper.connectAck()
                logger.info(f"Logged on to server version {client._serverVersion}")
            else:
                if not client._apiReady:
                    _sniff_ready(client, fields)
                interpret(fields)
            if client._data is not buf:
                break  # reset by a callback: the rest of this chunk is dropped, as before
    finally:
        _keep_rest(client, buf, pos)
    return True


def _sniff_ready(client: Any, fields: list[str]) -> None:
    """The API is ready once both nextValidId and managedAccounts are in.

    A frame of another shape (empty, a field short, not a number) is only the decoder's, which
    logs it; the frames after it are handled all the same.
    """
    if len(fields) == 3:
        head = fields[0]
        if head == "9":
            try:
                valid_id = int(fields[2])
            except ValueError:
                return
            client.updateReqId(valid_id)
            client._hasReqId = True
        elif head == "15":
            client._accounts = [a for a in fields[2].split(",") if a]
    if client._hasReqId and client._accounts:
        client._apiReady = True
        client.apiStart.emit()


def install_fast_receive(client: Client) -> bool:
    """Replace ``client``'s receive handler with the linear one; True if it is now in use.

    Call it before anything else connects to ``client.conn.hasData``: the new handler takes
    the original's place at the end of the listener list, and listeners that expect parsed
    state must come after it. Does nothing (returns False) when ``IBFLOW_FAST_RECEIVE=0`` or
    when this ib_async is not the one the handler mirrors.
    """
    global _fallback_logged
    handler = getattr(client, _ATTR, None)
    if isinstance(handler, _FastReceive):
        handler.active = fast_receive_enabled()
        return handler.active
    if not fast_receive_enabled():
        return False
    why = _unsupported(client)
    if why:
        if not _fallback_logged:
            _fallback_logged = True
            log.debug("fast receive path not installed, using ib_async's own: %s", why)
        return False
    handler = _FastReceive(client)
    client.conn.hasData.disconnect(client._onSocketHasData)
    client.conn.hasData.connect(handler, keep_ref=True)
    setattr(client, _ATTR, handler)
    return True


def uninstall_fast_receive(client: Client) -> bool:
    """Go back to ib_async's own handler on ``client``; True if the fast path was in use.

    The listener keeps its place in ``conn.hasData`` and forwards to ib_async's handler, so
    listeners connected after it still run after the bytes are parsed. Partly received frames
    carry over in either direction.
    """
    handler = getattr(client, _ATTR, None)
    if not isinstance(handler, _FastReceive) or not handler.active:
        return False
    handler.active = False
    return True


def _may_decode_ticks(client: Client) -> bool:
    global _ticks_fallback_logged
    why = _ticks_unsupported(client)
    if why and not _ticks_fallback_logged:
        _ticks_fallback_logged = True
        log.debug("ticks of tracked tickers left to ib_async's decoder: %s", why)
    return not why


def track_ticker(client: Client, req_id: int, ticker: ib_async.Ticker) -> bool:
    """Decode the quote ticks of ``req_id`` straight into ``ticker``; True if that is in use.

    ``ticker`` must be filed in ``client.wrapper.reqId2Ticker`` under ``req_id`` (so whatever
    the fast path leaves to ib_async lands in the same object) and be private to its caller:
    its ``ticks`` list is not filled. Does nothing without the fast path, or when ib_async's
    tick handling is not the one this mirrors.
    """
    handler = getattr(client, _ATTR, None)
    if not isinstance(handler, _FastReceive) or not handler.decodes_ticks:
        return False
    table = client.wrapper.reqId2Ticker
    if handler.owner is not table:
        handler.tickers.clear()
        handler.owner = table
    handler.tickers[str(req_id)] = ticker
    return handler.active


def untrack_ticker(client: Client, req_id: int, ticker: ib_async.Ticker) -> None:
    """Stop decoding ``req_id`` into ``ticker`` (if that pair is still tracked)."""
    handler = getattr(client, _ATTR, None)
    if isinstance(handler, _FastReceive) and handler.tickers.get(str(req_id)) is ticker:
        del handler.tickers[str(req_id)]


def is_fast_receive(client: Client) -> bool:
    """True if ``client`` parses incoming bytes with the fast path."""
    handler = getattr(client, _ATTR, None)
    return isinstance(handler, _FastReceive) and handler.active
