"""Account and contract records across the border, and the ib_async calls that fetch them.

ib_async hands positions, account values, the portfolio and PnL out as NamedTuples and mutable
dataclasses with camelCase fields, ``nan`` for "not sent" and ``UNSET_DOUBLE`` (the largest
float) for "unset"; contract details carry empty strings and comma-joined lists. They leave here
as ibflow's frozen records with ``None`` for absent values. The conversions are plain functions
(unit-tested without a loop); the request helpers below them only start and cancel IB requests
and leave routing, timeouts and errors to the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import ib_async
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from .._log import get_logger
from .._records.account import (
    AccountValue,
    ContractDetails,
    PnL,
    PortfolioItem,
    Position,
    PositionPnL,
)
from .._records.contracts import Contract
from ._contracts import contract_from_ib, contract_to_ib
from ._errors import undo_on_error as _undo_on_error

__all__ = [
    "AccountPort",
    "account_value_from_ib",
    "details_from_ib",
    "number",
    "pnl_from_ib",
    "pnl_single_from_ib",
    "portfolio_item_from_ib",
    "position_from_ib",
]

T = TypeVar("T")
log = get_logger("account")


def number(value: Any) -> float | None:
    """A float, or ``None`` for IB's "not set" sentinels (NaN, ±inf, ``UNSET_DOUBLE``, ``None``)."""
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(result) or math.isinf(result) or abs(result) >= UNSET_DOUBLE:
        return None
    return result


def _int(value: Any) -> int | None:
    """An int, or ``None`` for 0 / ``UNSET_INTEGER`` (IB's "none" for ids and counts)."""
    if value is None or value == "":
        return None
    try:
        result = int(value)
    except (TypeError, ValueError):
        return None
    return None if result in (0, UNSET_INTEGER) else result


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _split(text: str | None, sep: str = ",") -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(sep) if part.strip())


def position_from_ib(p: ib_async.Position) -> Position:
    """A ``positions`` row; an unknown security type raises ``ValueError``."""
    return Position(
        account=p.account,
        contract=contract_from_ib(p.contract),
        quantity=number(p.position) or 0.0,
        avg_cost=number(p.avgCost),
    )


def account_value_from_ib(v: ib_async.AccountValue) -> AccountValue:
    """An account value; IB's empty currency and model code become ``None``."""
    return AccountValue(
        account=v.account,
        tag=v.tag,
        value=v.value,
        currency=_text(v.currency),
        model_code=_text(v.modelCode),
    )


def portfolio_item_from_ib(item: ib_async.PortfolioItem) -> PortfolioItem:
    """A portfolio line; an unknown security type raises ``ValueError``."""
    return PortfolioItem(
        account=item.account,
        contract=contract_from_ib(item.contract),
        quantity=number(item.position) or 0.0,
        market_price=number(item.marketPrice),
        market_value=number(item.marketValue),
        avg_cost=number(item.averageCost),
        unrealized_pnl=number(item.unrealizedPNL),
        realized_pnl=number(item.realizedPNL),
    )


def pnl_from_ib(p: ib_async.PnL) -> PnL:
    """An account PnL update; unset values (NaN / ``UNSET_DOUBLE``) become ``None``."""
    return PnL(
        account=p.account,
        daily=number(p.dailyPnL),
        unrealized=number(p.unrealizedPnL),
        realized=number(p.realizedPnL),
        model_code=_text(p.modelCode),
    )


def pnl_single_from_ib(p: ib_async.PnLSingle) -> PositionPnL:
    """A single-position PnL update; unset values become ``None``."""
    return PositionPnL(
        account=p.account,
        con_id=int(p.conId),
        position=number(p.position),
        daily=number(p.dailyPnL),
        unrealized=number(p.unrealizedPnL),
        realized=number(p.realizedPnL),
        value=number(p.value),
        model_code=_text(p.modelCode),
    )


