"""Field layouts of the big TWS messages at server version 178 (placeOrder: ``_place_order``).

The order, contract and execution messages are long positional lists with conditional blocks;
a single missing or mistyped field makes a client drop the message (ib_async) or disconnect
(ibapi). Keeping every such layout in one pure module lets the tests feed each encoder's output to
the real client decoders, so the wire format is checked against the clients and not against our
own reading of it.

Every encoder returns a list of Python values whose first element is the message id, ready for
:func:`ibflow.sim._codec.encode_fields`. Int fields are always ``int`` and flags always ``bool``
(``format_value`` renders them as TWS does); unset doubles are ``UNSET_DOUBLE`` and unset ints
``UNSET_INTEGER``, the literals TWS writes and both clients read back as "unset".

The layouts follow version 178 and the gates between 157 and 178 that the order messages have
(``faProfile`` below 177, ``pendingPriceRevision`` from 178 …); contractData needs at least 164.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ._codec import SERVER_VERSION, UNSET_DOUBLE, UNSET_INTEGER, Fields
from ._ids import Msg
from ._model import Instrument, SimExecution, SimOrder, SimPosition, WhatIfResult
from ._place_order import ComboLegSpec, PlaceOrderRequest, parse_place_order
from ._rules import market_rule_ids

__all__ = [
    "ComboLegSpec",
    "ExecutionFilter",
    "PlaceOrderRequest",
    "PortfolioItem",
    "account_download_end",
    "account_summary",
    "account_summary_end",
    "account_update_multi",
    "account_update_multi_end",
    "account_update_time",
    "account_value",
    "commission_report",
    "completed_order",
    "completed_orders_end",
    "contract_data",
    "contract_data_end",
    "error_message",
    "exec_details",
    "exec_details_end",
    "format_exec_time",
    "open_order",
    "open_order_end",
    "order_status",
    "parse_cancel_order",
    "parse_place_order",
    "parse_req_executions",
    "pnl",
    "pnl_single",
    "portfolio_value",
    "position",
    "position_end",
    "trading_hours",
]


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass(slots=True, frozen=True)
class ExecutionFilter:
    """The reqExecutions filter; blank fields (and client id 0) match everything."""

    client_id: int = 0
    account: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


def parse_cancel_order(f: Fields, *, version: int = SERVER_VERSION) -> tuple[int, str]:
    """Read cancelOrder (after the id): ``(order_id, manual_order_cancel_time)``."""
    f.skip()  # version field
    order_id = f.int()
    manual_time = f.str() if version >= 169 and f.remaining > 0 else ""
    return order_id, manual_time


def parse_req_executions(f: Fields) -> tuple[int, ExecutionFilter]:
    """Read reqExecutions (after the id): ``(req_id, filter)``."""
    f.skip()  # version field
    req_id = f.int()
    return req_id, ExecutionFilter(
        client_id=f.int(),
        account=f.str(),
        time=f.str(),
        symbol=f.str(),
        sec_type=f.str(),
        exchange=f.str(),
        side=f.str(),
    )


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _price(value: float | None) -> float:
    return UNSET_DOUBLE if value is None else float(value)


def _contract11(inst: Instrument, exchange: str | None = None) -> list[object]:
    """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency,
    localSymbol, tradingClass: the contract block of openOrder, completedOrder, execDetails."""
    return [
        inst.con_id,
        inst.symbol,
        inst.sec_type,
        inst.last_trade_date,
        float(inst.strike),
        inst.right,
        inst.multiplier,
        inst.exchange if exchange is None else exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
    ]


def _listing_exchange(inst: Instrument) -> str:
    """Where a position or fill lives: the primary exchange for SMART-routed contracts."""
    if inst.exchange.upper() == "SMART":
        return inst.primary_exchange
    return inst.exchange


def _algo(order: SimOrder) -> list[object]:
    """algoStrategy, then (when set) its parameter count and tag/value pairs."""
    if not order.algo_strategy:
        return [""]
    return [order.algo_strategy, len(order.algo_params), *(x for p in order.algo_params for x in p)]


def _conditions(order: SimOrder) -> list[object]:
    """conditionsCount, each condition, then (when any) conditionsIgnoreRth and cancelOrder."""
    if not order.conditions:
        return [0]
    fields: list[object] = [len(order.conditions)]
    for cond in order.conditions:
        fields += cond.wire()
    return [*fields, order.conditions_ignore_rth, order.conditions_cancel_order]


def _margin(value: float | None) -> object:
    # The what-if margin figures travel as strings; rounding keeps them readable.
    return "" if value is None else round(value, 2)


# ---------------------------------------------------------------------------------------------
# Orders


def open_order(
    order: SimOrder, what_if: WhatIfResult | None = None, *, version: int = SERVER_VERSION
) -> list[object]:
    """openOrder (id 5): 127 fields for a plain order at 178."""
    wi = what_if
    out: list[object] = [
        int(Msg.OPEN_ORDER),
        order.order_id,
        *_contract11(order.instrument),
        order.action,
        float(order.total_quantity),
        order.order_type,
        _price(order.lmt_price),
        _price(order.aux_price),
        order.tif,
        order.oca_group,
        order.account,
        "",  # openClose
        0,  # origin: customer
        order.order_ref,
        order.client_id,
        order.perm_id,
        order.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (ignored by clients)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if version < 177:
        out.append("")  # faProfile
    out += [
        "",  # modelCode
        order.good_till_date,
        "",  # rule80A
        UNSET_DOUBLE,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        UNSET_DOUBLE,  # startingPrice
        UNSET_DOUBLE,  # stockRefPrice
        UNSET_DOUBLE,  # delta
        UNSET_DOUBLE,  # stockRangeLower
        UNSET_DOUBLE,  # stockRangeUpper
        0,  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER,  # minQty
        order.oca_type,
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        UNSET_DOUBLE,  # nbboPriceCap
        order.parent_id,
        order.trigger_method,
        UNSET_DOUBLE,  # volatility
        UNSET_INTEGER,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral block)
        UNSET_DOUBLE,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        UNSET_INTEGER,  # referencePriceType
        _price(order.trail_stop_price),
        _price(order.trailing_percent),
        UNSET_DOUBLE,  # basisPoints
        UNSET_INTEGER,  # basisPointsType
        "",  # comboLegsDescrip
        0,  # comboLegsCount
        0,  # orderComboLegsCount
        0,  # smartComboRoutingParamsCount
        UNSET_INTEGER,  # scaleInitLevelSize
        UNSET_INTEGER,  # scaleSubsLevelSize
        UNSET_DOUBLE,  # scalePriceIncrement (unset: no scale block)
        "",  # hedgeType (empty: no hedgeParam)
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        *_algo(order),
        False,  # solicited
        order.what_if,
        order.status,
    ]
    if wi is None:
        out += ["", "", "", "", "", "", "", "", ""]
        out += [UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, "", ""]
    else:
        out += [
            _margin(wi.init_margin_before),
            _margin(wi.maint_margin_before),
            _margin(wi.equity_with_loan_before),
            _margin(wi.init_margin_change),
            _margin(wi.maint_margin_change),
            _margin(wi.equity_with_loan_change),
            _margin(wi.init_margin_after),
            _margin(wi.maint_margin_after),
            _margin(wi.equity_with_loan_after),
            float(wi.commission),
            float(wi.min_commission),
            float(wi.max_commission),
            wi.commission_currency,
            wi.warning_text,
        ]
    out += [
        False,  # randomizeSize
        False,  # randomizePrice (not PEG BENCH: no benchmark block)
        *_conditions(order),
        "",  # adjustedOrderType
        UNSET_DOUBLE,  # triggerPrice
        _price(order.trail_stop_price),
        _price(order.lmt_price_offset),
        UNSET_DOUBLE,  # adjustedStopPrice
        UNSET_DOUBLE,  # adjustedStopLimitPrice
        UNSET_DOUBLE,  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        UNSET_DOUBLE,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
    ]
    if version >= 159:
        out.append(UNSET_INTEGER)  # duration
    if version >= 160:
        out.append(UNSET_INTEGER)  # postToAts
    if version >= 162:
        out.append(False)  # autoCancelParent
    if version >= 170:
        out += [
            UNSET_INTEGER,  # minTradeQty
            UNSET_INTEGER,  # minCompeteSize
            UNSET_DOUBLE,  # competeAgainstBestOffset
            _price(order.mid_offset_at_whole),
            _price(order.mid_offset_at_half),
        ]
    return out


def order_status(order: SimOrder) -> list[object]:
    """orderStatus (id 3): 12 fields, no version field."""
    return [
        int(Msg.ORDER_STATUS),
        order.order_id,
        order.status,
        float(order.filled),
        float(order.remaining),
        float(order.avg_fill_price),
        order.perm_id,
        order.parent_id,
        float(order.last_fill_price),
        order.client_id,
        order.why_held,
        0.0,  # mktCapPrice
    ]


def completed_order(order: SimOrder, *, version: int = SERVER_VERSION) -> list[object]:
    """completedOrder (id 101): 96 fields for a plain order at 178."""
    out: list[object] = [
        int(Msg.COMPLETED_ORDER),
        *_contract11(order.instrument),
        order.action,
        float(order.total_quantity),
        order.order_type,
        _price(order.lmt_price),
        _price(order.aux_price),
        order.tif,
        order.oca_group,
        order.account,
        "",  # openClose
        0,  # origin
        order.order_ref,
        order.perm_id,
        order.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if version < 177:
        out.append("")  # faProfile
    out += [
        "",  # modelCode
        order.good_till_date,
        "",  # rule80A
        UNSET_DOUBLE,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        UNSET_DOUBLE,  # startingPrice
        UNSET_DOUBLE,  # stockRefPrice
        UNSET_DOUBLE,  # delta
        UNSET_DOUBLE,  # stockRangeLower
        UNSET_DOUBLE,  # stockRangeUpper
        0,  # displaySize
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER,  # minQty
        order.oca_type,
        order.trigger_method,
        UNSET_DOUBLE,  # volatility
        UNSET_INTEGER,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no 4-field block)
        UNSET_DOUBLE,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        UNSET_INTEGER,  # referencePriceType
        _price(order.trail_stop_price),
        _price(order.trailing_percent),
        "",  # comboLegsDescrip
        0,  # comboLegsCount
        0,  # orderComboLegsCount
        0,  # smartComboRoutingParamsCount
        UNSET_INTEGER,  # scaleInitLevelSize
        UNSET_INTEGER,  # scaleSubsLevelSize
        UNSET_DOUBLE,  # scalePriceIncrement
        "",  # hedgeType
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        *_algo(order),
        False,  # solicited
        order.status,
        False,  # randomizeSize
        False,  # randomizePrice
        *_conditions(order),
        _price(order.trail_stop_price),
        _price(order.lmt_price_offset),
        UNSET_DOUBLE,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        float(order.filled),  # filledQuantity
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        0,  # parentPermId
        order.completed_time,
        order.completed_status,
    ]
    if version >= 170:
        out += [
            UNSET_INTEGER,  # minTradeQty
            UNSET_INTEGER,  # minCompeteSize
            UNSET_DOUBLE,  # competeAgainstBestOffset
            _price(order.mid_offset_at_whole),
            _price(order.mid_offset_at_half),
        ]
    return out


def open_order_end() -> list[object]:
    return [int(Msg.OPEN_ORDER_END), 1]


def completed_orders_end() -> list[object]:
    """Just the id: the frame is ``"102\\0"``."""
    return [int(Msg.COMPLETED_ORDERS_END)]


# ---------------------------------------------------------------------------------------------
# Executions


def format_exec_time(when: datetime) -> str:
    """``yyyymmdd hh:mm:ss UTC``: a full timestamp with a zone name both clients parse."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


