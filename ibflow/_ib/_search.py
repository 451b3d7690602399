"""Symbol search and market rules at ib_async's level.

``reqMarketRule`` carries no request id: IB answers it by rule id, and refuses an unknown rule
with an error addressed to no request (-1). While a rule request is pending, such a 321 is its
answer; ib_async would count it as a warning and wait forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import ib_async

from .._error_codes import error_for
from .._records.symbols import ContractDescription, MarketRule, PriceIncrement
from ._contracts import contract_from_ib
from ._errors import undo_on_error

__all__ = ["SearchPort"]


def _description_from_ib(d: Any) -> ContractDescription | None:
    try:
        contract = contract_from_ib(d.contract)
    except ValueError:
        return None  # a security type ibflow does not model
    return ContractDescription(
        contract=contract,
        derivative_sec_types=tuple(d.derivativeSecTypes or ()),
        description=getattr(d.contract, "description", "") or None,
    )


class SearchPort:
    """``reqMatchingSymbols`` and ``reqMarketRule`` on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected

    def start_matching_symbols(
        self, pattern: str
    ) -> tuple[int, Awaitable[list[ContractDescription]]]:
        """``reqMatchingSymbols``; the matches IB lists, in its order."""
        ib = self._ib
        req_id = int(ib.client.getReqId())
        answer = ib.wrapper.startReq(req_id)
        with undo_on_error(lambda: self.forget(req_id)):
            ib.client.reqMatchingSymbols(req_id, pattern)

        async def run() -> list[ContractDescription]:
            found = [_description_from_ib(d) for d in await answer or ()]
            return [d for d in found if d is not None]

        return req_id, run()

    def forget(self, req_id: int) -> None:
        """Drop an abandoned request (IB has no cancel for it)."""
        self._ib.wrapper._futures.pop(req_id, None)
        self._ib.wrapper._results.pop(req_id, None)

    def start_market_rule(self, rule_id: int) -> tuple[None, Awaitable[MarketRule]]:
        """``reqMarketRule``; an unknown rule fails with IB's error (321)."""
        ib = self._ib
        key = f"marketRule-{rule_id}"
        answer = ib.wrapper.startReq(key)
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_error(req_id: int, code: int, message: str, _contract: Any) -> None:
            if req_id == -1 and code == 321 and not refused.done():
                refused.set_exception(error_for(code, message))

        def forget() -> None:
            ib.errorEvent -= on_error
            ib.wrapper._futures.pop(key, None)

        ib.errorEvent += on_error
        with undo_on_error(forget):
            ib.client.reqMarketRule(rule_id)

        async def run() -> MarketRule:
            try:
                await asyncio.wait({answer, refused}, return_when=asyncio.FIRST_COMPLETED)
                if refused.done():
                    refused.result()
                rows = answer.result()
            finally:
                forget()
                refused.cancel()
                if not answer.done():
                    answer.cancel()
                elif not answer.cancelled():
                    with contextlib.suppress(BaseException):
                        answer.exception()
            return MarketRule(
                rule_id=rule_id,
                increments=tuple(PriceIncrement(r.lowEdge, r.increment) for r in rows),
            )

        return None, run()
