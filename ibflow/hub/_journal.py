"""The hub's order journal: every order event and fill, once, in a JetStream stream.

Each order a remote session places through the hub carries a tag in its ``order_ref``
(``hub:<remote>:<key digest>``, after the user's own ``order_ref`` and a ``|`` if it has one;
every leg of a bracket or OCA group carries the same tag), so its owner is known from anything
TWS reports about it, even to a hub that did not place it (after a failover, or a restart).
The hub never passes the remote's key to ``Session.place(key=)``: IB's order reference holds
one value, and it holds the tag; a session key cannot contain ``:``, so no tag is ever taken
for one. Events go to
``ibflow.<hub>.orders.<remote>.event`` and fills to ``ibflow.<hub>.orders.<remote>.fill`` in
the stream ``IBFLOW_<hub>_ORDERS``, each with a ``Nats-Msg-Id`` derived from what it reports
(the execution id for a fill), so JetStream keeps one copy however many times, and by however
many hubs, it is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

import ibflow

from ._protocol import dumps, encode, stop_tasks

__all__ = ["OrderJournal", "event_subject", "fill_subject", "stream_name", "tagged"]

_log = logging.getLogger("ibflow.hub")
_DAY = 24 * 3600.0
_SWEEP_EVERY = 1.0  # seconds between reads of TWS while orders of an earlier hub are working
_TAG = re.compile(r"(?:^|\|)hub:([A-Za-z0-9_-]{1,64}):([0-9a-f]{16})$")
_REF_LIMIT = 128  # IB's order reference, as ibflow.Order checks it


def stream_name(hub: str) -> str:
    return f"IBFLOW_{hub}_ORDERS"


def event_subject(hub: str, remote: str) -> str:
    return f"ibflow.{hub}.orders.{remote}.event"


def fill_subject(hub: str, remote: str) -> str:
    return f"ibflow.{hub}.orders.{remote}.fill"


def tag_of(remote: str, digest: str) -> str:
    return f"hub:{remote}:{digest[:16]}"


def owner_of(order_ref: str | None) -> tuple[str, str] | None:
    """The remote name and key digest an ``order_ref`` was tagged with, if any."""
    found = _TAG.search(order_ref or "")
    return (found.group(1), found.group(2)) if found else None


def _tag_one(order: ibflow.Order, tag: str) -> ibflow.Order:
    if order.order_ref is None:
        return replace(order, order_ref=tag)
    room = _REF_LIMIT - len(tag) - 1
    if len(order.order_ref) > room:
        raise ibflow.InvalidRequest(
            f"through a hub, order_ref is kept before the hub's tag {tag!r} and may be at "
            f"most {room} characters, got {len(order.order_ref)}: shorten it"
        )
    return replace(order, order_ref=f"{order.order_ref}|{tag}")


def tagged(
    order: ibflow.Order | ibflow.Bracket | ibflow.OcaGroup, remote: str, digest: str
) -> ibflow.Order | ibflow.Bracket | ibflow.OcaGroup:
    """``order`` (each leg of a bracket or group) with the hub's tag after its ``order_ref``."""
    tag = tag_of(remote, digest)
    if isinstance(order, ibflow.Bracket):
        return replace(
            order,
            parent=_tag_one(order.parent, tag),
            take_profit=_tag_one(order.take_profit, tag),
            stop_loss=_tag_one(order.stop_loss, tag),
        )
    if isinstance(order, ibflow.OcaGroup):
        return replace(order, orders=tuple(_tag_one(o, tag) for o in order.orders))
    return _tag_one(order, tag)


def event_id(event: ibflow.OrderEvent, client_id: int | None) -> str:
    """The same id for the same fact, whichever hub reports it."""
    kind = event.kind
    if kind in (ibflow.OrderEventKind.FILL, ibflow.OrderEventKind.COMMISSION) and event.fill:
        return f"ev:{kind.value}:{event.fill.exec_id}"
    who = f"p{event.perm_id}" if event.perm_id else f"o{client_id}.{event.order_id}"
    if kind is ibflow.OrderEventKind.STATUS:
        return f"ev:status:{who}:{event.status.value}:{event.filled:g}"
    return f"ev:{kind.value}:{who}:{event.at.isoformat()}:{event.code}"


