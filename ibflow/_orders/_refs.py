"""Tying an order TWS never acknowledged to what TWS reports, by the ``orderRef`` it was sent with.

TWS reports a completed order without its order id, and an unacknowledged order has no perm
id: the order reference (a key, the user's own ``order_ref``, or a journal reference) is the
only link. It ties only when it is surely that order: one order sent with the reference, one
order TWS reports under it, of the same side.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._records.orders import OrderSnapshot, Side

__all__ = ["may_have_reached", "reported_under", "tie_by_ref"]


def reported_under(ref: str, client_id: int, rows: Iterable[OrderSnapshot]) -> list[OrderSnapshot]:
    """The orders TWS reports under ``ref`` that may be ``client_id``'s, one per perm id.

    ``rows``: open orders first, then completed ones; a later row of the same order replaces
    the earlier. A row of another known client id is not that client's order.
    """
    found = {
        r.perm_id: r
        for r in rows
        if r.order_ref == ref and (r.client_id is None or r.client_id == client_id)
    }
    return list(found.values())


def tie_by_ref(
    found: list[OrderSnapshot], sent: int, side: Side
) -> tuple[OrderSnapshot | None, str | None]:
    """TWS's one order in ``found`` when it surely is the one order sent with the reference.

    ``sent``: how many orders were sent with the reference. Several orders under it (at TWS or
    sent), or one of the other side, tie nothing: then the second value says why.
    """
    if not found:
        return None, None
    if len(found) > 1 or sent > 1:
        return None, "names more than one order"
    if found[0].side is not side:
        return None, f"names a {found[0].side.value} order at TWS"
    return found[0], None


def may_have_reached(doubt: str) -> str:
    """How a ``lost_reason`` ends when the order TWS reports under the reference was not tied."""
    return (
        f"TWS reports an order under its order_ref, which {doubt}, so it may have reached TWS: "
        "check session.open_orders() and completed_orders() before you place it again"
    )
