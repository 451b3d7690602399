"""Account and contract records: positions, account values and summary, PnL, details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .contracts import Contract

__all__ = [
    "AccountSummary",
    "AccountValue",
    "ContractDetails",
    "PnL",
    "PortfolioItem",
    "Position",
    "PositionPnL",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """One position as TWS reports it right now (``reqPositions``).

    ``quantity`` is signed (negative = short); ``avg_cost`` includes the multiplier, as IB
    reports it (an option bought at 2.50 has ``avg_cost`` 250).
    """

    account: str
    contract: Contract
    quantity: float
    avg_cost: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountValue:
    """One account value (``NetLiquidation``, ``CashBalance``…), as IB's text.

    IB sends numbers, currencies and words alike as text, so ``value`` stays a string;
    :attr:`number` is the float reading, or ``None`` when the value is not numeric.
    """

    account: str
    tag: str
    value: str
    currency: str | None = None
    model_code: str | None = None

    @property
    def number(self) -> float | None:
        """``value`` as a float, or ``None`` when it is not a (finite) number."""
        return parse_float(self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioItem:
    """One portfolio line: a position with its market price, value and PnL."""

    account: str
    contract: Contract
    quantity: float
    market_price: float | None = None
    market_value: float | None = None
    avg_cost: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PnL:
    """An account's profit and loss; a field is ``None`` when IB leaves it unset."""

    account: str
    daily: float | None = None
    unrealized: float | None = None
    realized: float | None = None
    model_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionPnL:
    """The profit and loss of one position (``reqPnLSingle``)."""

    account: str
    con_id: int
    position: float | None = None
    daily: float | None = None
    unrealized: float | None = None
    realized: float | None = None
    value: float | None = None
    model_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSummary:
    """The headline numbers of one account, typed, plus every tag IB sent as text.

    Typed fields are ``None`` when IB did not report the tag. ``currency`` is the account's base
    currency as the summary reports it. ``tags`` maps IB's tag names (``"NetLiquidation"``…) to
    their raw text, so tags without a field here are still at hand.
    """

    account: str
    net_liquidation: float | None = None
    total_cash: float | None = None
    buying_power: float | None = None
    available_funds: float | None = None
    excess_liquidity: float | None = None
    init_margin: float | None = None
    maint_margin: float | None = None
    gross_position_value: float | None = None
    equity_with_loan: float | None = None
    currency: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.tags, MappingProxyType):
            object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))


# Tag in IB's account summary → field of AccountSummary.
SUMMARY_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "NetLiquidation": "net_liquidation",
        "TotalCashValue": "total_cash",
        "BuyingPower": "buying_power",
        "AvailableFunds": "available_funds",
        "ExcessLiquidity": "excess_liquidity",
        "InitMarginReq": "init_margin",
        "MaintMarginReq": "maint_margin",
        "GrossPositionValue": "gross_position_value",
        "EquityWithLoanValue": "equity_with_loan",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractDetails:
    """What IB knows about one contract (``reqContractDetails``), ``None`` where it says nothing.

    ``trading_hours`` and ``liquid_hours`` are IB's schedule text
    (``"20270111:0400-20270111:2000;20270112:CLOSED;…"``) in the zone ``time_zone``.
    """

    contract: Contract
    long_name: str | None = None
    market_name: str | None = None
    min_tick: float | None = None
    price_magnifier: int | None = None
    valid_exchanges: tuple[str, ...] = ()
    order_types: tuple[str, ...] = ()
    time_zone: str | None = None
    trading_hours: str | None = None
    liquid_hours: str | None = None
    industry: str | None = None
    category: str | None = None
    subcategory: str | None = None
    contract_month: str | None = None
    under_con_id: int | None = None
    under_symbol: str | None = None
    under_sec_type: str | None = None
    market_rule_ids: tuple[int, ...] = ()
    min_size: float | None = None
    size_increment: float | None = None
    stock_type: str | None = None
    last_trade_time: str | None = None
    real_expiration_date: str | None = None

    @property
    def multiplier(self) -> float | None:
        """The contract's multiplier (also on :attr:`contract`)."""
        return self.contract.multiplier


def parse_float(text: str) -> float | None:
    """IB's numeric text as a finite float, ``None`` when it is not one."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None
