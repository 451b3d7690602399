"""The bridge's request bodies: pydantic models that carry the user's input to ibflow.

They check only the JSON's shape (types, unknown fields, enum spellings); ibflow's own builders
and validators decide what is valid, and their messages become the bridge's 422 answers. Order
conditions watch other contracts: those are described like any contract here and qualified by
the route (:func:`conditions_of`) before the order is built, because IB matches them by
contract id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

import ibflow
from ibflow import OrderType, Right, SecType, Side, TimeInForce

__all__ = [
    "AlgoSpec",
    "ConditionSpec",
    "ContractQuery",
    "ContractSpec",
    "ExecutionConditionSpec",
    "MarginConditionSpec",
    "ModifyOrder",
    "OrderSpec",
    "PercentChangeConditionSpec",
    "PlaceOrder",
    "PriceConditionSpec",
    "TimeConditionSpec",
    "VolumeConditionSpec",
    "conditions_of",
]


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _right(value: object) -> object:
    # IB spells rights "C"/"P"; people also write "call"/"put".
    text = _upper(value)
    return {"CALL": "C", "PUT": "P"}.get(text, text) if isinstance(text, str) else text


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


# -- order conditions -----------------------------------------------------------------------------


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


_Conjunction = Annotated[Literal["and", "or"], BeforeValidator(_lower)]


class _ConditionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conjunction: _Conjunction = Field(
        default="and", description='How it joins the next condition: "and" or "or".'
    )


class _Compared(_ConditionSpec):
    is_more: bool = Field(default=True, description="True: at or above; false: at or below.")


class PriceConditionSpec(_Compared):
    """The contract's price crosses ``price``."""

    type: Literal["price"]
    contract: ContractSpec
    price: float
    trigger_method: int = Field(
        default=0,
        description="IB's code: 0 default, 1 double bid/ask, 2 last, 3 double last, "
        "4 bid/ask, 7 last or bid/ask, 8 midpoint.",
    )


class TimeConditionSpec(_Compared):
    """The time passes ``time`` (ISO-8601 with an offset)."""

    type: Literal["time"]
    time: datetime


class MarginConditionSpec(_Compared):
    """The account's margin cushion crosses ``percent`` (1 to 99)."""

    type: Literal["margin"]
    percent: int


class ExecutionConditionSpec(_ConditionSpec):
    """The account gets a fill in ``contract``."""

    type: Literal["execution"]
    contract: ContractSpec


class VolumeConditionSpec(_Compared):
    """The contract's volume today crosses ``volume``."""

    type: Literal["volume"]
    contract: ContractSpec
    volume: int


class PercentChangeConditionSpec(_Compared):
    """The contract moved ``change_percent`` percent since the last close (2.5 is +2.5 %)."""

    type: Literal["percent_change"]
    contract: ContractSpec
    change_percent: float


ConditionSpec = Annotated[
    PriceConditionSpec
    | TimeConditionSpec
    | MarginConditionSpec
    | ExecutionConditionSpec
    | VolumeConditionSpec
    | PercentChangeConditionSpec,
    Field(discriminator="type"),
]


async def conditions_of(
    session: ibflow.Session, specs: list[ConditionSpec]
) -> tuple[ibflow.Condition, ...]:
    """ibflow's conditions, each watched contract qualified first (IB matches by contract id).

    Raises:
        InvalidRequest: ibflow refuses a condition or a contract description.
        ContractNotFound, AmbiguousContract: a watched contract is unknown or not unique.
    """
    built: list[ibflow.Condition] = []
    for spec in specs:
        built.append(await _condition(session, spec))
    return tuple(built)


async def _condition(session: ibflow.Session, spec: ConditionSpec) -> ibflow.Condition:
    joined = spec.conjunction
    if isinstance(spec, TimeConditionSpec):
        return ibflow.TimeCondition(time=spec.time, is_more=spec.is_more, conjunction=joined)
    if isinstance(spec, MarginConditionSpec):
        return ibflow.MarginCondition(
            percent=spec.percent, is_more=spec.is_more, conjunction=joined
        )
    [contract] = await session.qualify(spec.contract.to_contract())
    if isinstance(spec, PriceConditionSpec):
        return ibflow.PriceCondition(
            contract=contract,
            price=spec.price,
            is_more=spec.is_more,
            trigger_method=spec.trigger_method,
            conjunction=joined,
        )
    if isinstance(spec, ExecutionConditionSpec):
        return ibflow.ExecutionCondition(contract=contract, conjunction=joined)
    if isinstance(spec, VolumeConditionSpec):
        return ibflow.VolumeCondition(
            contract=contract, volume=spec.volume, is_more=spec.is_more, conjunction=joined
        )
    return ibflow.PercentChangeCondition(
        contract=contract,
        change_percent=spec.change_percent,
        is_more=spec.is_more,
        conjunction=joined,
    )


# -- orders ---------------------------------------------------------------------------------------


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
    conditions: list[ConditionSpec] = Field(
        default_factory=list,
        description='Hold the order until these are true: each {"type": "price", ...}.',
    )
    conditions_cancel_order: bool = Field(
        default=False, description="Cancel the order, instead of submitting it, once true."
    )
    conditions_ignore_rth: bool = Field(
        default=False, description="Let the conditions become true outside regular hours."
    )

    def to_order(self, conditions: tuple[ibflow.Condition, ...] = ()) -> ibflow.Order:
        """ibflow's validated order spec, with ``conditions`` built by :func:`conditions_of`.

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
            conditions=conditions,
            conditions_cancel_order=self.conditions_cancel_order,
            conditions_ignore_rth=self.conditions_ignore_rth,
        )


class PlaceOrder(BaseModel):
    """The body of ``POST /orders`` and ``POST /orders/what-if``."""

    model_config = ConfigDict(extra="forbid")

    contract: ContractSpec
    order: OrderSpec


class ModifyOrder(BaseModel):
    """The body of ``PUT /orders/{order_id}``: the terms to change (at least one).

    The names are ``Trade.modify()``'s; each order type takes those its builder takes, and
    ibflow's answer names the ones it does not.
    """

    model_config = ConfigDict(extra="forbid")

    quantity: float | None = Field(default=None, description="The new total quantity.")
    limit_price: float | None = Field(default=None, description="The new limit.")
    stop_price: float | None = Field(default=None, description="STP and STP LMT: the new stop.")
    trigger_price: float | None = Field(default=None, description="MIT and LIT: the touch price.")
    trail_amount: float | None = Field(default=None, description="A trail's new distance.")
    trail_percent: float | None = Field(default=None, description="A trail's new percent.")
    trail_stop_price: float | None = Field(default=None, description="A trail's new stop.")
    limit_offset: float | None = Field(default=None, description="TRAIL LIMIT: limit vs stop.")
    offset: float | None = Field(default=None, description="REL and PEG MID: the new offset.")
    cap: float | None = Field(default=None, description="REL: the new cap.")
    tif: Annotated[TimeInForce | None, BeforeValidator(_upper)] = None
    good_till: datetime | None = Field(default=None, description="GTD: with an offset.")