def exec_details(req_id: int, ex: SimExecution, *, version: int = SERVER_VERSION) -> list[object]:
    """execDetails (id 11): 32 fields at 178; ``req_id`` is -1 for live fills."""
    inst = ex.instrument
    venue = _listing_exchange(inst) or inst.exchange
    out: list[object] = [
        int(Msg.EXECUTION_DATA),
        req_id,
        ex.order_id,
        *_contract11(inst, venue),
        ex.exec_id,
        format_exec_time(ex.time),
        ex.account,
        venue,
        ex.side,
        float(ex.shares),
        float(ex.price),
        ex.perm_id,
        ex.client_id,
        0,  # liquidation
        float(ex.cum_qty),
        float(ex.avg_price),
        ex.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        ex.last_liquidity,
    ]
    if version >= 178:
        out.append(False)  # pendingPriceRevision
    return out


def exec_details_end(req_id: int) -> list[object]:
    return [int(Msg.EXECUTION_DATA_END), 1, req_id]


def commission_report(ex: SimExecution) -> list[object]:
    """commissionReport (id 59): exactly 8 fields; unknown PnL and yield are TWS's max double."""
    return [
        int(Msg.COMMISSION_REPORT),
        1,
        ex.exec_id,
        float(ex.commission),
        ex.commission_currency,
        _price(ex.realized_pnl),
        UNSET_DOUBLE,  # yield
        "",  # yieldRedemptionDate
    ]


