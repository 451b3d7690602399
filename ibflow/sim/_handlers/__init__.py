"""The simulator's request handlers, one module per concept, and the table the server uses.

Every request id of the API has an entry: a simulated handler, or the refusal of
:mod:`.unsupported` (which a simulated handler overrides). Depth, historical ticks, symbol
search, market rules and scanners keep their handlers next to their models, in the simulator's
modules of those names; the option model serves the market too, so its handlers live here.
"""

from __future__ import annotations

from .. import _depth as depth
from .. import _scanner as scanner
from .. import _symbols as symbols
from .. import _ticks as ticks
from .._core import Handler
from .._ids import Req
from . import account, history, market, options, orders, unsupported

__all__ = ["HANDLERS"]

HANDLERS: dict[Req, Handler] = {
    **{req: unsupported.refuse(req, name) for req, name in unsupported.UNSUPPORTED.items()},
    Req.IDS: account.h_ids,
    Req.CURRENT_TIME: account.h_current_time,
    Req.MANAGED_ACCTS: account.h_managed_accts,
    Req.SET_SERVER_LOGLEVEL: account.h_set_server_log_level,
    Req.POSITIONS: account.h_positions,
    Req.CANCEL_POSITIONS: account.h_cancel_positions,
    Req.ACCOUNT_UPDATES: account.h_account_updates,
    Req.ACCOUNT_UPDATES_MULTI: account.h_account_updates_multi,
    Req.CANCEL_ACCOUNT_UPDATES_MULTI: account.h_cancel_account_updates_multi,
    Req.ACCOUNT_SUMMARY: account.h_account_summary,
    Req.CANCEL_ACCOUNT_SUMMARY: account.h_cancel_account_summary,
    Req.PNL: account.h_pnl,
    Req.CANCEL_PNL: account.h_cancel_pnl,
    Req.PNL_SINGLE: account.h_pnl_single,
    Req.CANCEL_PNL_SINGLE: account.h_cancel_pnl_single,
    Req.CONTRACT_DATA: market.h_contract_data,
    Req.MKT_DATA: market.h_mkt_data,
    Req.CANCEL_MKT_DATA: market.h_cancel_mkt_data,
    Req.MARKET_DATA_TYPE: market.h_market_data_type,
    Req.TICK_BY_TICK: market.h_tick_by_tick,
    Req.CANCEL_TICK_BY_TICK: market.h_cancel_tick_by_tick,
    Req.REAL_TIME_BARS: market.h_real_time_bars,
    Req.CANCEL_REAL_TIME_BARS: market.h_cancel_real_time_bars,
    Req.HISTORICAL_DATA: history.h_historical_data,
    Req.CANCEL_HISTORICAL_DATA: history.h_cancel_historical_data,
    Req.HEAD_TIMESTAMP: history.h_head_timestamp,
    Req.CANCEL_HEAD_TIMESTAMP: history.h_cancel_head_timestamp,
    Req.PLACE_ORDER: orders.h_place_order,
    Req.CANCEL_ORDER: orders.h_cancel_order,
    Req.GLOBAL_CANCEL: orders.h_global_cancel,
    Req.OPEN_ORDERS: orders.h_open_orders,
    Req.ALL_OPEN_ORDERS: orders.h_all_open_orders,
    Req.AUTO_OPEN_ORDERS: orders.h_auto_open_orders,
    Req.COMPLETED_ORDERS: orders.h_completed_orders,
    Req.EXECUTIONS: orders.h_executions,
    Req.SEC_DEF_OPT_PARAMS: options.h_sec_def_opt_params,
    Req.CALC_IMPLIED_VOLAT: options.h_calc_implied_volat,
    Req.CALC_OPTION_PRICE: options.h_calc_option_price,
    Req.CANCEL_CALC_IMPLIED_VOLAT: options.h_cancel_calculation,
    Req.CANCEL_CALC_OPTION_PRICE: options.h_cancel_calculation,
    Req.MKT_DEPTH: depth.h_mkt_depth,
    Req.CANCEL_MKT_DEPTH: depth.h_cancel_mkt_depth,
    Req.MKT_DEPTH_EXCHANGES: depth.h_mkt_depth_exchanges,
    Req.HISTORICAL_TICKS: ticks.h_historical_ticks,
    Req.MATCHING_SYMBOLS: symbols.h_matching_symbols,
    Req.MARKET_RULE: symbols.h_market_rule,
    Req.SCANNER_PARAMETERS: scanner.h_scanner_parameters,
    Req.SCANNER_SUBSCRIPTION: scanner.h_scanner_subscription,
    Req.CANCEL_SCANNER_SUBSCRIPTION: scanner.h_cancel_scanner_subscription,
}
