"""The simulator's own records: instruments, accounts, orders, executions, positions, bars.

These are the sim's internal vocabulary, shared by the scenario loader, the market, the broker
and the wire layouts. They are deliberately independent of ibflow's client-side models: the
simulator must never import the client it is used to test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SEC_TYPES = ("STK", "CASH", "FUT", "OPT", "IND")


@dataclass(slots=True)
class Instrument:
    """One tradable (or index) contract in the simulated universe, with a stable conId."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str = "USD"
    primary_exchange: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    last_trade_date: str = ""  # yyyymmdd for FUT/OPT
    strike: float = 0.0
    right: str = ""  # "C" / "P" for options
    multiplier: str = ""
    min_tick: float = 0.01
    long_name: str = ""
    market_name: str = ""
    valid_exchanges: tuple[str, ...] = ()
    order_types: tuple[str, ...] = ("LMT", "MKT", "STP", "STP LMT")
    time_zone: str = "US/Eastern"
    # Regular and extended sessions as local "HHMM" pairs; forex uses a 24h session that
    # crosses midnight (e.g. ("1715", "1700")).
    rth: tuple[str, str] = ("0930", "1600")
    eth: tuple[str, str] = ("0400", "2000")
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    min_size: float = 1.0
    size_increment: float = 1.0
    # Market parameters: starting price and annualised volatility of the seeded price path.
    price: float = 100.0
    volatility: float = 0.2

    @property
    def multiplier_value(self) -> float:
        return float(self.multiplier) if self.multiplier else 1.0


@dataclass(slots=True)
class SimAccount:
    """A managed account: its id and its cash by currency."""

    account_id: str
    base_currency: str = "USD"
    cash: float = 1_000_000.0
    realized_pnl: float = 0.0


@dataclass(slots=True)
class SimPosition:
    account: str
    instrument: Instrument
    quantity: float
    avg_cost: float  # per contract, multiplier included, as IB reports it
    realized_pnl: float = 0.0


@dataclass(slots=True, frozen=True)
class SimCondition:
    """One order condition as placeOrder carried it, typed; ``value`` keeps the sent text.

    ``kind`` is IB's condition type: 1 price, 3 time, 4 margin cushion, 5 execution, 6 volume,
    7 percent change. ``conjunction`` ("a" and, "o" or) joins it to the next condition.
    """

    kind: int
    conjunction: str = "a"
    is_more: bool = True
    value: str = ""
    con_id: int = 0
    exchange: str = ""
    trigger_method: int = 0
    sec_type: str = ""
    symbol: str = ""

    def wire(self) -> list[object]:
        """The fields of this condition in an openOrder or completedOrder, type first."""
        if self.kind == 1:
            rest: list[object] = [
                self.is_more,
                self.value,
                self.con_id,
                self.exchange,
                self.trigger_method,
            ]
        elif self.kind in (3, 4):
            rest = [self.is_more, self.value]
        elif self.kind == 5:
            rest = [self.sec_type, self.exchange, self.symbol]
        else:
            rest = [self.is_more, self.value, self.con_id, self.exchange]
        return [self.kind, self.conjunction, *rest]


@dataclass(slots=True)
class SimOrder:
    """An order as the broker tracks it; mutated as it moves through its states."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    instrument: Instrument
    action: str  # "BUY" / "SELL"
    total_quantity: float
    order_type: str  # "MKT", "LMT", "STP", "TRAIL", "MOC", "REL", "PEG MID", ...
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    good_till_date: str = ""
    trigger_method: int = 0
    # Trailing stops: the trailing amount is ``aux_price``; the stop ratchets as the price moves.
    trailing_percent: float | None = None
    percent_offset: float | None = None  # REL: the offset as a fraction of the bid or ask
    trail_stop_price: float | None = None
    lmt_price_offset: float | None = None
    # PEG MID on IBKRATS: the offset used when the midpoint is on a whole or a half tick.
    mid_offset_at_whole: float | None = None
    mid_offset_at_half: float | None = None
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    conditions: tuple[SimCondition, ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False
    # The price a pegged order (REL, PEG MID) works at now; TWS does not report it.
    working_price: float | None = None
    what_if: bool = False
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    why_held: str = ""
    triggered: bool = False
    completed_time: str = ""
    completed_status: str = ""

    @property
    def remaining(self) -> float:
        return max(self.total_quantity - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        """No longer worked: it will not fill any more."""
        return self.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive")

    @property
    def is_open(self) -> bool:
        """TWS still holds it and lists it among the open orders.

        An ``Inactive`` order is done (never worked) yet open: TWS keeps it until it is
        cancelled, so it shows in reqOpenOrders and can still be cancelled.
        """
        return not self.is_done or self.status == "Inactive"


@dataclass(slots=True, frozen=True)
class SimExecution:
    """One fill, with the commission the broker charged for it."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    order_ref: str
    instrument: Instrument
    time: datetime  # aware, UTC
    side: str  # "BOT" / "SLD"
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    commission: float
    commission_currency: str = "USD"
    realized_pnl: float | None = None
    last_liquidity: int = 2  # 1 added, 2 removed liquidity


@dataclass(slots=True)
class QuoteState:
    """The current top of book and session statistics of one instrument."""

    bid: float
    ask: float
    last: float
    bid_size: float = 100.0
    ask_size: float = 100.0
    last_size: float = 100.0
    volume: float = 0.0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0  # previous session's close
    time: float = 0.0  # epoch seconds of the last trade
    halted: bool = False


@dataclass(slots=True, frozen=True)
class SimBar:
    """One OHLCV bar; ``time`` is the bar's start in epoch seconds."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


@dataclass(slots=True)
class WhatIfResult:
    """Margin and commission preview of an order that is not placed."""

    init_margin_before: float
    maint_margin_before: float
    equity_with_loan_before: float
    init_margin_change: float
    maint_margin_change: float
    equity_with_loan_change: float
    init_margin_after: float
    maint_margin_after: float
    equity_with_loan_after: float
    commission: float
    min_commission: float
    max_commission: float
    commission_currency: str = "USD"
    warning_text: str = ""


class SimError(Exception):
    """Raised inside the sim's pure parts; the server turns it into an errMsg frame."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


@dataclass(slots=True, frozen=True)
class ContractQuery:
    """The 12-field contract block a client sends (conId … tradingClass); blanks mean "any"."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
