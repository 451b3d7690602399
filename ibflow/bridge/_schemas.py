"""The bridge's JSON shapes: pydantic models that mirror ibflow's frozen records.

HTTP clients in any language need a schema they can read (FastAPI publishes these at
``/openapi.json``) and values they can parse without Python: datetimes as ISO-8601 with their
offset, enums as their values, ``null`` where ibflow says ``None``. Each output model here
mirrors one ibflow dataclass field for field (a test keeps them in step) and is filled straight
from the ibflow object's attributes, so the bridge never re-derives a value ibflow computed; a
few read-only properties people always want (``display_name``, ``midpoint``) ride along.

The request models live in ``_requests``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

import ibflow
from ibflow import (
    ConnectionState,
    MarketDataType,
    OrderEventKind,
    OrderStatus,
    OrderType,
    Right,
    SecType,
    Side,
    TimeInForce,
)

__all__ = [
    "AccountSummary",
    "AccountValue",
    "Algo",
    "Bar",
    "BarMessage",
    "Commission",
    "Contract",
    "ContractDetails",
    "ErrorBody",
    "ExecutionCondition",
    "Fill",
    "GapMessage",
    "Health",
    "MarginCondition",
    "OpenOrder",
    "Order",
    "OrderEvent",
    "OrderEventMessage",
    "OrderPreview",
    "OrderSnapshot",
    "PercentChangeCondition",
    "PnL",
    "PortfolioItem",
    "Position",
    "PriceCondition",
    "Quote",
    "QuoteMessage",
    "SessionStatistics",
    "TimeCondition",
    "Trade",
    "VolumeCondition",
]


class _Tagged:
    """An ibflow record seen with a few more attributes, to fill a tagged message from it."""

    def __init__(self, record: object, **extra: object) -> None:
        self._record = record
        self._extra = extra

    def __getattr__(self, name: str) -> object:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._record, name)


class _Mirror(BaseModel):
    """Read from an ibflow record's attributes (dataclass fields and properties alike)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


# -- output: records ------------------------------------------------------------------------------


class Contract(_Mirror):
    sec_type: SecType
    symbol: str
    exchange: str
    currency: str
    con_id: int | None
    primary_exchange: str | None
    local_symbol: str | None
    trading_class: str | None
    expiry: str | None
    strike: float | None
    right: Right | None
    multiplier: float | None
    display_name: str = Field(description='What a person calls it: "AAPL", "EUR.USD", "ESH7".')


class Position(_Mirror):
    account: str
    contract: Contract
    quantity: float = Field(description="Signed: negative is short.")
    avg_cost: float | None


class AccountValue(_Mirror):
    account: str
    tag: str
    value: str = Field(description="IB's text, unchanged (numbers, currencies and words alike).")
    currency: str | None
    model_code: str | None
    number: float | None = Field(description="`value` as a number, or null when it is not one.")


class AccountSummary(_Mirror):
    account: str
    net_liquidation: float | None
    total_cash: float | None
    buying_power: float | None
    available_funds: float | None
    excess_liquidity: float | None
    init_margin: float | None
    maint_margin: float | None
    gross_position_value: float | None
    equity_with_loan: float | None
    currency: str | None
    tags: dict[str, str] = Field(description="Every tag IB sent, as its text.")


class PortfolioItem(_Mirror):
    account: str
    contract: Contract
    quantity: float
    market_price: float | None
    market_value: float | None
    avg_cost: float | None
    unrealized_pnl: float | None
    realized_pnl: float | None


class PnL(_Mirror):
    account: str
    daily: float | None
    unrealized: float | None
    realized: float | None
    model_code: str | None


class ContractDetails(_Mirror):
    contract: Contract
    long_name: str | None
    market_name: str | None
    min_tick: float | None
    price_magnifier: int | None
    valid_exchanges: list[str]
    order_types: list[str]
    time_zone: str | None
    trading_hours: str | None
    liquid_hours: str | None
    industry: str | None
    category: str | None
    subcategory: str | None
    contract_month: str | None
    under_con_id: int | None
    under_symbol: str | None
    under_sec_type: str | None
    market_rule_ids: list[int]
    min_size: float | None
    size_increment: float | None
    stock_type: str | None
    last_trade_time: str | None
    real_expiration_date: str | None


class Greeks(_Mirror):
    implied_vol: float | None
    delta: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    option_price: float | None
    underlying_price: float | None


