"""A linear receive path for ib_async's ``Client``, installed per instance.

ib_async 2.1 parses incoming bytes in ``Client._onSocketHasData``: it appends each chunk to a
``bytes`` buffer and, after every frame, re-slices the rest of the buffer. When the client falls
behind, asyncio hands it 256 KiB chunks holding ~12k frames, and re-copying the remainder after
each one makes the cost per chunk grow with the square of its size, exactly when speed matters
(``../shared/ib-limits.md`` measured ib_async at ~55k msg/s under a flood; this machine's
figures are in ``docs/benchmarks.md``).

:func:`install_fast_receive` swaps that handler, on one ``Client`` instance, for one that walks
the frames of a chunk by offset and trims the buffer once per chunk (an all-ASCII chunk, as
quotes are, is also decoded to text once instead of frame by frame). Everything else stays
ib_async's: the same decoder (``client.decoder.interpret``), the same handshake detection and
start-up sniffing of ``nextValidId``/``managedAccounts``, the same counters, hooks, debug log
and disconnect handling, in the same order. It is installed only on the ib_async version it was
written against and only if the attributes it uses have the expected shape; otherwise ib_async's
own handler stays (logged once at DEBUG). ``IBFLOW_FAST_RECEIVE=0`` turns it off.
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
    "uninstall_fast_receive",
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

_unpack_from = struct.Struct(">I").unpack_from
_fallback_logged = False


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


class _FastReceive:
    """ib_async's receive handler, with offsets instead of a re-slice per frame."""

    __slots__ = ("_client", "active")

    def __init__(self, client: Client) -> None:
        # A weak reference: the handler lives in the client's own event, so a strong one would
        # make a cycle that only the garbage collector could free.
        self._client = weakref.ref(client)
        self.active = True

    def __call__(self, data: bytes) -> None:
        client = self._client()
        if client is None:
            return
        if not self.active:
            type(client)._onSocketHasData(client, data)
            return
        self._receive(client, data)

    @staticmethod
    def _receive(client: Any, data: bytes) -> None:
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
            _steady(client, buf)
        elif not _starting(client, buf, debug):
            return  # the server is too old: disconnected, as ib_async does
        if client._tcpDataProcessed:
            client._tcpDataProcessed()


def _steady(client: Any, buf: bytes | bytearray) -> None:
    """Hand every complete frame of ``buf`` to the decoder; keep the rest in ``_data``.

    The API is up and debug logging is off, so every frame goes straight to the decoder. When
    the chunk is all ASCII (quotes are), one decode serves all its frames: byte offsets are
    character offsets then, and each slice is what a per-frame decode would have produced.
    """
    interpret = client.decoder.interpret
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
            interpret(fields)
            if client._data is not buf:
                break  # reset by a callback: the rest of this chunk is dropped, as before
    finally:
        _keep_rest(client, buf, pos)


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
                    # The API is ready once both nextValidId and managedAccounts are in.
                    msg_id = int(fields[0])
                    if msg_id == 9:
                        _, _, valid_id = fields
                        client.updateReqId(int(valid_id))
                        client._hasReqId = True
                    elif msg_id == 15:
                        _, _, accounts = fields
                        client._accounts = [a for a in accounts.split(",") if a]
                    if client._hasReqId and client._accounts:
                        client._apiReady = True
                        client.apiStart.emit()
                interpret(fields)
            if client._data is not buf:
                break  # reset by a callback: the rest of this chunk is dropped, as before
    finally:
        _keep_rest(client, buf, pos)
    return True


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


def is_fast_receive(client: Client) -> bool:
    """True if ``client`` parses incoming bytes with the fast path."""
    handler = getattr(client, _ATTR, None)
    return isinstance(handler, _FastReceive) and handler.active
