"""Start-up reconciliation of the order journal with what TWS reports.

Every intent the journal holds that had not settled becomes a ``Trade`` again, with the
acknowledgement, statuses and fills the journal recorded (each execution once). Then TWS is
asked for everything: executions, every client's open orders and today's completed orders. An
execution the journal lacks is delivered once (and journaled). An intent that was never
acknowledged is found by the ``orderRef`` it was sent with (its key, the user's own
``order_ref`` or its journal reference): TWS reports a completed order without its order id.
One TWS reports nothing about never reached TWS: it ends ``Lost`` with a reason, and is never
sent again by itself. ``place(..., key=...)`` with its key places it once.

After a reconnect the order book's own reconciliation keeps these trades up to date (and ends
one that is still unknown to TWS ``Lost``), and the journal records what changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from .._errors import IBFlowError, RequestError
from .._log import get_logger
from .._records.orders import OrderSnapshot, OrderStatus
from ._journal import Intent, Journal
from ._keys import Keys
from ._refs import may_have_reached, reported_under, tie_by_ref
from ._trade import Trade

__all__ = ["JournalHandler", "open_journal", "restore"]

log = get_logger("orders")

_JOURNAL_KEY: Final = -4_000_014  # the journal's entry in the session's subscription registry


class JournalHandler:
    """The journal's entry in ``session.subscriptions``: closes the file with the session."""

    kind = "journal"

    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    async def resubscribe(self, fresh_link: bool) -> int | None:
        return _JOURNAL_KEY  # the order book re-reads and updates the journal's trades

    def on_error(self, error: RequestError) -> None:
        log.debug("order journal got a request error it does not own: %s", error)

    def on_link_down(self) -> None:
        pass

    def on_close(self, error: IBFlowError | None) -> None:
        self._keys.close()


def open_journal(keys: Keys, path: Path) -> Journal:
    """Open the journal file for ``keys`` (closed with the session)."""
    journal = Journal(path)
    keys.journal = journal
    keys.core.subscriptions.add(_JOURNAL_KEY, JournalHandler(keys))
    return journal


async def restore(keys: Keys, journal: Journal) -> list[Trade]:
    """Bring back the journal's unsettled orders and reconcile them with TWS; see the module."""
    book = keys.book
    restored: list[tuple[Trade, Intent]] = []
    by_id: dict[tuple[int, int], Trade] = {}
    for intent in journal.unsettled():
        e = intent.entry
        adopted = book.find(e.client_id, e.order_id, None)
        if adopted is not None and adopted.adopted:
            # Adopted from TWS's report during the connect: the journal knows the order better
            # (its key, its terms, its fills), and TWS's reads below bring its state up to date.
            book.forget(adopted)
        elif book.taken(e.client_id, e.order_id):
            log.warning(
                "order journal: intent %d reuses order id %d of client id %d; the newer one "
                "is followed",
                intent.seq,
                e.order_id,
                e.client_id,
            )
            old = by_id.pop((e.client_id, e.order_id), None)
            if old is not None:
                book.forget(old)
        parent = (
            by_id.get((e.client_id, e.parent_order_id)) if e.parent_order_id is not None else None
        )
        trade = Trade(
            book,
            e.contract,
            intent.spec or e.spec,
            e.order_id,
            e.client_id,
            parent=parent,
            oca_group=e.oca_group,
            oca_type=e.oca_type,
        )
        book.register(trade)
        by_id[(e.client_id, e.order_id)] = trade
        # What the journal recorded was delivered before the restart: not to streams again.
        fill_streams, book.fill_streams = book.fill_streams, set()
        event_streams, book.event_streams = book.event_streams, set()
        try:
            _replay(keys, trade, intent)
        finally:
            book.fill_streams, book.event_streams = fill_streams, event_streams
        restored.append((trade, intent))
    for trade, intent in restored:
        keys.follow(trade, intent.seq, len(trade.history))
        if intent.entry.key is not None:
            keys.index[intent.entry.key] = trade
    if not restored:
        return []
    try:
        fills = await keys.reads.fills(timeout=None)
        open_rows = await keys.reads.every_open_order()
        done_rows = await keys.reads.completed_orders(timeout=None)
    except IBFlowError as exc:
        log.warning(
            "order journal: could not ask TWS about %d journaled order(s) (%s); their state is "
            "settled at the next reconnect",
            len(restored),
            exc,
        )
        return [t for t, _ in restored]
    rows = [*open_rows, *done_rows]
    keys.remember_tws(rows)
    doubts = _match_by_ref(journal, restored, rows)
    perms = {r.perm_id for r in rows} | {f.perm_id for f in fills}
    ids = {(r.client_id, r.order_id) for r in open_rows} | {
        (f.client_id, f.order_id) for f in fills
    }
    refs = {r.order_ref for r in rows}
    for trade, intent in restored:
        seen = (
            (trade.perm_id is not None and trade.perm_id in perms)
            or (trade.client_id, trade.order_id) in ids
            or (intent.entry.key is not None and intent.entry.key in refs)
        )
        if not trade._acked and not trade.is_done:
            trade._lose(_never_working(intent, doubts.get(intent.seq)))
        elif not seen:
            _no_longer_reported(journal, trade, intent)
    log.info("order journal: %d order(s) reconciled with TWS", len(restored))
    return [t for t, _ in restored]


