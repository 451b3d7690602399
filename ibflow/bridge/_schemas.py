"""The bridge's JSON shapes: pydantic models that mirror ibflow's frozen records.

HTTP clients in any language need a schema they can read (FastAPI publishes these at
``/openapi.json``) and values they can parse without Python: datetimes as ISO-8601 with their
offset, enums as their values, ``null`` where ibflow says ``None``. Each output model here
mirrors one ibflow dataclass field for field (a test keeps them in step) and is filled straight
from the ibflow object's attributes, so the bridge never re-derives a value ibflow computed; a
few read-only properties people always want (``display_name``, ``midpoint``) ride along.

The request models (``ContractSpec``, ``OrderSpec``, ``PlaceOrder``, ``ModifyOrder``) only
carry the user's input to ibflow's own builders and validators, which decide what is valid:
their messages become the bridge's 422 answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
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
    "AlgoSpec",
    "Bar",
    "BarMessage",
    "Commission",
    "Contract",
    "ContractDetails",
    "ContractQuery",
    "ContractSpec",
    "ErrorBody",
    "ExecutionCondition",
    "Fill",
    "GapMessage",
    "Health",
    "MarginCondition",
    "ModifyOrder",
    "Order",
    "OrderEvent",
    "OrderEventMessage",
    "OrderPreview",
    "OrderSnapshot",
    "OrderSpec",
    "PercentChangeCondition",
    "PlaceOrder",
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


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _right(value: object) -> object:
    # IB spells rights "C"/"P"; people also write "call"/"put".
    text = _upper(value)
    return {"CALL": "C", "PUT": "P"}.get(text, text) if isinstance(text, str) else text


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
    client_id: int
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


# -- input ----------------------------------------------------------------------------------------

_SecTypeIn = Annotated[SecType, BeforeValidator(_upper)]


class ContractSpec(BaseModel):
    """What to trade or look up. A stock needs only ``symbol``; the rest narrows it down."""

    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(default=None, description='"AAPL"; a forex pair as "EUR.USD".')
    sec_type: _SecTypeIn = SecType.STOCK
    exchange: str | None = Field(default=None, description="Default SMART (IDEALPRO for CASH).")
    currency: str | None = Field(default=None, description="Default USD.")
    con_id: int | None = Field(default=None, description="IB's id; enough on its own.")
    primary_exchange: str | None = None
    local_symbol: str | None = None
    trading_class: str | None = None
    expiry: str | None = Field(default=None, description="yyyymmdd or yyyymm.")
    strike: float | None = None
    right: Annotated[Right | None, BeforeValidator(_right)] = None
    multiplier: float | None = None

    def to_contract(self) -> ibflow.Contract:
        """The ibflow contract, through ibflow's builders wherever the description is complete.

        A partial description (an option without its strike, say) becomes a bare
        ``ibflow.Contract``: enough to list the matches, and ``qualify`` names them when it is
        not unique.

        Raises:
            InvalidRequest: ibflow refuses the description (the message says what to fix).
        """
        kind, symbol = self.sec_type, self.symbol
        if symbol and kind is SecType.STOCK:
            return ibflow.Stock(
                symbol,
                self.exchange or "SMART",
                self.currency or "USD",
                primary_exchange=self.primary_exchange,
                con_id=self.con_id,
            )
        if symbol and kind is SecType.FOREX:
            pair = symbol if len(symbol.replace(".", "").replace("/", "")) == 6 else None
            return ibflow.Forex(
                pair or f"{symbol}{self.currency or 'USD'}",
                self.exchange or "IDEALPRO",
                con_id=self.con_id,
            )
        if symbol and kind is SecType.INDEX:
            # Without an exchange the builder refuses, saying which one to give.
            exchange = self.exchange or ""
            return ibflow.Index(symbol, exchange, self.currency or "USD", con_id=self.con_id)
        if symbol and kind is SecType.FUTURE and (self.expiry or not self.exchange):
            return ibflow.Future(
                symbol,
                self.expiry or "",
                self.exchange or "",
                self.currency or "USD",
                multiplier=self.multiplier,
                local_symbol=self.local_symbol,
                trading_class=self.trading_class,
                con_id=self.con_id,
            )
        if symbol and kind is SecType.OPTION and self.expiry and self.strike and self.right:
            return ibflow.Option(
                symbol,
                self.expiry,
                self.strike,
                self.right,
                self.exchange or "SMART",
                self.currency or "USD",
                multiplier=self.multiplier if self.multiplier is not None else 100.0,
                trading_class=self.trading_class,
                con_id=self.con_id,
            )
        return ibflow.Contract(
            sec_type=kind,
            symbol=(symbol or "").strip().upper(),
            exchange=(self.exchange or ("IDEALPRO" if kind is SecType.FOREX else "SMART")).upper(),
            currency=(self.currency or "USD").upper(),
            con_id=self.con_id,
            primary_exchange=self.primary_exchange,
            local_symbol=self.local_symbol,
            trading_class=self.trading_class,
            expiry=self.expiry,
            strike=self.strike,
            right=self.right,
            multiplier=self.multiplier,
        )


class ContractQuery(ContractSpec):
    """``ContractSpec`` read from the query string, beside the endpoint's other parameters."""

    model_config = ConfigDict(extra="ignore")


