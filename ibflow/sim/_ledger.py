"""The simulated broker's ledger: positions, cash, FX, margin and PnL of its accounts.

The order side (:mod:`._broker`) books each fill here; everything clients read about an account
(portfolio rows, account values and summary tags, PnL) is computed here from the positions and
the current quotes. Pure: no I/O, no asyncio.

Cash moves by the trade's full value for stocks, options and forex; futures move cash only by
realized PnL. Average cost includes the commission, as IB reports it. There is no trading-day
rollover: "today" is the ledger's lifetime, and daily PnL is measured from each instrument's
previous close (``QuoteState.close``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from ._codec import UNSET_DOUBLE
from ._layouts import PortfolioItem
from ._model import (
    Instrument,
    QuoteState,
    SimAccount,
    SimError,
    SimExecution,
    SimPosition,
    WhatIfResult,
)

__all__ = [
    "LEDGER_TAGS",
    "SUMMARY_TAGS",
    "CommissionModel",
    "Figures",
    "Ledger",
    "MarketLike",
    "Trade",
]

EPS = 1e-9
_PLACES = Decimal("1e-8")

# A hypothetical fill for margin previews: (instrument, signed quantity, price, commission).
Trade = tuple[Instrument, float, float, float]

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


@dataclass(slots=True)
class Figures:
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


def _same_sign(a: float | Decimal, b: float | Decimal) -> bool:
    return (a > 0 and b > 0) or (a < 0 and b < 0)


def dec(x: float) -> Decimal:
    """``x`` as the decimal it was written as (``192.06``, not its binary neighbour)."""
    return Decimal(repr(x))


def tidy(x: Decimal | float) -> float:
    """``x`` to 8 decimal places, so no binary-float drift (``192.05999999999997``) reaches the
    wire."""
    d = x if isinstance(x, Decimal) else Decimal(repr(x))
    return float(d.quantize(_PLACES)) if d.is_finite() else float(d)


def _apply_fill(pos: SimPosition, signed: float, unit: Decimal, commission: float) -> float | None:
    """Move ``pos`` by one fill of ``signed`` at ``unit`` (price × multiplier), in decimals.

    Returns the realized PnL, or None when the fill only opens or adds. Average cost includes
    the commission, as IB reports it.
    """
    old, qty, fee, avg = dec(pos.quantity), dec(signed), dec(commission), dec(pos.avg_cost)
    new = old + qty
    realized: float | None = None
    if old == 0 or _same_sign(old, qty):
        # Commission raises a long's cost and lowers a short's proceeds.
        cost = abs(old) * avg + abs(qty) * unit + (fee if new > 0 else -fee)
        pos.avg_cost = tidy(cost / abs(new))
    else:
        closing = min(abs(qty), abs(old))
        opening = abs(qty) - closing
        close_fee = fee * closing / abs(qty)
        open_fee = fee - close_fee
        direction = 1 if old > 0 else -1
        booked = direction * (unit - avg) * closing - close_fee
        realized = tidy(booked)
        pos.realized_pnl = tidy(dec(pos.realized_pnl) + booked)
        if opening > EPS:
            pos.avg_cost = tidy((opening * unit + (open_fee if new > 0 else -open_fee)) / opening)
        elif abs(new) <= EPS:
            pos.avg_cost = 0.0
            new = Decimal(0)
    pos.quantity = tidy(new)
    return realized


def unit_value(price: float, inst: Instrument) -> Decimal:
    """What one unit of ``inst`` at ``price`` is worth: price × multiplier, exactly."""
    return dec(price) * Decimal(inst.multiplier or "1")


def _signed(ex: SimExecution) -> float:
    return ex.shares if ex.side == "BOT" else -ex.shares


# ---------------------------------------------------------------------------------------------
# The ledger


class Ledger:
    """Accounts, cash and positions of one simulated TWS, marked to ``market``."""

    def __init__(
        self,
        accounts: Sequence[SimAccount],
        positions: Sequence[SimPosition],
        market: MarketLike,
        *,
        commission: CommissionModel,
        instruments: Sequence[Instrument] = (),
    ) -> None:
        if not accounts:
            raise ValueError("the broker needs at least one account")
        self._market = market
        self.commission = commission
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

    # -- reading ---------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    def know(self, inst: Instrument) -> None:
        """Remember ``inst``: forex pairs among them give the exchange rates."""
        self._instruments.setdefault(inst.con_id, inst)

    def cash(self, account: str) -> dict[str, float]:
        """Cash balances of ``account`` by currency."""
        return dict(self._cash[account])

    def positions(self, account: str | None = None) -> list[SimPosition]:
        """Snapshots of the positions (closed ones stay, with quantity 0, as TWS reports them)."""
        return [
            dataclasses.replace(p)
            for (acct, _), p in self._positions.items()
            if account is None or acct == account
        ]

    def position(self, account: str, con_id: int) -> SimPosition:
        """The live position record (it exists once anything was booked for it)."""
        return self._positions[(account, con_id)]

    def resolve_account(self, account: str) -> str:
        """The account an order names (any case), or the only one; SimError as TWS words it."""
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

    # -- account views ----------------------------------------------------------------------

    def portfolio(self, account: str) -> list[PortfolioItem]:
        """updatePortfolio rows: every position of ``account`` marked to the current quote."""
        out = []
        for (acct, _), p in self._positions.items():
            if acct != account:
                continue
            inst = p.instrument
            mark = self.mark(inst)
            value = p.quantity * mark * inst.multiplier_value
            out.append(
                PortfolioItem(
                    account=acct,
                    instrument=inst,
                    position=p.quantity,
                    market_price=mark,
                    market_value=tidy(value),
                    avg_cost=p.avg_cost,
                    unrealized_pnl=tidy(value - p.quantity * p.avg_cost),
                    realized_pnl=p.realized_pnl,
                )
            )
        return out

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        """updateAccountValue rows ``(key, value, currency)`` as TWS sends them.

        Account-wide figures carry the base currency; the ledger keys come once per currency
        and once more for the pseudo-currency ``BASE`` (all currencies converted).
        """
        fig = self.figures(account)
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
            for tag, value in self._ledger_rows(account, fig, ccy):
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
        fig = self.figures(account)
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
                    for ltag, value in self._ledger_rows(account, fig, ccy):
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
            rate = self.fx(p.instrument.currency, base)
            daily += d * rate
            unrealized += u * rate
            realized += r * rate
        return tidy(daily), tidy(unrealized), tidy(realized)

    def pnl_single(
        self, account: str, con_id: int
    ) -> tuple[float, float, float, float, float] | None:
        """``(position, daily, unrealized, realized, value)`` of one position, or None."""
        p = self._positions.get((account, con_id))
        if p is None:
            return None
        daily, unrealized, realized, value = self._position_pnl(p)
        return p.quantity, daily, unrealized, realized, value

    # -- booking -------------------------------------------------------------------------

    def book_fill(
        self, account: str, inst: Instrument, signed: float, price: float, commission: float
    ) -> float | None:
        """Update position and cash for one fill; returns the realized PnL, None if opening."""
        key = (account, inst.con_id)
        pos = self._positions.get(key)
        if pos is None:
            pos = SimPosition(account, inst, 0.0, 0.0)
            self._positions[key] = pos
            self._start_qty.setdefault(key, 0.0)
        unit = unit_value(price, inst)
        realized = _apply_fill(pos, signed, unit, commission)

        cash = self._cash[account]

        def move(ccy: str, amount: Decimal) -> None:
            cash[ccy] = tidy(dec(cash.get(ccy, 0.0)) + amount)

        if inst.sec_type in ("FUT", "FOP"):
            # Futures settle variation margin, not the contract value: only PnL moves cash, and
            # an opening commission sits in the average cost until the position closes.
            if realized is not None:
                move(inst.currency, dec(realized))
        else:
            if inst.sec_type == "CASH":
                move(inst.symbol, dec(signed))
            move(inst.currency, -dec(signed) * unit)
            move(self.commission.currency(inst), -dec(commission))
        flow = dec(self._day_flow.get(key, 0.0)) + dec(signed) * unit + dec(commission)
        self._day_flow[key] = tidy(flow)

        acct = self._accounts[account]
        acct.cash = cash.get(acct.base_currency, 0.0)
        if realized is not None:
            acct.realized_pnl += realized * self.fx(inst.currency, acct.base_currency)
        return realized

    def rebook(
        self, old: SimExecution, new: SimExecution, executions: Iterable[SimExecution]
    ) -> float | None:
        """Move position, cash and PnL from ``old`` to ``new``, which replaced it in the day's
        ``executions``: the position is replayed from the day's opening, since average cost and
        realized PnL depend on the order of the fills.

        Returns the realized PnL of ``new`` as the replay found it.
        """
        account, inst = old.account, old.instrument
        key = (account, inst.con_id)
        opening = self._opening.get(key)
        replay = dataclasses.replace(opening) if opening else SimPosition(account, inst, 0.0, 0.0)
        realized: float | None = None
        for ex in executions:
            if ex.account != account or ex.instrument.con_id != inst.con_id:
                continue
            unit = unit_value(ex.price, ex.instrument)
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
        acct.realized_pnl += realized_change * self.fx(inst.currency, acct.base_currency)
        return realized

    # -- margin ----------------------------------------------------------------------------

    def margin_shortfall(self, account: str, trade: Trade) -> tuple[float, float, str] | None:
        """``(equity with loan, initial margin, currency)`` after ``trade`` when it raises the
        initial margin beyond the equity with loan value (TWS refuses such an order), else None.
        """
        before = self.figures(account)
        after = self.figures(account, trade=trade)
        if after.init_margin > before.init_margin and (
            after.init_margin > after.equity_with_loan + EPS
        ):
            return after.equity_with_loan, after.init_margin, after.base
        return None

    def what_if(self, account: str, trade: Trade) -> WhatIfResult:
        """Margin and commission preview of ``trade`` in ``account``."""
        inst, _, _, commission = trade
        before = self.figures(account)
        after = self.figures(account, trade=trade)
        short = self.margin_shortfall(account, trade) is not None
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
            warning_text=(
                "Insufficient equity with loan value to cover the initial margin." if short else ""
            ),
        )

    # -- figures -------------------------------------------------------------------------

    def mark(self, inst: Instrument) -> float:
        q = self._market.quote(inst.con_id)
        if q.last and q.last > 0:
            return q.last
        if q.bid > 0 and q.ask > 0:
            return (q.bid + q.ask) / 2
        return q.close if q.close > 0 else 0.0

    def fx(self, ccy: str, base: str) -> float:
        """Units of ``base`` per unit of ``ccy``, from the universe's forex pairs."""
        if ccy in ("", base):
            return 1.0
        for inst in self._instruments.values():
            if inst.sec_type != "CASH":
                continue
            if inst.symbol == ccy and inst.currency == base:
                rate = self.mark(inst)
                return rate if rate > 0 else 1.0
            if inst.symbol == base and inst.currency == ccy:
                rate = self.mark(inst)
                return 1.0 / rate if rate > 0 else 1.0
        return 1.0

    def _position_pnl(self, p: SimPosition) -> tuple[float, float, float, float]:
        """``(daily, unrealized, realized, value)`` in the instrument's currency."""
        inst = p.instrument
        key = (p.account, inst.con_id)
        mult = inst.multiplier_value
        mark = self.mark(inst)
        close = self._market.quote(inst.con_id).close
        if close <= 0:
            close = mark
        value = p.quantity * mark * mult
        start_value = self._start_qty.get(key, 0.0) * close * mult
        daily = value - start_value - self._day_flow.get(key, 0.0)
        unrealized = value - p.quantity * p.avg_cost
        return tidy(daily), tidy(unrealized), p.realized_pnl, tidy(value)

    def figures(
        self,
        account: str,
        trade: Trade | None = None,
    ) -> Figures:
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
            elif abs(new_qty) > EPS and not _same_sign(new_qty, qty):
                avg = price * mult
            holdings[inst.con_id] = (inst, new_qty, avg, realized)
            ccy = self.commission.currency(inst)
            if inst.sec_type not in ("FUT", "FOP"):
                if inst.sec_type == "CASH":
                    cash[inst.symbol] = cash.get(inst.symbol, 0.0) + signed
                cash[inst.currency] = cash.get(inst.currency, 0.0) - signed * price * mult
            cash[ccy] = cash.get(ccy, 0.0) - commission

        fig = Figures(
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
            value = qty * self.mark(inst) * mult
            fig.unrealized[ccy] = fig.unrealized.get(ccy, 0.0) + (value - qty * avg if qty else 0.0)
            fig.realized[ccy] = fig.realized.get(ccy, 0.0) + realized
            rate = self.fx(ccy, base)
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
            fig.rates[ccy] = self.fx(ccy, base)
        return fig

    def _summary_values(self, fig: Figures) -> dict[str, tuple[str, str]]:
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

    def _ledger_rows(self, account: str, fig: Figures, ccy: str) -> list[tuple[str, str]]:
        """The ledger tags of one currency, or of ``BASE`` (all currencies converted)."""
        is_base = ccy == "BASE"

        def get(table: dict[str, float]) -> float:
            return fig.total(table) if is_base else table.get(ccy, 0.0)

        net_liq = fig.net_liquidation if is_base else fig.net_liq_in(ccy)
        rate = 1.0 if is_base else fig.rates.get(ccy, self.fx(ccy, fig.base))
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
