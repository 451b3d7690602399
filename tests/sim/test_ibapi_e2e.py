"""The official ibapi client (blocking sockets, its own reader thread) uses the options, depth,
historical-tick, symbol, market-rule and scanner requests against the simulator."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.scanner import ScannerSubscription
from ibapi.wrapper import EWrapper

from ibflow.sim import Simulator


class App(EWrapper, EClient):  # type: ignore[misc]
    """Records the callbacks the requests below produce."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.events: list[tuple[Any, ...]] = []
        self.ready = threading.Event()

    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str, *_: Any) -> None:
        if errorCode < 2100:
            self.events.append(("error", reqId, errorCode))

    def securityDefinitionOptionParameter(self, reqId: int, exchange: str, *a: Any) -> None:
        self.events.append(("chain", reqId, exchange, sorted(a[3]), sorted(a[4])))

    def tickOptionComputation(self, reqId: int, tickType: int, *a: Any) -> None:
        self.events.append(("computation", reqId, tickType, a[1]))

    def updateMktDepthL2(self, reqId: int, *a: Any) -> None:
        self.events.append(("depth", reqId, a[-1]))

    def historicalTicksLast(self, reqId: int, ticks: list[Any], done: bool) -> None:
        self.events.append(("ticks", reqId, len(ticks), done))

    def symbolSamples(self, reqId: int, found: list[Any]) -> None:
        self.events.append(("symbols", reqId, [d.contract.symbol for d in found]))

    def marketRule(self, marketRuleId: int, increments: list[Any]) -> None:
        self.events.append(("rule", marketRuleId, [(p.lowEdge, p.increment) for p in increments]))

    def scannerDataEnd(self, reqId: int) -> None:
        self.events.append(("scan", reqId))

    def currentTime(self, time: int) -> None:
        self.events.append(("time",))

    def scannerParameters(self, xml: str) -> None:
        self.events.append(("scanner parameters", "<scanCode>MOST_ACTIVE</scanCode>" in xml))

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], bool]) -> None:
        deadline = time.monotonic() + 5
        while not predicate(list(self.events)):
            assert time.monotonic() < deadline, self.events[-20:]
            time.sleep(0.01)

    def kinds(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


def contract(**fields: Any) -> Contract:
    c = Contract()
    for name, value in fields.items():
        setattr(c, name, value)
    return c


def session(port: int) -> None:
    app = App()
    app.connect("127.0.0.1", port, clientId=7)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        assert app.ready.wait(5)
        call = contract(
            symbol="AAPL", secType="OPT", exchange="SMART", currency="USD", multiplier="100",
            lastTradeDateOrContractMonth="20270115", strike=230.0, right="C",
        )  # fmt: skip
        aapl = contract(
            conId=265598, symbol="AAPL", secType="STK", exchange="SMART", currency="USD"
        )
        app.reqSecDefOptParams(1, "AAPL", "", "STK", 265598)
        app.calculateImpliedVolatility(2, call, 12.0, 230.0, [])
        app.calculateOptionPrice(3, call, 0.3, 230.0, [])
        app.reqMktDepth(4, aapl, 5, True, [])
        app.reqHistoricalTicks(5, aapl, "20261124 15:00:00 UTC", "", 100, "TRADES", 1, True, [])
        app.reqMatchingSymbols(6, "appl")
        app.reqMarketRule(26)
        scan = ScannerSubscription()
        scan.instrument, scan.locationCode, scan.scanCode = "STK", "STK.US.MAJOR", "MOST_ACTIVE"
        app.reqScannerSubscription(8, scan, [], [])
        app.reqScannerParameters()
        app.reqMktData(9, call, "", False, False, [])
        app.wait_for(
            lambda events: (
                {e[0] for e in events}
                >= {"chain", "ticks", "symbols", "rule", "scan", "scanner parameters"}
                and len([e for e in events if e[0] == "depth"]) > 20
                and {13} <= {e[2] for e in events if e[0] == "computation" and e[1] == 9}
            )
        )
        app.cancelMktDepth(4, True)
        app.cancelScannerSubscription(8)
        app.cancelMktData(9)
        app.cancelCalculateImpliedVolatility(2)
        app.cancelCalculateOptionPrice(3)
        app.reqCurrentTime()  # answered after the cancels: they have all been read
        app.wait_for(lambda events: ("time",) in events)
        assert app.kinds("error") == []
        chains = app.kinds("chain")
        assert "SMART" in {e[2] for e in chains}
        assert chains[0][3] == ["20270115", "20270219", "20270319"]
        custom = {e[1]: e for e in app.kinds("computation") if e[2] == 53}
        assert custom[3][3] == 0.3  # the volatility it was given
        assert 0.0 < custom[2][3] < 1.0
        assert all(e[2] is True for e in app.kinds("depth"))  # isSmartDepth
        assert app.kinds("ticks") == [("ticks", 5, app.kinds("ticks")[0][2], True)]
        assert app.kinds("ticks")[0][2] >= 100
        assert app.kinds("symbols") == [("symbols", 6, ["AAPL"])]
        assert app.kinds("rule") == [("rule", 26, [(0.0, 0.01)])]
        assert app.kinds("scanner parameters") == [("scanner parameters", True)]
    finally:
        app.disconnect()
        reader.join(5)


async def test_the_official_client_uses_the_new_requests() -> None:
    # A gentler market than the usual speed=100: ibapi drains every queued message on exit.
    async with Simulator(port=0, speed=10) as sim:
        await asyncio.to_thread(session, sim.port)
        assert sim.request_count("cancel_mkt_depth") == 1
        assert sim.request_count("cancel_scanner_subscription") == 1
        assert "mkt_depth" not in sim.subscriptions()
