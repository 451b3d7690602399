"""Order records: sides, types, statuses, the frozen order specs and their builders, fills.

Specs are validated when built; what depends on the contract (tick, size increment) is checked by
the orders feature before anything is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from .._errors import InvalidRequest
from .algos import Algo
from .conditions import CONDITION_TYPES, Condition
from .contracts import Contract
from .values import EPS as EPS  # the order feature takes these from here
from .values import MAX_PRICE, MAX_QUANTITY, as_ascii, as_enum, as_number, as_positive
from .values import fmt as fmt

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
    TRAILING_STOP = "TRAIL"
    TRAILING_STOP_LIMIT = "TRAIL LIMIT"
    MARKET_ON_CLOSE = "MOC"
    LIMIT_ON_CLOSE = "LOC"
    MARKET_IF_TOUCHED = "MIT"
    LIMIT_IF_TOUCHED = "LIT"
    RELATIVE = "REL"
    PEGGED_TO_MIDPOINT = "PEG MID"


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


# -- order specs ----------------------------------------------------------------------------------


_TRAIL = frozenset({"trail_amount", "trail_percent", "trail_stop_price"})

_TERMS: dict[OrderType, tuple[frozenset[str], frozenset[str]]] = {
    OrderType.MARKET: (frozenset(), frozenset()),
    OrderType.LIMIT: (frozenset({"limit_price"}), frozenset()),
    OrderType.STOP: (frozenset({"stop_price"}), frozenset()),
    OrderType.STOP_LIMIT: (frozenset({"limit_price", "stop_price"}), frozenset()),
    OrderType.TRAILING_STOP: (frozenset(), _TRAIL),
    OrderType.TRAILING_STOP_LIMIT: (frozenset({"limit_offset"}), _TRAIL),
    OrderType.MARKET_ON_CLOSE: (frozenset(), frozenset()),
    OrderType.LIMIT_ON_CLOSE: (frozenset({"limit_price"}), frozenset()),
    OrderType.MARKET_IF_TOUCHED: (frozenset({"trigger_price"}), frozenset()),
    OrderType.LIMIT_IF_TOUCHED: (frozenset({"limit_price", "trigger_price"}), frozenset()),
    OrderType.RELATIVE: (frozenset({"offset"}), frozenset({"limit_price"})),
    OrderType.PEGGED_TO_MIDPOINT: (frozenset(), frozenset({"offset", "limit_price"})),
}
"""The price terms each order type needs, and those it may take; it refuses all others."""

PRICE_TERMS = ("limit_price", "stop_price", "trigger_price", "trail_stop_price")
"""Terms that are prices (on the contract's tick grid at their level)."""
OFFSET_TERMS = ("trail_amount", "limit_offset", "offset")
"""Terms that are price distances (multiples of the contract's minimum tick)."""

_BUILDER_OF = {
    "limit_price": "LimitOrder or StopLimitOrder for a limit",
    "stop_price": "StopOrder or StopLimitOrder for a stop",
    "trigger_price": "MarketIfTouchedOrder or LimitIfTouchedOrder for a touch price",
    "trail_amount": "TrailingStopOrder or TrailingStopLimitOrder for a trailing stop",
    "trail_percent": "TrailingStopOrder or TrailingStopLimitOrder for a trailing stop",
    "trail_stop_price": "TrailingStopOrder or TrailingStopLimitOrder for a trailing stop",
    "limit_offset": "TrailingStopLimitOrder for a limit offset",
    "offset": "RelativeOrder or PeggedToMidpointOrder for an offset",
}
_ALGO_TYPES = (OrderType.MARKET, OrderType.LIMIT)
_MARKET_LIKE = (
    OrderType.MARKET,
    OrderType.MARKET_ON_CLOSE,
    OrderType.LIMIT_ON_CLOSE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """What to trade and how: a validated, immutable order spec.

    Build one with a builder (:func:`MarketOrder`, :func:`LimitOrder`, :func:`StopOrder`,
    :func:`StopLimitOrder`, :func:`TrailingStopOrder`, :func:`MarketOnCloseOrder`…);
    constructing it directly validates the same way. Each order type takes only its own price
    terms (see the "Order types, algos and conditions" guide).

    Raises:
        InvalidRequest: a field is invalid or does not fit the order type (the message says
            what to change).
    """

    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None = None
    """The limit; for a relative or pegged order, the cap."""
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    good_till: datetime | None = None
    """Expiry of a ``GTD`` order (aware datetime)."""
    outside_rth: bool = False
    account: str | None = None
    order_ref: str | None = None
    """Your own tag; TWS keeps it on the order and its executions."""
    trigger_price: float | None = None
    """The touch price of a market- or limit-if-touched order."""
    trail_amount: float | None = None
    """A trailing stop's distance from the best price, in price units."""
    trail_percent: float | None = None
    """A trailing stop's distance from the best price, in percent."""
    trail_stop_price: float | None = None
    """A trailing stop's initial stop (TWS computes it from the market when ``None``)."""
    limit_offset: float | None = None
    """A trailing stop-limit's limit distance from its stop."""
    offset: float | None = None
    """A relative or pegged order's offset from the price it follows."""
    algo: Algo | None = None
    """An IB algo (:func:`Adaptive`, :class:`Algo`), on market and limit orders."""
    conditions: tuple[Condition, ...] = ()
    """Conditions TWS waits for before it submits the order (or cancels it)."""
    conditions_cancel_order: bool = False
    """Cancel the order, instead of submitting it, when the conditions become true."""
    conditions_ignore_rth: bool = False
    """Let the conditions become true outside regular trading hours."""

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "side", as_enum(Side, self.side, "side"))
        put(self, "order_type", as_enum(OrderType, self.order_type, "order_type"))
        put(self, "tif", as_enum(TimeInForce, self.tif, "tif"))
        put(self, "quantity", as_positive(self.quantity, "quantity", MAX_QUANTITY))
        self._check_terms()
        for flag in ("outside_rth", "conditions_cancel_order", "conditions_ignore_rth"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidRequest(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        self._check_tif()
        self._check_algo_and_conditions()
        put(self, "account", as_ascii(self.account, "account", 32))
        put(self, "order_ref", as_ascii(self.order_ref, "order_ref"))

    def _check_terms(self) -> None:
        kind = self.order_type
        needs, may = _TERMS[kind]
        for name in (*PRICE_TERMS, *OFFSET_TERMS, "trail_percent"):
            value = getattr(self, name)
            if value is None:
                if name in needs:
                    article = "an" if name[0] in "aeiou" else "a"
                    raise InvalidRequest(f"a {kind.value} order needs {article} {name}")
                continue
            if name not in needs and name not in may:
                raise InvalidRequest(
                    f"a {kind.value} order takes no {name} (got {value!r}); use {_BUILDER_OF[name]}"
                )
            if name in PRICE_TERMS or name == "trail_amount":
                out = as_positive(value, name, MAX_PRICE)
            elif name == "trail_percent":
                out = as_number(value, name)
                if not 0 < out < 100:
                    raise InvalidRequest(
                        f"trail_percent is a percentage above 0 and below 100 (1.5 means 1.5 %), "
                        f"got {value!r}"
                    )
            else:
                out = as_number(value, name)
                if not 0 <= out <= MAX_PRICE:
                    raise InvalidRequest(
                        f"{name} is a price distance: at least 0 and at most {MAX_PRICE:,.0f}, "
                        f"got {value!r}"
                    )
            object.__setattr__(self, name, out)
        if kind in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT):
            if (self.trail_amount is None) == (self.trail_percent is None):
                raise InvalidRequest(
                    f"a {kind.value} order needs exactly one of trail_amount= (a price distance) "
                    "and trail_percent= (a percentage)"
                )

    def _check_tif(self) -> None:
        tif = self.tif
        kind = self.order_type
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
            if kind not in (OrderType.MARKET, OrderType.LIMIT):
                raise InvalidRequest(
                    "tif='OPG' (the opening auction) works only for market and limit orders"
                )
            if self.outside_rth:
                raise InvalidRequest(
                    "tif='OPG' executes in the opening auction, inside regular hours; drop "
                    "outside_rth=True"
                )
        if kind in (OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE):
            if tif is not TimeInForce.DAY:
                raise InvalidRequest(
                    f"a {kind.value} order works in today's closing auction: it takes "
                    f"tif='DAY' only, got {tif.value!r}"
                )
        if self.outside_rth and kind in _MARKET_LIKE:
            if kind is OrderType.MARKET:
                raise InvalidRequest(
                    "market orders do not execute outside regular trading hours (TWS ignores "
                    "outside_rth for them); use a LimitOrder with outside_rth=True"
                )
            raise InvalidRequest(
                f"a {kind.value} order executes in the closing auction, inside regular hours; "
                "drop outside_rth=True"
            )

    def _check_algo_and_conditions(self) -> None:
        kind = self.order_type
        if self.algo is not None:
            if not isinstance(self.algo, Algo):
                raise InvalidRequest(
                    f"algo must be an ibflow Algo (ibflow.Adaptive(), ibflow.Algo(...)), got "
                    f"{self.algo!r}"
                )
            if kind not in _ALGO_TYPES:
                raise InvalidRequest(
                    f"IB's algos work market and limit orders, not {kind.value}; use "
                    f"MarketOrder or LimitOrder with algo={self.algo.strategy!r}"
                )
            if self.tif not in (TimeInForce.DAY, TimeInForce.GTC):
                raise InvalidRequest(
                    f"an algo order takes tif='DAY' or 'GTC', got {self.tif.value!r}"
                )
        raw = self.conditions
        if isinstance(raw, CONDITION_TYPES) or not isinstance(raw, Iterable):
            raise InvalidRequest(
                "conditions must be a list of conditions (PriceCondition, TimeCondition…), "
                f"got {raw!r}"
            )
        conditions = tuple(raw)
        for cond in conditions:
            if not isinstance(cond, CONDITION_TYPES):
                raise InvalidRequest(
                    "conditions holds PriceCondition, TimeCondition, MarginCondition, "
                    f"ExecutionCondition, VolumeCondition or PercentChangeCondition, got {cond!r}"
                )
        if not conditions and (self.conditions_cancel_order or self.conditions_ignore_rth):
            raise InvalidRequest(
                "conditions_cancel_order and conditions_ignore_rth apply to conditions; add "
                "conditions=[...] or drop them"
            )
        object.__setattr__(self, "conditions", conditions)

    @property
    def price(self) -> float | None:
        """The price that bounds the order: the limit, else the stop, touch or initial trailing
        stop price, else ``None`` (market, or a price TWS derives from the market)."""
        for name in ("limit_price", "stop_price", "trigger_price", "trail_stop_price"):
            value: float | None = getattr(self, name)
            if value is not None:
                return value
        return None


def _built(
    order_type: OrderType,
    side: Side | str,
    quantity: float,
    tif: TimeInForce | str,
    good_till: datetime | None,
    outside_rth: bool,
    account: str | None,
    order_ref: str | None,
    **terms: Any,
) -> Order:
    """What the builders share: the enums parsed, everything else left to ``Order``."""
    return Order(
        side=as_enum(Side, side, "side"),
        quantity=quantity,
        order_type=order_type,
        tif=as_enum(TimeInForce, tif, "tif"),
        good_till=good_till,
        outside_rth=outside_rth,
        account=account,
        order_ref=order_ref,
        **terms,
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
    algo: Algo | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """Buy or sell at the market: ``MarketOrder("BUY", 100)``.

    ``algo=`` works the order by an IB algo (``algo=ibflow.Adaptive("Urgent")``);
    ``conditions=`` holds it until they are true (see the order-types guide).

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.MARKET, side, quantity, tif, good_till, outside_rth, account, order_ref,
        algo=algo,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


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
    algo: Algo | None = None,
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """Buy at or below / sell at or above a price: ``LimitOrder("BUY", 100, 185.50)``.

    ``algo=`` and ``conditions=`` as for :func:`MarketOrder`.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.LIMIT, side, quantity, tif, good_till, outside_rth, account, order_ref,
        limit_price=limit_price, algo=algo,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
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
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A market order that triggers when the price reaches ``stop_price``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.STOP, side, quantity, tif, good_till, outside_rth, account, order_ref,
        stop_price=stop_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
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
    conditions: Iterable[Condition] = (),
    conditions_cancel_order: bool = False,
    conditions_ignore_rth: bool = False,
) -> Order:
    """A limit order that becomes active when the price reaches ``stop_price``.

    Raises:
        InvalidRequest: an argument is invalid.
    """
    return _built(
        OrderType.STOP_LIMIT, side, quantity, tif, good_till, outside_rth, account, order_ref,
        limit_price=limit_price, stop_price=stop_price,
        conditions=conditions, conditions_cancel_order=conditions_cancel_order,
        conditions_ignore_rth=conditions_ignore_rth,
    )  # fmt: skip


_STOP_LOSS_TYPES = (
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
    OrderType.TRAILING_STOP_LIMIT,
)


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
        if sl.order_type not in _STOP_LOSS_TYPES:
            raise InvalidRequest(
                "the stop-loss of a bracket must be a stop, stop-limit or trailing stop order"
            )
        if abs(tp.quantity - parent.quantity) > EPS or abs(sl.quantity - parent.quantity) > EPS:
            raise InvalidRequest("all three orders of a bracket need the same quantity")
        entry = parent.price
        take = tp.limit_price
        # A trailing stop-loss without an initial stop follows the market: nothing to order.
        stop = sl.stop_price if sl.stop_price is not None else sl.trail_stop_price
        assert take is not None
        if entry is None:
            return
        if parent.side is Side.BUY and not (take > entry and (stop is None or entry > stop)):
            raise InvalidRequest(
                f"a BUY bracket needs take_profit > entry > stop_loss, got {fmt(take)} / "
                f"{fmt(entry)} / {fmt(stop) if stop is not None else 'trailing'}"
            )
        if parent.side is Side.SELL and not (take < entry and (stop is None or entry < stop)):
            raise InvalidRequest(
                f"a SELL bracket needs take_profit < entry < stop_loss, got {fmt(take)} / "
                f"{fmt(entry)} / {fmt(stop) if stop is not None else 'trailing'}"
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
        group = as_ascii(self.group, "group", 64)
        if group is None:
            raise InvalidRequest("an OCA group needs a non-empty group name")
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "type", as_enum(OcaType, self.type, "type"))


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
    return OcaGroup(orders=tuple(orders), group=name, type=as_enum(OcaType, type, "type"))


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
    trigger_price: float | None = None
    """The touch price of a market- or limit-if-touched order."""
    trail_amount: float | None = None
    trail_percent: float | None = None
    trail_stop_price: float | None = None
    """A trailing stop's current stop price, as TWS last reported it."""
    algo_strategy: str | None = None
    """The IB algo working the order (``"Adaptive"``, ``"Vwap"``…), if any."""


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