# ---------------------------------------------------------------------------------------------
# Contracts


def _session_text(day: date, session: tuple[str, str], closed: bool) -> str:
    if closed:
        return f"{day:%Y%m%d}:CLOSED"
    start, end = session
    # A session whose start is later than its end began on the previous calendar day
    # (forex 17:15-17:00, futures 18:00-17:00).
    start_day = day - timedelta(days=1) if start > end else day
    return f"{start_day:%Y%m%d}:{start}-{day:%Y%m%d}:{end}"


def trading_hours(inst: Instrument, today: date, days: int = 7) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` for ``days`` days from ``today``; weekends closed."""
    trading: list[str] = []
    liquid: list[str] = []
    for i in range(days):
        day = today + timedelta(days=i)
        closed = day.weekday() >= 5
        trading.append(_session_text(day, inst.eth, closed))
        liquid.append(_session_text(day, inst.rth, closed))
    return ";".join(trading), ";".join(liquid)


def _contract_month(inst: Instrument) -> str:
    return inst.last_trade_date[:6] if inst.sec_type in ("FUT", "OPT", "FOP") else ""


def contract_data(req_id: int, inst: Instrument, *, today: date | None = None) -> list[object]:
    """contractData (id 10): 40 fields (no secIds), no version field (≥164)."""
    day = today if today is not None else datetime.now(UTC).date()
    hours, liquid = trading_hours(inst, day)
    market_name = inst.market_name or inst.trading_class or inst.symbol
    return [
        int(Msg.CONTRACT_DATA),
        req_id,
        inst.symbol,
        inst.sec_type,
        inst.last_trade_date,
        float(inst.strike),
        inst.right,
        inst.exchange,
        inst.currency,
        inst.local_symbol,
        market_name,
        inst.trading_class,
        inst.con_id,
        float(inst.min_tick),
        inst.multiplier,
        ",".join(inst.order_types),
        ",".join(inst.valid_exchanges) or inst.exchange,
        1,  # priceMagnifier
        inst.under_con_id,
        inst.long_name,
        inst.primary_exchange,
        _contract_month(inst),
        inst.industry,
        inst.category,
        inst.subcategory,
        inst.time_zone,
        hours,
        liquid,
        "",  # evRule
        0,  # evMultiplier
        0,  # secIdListCount
        1,  # aggGroup
        inst.under_symbol,
        inst.under_sec_type,
        market_rule_ids(inst),
        inst.last_trade_date,  # realExpirationDate
        inst.stock_type,
        float(inst.min_size),
        float(inst.size_increment),
        float(inst.size_increment),  # suggestedSizeIncrement
    ]


def contract_data_end(req_id: int) -> list[object]:
    return [int(Msg.CONTRACT_DATA_END), 1, req_id]


# ---------------------------------------------------------------------------------------------
# Positions, portfolio, account


def position(pos: SimPosition) -> list[object]:
    """position (id 61): exactly 16 fields."""
    inst = pos.instrument
    return [
        int(Msg.POSITION_DATA),
        3,
        pos.account,
        *_contract11(inst, _listing_exchange(inst)),
        float(pos.quantity),
        float(pos.avg_cost),
    ]


def position_end() -> list[object]:
    return [int(Msg.POSITION_END), 1]


@dataclass(slots=True, frozen=True)
class PortfolioItem:
    """One updatePortfolio row: a position marked to market."""

    account: str
    instrument: Instrument
    position: float
    market_price: float
    market_value: float
    avg_cost: float
    unrealized_pnl: float
    realized_pnl: float


def portfolio_value(item: PortfolioItem) -> list[object]:
    """updatePortfolio (id 7): exactly 20 fields; the exchange slot holds primaryExchange."""
    inst = item.instrument
    return [
        int(Msg.PORTFOLIO_VALUE),
        8,
        inst.con_id,
        inst.symbol,
        inst.sec_type,
        inst.last_trade_date,
        float(inst.strike),
        inst.right,
        inst.multiplier,
        inst.primary_exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
        float(item.position),
        float(item.market_price),
        float(item.market_value),
        float(item.avg_cost),
        float(item.unrealized_pnl),
        float(item.realized_pnl),
        item.account,
    ]


def account_value(key: str, value: str, currency: str, account: str) -> list[object]:
    """updateAccountValue (id 6)."""
    return [int(Msg.ACCT_VALUE), 2, key, value, currency, account]


def account_update_time(when: datetime) -> list[object]:
    """updateAccountTime (id 8): ``HH:MM``."""
    return [int(Msg.ACCT_UPDATE_TIME), 1, when.strftime("%H:%M")]


def account_download_end(account: str) -> list[object]:
    return [int(Msg.ACCT_DOWNLOAD_END), 1, account]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[object]:
    return [int(Msg.ACCOUNT_SUMMARY), 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list[object]:
    return [int(Msg.ACCOUNT_SUMMARY_END), 1, req_id]


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> list[object]:
    return [int(Msg.ACCOUNT_UPDATE_MULTI), 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> list[object]:
    return [int(Msg.ACCOUNT_UPDATE_MULTI_END), 1, req_id]


def pnl(req_id: int, daily: float, unrealized: float, realized: float) -> list[object]:
    """pnl (id 94): no version field."""
    return [int(Msg.PNL), req_id, float(daily), float(unrealized), float(realized)]


def pnl_single(
    req_id: int, pos: float, daily: float, unrealized: float, realized: float, value: float
) -> list[object]:
    """pnlSingle (id 95): no version field."""
    return [
        int(Msg.PNL_SINGLE),
        req_id,
        float(pos),
        float(daily),
        float(unrealized),
        float(realized),
        float(value),
    ]


def error_message(req_id: int, code: int, text: str, advanced_json: str = "") -> list[object]:
    """errMsg (id 4) as v178 writes it: version 2 and the advancedOrderRejectJson field."""
    return [int(Msg.ERR_MSG), 2, req_id, code, text, advanced_json]
