"""Placing and tracking orders: specs and builders, validation, safety rails, the Trade handle.

Users of the peers lose orders in two ways (``../shared/ib-limits.md``, pains 9 and 10): order
states that race or go terminal before IB says so (ib_async marks a trade ``Cancelled`` on any
error addressed to it), and fills that vanish around a reconnect (no ``orderStatus`` for an
instant fill, executions during a disconnect never delivered, execution corrections counted
twice). ibflow answers with:

* frozen order specs built by ``MarketOrder``/``LimitOrder``/``StopOrder``/``StopLimitOrder``,
  ``bracket(...)`` and ``oca(...)``, validated when built and again against the contract
  (minimum tick, size increment) before anything is sent, plus the session's safety rails
  (read-only, live guard, ``max_order_quantity``, ``max_order_notional``);
* a :class:`Trade` handle per order with an explicit state machine fed by every source of truth
  — orderStatus, openOrder, completedOrder *and* execDetails — through a tap on ib_async's
  decoder (``ibflow._ib._orders``), never by ib_async's own trade objects; a terminal status is
  set only when TWS reports it (or when executions add up to the whole order);
* reconciliation after every reconnect (and after IB error 1101): executions, open orders and
  completed orders are re-read, every Trade is brought up to date, and fills are deduplicated
  by execution id, IB's correction suffix included (``….01`` then ``….02`` replaces it), so a
  fill that happened while the link was down is delivered exactly once. An order is never
  re-sent by ibflow.

State machine (``Trade.status``): a new Trade starts in ``PendingSubmit`` (sent, not yet
acknowledged). Any status TWS reports is taken as it comes while the order is live; the
terminal ones (``Filled``, ``Cancelled``, ``ApiCancelled``, ``Inactive``) are final: later
messages can add fills but never change them, with one exception: TWS still holds an
``Inactive`` order, and cancelling it makes it ``Cancelled``. Executions that add up to the
order's quantity make it ``Filled`` even if TWS never sends that orderStatus (it may skip it
for instant fills). A cancel request, an error, a timeout or a lost link change nothing by
themselves. An order TWS rejects before acknowledging it makes ``place()`` raise
``OrderRejected`` carrying its Trade, which keeps following the order in case TWS holds it
after all.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, overload

from ._error_codes import Severity, error_for, lookup
from ._errors import (
    ConnectionLost,
    IBFlowError,
    InvalidRequest,
    OrderRejected,
    RequestError,
    RequestTimeout,
    SafetyError,
    SessionClosedError,
)
from ._ib import _orders as _wire
from ._ib._errors import map_ib_errors
from ._log import get_logger, mask_account
from ._models import Contract, SecType
from ._per_session import peek, per_session
from ._stream import Stream
from ._timeouts import SESSION_DEFAULT, resolve_timeout

if TYPE_CHECKING:
    from ._session import Session

__all__ = [
    "Action",
    "Bracket",
    "BracketTrade",
    "Commission",
    "Fill",
    "LimitOrder",
    "MarketOrder",
    "OcaGroup",
    "OcaType",
    "Order",
    "OrderCancelled",
    "OrderEvent",
    "OrderEventKind",
    "OrderPreview",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Side",
    "StopLimitOrder",
    "StopOrder",
    "TimeInForce",
    "Trade",
    "TradeGroup",
    "bracket",
    "oca",
]

log = get_logger("orders")

E = TypeVar("E", bound=StrEnum)

_EPS = 1e-9
# The order book registers itself in the session's subscription registry under this key. It
# has no IB request id, and negative keys never receive request errors (those are >= 0).
_RECONCILER_KEY: Final = -4_000_004
# How long a fill waits for its commission report before fills_stream() delivers it anyway.
_COMMISSION_GRACE = 5.0
_MAX_ORPHAN_COMMISSIONS = 1024
_MAX_REJECTED = 256  # orders rejected before an acknowledgement, kept in case TWS holds them
# How long wait_filled() waits for executions once TWS reported the order filled.
_EXEC_GRACE = 2.0


# -- enums ----------------------------------------------------------------------------------------


class Side(StrEnum):
    """Buy or sell (IB calls it the order's *action*)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


Action = Side
"""IB's name for :class:`Side`."""


class OrderType(StrEnum):
    """The order types ibflow builds (the value is IB's code)."""

    MARKET = "MKT"
    LIMIT = "LMT"
    STOP = "STP"
    STOP_LIMIT = "STP LMT"


class TimeInForce(StrEnum):
    """How long an order works (IB's codes)."""

    DAY = "DAY"
    """Until the end of the trading day."""
    GTC = "GTC"
    """Good till cancelled."""
    IOC = "IOC"
    """Immediate or cancel: what does not fill at once is cancelled."""
    GTD = "GTD"
    """Good till the date/time given as ``good_till``."""
    OPG = "OPG"
    """At the opening auction (market- or limit-on-open)."""
    FOK = "FOK"
    """Fill or kill: all at once or nothing."""


class OrderStatus(StrEnum):
    """An order's status, as TWS names it."""

    API_PENDING = "ApiPending"
    PENDING_SUBMIT = "PendingSubmit"
    PENDING_CANCEL = "PendingCancel"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    API_UPDATE = "ApiUpdate"
    VALIDATION_ERROR = "ValidationError"
    API_CANCELLED = "ApiCancelled"
    CANCELLED = "Cancelled"
    FILLED = "Filled"
    INACTIVE = "Inactive"

    @property
    def is_done(self) -> bool:
        """Terminal: the order will not work or fill any more."""
        return self in _DONE


_DONE = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.API_CANCELLED, OrderStatus.INACTIVE}
)
_ENDS_INACTIVE = frozenset({OrderStatus.CANCELLED, OrderStatus.API_CANCELLED})


class OcaType(StrEnum):
    """What a fill of one order of an OCA group does to the others."""

    CANCEL_ALL = "cancel_all"
    """Cancel the rest (IB's OCA type 1)."""
    REDUCE_WITH_BLOCK = "reduce_with_block"
    """Reduce the rest by the filled size, with overfill protection (type 2)."""
    REDUCE = "reduce"
    """Reduce the rest by the filled size (type 3)."""

    @property
    def code(self) -> int:
        return {"cancel_all": 1, "reduce_with_block": 2, "reduce": 3}[self.value]


class OrderEventKind(StrEnum):
    """What an :class:`OrderEvent` reports."""

    STATUS = "status"
    """The status changed (``OrderEvent.status`` is the new one)."""
    FILL = "fill"
    """An execution (``OrderEvent.fill``); ``corrects`` is set for an IB correction."""
    COMMISSION = "commission"
    """A fill's commission report arrived (``OrderEvent.fill`` carries it)."""
    MODIFIED = "modified"
    """TWS reports new terms (quantity or prices): a modify, or an OCA group reduced it."""
    MESSAGE = "message"
    """TWS sent a message about the order (``code``/``message``): a warning or a refusal."""


# -- errors ---------------------------------------------------------------------------------------


class OrderCancelled(RequestError):
    """The order ended cancelled (by you, by TWS or by IB) before it filled completely.

    Raised by ``Trade.wait_filled()``. ``filled`` is how much filled before the cancel.
    """

    def __init__(self, message: str, *, order_id: int, status: OrderStatus, filled: float) -> None:
        super().__init__(202, message, order_id)
        self.order_id = order_id
        self.status = status
        self.filled = filled


