"""Option chains, option computations and the calculate requests at ib_async's level.

ib_async turns IB's "not computed" sentinels into ``None`` for some figures and keeps -2 for
vega and theta; :func:`greeks_from` applies IB's rule to every figure (and drops NaN), so a
:class:`~ibflow.Greeks` never carries a placeholder. The calculate requests are one-shot
answers that TWS keeps computing until cancelled: the cancel goes out once the answer is in,
or when the caller gives up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import ib_async

from .._records.contracts import Contract
from .._records.options import Greeks
from ._contracts import contract_to_ib
from ._errors import undo_on_error

__all__ = ["ChainRow", "OptionsPort", "greeks_from"]

# (exchange, trading class, multiplier text, expirations, strikes) as IB lists one venue.
ChainRow = tuple[str, str, str, tuple[str, ...], tuple[float, ...]]


def _figure(value: float | None, sentinel: float) -> float | None:
    if value is None or value != value or value == sentinel:
        return None
    return float(value)


def greeks_from(comp: Any) -> Greeks:
    """ibflow's Greeks for ib_async's ``OptionComputation`` (IB's sentinels become None)."""
    return Greeks(
        implied_vol=_figure(comp.impliedVol, -1.0),
        delta=_figure(comp.delta, -2.0),
        gamma=_figure(comp.gamma, -2.0),
        vega=_figure(comp.vega, -2.0),
        theta=_figure(comp.theta, -2.0),
        option_price=_figure(comp.optPrice, -1.0),
        underlying_price=_figure(comp.undPrice, -1.0),
    )


def _forget(ib: ib_async.IB, req_id: int) -> None:
    ib.wrapper._futures.pop(req_id, None)
    ib.wrapper._results.pop(req_id, None)
    ib.wrapper._reqId2Contract.pop(req_id, None)


class OptionsPort:
    """Option requests on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected

    def start_chain(self, underlying: Contract) -> tuple[int, Awaitable[list[ChainRow]]]:
        """``reqSecDefOptParams`` for a qualified underlying; one row per listing venue."""
        ib = self._ib
        req_id = int(ib.client.getReqId())
        answer = ib.wrapper.startReq(req_id)
        fut_fop_exchange = "" if underlying.sec_type.value != "FUT" else underlying.exchange
        with undo_on_error(lambda: _forget(ib, req_id)):
            ib.client.reqSecDefOptParams(
                req_id,
                underlying.symbol,
                fut_fop_exchange,
                underlying.sec_type.value,
                underlying.con_id or 0,
            )

        async def run() -> list[ChainRow]:
            rows = await answer
            return [
                (
                    r.exchange,
                    r.tradingClass,
                    str(r.multiplier),
                    tuple(r.expirations),
                    tuple(float(s) for s in r.strikes),
                )
                for r in rows
            ]

        return req_id, run()

    def start_calculation(
        self, option: Contract, *, volatility: float | None, price: float | None, underlying: float
    ) -> tuple[int, Awaitable[Greeks]]:
        """``calculateOptionPrice`` (given ``volatility``) or ``calculateImpliedVolatility``
        (given ``price``); the awaitable gives the computation and then sends the cancel."""
        ib = self._ib
        client = ib.client
        req_id = int(client.getReqId())
        ib_contract = contract_to_ib(option)
        answer = ib.wrapper.startReq(req_id, ib_contract)
        if volatility is not None:
            send: Callable[[], None] = lambda: client.calculateOptionPrice(  # noqa: E731
                req_id, ib_contract, volatility, underlying, []
            )
            cancel = client.cancelCalculateOptionPrice
        else:
            assert price is not None
            send = lambda: client.calculateImpliedVolatility(  # noqa: E731
                req_id, ib_contract, price, underlying, []
            )
            cancel = client.cancelCalculateImpliedVolatility
        with undo_on_error(lambda: _forget(ib, req_id)):
            send()

        async def run() -> Greeks:
            try:
                return greeks_from(await answer)
            finally:
                _forget(ib, req_id)
                if self._is_connected():
                    with contextlib.suppress(Exception):
                        cancel(req_id)

        return req_id, run()
