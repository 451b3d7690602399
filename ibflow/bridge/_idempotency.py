"""Idempotency keys for ``POST /orders``: an order is sent once, however often it is asked for.

An HTTP client that times out cannot know whether its order went out, so it retries; without
a key that retry is a second order. Every ``POST /orders`` therefore carries an
``Idempotency-Key`` header (as in the IETF draft and Stripe's API): the first request with a key
runs, and every later one with that key gets the first one's answer — success or error, byte for
byte, with ``Idempotent-Replayed: true`` — without sending anything.

The placement runs in a task of its own, not in the request: a client that disconnects while
its order is in flight does not cancel it half-way, and its retry (with the same key) waits for
that same task instead of starting another. A key reused with a different body is refused with
422, because its first answer describes another order.

An answer that says nothing was sent (ibflow refused the order before sending it: bad terms, an
unknown symbol, a safety rail) is not kept: the key stays free for the corrected request.

The store is in memory and bounded: a key is remembered for ``ttl`` seconds, or until
``max_keys`` newer keys pushed it out, whichever comes first; keys still in flight are never
evicted. What outlives a restart is the second layer: a key :func:`order_key` accepts is also
the order's ibflow key (``Session.place(key=...)``), which TWS and the journal remember; the
store adds the byte-for-byte answer, errors included, and the 422 for a reused key.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

import ibflow

from ._errors import BridgeError

__all__ = ["Answer", "IdempotencyStore", "check_key", "order_key"]

_REPLAYED = "Idempotent-Replayed"
_MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished HTTP answer, kept so a repeated key gets exactly the same one."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    keep: bool = True
    """Remember it for the key; False when nothing was sent, so the key may be used again."""

    def response(self, *, replayed: bool) -> Response:
        headers = {**self.headers, _REPLAYED: "true" if replayed else "false"}
        return Response(
            self.body, status_code=self.status, headers=headers, media_type="application/json"
        )


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    task: asyncio.Task[Answer]
    created: float


def check_key(key: str | None) -> str:
    """The ``Idempotency-Key`` header's value, or a 400 that says what to send.

    Raises:
        BridgeError: missing, empty, too long, or not printable ASCII.
    """
    if key is None or not key.strip():
        raise BridgeError(
            400,
            "IdempotencyKeyRequired",
            "POST /orders needs an Idempotency-Key header: a unique value per order, such as a "
            "UUID (Idempotency-Key: 4f1c2a9e-...). Send the same key again when you retry, and "
            "the order is never placed twice.",
        )
    key = key.strip()
    if len(key) > _MAX_KEY_LENGTH or not all(32 <= ord(ch) < 127 for ch in key):
        raise BridgeError(
            400,
            "InvalidIdempotencyKey",
            f"an Idempotency-Key must be printable ASCII of at most {_MAX_KEY_LENGTH} "
            "characters; a UUID works",
        )
    return key


class IdempotencyStore:
    """Answers by idempotency key, bounded by count and age.

    Args:
        max_keys: how many keys to remember at most.
        ttl: how many seconds a key is remembered.
    """

    def __init__(self, *, max_keys: int = 10_000, ttl: float = 24 * 3600.0) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ibflow.InvalidRequest(f"max_keys must be a positive integer, got {max_keys!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
            raise ibflow.InvalidRequest(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._max_keys = max_keys
        self._ttl = float(ttl)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, key: str, fingerprint: str, work: Callable[[], Coroutine[Any, Any, Answer]]
    ) -> tuple[Answer, bool]:
        """The answer for ``key``: from ``work()`` the first time, remembered afterwards.

        ``work`` must turn every outcome into an :class:`Answer` (errors included). Returns the
        answer and whether it was replayed.

        Raises:
            BridgeError: the key was used with another body (422), or the store is full of
                requests still in flight (503).
        """
        self._expire()
        entry = self._entries.get(key)
        replayed = entry is not None
        if entry is None:
            self._make_room()
            entry = _Entry(fingerprint, asyncio.create_task(work()), time.monotonic())
            self._entries[key] = entry
            entry.task.add_done_callback(lambda task: self._settle(key, task))
        elif entry.fingerprint != fingerprint:
            raise BridgeError(
                422,
                "IdempotencyKeyReused",
                "this Idempotency-Key was already used for a different request; use a new key "
                "for a new order",
            )
        # Shielded: the placement belongs to the key, not to whichever request awaits it.
        return await asyncio.shield(entry.task), replayed

    async def drain(self) -> None:
        """Wait for the placements still in flight (before the session closes)."""
        pending = [e.task for e in self._entries.values() if not e.task.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _settle(self, key: str, task: asyncio.Task[Answer]) -> None:
        """Free the key of an answer that is not to be kept (callers waiting still get it)."""
        entry = self._entries.get(key)
        if entry is None or entry.task is not task or task.cancelled():
            return
        if task.exception() is None and not task.result().keep:
            del self._entries[key]

    def _expire(self) -> None:
        oldest = time.monotonic() - self._ttl
        for key, entry in list(self._entries.items()):
            if entry.created > oldest:
                break  # insertion order is age order
            if entry.task.done():
                del self._entries[key]

    def _make_room(self) -> None:
        if len(self._entries) < self._max_keys:
            return
        for key, entry in list(self._entries.items()):
            if entry.task.done():
                del self._entries[key]
                return
        raise BridgeError(
            503,
            "TooManyOrdersInFlight",
            f"{self._max_keys} orders are being placed right now; retry shortly",
        )


_ORDER_KEY_LIMIT = 64


def order_key(key: str) -> str | None:
    """``key`` when ibflow can send it as the order's key (IB's orderRef): 1 to 64 printable
    ASCII characters, no space, no ``:``. Otherwise ``None``: the bridge's store alone holds it.
    """
    usable = len(key) <= _ORDER_KEY_LIMIT and all(33 <= ord(ch) < 127 for ch in key)
    return key if usable and ":" not in key else None