class AlgoSpec(BaseModel):
    """An IB algo: ``{"strategy": "Adaptive", "params": {"adaptivePriority": "Urgent"}}``."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    params: dict[str, bool | int | float | str] = Field(default_factory=dict)


class OrderSpec(BaseModel):
    """An order's terms. ``side`` may be sent as ``action`` and ``order_type`` as ``type``."""

    model_config = ConfigDict(extra="forbid")

    side: Annotated[Side, BeforeValidator(_upper)] = Field(
        validation_alias=AliasChoices("side", "action")
    )
    quantity: float
    order_type: Annotated[OrderType, BeforeValidator(_upper)] = Field(
        validation_alias=AliasChoices("order_type", "type")
    )
    limit_price: float | None = Field(default=None, description="LMT and STP LMT.")
    stop_price: float | None = Field(default=None, description="STP and STP LMT.")
    tif: Annotated[TimeInForce, BeforeValidator(_upper)] = TimeInForce.DAY
    good_till: datetime | None = Field(default=None, description="GTD only; with an offset.")
    outside_rth: bool = False
    account: str | None = None
    order_ref: str | None = Field(default=None, description="Your own tag, kept by TWS.")
    trigger_price: float | None = Field(default=None, description="MIT and LIT: the touch price.")
    trail_amount: float | None = Field(default=None, description="TRAIL, TRAIL LIMIT: a distance.")
    trail_percent: float | None = Field(default=None, description="TRAIL, TRAIL LIMIT: percent.")
    trail_stop_price: float | None = Field(default=None, description="A trail's first stop.")
    limit_offset: float | None = Field(default=None, description="TRAIL LIMIT: limit vs stop.")
    offset: float | None = Field(default=None, description="REL and PEG MID: the offset.")
    algo: AlgoSpec | None = Field(default=None, description="An IB algo, on MKT and LMT.")

    def to_order(self) -> ibflow.Order:
        """ibflow's validated order spec.

        Raises:
            InvalidRequest: the terms do not fit together (a limit price on a market order, a
                GTD order without ``good_till``…); the message says what to change.
        """
        # ibflow.Order is what every builder returns; building it directly lets ibflow name
        # a price the order type does not take instead of silently dropping it.
        return ibflow.Order(
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            tif=self.tif,
            good_till=self.good_till,
            outside_rth=self.outside_rth,
            account=self.account,
            order_ref=self.order_ref,
            trigger_price=self.trigger_price,
            trail_amount=self.trail_amount,
            trail_percent=self.trail_percent,
            trail_stop_price=self.trail_stop_price,
            limit_offset=self.limit_offset,
            offset=self.offset,
            algo=ibflow.Algo(self.algo.strategy, self.algo.params) if self.algo else None,
        )


class PlaceOrder(BaseModel):
    """The body of ``POST /orders`` and ``POST /orders/what-if``."""

    model_config = ConfigDict(extra="forbid")

    contract: ContractSpec
    order: OrderSpec


class ModifyOrder(BaseModel):
    """The body of ``PUT /orders/{order_id}``: give at least one field."""

    model_config = ConfigDict(extra="forbid")

    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