class Quote(_Mirror):
    contract: Contract
    time: datetime
    bid: float | None
    ask: float | None
    last: float | None
    bid_size: float | None
    ask_size: float | None
    last_size: float | None
    volume: float | None
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    market_data_type: MarketDataType
    halted: bool
    greeks: Greeks | None = Field(default=None, description="An option's model greeks.")
    bid_greeks: Greeks | None = None
    ask_greeks: Greeks | None = None
    last_greeks: Greeks | None = None
    midpoint: float | None


class Bar(_Mirror):
    time: datetime = Field(description="The bar's start, in the instrument's time zone.")
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    wap: float | None
    count: int | None


class Commission(_Mirror):
    exec_id: str
    amount: float
    currency: str | None
    realized_pnl: float | None


class Fill(_Mirror):
    exec_id: str
    order_id: int | None
    perm_id: int | None
    client_id: int | None
    contract: Contract
    side: Side
    quantity: float
    price: float
    time: datetime
    account: str | None
    exchange: str | None
    cumulative_quantity: float | None
    avg_price: float | None
    order_ref: str | None
    commission: Commission | None


class Algo(_Mirror):
    strategy: str
    params: tuple[tuple[str, str], ...]


class PriceCondition(_Mirror):
    kind: Literal["price"]
    contract: Contract
    price: float
    is_more: bool
    trigger_method: int
    conjunction: str


class TimeCondition(_Mirror):
    kind: Literal["time"]
    time: datetime
    is_more: bool
    conjunction: str


class MarginCondition(_Mirror):
    kind: Literal["margin"]
    percent: int
    is_more: bool
    conjunction: str


class ExecutionCondition(_Mirror):
    kind: Literal["execution"]
    contract: Contract
    conjunction: str


class VolumeCondition(_Mirror):
    kind: Literal["volume"]
    contract: Contract
    volume: int
    is_more: bool
    conjunction: str


class PercentChangeCondition(_Mirror):
    kind: Literal["percent_change"]
    contract: Contract
    change_percent: float
    is_more: bool
    conjunction: str


Condition = Annotated[
    PriceCondition
    | TimeCondition
    | MarginCondition
    | ExecutionCondition
    | VolumeCondition
    | PercentChangeCondition,
    Field(discriminator="kind"),
]

# The terms only some order types use: left out of the JSON where the order does not use them.
_TYPE_TERMS = (
    "trigger_price",
    "trail_amount",
    "trail_percent",
    "trail_stop_price",
    "limit_offset",
    "offset",
    "algo",
    "conditions",
    "conditions_cancel_order",
    "conditions_ignore_rth",
)