def _no_longer_reported(journal: Journal, trade: Trade, intent: Intent) -> None:
    """An order TWS acknowledged once but no longer reports (done on an earlier day): its last
    known state stays, and the journal stops bringing it back."""
    if not trade.is_done:
        log.warning(
            "order journal: TWS no longer reports order %d (perm id %s), last known %s; it is "
            "not followed any more (check session.completed_orders() or TWS's trade log)",
            trade.order_id,
            trade.perm_id,
            trade.status.value,
        )
    journal.write_event(intent.seq, "settled", {"reported": False})


def _replay(keys: Keys, trade: Trade, intent: Intent) -> None:
    """Give a restored trade what the journal recorded (fills through the book: once each)."""
    if intent.perm_id:
        trade._ack(intent.perm_id)
    for fill in intent.fills:
        keys.book.on_execution(fill, live=False)
    for commission in intent.commissions:
        keys.book.on_commission(commission)
    if intent.status == OrderStatus.LOST.value:
        trade._lose(intent.reason or "recorded as lost by the order journal")
    elif intent.status is not None:
        try:
            status: OrderStatus | None = OrderStatus(intent.status)
        except ValueError:
            status = None
        trade._on_status(status, perm_id=intent.perm_id)


def _match_by_ref(
    journal: Journal, restored: list[tuple[Trade, Intent]], rows: list[OrderSnapshot]
) -> dict[int, str]:
    """Orders TWS reports under the ``orderRef`` of an intent the tap could not tie to them.

    A completed order carries no order id and an unacknowledged intent has no perm id: the
    order reference it was sent with is what links them. Returns, by intent, why a reference
    TWS reports could not be tied to it.
    """
    last = {r.order_ref: r for r in rows if r.order_ref}
    doubts: dict[int, str] = {}
    for trade, intent in restored:
        if trade._acked:
            continue
        key = intent.entry.key
        if key is not None:
            row = last.get(key)
        else:
            row, doubt = _only_row(journal, intent, rows)
            if doubt is not None:
                doubts[intent.seq] = doubt
        if row is not None:
            trade._on_status(row.status, perm_id=row.perm_id, filled=row.filled)
    return doubts


def _only_row(
    journal: Journal, intent: Intent, rows: list[OrderSnapshot]
) -> tuple[OrderSnapshot | None, str | None]:
    """TWS's one order sent with a keyless intent's ``orderRef``, when it surely is that one.

    A reference another journaled order was sent with too (a user's ``order_ref`` used twice),
    or under which TWS reports several orders, or an order of the other side, ties nothing:
    then the second value says why.
    """
    e = intent.entry
    ref = e.order_ref
    if not ref:
        return None, None
    found = reported_under(ref, e.client_id, rows)
    if not found:
        return None, None  # nothing to tie: the journal need not be asked
    row, why = tie_by_ref(found, journal.sent_as(ref), e.spec.side)
    if why is None:
        return row, None
    log.warning(
        "order journal: intent %d (order id %d) was sent with order_ref %r, which %s: it is "
        "not tied to TWS's report",
        intent.seq,
        e.order_id,
        ref,
        why,
    )
    return None, why


def _never_working(intent: Intent, doubt: str | None = None) -> str:
    """Why a journaled intent TWS knows nothing of is not working (``Trade.lost_reason``).

    ``doubt``: why the order TWS reports under its reference could not be tied to it.
    """
    e = intent.entry
    if e.key is not None:
        keyed = f"key {e.key!r}, "
    elif e.order_ref is not None:
        keyed = f"order_ref {e.order_ref!r}, "
    else:
        keyed = ""
    what = (
        f"({keyed}order id {e.order_id} of client id {e.client_id}, "
        f"{intent.at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    again = f"place(..., key={e.key!r}) places it once" if e.key is not None else "place it again"
    if intent.rejected is not None:
        return (
            f"TWS rejected it before acknowledging it ({intent.rejected}) {what}, and reports "
            f"no open order, completed order or execution for it; {again} if you still want it"
        )
    if doubt is not None:
        return f"not acknowledged before the restart {what}; {may_have_reached(doubt)}"
    return (
        f"never reached TWS: the order journal holds its intent {what}, but TWS reports no "
        "open order, completed order or execution for it. ibflow does not send it by itself; "
        f"{again} if you still want it"
    )