class OrderJournal:
    """Publish the events and fills of the orders remote sessions placed; see module doc."""

    def __init__(self, session: ibflow.Session, hub: str) -> None:
        self._session = session
        self._hub = hub
        self._js: JetStreamContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._followed: set[int] = set()  # order ids of this session's trades being followed
        self._order_ids: dict[int, int] = {}  # perm id → order id, as TWS reported them
        self._published_fills = 0
        self._sweep_failing = False
        self._published_events = 0

    def statistics(self) -> dict[str, int]:
        return {
            "fills_published": self._published_fills,
            "events_published": self._published_events,
        }

    async def start(self, js: JetStreamContext, *, replicas: int = 1) -> None:
        """Create (or reuse) the stream, publish what TWS reports of earlier hubs' orders."""
        self._js = js
        config = StreamConfig(
            name=stream_name(self._hub),
            subjects=[f"ibflow.{self._hub}.orders.>"],
            max_age=_DAY,
            duplicate_window=_DAY,
            num_replicas=replicas,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)
        self._spawn(self._fills())
        self._spawn(self._sweep_while_foreign())

    async def aclose(self) -> None:
        await stop_tasks(self._tasks)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def follow(self, trade: ibflow.Trade, remote: str) -> None:
        """Publish every event of ``trade`` (its history first) for ``remote``."""
        if trade.order_id not in self._followed:
            self._followed.add(trade.order_id)
            self._spawn(self._follow(trade, remote))

    async def _follow(self, trade: ibflow.Trade, remote: str) -> None:
        subject = event_subject(self._hub, remote)
        with contextlib.suppress(ibflow.IBFlowError):
            async for event in trade.events():
                await self._publish(subject, event, event_id(event, trade.client_id))
                self._published_events += 1

    async def _publish(self, subject: str, value: Any, msg_id: str) -> None:
        """Publish with JetStream de-duplication, retrying while NATS is away."""
        assert self._js is not None
        payload = dumps({"item": encode(value)})
        while True:
            try:
                await self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                return
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                _log.warning("hub %s: journal publish failed (%s); retrying", self._hub, exc)
                await asyncio.sleep(0.25)

    async def publish_fill(self, fill: ibflow.Fill) -> bool:
        """Publish ``fill`` to its owner's subject; False when no remote owns it."""
        owner = owner_of(fill.order_ref)
        if owner is None:
            return False
        await self._publish(fill_subject(self._hub, owner[0]), fill, f"fill:{fill.exec_id}")
        self._published_fills += 1
        return True

    async def _fills(self) -> None:
        """This session's fills as they come (with their commission); a sweep after a gap."""
        while True:
            try:
                async with self._session.fills_stream(buffer=4096) as fills:
                    await self.sweep()  # what happened before the stream opened
                    async for fill in fills:
                        await self.publish_fill(fill)
                return  # the session closed
            except ibflow.SlowConsumer:
                continue  # reopen; the sweep re-reads what was missed, de-duplicated
            except ibflow.IBFlowError as exc:
                _log.warning("hub %s: the session's fills ended: %s", self._hub, exc)
                return

    async def sweep(self) -> int:
        """Publish what TWS reports of tagged orders this session does not follow: today's
        fills and each order's status. Returns how many of those orders still work."""
        try:
            fills, rows = await self._tws_view()
        except ibflow.IBFlowError as exc:
            if not self._sweep_failing:  # once per run of failures, not every second
                _log.warning("hub %s: could not read orders and fills from TWS: %s", self._hub, exc)
            self._sweep_failing = True
            return 1
        self._sweep_failing = False
        for fill in fills:
            await self.publish_fill(fill)
        working = 0
        for owner, row in rows:
            if row.order_id is None or row.order_id in self._followed:
                continue
            working += not row.status.is_done
            event = ibflow.OrderEvent(
                kind=ibflow.OrderEventKind.STATUS,
                order_id=row.order_id,
                perm_id=row.perm_id,
                status=row.status,
                filled=row.filled,
                remaining=row.remaining,
                at=datetime.now(UTC),
            )
            subject = event_subject(self._hub, owner)
            await self._publish(subject, event, event_id(event, row.client_id))
            self._published_events += 1
        return working

    async def _tws_view(self) -> tuple[list[ibflow.Fill], list[tuple[str, ibflow.OrderSnapshot]]]:
        """Today's fills, and the tagged orders TWS knows (working and completed), each with
        its owner and order id (completed orders carry none on the wire: their fills do)."""
        session = self._session
        fills = await session.fills()
        rows = [*await session.open_orders(), *await session.completed_orders(api_only=True)]
        ids = self._order_ids  # kept across reads: a done order is no longer open
        ids.update({f.perm_id: f.order_id for f in fills if f.perm_id and f.order_id is not None})
        ids.update({r.perm_id: r.order_id for r in rows if r.perm_id and r.order_id is not None})
        tagged_rows = []
        seen: set[int | None] = set()
        for row in rows:
            owner = owner_of(row.order_ref)
            if owner is None or (row.perm_id in seen and row.perm_id):
                continue
            seen.add(row.perm_id)
            if row.order_id is None and row.perm_id is not None:
                row = replace(row, order_id=ids.get(row.perm_id))
            tagged_rows.append((owner[0], row))
        return fills, tagged_rows

    async def _sweep_while_foreign(self) -> None:
        """Orders an earlier hub placed are not this session's trades: while some still work,
        read TWS every second so their fills and status still reach their owners."""
        while True:
            await asyncio.sleep(_SWEEP_EVERY)
            if not await self.sweep():
                return

    async def find(self, remote: str, digest: str) -> list[ibflow.OrderSnapshot]:
        """The orders (one per leg, by order id) an earlier hub placed with this tag, as TWS
        knows them."""
        tag = tag_of(remote, digest)
        _, rows = await self._tws_view()
        found = [r for _, r in rows if (r.order_ref or "").endswith(tag) and r.order_id]
        return sorted(found, key=lambda r: r.order_id or 0)

    async def working_owner(self, order_id: int) -> str | None:
        """The remote that placed working order ``order_id`` (by its tag), if any."""
        for row in await self._session.open_orders():
            owner = owner_of(row.order_ref)
            if row.order_id == order_id and owner is not None:
                return owner[0]
        return None
