"""Answers of any size over NATS, whose messages carry at most ``max_payload`` bytes.

A remote session asks on an inbox of its own, naming its server's ``max_payload``. The hub
answers in one message when the answer fits in half the smaller of the two limits; otherwise
it sends a header ``{"chunks": n, "size": bytes, "id": ...}`` and then ``n`` parts, each
labelled with the id and its index in a message header. The remote takes the parts in order,
checks they are all there and add up to the size, and only then decodes: a part that never
arrives within the call's timeout is a ``RequestTimeout``, never a partial answer. The inbox
is unsubscribed however the call ends, cancellation included.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import nats.errors
import nats.js.api
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

import ibflow

from ._protocol import dumps, loads

__all__ = ["ask", "part_limit", "send_answer"]

_PART = "Ibflow-Part"  # message header of a part: "<answer id> <index>"
_NO_RESPONDERS = "503"
_SMALLEST_PART = 1024


def part_limit(own: int, theirs: object) -> int:
    """The most bytes one message of an answer carries: half the smaller ``max_payload``,
    leaving room for headers and protocol framing."""
    limits = [own]
    if isinstance(theirs, int) and not isinstance(theirs, bool) and theirs > 0:
        limits.append(theirs)
    return max(_SMALLEST_PART, min(limits) // 2)


async def send_answer(nc: NATS, subject: str, payload: bytes, limit: int) -> None:
    """Publish ``payload`` to ``subject`` whole if it fits in ``limit`` bytes, else in parts."""
    if len(payload) <= limit:
        await nc.publish(subject, payload)
        return
    count = -(-len(payload) // limit)
    ident = uuid.uuid4().hex
    await nc.publish(subject, dumps({"chunks": count, "size": len(payload), "id": ident}))
    for index in range(count):
        part = payload[index * limit : (index + 1) * limit]
        await nc.publish(subject, part, headers={_PART: f"{ident} {index}"})


async def ask(nc: NATS, subject: str, payload: bytes, wait: float, what: str) -> object:
    """Publish a request to ``subject`` and return its answer as JSON data, reassembled from
    its parts if it came in several; ``what`` names the call in errors.

    Raises ``RequestTimeout`` when the answer (all its parts) has not arrived within ``wait``
    seconds; ``nats.errors.NoRespondersError`` when nobody serves ``subject``.
    """
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    received = 0
    count: object = None
    try:
        async with asyncio.timeout(wait):
            try:
                await nc.publish(subject, payload, reply=inbox)
            except nats.errors.MaxPayloadError:
                raise ibflow.InvalidRequest(
                    f"the request {what} is {len(payload):,} bytes, more than the NATS server "
                    f"carries in one message ({nc.max_payload:,}): ask for fewer items at once"
                ) from None
            first = await sub.next_msg(timeout=None)
            if _status(first) == _NO_RESPONDERS:
                raise nats.errors.NoRespondersError
            head = loads(first.data)
            if not (isinstance(head, dict) and "chunks" in head):
                return head
            count, size, ident = head.get("chunks"), head.get("size"), head.get("id")
            if not (isinstance(count, int) and count > 0 and isinstance(size, int)):
                raise _damaged(what, f"a header without a valid part count: {head!r}")
            parts: list[bytes] = []
            for index in range(count):
                msg = await sub.next_msg(timeout=None)
                label = (msg.headers or {}).get(_PART)
                if label != f"{ident} {index}":
                    raise _damaged(what, f"part {index} of {count} came as {label!r}")
                parts.append(msg.data)
                received += 1
            whole = b"".join(parts)
            if len(whole) != size:
                raise _damaged(what, f"{len(whole):,} bytes arrived, the hub sent {size:,}")
            return loads(whole)
    except TimeoutError:
        got = f" ({received} of {count} parts arrived)" if count is not None else ""
        raise ibflow.RequestTimeout(
            f"the hub did not answer {what} within {wait:g} s{got}"
        ) from None
    finally:
        # A closed connection took its subscriptions with it.
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()


def _status(msg: Msg) -> str | None:
    return (msg.headers or {}).get(nats.js.api.Header.STATUS)


def _damaged(what: str, detail: str) -> ibflow.IBFlowError:
    return ibflow.IBFlowError(f"the hub's answer to {what} arrived damaged: {detail}")