class Order(_Mirror):
    """An order's terms (ibflow's ``Order``); type-specific terms appear where they are set."""

    side: Side
    quantity: float
    order_type: OrderType
    limit_price: float | None
    stop_price: float | None
    tif: TimeInForce
    good_till: datetime | None
    outside_rth: bool
    account: str | None
    order_ref: str | None
    trigger_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None
    trail_stop_price: float | None = None
    limit_offset: float | None = None
    offset: float | None = None
    algo: Algo | None = None
    conditions: tuple[Condition, ...] = ()
    conditions_cancel_order: bool = False
    conditions_ignore_rth: bool = False

    @model_serializer(mode="wrap")
    def _without_unused_terms(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _TYPE_TERMS:
            value = data.get(name)
            if value is None or value is False or (isinstance(value, tuple | list) and not value):
                data.pop(name, None)
        return data


class OrderSnapshot(_Mirror):
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
    avg_fill_price: float | None
    completed_time: datetime | None
    completed_status: str | None
    trigger_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None
    trail_stop_price: float | None = None
    algo_strategy: str | None = None


class OpenOrder(OrderSnapshot):
    """``GET /orders``: an open order, and whether this bridge's session may change it."""

    owned: bool = Field(
        description="The order belongs to this session's client id: PUT and DELETE work on it."
    )
    adopted: bool = Field(
        description="This session did not place it: it found it open at TWS (an earlier run, "
        "another client id, or TWS itself)."
    )


class OrderPreview(_Mirror):
    init_margin_before: float | None
    maint_margin_before: float | None
    equity_with_loan_before: float | None
    init_margin_change: float | None
    maint_margin_change: float | None
    equity_with_loan_change: float | None
    init_margin_after: float | None
    maint_margin_after: float | None
    equity_with_loan_after: float | None
    commission: float | None
    min_commission: float | None
    max_commission: float | None
    commission_currency: str | None
    warning: str | None


class OrderEvent(_Mirror):
    kind: OrderEventKind
    order_id: int
    perm_id: int | None
    status: OrderStatus
    filled: float
    remaining: float
    at: datetime
    fill: Fill | None
    corrects: Fill | None
    code: int | None
    message: str | None


class SessionStatistics(_Mirror):
    state: ConnectionState
    uptime: float
    connects: int
    reconnects: int
    reconnect_attempts: int
    time_in_state: dict[ConnectionState, float]
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    messages_in_per_second: float
    messages_out_per_second: float
    last_heartbeat_rtt: float | None
    heartbeats: int
    heartbeat_failures: int
    active_subscriptions: int
    throttled_requests: int
    throttle_events: int
    notices: int
    in_flight_requests: int
    rejected_executions: int
    rejected_values: int


class ErrorBody(BaseModel):
    """Every error answer: the ibflow exception's class name, IB's code, and what to do."""

    error: str = Field(description='The exception class, e.g. "ContractNotFound".')
    code: int | None = Field(description="IB's error code, when IB sent one.")
    message: str
    candidates: list[Contract] | None = Field(
        default=None, description="AmbiguousContract only: every matching contract."
    )
    retry_after: float | None = Field(
        default=None, description="PacingViolation only: seconds to wait, when known."
    )

    @classmethod
    def of(cls, exc: ibflow.IBFlowError) -> ErrorBody:
        code = exc.code if isinstance(exc, ibflow.RequestError) else None
        return cls(
            error=type(exc).__name__,
            # ibflow uses -1 for "no IB code" (e.g. an order TWS reported Inactive).
            code=code if code is not None and code >= 0 else None,
            message=str(exc),
            candidates=(
                [Contract.model_validate(c) for c in exc.candidates]
                if isinstance(exc, ibflow.AmbiguousContract)
                else None
            ),
            retry_after=exc.retry_after if isinstance(exc, ibflow.PacingViolation) else None,
        )


class Trade(_Mirror):
    """An order this bridge's session placed, as it stands now (ibflow's ``Trade``)."""

    order_id: int
    perm_id: int | None
    client_id: int = Field(description="The API client id the order belongs to.")
    owned: bool = Field(description="This session's client id may modify and cancel it.")
    adopted: bool = Field(description="Found open at TWS instead of placed by this session.")
    parent_id: int | None
    contract: Contract
    order: Order = Field(description="The order's current terms, as TWS last reported them.")
    status: OrderStatus
    is_done: bool
    filled: float
    remaining: float
    avg_fill_price: float | None
    commission: float | None
    fills: list[Fill]
    error: ErrorBody | None = Field(
        description="The last refusal TWS addressed to the order itself, if any."
    )

    @field_validator("error", mode="before")
    @classmethod
    def _error(cls, value: object) -> object:
        return ErrorBody.of(value) if isinstance(value, ibflow.IBFlowError) else value


class Health(BaseModel):
    """``GET /api/v1/health``: the TWS Bridge Server's fields first, then ibflow's."""

    status: Literal["ok", "degraded"] = Field(description='"ok" when READY, else "degraded".')
    connected: bool = Field(description="Connected to TWS and ready.")
    tws_host: str | None = Field(description="null for a session handed to create_app().")
    tws_port: int | None
    uptime_seconds: float = Field(description="Seconds since the bridge started.")
    version: str = Field(description="ibflow's version.")
    state: ConnectionState
    ready: bool = Field(description="True when requests can be served now.")
    client_id: int | None
    server_version: int | None
    accounts: list[str]
    is_paper: bool | None
    statistics: SessionStatistics | None


# -- output: websocket messages ------------------------------------------------------------------


class QuoteMessage(Quote):
    type: Literal["quote"] = "quote"
    symbol: str = Field(description="The symbol as the client asked for it.")

    @classmethod
    def of(cls, quote: ibflow.Quote, symbol: str) -> QuoteMessage:
        return cls.model_validate(_Tagged(quote, symbol=symbol))


class BarMessage(Bar):
    type: Literal["bar"] = "bar"
    symbol: str
    forming: bool = Field(description="True for the bar still in progress (forming=true).")

    @classmethod
    def of(cls, bar: ibflow.Bar, symbol: str) -> BarMessage:
        return cls.model_validate(
            _Tagged(bar, symbol=symbol, forming=isinstance(bar, ibflow.FormingBar))
        )


class OrderEventMessage(OrderEvent):
    type: Literal["order"] = "order"


class GapMessage(BaseModel):
    """Data may be missing between ``start`` and ``end``: the link to TWS was down."""

    type: Literal["gap"] = "gap"
    symbol: str
    start: datetime
    end: datetime
    reason: str

    @classmethod
    def of(cls, gap: ibflow.Gap, symbol: str) -> GapMessage:
        return cls(symbol=symbol, start=gap.start, end=gap.end, reason=gap.reason)
