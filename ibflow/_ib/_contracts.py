"""Contracts across the border: ibflow's frozen ``Contract`` ⇄ ib_async's mutable one.

Only this package imports ib_async; every feature that sends or receives a contract converts it
here, so camelCase, empty-string sentinels and ``0.0`` strikes stop at this line.
"""

from __future__ import annotations

import ib_async

from .._records.contracts import Contract, Right, SecType

__all__ = ["contract_from_ib", "contract_to_ib"]


def contract_to_ib(contract: Contract) -> ib_async.Contract:
    """The ib_async contract to send for ``contract`` (a fresh object each time)."""
    multiplier = ""
    if contract.multiplier is not None:
        m = contract.multiplier
        multiplier = str(int(m)) if float(m).is_integer() else str(m)
    return ib_async.Contract(
        secType=contract.sec_type.value,
        conId=contract.con_id or 0,
        symbol=contract.symbol,
        exchange=contract.exchange,
        primaryExchange=contract.primary_exchange or "",
        currency=contract.currency,
        localSymbol=contract.local_symbol or "",
        tradingClass=contract.trading_class or "",
        lastTradeDateOrContractMonth=contract.expiry or "",
        strike=contract.strike or 0.0,
        right=contract.right.value if contract.right else "",
        multiplier=multiplier,
    )


def contract_from_ib(c: ib_async.Contract) -> Contract:
    """ibflow's contract for what TWS sent; unknown security types raise ``ValueError``."""
    right = {"C": Right.CALL, "CALL": Right.CALL, "P": Right.PUT, "PUT": Right.PUT}.get(
        (c.right or "").upper()
    )
    try:
        multiplier = float(c.multiplier) if c.multiplier else None
    except ValueError:
        multiplier = None
    return Contract(
        sec_type=SecType(c.secType),
        symbol=c.symbol,
        exchange=c.exchange or c.primaryExchange or "",
        currency=c.currency,
        con_id=c.conId or None,
        primary_exchange=c.primaryExchange or None,
        local_symbol=c.localSymbol or None,
        trading_class=c.tradingClass or None,
        expiry=c.lastTradeDateOrContractMonth or None,
        strike=c.strike or None,
        right=right,
        multiplier=multiplier,
    )
