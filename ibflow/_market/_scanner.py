"""Market scanners: what TWS can scan, one-off scans, and scans that keep updating."""

from __future__ import annotations

from collections.abc import Hashable

from .._account import Contracts
from .._core import SessionCore
from .._errors import InvalidRequest, RequestError
from .._records.market import Gap
from .._records.scanner import (
    ScannerParameters,
    ScannerSubscription,
    ScanResult,
    parse_scanner_parameters,
)
from .._stream import Overflow, Stream
from .._timeouts import SESSION_DEFAULT
from ._api import _subscribe
from ._hubs import Link, MarketState, _Hub

__all__ = ["Scanners"]

_DEFAULT = SESSION_DEFAULT


def _check(sub: object) -> ScannerSubscription:
    if not isinstance(sub, ScannerSubscription):
        raise InvalidRequest(
            "expected an ibflow.ScannerSubscription(code=..., instrument=..., location=...), "
            f"got {sub!r}"
        )
    return sub


class _ScannerHub(_Hub[list[ScanResult]]):
    kind = "scanner"
    keep_last = True

    def __init__(self, state: MarketState, key: Hashable, sub: ScannerSubscription) -> None:
        super().__init__(state, key)
        self.sub = sub

    def _open(self) -> Link:
        return self.core.adapter.scanner.open_scanner(self.sub, self.deliver)


class Scanners:
    """Scanner parameters, scans and scanner streams."""

    def __init__(self, core: SessionCore, contracts: Contracts) -> None:
        self._core = core
        self._state = MarketState(core, contracts)

    async def scanner_parameters(self, *, timeout: float | None = _DEFAULT) -> ScannerParameters:
        """See :meth:`ibflow.Session.scanner_parameters`."""
        core = self._core
        xml = await core.request(
            "reqScannerParameters",
            lambda: core.adapter.scanner.start_parameters(),
            timeout=core.limit(timeout),
        )
        try:
            return parse_scanner_parameters(xml)
        except ValueError as exc:
            raise RequestError(-1, f"TWS sent scanner parameters that are not XML: {exc}") from None

    async def scan(
        self, subscription: ScannerSubscription, *, timeout: float | None = _DEFAULT
    ) -> list[ScanResult]:
        """See :meth:`ibflow.Session.scan`."""
        core = self._core
        sub = _check(subscription)
        return await core.request(
            "reqScannerSubscription",
            lambda: core.adapter.scanner.start_scan(sub),
            timeout=core.limit(timeout),
            cancel=core.adapter.scanner.cancel,
        )

    def scanner(
        self,
        subscription: ScannerSubscription,
        *,
        buffer: int = 16,
        overflow: Overflow | str = Overflow.LATEST,
    ) -> Stream[list[ScanResult] | Gap]:
        """See :meth:`ibflow.Session.scanner`."""
        sub = _check(subscription)
        state = self._state
        return _subscribe(
            state,
            name=f"scanner {sub.code}",
            buffer=buffer,
            overflow=overflow,
            key=lambda _r, _a: ("scanner", sub),
            make_hub=lambda _r, _a, k: _ScannerHub(state, k, sub),
        )
