"""The simulated broker: accounts, positions, orders, matching, commissions and PnL.

Pure state machine with no I/O and no asyncio: the server hands it requests and quote changes,
and it answers with a list of events in the order TWS would put them on the wire (§7.6 of
``shared/tws-protocol.md``). Keeping it pure makes every order path — fills, brackets, OCA,
modify, cancel, rejects — testable in microseconds, and keeps the server a thin translator from
events to frames.

Decisions worth knowing:

* A new order that fails validation produces only an :class:`OrderError` (no ``OrderChanged``):
  TWS rejects it before it exists, and clients treat the error as the end of the order.
* An order sent with ``transmit=False`` is held: it reports ``PendingSubmit`` until an order of
  its bracket (or a modify of itself) arrives with ``transmit=True``; then the whole bracket goes
  live at once. Children stay ``PreSubmitted`` and cannot fill until their parent has filled.
* Children of one parent behave as an OCA group that reduces the siblings' quantity by each fill
  (ocaType 3), as TWS does for brackets; explicit groups honour ocaType 1 (cancel the others on a
  fill) and 2/3 (reduce them).
* Cash moves by the trade's full value for stocks, options and forex; futures move cash only by
  realized PnL. Average cost includes the commission, as IB reports it.
* There is no trading-day rollover: "today" is the broker's lifetime, and daily PnL is measured
  from each instrument's previous close (``QuoteState.close``).
* Read-only mode refuses placeOrder, cancelOrder and reqGlobalCancel with error 321.
* An order made ``Inactive`` (:meth:`Broker.inactivate_next`, standing in for a margin or
  permission check that TWS runs after accepting the order) is acknowledged, gets the error,
  then reports ``Inactive``: the sequence ib_insync#554 logged from a real TWS. It is never
  worked, yet it stays among the open orders, and a cancel still turns it ``Cancelled``.
* An execution correction (:meth:`Broker.correct_execution`) replaces the execution in the
  day's record, as reqExecutions then reports it, and re-derives the position by replaying the
  day's executions: average cost and realized PnL depend on the order of the fills, so only a
  replay moves them by exactly what the correction changes.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from ._codec import UNSET_DOUBLE
from ._layouts import PlaceOrderRequest, PortfolioItem, format_exec_time
from ._model import (
    Instrument,
    QuoteState,
    SimAccount,
    SimError,
    SimExecution,
    SimOrder,
    SimPosition,
    WhatIfResult,
)

__all__ = [
    "AccountChanged",
    "Broker",
    "Commission",
    "CommissionModel",
    "Event",
    "Executed",
    "MarketLike",
    "OrderChanged",
    "OrderError",
    "PortfolioItem",
    "PositionChanged",
]

READONLY_TEXT = (
    "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
)
OFF_TICK_TEXT = "The price does not conform to the minimum price variation for this contract."
CANCELED_TEXT = "Order Canceled - reason:"
INACTIVE_CODE = 201
INACTIVE_TEXT = "Order rejected - reason:The order failed a risk check and is held inactive."

_ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT"})
_TIFS = frozenset({"DAY", "GTC", "IOC", "GTD", "FOK", "OPG", "DTC"})
_EPS = 1e-9

# Margin rates as fractions of the market value (of the notional for futures and forex).
# Stocks use Reg T (50% initial, 25% maintenance); the rest are round figures of the right size.
_INIT_RATE = {"STK": 0.5, "FUT": 0.06, "CASH": 0.03}
_MAINT_RATE = {"STK": 0.25, "FUT": 0.05, "CASH": 0.025}
_SHORT_OPTION_RATE = 0.2
_BUYING_POWER_FACTOR = 4.0  # day-trading buying power of a Reg T margin account

# The cash-balance ("ledger") tags that $LEDGER, $LEDGER:CCY and $LEDGER:ALL expand to.
LEDGER_TAGS = (
    "CashBalance",
    "TotalCashBalance",
    "AccruedCash",
    "StockMarketValue",
    "OptionMarketValue",
    "FutureOptionValue",
    "FuturesPNL",
    "NetLiquidationByCurrency",
    "UnrealizedPnL",
    "RealizedPnL",
    "ExchangeRate",
    "FundValue",
    "NetDividend",
    "MutualFundValue",
    "MoneyMarketFundValue",
    "CorporateBondValue",
    "TBondValue",
    "TBillValue",
    "WarrantValue",
    "FxCashBalance",
    "AccountOrGroup",
    "RealCurrency",
    "IssuerOptionValue",
    "Currency",
)

# Tags of reqAccountSummary that are not ledger tags, in TWS's documented order.
SUMMARY_TAGS = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "AccruedCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "PreviousDayEquityWithLoanValue",
    "GrossPositionValue",
    "RegTEquity",
    "RegTMargin",
    "SMA",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadNextChange",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
    "HighestSeverity",
    "DayTradesRemaining",
    "Leverage",
)


class MarketLike(Protocol):
    """What the broker needs from the market: the current quote of an instrument."""

    def quote(self, con_id: int) -> QuoteState: ...


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """The order's state changed; the server sends openOrder then orderStatus.

    ``order`` is a snapshot taken when the event was made, never the live record.
    """

    order: SimOrder


@dataclass(frozen=True, slots=True)
class OrderError:
    """An errMsg for ``order_id``, to the connection of ``client_id``."""

    order_id: int
    client_id: int
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class Executed:
    """A fill; the server sends execDetails with reqId -1."""

    execution: SimExecution


@dataclass(frozen=True, slots=True)
class Commission:
    """The commission of a fill; the server sends commissionReport (after its execDetails)."""

    execution: SimExecution


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position changed; ``position`` is its snapshot after the change."""

    account: str
    instrument: Instrument
    position: SimPosition | None = None


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Cash, margin or PnL of ``account`` changed: push account values / summary / PnL."""

    account: str


Event = OrderChanged | OrderError | Executed | Commission | PositionChanged | AccountChanged


# ---------------------------------------------------------------------------------------------
# Commissions


@dataclass(frozen=True, slots=True)
class CommissionModel:
    """IB's fixed pricing, roughly: what an order costs for its total filled size and value.

    Rates mirror the scenario's keys: per share with a per-order minimum and a cap as a fraction
    of the trade value for stocks; a fraction of the value with a minimum for forex; per contract
    for futures; per contract with a minimum for options.
    """

    per_share: float = 0.005
    min_per_order: float = 1.0
    max_rate: float = 0.01
    forex_rate: float = 0.00002
    forex_min: float = 2.0
    future_per_contract: float = 0.85
    option_per_contract: float = 0.65
    option_min: float = 1.0

    def order_total(self, inst: Instrument, quantity: float, value: float) -> float:
        """Commission of an order that has filled ``quantity`` for ``value`` (absolute)."""
        if quantity <= 0:
            return 0.0
        st = inst.sec_type
        if st == "CASH":
            total = max(value * self.forex_rate, self.forex_min)
        elif st in ("FUT", "FOP"):
            total = quantity * self.future_per_contract
        elif st == "OPT":
            total = max(quantity * self.option_per_contract, self.option_min)
        else:
            total = max(quantity * self.per_share, self.min_per_order)
            if self.max_rate > 0:
                total = min(total, value * self.max_rate)
        return round(total, 4)

    @staticmethod
    def currency(inst: Instrument) -> str:
        # IB charges forex commissions in USD whatever the pair's quote currency.
        return "USD" if inst.sec_type == "CASH" else inst.currency


# ---------------------------------------------------------------------------------------------
# Internal records


@dataclass(slots=True)
class _InactiveRule:
    """One pending :meth:`Broker.inactivate_next`: which order it hits and what TWS says."""

    symbol: str  # upper case; "" matches every instrument
    skip: int
    code: int
    text: str
    acknowledge: bool = True


@dataclass(slots=True)
class _Working:
    """Broker-side flags of one order that clients never see."""

    seq: int
    held: bool = False
    commission_charged: float = 0.0
    value_filled: float = 0.0


@dataclass(slots=True)
class _Figures:
    """Account figures in the base currency plus the per-currency ledger."""

    base: str
    cash: dict[str, float]
    stock: dict[str, float]
    option: dict[str, float]
    futures_pnl: dict[str, float]
    unrealized: dict[str, float]
    realized: dict[str, float]
    rates: dict[str, float]
    gross_position_value: float = 0.0
    init_margin: float = 0.0
    maint_margin: float = 0.0

    def total(self, table: dict[str, float]) -> float:
        return sum(v * self.rates.get(c, 1.0) for c, v in table.items())

    @property
    def total_cash(self) -> float:
        return self.total(self.cash)

    def net_liq_in(self, ccy: str) -> float:
        return (
            self.cash.get(ccy, 0.0)
            + self.stock.get(ccy, 0.0)
            + self.option.get(ccy, 0.0)
            + self.futures_pnl.get(ccy, 0.0)
        )

    @property
    def net_liquidation(self) -> float:
        return sum(self.net_liq_in(c) * self.rates.get(c, 1.0) for c in self.currencies)

    @property
    def equity_with_loan(self) -> float:
        return self.net_liquidation - self.total(self.option)

    @property
    def currencies(self) -> list[str]:
        seen = {self.base}
        for table in (self.cash, self.stock, self.option, self.futures_pnl, self.realized):
            seen.update(table)
        return sorted(seen, key=lambda c: (c != self.base, c))


def _money(value: float) -> str:
    return f"{value:.2f}"


def _rate_text(value: float) -> str:
    return "1.00" if value == 1.0 else f"{value:.8g}"


def _parse_ib_time(text: str) -> datetime | None:
    """``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd-hh:mm:ss``; no zone means UTC."""
    text = text.strip()
    if not text:
        return None
    zone = "UTC"
    if "-" in text[:9]:
        stamp = text
    else:
        parts = text.split()
        if len(parts) >= 3:
            zone = parts[2]
        stamp = "-".join(parts[:2]) if len(parts) >= 2 else parts[0]
    for fmt in ("%Y%m%d-%H:%M:%S", "%Y%m%d"):
        try:
            naive = datetime.strptime(stamp, fmt)
        except ValueError:
            continue
        try:
            tz: ZoneInfo | None = ZoneInfo(zone)
        except (KeyError, ValueError):
            tz = None
        return naive.replace(tzinfo=tz or UTC)
    return None


def _same_sign(a: float, b: float) -> bool:
    return (a > 0 and b > 0) or (a < 0 and b < 0)


def _apply_fill(pos: SimPosition, signed: float, unit: float, commission: float) -> float | None:
    """Move ``pos`` by one fill of ``signed`` at ``unit`` (price × multiplier).

    Returns the realized PnL, or None when the fill only opens or adds. Average cost includes
    the commission, as IB reports it.
    """
    old = pos.quantity
    new = old + signed
    realized: float | None = None
    if old == 0 or _same_sign(old, signed):
        cost = abs(old) * pos.avg_cost + abs(signed) * unit
        # Commission raises a long's cost and lowers a short's proceeds.
        cost += commission if new > 0 else -commission
        pos.avg_cost = cost / abs(new)
    else:
        closing = min(abs(signed), abs(old))
        opening = abs(signed) - closing
        close_commission = commission * closing / abs(signed)
        open_commission = commission - close_commission
        direction = 1.0 if old > 0 else -1.0
        realized = direction * (unit - pos.avg_cost) * closing - close_commission
        pos.realized_pnl += realized
        if opening > _EPS:
            cost = opening * unit + (open_commission if new > 0 else -open_commission)
            pos.avg_cost = cost / opening
        elif abs(new) <= _EPS:
            pos.avg_cost = 0.0
            new = 0.0
    pos.quantity = new
    return realized


def _exec_base(exec_id: str) -> str:
    return exec_id.rpartition(".")[0] or exec_id


def _signed(ex: SimExecution) -> float:
    return ex.shares if ex.side == "BOT" else -ex.shares


def _next_revision(exec_id: str) -> str:
    """The id TWS gives a correction of ``exec_id``: its last dot-separated part raised by one."""
    head, dot, tail = exec_id.rpartition(".")
    if not dot or not tail.isdigit():
        raise ValueError(f"execution id {exec_id!r} has no correction number to raise")
    return f"{head}.{int(tail) + 1:0{len(tail)}d}"


# ---------------------------------------------------------------------------------------------
# The broker


class Broker:
    """Accounts, positions and orders of one simulated TWS, shared by all its clients."""

    def __init__(
        self,
        accounts: Sequence[SimAccount],
        positions: Sequence[SimPosition],
        market: MarketLike,
        *,
        seed: int,
        clock: Callable[[], float],
        commission: CommissionModel | None = None,
        readonly: bool = False,
        instruments: Sequence[Instrument] = (),
        partial_fill_clip: float | None = None,
        enforce_market_hours: bool = False,
    ) -> None:
        if not accounts:
            raise ValueError("the broker needs at least one account")
        self._market = market
        self._clock = clock
        self.commission = commission or CommissionModel()
        self.readonly = readonly
        self.partial_fill_clip = partial_fill_clip if partial_fill_clip else None
        self.enforce_market_hours = enforce_market_hours

        self._accounts = {a.account_id: dataclasses.replace(a) for a in accounts}
        self._cash: dict[str, dict[str, float]] = {
            a.account_id: {a.base_currency: float(a.cash)} for a in accounts
        }
        self._instruments: dict[int, Instrument] = {i.con_id: i for i in instruments}
        self._positions: dict[tuple[str, int], SimPosition] = {}
        # The day's opening positions: corrections replay the executions from here.
        self._opening: dict[tuple[str, int], SimPosition] = {}
        self._start_qty: dict[tuple[str, int], float] = {}
        self._day_flow: dict[tuple[str, int], float] = {}
        for p in positions:
            if p.account not in self._accounts:
                raise ValueError(f"position in unknown account {p.account}")
            key = (p.account, p.instrument.con_id)
            self._positions[key] = dataclasses.replace(p)
            self._opening[key] = dataclasses.replace(p)
            self._start_qty[key] = p.quantity
            self._instruments.setdefault(p.instrument.con_id, p.instrument)

        self._orders: dict[tuple[int, int], SimOrder] = {}
        self._working: dict[tuple[int, int], _Working] = {}
        self._executions: list[SimExecution] = []
        self._oca_fired: set[tuple[str, str]] = set()
        self._inactive_rules: list[_InactiveRule] = []
        self._seq = 0

        rng = random.Random(seed)
        self._next_perm_id = rng.randrange(100_000_000, 1_000_000_000)
        self._exec_prefix = rng.getrandbits(32)
        self._exec_counter = rng.getrandbits(28)

    # -- inspection ------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        """The live record of one order (for inspection; do not mutate)."""
        return self._orders.get((client_id, order_id))

    def cash(self, account: str) -> dict[str, float]:
        """Cash balances of ``account`` by currency."""
        return dict(self._cash[account])

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Snapshots of the orders TWS still holds (working, held, inactive), oldest first."""
        return [
            _snap(o)
            for (cid, _), o in self._orders.items()
            if o.is_open and (client_id is None or cid == client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        """Snapshots of the finished orders (filled or cancelled)."""
        return [_snap(o) for o in self._orders.values() if not o.is_open]

    def executions(
        self,
        *,
        client_id: int = 0,
        account: str = "",
        time: str = "",
        symbol: str = "",
        sec_type: str = "",
        exchange: str = "",
        side: str = "",
    ) -> list[SimExecution]:
        """Executions matching a reqExecutions filter; blank fields and client id 0 match all."""
        since = _parse_ib_time(time)
        want_side = {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper())
        out = []
        for ex in self._executions:
            inst = ex.instrument
            if client_id and ex.client_id != client_id:
                continue
            if account and ex.account.upper() != account.upper():
                continue
            if since is not None and ex.time < since:
                continue
            if symbol and inst.symbol.upper() != symbol.upper():
                continue
            if sec_type and inst.sec_type.upper() != sec_type.upper():
                continue
            if exchange and exchange.upper() not in (
                inst.exchange.upper(),
                inst.primary_exchange.upper(),
            ):
                continue
            if want_side and ex.side != want_side:
                continue
            out.append(ex)
        return out

    def positions(self, account: str | None = None) -> list[SimPosition]:
        """Snapshots of the positions (closed ones stay, with quantity 0, as TWS reports them)."""
        return [
            dataclasses.replace(p)
            for (acct, _), p in self._positions.items()
            if account is None or acct == account
        ]

    # -- orders ----------------------------------------------------------------------------

    def place(self, client_id: int, req: PlaceOrderRequest, inst: Instrument) -> list[Event]:
        """A placeOrder: a new order, or a modification when the id is already known."""
        if req.what_if:
            raise ValueError("what-if orders are previewed with Broker.what_if, never placed")
        if self.readonly:
            return [OrderError(req.order_id, client_id, 321, READONLY_TEXT)]
        self._instruments.setdefault(inst.con_id, inst)
        key = (client_id, req.order_id)
        existing = self._orders.get(key)
        if existing is not None:
            return self._modify(existing, req, inst)
        try:
            account = self._resolve_account(req.account)
            self._validate(client_id, req, inst, account, existing=None)
        except SimError as e:
            return [OrderError(req.order_id, client_id, e.code, e.text)]

        order = _order_from(req, client_id, inst, account, perm_id=self._new_perm_id())
        self._seq += 1
        self._orders[key] = order
        self._working[key] = _Working(seq=self._seq, held=not req.transmit)
        rule = self._inactive_rule_for(inst)
        if rule is not None:
            return self._inactivate(order, rule)
        if order.oca_group and (account, order.oca_group) in self._oca_fired:
            # Joining a one-cancels-all group after a member filled: TWS cancels on arrival.
            return [OrderChanged(_snap(order)), *self._cancel(order, by_client=False)]
        if not req.transmit:
            return [OrderChanged(_snap(order))]
        return self._release(order)

    def preview_order(self, client_id: int, req: PlaceOrderRequest, inst: Instrument) -> SimOrder:
        """The order a what-if request describes, for the openOrder that carries the preview."""
        account = req.account or (self.accounts[0] if len(self._accounts) == 1 else "")
        return _order_from(
            req, client_id, inst, account, perm_id=0, what_if=True, status="PreSubmitted"
        )

    def what_if(self, req: PlaceOrderRequest, inst: Instrument, client_id: int) -> WhatIfResult:
        """Margin and commission preview of ``req`` as if it filled completely now.

        Raises:
            SimError: the order would be rejected (same checks as :meth:`place`).
        """
        self._instruments.setdefault(inst.con_id, inst)
        account = self._resolve_account(req.account)
        self._validate(client_id, req, inst, account, existing=None, check_margin=False)
        price = self._estimate_price(req, inst)
        qty = float(req.total_quantity)
        signed = qty if _side(req.action) == "BUY" else -qty
        mult = inst.multiplier_value
        commission = self.commission.order_total(inst, qty, abs(qty * price * mult))
        before = self._figures(account)
        after = self._figures(account, trade=(inst, signed, price, commission))
        warning = ""
        if after.init_margin > after.equity_with_loan + _EPS and after.init_margin > (
            before.init_margin
        ):
            warning = "Insufficient equity with loan value to cover the initial margin."
        return WhatIfResult(
            init_margin_before=before.init_margin,
            maint_margin_before=before.maint_margin,
            equity_with_loan_before=before.equity_with_loan,
            init_margin_change=after.init_margin - before.init_margin,
            maint_margin_change=after.maint_margin - before.maint_margin,
            equity_with_loan_change=after.equity_with_loan - before.equity_with_loan,
            init_margin_after=after.init_margin,
            maint_margin_after=after.maint_margin,
            equity_with_loan_after=after.equity_with_loan,
            commission=commission,
            min_commission=UNSET_DOUBLE,
            max_commission=UNSET_DOUBLE,
            commission_currency=self.commission.currency(inst),
            warning_text=warning,
        )

    def cancel(self, client_id: int, order_id: int) -> list[Event]:
        """A cancelOrder from ``client_id``."""
        if self.readonly:
            return [OrderError(order_id, client_id, 321, READONLY_TEXT)]
        order = self._orders.get((client_id, order_id))
        if order is None:
            text = f"OrderId {order_id} that needs to be cancelled is not found."
            return [OrderError(order_id, client_id, 10147, text)]
        if not order.is_open:
            text = (
                "Cancel attempted when order is not in a cancellable state.  "
                f"Order permId ={order.perm_id}"
            )
            return [OrderError(order_id, client_id, 161, text)]
        return self._cancel(order, by_client=True)

    def global_cancel(self, client_id: int = -1) -> list[Event]:
        """reqGlobalCancel from ``client_id``: every order that is not done, of every client.

        ``client_id`` only addresses the read-only refusal to the requesting connection.
        """
        if self.readonly:
            return [OrderError(-1, client_id, 321, READONLY_TEXT)]
        events: list[Event] = []
        for order in list(self._orders.values()):
            if order.is_open:
                events += self._cancel(order, by_client=True)
        return events

    def inactivate_next(
        self,
        *,
        symbol: str = "",
        after: int = 0,
        code: int = INACTIVE_CODE,
        text: str = INACTIVE_TEXT,
        acknowledge: bool = True,
    ) -> None:
        """Make a coming new order ``Inactive`` instead of working it.

        Skips ``after`` new orders (of ``symbol`` only, when given), then hits the next one:
        it is acknowledged (``PreSubmitted``; left out with ``acknowledge=False``), gets error
        ``code`` with ``text`` addressed to its id, then reports ``Inactive``. Orders refused
        outright (validation) and modifications are not counted. Each call adds one rule; they
        count independently.

        Raises:
            ValueError: ``after`` is negative.
        """
        if after < 0:
            raise ValueError(f"after must be 0 or more, got {after!r}")
        self._inactive_rules.append(
            _InactiveRule(symbol.strip().upper(), after, code, text, acknowledge)
        )

    def on_quote(self, con_id: int) -> list[Event]:
        """The quote of ``con_id`` moved: trigger and fill the resting orders it now reaches."""
        events: list[Event] = []
        now = datetime.fromtimestamp(self._clock(), UTC)
        for order in list(self._orders.values()):
            if order.is_done or order.instrument.con_id != con_id:
                continue
            if order.tif == "GTD" and self._expired(order, now):
                events += self._cancel(order, by_client=False)
                continue
            events += self._try_fill(order)
        return events

    # -- account views ----------------------------------------------------------------------

    def portfolio(self, account: str) -> list[PortfolioItem]:
        """updatePortfolio rows: every position of ``account`` marked to the current quote."""
        out = []
        for (acct, _), p in self._positions.items():
            if acct != account:
                continue
            inst = p.instrument
            mark = self._mark(inst)
            value = p.quantity * mark * inst.multiplier_value
            out.append(
                PortfolioItem(
                    account=acct,
                    instrument=inst,
                    position=p.quantity,
                    market_price=mark,
                    market_value=value,
                    avg_cost=p.avg_cost,
                    unrealized_pnl=value - p.quantity * p.avg_cost,
                    realized_pnl=p.realized_pnl,
                )
            )
        return out

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        """updateAccountValue rows ``(key, value, currency)`` as TWS sends them.

        Account-wide figures carry the base currency; the ledger keys come once per currency
        and once more for the pseudo-currency ``BASE`` (all currencies converted).
        """
        fig = self._figures(account)
        rows: list[tuple[str, str, str]] = [
            ("AccountCode", account, ""),
            ("AccountReady", "true", ""),
            ("AccountType", "INDIVIDUAL", ""),
        ]
        summary = self._summary_values(fig)
        for tag in SUMMARY_TAGS:
            if tag in ("AccountType", "AccruedCash"):
                continue
            value, ccy = summary[tag]
            rows.append((tag, value, ccy))
        for ccy in ["BASE", *fig.currencies]:
            for tag, value in self._ledger(account, fig, ccy):
                rows.append((tag, value, ccy))
        return rows

    def account_summary(
        self, account: str, tags: Sequence[str] | str
    ) -> list[tuple[str, str, str]]:
        """reqAccountSummary rows ``(tag, value, currency)`` for the requested tags.

        ``$LEDGER`` gives the ledger tags converted to the base currency (currency ``BASE``),
        ``$LEDGER:ALL`` one block per currency plus ``BASE``, ``$LEDGER:EUR`` only that currency.
        """
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t.strip()]
        fig = self._figures(account)
        summary = self._summary_values(fig)
        rows: list[tuple[str, str, str]] = []
        seen: set[tuple[str, str]] = set()

        def add(tag: str, value: str, ccy: str) -> None:
            if (tag, ccy) not in seen:
                seen.add((tag, ccy))
                rows.append((tag, value, ccy))

        for raw in tags:
            tag = raw.strip()
            upper = tag.upper()
            if upper.startswith("$LEDGER"):
                _, _, which = upper.partition(":")
                if which == "":
                    ccys = ["BASE"]
                elif which == "ALL":
                    ccys = ["BASE", *fig.currencies]
                else:
                    ccys = [which] if which in fig.currencies or which == "BASE" else []
                for ccy in ccys:
                    for ltag, value in self._ledger(account, fig, ccy):
                        add(ltag, value, ccy)
            elif tag in summary:
                value, ccy = summary[tag]
                add(tag, value, ccy)
        return rows

    def pnl(self, account: str) -> tuple[float, float, float]:
        """``(daily, unrealized, realized)`` of ``account`` in its base currency."""
        base = self._accounts[account].base_currency
        daily = unrealized = realized = 0.0
        for (acct, _), p in self._positions.items():
            if acct != account:
                continue
            d, u, r, _ = self._position_pnl(p)
            rate = self._fx(p.instrument.currency, base)
            daily += d * rate
            unrealized += u * rate
            realized += r * rate
        return daily, unrealized, realized

    def pnl_single(
        self, account: str, con_id: int
    ) -> tuple[float, float, float, float, float] | None:
        """``(position, daily, unrealized, realized, value)`` of one position, or None."""
        p = self._positions.get((account, con_id))
        if p is None:
            return None
        daily, unrealized, realized, value = self._position_pnl(p)
        return p.quantity, daily, unrealized, realized, value

    # -- order lifecycle --------------------------------------------------------------------

    def _new_perm_id(self) -> int:
        self._next_perm_id += 1
        return self._next_perm_id

    def _resolve_account(self, account: str) -> str:
        if not account:
            if len(self._accounts) == 1:
                return next(iter(self._accounts))
            raise SimError(
                436, "You must specify an allocation (either a single account, group, or profile)."
            )
        for known in self._accounts:
            if known.upper() == account.upper():
                return known
        raise SimError(201, f"Order rejected - reason:Invalid account code {account}")

    def _validate(
        self,
        client_id: int,
        req: PlaceOrderRequest,
        inst: Instrument,
        account: str,
        existing: SimOrder | None,
        *,
        check_margin: bool = True,
    ) -> None:
        action = _side(req.action)
        if action not in ("BUY", "SELL"):
            raise SimError(201, f"Order rejected - reason:Invalid action {req.action!r}")
        if inst.sec_type == "IND":
            raise SimError(201, "Order rejected - reason:Indices are not tradable.")
        if req.total_quantity == 0:
            raise SimError(434, "The order size cannot be zero.")
        if req.total_quantity < 0:
            raise SimError(201, "Order rejected - reason:The order quantity must be positive.")
        if req.order_type not in _ORDER_TYPES or (
            inst.order_types and req.order_type not in inst.order_types
        ):
            raise SimError(387, "Unsupported order type for this exchange and security type.")
        if (req.tif or "DAY") not in _TIFS:
            raise SimError(201, f"Order rejected - reason:Invalid time in force {req.tif!r}.")
        if req.order_type in ("LMT", "STP LMT") and req.lmt_price is None:
            raise SimError(201, "Order rejected - reason:A limit price is required.")
        if req.order_type in ("STP", "STP LMT") and req.aux_price is None:
            raise SimError(201, "Order rejected - reason:A stop price is required.")
        for price in (req.lmt_price, req.aux_price):
            if price is not None and req.order_type != "MKT" and not _on_tick(price, inst):
                raise SimError(110, OFF_TICK_TEXT)
        if existing is not None:
            if inst.con_id != existing.instrument.con_id or action != existing.action:
                raise SimError(105, "Order being modified does not match the original order.")
            if req.total_quantity < existing.filled - _EPS:
                raise SimError(
                    201, "Order rejected - reason:The quantity is below the filled quantity."
                )
            return
        if req.parent_id:
            parent = self._orders.get((client_id, req.parent_id))
            if parent is None:
                raise SimError(
                    201, f"Order rejected - reason:Parent order {req.parent_id} is unknown."
                )
            if parent.is_done and parent.status != "Filled":
                raise SimError(201, "Order rejected - reason:Parent order is being cancelled.")
        if check_margin:
            price = self._estimate_price(req, inst)
            qty = float(req.total_quantity)
            signed = qty if action == "BUY" else -qty
            commission = self.commission.order_total(
                inst, qty, abs(qty * price * inst.multiplier_value)
            )
            before = self._figures(account)
            after = self._figures(account, trade=(inst, signed, price, commission))
            if after.init_margin > before.init_margin and (
                after.init_margin > after.equity_with_loan + _EPS
            ):
                ccy = before.base
                raise SimError(
                    201,
                    "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
                    f"DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [{after.equity_with_loan:.2f} "
                    f"{ccy}] MUST EXCEED THE INITIAL MARGIN [{after.init_margin:.2f} {ccy}]",
                )

    def _modify(self, order: SimOrder, req: PlaceOrderRequest, inst: Instrument) -> list[Event]:
        cid, oid = order.client_id, order.order_id
        if order.is_done:
            if order.status == "Filled":
                return [OrderError(oid, cid, 104, "Can't modify a filled order.")]
            return [OrderError(oid, cid, 103, "Duplicate order id")]
        try:
            self._validate(cid, req, inst, order.account, existing=order, check_margin=False)
        except SimError as e:
            return [OrderError(oid, cid, e.code, e.text)]
        if req.order_type != order.order_type or req.aux_price != order.aux_price:
            order.triggered = False
        order.total_quantity = float(req.total_quantity)
        order.order_type = req.order_type
        order.lmt_price = req.lmt_price
        order.aux_price = req.aux_price
        order.tif = req.tif or "DAY"
        order.outside_rth = req.outside_rth
        order.good_till_date = req.good_till_date
        order.order_ref = req.order_ref
        order.transmit = req.transmit
        work = self._working[(cid, oid)]
        if work.held:
            if req.transmit:
                return self._release(order)
            return [OrderChanged(_snap(order))]
        if order.remaining <= _EPS:
            # The new size equals what has already filled: the order is complete.
            self._finish(order, "Filled", "Filled")
            return [OrderChanged(_snap(order)), *self._after_fill(order, 0.0)]
        self._set_resting_status(order)
        events: list[Event] = [OrderChanged(_snap(order))]
        events += self._try_fill(order)
        events += self._time_in_force(order)
        return events

    def _release(self, order: SimOrder) -> list[Event]:
        """Send ``order`` live together with the held members of its bracket."""
        cid = order.client_id
        root_id = order.parent_id or order.order_id
        group: list[SimOrder] = []
        for (ocid, _), o in self._orders.items():
            if ocid != cid or o.is_done:
                continue
            if o is order or (
                self._working[(ocid, o.order_id)].held
                and (o.order_id == root_id or o.parent_id == root_id)
            ):
                group.append(o)
        events: list[Event] = []
        for o in group:
            self._working[(cid, o.order_id)].held = False
            o.transmit = True
            o.status = "PreSubmitted"
            events.append(OrderChanged(_snap(o)))
            if self._set_resting_status(o):
                events.append(OrderChanged(_snap(o)))
        for o in group:
            if not o.is_done:
                events += self._try_fill(o)
                events += self._time_in_force(o)
        return events

    def _set_resting_status(self, order: SimOrder) -> bool:
        """PreSubmitted while waiting (parent unfilled, stop untriggered), else Submitted.

        Returns whether the status changed.
        """
        waiting = not self._parent_filled(order) or (
            order.order_type in ("STP", "STP LMT") and not order.triggered
        )
        if self.enforce_market_hours and not self._session_open(order):
            waiting = True
        status = "PreSubmitted" if waiting else "Submitted"
        changed = status != order.status
        order.status = status
        return changed

    def _parent_filled(self, order: SimOrder) -> bool:
        if not order.parent_id:
            return True
        parent = self._orders.get((order.client_id, order.parent_id))
        return parent is None or parent.status == "Filled"

    def _is_active(self, order: SimOrder) -> bool:
        if order.is_done or self._working[(order.client_id, order.order_id)].held:
            return False
        return self._parent_filled(order)

    def _try_fill(self, order: SimOrder) -> list[Event]:
        if not self._is_active(order):
            return []
        if self.enforce_market_hours and not self._session_open(order):
            return []
        q = self._market.quote(order.instrument.con_id)
        if q.halted:
            return []
        events: list[Event] = []
        if order.order_type in ("STP", "STP LMT") and not order.triggered:
            ref = _trigger_reference(q)
            stop = order.aux_price
            if ref is None or stop is None:
                return []
            hit = ref >= stop - _EPS if order.action == "BUY" else ref <= stop + _EPS
            if not hit:
                return []
            order.triggered = True
            order.status = "Submitted"
            events.append(OrderChanged(_snap(order)))
        elif order.status != "Submitted":
            order.status = "Submitted"
            events.append(OrderChanged(_snap(order)))
        price = self._fill_price(order, q)
        if price is None:
            return events
        qty = order.remaining
        if self.partial_fill_clip is not None and order.tif != "FOK":
            qty = min(qty, self.partial_fill_clip)
        if qty <= _EPS:
            return events
        events += self._fill(order, qty, price)
        return events

    def _fill_price(self, order: SimOrder, q: QuoteState) -> float | None:
        buy = order.action == "BUY"
        far = q.ask if buy else q.bid
        if not far or far <= 0 or not math.isfinite(far):
            return None
        if order.order_type in ("MKT", "STP"):
            return far
        limit = order.lmt_price
        if limit is None:
            return None
        if buy and far <= limit + _EPS:
            return far
        if not buy and far >= limit - _EPS:
            return far
        return None

    def _time_in_force(self, order: SimOrder) -> list[Event]:
        """IOC and FOK orders do not rest: whatever did not fill at once is cancelled."""
        if order.is_done or order.tif not in ("IOC", "FOK"):
            return []
        if not self._is_active(order):
            return []
        return self._cancel(order, by_client=False)

    def _fill(self, order: SimOrder, qty: float, price: float) -> list[Event]:
        key = (order.client_id, order.order_id)
        work = self._working[key]
        inst = order.instrument
        mult = inst.multiplier_value
        prev = order.filled
        order.filled = prev + qty
        order.avg_fill_price = (order.avg_fill_price * prev + price * qty) / order.filled
        order.last_fill_price = price
        work.value_filled += abs(qty * price * mult)
        total = self.commission.order_total(inst, order.filled, work.value_filled)
        commission = max(round(total - work.commission_charged, 4), 0.0)
        work.commission_charged += commission
        signed = qty if order.action == "BUY" else -qty
        realized = self._book_fill(order.account, inst, signed, price, commission)
        execution = SimExecution(
            exec_id=self._new_exec_id(),
            order_id=order.order_id,
            client_id=order.client_id,
            perm_id=order.perm_id,
            account=order.account,
            order_ref=order.order_ref,
            instrument=inst,
            time=datetime.fromtimestamp(self._clock(), UTC),
            side="BOT" if order.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            commission=commission,
            commission_currency=self.commission.currency(inst),
            realized_pnl=realized,
        )
        self._executions.append(execution)
        if order.remaining <= _EPS:
            self._finish(order, "Filled", "Filled")
        pos = self._positions[(order.account, inst.con_id)]
        events: list[Event] = [
            Executed(execution),
            OrderChanged(_snap(order)),
            Commission(execution),
            PositionChanged(order.account, inst, dataclasses.replace(pos)),
            AccountChanged(order.account),
        ]
        events += self._after_fill(order, qty)
        return events

    def _after_fill(self, order: SimOrder, qty: float) -> list[Event]:
        """OCA siblings react to the fill; a filled parent releases its children."""
        events: list[Event] = []
        if order.oca_group and qty > 0 and (order.oca_type or 1) == 1:
            self._oca_fired.add((order.account, order.oca_group))
        for sibling, oca_type in self._oca_siblings(order):
            if sibling.is_done:
                continue
            if oca_type == 1:
                events += self._cancel(sibling, by_client=False)
                continue
            if qty <= 0:
                continue
            sibling.total_quantity = max(sibling.total_quantity - qty, sibling.filled)
            if sibling.remaining <= _EPS:
                events += self._cancel(sibling, by_client=False)
            else:
                events.append(OrderChanged(_snap(sibling)))
        if order.status == "Filled":
            children = [
                o
                for (cid, _), o in self._orders.items()
                if cid == order.client_id and o.parent_id == order.order_id and not o.is_done
            ]
            for child in children:
                if self._working[(child.client_id, child.order_id)].held:
                    continue
                if self._set_resting_status(child):
                    events.append(OrderChanged(_snap(child)))
            for child in children:
                if not child.is_done:
                    events += self._try_fill(child)
        return events

    def _oca_siblings(self, order: SimOrder) -> Iterable[tuple[SimOrder, int]]:
        for (cid, _), other in self._orders.items():
            if other is order or other.is_done:
                continue
            if (
                order.oca_group
                and other.oca_group == order.oca_group
                and (other.account == order.account)
            ):
                yield other, order.oca_type or 1
            elif order.parent_id and cid == order.client_id and other.parent_id == order.parent_id:
                yield other, 3

    def correct_execution(
        self, exec_id: str, *, price: float | None = None, quantity: float | None = None
    ) -> tuple[SimExecution, list[Event]]:
        """TWS corrects an execution: same id with its last part raised, new price or size.

        The corrected execution replaces the original in the day's record (reqExecutions
        reports only it), the order's filled quantity and average price follow, and the
        position, cash and PnL move by exactly what the correction changes. The commission is
        re-priced for the order's corrected totals. A correction that completes a working order
        fills it; one that lowers a filled order's size leaves its status alone.

        Returns the corrected execution and the events to send (execDetails, commissionReport,
        then the position and account pushes).

        Raises:
            ValueError: ``exec_id`` is unknown (or was already replaced by a correction), the
                new price or quantity is not a positive number, or the new quantity would fill
                more than the order's size.
        """
        index = next((i for i, ex in enumerate(self._executions) if ex.exec_id == exec_id), None)
        if index is None:
            superseded = _exec_base(exec_id) in {_exec_base(ex.exec_id) for ex in self._executions}
            why = "it was already replaced by a correction" if superseded else "no such execution"
            raise ValueError(f"cannot correct execution {exec_id!r}: {why}")
        old = self._executions[index]
        new_price = old.price if price is None else float(price)
        new_qty = old.shares if quantity is None else float(quantity)
        for value, what in ((new_price, "price"), (new_qty, "quantity")):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"a corrected {what} must be a positive number, got {value!r}")
        key = (old.client_id, old.order_id)
        order = self._orders[key]
        filled = order.filled - old.shares + new_qty
        if filled > order.total_quantity + _EPS:
            raise ValueError(
                f"a quantity of {new_qty:g} would fill {filled:g} of order {order.order_id}, "
                f"which is for {order.total_quantity:g}"
            )
        inst = old.instrument
        mult = inst.multiplier_value
        work = self._working[key]
        work.value_filled += abs(new_qty * new_price * mult) - abs(old.shares * old.price * mult)
        total = self.commission.order_total(inst, filled, work.value_filled)
        commission = max(round(old.commission + total - work.commission_charged, 4), 0.0)
        work.commission_charged += commission - old.commission

        same_order = [
            i
            for i, ex in enumerate(self._executions)
            if (ex.client_id, ex.order_id) == key and i != index
        ]
        earlier = [self._executions[i] for i in same_order if i < index]
        cum_qty = sum(ex.shares for ex in earlier) + new_qty
        cum_value = sum(ex.shares * ex.price for ex in earlier) + new_qty * new_price
        corrected = dataclasses.replace(
            old,
            exec_id=_next_revision(old.exec_id),
            shares=new_qty,
            price=new_price,
            cum_qty=cum_qty,
            avg_price=cum_value / cum_qty,
            commission=commission,
        )
        self._executions[index] = corrected
        realized = self._rebook(old, corrected)
        corrected = dataclasses.replace(corrected, realized_pnl=realized)
        self._executions[index] = corrected

        mine = [self._executions[i] for i in sorted([*same_order, index])]
        order.filled = sum(ex.shares for ex in mine)
        order.avg_fill_price = sum(ex.shares * ex.price for ex in mine) / order.filled
        order.last_fill_price = mine[-1].price
        pos = self._positions[(old.account, inst.con_id)]
        events: list[Event] = [
            Executed(corrected),
            Commission(corrected),
            PositionChanged(old.account, inst, dataclasses.replace(pos)),
            AccountChanged(old.account),
        ]
        if not order.is_done and order.remaining <= _EPS:
            self._finish(order, "Filled", "Filled")
            events += [OrderChanged(_snap(order)), *self._after_fill(order, 0.0)]
        return corrected, events

    def _rebook(self, old: SimExecution, new: SimExecution) -> float | None:
        """Move position, cash and PnL from ``old`` to ``new`` (already in the record).

        Returns the realized PnL of ``new`` as the replay found it.
        """
        account, inst = old.account, old.instrument
        key = (account, inst.con_id)
        opening = self._opening.get(key)
        replay = dataclasses.replace(opening) if opening else SimPosition(account, inst, 0.0, 0.0)
        realized: float | None = None
        for ex in self._executions:
            if ex.account != account or ex.instrument.con_id != inst.con_id:
                continue
            unit = ex.price * ex.instrument.multiplier_value
            booked = _apply_fill(replay, _signed(ex), unit, ex.commission)
            if ex is new:
                realized = booked
        pos = self._positions[key]
        realized_change = replay.realized_pnl - pos.realized_pnl
        pos.quantity, pos.avg_cost, pos.realized_pnl = (
            replay.quantity,
            replay.avg_cost,
            replay.realized_pnl,
        )

        mult = inst.multiplier_value
        old_flow = _signed(old) * old.price * mult
        new_flow = _signed(new) * new.price * mult
        cash = self._cash[account]
        if inst.sec_type in ("FUT", "FOP"):
            cash[inst.currency] = cash.get(inst.currency, 0.0) + realized_change
        else:
            if inst.sec_type == "CASH":
                cash[inst.symbol] = cash.get(inst.symbol, 0.0) + _signed(new) - _signed(old)
            cash[inst.currency] = cash.get(inst.currency, 0.0) - (new_flow - old_flow)
            comm_ccy = self.commission.currency(inst)
            cash[comm_ccy] = cash.get(comm_ccy, 0.0) - (new.commission - old.commission)
        self._day_flow[key] = (
            self._day_flow.get(key, 0.0) + new_flow + new.commission - old_flow - old.commission
        )
        acct = self._accounts[account]
        acct.cash = cash.get(acct.base_currency, 0.0)
        acct.realized_pnl += realized_change * self._fx(inst.currency, acct.base_currency)
        return realized

    def _inactive_rule_for(self, inst: Instrument) -> _InactiveRule | None:
        """The rule that makes this new order Inactive (removed), counting it for the others."""
        hit: _InactiveRule | None = None
        for rule in list(self._inactive_rules):
            if rule.symbol and rule.symbol != inst.symbol.upper():
                continue
            if rule.skip == 0 and hit is None:
                hit = rule
                self._inactive_rules.remove(rule)
            elif rule.skip > 0:
                rule.skip -= 1
        return hit

    def _inactivate(self, order: SimOrder, rule: _InactiveRule) -> list[Event]:
        # TWS acknowledges the order before the check that refuses it, then sends the reason
        # and the Inactive status: the sequence ib_insync#554 logged from a real TWS. Other
        # logs (thetagang#709) show the reason first, before any acknowledgement.
        events: list[Event] = []
        if rule.acknowledge:
            order.status = "PreSubmitted"
            events.append(OrderChanged(_snap(order)))
        events.append(OrderError(order.order_id, order.client_id, rule.code, rule.text))
        order.status = "Inactive"
        events.append(OrderChanged(_snap(order)))
        return events

    def _cancel(self, order: SimOrder, *, by_client: bool) -> list[Event]:
        self._finish(order, "Cancelled", "Cancelled by Trader" if by_client else "Cancelled")
        events: list[Event] = [OrderChanged(_snap(order))]
        if by_client:
            events.append(OrderError(order.order_id, order.client_id, 202, CANCELED_TEXT))
        # Cancelling a parent takes its unfilled children with it.
        for (cid, _), child in list(self._orders.items()):
            if cid == order.client_id and child.parent_id == order.order_id and not child.is_done:
                events += self._cancel(child, by_client=by_client)
        return events

    def _finish(self, order: SimOrder, status: str, completed_status: str) -> None:
        order.status = status
        order.completed_status = completed_status
        order.completed_time = format_exec_time(datetime.fromtimestamp(self._clock(), UTC))
        self._working[(order.client_id, order.order_id)].held = False

    def _expired(self, order: SimOrder, now: datetime) -> bool:
        until = _parse_ib_time(order.good_till_date)
        return until is not None and now >= until

    def _new_exec_id(self) -> str:
        self._exec_counter += 1
        return f"{self._exec_prefix:08x}.{self._exec_counter & 0xFFFFFFFF:08x}.01.01"

    def _estimate_price(self, req: PlaceOrderRequest, inst: Instrument) -> float:
        if req.order_type in ("LMT", "STP LMT") and req.lmt_price is not None:
            return req.lmt_price
        if req.order_type == "STP" and req.aux_price is not None:
            return req.aux_price
        q = self._market.quote(inst.con_id)
        far = q.ask if _side(req.action) == "BUY" else q.bid
        return far if far and far > 0 else self._mark(inst)

    def _session_open(self, order: SimOrder) -> bool:
        inst = order.instrument
        try:
            tz = ZoneInfo(inst.time_zone)
        except (KeyError, ValueError):
            tz = ZoneInfo("UTC")
        local = datetime.fromtimestamp(self._clock(), tz)
        start, end = inst.eth if order.outside_rth else inst.rth
        hhmm = local.strftime("%H%M")
        if start <= end:
            return local.weekday() < 5 and start <= hhmm < end
        # A session crossing midnight belongs to the day on which it ends.
        day = local + timedelta(days=1) if hhmm >= start else local
        return day.weekday() < 5 and (hhmm >= start or hhmm < end)

    # -- bookkeeping ----------------------------------------------------------------------

    def _book_fill(
        self, account: str, inst: Instrument, signed: float, price: float, commission: float
    ) -> float | None:
        """Update position and cash for one fill; returns the realized PnL, None if opening."""
        key = (account, inst.con_id)
        pos = self._positions.get(key)
        if pos is None:
            pos = SimPosition(account, inst, 0.0, 0.0)
            self._positions[key] = pos
            self._start_qty.setdefault(key, 0.0)
        unit = price * inst.multiplier_value
        realized = _apply_fill(pos, signed, unit, commission)

        cash = self._cash[account]
        comm_ccy = self.commission.currency(inst)
        if inst.sec_type in ("FUT", "FOP"):
            # Futures settle variation margin, not the contract value: only PnL moves cash, and
            # an opening commission sits in the average cost until the position closes.
            if realized is not None:
                cash[inst.currency] = cash.get(inst.currency, 0.0) + realized
        else:
            if inst.sec_type == "CASH":
                cash[inst.symbol] = cash.get(inst.symbol, 0.0) + signed
            cash[inst.currency] = cash.get(inst.currency, 0.0) - signed * unit
            cash[comm_ccy] = cash.get(comm_ccy, 0.0) - commission
        self._day_flow[key] = self._day_flow.get(key, 0.0) + signed * unit + commission

        acct = self._accounts[account]
        acct.cash = cash.get(acct.base_currency, 0.0)
        if realized is not None:
            acct.realized_pnl += realized * self._fx(inst.currency, acct.base_currency)
        return realized

    def _mark(self, inst: Instrument) -> float:
        q = self._market.quote(inst.con_id)
        if q.last and q.last > 0:
            return q.last
        if q.bid > 0 and q.ask > 0:
            return (q.bid + q.ask) / 2
        return q.close if q.close > 0 else 0.0

    def _fx(self, ccy: str, base: str) -> float:
        """Units of ``base`` per unit of ``ccy``, from the universe's forex pairs."""
        if ccy in ("", base):
            return 1.0
        for inst in self._instruments.values():
            if inst.sec_type != "CASH":
                continue
            if inst.symbol == ccy and inst.currency == base:
                rate = self._mark(inst)
                return rate if rate > 0 else 1.0
            if inst.symbol == base and inst.currency == ccy:
                rate = self._mark(inst)
                return 1.0 / rate if rate > 0 else 1.0
        return 1.0

    def _position_pnl(self, p: SimPosition) -> tuple[float, float, float, float]:
        """``(daily, unrealized, realized, value)`` in the instrument's currency."""
        inst = p.instrument
        key = (p.account, inst.con_id)
        mult = inst.multiplier_value
        mark = self._mark(inst)
        close = self._market.quote(inst.con_id).close
        if close <= 0:
            close = mark
        value = p.quantity * mark * mult
        start_value = self._start_qty.get(key, 0.0) * close * mult
        daily = value - start_value - self._day_flow.get(key, 0.0)
        unrealized = value - p.quantity * p.avg_cost
        return daily, unrealized, p.realized_pnl, value

    def _figures(
        self,
        account: str,
        trade: tuple[Instrument, float, float, float] | None = None,
    ) -> _Figures:
        """Account figures now, or after a hypothetical ``(inst, signed qty, price, fee)``."""
        acct = self._accounts[account]
        base = acct.base_currency
        cash = dict(self._cash[account])
        holdings: dict[int, tuple[Instrument, float, float, float]] = {
            con_id: (p.instrument, p.quantity, p.avg_cost, p.realized_pnl)
            for (a, con_id), p in self._positions.items()
            if a == account
        }
        if trade is not None:
            inst, signed, price, commission = trade
            mult = inst.multiplier_value
            _, qty, avg, realized = holdings.get(inst.con_id, (inst, 0.0, 0.0, 0.0))
            new_qty = qty + signed
            if _same_sign(qty, signed) or qty == 0:
                avg = (abs(qty) * avg + abs(signed) * price * mult) / abs(new_qty)
            elif abs(new_qty) > _EPS and not _same_sign(new_qty, qty):
                avg = price * mult
            holdings[inst.con_id] = (inst, new_qty, avg, realized)
            ccy = self.commission.currency(inst)
            if inst.sec_type not in ("FUT", "FOP"):
                if inst.sec_type == "CASH":
                    cash[inst.symbol] = cash.get(inst.symbol, 0.0) + signed
                cash[inst.currency] = cash.get(inst.currency, 0.0) - signed * price * mult
            cash[ccy] = cash.get(ccy, 0.0) - commission

        fig = _Figures(
            base=base,
            cash=cash,
            stock={},
            option={},
            futures_pnl={},
            unrealized={},
            realized={},
            rates={},
        )
        for inst, qty, avg, realized in holdings.values():
            ccy = inst.currency
            mult = inst.multiplier_value
            value = qty * self._mark(inst) * mult
            fig.unrealized[ccy] = fig.unrealized.get(ccy, 0.0) + (value - qty * avg if qty else 0.0)
            fig.realized[ccy] = fig.realized.get(ccy, 0.0) + realized
            rate = self._fx(ccy, base)
            st = inst.sec_type
            if st in ("FUT", "FOP"):
                fig.futures_pnl[ccy] = fig.futures_pnl.get(ccy, 0.0) + value - qty * avg
                notional = abs(value) * rate
            elif st == "CASH":
                notional = abs(value) * rate
            elif st == "OPT":
                fig.option[ccy] = fig.option.get(ccy, 0.0) + value
                fig.gross_position_value += abs(value) * rate
                # Long options are paid in full and need no margin; a short one needs its value
                # plus a fifth of the underlying's notional.
                if qty < 0:
                    need = abs(value) + _SHORT_OPTION_RATE * abs(qty) * inst.strike * mult
                    fig.init_margin += need * rate
                    fig.maint_margin += need * rate
                continue
            else:
                fig.stock[ccy] = fig.stock.get(ccy, 0.0) + value
                fig.gross_position_value += abs(value) * rate
                notional = abs(value) * rate
            kind = st if st in _INIT_RATE else "STK"
            fig.init_margin += notional * _INIT_RATE[kind]
            fig.maint_margin += notional * _MAINT_RATE[kind]
        for ccy in fig.currencies:
            fig.rates[ccy] = self._fx(ccy, base)
        return fig

    def _summary_values(self, fig: _Figures) -> dict[str, tuple[str, str]]:
        base = fig.base
        nlv = fig.net_liquidation
        elv = fig.equity_with_loan
        available = elv - fig.init_margin
        excess = elv - fig.maint_margin
        money = {
            "NetLiquidation": nlv,
            "TotalCashValue": fig.total_cash,
            "SettledCash": fig.total_cash,
            "AccruedCash": 0.0,
            "BuyingPower": max(available, 0.0) * _BUYING_POWER_FACTOR,
            "EquityWithLoanValue": elv,
            "PreviousDayEquityWithLoanValue": elv,
            "GrossPositionValue": fig.gross_position_value,
            "RegTEquity": elv,
            "RegTMargin": fig.init_margin,
            "SMA": max(available, 0.0),
            "InitMarginReq": fig.init_margin,
            "MaintMarginReq": fig.maint_margin,
            "AvailableFunds": available,
            "ExcessLiquidity": excess,
            "FullInitMarginReq": fig.init_margin,
            "FullMaintMarginReq": fig.maint_margin,
            "FullAvailableFunds": available,
            "FullExcessLiquidity": excess,
            "LookAheadInitMarginReq": fig.init_margin,
            "LookAheadMaintMarginReq": fig.maint_margin,
            "LookAheadAvailableFunds": available,
            "LookAheadExcessLiquidity": excess,
        }
        out = {tag: (_money(v), base) for tag, v in money.items()}
        out["AccountType"] = ("INDIVIDUAL", "")
        out["Cushion"] = (f"{excess / nlv:.6f}" if nlv else "0", "")
        out["LookAheadNextChange"] = ("0", "")
        out["HighestSeverity"] = ("0", "")
        out["DayTradesRemaining"] = ("-1", "")
        out["Leverage"] = (f"{fig.gross_position_value / nlv:.2f}" if nlv else "0.00", "")
        return out

    def _ledger(self, account: str, fig: _Figures, ccy: str) -> list[tuple[str, str]]:
        """The ledger tags of one currency, or of ``BASE`` (all currencies converted)."""
        is_base = ccy == "BASE"

        def get(table: dict[str, float]) -> float:
            return fig.total(table) if is_base else table.get(ccy, 0.0)

        net_liq = fig.net_liquidation if is_base else fig.net_liq_in(ccy)
        rate = 1.0 if is_base else fig.rates.get(ccy, self._fx(ccy, fig.base))
        real = fig.base if is_base else ccy
        cash = get(fig.cash)
        values = {
            "CashBalance": _money(cash),
            "TotalCashBalance": _money(cash),
            "AccruedCash": "0.00",
            "StockMarketValue": _money(get(fig.stock)),
            "OptionMarketValue": _money(get(fig.option)),
            "FutureOptionValue": "0.00",
            "FuturesPNL": _money(get(fig.futures_pnl)),
            "NetLiquidationByCurrency": _money(net_liq),
            "UnrealizedPnL": _money(get(fig.unrealized)),
            "RealizedPnL": _money(get(fig.realized)),
            "ExchangeRate": _rate_text(rate),
            "FundValue": "0.00",
            "NetDividend": "0.00",
            "MutualFundValue": "0.00",
            "MoneyMarketFundValue": "0.00",
            "CorporateBondValue": "0.00",
            "TBondValue": "0.00",
            "TBillValue": "0.00",
            "WarrantValue": "0.00",
            "FxCashBalance": "0.00",
            "AccountOrGroup": account,
            "RealCurrency": real,
            "IssuerOptionValue": "0.00",
            "Currency": ccy,
        }
        return [(tag, values[tag]) for tag in LEDGER_TAGS]


