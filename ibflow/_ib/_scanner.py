"""Market scanners at ib_async's level: parameters, one-off scans and scan subscriptions."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import ib_async

from .._records.scanner import ScannerSubscription, ScanResult
from ._contracts import contract_from_ib
from ._errors import map_ib_errors
from ._errors import undo_on_error as _undo_on_error
from ._market import Link, _new_req_id, _pop_if

__all__ = ["ScannerPort"]


def _to_ib(sub: ScannerSubscription) -> tuple[ib_async.ScannerSubscription, list[Any]]:
    ib_sub = ib_async.ScannerSubscription(
        numberOfRows=sub.rows,
        instrument=sub.instrument,
        locationCode=sub.location,
        scanCode=sub.code,
    )
    return ib_sub, [ib_async.TagValue(k, str(v)) for k, v in sub.filters.items()]


def _results(rows: list[Any]) -> list[ScanResult]:
    out = []
    for row in rows:
        try:
            contract = contract_from_ib(row.contractDetails.contract)
        except ValueError:
            continue  # a security type ibflow does not model
        out.append(
            ScanResult(
                rank=int(row.rank),
                contract=contract,
                distance=row.distance or None,
                benchmark=row.benchmark or None,
                projection=row.projection or None,
            )
        )
    return sorted(out, key=lambda r: r.rank)


class ScannerPort:
    """Scanner requests on one session's ``IB``."""

    def __init__(self, ib: ib_async.IB, is_connected: Callable[[], bool]) -> None:
        self._ib = ib
        self._is_connected = is_connected
        self._live_scans: set[int] = set()  # one-off scans still subscribed at TWS

    def start_parameters(self) -> tuple[None, Awaitable[str]]:
        """``reqScannerParameters``: TWS's XML (no request id)."""
        ib = self._ib
        answer = ib.wrapper.startReq("scannerParams")
        with _undo_on_error(lambda: self._forget("scannerParams")):
            ib.client.reqScannerParameters()

        async def run() -> str:
            return str(await answer)

        return None, run()

    def _forget(self, key: int | str) -> None:
        self._ib.wrapper._futures.pop(key, None)
        self._ib.wrapper._results.pop(key, None)

    def cancel(self, req_id: int) -> None:
        """``cancelScannerSubscription`` for a one-off scan, once (whoever asks first)."""
        self._forget(req_id)
        if req_id in self._live_scans:
            self._live_scans.discard(req_id)
            if self._is_connected():
                with contextlib.suppress(Exception):
                    self._ib.client.cancelScannerSubscription(req_id)

    def start_scan(self, sub: ScannerSubscription) -> tuple[int, Awaitable[list[ScanResult]]]:
        """One scan: subscribe, take the first result list, cancel."""
        ib = self._ib
        client = ib.client
        req_id = int(client.getReqId())
        ib_sub, filters = _to_ib(sub)
        answer = ib.wrapper.startReq(req_id, container=ib_async.ScanDataList())
        with _undo_on_error(lambda: self._forget(req_id)):
            client.reqScannerSubscription(req_id, ib_sub, [], filters)
        self._live_scans.add(req_id)

        async def run() -> list[ScanResult]:
            try:
                return _results(list(await answer))
            finally:
                self.cancel(req_id)  # TWS keeps the scan running until it is cancelled

        return req_id, run()

    def open_scanner(
        self, sub: ScannerSubscription, emit: Callable[[list[ScanResult]], None]
    ) -> Link:
        """``reqScannerSubscription``; ``emit`` gets each full result list TWS sends."""
        ib = self._ib
        wrapper = ib.wrapper
        req_id = _new_req_id(ib, "reqScannerSubscription")
        ib_sub, filters = _to_ib(sub)
        data = ib_async.ScanDataList()
        data.reqId = req_id

        def on_update(rows: ib_async.ScanDataList) -> None:
            emit(_results(list(rows)))

        def stop(send: bool) -> None:
            data.updateEvent -= on_update
            if send:
                with contextlib.suppress(Exception):
                    ib.client.cancelScannerSubscription(req_id)
            _pop_if(wrapper.reqId2Subscriber, req_id, data)

        data.updateEvent += on_update
        wrapper.reqId2Subscriber[req_id] = data
        with _undo_on_error(lambda: stop(False)), map_ib_errors("reqScannerSubscription"):
            ib.client.reqScannerSubscription(req_id, ib_sub, [], filters)
        return Link(req_id, stop)
