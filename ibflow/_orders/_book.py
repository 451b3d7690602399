"""The order book: every Trade of a session, fed by TWS's order messages, reconciled."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from .._account import Contracts
from .._core import SessionCore
from .._errors import (
    IBFlowError,
    RequestError,
    SessionClosedError,
)
from .._ib import _orders as _wire
from .._ib._order_records import OpenOrderUpdate, StatusUpdate
from .._log import get_logger
from .._records.account import ContractDetails
from .._records.contracts import Contract
from .._records.orders import (
    Commission,
    Fill,
    OrderEvent,
    OrderSnapshot,
    OrderStatus,
)
from .._records.symbols import MarketRule
from .._stream import StreamWriter
from ._adopt import adopt, rebind
from ._checks import Facts, exec_key
from ._refs import may_have_reached, reported_under, tie_by_ref
from ._trade import Signal, Trade

__all__ = ["OrderBook"]

log = get_logger("orders")

# The order book registers itself in the session's subscription registry under this key. It
# has no IB request id, and negative keys never receive request errors (those are >= 0).
_RECONCILER_KEY: Final = -4_000_004
# How long a fill waits for its commission report before fills_stream() delivers it anyway.
_COMMISSION_GRACE = 5.0
_MAX_ORPHAN_COMMISSIONS = 1024
_MAX_REJECTED = 256  # orders rejected before an acknowledgement, kept in case TWS holds them


@dataclass(slots=True)
class _SeenExec:
    revision: int
    exec_id: str
    trade: Trade


class _Reconciler:
    """The order book's entry in ``session.subscriptions``: reconnects, 1101, close."""

    kind = "orders"

    def __init__(self, book: OrderBook) -> None:
        self._book = book

    async def resubscribe(self, fresh_link: bool) -> int | None:
        try:
            await self._book.reconcile(fresh_link)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "order reconciliation after %s failed: %r",
                "reconnect" if fresh_link else "1101",
                exc,
            )
        return _RECONCILER_KEY

    def on_error(self, error: RequestError) -> None:
        log.debug("order book got a request error it does not own: %s", error)

    def on_link_down(self) -> None:
        self._book.link_down()

    def on_close(self, error: IBFlowError | None) -> None:
        self._book.close(error)


