"""Orders: specs and builders, validation, safety rails, the Trade handle, reconciliation.

Users of the peers lose orders in two ways: order states that race or go terminal before IB
says so (ib_async marks a trade ``Cancelled`` on any error addressed to it), and fills that
vanish around a reconnect (no ``orderStatus`` for an instant fill, executions during a
disconnect never delivered, execution corrections counted twice). The modules here answer:

* ``_checks`` — validation against the contract (minimum tick, size increment) and the
  session's safety rails, before anything is sent;
* ``_trade`` — the :class:`Trade` handle: an explicit state machine fed by orderStatus,
  openOrder, completedOrder *and* execDetails; a terminal status only when TWS reports it (or
  when executions add up to the whole order);
* ``_book`` — every Trade of a session, and reconciliation after every reconnect and 1101:
  fills deduplicated by execution id, IB's correction suffix included;
* ``_adopt`` — TWS's open orders the session did not place, adopted as Trades (owned only
  when they belong to the session's client id);
* ``_placing`` and ``_api`` — placing legs back to back and the session's order methods;
* ``_cancels`` and ``_flatten`` — cancels by id, TWS's global cancel, and the kill switch.

An order is never re-sent by ibflow. The state machine is described in ``docs/orders.md``.
"""

from .._errors import OrderCancelled
from .._records.orders import *  # noqa: F403 - the order records join the feature's names
from .._records.orders import __all__ as _records
from ._groups import BracketTrade, TradeGroup
from ._trade import Trade

__all__ = [*_records, "BracketTrade", "OrderCancelled", "Trade", "TradeGroup"]