# -- validation helpers ---------------------------------------------------------------------------


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidRequest(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidRequest(f"{what} must be a finite number, got {value!r}")
    return out


def _positive(value: object, what: str) -> float:
    out = _number(value, what)
    if out <= 0:
        raise InvalidRequest(f"{what} must be greater than 0, got {value!r}")
    return out


def _enum(cls: type[E], value: object, what: str) -> E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        text = value.strip().upper()
        for member in cls:
            if text in (member.value.upper(), member.name):
                return member
    allowed = ", ".join(repr(m.value) for m in cls)
    raise InvalidRequest(f"{what} must be one of {allowed}, got {value!r}")


def _ascii_text(value: object, what: str, limit: int = 128) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a string, got {value!r}")
    text = value.strip()
    if not text:
        return None
    if len(text) > limit or not all(32 <= ord(ch) < 127 for ch in text):
        raise InvalidRequest(
            f"{what} must be printable ASCII of at most {limit} characters (TWS refuses "
            f"anything else), got {value!r}"
        )
    return text


def _fmt(value: float) -> str:
    return f"{value:.10g}"


# -- order specs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """What to trade and how: a validated, immutable order spec.

    Build one with :func:`MarketOrder`, :func:`LimitOrder`, :func:`StopOrder` or
    :func:`StopLimitOrder`; constructing it directly validates the same way.

    Raises:
        InvalidRequest: a field is invalid or does not fit the order type (the message says
            what to change).
    """

    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    good_till: datetime | None = None
    """Expiry of a ``GTD`` order (aware datetime)."""
    outside_rth: bool = False
    account: str | None = None
    order_ref: str | None = None
    """Your own tag; TWS keeps it on the order and its executions."""

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "side", _enum(Side, self.side, "side"))
        put(self, "order_type", _enum(OrderType, self.order_type, "order_type"))
        put(self, "tif", _enum(TimeInForce, self.tif, "tif"))
        put(self, "quantity", _positive(self.quantity, "quantity"))
        kind = self.order_type
        wants_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        wants_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
        if self.limit_price is None:
            if wants_limit:
                raise InvalidRequest(f"a {kind.value} order needs a limit_price")
        elif not wants_limit:
            raise InvalidRequest(
                f"a {kind.value} order takes no limit_price (got {self.limit_price!r}); use "
                "LimitOrder or StopLimitOrder for a limit"
            )
        else:
            put(self, "limit_price", _positive(self.limit_price, "limit_price"))
        if self.stop_price is None:
            if wants_stop:
                raise InvalidRequest(f"a {kind.value} order needs a stop_price")
        elif not wants_stop:
            raise InvalidRequest(
                f"a {kind.value} order takes no stop_price (got {self.stop_price!r}); use "
                "StopOrder or StopLimitOrder for a stop"
            )
        else:
            put(self, "stop_price", _positive(self.stop_price, "stop_price"))
        if not isinstance(self.outside_rth, bool):
            raise InvalidRequest(f"outside_rth must be True or False, got {self.outside_rth!r}")
        self._check_tif()
        put(self, "account", _ascii_text(self.account, "account", 32))
        put(self, "order_ref", _ascii_text(self.order_ref, "order_ref"))

    def _check_tif(self) -> None:
        tif = self.tif
        if self.good_till is not None:
            if tif is not TimeInForce.GTD:
                raise InvalidRequest("good_till is only for tif='GTD'; set tif='GTD' or drop it")
            if not isinstance(self.good_till, datetime) or self.good_till.tzinfo is None:
                raise InvalidRequest(
                    f"good_till must be an aware datetime (with a time zone), got "
                    f"{self.good_till!r}"
                )
        elif tif is TimeInForce.GTD:
            raise InvalidRequest("a GTD order needs good_till=<aware datetime> (its expiry)")
        if tif is TimeInForce.OPG:
            if self.order_type not in (OrderType.MARKET, OrderType.LIMIT):
                raise InvalidRequest(
                    "tif='OPG' (the opening auction) works only for market and limit orders"
                )
            if self.outside_rth:
                raise InvalidRequest(
                    "tif='OPG' executes in the opening auction, inside regular hours; drop "
                    "outside_rth=True"
                )
        if self.outside_rth and self.order_type is OrderType.MARKET:
            raise InvalidRequest(
                "market orders do not execute outside regular trading hours (TWS ignores "
                "outside_rth for them); use a LimitOrder with outside_rth=True"
            )

    @property
    def price(self) -> float | None:
        """The price that bounds the order: the limit, else the stop, else ``None`` (market)."""
        return self.limit_price if self.limit_price is not None else self.stop_price


def _built(
    order_type: OrderType,
    side: Side | str,
    quantity: float,
    tif: TimeInForce | str,
    good_till: datetime | None,
    outside_rth: bool,
    account: str | None,
    order_ref: str | None,
    *,
    limit_price: float | None = None,
    stop_price: float | None = None,
) -> Order:
    """What the four builders share: the enums parsed, everything else left to ``Order``."""
    return Order(
        side=_enum(Side, side, "side"),
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        tif=_enum(TimeInForce, tif, "tif"),
        good_till=good_till,
        outside_rth=outside_rth,
        account=account,
        order_ref=order_ref,
    )


def MarketOrder(
    side: Side | str,
    quantity: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
) -> Order:
    """Buy or sell at the market: ``MarketOrder("BUY", 100)``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(OrderType.MARKET, side, quantity, tif, good_till, outside_rth, account, order_ref)


def LimitOrder(
    side: Side | str,
    quantity: float,
    limit_price: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
) -> Order:
    """Buy at or below / sell at or above a price: ``LimitOrder("BUY", 100, 185.50)``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.LIMIT, side, quantity, tif, good_till, outside_rth, account, order_ref,
        limit_price=limit_price,
    )  # fmt: skip


def StopOrder(
    side: Side | str,
    quantity: float,
    stop_price: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
) -> Order:
    """A market order that triggers when the price reaches ``stop_price``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.STOP, side, quantity, tif, good_till, outside_rth, account, order_ref,
        stop_price=stop_price,
    )  # fmt: skip


def StopLimitOrder(
    side: Side | str,
    quantity: float,
    limit_price: float,
    stop_price: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    good_till: datetime | None = None,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
) -> Order:
    """A limit order that becomes active when the price reaches ``stop_price``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.STOP_LIMIT, side, quantity, tif, good_till, outside_rth, account, order_ref,
        limit_price=limit_price, stop_price=stop_price,
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Bracket:
    """An entry order with a take-profit and a stop-loss, placed as one unit.

    The children are sent with the parent's id and the transmit flags set so TWS releases all
    three together; they work only once the parent has filled, and a fill of one reduces the
    other. Build it with :func:`bracket`.
    """

    parent: Order
    take_profit: Order
    stop_loss: Order

    def __post_init__(self) -> None:
        for name in ("parent", "take_profit", "stop_loss"):
            if not isinstance(getattr(self, name), Order):
                raise InvalidRequest(f"Bracket.{name} must be an ibflow Order")
        parent, tp, sl = self.parent, self.take_profit, self.stop_loss
        if tp.side is not parent.side.opposite or sl.side is not parent.side.opposite:
            raise InvalidRequest("the take-profit and stop-loss must be on the parent's other side")
        if tp.order_type is not OrderType.LIMIT:
            raise InvalidRequest("the take-profit of a bracket must be a limit order")
        if sl.order_type not in (OrderType.STOP, OrderType.STOP_LIMIT):
            raise InvalidRequest("the stop-loss of a bracket must be a stop or stop-limit order")
        if abs(tp.quantity - parent.quantity) > _EPS or abs(sl.quantity - parent.quantity) > _EPS:
            raise InvalidRequest("all three orders of a bracket need the same quantity")
        entry = parent.price
        take, stop = tp.limit_price, sl.stop_price
        assert take is not None
        assert stop is not None
        if entry is not None:
            if parent.side is Side.BUY and not (take > entry > stop):
                raise InvalidRequest(
                    f"a BUY bracket needs take_profit > entry > stop_loss, got {_fmt(take)} / "
                    f"{_fmt(entry)} / {_fmt(stop)}"
                )
            if parent.side is Side.SELL and not (take < entry < stop):
                raise InvalidRequest(
                    f"a SELL bracket needs take_profit < entry < stop_loss, got {_fmt(take)} / "
                    f"{_fmt(entry)} / {_fmt(stop)}"
                )


def bracket(
    side: Side | str,
    quantity: float,
    entry_limit: float,
    take_profit: float,
    stop_loss: float,
    *,
    tif: TimeInForce | str = TimeInForce.DAY,
    outside_rth: bool = False,
    account: str | None = None,
    order_ref: str | None = None,
) -> Bracket:
    """A limit entry with a limit take-profit and a stop-loss on the other side.

    ``bracket("BUY", 10, 190.05, 195.00, 185.00)``: buy 10 at 190.05 or better; once filled,
    sell at 195.00 (profit) or on a stop at 185.00 (loss), whichever comes first.

    Raises:
        InvalidRequest: an argument is invalid or the prices are in the wrong order.
    """
    common: dict[str, Any] = {
        "tif": tif,
        "outside_rth": outside_rth,
        "account": account,
        "order_ref": order_ref,
    }
    entry = LimitOrder(side, quantity, entry_limit, **common)
    exit_side = entry.side.opposite
    return Bracket(
        parent=entry,
        take_profit=LimitOrder(exit_side, quantity, take_profit, **common),
        stop_loss=StopOrder(exit_side, quantity, stop_loss, **common),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OcaGroup:
    """Orders that belong to one one-cancels-all group; build it with :func:`oca`."""

    orders: tuple[Order, ...]
    group: str
    type: OcaType = OcaType.CANCEL_ALL

    def __post_init__(self) -> None:
        orders = tuple(self.orders)
        if len(orders) < 2:
            raise InvalidRequest("an OCA group needs at least two orders")
        for order in orders:
            if not isinstance(order, Order):
                raise InvalidRequest(
                    f"an OCA group holds ibflow Orders (MarketOrder, LimitOrder…), got {order!r}"
                )
        object.__setattr__(self, "orders", orders)
        group = _ascii_text(self.group, "group", 64)
        if group is None:
            raise InvalidRequest("an OCA group needs a non-empty group name")
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "type", _enum(OcaType, self.type, "type"))


def oca(
    *orders: Order, group: str | None = None, type: OcaType | str = OcaType.CANCEL_ALL
) -> OcaGroup:
    """Group orders so a fill of one cancels (or reduces) the others.

    ``oca(LimitOrder("SELL", 10, 200), StopOrder("SELL", 10, 180))``; ``group`` defaults to a
    fresh unique name.

    Raises:
        InvalidRequest: fewer than two orders, or an invalid name or type.
    """
    name = group if group is not None else f"ibflow-{uuid.uuid4().hex[:12]}"
    return OcaGroup(orders=tuple(orders), group=name, type=_enum(OcaType, type, "type"))


# -- records --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Commission:
    """The commission report of one execution."""

    exec_id: str
    amount: float
    currency: str | None = None
    realized_pnl: float | None = None
    """Realized profit and loss of the execution; ``None`` when it opened a position."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One execution (IB's execDetails), with its commission once reported."""

    exec_id: str
    order_id: int | None
    perm_id: int | None
    client_id: int | None
    contract: Contract
    side: Side
    quantity: float
    price: float
    time: datetime
    account: str | None = None
    exchange: str | None = None
    cumulative_quantity: float | None = None
    avg_price: float | None = None
    order_ref: str | None = None
    commission: Commission | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSnapshot:
    """One order as TWS reports it (``open_orders()``, ``completed_orders()``).

    ``order_type`` and ``tif`` are IB's codes as enums where ibflow knows them, raw text
    otherwise (orders placed by hand in TWS can be of any type). Completed orders carry no order
    id or client id on the wire; ``order_id`` is filled in for orders this session placed.
    """

    order_id: int | None
    perm_id: int | None
    client_id: int | None
    parent_id: int | None
    contract: Contract
    side: Side
    quantity: float
    order_type: OrderType | str
    limit_price: float | None
    stop_price: float | None
    tif: TimeInForce | str
    outside_rth: bool
    account: str | None
    order_ref: str | None
    oca_group: str | None
    status: OrderStatus
    filled: float
    remaining: float
    avg_fill_price: float | None = None
    completed_time: datetime | None = None
    completed_status: str | None = None
    """TWS's reason text for a completed order, e.g. ``"Cancelled by Trader"``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPreview:
    """What an order would do to margin and what it would cost (``what_if()``)."""

    init_margin_before: float | None = None
    maint_margin_before: float | None = None
    equity_with_loan_before: float | None = None
    init_margin_change: float | None = None
    maint_margin_change: float | None = None
    equity_with_loan_change: float | None = None
    init_margin_after: float | None = None
    maint_margin_after: float | None = None
    equity_with_loan_after: float | None = None
    commission: float | None = None
    min_commission: float | None = None
    max_commission: float | None = None
    commission_currency: str | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """One thing that happened to an order; ``status``/``filled``/``remaining`` are after it."""

    kind: OrderEventKind
    order_id: int
    perm_id: int | None
    status: OrderStatus
    filled: float
    remaining: float
    at: datetime
    fill: Fill | None = None
    corrects: Fill | None = None
    """For an IB execution correction: the earlier fill this one replaces."""
    code: int | None = None
    message: str | None = None


# -- waiting --------------------------------------------------------------------------------------


class _Signal:
    """Wakes every waiting coroutine when something changed (called from ib_async callbacks)."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    def fire(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def changed(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        try:
            await future
        finally:
            with contextlib.suppress(ValueError):
                self._futures.remove(future)


