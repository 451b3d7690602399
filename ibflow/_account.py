"""Account, portfolio and contract reads: fresh, routed requests with typed answers.

ib_async keeps positions, account values and the portfolio in caches that it fills from
subscriptions; users of the peers read those caches and get stale data, or ``[]`` when the
account they asked for is not the one subscribed. Here every read is a fresh, routed request
that ends in a typed, immutable answer or a typed error — never an empty list that merely looks
like "nothing there". Contract lookups are shared by every feature (they qualify through
:class:`Contracts`, one lookup at a time per session).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ._core import SessionCore
from ._errors import (
    AmbiguousContract,
    ContractNotFound,
    InvalidRequest,
    RequestError,
    RequestTimeout,
)
from ._log import mask_account, masking_enabled
from ._records.account import (
    SUMMARY_FIELDS,
    AccountSummary,
    AccountValue,
    ContractDetails,
    PnL,
    PortfolioItem,
    Position,
    parse_float,
)
from ._records.contracts import Contract
from ._schedule import TradingSession, parse_schedule, zone_of
from ._timeouts import SESSION_DEFAULT

__all__ = ["Account", "Contracts", "describe"]


def describe(contract: Contract) -> str:
    text = f"{contract.sec_type.value} {contract.display_name} on {contract.exchange}"
    text += f" in {contract.currency}"
    if contract.con_id is not None:
        text += f" (con_id {contract.con_id})"
    return text


_DEFAULT = SESSION_DEFAULT
_SETTLE_MAX = 5.0  # longest wait for an abandoned request's late answer (see _ib._account)
_MAX_CANDIDATES = 10  # candidates listed in an AmbiguousContract message


class _Budget:
    """One call's time limit, shared by the steps it takes (lock waits, several requests)."""

    def __init__(self, limit: float | None, what: str) -> None:
        self.limit = limit
        self.what = what
        self._deadline = None if limit is None else asyncio.get_running_loop().time() + limit

    def left(self) -> float | None:
        if self._deadline is None:
            return None
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise RequestTimeout(f"{self.what}: no answer within {self.limit} s")
        return remaining

    def settle(self) -> float:
        """How long a request may wait for an abandoned predecessor's late answer."""
        left = self.left()
        return _SETTLE_MAX if left is None else min(left / 2, _SETTLE_MAX)

    @contextlib.asynccontextmanager
    async def hold(self, lock: asyncio.Lock) -> AsyncIterator[None]:
        """Take ``lock`` within the budget (a queue behind a slow request counts as waiting)."""
        try:
            async with asyncio.timeout(self.left()):
                await lock.acquire()
        except TimeoutError:
            raise RequestTimeout(
                f"{self.what}: no answer within {self.limit} s (waiting behind earlier requests)"
            ) from None
        try:
            yield
        finally:
            lock.release()


