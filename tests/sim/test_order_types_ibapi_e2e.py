"""The official ibapi client (its own reader thread) places a trailing stop and a conditional
order; the simulator echoes the ratcheting stop on openOrder and fills both."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.order_condition import PriceCondition
from ibapi.wrapper import EWrapper

from ibflow.sim import Simulator
from ibflow.testing import eventually

WAIT = 20  # seconds: ibapi's reader thread competes for the GIL on a loaded machine


class App(EWrapper, EClient):  # type: ignore[misc]
    """Records openOrder, orderStatus and error callbacks."""

    def __init__(self) -> None:
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.next_id = 0
        self.stops: dict[int, list[float]] = {}
        self.conditions: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self.errors: list[int] = []

    def nextValidId(self, orderId: int) -> None:
        self.next_id = orderId
        self.ready.set()

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str, *_: Any) -> None:
        if errorCode < 2100:
            self.errors.append(errorCode)

    def openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:
        self.stops.setdefault(orderId, []).append(order.trailStopPrice)
        self.conditions[orderId] = len(order.conditions)

    def orderStatus(self, orderId: int, status: str, *_: Any) -> None:
        self.status[orderId] = status


def aapl() -> Contract:
    c = Contract()
    c.conId, c.symbol, c.secType, c.exchange, c.currency = 265598, "AAPL", "STK", "SMART", "USD"
    return c


async def test_the_official_client_sees_the_stop_ratchet() -> None:
    async with Simulator(port=0, speed=10) as sim:
        sim.freeze_quotes("AAPL")
        sim.push_quote("AAPL", bid=100.00, ask=100.02, last=100.01)
        app = App()
        await asyncio.to_thread(app.connect, "127.0.0.1", sim.port, 7)
        reader = threading.Thread(target=app.run, daemon=True)
        reader.start()
        try:
            assert await asyncio.to_thread(app.ready.wait, WAIT)
            trail = Order()
            trail.action, trail.totalQuantity, trail.orderType = "SELL", 10, "TRAIL"
            trail.auxPrice = 1.0
            conditional = Order()
            conditional.action, conditional.totalQuantity, conditional.orderType = "BUY", 5, "MKT"
            conditional.conditions = [PriceCondition(2, 265598, "SMART", True, 103.0)]
            first = app.next_id
            app.placeOrder(first, aapl(), trail)
            app.placeOrder(first + 1, aapl(), conditional)
            await eventually(lambda: app.status.get(first) == "PreSubmitted", timeout=WAIT)
            await eventually(lambda: app.status.get(first + 1) == "PreSubmitted", timeout=WAIT)
            assert app.stops[first][-1] == 99.01
            assert app.conditions[first + 1] == 1
            sim.push_quote("AAPL", bid=102.99, ask=103.01, last=103.00)
            await eventually(lambda: app.status.get(first + 1) == "Filled", timeout=WAIT)
            await eventually(lambda: app.stops[first][-1] == 102.00, timeout=WAIT)
            sim.push_quote("AAPL", bid=101.99, ask=102.01, last=102.00)
            await eventually(lambda: app.status.get(first) == "Filled", timeout=WAIT)
            assert app.errors == []
            assert [ex.price for ex in sim.fills] == [103.01, 101.99]
        finally:
            app.disconnect()
            await asyncio.to_thread(reader.join, 5)