_DEFAULT = SESSION_DEFAULT


def _limit(session: Session, timeout: object) -> float | None:
    return resolve_timeout(timeout, session._timeout)


async def _wait_until(
    signal: _Signal, ready: Callable[[], bool], limit: float | None, what: str
) -> None:
    """Wait until ``ready()``; ``RequestTimeout`` after ``limit`` seconds."""
    if ready():
        return
    try:
        async with asyncio.timeout(limit):
            while not ready():
                await signal.changed()
    except TimeoutError:
        raise RequestTimeout(f"{what}: not within {limit} s") from None


# -- the Trade handle -----------------------------------------------------------------------------


class _Op:
    """A cancel or modify in flight: errors addressed to the order go to it, not to the order."""

    __slots__ = ("error", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self.error: RequestError | None = None


class Trade:
    """A live handle on one order this session placed.

    Its state follows what TWS reports (see the module docstring); read it any time, wait for
    an outcome with :meth:`wait_filled` / :meth:`wait_done`, follow it with :meth:`events`, act
    on it with :meth:`cancel` / :meth:`modify`. ``session.place(...)`` returns it; you never
    build one yourself.
    """

    def __init__(
        self,
        book: _OrderBook,
        contract: Contract,
        order: Order,
        order_id: int,
        client_id: int,
        *,
        parent: Trade | None = None,
        oca_group: str = "",
        oca_type: int = 0,
    ) -> None:
        self._book = book
        self._contract = contract
        self._order = order
        self._order_id = order_id
        self._client_id = client_id
        self._parent = parent
        self._oca_group = oca_group
        self._oca_type = oca_type
        self._perm_id: int | None = None
        self._status = OrderStatus.PENDING_SUBMIT
        self._status_filled = 0.0
        self._status_avg: float | None = None
        self._fills: list[Fill] = []
        self._corrected = False
        self._events: list[OrderEvent] = []
        self._acked = False
        # Rejected before any acknowledgement: place() raises, whatever TWS sends after (it
        # may still report the order, Inactive, in the same read or a later one).
        self._rejected_first = False
        self._error: RequestError | None = None
        self._op: _Op | None = None
        self._op_lock = asyncio.Lock()
        self._modify_sent = False
        self._signal = _Signal()

    # -- reading ---------------------------------------------------------------------------

    @property
    def order_id(self) -> int:
        return self._order_id

    @property
    def perm_id(self) -> int | None:
        """IB's permanent id, known once TWS acknowledged the order."""
        return self._perm_id

    @property
    def client_id(self) -> int:
        """The API client id that placed the order (only it may change or cancel it)."""
        return self._client_id

    @property
    def contract(self) -> Contract:
        """The (qualified) contract the order was sent for."""
        return self._contract

    @property
    def order(self) -> Order:
        """The order's current terms, as TWS last reported them."""
        return self._order

    @property
    def parent_id(self) -> int | None:
        return self._parent.order_id if self._parent is not None else None

    @property
    def status(self) -> OrderStatus:
        return self._status

    @property
    def is_done(self) -> bool:
        return self._status.is_done

    @property
    def fills(self) -> tuple[Fill, ...]:
        """Executions so far, each once (corrections replace what they correct)."""
        return tuple(self._fills)

    @property
    def filled(self) -> float:
        executed = sum(f.quantity for f in self._fills)
        return max(executed, self._status_filled)

    @property
    def remaining(self) -> float:
        return max(self._order.quantity - self.filled, 0.0)

    @property
    def avg_fill_price(self) -> float | None:
        qty = sum(f.quantity for f in self._fills)
        if qty > _EPS:
            return sum(f.quantity * f.price for f in self._fills) / qty
        return self._status_avg

    @property
    def commission(self) -> float | None:
        """Total commission reported so far (``None`` before the first report)."""
        found = [f.commission.amount for f in self._fills if f.commission is not None]
        return sum(found) if found else None

    @property
    def error(self) -> RequestError | None:
        """The last refusal TWS addressed to the order itself (not to a cancel or modify)."""
        return self._error

    @property
    def history(self) -> tuple[OrderEvent, ...]:
        """Every event so far, oldest first."""
        return tuple(self._events)

    def __repr__(self) -> str:
        o = self._order
        price = f" @ {_fmt(o.price)}" if o.price is not None else ""
        return (
            f"<Trade {self._order_id} {o.side.value} {_fmt(o.quantity)} "
            f"{self._contract.display_name} {o.order_type.value}{price} {self._status.value} "
            f"filled={_fmt(self.filled)}>"
        )

    # -- waiting ---------------------------------------------------------------------------

    async def wait_filled(self, *, timeout: float | None = _DEFAULT) -> tuple[Fill, ...]:
        """Wait until the order has filled completely; returns its fills.

        Cancelling this call (or an ``asyncio.timeout()`` around it) only stops the waiting;
        the order keeps working. When TWS reports the order filled before its executions
        arrive (as after a reconnect), it waits up to two seconds more for them. Commission
        reports may arrive just after.

        Args:
            timeout: seconds to wait (the session default when not given; ``None`` = forever).

        Raises:
            OrderCancelled: the order ended cancelled before filling completely.
            OrderRejected: TWS rejected the order (or reported it ``Inactive``).
            RequestTimeout: not filled within ``timeout``.
            SessionClosedError / ConnectionLost: the session closed (or gave up reconnecting).
        """
        limit = _limit(self._book.session, timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._wait(lambda: self._status.is_done, limit, f"order {self._order_id} to fill")
        if self._status is not OrderStatus.FILLED:
            raise self._end_error()
        if not self._executions_in():
            # TWS can report the final status first (a completed order read back after a
            # reconnect comes before the executions): give the executions a moment.
            left = _EXEC_GRACE if limit is None else limit - (loop.time() - started)
            with contextlib.suppress(RequestTimeout):
                await self._wait(self._executions_in, max(min(left, _EXEC_GRACE), 0.001), "")
        return self.fills

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> OrderStatus:
        """Wait until the order is done (filled, cancelled or inactive); returns the status.

        Args:
            timeout: seconds to wait (the session default when not given; ``None`` = forever).

        Raises:
            RequestTimeout: not done within ``timeout``.
            SessionClosedError / ConnectionLost: the session closed (or gave up reconnecting).
        """
        limit = _limit(self._book.session, timeout)
        await self._wait(lambda: self._status.is_done, limit, f"order {self._order_id} to finish")
        return self._status

    def events(self) -> AsyncIterator[OrderEvent]:
        """Everything that happens to the order, from its first event, as an async iterator.

        Nothing is ever dropped: the Trade keeps its whole history and each iterator replays
        it from the start, then follows live. Iteration ends once the order is done and its
        executions and commissions are all in; it raises ``ConnectionLost`` if the session
        gives up.
        """
        return _TradeEvents(self)

    async def _wait(self, ready: Callable[[], bool], limit: float | None, what: str) -> None:
        def check() -> bool:
            if ready():
                return True
            self._book.raise_if_closed()
            return False

        await _wait_until(self._signal, check, limit, f"waiting for {what}")

    def _end_error(self) -> RequestError:
        status = self._status
        if self._error is not None or status is OrderStatus.INACTIVE:
            if self._error is not None:
                return self._error
            return OrderRejected(
                -1,
                f"TWS reported order {self._order_id} {status.value}: rejected or held by IB; "
                "see trade.history for its messages",
                self._order_id,
            )
        return OrderCancelled(
            f"order {self._order_id} ended {status.value} after filling "
            f"{_fmt(self.filled)} of {_fmt(self._order.quantity)}",
            order_id=self._order_id,
            status=status,
            filled=self.filled,
        )

    # -- acting ----------------------------------------------------------------------------

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> OrderStatus:
        """Ask TWS to cancel the order and wait until it reports the order done.

        Returns the final status: usually ``Cancelled``, ``Filled`` if it filled first. A done
        order is left alone (nothing is sent), except an ``Inactive`` one, which TWS still
        holds: it is cancelled like a live one. The cancel is sent once; it is not repeated.

        Args:
            timeout: seconds to wait for TWS (the session default when not given).

        Raises:
            SafetyError: the session is read-only, or live without ``allow_live``.
            InvalidRequest: another client id placed the order.
            OrderRejected: TWS refused the cancel (e.g. 10147 not found, 161 not cancellable).
            RequestTimeout: TWS did not confirm within ``timeout`` (the cancel was sent).
            ConnectionLost: the link is down (nothing was sent), or dropped before TWS
                confirmed (the cancel was sent once).
        """
        session = self._book.session
        limit = _limit(session, timeout)
        session._check_can_trade("cancel an order")
        self._check_owner("cancel")
        self._book.raise_if_closed()
        if self._cancel_pointless():
            return self._status
        session._require_ready()
        async with self._op_lock:
            if self._cancel_pointless():
                return self._status
            op = _Op("cancel")
            self._op = op
            epoch = self._book.link_epoch
            try:
                with map_ib_errors("cancelOrder"):
                    _wire.send_cancel(session._adapter, self._order_id)
                log.info("order %d: cancel sent", self._order_id)
                await self._wait(
                    lambda: (
                        self._cancel_pointless()
                        or op.error is not None
                        or self._link_dropped(epoch, "cancel")
                    ),
                    limit,
                    f"TWS to confirm the cancel of order {self._order_id} (sent once)",
                )
            finally:
                self._op = None
        if self._cancel_pointless():
            return self._status
        assert op.error is not None
        raise op.error

    def _cancel_pointless(self) -> bool:
        # Inactive is done for trading, but TWS still holds the order until it is cancelled.
        return self._status.is_done and self._status is not OrderStatus.INACTIVE

    async def modify(
        self,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        timeout: float | None = _DEFAULT,
    ) -> None:
        """Change the order's quantity or prices; returns once TWS reports the new terms.

        The change is validated like a new order (type, minimum tick, safety rails) and sent
        once under the same order id.

        Args:
            quantity: the new total quantity (above what has already filled).
            limit_price: the new limit (limit and stop-limit orders).
            stop_price: the new stop (stop and stop-limit orders).
            timeout: seconds to wait for TWS (the session default when not given).

        Raises:
            InvalidRequest: nothing to change, a value that does not fit the order, the order
                is done, or another client id placed it.
            SafetyError: read-only, live without ``allow_live``, or over a safety rail.
            OrderRejected: TWS refused the change (the order keeps its old terms).
            RequestTimeout: TWS did not confirm within ``timeout`` (the change was sent).
            ConnectionLost: the link is down (nothing was sent), or dropped before TWS
                confirmed (the change was sent once).
        """
        session = self._book.session
        limit = _limit(session, timeout)
        session._check_can_trade("modify an order")
        self._check_owner("modify")
        self._book.raise_if_closed()
        if quantity is None and limit_price is None and stop_price is None:
            raise InvalidRequest("modify() needs quantity=, limit_price= or stop_price=")
        current = self._order
        changes: dict[str, Any] = {}
        if quantity is not None:
            changes["quantity"] = quantity
        if limit_price is not None:
            changes["limit_price"] = limit_price
        if stop_price is not None:
            changes["stop_price"] = stop_price
        new = replace(current, **changes)
        if _same_terms(new, current):
            raise InvalidRequest(
                f"modify() changes nothing: order {self._order_id} already has these terms"
            )
        if self.is_done:
            raise InvalidRequest(
                f"order {self._order_id} is {self._status.value}; a done order cannot be modified"
            )
        if new.quantity <= self.filled + _EPS:
            raise InvalidRequest(
                f"quantity must stay above what has filled ({_fmt(self.filled)}); to stop the "
                "rest, cancel() the order"
            )
        try:
            async with asyncio.timeout(limit):
                await self._send_modify(new, changes)
        except TimeoutError:
            raise RequestTimeout(
                f"modify of order {self._order_id}: TWS did not confirm within {limit} s"
                + (" (the change was sent once)" if self._modify_sent else "; nothing was sent")
            ) from None

    async def _send_modify(self, new: Order, changes: dict[str, Any]) -> None:
        session = self._book.session
        self._modify_sent = False
        facts = await self._book.facts(self._contract)
        _check_against_contract(new, facts)
        await _check_rails(session, facts, [new])
        session._require_ready()
        async with self._op_lock:
            if self.is_done:
                raise InvalidRequest(
                    f"order {self._order_id} is {self._status.value}; a done order cannot be "
                    "modified"
                )
            op = _Op("modify")
            self._op = op
            epoch = self._book.link_epoch
            try:
                with map_ib_errors("placeOrder (modify)"):
                    _wire.send_order(
                        session._adapter,
                        self._contract,
                        new,
                        self._order_id,
                        parent_id=self.parent_id or 0,
                        oca_group=self._oca_group,
                        oca_type=self._oca_type,
                        new=False,
                    )
                self._modify_sent = True
                log.info("order %d: modify sent (%s)", self._order_id, changes)
                await self._wait(
                    lambda: (
                        _same_terms(self._order, new)
                        or op.error is not None
                        or self._status.is_done
                        or self._link_dropped(epoch, "change")
                    ),
                    None,
                    f"TWS to confirm the change of order {self._order_id}",
                )
            finally:
                self._op = None
        if _same_terms(self._order, new):
            return
        if op.error is not None:
            raise op.error
        raise OrderRejected(
            104,
            f"order {self._order_id} ended {self._status.value} before TWS confirmed the change",
            self._order_id,
        )

    def _link_dropped(self, epoch: int, what: str) -> bool:
        """Raise ``ConnectionLost`` if the link dropped since ``epoch`` (never returns True)."""
        if self._book.link_epoch != epoch:
            raise ConnectionLost(
                f"the link dropped while waiting for TWS to confirm the {what} of order "
                f"{self._order_id}; it was sent once and may or may not have arrived. The "
                "order's state is reconciled after the reconnect: check trade.status then."
            )
        return False

    def _check_owner(self, action: str) -> None:
        current = self._book.session.client_id
        if current != self._client_id:
            raise InvalidRequest(
                f"order {self._order_id} was placed by client id {self._client_id}, and this "
                f"session now uses client id {current}; TWS lets only the placing client id "
                f"{action} it (see docs/session.md, 'Orders belong to the client id')"
            )

    # -- state machine (called from the order book) -----------------------------------------

    def _emit(self, kind: OrderEventKind, **extra: Any) -> None:
        event = OrderEvent(
            kind=kind,
            order_id=self._order_id,
            perm_id=self._perm_id,
            status=self._status,
            filled=self.filled,
            remaining=self.remaining,
            at=datetime.now(UTC),
            **extra,
        )
        self._events.append(event)
        self._book.publish(event)

    def _wake(self) -> None:
        self._signal.fire()
        self._book.signal.fire()

    def _ack(self, perm_id: int | None) -> None:
        self._acked = True
        if perm_id and self._perm_id != perm_id:
            self._perm_id = perm_id
            self._book.by_perm[perm_id] = self

    def _transition(self, status: OrderStatus) -> bool:
        current = self._status
        if status is current:
            return False
        if current is OrderStatus.INACTIVE and status in _ENDS_INACTIVE:
            pass  # the one way out of a terminal status: TWS cancelled the order it held
        elif current.is_done:
            log.debug("order %d: ignoring %s after the final %s", self._order_id, status, current)
            return False
        self._status = status
        log.info("order %d: %s -> %s", self._order_id, current.value, status.value)
        return True

    def _on_status(
        self,
        status: OrderStatus | None,
        *,
        perm_id: int | None,
        filled: float | None = None,
        avg: float | None = None,
    ) -> None:
        self._ack(perm_id)
        if filled is not None and filled > self._status_filled:
            self._status_filled = filled
            if avg:
                self._status_avg = avg
        if status is not None and self._transition(status):
            self._emit(OrderEventKind.STATUS)
        self._wake()

    def _on_terms(
        self, quantity: float, limit_price: float | None, stop_price: float | None
    ) -> None:
        current = self._order
        changes: dict[str, Any] = {}
        if abs(quantity - current.quantity) > _EPS:
            changes["quantity"] = quantity
        if current.limit_price is not None and limit_price is not None:
            if abs(limit_price - current.limit_price) > _EPS:
                changes["limit_price"] = limit_price
        if current.stop_price is not None and stop_price is not None:
            if abs(stop_price - current.stop_price) > _EPS:
                changes["stop_price"] = stop_price
        if not changes:
            return
        try:
            self._order = replace(current, **changes)
        except InvalidRequest as exc:
            log.warning("order %d: TWS reports terms ibflow cannot hold (%s)", self._order_id, exc)
            return
        self._emit(OrderEventKind.MODIFIED)

    def _on_fill(self, fill: Fill, corrects: Fill | None) -> None:
        self._ack(fill.perm_id)
        if corrects is not None:
            self._fills = [fill if f.exec_id == corrects.exec_id else f for f in self._fills]
            # The executions are the record now: the filled figure of an earlier orderStatus
            # counted the corrected execution at its old size.
            self._corrected = True
            self._status_filled = min(self._status_filled, sum(f.quantity for f in self._fills))
        else:
            self._fills.append(fill)
        self._emit(OrderEventKind.FILL, fill=fill, corrects=corrects)
        # Executions are TWS's own record: when they add up to the order, it is filled, even if
        # the orderStatus for it never comes.
        executed = sum(f.quantity for f in self._fills)
        if executed >= self._order.quantity - _EPS and self._transition(OrderStatus.FILLED):
            self._emit(OrderEventKind.STATUS)
        self._wake()

    def _on_commission(self, commission: Commission) -> Fill | None:
        for index, fill in enumerate(self._fills):
            if fill.exec_id == commission.exec_id:
                if fill.commission == commission:
                    return None
                updated = replace(fill, commission=commission)
                self._fills[index] = updated
                self._emit(OrderEventKind.COMMISSION, fill=updated)
                self._wake()
                return updated
        return None

    def _on_error(self, code: int, message: str) -> None:
        row = lookup(code)
        self._emit(OrderEventKind.MESSAGE, code=code, message=message)
        if row.severity is Severity.ERROR:
            error = error_for(code, message, self._order_id)
            if not isinstance(error, OrderRejected):
                error = OrderRejected(code, message, self._order_id, hint=row.hint)
            if self._op is not None:
                self._op.error = error
            else:
                self._error = error
                self._rejected_first = self._rejected_first or not self._acked
        self._wake()

    def _executions_in(self) -> bool:
        """The executions received account for everything TWS says has filled."""
        wanted = self._status_filled
        if self._status is OrderStatus.FILLED and not self._corrected:
            # (A correction may leave a filled order's executions short of its quantity.)
            wanted = max(wanted, self._order.quantity)
        return sum(f.quantity for f in self._fills) >= wanted - _EPS

    def _settled(self) -> bool:
        """Done, with every execution and commission in: nothing more will happen."""
        return (
            self._status.is_done
            and self._executions_in()
            and all(f.commission is not None for f in self._fills)
        )


def _same_terms(a: Order, b: Order) -> bool:
    def same(x: float | None, y: float | None) -> bool:
        if x is None or y is None:
            return x is y
        return abs(x - y) <= _EPS

    return (
        same(a.quantity, b.quantity)
        and same(a.limit_price, b.limit_price)
        and same(a.stop_price, b.stop_price)
    )


class _TradeEvents:
    """``async for event in trade.events()``: the trade's history, then live events."""

    def __init__(self, trade: Trade) -> None:
        self._trade = trade
        self._index = 0

    def __aiter__(self) -> _TradeEvents:
        return self

    async def __anext__(self) -> OrderEvent:
        trade = self._trade
        while True:
            if self._index < len(trade._events):
                event = trade._events[self._index]
                self._index += 1
                return event
            if trade._settled():
                raise StopAsyncIteration
            closed = trade._book.closed_error
            if closed is not None:
                if isinstance(closed, SessionClosedError):
                    raise StopAsyncIteration
                raise closed
            await trade._signal.changed()


class TradeGroup:
    """The trades of one bracket or OCA group, placed together."""

    def __init__(self, trades: Sequence[Trade]) -> None:
        self._trades = tuple(trades)

    @property
    def trades(self) -> tuple[Trade, ...]:
        return self._trades

    def __iter__(self) -> Iterator[Trade]:
        return iter(self._trades)

    def __len__(self) -> int:
        return len(self._trades)

    def __getitem__(self, index: int) -> Trade:
        return self._trades[index]

    @property
    def is_done(self) -> bool:
        return all(t.is_done for t in self._trades)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self._trades)
        return f"<{type(self).__name__} [{inner}]>"

    async def wait_done(self, *, timeout: float | None = _DEFAULT) -> tuple[OrderStatus, ...]:
        """Wait until every order of the group is done; returns their statuses.

        Raises:
            RequestTimeout: not all done within ``timeout`` (the session default if not given).
            SessionClosedError / ConnectionLost: the session closed (or gave up reconnecting).
        """
        if not self._trades:
            return ()
        book = self._trades[0]._book
        limit = _limit(book.session, timeout)

        def ready() -> bool:
            if self.is_done:
                return True
            book.raise_if_closed()
            return False

        await _wait_until(book.signal, ready, limit, "waiting for the group to finish")
        return tuple(t.status for t in self._trades)

    async def cancel(self, *, timeout: float | None = _DEFAULT) -> tuple[OrderStatus, ...]:
        """Cancel every order of the group that is not done; returns the final statuses.

        For a bracket whose entry has not filled, only the entry is cancelled (TWS cancels its
        children with it).

        Raises:
            SafetyError, OrderRejected, RequestTimeout, ConnectionLost: as ``Trade.cancel``.
        """
        if not self._trades:
            return ()
        limit = _limit(self._trades[0]._book.session, timeout)
        targets = [
            t for t in self._trades if not t.is_done and (t._parent is None or t._parent.is_done)
        ]
        await asyncio.gather(*(t.cancel(timeout=limit) for t in targets))
        return await self.wait_done(timeout=limit)


class BracketTrade(TradeGroup):
    """The three trades of a bracket: ``parent``, ``take_profit``, ``stop_loss``."""

    @property
    def parent(self) -> Trade:
        return self._trades[0]

    @property
    def take_profit(self) -> Trade:
        return self._trades[1]

    @property
    def stop_loss(self) -> Trade:
        return self._trades[2]


# -- the order book -------------------------------------------------------------------------------


def _exec_key(exec_id: str) -> tuple[str, int]:
    """IB's execution id and its correction number: ``"0000e0d5.6576fd36.01.02"`` → base, 2.

    A correction keeps the id and raises the last part; it replaces the execution it corrects.
    """
    head, dot, tail = exec_id.rpartition(".")
    if dot and head.count(".") >= 2 and tail.isdigit():
        return head, int(tail)
    return exec_id, 0


@dataclass(frozen=True, slots=True)
class _Facts:
    """What order validation needs to know about a contract."""

    contract: Contract
    min_tick: float | None
    size_increment: float | None
    min_size: float | None
    order_types: tuple[str, ...] = ()


@dataclass(slots=True)
class _SeenExec:
    revision: int
    exec_id: str
    trade: Trade


class _Reconciler:
    """The order book's entry in ``session._subscriptions``: reconnects, 1101, close."""

    kind = "orders"

    def __init__(self, book: _OrderBook) -> None:
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


class _OrderBook:
    """One session's trades, fed by the tap; reconciles them after reconnects."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.trades: dict[tuple[int, int], Trade] = {}
        self.by_perm: dict[int, Trade] = {}
        self.signal = _Signal()
        self.closed_error: IBFlowError | None = None
        self.event_streams: set[Stream[OrderEvent]] = set()
        self.fill_streams: set[Stream[Fill]] = set()
        self.completed = _wire.CompletedCollector()
        self.open_lock = asyncio.Lock()
        self.completed_lock = asyncio.Lock()
        self.orphans: set[Trade] = set()
        self.rejected: OrderedDict[tuple[int, int], Trade] = OrderedDict()
        self.link_epoch = 0
        self._facts: dict[Contract, _Facts] = {}
        self._execs: dict[str, _SeenExec] = {}
        self._commissions: OrderedDict[str, Commission] = OrderedDict()
        self._pending_fills: dict[str, asyncio.TimerHandle] = {}
        self._seen_since_down: set[Trade] = set()
        self._uninstall = _wire.install_order_tap(session._adapter, self)
        session._subscriptions.add(_RECONCILER_KEY, _Reconciler(self))
        if session.state == "closed":
            self.close(session._closed_error)

    # -- lookup ----------------------------------------------------------------------------

    def register(self, trade: Trade) -> None:
        self.trades[(trade.client_id, trade.order_id)] = trade

    def forget(self, trade: Trade) -> None:
        self.trades.pop((trade.client_id, trade.order_id), None)
        if trade.perm_id is not None:
            self.by_perm.pop(trade.perm_id, None)

    def set_aside(self, trade: Trade) -> None:
        """Out of ``trades`` (it was rejected), but found again if TWS reports it after all."""
        if trade._acked:
            return  # TWS already reported the order it rejected: it stays a known trade
        self.forget(trade)
        self.rejected[(trade.client_id, trade.order_id)] = trade
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

    async def facts(self, contract: Contract) -> _Facts:
        """The qualified contract and its order rules; looked up once per session.

        Uses the session's ``qualify`` (``ContractNotFound`` / ``AmbiguousContract``) and
        ``contract_details``; the caller's deadline bounds both.
        """
        cached = self._facts.get(contract)
        if cached is not None:
            return cached
        session = self.session
        [qualified] = await session.qualify(contract, timeout=None)
        found = await session.contract_details(qualified, timeout=None)
        match = next((d for d in found if d.contract.con_id == qualified.con_id), None)
        if match is None and found:
            match = found[0]
        facts = _Facts(
            contract=qualified,
            min_tick=match.min_tick if match is not None else None,
            size_increment=match.size_increment if match is not None else None,
            min_size=match.min_size if match is not None else None,
            order_types=match.order_types if match is not None else (),
        )
        self._facts[contract] = facts
        self._facts[qualified] = facts
        return facts

    def attach(self, stream: Stream[Any], streams: set[Any]) -> None:
        """Start delivering to ``stream`` (or end it at once when the session is closed)."""
        if self.closed_error is not None:
            stream._end()
        else:
            streams.add(stream)

    def with_commission(self, fill: Fill) -> Fill:
        """``fill`` with the commission this book recorded for it, when it has a better one.

        ib_async rewrites an unset realized PnL to 0.0 in its cache; the tap kept the original.
        """
        seen = self._execs.get(_exec_key(fill.exec_id)[0])
        if seen is None or seen.exec_id != fill.exec_id:
            return fill
        mine = next((f for f in seen.trade._fills if f.exec_id == fill.exec_id), None)
        if mine is None or mine.commission is None or mine.commission == fill.commission:
            return fill
        return replace(fill, commission=mine.commission)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, event: OrderEvent) -> None:
        for stream in list(self.event_streams):
            stream._put(event)

    def _publish_fill(self, fill: Fill) -> None:
        handle = self._pending_fills.pop(fill.exec_id, None)
        if handle is not None:
            handle.cancel()
        for stream in list(self.fill_streams):
            stream._put(fill)

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
                stream._put(current)

        loop = asyncio.get_running_loop()
        self._pending_fills[fill.exec_id] = loop.call_later(_COMMISSION_GRACE, late)

    # -- the tap (OrderListener) ---------------------------------------------------------------

    def on_status(self, update: _wire.StatusUpdate) -> None:
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

    def on_open_order(self, update: _wire.OpenOrderUpdate) -> None:
        trade = self.find_reported(update.client_id, update.order_id, update.perm_id)
        if trade is None:
            return
        self._seen_since_down.add(trade)
        trade._ack(update.perm_id)
        if not trade.is_done:
            trade._on_terms(update.quantity, update.limit_price, update.stop_price)
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
        base, revision = _exec_key(fill.exec_id)
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
        base, _ = _exec_key(commission.exec_id)
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

    def on_order_error(self, order_id: int, code: int, message: str) -> None:
        trade = self.trades.get((self.session.client_id, order_id))
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
        session = self.session
        adapter = session._adapter
        limit = session._timeout
        readonly = session._config.readonly
        parts: list[
            tuple[str, Callable[[], tuple[int | None, Awaitable[Any]]], asyncio.Lock | None]
        ]
        parts = [("executions", lambda: _wire.start_fills(adapter, None), None)]
        if not readonly:
            all_clients = session._all_open_orders
            parts += [
                (
                    "open orders",
                    lambda: _wire.start_open_orders(adapter, all_clients),
                    self.open_lock,
                ),
                (
                    "completed orders",
                    lambda: _wire.start_completed_orders(adapter, self.completed, False),
                    self.completed_lock,
                ),
            ]
        for name, start, lock in parts:
            try:
                async with lock if lock is not None else contextlib.nullcontext():
                    with map_ib_errors(name):
                        await _direct(start(), limit)
            except (IBFlowError, TimeoutError) as exc:
                log.warning("reconciling orders: could not re-read %s: %s", name, exc)
        for trade in list(self.orphans):
            self.orphans.discard(trade)
            if not trade.is_done and trade.client_id == session.client_id:
                log.warning(
                    "order %d: cancelling it now; place() gave up on it while the link was down",
                    trade.order_id,
                )
                with contextlib.suppress(Exception):
                    _wire.send_cancel(adapter, trade.order_id)
        missing = [t.order_id for t in self.live() if t not in self._seen_since_down]
        if missing and not readonly:
            log.warning(
                "after the %s TWS reported nothing about order(s) %s; their last known state "
                "is kept (ibflow never marks an order done on its own)",
                "reconnect" if fresh_link else "1101",
                ", ".join(map(str, missing)),
            )
        log.info("orders reconciled: %d live trade(s)", len(self.live()))

    def close(self, error: IBFlowError | None) -> None:
        if self.closed_error is not None:
            return
        self.closed_error = error or SessionClosedError(
            "the session was closed; order states are no longer followed"
        )
        for handle in self._pending_fills.values():
            handle.cancel()
        self._pending_fills.clear()
        streams: list[Stream[Any]] = [*self.event_streams, *self.fill_streams]
        for stream in streams:
            if error is None:
                stream._end()
            else:
                stream._fail(error)
        self.event_streams.clear()
        self.fill_streams.clear()
        for trade in list(self.trades.values()):
            trade._wake()
        self.signal.fire()
        self._uninstall()


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


# -- checks against the contract and the rails ----------------------------------------------------


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _off_grid(value: float, step: float) -> tuple[Decimal, Decimal] | None:
    """``None`` when ``value`` is a multiple of ``step``, else the two nearest multiples."""
    try:
        v, s = _decimal(value), _decimal(step)
        if s <= 0 or v % s == 0:
            return None
    except InvalidOperation:
        return None
    below = (v // s) * s
    return below.quantize(s), (below + s).quantize(s)


def _check_against_contract(spec: Order, facts: _Facts) -> None:
    name = facts.contract.display_name
    # TWS lists stop-limit as "STPLMT" in contract details and as "STP LMT" on orders.
    allowed = {t.replace(" ", "").upper() for t in facts.order_types}
    if allowed and spec.order_type.value.replace(" ", "") not in allowed:
        ours = [t.value for t in OrderType if t.value.replace(" ", "") in allowed]
        raise InvalidRequest(
            f"{name} does not take {spec.order_type.value} orders"
            + (f"; of ibflow's order types it takes {', '.join(ours)}" if ours else "")
        )
    tick = facts.min_tick
    if tick:
        for field_name in ("limit_price", "stop_price"):
            price = getattr(spec, field_name)
            if price is None:
                continue
            near = _off_grid(price, tick)
            if near is not None:
                raise InvalidRequest(
                    f"{field_name} {_fmt(price)} is not a multiple of {name}'s minimum tick "
                    f"{_fmt(tick)}; use {near[0]} or {near[1]}"
                )
    step = facts.size_increment
    if step and _off_grid(spec.quantity, step) is not None:
        raise InvalidRequest(
            f"quantity {_fmt(spec.quantity)} is not a multiple of {name}'s size increment "
            f"{_fmt(step)}"
        )
    if facts.min_size and spec.quantity < facts.min_size - _EPS:
        raise InvalidRequest(
            f"quantity {_fmt(spec.quantity)} is below {name}'s minimum size {_fmt(facts.min_size)}"
        )


def _check_quantity_rail(session: Session, spec: Order) -> None:
    cap = session._max_order_quantity
    if cap is not None and spec.quantity > cap + _EPS:
        raise SafetyError(
            f"refusing an order for {_fmt(spec.quantity)}: this session's max_order_quantity is "
            f"{_fmt(cap)}. Nothing was sent. Lower the quantity or raise the limit on the Session."
        )


async def _check_rails(session: Session, facts: _Facts, legs: Sequence[Order]) -> None:
    """``max_order_quantity`` and ``max_order_notional``; may take a snapshot quote."""
    for leg in legs:
        _check_quantity_rail(session, leg)
    cap = session._max_order_notional
    if cap is None:
        return
    multiplier = facts.contract.multiplier or 1.0
    for leg in legs:
        price = leg.price
        if price is None:
            price = await _market_price(session, facts.contract, leg.side)
        notional = abs(leg.quantity * price * multiplier)
        if notional > cap + _EPS:
            raise SafetyError(
                f"refusing an order worth about {notional:,.2f} {facts.contract.currency} "
                f"({_fmt(leg.quantity)} x {_fmt(price)} x {_fmt(multiplier)}): this session's "
                f"max_order_notional is {cap:,.2f}. Nothing was sent."
            )


async def _market_price(session: Session, contract: Contract, side: Side) -> float:
    adapter = session._adapter
    cancels: list[Callable[[int], None]] = []

    def start() -> tuple[int, Awaitable[_wire.QuoteSnapshot]]:
        req_id, answer, cancel = _wire.start_snapshot_quote(adapter, contract)
        cancels.append(cancel)
        return req_id, answer

    def cancel(req_id: int) -> None:
        for c in cancels:
            c(req_id)

    quote = await session._request("market price snapshot", start, timeout=None, cancel=cancel)
    price = quote.ask if side is Side.BUY else quote.bid
    price = price or quote.last or quote.close
    if price is None:
        raise SafetyError(
            f"cannot check max_order_notional for a market order on {contract.display_name}: "
            "no quote to value it with. Nothing was sent. Use a limit order."
        )
    return price


# -- the Session methods --------------------------------------------------------------------------


@dataclass(slots=True)
class _Leg:
    spec: Order
    parent: int | None = None
    transmit: bool = True
    oca_group: str = ""
    oca_type: int = 0


def _session(api: OrdersAPI) -> Session:
    # The mixin only ever runs as part of a Session; mypy cannot see that from here.
    return cast("Session", api)


def _order_book(session: Session) -> _OrderBook:
    """The session's order book, created (and the tap installed) on first use."""
    return per_session(session, "order_book", lambda: _OrderBook(session))


def _check_account(session: Session, spec: Order) -> None:
    if spec.account is not None and spec.account not in session.accounts:
        known = ", ".join(mask_account(a) for a in session.accounts)
        raise InvalidRequest(
            f"account {mask_account(spec.account)} is not managed by this login ({known})"
        )


def _send_legs(
    session: Session, book: _OrderBook, contract: Contract, legs: list[_Leg]
) -> list[Trade]:
    """Allocate ids and send every leg back to back, with no await in between.

    Nothing can interrupt a bracket half-sent: cancellation only lands at an ``await``.
    """
    adapter = session._adapter
    with map_ib_errors("placeOrder"):
        ids = [_wire.next_order_id(adapter) for _ in legs]
    trades: list[Trade] = []
    for leg, order_id in zip(legs, ids, strict=True):
        parent = trades[leg.parent] if leg.parent is not None else None
        trade = Trade(
            book,
            contract,
            leg.spec,
            order_id,
            session.client_id,
            parent=parent,
            oca_group=leg.oca_group,
            oca_type=leg.oca_type,
        )
        book.register(trade)
        trades.append(trade)
    for leg, trade in zip(legs, trades, strict=True):
        with map_ib_errors("placeOrder"):
            _wire.send_order(
                adapter,
                contract,
                leg.spec,
                trade.order_id,
                parent_id=trade.parent_id or 0,
                transmit=leg.transmit,
                oca_group=leg.oca_group,
                oca_type=leg.oca_type,
            )
        log.info("order %d sent: %r", trade.order_id, trade)
    return trades


async def _wait_acknowledged(book: _OrderBook, trades: list[Trade]) -> None:
    """Until TWS has acknowledged every leg; a leg's rejection raises it."""

    def ready() -> bool:
        for trade in trades:
            if trade._rejected_first and trade.error is not None:
                raise trade.error
        if all(t._acked for t in trades):
            return True
        book.raise_if_closed()
        return False

    while not ready():
        await book.signal.changed()


def _abandon(session: Session, book: _OrderBook, trades: list[Trade], why: str) -> None:
    """Cancel orders whose caller will never get a handle (sent once; never re-sent)."""
    for trade in trades:
        if trade.is_done:
            continue
        if session._adapter.is_connected:
            log.warning("order %d: sending a cancel because %s", trade.order_id, why)
            with contextlib.suppress(Exception):
                _wire.send_cancel(session._adapter, trade.order_id)
        else:
            log.warning(
                "order %d: %s while the link is down; it is cancelled on reconnect",
                trade.order_id,
                why,
            )
            book.orphans.add(trade)


async def _place(
    session: Session, contract: Contract, order: object, timeout: object
) -> Trade | BracketTrade | TradeGroup:
    limit = _limit(session, timeout)
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"contract must be an ibflow Contract (Stock(...), Future(...)…), got {contract!r}"
        )
    legs = _legs_of(order)
    session._check_can_trade("place an order")
    session._require_ready()
    if contract.sec_type is SecType.INDEX:
        raise InvalidRequest(f"{contract.display_name} is an index; indexes are not tradable")
    for leg in legs:
        _check_account(session, leg.spec)
        _check_quantity_rail(session, leg.spec)
    book = _order_book(session)
    trades: list[Trade] = []
    sent = False
    try:
        async with asyncio.timeout(limit):
            facts = await book.facts(contract)
            for leg in legs:
                _check_against_contract(leg.spec, facts)
            # A bracket's exits only ever close what its entry opened: the entry is the exposure.
            valued = [legs[0].spec] if isinstance(order, Bracket) else [lg.spec for lg in legs]
            await _check_rails(session, facts, valued)
            session._require_ready()
            trades = _send_legs(session, book, facts.contract, legs)
            sent = True
            await _wait_acknowledged(book, trades)
    except TimeoutError:
        if sent:
            _abandon(session, book, trades, "place() timed out before TWS acknowledged it")
        raise RequestTimeout(
            f"place: TWS did not acknowledge within {limit} s"
            + ("; a cancel was sent for the order" if sent else "; nothing was sent")
        ) from None
    except asyncio.CancelledError:
        if sent:
            _abandon(session, book, trades, "place() was cancelled before TWS acknowledged it")
        raise
    except OrderRejected as exc:
        rejected = [t for t in trades if t._rejected_first]
        _abandon(
            session,
            book,
            [t for t in trades if t not in rejected],
            "another order of its group was rejected",
        )
        for trade in rejected:
            book.set_aside(trade)
            if trade.error is exc:
                exc.trade = trade
        raise
    if isinstance(order, Bracket):
        return BracketTrade(trades)
    if isinstance(order, OcaGroup):
        return TradeGroup(trades)
    return trades[0]


