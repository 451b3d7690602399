"""Order records: sides, types, statuses, the frozen order specs and their builders, fills.

Specs are validated when built; what depends on the contract (tick, size increment) is checked by
the orders feature before anything is sent.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from .._errors import InvalidRequest
from .contracts import Contract, check_text

__all__ = [
    "Bracket",
    "Commission",
    "Fill",
    "LimitOrder",
    "MarketOrder",
    "OcaGroup",
    "OcaType",
    "Order",
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
    "bracket",
    "oca",
]

E = TypeVar("E", bound=StrEnum)

EPS = 1e-9  # quantities and prices closer than this are equal

# -- enums ----------------------------------------------------------------------------------------


class Side(StrEnum):
    """Buy or sell (IB calls it the order's *action*)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


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
    """An order's status, as TWS names it; ``Lost`` is ibflow's own."""

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
    LOST = "Lost"
    """Sent, but never acknowledged: the link dropped with the order in transit, and after the
    reconnect TWS reported no open order, completed order or execution for it. Nothing is
    working; ``Trade.lost_reason`` says why. TWS never uses this status."""

    @property
    def is_done(self) -> bool:
        """Terminal: the order will not work or fill any more."""
        return self in DONE


DONE = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.API_CANCELLED,
        OrderStatus.INACTIVE,
        OrderStatus.LOST,
    }
)
ENDS_INACTIVE = frozenset({OrderStatus.CANCELLED, OrderStatus.API_CANCELLED})


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


# -- validation helpers ---------------------------------------------------------------------------


MAX_QUANTITY = 1e9
"""The largest order quantity ibflow sends (no instrument trades more in one order)."""
MAX_PRICE = 1e9
"""The largest limit or stop price ibflow sends; TWS reads float max as "no price"."""


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidRequest(f"{what} must be a number, got {value!r}")
    try:
        out = float(value)
    except (OverflowError, ValueError):  # a huge int, a signalling Decimal NaN
        out = math.nan
    if not math.isfinite(out):
        raise InvalidRequest(f"{what} must be a finite number, got {value!r}")
    return out


def _positive(value: object, what: str, limit: float) -> float:
    out = _number(value, what)
    if out <= 0:
        raise InvalidRequest(f"{what} must be greater than 0, got {value!r}")
    if out > limit:
        raise InvalidRequest(f"{what} must be at most {limit:,.0f}, got {value!r}")
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
    # The one wire-text check first: strip() would silently drop \x1c-\x1f.
    text = check_text(value, what, limit=limit).strip()
    if not text:
        return None
    if len(text) > limit or not all(32 <= ord(ch) < 127 for ch in text):
        raise InvalidRequest(
            f"{what} must be printable ASCII of at most {limit} characters (TWS refuses "
            f"anything else), got {value!r}"
        )
    return text


def fmt(value: float) -> str:
    """A quantity or price for a message: no float noise, no needless zeros."""
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
        put(self, "quantity", _positive(self.quantity, "quantity", MAX_QUANTITY))
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
            put(self, "limit_price", _positive(self.limit_price, "limit_price", MAX_PRICE))
        if self.stop_price is None:
            if wants_stop:
                raise InvalidRequest(f"a {kind.value} order needs a stop_price")
        elif not wants_stop:
            raise InvalidRequest(
                f"a {kind.value} order takes no stop_price (got {self.stop_price!r}); use "
                "StopOrder or StopLimitOrder for a stop"
            )
        else:
            put(self, "stop_price", _positive(self.stop_price, "stop_price", MAX_PRICE))
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
        if abs(tp.quantity - parent.quantity) > EPS or abs(sl.quantity - parent.quantity) > EPS:
            raise InvalidRequest("all three orders of a bracket need the same quantity")
        entry = parent.price
        take, stop = tp.limit_price, sl.stop_price
        assert take is not None
        assert stop is not None
        if entry is not None:
            if parent.side is Side.BUY and not (take > entry > stop):
                raise InvalidRequest(
                    f"a BUY bracket needs take_profit > entry > stop_loss, got {fmt(take)} / "
                    f"{fmt(entry)} / {fmt(stop)}"
                )
            if parent.side is Side.SELL and not (take < entry < stop):
                raise InvalidRequest(
                    f"a SELL bracket needs take_profit < entry < stop_loss, got {fmt(take)} / "
                    f"{fmt(entry)} / {fmt(stop)}"
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
