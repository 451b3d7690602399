"""Absurd numbers and wrong types: a typed InvalidRequest, and not one frame sent."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, StopLimitOrder, StopOrder
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import AAPL

FLOAT_MAX = sys.float_info.max

BUILDS: dict[str, Callable[[], object]] = {
    "quantity as text": lambda: MarketOrder("BUY", "10"),  # type: ignore[arg-type]
    "price as text": lambda: LimitOrder("BUY", 1, "x"),  # type: ignore[arg-type]
    "quantity 1e300": lambda: MarketOrder("BUY", 1e300),
    "quantity over 1e9": lambda: MarketOrder("BUY", 1_000_000_001),
    "quantity too big for a float": lambda: MarketOrder("BUY", 10**400),
    "quantity Decimal sNaN": lambda: MarketOrder("BUY", Decimal("sNaN")),  # type: ignore[arg-type]
    "quantity Decimal 1e400": lambda: MarketOrder("BUY", Decimal("1e400")),  # type: ignore[arg-type]
    "quantity NaN": lambda: MarketOrder("BUY", float("nan")),
    "quantity as a list": lambda: MarketOrder("BUY", [1]),  # type: ignore[arg-type]
    "limit 1e20": lambda: LimitOrder("BUY", 1, 1e20),
    "limit float max": lambda: LimitOrder("BUY", 1, FLOAT_MAX),
    "limit inf": lambda: LimitOrder("BUY", 1, float("inf")),
    "stop 1e300": lambda: StopOrder("SELL", 1, 1e300),
    "stop-limit stop float max": lambda: StopLimitOrder("BUY", 1, 190.0, FLOAT_MAX),
    "stop-limit limit as a tuple": lambda: StopLimitOrder("BUY", 1, (1,), 2.0),  # type: ignore[arg-type]
    "side None": lambda: MarketOrder(None, 1),  # type: ignore[arg-type]
    "tif 3": lambda: MarketOrder("BUY", 1, tif=3),  # type: ignore[arg-type]
    "order_ref 5": lambda: MarketOrder("BUY", 1, order_ref=5),  # type: ignore[arg-type]
    "account bytes": lambda: MarketOrder("BUY", 1, account=b"DU1"),  # type: ignore[arg-type]
    "good_till text": lambda: MarketOrder("BUY", 1, tif="GTD", good_till="tomorrow"),  # type: ignore[arg-type]
    "bracket entry 1e300": lambda: ibflow.bracket("BUY", 1, 1e300, 1e301, 1.0),
    "bracket stop as text": lambda: ibflow.bracket("BUY", 1, 190.0, 195.0, "185"),  # type: ignore[arg-type]
    "oca of a text": lambda: ibflow.oca(LimitOrder("BUY", 1, 1.0), "LMT"),  # type: ignore[arg-type]
    "oca group 5": lambda: ibflow.oca(  # type: ignore[arg-type]
        LimitOrder("BUY", 1, 1.0), LimitOrder("BUY", 1, 2.0), group=5
    ),
    "oca type None": lambda: ibflow.oca(  # type: ignore[arg-type]
        LimitOrder("BUY", 1, 1.0), LimitOrder("BUY", 1, 2.0), type=None
    ),
    "Order with a bad order_type": lambda: ibflow.Order(  # type: ignore[arg-type]
        side="BUY", quantity=1, order_type=7
    ),
}


@pytest.mark.parametrize("build", BUILDS.values(), ids=BUILDS.keys())
def test_builders_refuse_with_invalid_request(build: Callable[[], object]) -> None:
    with pytest.raises(ibflow.InvalidRequest):
        build()


def test_the_bounds_themselves_are_accepted() -> None:
    assert MarketOrder("BUY", 1_000_000_000).quantity == 1e9
    assert LimitOrder("SELL", 1, 1e9).limit_price == 1e9


async def test_nothing_absurd_reaches_the_wire(session: ibflow.Session, sim: Simulator) -> None:
    for timeout in ("5", float("nan"), -1.0, [5]):
        with pytest.raises(ibflow.InvalidRequest):
            await session.place(AAPL, MarketOrder("BUY", 1), timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ibflow.InvalidRequest):
        await session.place(AAPL, 5)  # type: ignore[call-overload]
    assert sim.request_count("place_order") == 0
    assert session.trades() == ()
    trade = await session.place(AAPL, LimitOrder("BUY", 1, 150.00))
    await eventually(lambda: trade.status is ibflow.OrderStatus.SUBMITTED)
    changes: list[dict[str, object]] = [
        {"quantity": 1e300},
        {"quantity": 10**400},
        {"quantity": "2"},
        {"limit_price": FLOAT_MAX},
        {"limit_price": 1e20},
        {"limit_price": float("nan")},
        {"limit_price": "151"},
    ]
    for change in changes:
        with pytest.raises(ibflow.InvalidRequest):
            await trade.modify(**change)  # type: ignore[arg-type]
    # Only the original placeOrder went out: no modify, no cancel.
    assert sim.request_count("place_order") == 1
    assert sim.request_count("cancel_order") == 0
    assert trade.order.limit_price == 150.00
    await trade.cancel()