def details_from_ib(d: ib_async.ContractDetails) -> ContractDetails:
    """Contract details; ``ValueError`` when they carry no contract or an unknown type."""
    if d.contract is None:
        raise ValueError("contract details without a contract")
    contract: Contract = contract_from_ib(d.contract)
    rule_ids = tuple(int(r) for r in _split(d.marketRuleIds) if r.lstrip("-").isdigit())
    return ContractDetails(
        contract=contract,
        long_name=_text(d.longName),
        market_name=_text(d.marketName),
        min_tick=number(d.minTick) or None,
        price_magnifier=_int(d.priceMagnifier),
        valid_exchanges=_split(d.validExchanges),
        order_types=_split(d.orderTypes),
        time_zone=_text(d.timeZoneId),
        trading_hours=_text(d.tradingHours),
        liquid_hours=_text(d.liquidHours),
        industry=_text(d.industry),
        category=_text(d.category),
        subcategory=_text(d.subcategory),
        contract_month=_text(d.contractMonth),
        under_con_id=_int(d.underConId),
        under_symbol=_text(d.underSymbol),
        under_sec_type=_text(d.underSecType),
        market_rule_ids=rule_ids,
        min_size=number(d.minSize) or None,
        size_increment=number(d.sizeIncrement) or None,
        stock_type=_text(d.stockType),
        last_trade_time=_text(d.lastTradeTime),
        real_expiration_date=_text(d.realExpirationDate),
    )


# -- requests ------------------------------------------------------------------------------------
#
# Each helper below sends one IB request and returns what ``Session._request`` needs: the request
# id (``None`` where IB has none) and an awaitable for the answer. Routing, timeouts and error
# mapping stay with the session.

# The common account-summary tags: the typed fields of ``AccountSummary`` and a few more that
# users look at. ``$LEDGER`` is left out: its per-currency rows would clash in the tag mapping.
SUMMARY_TAGS = (
    "AccountType,NetLiquidation,TotalCashValue,SettledCash,AccruedCash,BuyingPower,"
    "EquityWithLoanValue,PreviousDayEquityWithLoanValue,GrossPositionValue,RegTEquity,"
    "RegTMargin,SMA,InitMarginReq,MaintMarginReq,AvailableFunds,ExcessLiquidity,Cushion,"
    "FullInitMarginReq,FullMaintMarginReq,FullAvailableFunds,FullExcessLiquidity,"
    "LookAheadNextChange,LookAheadInitMarginReq,LookAheadMaintMarginReq,"
    "LookAheadAvailableFunds,LookAheadExcessLiquidity,HighestSeverity,DayTradesRemaining,"
    "Leverage"
)


async def _settle_key(ib: ib_async.IB, key: str, limit: float) -> None:
    """Let an earlier request under ib_async's fixed ``key`` finish before a new one starts.

    ``reqPositions`` and ``reqAccountUpdates`` carry no request id: ib_async files their answer
    under one fixed key, and whichever future sits there when the end marker arrives gets it. A
    request abandoned on timeout or cancellation still owes TWS's answer, and if a new request
    were sent before it came, the late end marker would complete the new one with the old rows
    (ib_async issue 216 is the same bug for open orders). So: wait up to ``limit`` for the owed
    end marker to arrive and be swallowed; if it never comes (TWS dropped the request), forget
    it and go on.
    """
    wrapper = ib.wrapper
    found = wrapper._futures.get(key)
    if found is None:
        return
    owed: asyncio.Future[Any] = found
    if owed.done():
        # Abandoned: put a fresh future there so the late end marker has something to end.
        owed = wrapper.startReq(key)
    await asyncio.wait({owed}, timeout=limit)
    if wrapper._futures.get(key) is owed:
        _forget(ib, key)
    if not owed.done():
        owed.cancel()


def _restore_account_updates(
    ib: ib_async.IB, account: str, restore: str | None, done: bool
) -> None:
    if restore == account:
        return
    with contextlib.suppress(Exception):
        if restore is None:
            ib.client.reqAccountUpdates(False, account)
            return
        # Its answer ends with an end marker too; file it as an abandoned request so the next
        # portfolio read waits for it instead of taking it for its own (see _settle_key).
        if not done:
            return  # our own request is still owed; the next read settles that one first
        owed = ib.wrapper.startReq("accountValues")
        ib.client.reqAccountUpdates(True, restore)
        owed.cancel()


_OURS: weakref.WeakSet[asyncio.Future[Any]] = weakref.WeakSet()


def _pass_on(earlier: asyncio.Future[Any], later: asyncio.Future[Any]) -> None:
    if not earlier.done() and not later.cancelled() and later.exception() is None:
        earlier.set_result(later.result())


