"""The placeOrder message as TWS reads it at server version 178 (and the gates down to 157).

placeOrder is the longest request of the API, with conditional blocks (combo legs, delta
neutral, scale, algo, conditions, pegged tails); the parser walks every one of them, so the
fields after each land where they belong whatever the order carries. The layout tests feed it
ib_async's and ibapi's own encodings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._codec import SERVER_VERSION, Fields, ProtocolError
from ._model import ContractQuery

__all__ = ["ComboLegSpec", "PlaceOrderRequest", "parse_place_order"]

# Order types whose placeOrder/openOrder layouts carry extra blocks.
_PEG_BENCH = frozenset({"PEG BENCH", "PEGBENCH"})
_PEG_BEST = frozenset({"PEG BEST", "PEGBEST"})
_PEG_MID = frozenset({"PEG MID", "PEGMID"})

# Fields after the type id of each order condition type (both clients agree):
# 1 price: conjunction, isMore, price, conId, exchange, triggerMethod; 3 time and 4 margin:
# conjunction, isMore, value; 5 execution: conjunction, secType, exchange, symbol;
# 6 volume and 7 percent change: conjunction, isMore, value, conId, exchange.
_CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


@dataclass(slots=True, frozen=True)
class ComboLegSpec:
    """One leg of a BAG contract as placeOrder sends it."""

    con_id: int
    ratio: int
    action: str
    exchange: str
    open_close: int = 0
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1


@dataclass(slots=True)
class PlaceOrderRequest:
    """Everything a placeOrder message carries that the simulator may care about.

    Unset doubles are ``None`` and unset ints ``None`` (or the field's TWS default), whichever of
    the several "unset" spellings the client used.
    """

    order_id: int
    contract: ContractQuery
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    block_order: bool = False
    sweep_to_fill: bool = False
    display_size: int = 0
    trigger_method: int = 0
    outside_rth: bool = False
    hidden: bool = False
    combo_legs: tuple[ComboLegSpec, ...] = ()
    order_combo_leg_prices: tuple[float | None, ...] = ()
    smart_combo_routing_params: tuple[tuple[str, str], ...] = ()
    discretionary_amt: float | None = None
    good_after_time: str = ""
    good_till_date: str = ""
    fa_group: str = ""
    fa_method: str = ""
    fa_percentage: str = ""
    model_code: str = ""
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1
    oca_type: int = 0
    rule80a: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    percent_offset: float | None = None
    volatility: float | None = None
    volatility_type: int | None = None
    delta_neutral_order_type: str = ""
    delta_neutral_aux_price: float | None = None
    continuous_update: bool = False
    reference_price_type: int | None = None
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    scale_price_increment: float | None = None
    hedge_type: str = ""
    hedge_param: str = ""
    opt_out_smart_routing: bool = False
    not_held: bool = False
    delta_neutral_contract: tuple[int, float | None, float | None] | None = None
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    algo_id: str = ""
    what_if: bool = False
    order_misc_options: str = ""
    solicited: bool = False
    conditions: tuple[tuple[int, tuple[str, ...]], ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False
    adjusted_order_type: str = ""
    trigger_price: float | None = None
    lmt_price_offset: float | None = None
    adjusted_stop_price: float | None = None
    adjusted_stop_limit_price: float | None = None
    adjusted_trailing_amount: float | None = None
    adjustable_trailing_unit: int = 0
    ext_operator: str = ""
    soft_dollar_tier: tuple[str, str] = ("", "")
    cash_qty: float | None = None
    mifid2: tuple[str, str, str, str] = ("", "", "", "")
    dont_use_auto_price_for_hedge: bool = False
    is_oms_container: bool = False
    discretionary_up_to_limit_price: bool = False
    use_price_mgmt_algo: bool | None = None
    duration: int | None = None
    post_to_ats: int | None = None
    auto_cancel_parent: bool = False
    advanced_error_override: str = ""
    manual_order_time: str = ""
    min_trade_qty: int | None = None
    min_compete_size: int | None = None
    compete_against_best_offset: float | None = None
    mid_offset_at_whole: float | None = None
    mid_offset_at_half: float | None = None
    sec_id_type: str = ""
    sec_id: str = ""


_UNSET_INT_TEXTS = frozenset({"", "2147483647", "9223372036854775807", "-9223372036854775808"})


def _opt_int(f: Fields) -> int | None:
    raw = f.str().strip()
    if raw in _UNSET_INT_TEXTS:
        return None
    try:
        return int(raw)
    except ValueError:
        value = float(raw)  # ibapi may send a Decimal such as "5.0" where an int is meant
        if not value.is_integer():
            raise ProtocolError(f"expected an integer, got {raw!r}") from None
        return int(value)


def _opt_bool(f: Fields) -> bool | None:
    raw = f.str().strip()
    if raw in _UNSET_INT_TEXTS:
        return None
    return raw not in ("0", "false", "False")


def _pairs(f: Fields, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f.str(), f.str()) for _ in range(count))


def parse_place_order(f: Fields, *, version: int = SERVER_VERSION) -> PlaceOrderRequest:
    """Read a placeOrder message; ``f`` is positioned just after the message id.

    Walks every conditional block of the layout so the later fields are read at the
    right position whatever the order carries. Trailing fields beyond the known layout are left
    unread, so a newer client's extra fields do not break the parse.
    """
    order_id = f.int()
    contract = f.contract()
    sec_id_type = f.str()
    sec_id = f.str()
    action = f.str().upper()
    total_quantity = f.float() or 0.0
    order_type = f.str().upper()
    lmt_price = f.float()
    aux_price = f.float()
    tif = f.str().upper() or "DAY"
    oca_group = f.str()
    account = f.str()
    open_close = f.str()
    origin = f.int()
    order_ref = f.str()
    transmit = f.bool()
    parent_id = f.int()
    block_order = f.bool()
    sweep_to_fill = f.bool()
    display_size = f.int()
    trigger_method = f.int()
    outside_rth = f.bool()
    hidden = f.bool()

    combo_legs: tuple[ComboLegSpec, ...] = ()
    leg_prices: tuple[float | None, ...] = ()
    smart_params: tuple[tuple[str, str], ...] = ()
    if contract.sec_type.upper() == "BAG":
        combo_legs = tuple(
            ComboLegSpec(
                con_id=f.int(),
                ratio=f.int(),
                action=f.str(),
                exchange=f.str(),
                open_close=f.int(),
                short_sale_slot=f.int(),
                designated_location=f.str(),
                exempt_code=f.int(-1),
            )
            for _ in range(f.int())
        )
        leg_prices = tuple(f.float() for _ in range(f.int()))
        smart_params = _pairs(f, f.int())

    f.skip()  # sharesAllocation, always empty
    discretionary_amt = f.float()
    good_after_time = f.str()
    good_till_date = f.str()
    fa_group = f.str()
    fa_method = f.str()
    fa_percentage = f.str()
    if version < 177:
        f.skip()  # faProfile
    model_code = f.str()
    short_sale_slot = f.int()
    designated_location = f.str()
    exempt_code = f.int(-1)
    oca_type = f.int()
    rule80a = f.str()
    f.skip()  # settlingFirm
    all_or_none = f.bool()
    min_qty = _opt_int(f)
    percent_offset = f.float()
    f.skip(3)  # eTradeOnly, firmQuoteOnly, nbboPriceCap: deprecated, always default
    f.skip()  # auctionStrategy
    f.skip(5)  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
    f.skip()  # overridePercentageConstraints
    volatility = f.float()
    volatility_type = _opt_int(f)
    delta_neutral_order_type = f.str()
    delta_neutral_aux_price = f.float()
    if delta_neutral_order_type:
        # conId, settlingFirm, clearingAccount, clearingIntent, openClose, shortSale,
        # shortSaleSlot, designatedLocation
        f.skip(8)
    continuous_update = f.bool()
    reference_price_type = _opt_int(f)
    trail_stop_price = f.float()
    trailing_percent = f.float()
    f.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    scale_price_increment = f.float()
    if scale_price_increment is not None and 0 < scale_price_increment:
        # adjustValue, adjustInterval, profitOffset, autoReset, initPosition, initFillQty,
        # randomPercent
        f.skip(7)
    f.skip(3)  # scaleTable, activeStartTime, activeStopTime
    hedge_type = f.str()
    hedge_param = f.str() if hedge_type else ""
    opt_out_smart_routing = f.bool()
    f.skip(2)  # clearingAccount, clearingIntent
    not_held = f.bool()
    delta_neutral_contract: tuple[int, float | None, float | None] | None = None
    if f.bool():
        delta_neutral_contract = (f.int(), f.float(), f.float())
    algo_strategy = f.str()
    algo_params: tuple[tuple[str, str], ...] = ()
    if algo_strategy:
        algo_params = _pairs(f, f.int())
    algo_id = f.str()
    what_if = f.bool()
    order_misc_options = f.str()
    solicited = f.bool()
    f.skip(2)  # randomizeSize, randomizePrice
    if order_type in _PEG_BENCH:
        # referenceContractId, isPeggedChangeAmountDecrease, peggedChangeAmount,
        # referenceChangeAmount, referenceExchangeId
        f.skip(5)
    conditions: list[tuple[int, tuple[str, ...]]] = []
    conditions_ignore_rth = conditions_cancel_order = False
    condition_count = f.int()
    if condition_count > 0:
        for _ in range(condition_count):
            cond_type = f.int()
            n = _CONDITION_FIELDS.get(cond_type)
            if n is None:
                raise ProtocolError(f"unknown order condition type {cond_type}")
            conditions.append((cond_type, tuple(f.str() for _ in range(n))))
        conditions_ignore_rth = f.bool()
        conditions_cancel_order = f.bool()
    adjusted_order_type = f.str()
    trigger_price = f.float()
    lmt_price_offset = f.float()
    adjusted_stop_price = f.float()
    adjusted_stop_limit_price = f.float()
    adjusted_trailing_amount = f.float()
    adjustable_trailing_unit = f.int()
    ext_operator = f.str()
    soft_dollar_tier = (f.str(), f.str())
    cash_qty = f.float()
    mifid2 = (f.str(), f.str(), f.str(), f.str())
    dont_use_auto_price_for_hedge = f.bool()
    is_oms_container = f.bool()
    discretionary_up_to_limit_price = f.bool()
    use_price_mgmt_algo = _opt_bool(f)

    duration = post_to_ats = None
    auto_cancel_parent = False
    advanced_error_override = manual_order_time = ""
    if version >= 158:
        duration = _opt_int(f)
    if version >= 160:
        post_to_ats = _opt_int(f)
    if version >= 162:
        auto_cancel_parent = f.bool()
    if version >= 166:
        advanced_error_override = f.str()
    if version >= 169:
        manual_order_time = f.str()

    min_trade_qty = min_compete_size = None
    compete_against_best_offset = mid_offset_at_whole = mid_offset_at_half = None
    if version >= 170:
        if contract.exchange.upper() == "IBKRATS":
            min_trade_qty = _opt_int(f)
        send_mid_offsets = order_type in _PEG_MID
        if order_type in _PEG_BEST:
            min_compete_size = _opt_int(f)
            compete_against_best_offset = f.float()
            send_mid_offsets = compete_against_best_offset == math.inf
        if send_mid_offsets:
            mid_offset_at_whole = f.float()
            mid_offset_at_half = f.float()

    return PlaceOrderRequest(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=total_quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        oca_group=oca_group,
        account=account,
        open_close=open_close,
        origin=origin,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        block_order=block_order,
        sweep_to_fill=sweep_to_fill,
        display_size=display_size,
        trigger_method=trigger_method,
        outside_rth=outside_rth,
        hidden=hidden,
        combo_legs=combo_legs,
        order_combo_leg_prices=leg_prices,
        smart_combo_routing_params=smart_params,
        discretionary_amt=discretionary_amt,
        good_after_time=good_after_time,
        good_till_date=good_till_date,
        fa_group=fa_group,
        fa_method=fa_method,
        fa_percentage=fa_percentage,
        model_code=model_code,
        short_sale_slot=short_sale_slot,
        designated_location=designated_location,
        exempt_code=exempt_code,
        oca_type=oca_type,
        rule80a=rule80a,
        all_or_none=all_or_none,
        min_qty=min_qty,
        percent_offset=percent_offset,
        volatility=volatility,
        volatility_type=volatility_type,
        delta_neutral_order_type=delta_neutral_order_type,
        delta_neutral_aux_price=delta_neutral_aux_price,
        continuous_update=continuous_update,
        reference_price_type=reference_price_type,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
        scale_price_increment=scale_price_increment,
        hedge_type=hedge_type,
        hedge_param=hedge_param,
        opt_out_smart_routing=opt_out_smart_routing,
        not_held=not_held,
        delta_neutral_contract=delta_neutral_contract,
        algo_strategy=algo_strategy,
        algo_params=algo_params,
        algo_id=algo_id,
        what_if=what_if,
        order_misc_options=order_misc_options,
        solicited=solicited,
        conditions=tuple(conditions),
        conditions_ignore_rth=conditions_ignore_rth,
        conditions_cancel_order=conditions_cancel_order,
        adjusted_order_type=adjusted_order_type,
        trigger_price=trigger_price,
        lmt_price_offset=lmt_price_offset,
        adjusted_stop_price=adjusted_stop_price,
        adjusted_stop_limit_price=adjusted_stop_limit_price,
        adjusted_trailing_amount=adjusted_trailing_amount,
        adjustable_trailing_unit=adjustable_trailing_unit,
        ext_operator=ext_operator,
        soft_dollar_tier=soft_dollar_tier,
        cash_qty=cash_qty,
        mifid2=mifid2,
        dont_use_auto_price_for_hedge=dont_use_auto_price_for_hedge,
        is_oms_container=is_oms_container,
        discretionary_up_to_limit_price=discretionary_up_to_limit_price,
        use_price_mgmt_algo=use_price_mgmt_algo,
        duration=duration,
        post_to_ats=post_to_ats,
        auto_cancel_parent=auto_cancel_parent,
        advanced_error_override=advanced_error_override,
        manual_order_time=manual_order_time,
        min_trade_qty=min_trade_qty,
        min_compete_size=min_compete_size,
        compete_against_best_offset=compete_against_best_offset,
        mid_offset_at_whole=mid_offset_at_whole,
        mid_offset_at_half=mid_offset_at_half,
        sec_id_type=sec_id_type,
        sec_id=sec_id,
    )
