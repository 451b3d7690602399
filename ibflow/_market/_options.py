"""Options: an underlying's chain, and IB's option calculator (implied volatility, price).

Greeks of live option quotes ride on the quote streams (``Quote.greeks``); this module holds
the requests that are about options as such.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date

from .._account import Contracts
from .._core import SessionCore
from .._errors import InvalidRequest, RequestTimeout
from .._records.contracts import Contract, SecType
from .._records.options import Greeks, OptionChain
from .._timeouts import SESSION_DEFAULT

__all__ = ["Options"]

_DEFAULT = SESSION_DEFAULT


def _check_contract(contract: object, what: str) -> Contract:
    if not isinstance(contract, Contract):
        raise InvalidRequest(
            f"{what} must be an ibflow contract such as ibflow.Stock('AAPL'), got {contract!r}"
        )
    return contract


def _positive(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequest(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _day(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _multiplier(texts: set[str]) -> float | None:
    for text in sorted(texts):
        try:
            return float(text)
        except ValueError:
            continue
    return None


class Options:
    """Option chains and the option calculator."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self._core = core
        self._contracts = contracts

    async def _qualified(
        self, contract: Contract, limit: float | None
    ) -> tuple[Contract, float | None]:
        """The contract with its con_id, and what is left of ``limit`` for the request."""
        if contract.con_id is not None:
            return contract, limit
        loop = asyncio.get_running_loop()
        started = loop.time()
        [found] = await self._contracts.qualify(contract, timeout=limit)
        if limit is None:
            return found, None
        left = limit - (loop.time() - started)
        if left <= 0:
            raise RequestTimeout(f"{contract.display_name}: no answer within {limit} s")
        return found, left

    async def option_chain(
        self, underlying: Contract, *, timeout: float | None = _DEFAULT
    ) -> OptionChain:
        """See :meth:`ibflow.Session.option_chain`."""
        core = self._core
        _check_contract(underlying, "underlying")
        if underlying.sec_type in (SecType.OPTION, SecType.FUTURE_OPTION):
            raise InvalidRequest(
                f"option_chain needs the underlying (a stock, index or future), got the option "
                f"{underlying.display_name}"
            )
        resolved, left = await self._qualified(underlying, core.limit(timeout))
        rows = await core.request(
            "reqSecDefOptParams",
            lambda: core.adapter.options.start_chain(resolved),
            timeout=left,
        )
        expirations = sorted({d for r in rows for e in r[3] if (d := _day(e)) is not None})
        return OptionChain(
            underlying=resolved,
            exchanges=tuple(sorted({r[0] for r in rows})),
            trading_classes=tuple(sorted({r[1] for r in rows if r[1]})),
            multiplier=_multiplier({r[2] for r in rows}),
            expirations=tuple(expirations),
            strikes=tuple(sorted({s for r in rows for s in r[4]})),
        )

    async def implied_volatility(
        self,
        option: Contract,
        price: float,
        underlying_price: float,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Greeks:
        """See :meth:`ibflow.Session.implied_volatility`."""
        return await self._calculate(
            option,
            price=_positive(price, "price"),
            volatility=None,
            underlying=_positive(underlying_price, "underlying_price"),
            timeout=timeout,
        )

    async def option_price(
        self,
        option: Contract,
        volatility: float,
        underlying_price: float,
        *,
        timeout: float | None = _DEFAULT,
    ) -> Greeks:
        """See :meth:`ibflow.Session.option_price`."""
        return await self._calculate(
            option,
            price=None,
            volatility=_positive(volatility, "volatility"),
            underlying=_positive(underlying_price, "underlying_price"),
            timeout=timeout,
        )

    async def _calculate(
        self,
        option: Contract,
        *,
        price: float | None,
        volatility: float | None,
        underlying: float,
        timeout: float | None,
    ) -> Greeks:
        core = self._core
        _check_contract(option, "option")
        if option.sec_type not in (SecType.OPTION, SecType.FUTURE_OPTION):
            raise InvalidRequest(
                f"the option calculator takes an option, got {option.sec_type.value} "
                f"{option.display_name}; build one with ibflow.Option(...) or chain.contracts()"
            )
        resolved, left = await self._qualified(option, core.limit(timeout))
        name = "calculateOptionPrice" if volatility is not None else "calculateImpliedVolatility"
        return await core.request(
            name,
            lambda: core.adapter.options.start_calculation(
                resolved, volatility=volatility, price=price, underlying=underlying
            ),
            timeout=left,
        )
