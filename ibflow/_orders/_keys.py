"""Client order keys: ``place(..., key=...)`` places an order at most once per key.

A key travels as IB's ``orderRef``, which TWS keeps on the order and returns on openOrder,
completedOrder and every execution, so an order can be found again by its key from any
process. Before sending, ``place`` looks the key up: among this session's trades, in the
journal, then at TWS (every client's open orders, and today's completed orders). A known key
returns that order's ``Trade`` and sends nothing. One lock per key makes concurrent calls with
the same key send once.

A bracket's legs carry ``key``, ``key:tp`` and ``key:sl``; an OCA group's ``key:1``…``key:n``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from .._core import SessionCore
from .._errors import IBFlowError, InvalidRequest, SafetyError
from .._log import get_logger
from .._records.orders import (
    Bracket,
    Fill,
    OcaGroup,
    Order,
    OrderEventKind,
    OrderSnapshot,
    OrderStatus,
)
from ._adopt import order_of
from ._book import OrderBook
from ._checks import exec_key
from ._journal import Intent, Journal, JournalEntry, commission_fields, order_fields
from ._trade import Trade

__all__ = ["KEY_LIMIT", "Keys", "Reads", "check_key", "keyed", "leg_keys"]

log = get_logger("orders")

_INDEX_FLOOR: Final = 16  # with max_finished_trades: how many keys the index keeps at least
KEY_LIMIT: Final = 64
"""Longest key: a bracket's ``:tp``/``:sl`` suffix still fits IB's order reference."""


class Reads(Protocol):
    """The reads a key lookup needs (the orders feature's own)."""

    async def every_open_order(self) -> list[OrderSnapshot]: ...

    async def completed_orders(
        self, *, api_only: bool = False, timeout: float | None = ...
    ) -> list[OrderSnapshot]: ...

    async def fills(self, since: None = None, *, timeout: float | None = ...) -> list[Fill]: ...


def check_key(key: object) -> str:
    """``key`` if it can name an order at TWS; ``InvalidRequest`` otherwise."""
    if not isinstance(key, str):
        raise InvalidRequest(f"key must be a string, got {type(key).__name__} {key!r:.80}")
    if not key or len(key) > KEY_LIMIT or not all(33 <= ord(ch) < 127 for ch in key):
        raise InvalidRequest(
            f"key must be 1 to {KEY_LIMIT} printable ASCII characters without spaces (it is "
            f"sent as IB's orderRef), got {key!r:.80}"
        )
    if ":" in key:
        raise InvalidRequest(
            f"key {key!r:.80} contains ':', which names the legs of a keyed bracket or OCA group "
            "(key:tp, key:sl, key:1…); use another separator, such as '-' or '.'"
        )
    return key


def leg_keys(order: object, key: str) -> list[str]:
    """The key of each leg, in the order the legs are sent."""
    if isinstance(order, Bracket):
        return [key, f"{key}:tp", f"{key}:sl"]
    if isinstance(order, OcaGroup):
        return [f"{key}:{n}" for n in range(1, len(order.orders) + 1)]
    return [key]


def keyed(spec: Order, key: str) -> Order:
    """``spec`` with ``key`` as its order reference; a different explicit one is refused."""
    if spec.order_ref is not None and spec.order_ref != key:
        raise InvalidRequest(
            f"the order already has order_ref={spec.order_ref!r}, and key {key!r} is sent as "
            "the order reference: drop one of them (or make them equal)"
        )
    return replace(spec, order_ref=key)


class Keys:
    """One session's keyed orders: the key index, the per-key locks and the journal."""

    def __init__(self, core: SessionCore, book: OrderBook, reads: Reads) -> None:
        self.core = core
        self.book = book
        self.reads = reads
        self.journal: Journal | None = None
        self.index: dict[str, Trade] = {}
        self.tws_refs: dict[str, OrderSnapshot] | None = None
        # Keys whose settled trade left the index, with its order id (see _retire).
        self._retired: dict[str, int] = {}
        self._watermark = max(core.max_finished_trades, _INDEX_FLOOR)
        self._locks: dict[str, list[Any]] = {}  # key → [its lock, how many hold or wait]
        self._recorders: set[asyncio.Task[None]] = set()

    # -- locking ----------------------------------------------------------------------------

    async def acquire(self, key: str) -> None:
        """Take ``key``'s lock: one lookup-and-place per key at a time (``release`` after)."""
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._drop(key)
            raise

    def release(self, key: str) -> None:
        self._locks[key][0].release()
        self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._locks[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self._locks[key]

    # -- lookup -------------------------------------------------------------------------------

    async def resolve(self, keys: Sequence[str]) -> list[Trade] | None:
        """The trades already placed under ``keys``, or ``None`` when none was (send them).

        Raises ``SafetyError`` when only some legs are known: placing the rest could double a
        part of the group.
        """
        found = [self._known(k) for k in keys]
        if all(t is None for t in found):
            found = await self._at_tws(keys)
        if all(t is None for t in found):
            return None
        if any(t is None for t in found):
            known = [k for k, t in zip(keys, found, strict=True) if t is not None]
            raise SafetyError(
                f"only some legs of key {keys[0]!r} are known ({', '.join(known)}); nothing was "
                "sent. Check session.open_orders() and use a new key for a new group"
            )
        return [t for t in found if t is not None]

    def _known(self, key: str) -> Trade | None:
        trade = self.index.get(key)
        if trade is not None:
            return None if _free(trade) else trade
        if self.journal is None:
            return None
        intent = self.journal.latest(key)
        if intent is None or intent.not_sent:
            return None
        trade = self.settled_trade(intent)
        self.index[key] = trade
        return trade

    def settled_trade(self, intent: Intent) -> Trade:
        """A done order from the journal, as a Trade (kept out of the book's id index)."""
        e = intent.entry
        trade = Trade(self.book, e.contract, intent.spec or e.spec, e.order_id, e.client_id)
        if intent.perm_id:
            trade._ack(intent.perm_id)
        latest: dict[str, tuple[int, Fill]] = {}
        for fill in intent.fills:  # a correction replaces the execution it corrects
            base, revision = exec_key(fill.exec_id)
            if base not in latest or revision > latest[base][0]:
                latest[base] = (revision, fill)
        for _, fill in latest.values():
            trade._on_fill(fill, None)
        for commission in intent.commissions:
            trade._on_commission(commission)
        if intent.status is not None:
            trade._on_status(_status(intent.status), perm_id=intent.perm_id)
        return trade

    async def _at_tws(self, keys: Sequence[str]) -> list[Trade | None]:
        """``keys`` among the orders TWS held when this session first looked (every client's
        open orders and today's completed ones); a hit is read again, fresh, to adopt it.

        TWS is asked once per session, not per key: each read costs two of TWS's 50 messages
        a second. Orders this session places are in the index from then on. A key whose
        order here ended lost or rejected is asked about afresh: TWS may have taken it after
        all (its acknowledgement lost with the link), and the first read predates it.
        """
        refs = self.tws_refs
        if refs is None:
            refs = self.remember_tws(await self._read_tws())
        wanted = set(keys)
        retired = [k for k in keys if k in self._retired]
        freed = wanted & self.index.keys()  # in the index, yet free (``_known`` said so)
        if not wanted & refs.keys() and not retired and not freed:
            return [None] * len(keys)
        by_key = {r.order_ref: r for r in await self._read_tws() if r.order_ref in wanted}
        for key in retired:
            if key not in by_key:
                raise SafetyError(
                    f"key {key!r} named order {self._retired[key]} earlier in this session, "
                    "which TWS no longer reports; nothing was sent. Use a new key"
                )
        fills = await self.reads.fills(timeout=None) if by_key else []
        found: list[Trade | None] = []
        for key in keys:
            row = by_key.get(key)
            found.append(None if row is None else self._adopt(key, row, fills))
        return found

    def _retire(self) -> None:
        """Drop settled trades the order book let go of from the index, keeping their keys.

        A long-running bot keeps placing keyed orders; their trades must not pile up here
        once the book dropped them (``max_finished_trades``).
        """
        if len(self.index) <= self._watermark:
            return
        for key, trade in list(self.index.items()):
            gone = self.book.find(trade.client_id, trade.order_id, None) is not trade
            if gone and trade._settled():
                del self.index[key]
                self._retired[key] = trade.order_id
        self._watermark = max(self.core.max_finished_trades, _INDEX_FLOOR, 2 * len(self.index))

    async def _read_tws(self) -> list[OrderSnapshot]:
        open_rows = await self.reads.every_open_order()
        return [*open_rows, *await self.reads.completed_orders(timeout=None)]

    def remember_tws(self, rows: Sequence[OrderSnapshot]) -> dict[str, OrderSnapshot]:
        """Keep the order references TWS reported (open orders first)."""
        refs: dict[str, OrderSnapshot] = {}
        for row in rows:
            if row.order_ref:
                refs.setdefault(row.order_ref, row)
        self.tws_refs = refs
        return refs

    def _adopt(self, key: str, row: OrderSnapshot, fills: list[Fill]) -> Trade:
        """A Trade for an order TWS holds under ``key`` that this session did not place."""
        its = [f for f in fills if row.perm_id and f.perm_id == row.perm_id]
        order_id = row.order_id or next((f.order_id for f in its if f.order_id), 0)
        client_id = row.client_id
        if client_id is None:
            client_id = next((f.client_id for f in its if f.client_id is not None), -1)
        existing = self.book.find(client_id, order_id, row.perm_id)
        if existing is not None:
            self.index[key] = existing
            return existing
        spec = _spec_of(row)
        if spec is None:
            raise SafetyError(
                f"key {key!r} is already used at TWS by order {row.order_id or '?'} (perm id "
                f"{row.perm_id}, {row.order_type} {row.status.value}), which ibflow cannot "
                "follow; nothing was sent. Use another key"
            )
        trade = Trade(self.book, row.contract, spec, order_id, client_id)
        mine = client_id == self.core.client_id
        if (
            mine
            and order_id
            and not row.status.is_done
            and not self.book.taken(client_id, order_id)
        ):
            # TWS reports this client id's orders to it: the book keeps the trade up to date.
            self.book.register(trade)
        trade._ack(row.perm_id)
        for fill in its:
            self.book.on_execution(fill, live=False)
        trade._on_status(row.status, perm_id=row.perm_id, filled=row.filled)
        self.index[key] = trade
        log.info("key %r: found at TWS as order %s (perm id %s)", key, order_id, row.perm_id)
        return trade

    # -- placing -------------------------------------------------------------------------------

    def before_send(self, trades: Sequence[Trade], keys: Sequence[str | None]) -> None:
        """Index and journal legs about to be sent (the journal's commit comes first)."""
        if self.journal is not None:
            entries = [
                JournalEntry(
                    key=k,
                    client_id=t.client_id,
                    order_id=t.order_id,
                    parent_order_id=t.parent_id,
                    oca_group=t._oca_group,
                    oca_type=t._oca_type,
                    contract=t.contract,
                    spec=t.order,
                )
                for t, k in zip(trades, keys, strict=True)
            ]
            try:
                seqs = self.journal.write_intents(entries)
            except sqlite3.Error as exc:
                for trade in trades:
                    self.book.forget(trade)
                raise SafetyError(
                    f"the order journal {str(self.journal.path)!r} could not record the order "
                    f"({exc}); nothing was sent"
                ) from None
            for trade, seq in zip(trades, seqs, strict=True):
                self.follow(trade, seq, 0)
        for trade, k in zip(trades, keys, strict=True):
            if k is not None:
                self.index[k] = trade
                self._retired.pop(k, None)
        self._retire()

    def follow(self, trade: Trade, seq: int, skip: int) -> None:
        """Journal what happens to ``trade`` from its ``skip``-th event on, until it settles."""
        task = asyncio.create_task(self._record(trade, seq, skip), name=f"ibflow-journal-{seq}")
        self._recorders.add(task)
        task.add_done_callback(self._recorders.discard)

    async def _record(self, trade: Trade, seq: int, skip: int) -> None:
        journal = self.journal
        assert journal is not None
        perm = trade.perm_id if skip else None
        seen = 0
        try:
            async for event in trade.events():
                seen += 1
                if seen <= skip:
                    continue
                if event.perm_id and event.perm_id != perm:
                    perm = event.perm_id
                    journal.write_event(seq, "ack", {"perm_id": perm})
                kind = event.kind
                if kind is OrderEventKind.STATUS:
                    reason = trade.lost_reason if event.status is OrderStatus.LOST else None
                    journal.write_event(
                        seq, "status", {"status": event.status.value, "reason": reason}
                    )
                elif kind is OrderEventKind.FILL and event.fill is not None:
                    journal.write_fill(seq, event.fill)
                elif kind is OrderEventKind.COMMISSION and event.fill is not None:
                    if event.fill.commission is not None:
                        journal.write_event(
                            seq, "commission", commission_fields(event.fill.commission)
                        )
                elif kind is OrderEventKind.MODIFIED:
                    journal.write_event(seq, "terms", {"spec": order_fields(trade.order)})
                elif kind is OrderEventKind.MESSAGE and trade._rejected_first:
                    error = trade.error
                    if error is not None:
                        journal.write_event(
                            seq, "rejected", {"code": error.code, "message": error.message}
                        )
            journal.write_event(seq, "settled", {})
        except IBFlowError:
            return  # the session ended: the next start reads the rest back from TWS
        except sqlite3.Error as exc:
            log.error(
                "order journal %s: cannot record order %d: %s", journal.path, trade.order_id, exc
            )

    def close(self) -> None:
        for task in list(self._recorders):
            task.cancel()
        if self.journal is not None:
            self.journal.close()


def _free(trade: Trade) -> bool:
    """Nothing is working under the trade's key: lost, or rejected before TWS acknowledged it."""
    rejected = trade._rejected_first and not trade._acked and trade.error is not None
    return trade.status is OrderStatus.LOST or rejected


def _status(text: str) -> OrderStatus | None:
    try:
        return OrderStatus(text)
    except ValueError:
        return None


def _spec_of(row: OrderSnapshot) -> Order | None:
    """The order spec of a snapshot, when ibflow can hold it: not an algo order (following it
    without its algo would drop the algo at the next modify), nor a type whose terms the
    snapshot lacks (offsets). A trailing stop's stop is where the market moved it: left out."""
    if row.algo_strategy:
        return None
    terms = {
        "limit_price": row.limit_price,
        "stop_price": row.stop_price,
        "trigger_price": row.trigger_price,
        "trail_amount": row.trail_amount,
        "trail_percent": row.trail_percent,
    }
    return order_of(row, terms)
