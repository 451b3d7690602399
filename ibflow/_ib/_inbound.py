"""A bound on what the receive path buffers: a corrupt stream is a lost link at once.

Every frame from TWS is a 4-byte big-endian length and that many bytes, and its text starts
with a message id. ib_async buffers whatever a length promises, so one corrupt prefix (2³¹−1,
say) makes it hold every later byte and answer nothing until the heartbeat gives up on the link.
TWS and the official client refuse frames over 16 MiB − 1; :func:`install_inbound_guard` does
the same on an ib_async ``Client``, whichever receive path parses its bytes (ibflow's fast path
or ib_async's own).

It listens to the socket's data right after the receive handler, when every complete frame of
the chunk has been handled and the buffer holds only the frame still incomplete. That frame is
checked: a length over the limit, or a text that does not start with a message id, means the
stream is corrupt, and ``on_corrupt`` is called with the reason (the adapter drops the socket,
and the session reconnects as after any lost link). A read brings at most a few hundred KiB, so
a frame longer than that is always incomplete right after the read that brought its length:
no frame over the limit is ever buffered beyond one read, and none is ever handled.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable
from types import MethodType

from ib_async.client import Client

from .._log import get_logger

__all__ = ["MAX_FRAME", "corrupt_reason", "install_inbound_guard"]

log = get_logger("session")

MAX_FRAME = 0xFFFFFF  # bytes in one frame's text: TWS's and the official client's limit
_DIGITS = frozenset(b"0123456789")
_unpack_from = struct.Struct(">I").unpack_from


def corrupt_reason(pending: bytes | bytearray) -> str:
    """Why the incomplete frame at the head of ``pending`` cannot be TWS's, or ``""``."""
    if len(pending) < 4:
        return ""
    size: int = _unpack_from(pending, 0)[0]
    if size > MAX_FRAME:
        return f"corrupt stream: a frame length of {size} bytes, over the {MAX_FRAME}-byte limit"
    if len(pending) > 4 and pending[4] not in _DIGITS:
        return (
            f"corrupt stream: a frame that starts with {bytes(pending[4:12])!r}, not a message id"
        )
    return ""


class _InboundGuard:
    """The ``conn.hasData`` listener that checks the client's buffer after each read."""

    __slots__ = ("_client", "_on_corrupt")

    def __init__(self, client: Client, on_corrupt: Callable[[str], None]) -> None:
        # Weak, like the fast path's handler: the guard lives in the client's own event, and
        # the callback's owner (the adapter) owns the client, so strong ones would make cycles.
        self._client = weakref.ref(client)
        self._on_corrupt: Callable[[], Callable[[str], None] | None]
        if isinstance(on_corrupt, MethodType):
            self._on_corrupt = weakref.WeakMethod(on_corrupt)
        else:
            self._on_corrupt = lambda: on_corrupt

    def __call__(self, _data: bytes) -> None:
        client = self._client()
        if client is None:
            return
        reason = corrupt_reason(client._data)
        if reason:
            log.warning("%s; dropping the link", reason)
            on_corrupt = self._on_corrupt()
            if on_corrupt is not None:
                on_corrupt(reason)


def install_inbound_guard(client: Client, on_corrupt: Callable[[str], None]) -> None:
    """Call ``on_corrupt(reason)`` when the bytes ``client`` receives cannot be TWS frames.

    Install it after the receive handler (after :func:`install_fast_receive`, if that is used)
    and before listeners that expect parsed state. ``on_corrupt`` must drop the connection: the
    client's buffer is only bounded because no more bytes are read after it was called.
    """
    client.conn.hasData.connect(_InboundGuard(client, on_corrupt), keep_ref=True)