class OrderBook:
    """One session's trades, fed by the tap; reconciles them after reconnects."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self.core = core
        self._contracts = contracts
        self.trades: dict[tuple[int, int], Trade] = {}
        self.by_perm: dict[int, Trade] = {}
        self.signal = Signal()
        self.closed_error: IBFlowError | None = None
        self.event_streams: set[StreamWriter[OrderEvent]] = set()
        self.fill_streams: set[StreamWriter[Fill]] = set()
        self.completed = _wire.CompletedCollector()
        self.open_lock = asyncio.Lock()
        self.completed_lock = asyncio.Lock()
        self.orphans: set[Trade] = set()
        self.rejected: OrderedDict[tuple[int, int], Trade] = OrderedDict()
        self.link_epoch = 0
        self._facts: dict[Contract, Facts] = {}
        self._execs: dict[str, _SeenExec] = {}
        self._commissions: OrderedDict[str, Commission] = OrderedDict()
        self._pending_fills: dict[str, asyncio.TimerHandle] = {}
        self._seen_since_down: set[Trade] = set()
        # Done trades, in the order they finished; beyond core.max_finished_trades the oldest
        # settled ones leave the book.
        self._finished: OrderedDict[tuple[int, int], Trade] = OrderedDict()
        self._uninstall = core.adapter.orders.install_order_tap(self)
        core.subscriptions.add(_RECONCILER_KEY, _Reconciler(self))
        if core.state == "closed":
            self.close(core.closed_error)
        else:
            # The open orders the start-up sync already reported (the tap adopts later ones).
            for update in core.adapter.orders.known_open_orders():
                self.on_open_order(update)

    # -- lookup ----------------------------------------------------------------------------

    def register(self, trade: Trade) -> None:
        key = _key(trade)
        if self.trades.get(key, trade) is not trade or key in self.rejected:
            # Ids are never handed out twice; refuse rather than lose track of an order.
            raise RuntimeError(f"order id {trade.order_id} is already in use in this session")
        self.trades[key] = trade

    def taken(self, client_id: int, order_id: int) -> bool:
        """Whether this book knows an order under that id (placed, rejected or finished)."""
        key = (client_id, order_id)
        return key in self.trades or key in self.rejected

    def forget(self, trade: Trade) -> None:
        key = _key(trade)
        if self.trades.get(key) is trade:
            del self.trades[key]
        if trade.perm_id is not None and self.by_perm.get(trade.perm_id) is trade:
            del self.by_perm[trade.perm_id]

    def finished(self, trade: Trade) -> None:
        """``trade`` just became done: keep it among the finished, drop the oldest beyond."""
        key = _key(trade)
        if self.trades.get(key) is trade:
            self._finished[key] = trade
        self.prune()

    def prune(self) -> None:
        """Drop finished trades beyond ``max_finished_trades``, oldest first, once settled.

        A settled trade (done, every execution and commission in) will not change again; one
        still waiting for a commission stays until it has it.
        """
        excess = len(self._finished) - self.core.max_finished_trades
        if excess <= 0:
            return
        for key, trade in list(self._finished.items()):
            if excess <= 0:
                break
            if not trade._settled():
                continue
            del self._finished[key]
            excess -= 1
            self.forget(trade)
            self._seen_since_down.discard(trade)
            for fill in trade._fills:
                base, _ = exec_key(fill.exec_id)
                seen = self._execs.get(base)
                if seen is not None and seen.trade is trade:
                    del self._execs[base]
            self.core.adapter.orders.forget_order(
                trade.client_id,
                trade.order_id,
                trade.perm_id,
                [f.exec_id for f in trade._fills],
            )

    def set_aside(self, trade: Trade) -> None:
        """Out of ``trades`` (it was rejected), but found again if TWS reports it after all."""
        if trade._acked:
            return  # TWS already reported the order it rejected: it stays a known trade
        self.forget(trade)
        key = _key(trade)
        self._finished.pop(key, None)
        self.rejected[key] = trade
        while len(self.rejected) > _MAX_REJECTED:
            self.rejected.popitem(last=False)

    def find_reported(
        self, client_id: int | None, order_id: int | None, perm_id: int | None
    ) -> Trade | None:
        """``find``, plus a rejected trade TWS now reports holding (filed again)."""
        trade = self.find(client_id, order_id, perm_id)
        if trade is None and client_id is not None and order_id:
            trade = self.rejected.pop((client_id, order_id), None)
            if trade is not None:
                log.info("order %d: TWS holds the order it rejected", order_id)
                self.register(trade)
        return trade

    def find(
        self, client_id: int | None, order_id: int | None, perm_id: int | None
    ) -> Trade | None:
        if perm_id:
            trade = self.by_perm.get(perm_id)
            if trade is not None:
                return trade
        if client_id is not None and order_id:
            return self.trades.get((client_id, order_id))
        return None

    def live(self) -> list[Trade]:
        return [t for t in self.trades.values() if not t.is_done]

    def raise_if_closed(self) -> None:
        if self.closed_error is not None:
            raise self.closed_error

    # -- contract facts ------------------------------------------------------------------------

    async def facts(self, contract: Contract) -> Facts:
        """The qualified contract and its order rules; looked up once per session.

        Uses the session's ``qualify`` (``ContractNotFound`` / ``AmbiguousContract``) and
        ``contract_details``; the caller's deadline bounds both.
        """
        cached = self._facts.get(contract)
        if cached is not None:
            return cached
        [qualified] = await self._contracts.qualify(contract, timeout=None)
        found = await self._contracts.contract_details(qualified, timeout=None)
        match = next((d for d in found if d.contract.con_id == qualified.con_id), None)
        if match is None and found:
            match = found[0]
        facts = Facts(
            contract=qualified,
            min_tick=match.min_tick if match is not None else None,
            size_increment=match.size_increment if match is not None else None,
            min_size=match.min_size if match is not None else None,
            order_types=match.order_types if match is not None else (),
            price_rule=await self._price_rule(match, qualified),
        )
        self._facts[contract] = facts
        self._facts[qualified] = facts
        return facts

    async def _price_rule(
        self, details: ContractDetails | None, contract: Contract
    ) -> MarketRule | None:
        """IB's market rule for the contract's exchange: the tick at each price level."""
        if details is None or not details.market_rule_ids:
            return None
        ids, venues = details.market_rule_ids, details.valid_exchanges
        rule_id = ids[venues.index(contract.exchange)] if contract.exchange in venues else ids[0]
        try:
            return await self._contracts.market_rule(rule_id, timeout=None)
        except RequestError:
            return None  # an unknown rule: the minimum tick still applies

    def attach(self, stream: StreamWriter[Any], streams: set[Any]) -> None:
        """Start delivering to ``stream`` (or end it at once when the session is closed)."""
        if self.closed_error is not None:
            stream.end()
        else:
            streams.add(stream)

    def with_commission(self, fill: Fill) -> Fill:
        """``fill`` with the commission this book recorded for it, when it has a better one.

        ib_async rewrites an unset realized PnL to 0.0 in its cache; the tap kept the original.
        """
        seen = self._execs.get(exec_key(fill.exec_id)[0])
        kept: Commission | None = None
        if seen is not None and seen.exec_id == fill.exec_id:
            mine = next((f for f in seen.trade._fills if f.exec_id == fill.exec_id), None)
            kept = mine.commission if mine is not None else None
        else:
            # An execution of no trade in the book (another client's, or one dropped as
            # finished): its report, as the tap received it, waits among the orphans.
            kept = self._commissions.get(fill.exec_id)
        if kept is None or kept == fill.commission:
            return fill
        return replace(fill, commission=kept)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, event: OrderEvent) -> None:
        for stream in list(self.event_streams):
            stream.send(event)

    def _publish_fill(self, fill: Fill) -> None:
        handle = self._pending_fills.pop(fill.exec_id, None)
        if handle is not None:
            handle.cancel()
        for stream in list(self.fill_streams):
            stream.send(fill)

    def _hold_fill(self, trade: Trade, fill: Fill) -> None:
        """Deliver a fill to fills streams once its commission is in (or after a grace time)."""
        if not self.fill_streams:
            return
        if fill.commission is not None:
            self._publish_fill(fill)
            return

        def late() -> None:
            self._pending_fills.pop(fill.exec_id, None)
            current = next((f for f in trade._fills if f.exec_id == fill.exec_id), fill)
            for stream in list(self.fill_streams):
                stream.send(current)

        loop = asyncio.get_running_loop()
        self._pending_fills[fill.exec_id] = loop.call_later(_COMMISSION_GRACE, late)

    # -- the tap (OrderListener) ---------------------------------------------------------------

    def on_status(self, update: StatusUpdate) -> None:
        trade = self.find_reported(update.client_id, update.order_id, update.perm_id)
        if trade is None:
            return
        self._seen_since_down.add(trade)
        trade._on_status(
            _status(update.status),
            perm_id=update.perm_id,
            filled=update.filled,
            avg=update.avg_fill_price,
        )

    def on_open_order(self, update: OpenOrderUpdate) -> None:
        trade = self.find_reported(update.client_id, update.order_id, update.perm_id)
        if trade is None:
            trade = adopt(self, update)
            if trade is None:
                return
        rebind(self, trade, update.order_id)
        self._seen_since_down.add(trade)
        trade._ack(update.perm_id)
        if not trade.is_done:
            trade._on_terms(update.quantity, update.terms)
        trade._on_status(_status(update.status), perm_id=update.perm_id)

    def on_completed_order(self, snapshot: OrderSnapshot) -> None:
        trade = self.find(None, None, snapshot.perm_id)
        if trade is not None:
            snapshot = replace(snapshot, order_id=trade.order_id)
            self._seen_since_down.add(trade)
            trade._on_status(snapshot.status, perm_id=snapshot.perm_id, filled=snapshot.filled)
        if self.completed.active:
            self.completed.rows.append(snapshot)

    def on_execution(self, fill: Fill, live: bool) -> None:
        base, revision = exec_key(fill.exec_id)
        seen = self._execs.get(base)
        if seen is not None and revision <= seen.revision:
            return  # already delivered (a re-read after a reconnect, or a fills() call)
        trade = (
            seen.trade
            if seen is not None
            else self.find_reported(fill.client_id, fill.order_id, fill.perm_id)
        )
        if trade is None:
            return
        self._seen_since_down.add(trade)
        corrects = None
        if seen is not None:
            corrects = next((f for f in trade._fills if f.exec_id == seen.exec_id), None)
        commission = self._commissions.pop(fill.exec_id, None)
        fill = replace(fill, contract=trade.contract, commission=commission)
        self._execs[base] = _SeenExec(revision, fill.exec_id, trade)
        if not live:
            log.info(
                "order %d: execution %s recovered by reconciliation", trade.order_id, fill.exec_id
            )
        trade._on_fill(fill, corrects)
        self._hold_fill(trade, fill)

    def on_commission(self, commission: Commission) -> None:
        base, _ = exec_key(commission.exec_id)
        seen = self._execs.get(base)
        if seen is None or seen.exec_id != commission.exec_id:
            # Not ours, or its execution has not arrived yet: keep a few for later.
            self._commissions[commission.exec_id] = commission
            while len(self._commissions) > _MAX_ORPHAN_COMMISSIONS:
                self._commissions.popitem(last=False)
            return
        updated = seen.trade._on_commission(commission)
        if updated is not None and updated.exec_id in self._pending_fills:
            self._publish_fill(updated)
        if seen.trade.is_done:
            self.prune()

    def on_order_error(self, order_id: int, code: int, message: str) -> None:
        trade = self.trades.get((self.core.client_id, order_id))
        if trade is not None:
            trade._on_error(code, message)

    # -- lifecycle -------------------------------------------------------------------------------

    def link_down(self) -> None:
        self._seen_since_down = set()
        self.link_epoch += 1
        for trade in list(self.trades.values()):
            trade._wake()
        self.signal.fire()

    async def reconcile(self, fresh_link: bool) -> None:
        """Re-read executions, open and completed orders; the tap brings every Trade up to date."""
        live = self.live()
        if not live and not self.orphans and not self.fill_streams and not self.event_streams:
            return
        core = self.core
        adapter = core.adapter
        limit = core.timeout
        readonly = core.config.readonly
        parts: list[
            tuple[str, Callable[[], tuple[int | None, Awaitable[Any]]], asyncio.Lock | None]
        ]
        parts = [("executions", lambda: adapter.orders.start_fills(None), None)]
        if not readonly:
            all_clients = core.all_open_orders
            parts += [
                (
                    "open orders",
                    lambda: adapter.orders.start_open_orders(all_clients),
                    self.open_lock,
                ),
                (
                    "completed orders",
                    lambda: adapter.orders.start_completed_orders(self.completed, False),
                    self.completed_lock,
                ),
            ]
        complete = not readonly
        rows: list[OrderSnapshot] = []
        for name, start, lock in parts:
            try:
                async with lock if lock is not None else contextlib.nullcontext():
                    answer = await _direct(core.adapter.begin(name, start), limit)
            except (IBFlowError, TimeoutError) as exc:
                complete = False
                log.warning("reconciling orders: could not re-read %s: %s", name, exc)
            else:
                if name != "executions":
                    rows += answer  # the open orders, then the completed ones
        if fresh_link and complete:
            self._mark_lost(self._tie_by_ref(rows))
        for trade in list(self.orphans):
            self.orphans.discard(trade)
            if not trade.is_done and trade.client_id == core.client_id:
                log.warning(
                    "order %d: cancelling it now; place() gave up on it while the link was down",
                    trade.order_id,
                )
                with contextlib.suppress(Exception):
                    adapter.orders.send_cancel(trade.order_id)
        missing = [t.order_id for t in self.live() if t not in self._seen_since_down]
        if missing and not readonly:
            log.warning(
                "after the %s TWS reported nothing about order(s) %s, which it had "
                "acknowledged; their last known state is kept",
                "reconnect" if fresh_link else "1101",
                ", ".join(map(str, missing)),
            )
        log.info("orders reconciled: %d live trade(s)", len(self.live()))

    def _unheard(self) -> list[Trade]:
        """Orders sent before the drop that TWS never acknowledged nor mentioned since."""
        client_id = self.core.client_id
        return [
            trade
            for trade in self.live()
            if not trade._acked
            and trade not in self._seen_since_down
            and trade.client_id == client_id
            and trade._sent_epoch < self.link_epoch
        ]

    def _tie_by_ref(self, rows: list[OrderSnapshot]) -> dict[Trade, str]:
        """Give each unheard order the state TWS reports under the ``orderRef`` it was sent with.

        A completed order comes without its order id, and an unacknowledged trade has no perm
        id to claim it by: an order TWS cancelled while the link was down shows up only so.
        ``rows``: the open, then the completed orders just read. Returns, by trade, why a
        reference TWS reports could not be tied to it.
        """
        doubts: dict[Trade, str] = {}
        client_id = self.core.client_id
        # How many orders not yet acknowledged were sent with each reference.
        sent = Counter(
            t.order.order_ref
            for t in self.live()
            if not t._acked and t.client_id == client_id and t.order.order_ref
        )
        for trade in self._unheard():
            ref = trade.order.order_ref
            if not ref:
                continue
            found = reported_under(ref, client_id, rows)
            if all(r.perm_id in self.by_perm for r in found):
                continue  # none, or each one another trade's
            row, why = tie_by_ref(found, sent[ref], trade.order.side)
            if why is not None:
                log.warning(
                    "order %d was sent with order_ref %r, which %s: it is not tied to TWS's report",
                    trade.order_id,
                    ref,
                    why,
                )
                doubts[trade] = why
            elif row is not None:
                log.info(
                    "order %d: TWS reports it under its order_ref %r (perm id %s, %s)",
                    trade.order_id,
                    ref,
                    row.perm_id,
                    row.status.value,
                )
                self._seen_since_down.add(trade)
                trade._on_status(row.status, perm_id=row.perm_id, filled=row.filled)
        return doubts

    def _mark_lost(self, doubts: dict[Trade, str]) -> None:
        """End ``Lost`` every order sent before the drop that TWS, asked everything, never knew.

        Only after a fresh link whose every read (executions, open and completed orders)
        answered: TWS's nextValidId does not count such an order, and nothing of it is working.
        ``doubts``: why an order TWS reports under a trade's ``orderRef`` was not tied to it.
        """
        for trade in self._unheard():
            doubt = doubts.get(trade)
            if doubt is not None:
                trade._lose(
                    "the link dropped before TWS acknowledged it, and after the reconnect "
                    + may_have_reached(doubt)
                )
                continue
            trade._lose(
                "the link dropped before TWS acknowledged it, and after the reconnect TWS "
                "reported no trace of it (no open order, completed order or execution): "
                "nothing of it is working. Place it again if you still want it."
            )

    def close(self, error: IBFlowError | None) -> None:
        if self.closed_error is not None:
            return
        self.closed_error = error or SessionClosedError(
            "the session was closed; order states are no longer followed"
        )
        for handle in self._pending_fills.values():
            handle.cancel()
        self._pending_fills.clear()
        streams: list[StreamWriter[Any]] = [*self.event_streams, *self.fill_streams]
        for stream in streams:
            if error is None:
                stream.end()
            else:
                stream.fail(error)
        self.event_streams.clear()
        self.fill_streams.clear()
        for trade in list(self.trades.values()):
            trade._wake()
        self.signal.fire()
        self._uninstall()


def _key(trade: Trade) -> tuple[int, int]:
    """The book's key for a trade: (client id, order id); an order placed by hand that no
    client id 0 has bound has order id 0, and is filed under its perm id instead."""
    if trade.order_id == 0:
        return (-1, trade.perm_id or 0)
    return (trade.client_id, trade.order_id)


def _status(text: str) -> OrderStatus | None:
    try:
        return OrderStatus(text)
    except ValueError:
        if text:
            log.warning("TWS reported an order status ibflow does not know: %r", text)
        return None


async def _direct(start: tuple[int | None, Awaitable[Any]], limit: float | None) -> Any:
    """Await a request's answer without the session's router (used while not READY)."""
    _, answer = start
    future = asyncio.ensure_future(answer)
    try:
        async with asyncio.timeout(limit):
            return await future
    finally:
        if not future.done():
            future.cancel()
