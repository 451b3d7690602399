"""The requests beyond the core, registered into the server's dispatch in one place.

Options (chains, option computations), market depth, historical ticks, symbol search, market
rules and scanners each live in their own module with their handlers; this module collects the
handlers, where each request carries its id, the hooks the market loop calls for their
subscriptions, and the state they share per simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _depth as depth
from . import _options as options
from . import _scanner as scanner
from . import _symbols as symbols
from . import _ticks as ticks
from ._codec import Fields
from ._ids import Req
from ._model import Instrument

if TYPE_CHECKING:
    from ._server import Simulator, _Connection, _Sub

Handler = Callable[["_Connection", Fields], None]
MoveHook = Callable[["Simulator", "_Connection", "_Sub", Instrument], None]
TickHook = Callable[["Simulator", "_Connection", "_Sub", float], None]


@dataclass(slots=True)
class FeatureState:
    """What these requests remember across requests, per simulator."""

    # Client id → monotonic time of its last reqMatchingSymbols (IB allows one a second).
    symbol_lookups: dict[int, float] = field(default_factory=dict)
    # (conId, minute) → (session volume so far, average session volume) for the scanners.
    scan_volumes: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)


HANDLERS: dict[Req, Handler] = {
    Req.SEC_DEF_OPT_PARAMS: options._h_sec_def_opt_params,
    Req.CALC_IMPLIED_VOLAT: options._h_calc_implied_volat,
    Req.CALC_OPTION_PRICE: options._h_calc_option_price,
    Req.CANCEL_CALC_IMPLIED_VOLAT: options._h_cancel_calculation,
    Req.CANCEL_CALC_OPTION_PRICE: options._h_cancel_calculation,
    Req.MKT_DEPTH: depth._h_mkt_depth,
    Req.CANCEL_MKT_DEPTH: depth._h_cancel_mkt_depth,
    Req.MKT_DEPTH_EXCHANGES: depth._h_mkt_depth_exchanges,
    Req.HISTORICAL_TICKS: ticks._h_historical_ticks,
    Req.MATCHING_SYMBOLS: symbols._h_matching_symbols,
    Req.MARKET_RULE: symbols._h_market_rule,
    Req.SCANNER_PARAMETERS: scanner._h_scanner_parameters,
    Req.SCANNER_SUBSCRIPTION: scanner._h_scanner_subscription,
    Req.CANCEL_SCANNER_SUBSCRIPTION: scanner._h_cancel_scanner_subscription,
}

# Position of the request (or ticker) id in each request, for addressing errors.
REQ_ID_POS: dict[Req, int] = {
    Req.SEC_DEF_OPT_PARAMS: 1,
    Req.CALC_IMPLIED_VOLAT: 2,
    Req.CALC_OPTION_PRICE: 2,
    Req.CANCEL_CALC_IMPLIED_VOLAT: 2,
    Req.CANCEL_CALC_OPTION_PRICE: 2,
    Req.MKT_DEPTH: 2,
    Req.CANCEL_MKT_DEPTH: 2,
    Req.HISTORICAL_TICKS: 1,
    Req.MATCHING_SYMBOLS: 1,
    Req.SCANNER_SUBSCRIPTION: 1,
    Req.CANCEL_SCANNER_SUBSCRIPTION: 2,
}

# Called after an instrument moved, for each subscription of these kinds on it.
MOVE_HOOKS: dict[str, MoveHook] = {"mkt_depth": depth.on_move}
# Called every market step for each subscription of these kinds.
TICK_HOOKS: dict[str, TickHook] = {"scanner_subscription": scanner.on_tick}
# Subscriptions that carry market data (paused by a 1100, dropped by a 1101).
MARKET_KINDS: frozenset[str] = frozenset({"mkt_depth", "scanner_subscription"})
