"""The market-data feature: what Session offers for quotes, ticks, bars, PnL and account events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final

from .._account import Contracts
from .._core import SessionCore
from .._errors import InvalidRequest
from .._pacer import Ticket
from .._periods import BarSize, bar_seconds, parse_duration, parse_period
from .._records.account import AccountValue, PnL, Position, PositionPnL
from .._records.contracts import Bar, Contract, check_text
from .._records.market import (
    MARKET_DATA_CODES,
    Gap,
    MarketDataType,
    Quote,
    TickKind,
)
from .._stream import Overflow, Stream, StreamWriter
from .._timeouts import SESSION_DEFAULT
from ._hubs import (
    MarketState,
    _AccountValueHub,
    _Hub,
    _LiveBarHub,
    _PnLHub,
    _PositionHub,
    _PositionPnLHub,
    _QuoteHub,
    _RealtimeBarHub,
    _TickHub,
    ensure_market_data_type,
    epoch_of,
    live_key,
)

__all__ = ["Market"]

_DEFAULT = SESSION_DEFAULT

_BAR_WHATS: Final = ("TRADES", "MIDPOINT", "BID", "ASK")


def _check_contract(contract: object) -> Contract:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"expected an ibflow contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )
    return contract


def _check_account(account: object) -> str | None:
    if account is not None and (not isinstance(account, str) or not account.strip()):
        raise InvalidRequest(f"account must be an account id like 'DU1234567', got {account!r:.80}")
    return check_text(account, "account").strip() if isinstance(account, str) else None


def _check_tick_kind(kind: object) -> TickKind:
    if isinstance(kind, str) and kind.lower() in TickKind.__members__.values():
        return TickKind(kind.lower())
    allowed = ", ".join(repr(k.value) for k in TickKind)
    raise InvalidRequest(f"kind must be one of {allowed}; got {kind!r}")


def _check_what(what: object) -> str:
    if isinstance(what, str) and what.upper() in _BAR_WHATS:
        return what.upper()
    raise InvalidRequest(f"what must be one of {', '.join(_BAR_WHATS)}; got {what!r}")


def _check_live_period(period: object) -> BarSize:
    """The bar size of a live-bars request: any bar size of 5 seconds or more."""
    bar = parse_period(period)
    if bar_seconds(bar) < 5:
        raise InvalidRequest(
            f"live bars need a period of at least 5 seconds (IB's keepUpToDate); got {period!r}"
        )
    return bar


def _check_market_data_type(kind: object) -> MarketDataType:
    if isinstance(kind, str) and kind.lower() in MarketDataType.__members__.values():
        return MarketDataType(kind.lower())
    allowed = ", ".join(repr(k.value) for k in MarketDataType)
    raise InvalidRequest(f"market data type must be one of {allowed}; got {kind!r}")


def _default_account(core: SessionCore, account: str | None) -> str:
    if account is not None:
        return account
    if core.config.account is not None:
        return core.config.account
    accounts = core.accounts
    if len(accounts) == 1:
        return accounts[0]
    raise InvalidRequest(
        f"this login manages {len(accounts)} accounts; pass account= (one of {', '.join(accounts)})"
    )


async def _resolve(state: MarketState, contract: Contract, timeout: float | None) -> Contract:
    """The contract with its con_id: streams are shared and routed by con_id.

    ``qualify`` caches per session and serializes lookups under the session's pacer.
    """
    if contract.con_id is not None:
        return contract
    [qualified] = await state.contracts.qualify(contract, timeout=timeout)
    return qualified


def _where(contract: Contract | None) -> tuple[int | None, str | None]:
    """What makes two market-data requests the same: the instrument and where it is quoted."""
    if contract is None:
        return None, None
    return contract.con_id, contract.exchange


def _subscribe(
    state: MarketState,
    *,
    name: str,
    buffer: int,
    overflow: Overflow | str,
    key: Callable[[Contract | None, str | None], Hashable],
    make_hub: Callable[[Contract | None, str | None, Hashable], _Hub[Any]],
    contract: Contract | None = None,
    account: str | None = None,
    needs_account: bool = False,
    before_open: Callable[[Contract], Awaitable[None]] | None = None,
) -> Stream[Any]:
    """A stream whose ``start`` joins (or opens) the hub under ``key``.

    The hooks hold only the writer, so a stream dropped while open is collected and released
    by its finalizer.
    """
    joined: list[_Hub[Any]] = []

    core = state.core

    async def start() -> None:
        core.require_ready()
        resolved = await _resolve(state, contract, core.timeout) if contract else None
        core.require_ready()
        acct = _default_account(core, account) if needs_account else account
        hub_key = key(resolved, acct)
        hub = state.hubs.get(hub_key)
        if hub is None or hub.closed:
            if before_open is not None and resolved is not None:
                await before_open(resolved)
                hub = state.hubs.get(hub_key)  # another consumer may have opened it meanwhile
        if hub is None or hub.closed:
            hub = make_hub(resolved, acct, hub_key)
            hub.start()
            state.hubs[hub_key] = hub
        joined.append(hub)
        hub.add(writer)

    def release() -> None:
        if joined:
            joined[0].remove(writer)

    writer: StreamWriter[Any] = StreamWriter(
        name=name, buffer=buffer, overflow=overflow, start=start, on_close=release
    )
    return writer.stream


class Market:
    """Market data and account events as shared, bounded, gap-aware streams."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self._core = core
        self._state = MarketState(core, contracts)

    def quotes(
        self,
        contract: Contract,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[Quote | Gap]:
        """See :meth:`ibflow.Session.quotes`."""
        c = _check_contract(contract)
        return _subscribe(
            self._state,
            name=f"quotes {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda r, _a: ("quotes", *_where(r)),
            make_hub=lambda r, _a, k: _QuoteHub(self._state, k, r),  # type: ignore[arg-type]
        )

    async def quote(self, contract: Contract, *, timeout: float | None = _DEFAULT) -> Quote:
        """See :meth:`ibflow.Session.quote`."""
        core = self._core
        c = _check_contract(contract)
        limit = core.limit(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        resolved = await _resolve(self._state, c, limit)
        ensure_market_data_type(self._state)
        remaining = None if deadline is None else max(deadline - loop.time(), 0.001)
        adapter = core.adapter
        return await core.request(
            f"quote snapshot for {c.display_name}",
            lambda: adapter.market.start_snapshot(resolved),
            timeout=remaining,
            cancel=lambda rid: adapter.market.cancel_mkt_data(rid),
        )

    def ticks(
        self,
        contract: Contract,
        kind: str = "last",
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.DROP_OLDEST,
    ) -> Stream[Any]:
        """See :meth:`ibflow.Session.ticks`."""
        core = self._core
        c = _check_contract(contract)
        tick_kind = _check_tick_kind(kind)
        return _subscribe(
            self._state,
            name=f"{tick_kind.value} ticks {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda r, _a: ("ticks", *_where(r), tick_kind),
            make_hub=lambda r, _a, k: _TickHub(self._state, k, r, tick_kind),  # type: ignore[arg-type]
            # IB allows one tick-by-tick request per instrument per 15 s: wait, don't trip it.
            before_open=lambda r: core.pacer.tick_by_tick(r.con_id or 0),
        )

    def realtime_bars(
        self,
        contract: Contract,
        what: str = "TRADES",
        *,
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]:
        """See :meth:`ibflow.Session.realtime_bars`."""
        c = _check_contract(contract)
        what_ = _check_what(what)
        if not isinstance(rth, bool):
            raise InvalidRequest(f"rth must be True or False, got {rth!r}")
        return _subscribe(
            self._state,
            name=f"real-time bars {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda r, _a: ("realtime_bars", *_where(r), what_, rth),
            make_hub=lambda r, _a, k: _RealtimeBarHub(self._state, k, r, what_, rth),  # type: ignore[arg-type]
        )

    def live_bars(
        self,
        contract: Contract,
        period: str = "1m",
        lookback: str = "1 D",
        include_forming: bool = False,
        *,
        what: str = "TRADES",
        rth: bool = False,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Bar | Gap]:
        """See :meth:`ibflow.Session.live_bars`."""
        core = self._core
        c = _check_contract(contract)
        bar_size = _check_live_period(period).value
        try:
            duration = str(parse_duration(lookback))
        except InvalidRequest as exc:
            raise InvalidRequest(f"lookback: {exc}") from None
        what_ = _check_what(what)
        if not isinstance(include_forming, bool) or not isinstance(rth, bool):
            raise InvalidRequest("include_forming and rth must be True or False")
        # Every consumer opens its own request, so the slot taken here is the hub's.
        taken: list[Ticket] = []

        async def take_slot(resolved: Contract) -> None:
            key = live_key(resolved, bar_size, duration, what_, rth)
            taken.append(await core.pacer.acquire(key))

        return _subscribe(
            self._state,
            name=f"{bar_size} live bars {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            key=lambda _r, _a: ("live_bars", object()),  # one request per consumer
            # A keepUpToDate request is a historical request to IB's pacing rules.
            before_open=take_slot,
            make_hub=lambda r, _a, k: _LiveBarHub(
                self._state,
                k,
                r,  # type: ignore[arg-type]
                bar_size=bar_size,
                lookback=duration,
                what=what_,
                rth=rth,
                include_forming=include_forming,
                ticket=taken.pop() if taken else None,
            ),
        )

    def pnl_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PnL | Gap]:
        """See :meth:`ibflow.Session.pnl_updates`."""
        acct = _check_account(account)
        return _subscribe(
            self._state,
            name=f"PnL {acct or 'default account'}",
            buffer=buffer,
            overflow=overflow,
            account=acct,
            needs_account=True,
            key=lambda _r, a: ("pnl", a),
            make_hub=lambda _r, a, k: _PnLHub(self._state, k, a),  # type: ignore[arg-type]
        )

    def position_pnl_updates(
        self,
        contract: Contract,
        account: str | None = None,
        *,
        buffer: int = 256,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[PositionPnL | Gap]:
        """See :meth:`ibflow.Session.position_pnl_updates`."""
        c = _check_contract(contract)
        acct = _check_account(account)
        return _subscribe(
            self._state,
            name=f"position PnL {c.display_name}",
            buffer=buffer,
            overflow=overflow,
            contract=c,
            account=acct,
            needs_account=True,
            key=lambda r, a: ("position_pnl", a, r.con_id if r else None),
            make_hub=lambda r, a, k: _PositionPnLHub(
                self._state,
                k,
                a,  # type: ignore[arg-type]
                r.con_id if r and r.con_id else 0,
            ),
        )

    def account_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[AccountValue | Gap]:
        """See :meth:`ibflow.Session.account_updates`."""
        acct = _check_account(account)
        return _subscribe(
            self._state,
            name=f"account updates {acct or 'all accounts'}",
            buffer=buffer,
            overflow=overflow,
            account=acct,
            key=lambda _r, a: ("account_updates", a),
            make_hub=lambda _r, a, k: _AccountValueHub(self._state, k, a),
        )

    def position_updates(
        self,
        account: str | None = None,
        *,
        buffer: int = 1024,
        overflow: Overflow | str = Overflow.ERROR,
    ) -> Stream[Position | Gap]:
        """See :meth:`ibflow.Session.position_updates`."""
        acct = _check_account(account)
        return _subscribe(
            self._state,
            name=f"position updates {acct or 'all accounts'}",
            buffer=buffer,
            overflow=overflow,
            account=acct,
            key=lambda _r, a: ("position_updates", a),
            make_hub=lambda _r, a, k: _PositionHub(self._state, k, a),
        )

    async def set_market_data_type(
        self, kind: MarketDataType | str, *, timeout: float | None = _DEFAULT
    ) -> None:
        """See :meth:`ibflow.Session.set_market_data_type`."""
        core = self._core
        chosen = _check_market_data_type(kind)
        core.limit(timeout)
        core.require_ready()
        code = MARKET_DATA_CODES[chosen]
        core.adapter.market.send_market_data_type(code)
        state = self._state
        state.md_type = code
        state.md_epoch = epoch_of(core)