def _forget(ib: ib_async.IB, key: int | str) -> None:
    """Drop ib_async's bookkeeping for a request whose answer nobody waits for any more."""
    ib.wrapper._futures.pop(key, None)
    ib.wrapper._results.pop(key, None)
    if isinstance(key, int):
        ib.wrapper._reqId2Contract.pop(key, None)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _convert_rows(rows: Iterable[Any], convert: Callable[[Any], T], what: str) -> list[T]:
    out: list[T] = []
    for row in rows:
        if getattr(row, "position", 1) == 0:
            continue
        try:
            out.append(convert(row))
        except ValueError as exc:
            log.warning("skipping a %s ibflow cannot represent (%s): %r", what, exc, row)
    return out


class AccountPort:
    """Account reads and contract lookups on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected

    def start_positions(self, settle: float) -> tuple[None, Awaitable[list[Position]]]:
        """``reqPositions``: every position of every account, fresh from TWS.

        Rows with quantity 0 (positions closed today, which IB still lists) are left out; so are
        rows of security types ibflow does not model (logged).
        """
        ib = self._ib

        async def run() -> list[Position]:
            await _settle_key(ib, "positions", settle)
            rows: dict[tuple[str, int], ib_async.Position] = {}

            def on_row(p: ib_async.Position) -> None:
                rows[(p.account, p.contract.conId)] = p

            ib.positionEvent += on_row
            try:
                answer = ib.wrapper.startReq("positions")
                ib.client.reqPositions()
                await answer
            finally:
                ib.positionEvent -= on_row
            return _convert_rows(rows.values(), position_from_ib, "position")

        return None, run()

    def start_portfolio(
        self, account: str, restore: str | None, settle: float
    ) -> tuple[None, Awaitable[list[PortfolioItem]]]:
        """``reqAccountUpdates`` for ``account``: its portfolio lines, fresh from TWS.

        TWS streams account updates for one account at a time; afterwards the stream goes back to
        ``restore`` (the session's own account), or is switched off when there is none.
        """
        ib = self._ib

        async def run() -> list[PortfolioItem]:
            await _settle_key(ib, "accountValues", settle)
            rows: dict[int, ib_async.PortfolioItem] = {}

            def on_row(item: ib_async.PortfolioItem) -> None:
                if item.account == account:
                    rows[item.contract.conId] = item

            ib.updatePortfolioEvent += on_row
            done = False
            try:
                answer = ib.wrapper.startReq("accountValues")
                ib.client.reqAccountUpdates(True, account)
                await answer
                done = True
            finally:
                ib.updatePortfolioEvent -= on_row
                if self._is_connected():
                    _restore_account_updates(ib, account, restore, done)
            return _convert_rows(rows.values(), portfolio_item_from_ib, "portfolio line")

        return None, run()

    def start_account_values(
        self, account: str
    ) -> tuple[int, Awaitable[list[AccountValue]], Callable[[], None]]:
        """``reqAccountUpdatesMulti`` for ``account``; returns ``(req_id, answer, cancel)``.

        ``cancel`` ends the subscription; call it once the answer is in (or abandoned).
        """
        ib = self._ib
        rows: dict[tuple[str, str, str], ib_async.AccountValue] = {}

        def on_row(v: ib_async.AccountValue) -> None:
            if v.account == account:
                rows[(v.tag, v.currency, v.modelCode)] = v

        req_id = int(ib.client.getReqId())

        async def run() -> list[AccountValue]:
            await answer
            return [account_value_from_ib(v) for v in rows.values()]

        def cancel() -> None:
            ib.accountValueEvent -= on_row
            _forget(ib, req_id)
            if self._is_connected():
                with contextlib.suppress(Exception):
                    ib.client.cancelAccountUpdatesMulti(req_id)

        answer = ib.wrapper.startReq(req_id)
        ib.accountValueEvent += on_row
        with _undo_on_error(cancel):
            ib.client.reqAccountUpdatesMulti(req_id, account, "", False)
        return req_id, run(), cancel

    def start_account_summary(
        self,
    ) -> tuple[int, Awaitable[list[AccountValue]], Callable[[], None]]:
        """``reqAccountSummary`` (group "All"); returns ``(req_id, answer, cancel)``.

        The answer holds every managed account's rows. ``cancel`` ends the subscription (IB allows
        only two at a time); call it once the answer is in (or abandoned).
        """
        ib = self._ib
        rows: dict[tuple[str, str, str], ib_async.AccountValue] = {}

        def on_row(v: ib_async.AccountValue) -> None:
            rows[(v.account, v.tag, v.currency)] = v

        req_id = int(ib.client.getReqId())

        async def run() -> list[AccountValue]:
            await answer
            return [account_value_from_ib(v) for v in rows.values()]

        def cancel() -> None:
            ib.accountSummaryEvent -= on_row
            _forget(ib, req_id)
            if self._is_connected():
                with contextlib.suppress(Exception):
                    ib.client.cancelAccountSummary(req_id)

        answer = ib.wrapper.startReq(req_id)
        ib.accountSummaryEvent += on_row
        with _undo_on_error(cancel):
            ib.client.reqAccountSummary(req_id, "All", SUMMARY_TAGS)
        return req_id, run(), cancel

    def start_pnl(self, account: str) -> tuple[int, Awaitable[PnL], Callable[[], None]]:
        """``reqPnL`` for ``account``, answered by its first update; returns ``(req_id, answer,
        cancel)``.

        The subscription is registered with ib_async by request id only (not under its
        account key), so a PnL stream on the same account elsewhere in the session is untouched.
        """
        ib = self._ib
        loop = asyncio.get_running_loop()
        first: asyncio.Future[PnL] = loop.create_future()
        req_id = int(ib.client.getReqId())
        record = ib_async.PnL(account, "")

        def on_update(p: ib_async.PnL) -> None:
            if p is record and not first.done():
                first.set_result(pnl_from_ib(p))

        def cancel() -> None:
            ib.pnlEvent -= on_update
            ib.wrapper.reqId2PnL.pop(req_id, None)
            if not first.done():
                first.cancel()
            if self._is_connected():
                with contextlib.suppress(Exception):
                    ib.client.cancelPnL(req_id)

        ib.wrapper.reqId2PnL[req_id] = record
        ib.pnlEvent += on_update
        with _undo_on_error(cancel):
            ib.client.reqPnL(req_id, account, "")
        return req_id, first, cancel

    def start_contract_details(
        self, contract: Contract
    ) -> tuple[int, Awaitable[list[ContractDetails]]]:
        """``reqContractDetails``; IB has no cancel for it, a late answer is simply dropped."""
        ib = self._ib
        req_id = int(ib.client.getReqId())
        answer = ib.wrapper.startReq(req_id)
        with _undo_on_error(lambda: _forget(ib, req_id)):
            ib.client.reqContractDetails(req_id, contract_to_ib(contract))

        async def run() -> list[ContractDetails]:
            found = await answer
            return _convert_rows(found, details_from_ib, "contract")

        return req_id, run()

    def start_current_time(self) -> tuple[None, Awaitable[datetime]]:
        """``reqCurrentTime``, sharing the heartbeat's request when one is on its way.

        ib_async files the answer under one fixed key, so a new request while another is in flight
        orphans the earlier waiter. The heartbeat's request is shared (orphaning it would make the
        session count the link as dead). Our own earlier request may have been dropped by TWS, so a
        new call asks again, and the earlier waiters are answered by the new answer.
        """
        ib = self._ib

        def ask() -> asyncio.Future[Any]:
            found = ib.wrapper._futures.get("currentTime")
            if found is not None and not found.done() and found not in _OURS:
                return found
            fresh: asyncio.Future[Any] = ib.wrapper.startReq("currentTime")
            _OURS.add(fresh)
            if found is not None and not found.done():
                fresh.add_done_callback(functools.partial(_pass_on, found))
            with _undo_on_error(lambda: _forget(ib, "currentTime")):
                ib.client.reqCurrentTime()
            return fresh

        first = ask()

        async def run() -> datetime:
            pending = first
            while True:
                try:
                    # Shielded: the heartbeat's future, or one other callers share, is not ours to
                    # cancel.
                    return _aware(await asyncio.shield(pending))
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if pending.cancelled() and task is not None and not task.cancelling():
                        pending = ask()  # the heartbeat gave up on its request; ask ourselves
                        continue
                    raise

        return None, run()