class Account:
    """Account and portfolio reads.

    Which account a call reads when ``account`` is not given: the session's ``account`` if it
    was set, else the login's only account. Calls returning a list (``positions``,
    ``account_values``, ``portfolio``) read every managed account when there is no such default;
    calls returning one record (``account_summary``, ``pnl``) then ask for ``account=``.
    """

    def __init__(self, core: SessionCore) -> None:
        self._core = core
        self._positions_lock = asyncio.Lock()
        self._updates_lock = asyncio.Lock()

    async def positions(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Position]:
        """See :meth:`ibflow.Session.positions`."""
        core = self._core
        accounts = _some_accounts(core, account)
        budget = _Budget(core.limit(timeout), "positions")
        async with budget.hold(self._positions_lock):
            rows = await core.request(
                "positions",
                lambda: core.adapter.account.start_positions(budget.settle()),
                timeout=budget.left(),
            )
        return [p for p in rows if p.account in accounts]

    async def account_values(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[AccountValue]:
        """See :meth:`ibflow.Session.account_values`."""
        core = self._core
        accounts = _some_accounts(core, account)
        budget = _Budget(core.limit(timeout), "account values")
        values: list[AccountValue] = []
        for acct in accounts:
            stop: list[Callable[[], None]] = []

            def start(acct: str = acct, stop: list[Callable[[], None]] = stop) -> Any:
                req_id, answer, cancel = core.adapter.account.start_account_values(acct)
                stop.append(cancel)
                return req_id, answer

            try:
                values += await core.request("account values", start, timeout=budget.left())
            finally:
                for cancel in stop:
                    cancel()
        return values

    async def account_summary(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> AccountSummary:
        """See :meth:`ibflow.Session.account_summary`."""
        core = self._core
        acct = _one_account(core, account, "account_summary")
        limit = core.limit(timeout)
        stop: list[Callable[[], None]] = []

        def start() -> Any:
            req_id, answer, cancel = core.adapter.account.start_account_summary()
            stop.append(cancel)
            return req_id, answer

        try:
            rows = await core.request("account summary", start, timeout=limit)
        finally:
            for cancel in stop:
                cancel()
        return _summary(acct, [v for v in rows if v.account == acct])

    async def portfolio(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[PortfolioItem]:
        """See :meth:`ibflow.Session.portfolio`."""
        core = self._core
        accounts = _some_accounts(core, account)
        restore = _account_default(core)
        budget = _Budget(core.limit(timeout), "portfolio")
        items: list[PortfolioItem] = []
        async with budget.hold(self._updates_lock):
            for acct in accounts:
                items += await core.request(
                    "portfolio",
                    functools.partial(
                        core.adapter.account.start_portfolio, acct, restore, budget.settle()
                    ),
                    timeout=budget.left(),
                )
        return items

    async def pnl(self, account: str | None = None, *, timeout: float | None = _DEFAULT) -> PnL:
        """See :meth:`ibflow.Session.pnl`."""
        core = self._core
        acct = _one_account(core, account, "pnl")
        limit = core.limit(timeout)
        stop: list[Callable[[], None]] = []

        def start() -> Any:
            req_id, answer, cancel = core.adapter.account.start_pnl(acct)
            stop.append(cancel)
            return req_id, answer

        try:
            result: PnL = await core.request("pnl", start, timeout=limit)
        finally:
            for cancel in stop:
                cancel()
        return result

    async def current_time(self, *, timeout: float | None = _DEFAULT) -> datetime:
        """See :meth:`ibflow.Session.current_time`."""
        core = self._core
        limit = core.limit(timeout)
        return await core.request(
            "current time", lambda: core.adapter.account.start_current_time(), timeout=limit
        )


class Contracts:
    """Contract details and qualification, shared by every feature that takes a contract."""

    def __init__(self, core: SessionCore) -> None:
        self._core = core
        self._qualified: dict[Contract, Contract] = {}

    async def contract_details(
        self, contract: Contract, *, timeout: float | None = _DEFAULT
    ) -> list[ContractDetails]:
        """See :meth:`ibflow.Session.contract_details`."""
        core = self._core
        _check_contract(contract)
        core.require_ready()
        budget = _Budget(core.limit(timeout), "contract details")
        return await _details(core, contract, budget)

    async def qualify(
        self, *contracts: Contract, timeout: float | None = _DEFAULT
    ) -> list[Contract]:
        """See :meth:`ibflow.Session.qualify`."""
        core = self._core
        if not contracts:
            raise InvalidRequest("qualify needs at least one contract: qualify(Stock('AAPL'))")
        for contract in contracts:
            _check_contract(contract)
        core.require_ready()
        budget = _Budget(core.limit(timeout), "qualify")
        cache = self._qualified
        out: list[Contract] = []
        for contract in contracts:
            known = cache.get(contract)
            if known is None:
                known = _pick(contract, await _details(core, contract, budget))
                cache[contract] = known
                cache.setdefault(known, known)
            out.append(known)
        return out

    async def trading_sessions(
        self,
        contract: Contract,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> list[TradingSession]:
        """See :meth:`ibflow.Session.trading_sessions`."""
        for name, value in (("start", start), ("end", end)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidRequest(f"{name} must be an aware datetime or None, got {value!r}")
        if not isinstance(rth, bool):
            raise InvalidRequest(f"rth must be True or False, got {rth!r}")
        [details] = (await self.contract_details(contract, timeout=timeout))[:1]
        text = details.liquid_hours if rth else details.trading_hours
        zone = zone_of(details.time_zone)
        if not text or zone is None:
            raise RequestError(
                0,
                f"TWS sent no readable schedule for {describe(details.contract)} "
                f"(time zone {details.time_zone!r})",
            )
        return [
            s
            for s in parse_schedule(text, zone).sessions
            if (start is None or s.close > start) and (end is None or s.open < end)
        ]

    async def is_open(
        self,
        contract: Contract,
        at: datetime | None = None,
        *,
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> bool:
        """See :meth:`ibflow.Session.is_open`."""
        when = _aware_now(at, "at")
        sessions = await self.trading_sessions(contract, rth=rth, timeout=timeout)
        return any(s.contains(when) for s in sessions)

    async def next_open(
        self,
        contract: Contract,
        after: datetime | None = None,
        *,
        rth: bool = True,
        timeout: float | None = _DEFAULT,
    ) -> datetime | None:
        """See :meth:`ibflow.Session.next_open`."""
        when = _aware_now(after, "after")
        sessions = await self.trading_sessions(contract, rth=rth, timeout=timeout)
        return next((s.open for s in sessions if s.open >= when), None)


def _aware_now(value: datetime | None, name: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidRequest(f"{name} must be an aware datetime or None (now), got {value!r}")
    return value


def _account_default(core: SessionCore) -> str | None:
    if core.config.account is not None:
        return core.config.account
    accounts = core.accounts
    return accounts[0] if len(accounts) == 1 else None


def _check_account(core: SessionCore, account: object) -> str:
    accounts = core.accounts
    if not isinstance(account, str) or account not in accounts:
        shown = ", ".join(_shown(a) for a in accounts)
        given = _shown(account) if isinstance(account, str) else repr(account)
        raise InvalidRequest(f"account {given} is not managed by this login; pass one of: {shown}")
    return account


def _one_account(core: SessionCore, account: str | None, what: str) -> str:
    core.require_ready()
    if account is not None:
        return _check_account(core, account)
    default = _account_default(core)
    if default is None:
        shown = ", ".join(_shown(a) for a in core.accounts)
        raise InvalidRequest(
            f"{what} needs an account: this login manages several ({shown}); pass "
            "account=..., or create the session with account=..."
        )
    return default


def _some_accounts(core: SessionCore, account: str | None) -> tuple[str, ...]:
    core.require_ready()
    if account is not None:
        return (_check_account(core, account),)
    default = _account_default(core)
    return (default,) if default is not None else core.accounts


async def _details(core: SessionCore, contract: Contract, budget: _Budget) -> list[ContractDetails]:
    try:
        # One lock per session shared with history's lookups: IB's sec-def service stalls
        # under concurrent contract-details requests.
        async with budget.hold(core.pacer.lookup_lock):
            found: list[ContractDetails] = await core.request(
                "contract details",
                lambda: core.adapter.account.start_contract_details(contract),
                timeout=budget.left(),
            )
    except ContractNotFound as exc:
        raise ContractNotFound(
            exc.code, f"{exc.message}: {describe(contract)}", exc.req_id, hint=exc.hint
        ) from None
    except AmbiguousContract as exc:
        raise AmbiguousContract(
            exc.code,
            f"{exc.message}: {describe(contract)}",
            exc.req_id,
            hint=exc.hint,
            candidates=exc.candidates,
        ) from None
    if not found:
        raise ContractNotFound(
            200,
            f"No security definition has been found for the request: {describe(contract)}",
            hint="check the symbol, security type, exchange and currency",
        )
    return found


def _shown(account: str) -> str:
    return mask_account(account) if masking_enabled() else account


def _check_contract(contract: object) -> None:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"expected an ibflow contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )


def _summary(account: str, rows: list[AccountValue]) -> AccountSummary:
    tags = {v.tag: v.value for v in rows}
    typed = {name: parse_float(tags[tag]) for tag, name in SUMMARY_FIELDS.items() if tag in tags}
    currency = next((v.currency for v in rows if v.tag == "NetLiquidation"), None)
    if currency is None:
        currency = next((v.currency for v in rows if v.currency), None)
    return AccountSummary(account=account, currency=currency, tags=tags, **typed)


def _pick(wanted: Contract, found: list[ContractDetails]) -> Contract:
    """The one match for ``wanted``, or ``AmbiguousContract`` listing the candidates."""
    same_type = [d.contract for d in found if d.contract.sec_type is wanted.sec_type]
    candidates = same_type or [d.contract for d in found]
    if len(candidates) == 1:
        match = candidates[0]
        if wanted.exchange == "SMART" and match.exchange != "SMART":
            match = replace(match, exchange="SMART")  # keep SMART routing when asked for
        return match
    listed = "; ".join(describe(c) for c in candidates[:_MAX_CANDIDATES])
    more = len(candidates) - _MAX_CANDIDATES
    if more > 0:
        listed += f"; and {more} more"
    error = AmbiguousContract(
        200,
        f"{describe(wanted)} matches {len(candidates)} contracts: {listed}",
        hint="add expiry, strike, right, exchange, currency or con_id to pick one",
        candidates=candidates,
    )
    raise error