# ---------------------------------------------------------------------------------------------
# Helpers


def _order_from(
    req: PlaceOrderRequest,
    client_id: int,
    inst: Instrument,
    account: str,
    *,
    perm_id: int,
    what_if: bool = False,
    status: str = "PendingSubmit",
) -> SimOrder:
    """The order a placeOrder describes, as the broker books it (or previews it)."""
    return SimOrder(
        order_id=req.order_id,
        client_id=client_id,
        perm_id=perm_id,
        account=account,
        instrument=inst,
        action=_side(req.action),
        total_quantity=float(req.total_quantity),
        order_type=req.order_type,
        lmt_price=req.lmt_price,
        aux_price=req.aux_price,
        tif=req.tif or "DAY",
        oca_group=req.oca_group,
        oca_type=req.oca_type,
        order_ref=req.order_ref,
        transmit=req.transmit,
        parent_id=req.parent_id,
        outside_rth=req.outside_rth,
        good_till_date=req.good_till_date,
        what_if=what_if,
        status=status,
    )


def _snap(order: SimOrder) -> SimOrder:
    return dataclasses.replace(order)


def _side(action: str) -> str:
    a = action.strip().upper()
    return {"SSHORT": "SELL", "SLONG": "BUY"}.get(a, a)


def _on_tick(price: float, inst: Instrument) -> bool:
    tick = inst.min_tick
    if tick <= 0:
        return True
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def _trigger_reference(q: QuoteState) -> float | None:
    """Stops trigger on the last trade, or on the midpoint where nothing trades (forex)."""
    if q.last and q.last > 0:
        return q.last
    if q.bid > 0 and q.ask > 0:
        return (q.bid + q.ask) / 2
    return None