class OrdersAPI:
    """Session methods for placing and tracking orders; ``Session`` inherits them."""

    @overload
    async def place(
        self, contract: Contract, order: Order, *, timeout: float | None = ...
    ) -> Trade: ...

    @overload
    async def place(
        self, contract: Contract, order: Bracket, *, timeout: float | None = ...
    ) -> BracketTrade: ...

    @overload
    async def place(
        self, contract: Contract, order: OcaGroup, *, timeout: float | None = ...
    ) -> TradeGroup: ...

    async def place(
        self,
        contract: Contract,
        order: Order | Bracket | OcaGroup,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Trade | BracketTrade | TradeGroup:
        """Place an order (or a bracket, or an OCA group) and return once TWS acknowledged it.

        Before anything is sent, the order is checked against the session's safety rails and
        against the contract (qualified and looked up once per session): prices on the
        minimum tick, quantity on the size increment. A refusal sends nothing.

        If the call times out or is cancelled after the order went out but before TWS
        acknowledged it, ibflow sends one cancel for it: an order you hold no handle for is not
        left working. If the link drops meanwhile, the order is not re-sent; the reconnect's
        reconciliation settles it (see ``session.trades()``).

        Args:
            contract: what to trade.
            order: an :class:`Order`, a :class:`Bracket` (→ :class:`BracketTrade`) or an
                :class:`OcaGroup` (→ :class:`TradeGroup`).
            timeout: seconds for the whole call (the session default when not given).

        Raises:
            InvalidRequest: a bad argument, or the order does not fit the contract.
            SafetyError: read-only session, live account without ``allow_live``, or over
                ``max_order_quantity`` / ``max_order_notional``.
            ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
            OrderRejected: TWS rejected the order before acknowledging it (IB's code is on
                the error). Its ``trade`` is the order's Trade: TWS may still hold the order
                (reporting it ``Inactive`` later), and the Trade keeps following it. A
                rejection after the acknowledgement is not raised here: the Trade returned
                ends with ``trade.error`` set (``wait_filled()`` raises it).
            RequestTimeout: no acknowledgement within ``timeout`` (a cancel was sent).
            ConnectionLost: the link is down (nothing was sent).
            SessionClosedError: the session is not open.
        """
        return await _place(_session(self), contract, order, timeout)

    def trades(self) -> tuple[Trade, ...]:
        """Every order this session placed (including done ones), oldest first."""
        book = peek(_session(self), "order_book")
        if not isinstance(book, _OrderBook):
            return ()
        return tuple(book.trades.values())

    async def open_orders(self, *, timeout: float | None = _DEFAULT) -> list[OrderSnapshot]:
        """The orders TWS has open for this client id (every client's with ``all_open_orders``).

        Raises:
            RequestTimeout: TWS did not answer within ``timeout``.
            ConnectionLost: the link is down.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        limit = _limit(session, timeout)
        session._require_ready()
        book = _order_book(session)
        adapter = session._adapter
        all_clients = session._all_open_orders
        try:
            async with asyncio.timeout(limit), _locked(book.open_lock):
                rows: list[OrderSnapshot] = await session._request(
                    "open orders",
                    lambda: _wire.start_open_orders(adapter, all_clients),
                    timeout=None,
                )
        except TimeoutError:
            raise RequestTimeout(f"open orders: no answer within {limit} s") from None
        return rows

    async def completed_orders(
        self, *, api_only: bool = False, timeout: float | None = _DEFAULT
    ) -> list[OrderSnapshot]:
        """Orders that finished today (filled, cancelled, inactive), as TWS reports them.

        Args:
            api_only: only orders placed through the API (not by hand in TWS).
            timeout: seconds to wait (the session default when not given).

        Raises:
            InvalidRequest: ``api_only`` is not a bool.
            RequestTimeout: TWS did not answer within ``timeout``.
            ConnectionLost: the link is down.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        if not isinstance(api_only, bool):
            raise InvalidRequest(f"api_only must be True or False, got {api_only!r}")
        limit = _limit(session, timeout)
        session._require_ready()
        book = _order_book(session)
        adapter = session._adapter
        try:
            async with asyncio.timeout(limit), _locked(book.completed_lock):
                rows: list[OrderSnapshot] = await session._request(
                    "completed orders",
                    lambda: _wire.start_completed_orders(adapter, book.completed, api_only),
                    timeout=None,
                )
        except TimeoutError:
            raise RequestTimeout(f"completed orders: no answer within {limit} s") from None
        return rows

    async def fills(
        self, since: datetime | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Fill]:
        """Executions of the account (every client id), with their commission reports.

        Args:
            since: only executions at or after this aware datetime (TWS keeps about a day).
            timeout: seconds to wait (the session default when not given).

        Raises:
            InvalidRequest: ``since`` is not an aware datetime.
            RequestTimeout: TWS did not answer within ``timeout``.
            ConnectionLost: the link is down.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise InvalidRequest(
                f"since must be an aware datetime (with a time zone), got {since!r}"
            )
        limit = _limit(session, timeout)
        session._require_ready()
        book = _order_book(session)
        adapter = session._adapter
        rows: list[Fill] = await session._request(
            "executions", lambda: _wire.start_fills(adapter, since), timeout=limit
        )
        # IB stamps executions to the second; compare at that precision.
        floor = since.replace(microsecond=0) if since is not None else None
        return [book.with_commission(f) for f in rows if floor is None or f.time >= floor]

    async def what_if(
        self, contract: Contract, order: Order, *, timeout: float | None = _DEFAULT
    ) -> OrderPreview:
        """Preview an order's margin impact and commission; nothing is placed.

        The order is validated against the contract as for ``place()``; the safety rails do
        not apply (nothing trades).

        Raises:
            InvalidRequest: a bad argument, or the order does not fit the contract.
            ContractNotFound / AmbiguousContract: the contract is unknown or not unique.
            OrderRejected / RequestError: TWS refused the preview.
            RequestTimeout: no answer within ``timeout``.
            ConnectionLost: the link is down.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        limit = _limit(session, timeout)
        if not isinstance(contract, Contract):
            raise InvalidRequest(f"contract must be an ibflow Contract, got {contract!r}")
        if not isinstance(order, Order):
            raise InvalidRequest(
                "what_if() previews one Order (MarketOrder, LimitOrder…); preview the orders of "
                f"a bracket or OCA group one by one, got {order!r}"
            )
        session._require_ready()
        _check_account(session, order)
        book = _order_book(session)
        adapter = session._adapter
        try:
            async with asyncio.timeout(limit):
                facts = await book.facts(contract)
                _check_against_contract(order, facts)
                preview: OrderPreview = await session._request(
                    "what-if order",
                    lambda: _wire.start_what_if(adapter, facts.contract, order),
                    timeout=None,
                )
        except TimeoutError:
            raise RequestTimeout(f"what_if: no answer within {limit} s") from None
        return preview

    def order_events(self, *, buffer: int = 1024) -> Stream[OrderEvent]:
        """Every event of every order this session places, from now on.

        A bounded stream whose overflow policy is ``"error"``: a consumer that falls
        ``buffer`` events behind gets ``SlowConsumer`` instead of a silent gap (each Trade's
        own ``events()`` replays its full history to recover). The stream ends when the
        session closes, with ``ConnectionLost`` if it gave up reconnecting.
        """
        book = _order_book(_session(self))
        stream: Stream[OrderEvent] = Stream(
            name="order events",
            buffer=buffer,
            overflow="error",
            on_close=lambda: book.event_streams.discard(stream),
        )
        book.attach(stream, book.event_streams)
        return stream

    def fills_stream(self, *, buffer: int = 1024) -> Stream[Fill]:
        """Every fill of this session's orders, from now on, each once, with its commission.

        A fill is delivered when its commission report arrives (or a few seconds later
        without one). Fills that happened while the link was down are delivered after the
        reconnect, once. Overflow policy ``"error"``: never a silent loss.
        """
        book = _order_book(_session(self))
        stream: Stream[Fill] = Stream(
            name="fills",
            buffer=buffer,
            overflow="error",
            on_close=lambda: book.fill_streams.discard(stream),
        )
        book.attach(stream, book.fill_streams)
        return stream


def _legs_of(order: object) -> list[_Leg]:
    if isinstance(order, Order):
        return [_Leg(order)]
    if isinstance(order, Bracket):
        return [
            _Leg(order.parent, transmit=False),
            _Leg(order.take_profit, parent=0, transmit=False),
            _Leg(order.stop_loss, parent=0, transmit=True),
        ]
    if isinstance(order, OcaGroup):
        code = order.type.code
        return [_Leg(spec, oca_group=order.group, oca_type=code) for spec in order.orders]
    raise InvalidRequest(
        "order must be an ibflow Order (MarketOrder, LimitOrder, StopOrder, StopLimitOrder), "
        f"a bracket(...) or an oca(...) group; got {order!r}"
    )


@contextlib.asynccontextmanager
async def _locked(lock: asyncio.Lock) -> AsyncIterator[None]:
    """Hold ``lock``: ib_async files some answers under one fixed key, one request at a time."""
    async with lock:
        yield
