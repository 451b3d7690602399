"""Account, portfolio and contract reads on the Session (issue 4).

ib_async keeps positions, account values and the portfolio in caches that it fills from
subscriptions; users of the peers read those caches and get stale data, or ``[]`` when the
account they asked for is not the one subscribed (ib-limits pains 11 and 12). Here every read is
a fresh, routed request that ends in a typed, immutable answer or a typed error — never an empty
list that merely looks like "nothing there".

The records below are what those coroutines return. Their conversion from ib_async lives in
``ibflow/_ib/_account.py``; the coroutines are methods of :class:`AccountAPI`, which ``Session``
inherits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from ._errors import AmbiguousContract, ContractNotFound, InvalidRequest, RequestTimeout
from ._frames import to_frame
from ._log import mask_account, masking_enabled
from ._models import Contract
from ._pacer import pacer_for
from ._per_session import per_session
from ._timeouts import SESSION_DEFAULT, resolve_timeout

if TYPE_CHECKING:
    from ._session import Session

__all__ = [
    "AccountSummary",
    "AccountValue",
    "ContractDetails",
    "PnL",
    "PortfolioItem",
    "Position",
    "PositionPnL",
    "to_frame",
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
        return _parse_float(self.value)


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


def _parse_float(text: str) -> float | None:
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _describe(contract: Contract) -> str:
    text = f"{contract.sec_type.value} {contract.display_name} on {contract.exchange}"
    text += f" in {contract.currency}"
    if contract.con_id is not None:
        text += f" (con_id {contract.con_id})"
    return text


_DEFAULT = SESSION_DEFAULT
_SETTLE_MAX = 5.0  # longest wait for an abandoned request's late answer (see _ib._account)
_MAX_CANDIDATES = 10  # candidates listed in an AmbiguousContract message


@dataclass(slots=True)
class _State:
    """Per-session state of this feature, kept beside the session (see ``_state``)."""

    positions_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    updates_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    qualified: dict[Contract, Contract] = field(default_factory=dict)


def _state(session: object) -> _State:
    return per_session(session, "account", _State)


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


class AccountAPI:
    """Account, portfolio and contract reads; ``Session`` inherits these methods.

    Which account a call reads when ``account`` is not given: the session's ``account`` if it
    was set, else the login's only account. Calls returning a list (``positions``,
    ``account_values``, ``portfolio``) read every managed account when there is no such default;
    calls returning one record (``account_summary``, ``pnl``) then ask for ``account=``.
    """

    # -- positions and account values ----------------------------------------------------------

    async def positions(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[Position]:
        """The positions TWS reports right now (a fresh ``reqPositions``, not a cache).

        Args:
            account: one managed account; default: the session's account, or every account.
            timeout: seconds to wait; the session's timeout by default, ``None`` for no limit.

        Returns:
            One :class:`Position` per non-zero position, in TWS's order.

        Raises:
            InvalidRequest: ``account`` is not managed by this login, or a bad ``timeout``.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        accounts = _some_accounts(session, account)
        budget = _Budget(_limit(session, timeout), "positions")
        async with budget.hold(_state(self).positions_lock):
            rows = await session._request(
                "positions",
                lambda: _ib.start_positions(session._adapter, budget.settle()),
                timeout=budget.left(),
            )
        return [p for p in rows if p.account in accounts]

    async def account_values(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[AccountValue]:
        """Every account value (``NetLiquidation``, ``CashBalance`` per currency…), fresh.

        Args:
            account: one managed account; default: the session's account, or every account.
            timeout: seconds for the whole call; the session's timeout by default.

        Returns:
            The values as IB's text (see :attr:`AccountValue.number`), account by account.

        Raises:
            InvalidRequest: ``account`` is not managed by this login, or a bad ``timeout``.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        accounts = _some_accounts(session, account)
        budget = _Budget(_limit(session, timeout), "account values")
        values: list[AccountValue] = []
        for acct in accounts:
            stop: list[Callable[[], None]] = []

            def start(acct: str = acct, stop: list[Callable[[], None]] = stop) -> Any:
                req_id, answer, cancel = _ib.start_account_values(session._adapter, acct)
                stop.append(cancel)
                return req_id, answer

            try:
                values += await session._request("account values", start, timeout=budget.left())
            finally:
                for cancel in stop:
                    cancel()
        return values

    async def account_summary(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> AccountSummary:
        """The headline numbers of one account: net liquidation, cash, buying power, margin.

        Args:
            account: a managed account; default: the session's account or the login's only
                one (with several and none set, pass it).
            timeout: seconds to wait; the session's timeout by default.

        Returns:
            An :class:`AccountSummary` with typed fields and every tag as text.

        Raises:
            InvalidRequest: ``account`` is unknown, or needed and not given; a bad ``timeout``.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        acct = _one_account(session, account, "account_summary")
        limit = _limit(session, timeout)
        stop: list[Callable[[], None]] = []

        def start() -> Any:
            req_id, answer, cancel = _ib.start_account_summary(session._adapter)
            stop.append(cancel)
            return req_id, answer

        try:
            rows = await session._request("account summary", start, timeout=limit)
        finally:
            for cancel in stop:
                cancel()
        return _summary(acct, [v for v in rows if v.account == acct])

    async def portfolio(
        self, account: str | None = None, *, timeout: float | None = _DEFAULT
    ) -> list[PortfolioItem]:
        """The portfolio: each position with its market price, value and PnL, fresh.

        TWS streams the portfolio of one account at a time; reading another account switches
        that stream there and back again.

        Args:
            account: one managed account; default: the session's account, or every account.
            timeout: seconds for the whole call; the session's timeout by default.

        Raises:
            InvalidRequest: ``account`` is not managed by this login, or a bad ``timeout``.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        accounts = _some_accounts(session, account)
        restore = _account_default(session)
        budget = _Budget(_limit(session, timeout), "portfolio")
        items: list[PortfolioItem] = []
        async with budget.hold(_state(self).updates_lock):
            for acct in accounts:
                items += await session._request(
                    "portfolio",
                    functools.partial(
                        _ib.start_portfolio, session._adapter, acct, restore, budget.settle()
                    ),
                    timeout=budget.left(),
                )
        return items

    async def pnl(self, account: str | None = None, *, timeout: float | None = _DEFAULT) -> PnL:
        """The account's profit and loss now (subscribes, takes the first update, cancels).

        Args:
            account: a managed account; default: the session's account or the login's only
                one (with several and none set, pass it).
            timeout: seconds to wait; the session's timeout by default.

        Returns:
            A :class:`PnL`; a figure IB leaves unset is ``None``.

        Raises:
            InvalidRequest: ``account`` is unknown, or needed and not given; a bad ``timeout``.
            RequestError: IB refused the request.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        acct = _one_account(session, account, "pnl")
        limit = _limit(session, timeout)
        stop: list[Callable[[], None]] = []

        def start() -> Any:
            req_id, answer, cancel = _ib.start_pnl(session._adapter, acct)
            stop.append(cancel)
            return req_id, answer

        try:
            result: PnL = await session._request("pnl", start, timeout=limit)
        finally:
            for cancel in stop:
                cancel()
        return result

    # -- contracts -----------------------------------------------------------------------------

    async def contract_details(
        self, contract: Contract, *, timeout: float | None = _DEFAULT
    ) -> list[ContractDetails]:
        """Everything IB knows about the contracts matching ``contract``.

        Lookups are sent one at a time per session: concurrent contract-details requests can
        stall IB's security-definition service.

        Args:
            contract: a full or partial description (``Stock("AAPL")``, a bare option…).
            timeout: seconds to wait (queueing included); the session's timeout by default.

        Returns:
            One :class:`ContractDetails` per match (at least one).

        Raises:
            InvalidRequest: ``contract`` is not an ibflow ``Contract``; a bad ``timeout``.
            ContractNotFound: IB has no contract matching the description.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        _check_contract(contract)
        session._require_ready()
        budget = _Budget(_limit(session, timeout), "contract details")
        return await _details(session, contract, budget)

    async def qualify(
        self, *contracts: Contract, timeout: float | None = _DEFAULT
    ) -> list[Contract]:
        """The fully described, ``con_id``-carrying contract for each description.

        Answers are cached for the session, so qualifying the same contract again costs no
        request. Lookups are sent one at a time.

        Args:
            contracts: one or more descriptions (``Stock("AAPL")``, ``Future("ES", …)``…).
            timeout: seconds for the whole call; the session's timeout by default.

        Returns:
            The qualified contracts, in the order given.

        Raises:
            InvalidRequest: no contracts, or one is not an ibflow ``Contract``; a bad timeout.
            ContractNotFound: IB has no contract matching a description.
            AmbiguousContract: a description matches several contracts; the message lists
                them and ``candidates`` holds them.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        if not contracts:
            raise InvalidRequest("qualify needs at least one contract: qualify(Stock('AAPL'))")
        for contract in contracts:
            _check_contract(contract)
        session._require_ready()
        budget = _Budget(_limit(session, timeout), "qualify")
        cache = _state(self).qualified
        out: list[Contract] = []
        for contract in contracts:
            known = cache.get(contract)
            if known is None:
                known = _pick(contract, await _details(session, contract, budget))
                cache[contract] = known
                cache.setdefault(known, known)
            out.append(known)
        return out

    async def current_time(self, *, timeout: float | None = _DEFAULT) -> datetime:
        """TWS's clock (``reqCurrentTime``), as an aware UTC datetime.

        Raises:
            InvalidRequest: a bad ``timeout``.
            RequestTimeout: TWS did not answer in time.
            ConnectionLost: the link dropped before the answer.
            SessionClosedError: the session is not open.
        """
        session = _session(self)
        limit = _limit(session, timeout)
        return await session._request(
            "current time", lambda: _ib.start_current_time(session._adapter), timeout=limit
        )


def _account_default(session: Session) -> str | None:
    if session._config.account is not None:
        return session._config.account
    accounts = session.accounts
    return accounts[0] if len(accounts) == 1 else None


def _check_account(session: Session, account: object) -> str:
    accounts = session.accounts
    if not isinstance(account, str) or account not in accounts:
        shown = ", ".join(_shown(a) for a in accounts)
        given = _shown(account) if isinstance(account, str) else repr(account)
        raise InvalidRequest(f"account {given} is not managed by this login; pass one of: {shown}")
    return account


def _one_account(session: Session, account: str | None, what: str) -> str:
    session._require_ready()
    if account is not None:
        return _check_account(session, account)
    default = _account_default(session)
    if default is None:
        shown = ", ".join(_shown(a) for a in session.accounts)
        raise InvalidRequest(
            f"{what} needs an account: this login manages several ({shown}); pass "
            "account=..., or create the session with account=..."
        )
    return default


def _some_accounts(session: Session, account: str | None) -> tuple[str, ...]:
    session._require_ready()
    if account is not None:
        return (_check_account(session, account),)
    default = _account_default(session)
    return (default,) if default is not None else session.accounts


def _limit(session: Session, timeout: object) -> float | None:
    return resolve_timeout(timeout, session._timeout)


async def _details(session: Session, contract: Contract, budget: _Budget) -> list[ContractDetails]:
    try:
        # One lock per session shared with history's lookups: IB's sec-def service stalls
        # under concurrent contract-details requests.
        async with budget.hold(pacer_for(session).lookup_lock):
            found: list[ContractDetails] = await session._request(
                "contract details",
                lambda: _ib.start_contract_details(session._adapter, contract),
                timeout=budget.left(),
            )
    except ContractNotFound as exc:
        raise ContractNotFound(
            exc.code, f"{exc.message}: {_describe(contract)}", exc.req_id, hint=exc.hint
        ) from None
    except AmbiguousContract as exc:
        raise AmbiguousContract(
            exc.code,
            f"{exc.message}: {_describe(contract)}",
            exc.req_id,
            hint=exc.hint,
            candidates=exc.candidates,
        ) from None
    if not found:
        raise ContractNotFound(
            200,
            f"No security definition has been found for the request: {_describe(contract)}",
            hint="check the symbol, security type, exchange and currency",
        )
    return found


def _session(api: AccountAPI) -> Session:
    # The mixin only ever runs as part of a Session; mypy cannot see that from here.
    return cast("Session", api)


def _shown(account: str) -> str:
    return mask_account(account) if masking_enabled() else account


def _check_contract(contract: object) -> None:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"expected an ibflow contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )


def _summary(account: str, rows: list[AccountValue]) -> AccountSummary:
    tags = {v.tag: v.value for v in rows}
    typed = {name: _parse_float(tags[tag]) for tag, name in SUMMARY_FIELDS.items() if tag in tags}
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
    listed = "; ".join(_describe(c) for c in candidates[:_MAX_CANDIDATES])
    more = len(candidates) - _MAX_CANDIDATES
    if more > 0:
        listed += f"; and {more} more"
    error = AmbiguousContract(
        200,
        f"{_describe(wanted)} matches {len(candidates)} contracts: {listed}",
        hint="add expiry, strike, right, exchange, currency or con_id to pick one",
        candidates=candidates,
    )
    raise error


# Imported last: ``_ib._account`` converts into the records defined above.
from ._ib import _account as _ib  # noqa: E402
