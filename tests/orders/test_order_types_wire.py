"""The other order types on the wire: each placed through a real Session, its placeOrder frame
read back with the simulator's own parser, and what TWS reports decoded into snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import ibflow
from ibflow import (
    Adaptive,
    Algo,
    ExecutionCondition,
    LimitIfTouchedOrder,
    LimitOnCloseOrder,
    LimitOrder,
    MarginCondition,
    MarketIfTouchedOrder,
    MarketOnCloseOrder,
    MarketOrder,
    PeggedToMidpointOrder,
    PercentChangeCondition,
    PriceCondition,
    RelativeOrder,
    TimeCondition,
    TrailingStopLimitOrder,
    TrailingStopOrder,
    VolumeCondition,
)
from ibflow.sim import Simulator
from ibflow.sim._codec import Fields
from ibflow.sim._place_order import PlaceOrderRequest, parse_place_order
from ibflow.testing import session_for

AAPL_CON_ID = 265598
AAPL = ibflow.Stock("AAPL", con_id=AAPL_CON_ID)
UNSET = None  # how the parser reads an unset double
# Monday 2025-01-06, 10:00 in New York: on-close orders are taken (not past their cut-off).
MONDAY_10AM = datetime(2025, 1, 6, 15, 0, tzinfo=UTC).timestamp()


def last_place_order(sim: Simulator) -> PlaceOrderRequest:
    """The simulator's parse of the newest placeOrder frame it received."""
    frames = [fields for _, kind, fields in sim.requests if kind == "place_order"]
    assert frames, "no placeOrder reached the simulator"
    f = Fields(frames[-1])
    req = parse_place_order(f)
    assert f.remaining == 0, "the frame must hold exactly the fields of its layout"
    return req


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0, clock=lambda: MONDAY_10AM) as simulator:
        simulator.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        yield simulator


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ibflow.Session]:
    async with session_for(sim) as connected:
        yield connected


# (order, the PlaceOrderRequest fields it must arrive with). Prices rest away from the quote.
WIRE: list[tuple[str, ibflow.Order, dict[str, Any]]] = [
    (
        "TRAIL amount",
        TrailingStopOrder("SELL", 10, trail_amount=2.5, trail_stop_price=180.0),
        {
            "order_type": "TRAIL",
            "aux_price": 2.5,
            "trailing_percent": UNSET,
            "trail_stop_price": 180.0,
            "lmt_price": UNSET,
        },
    ),
    (
        "TRAIL percent",
        TrailingStopOrder("SELL", 10, trail_percent=4.0),
        {"order_type": "TRAIL", "aux_price": UNSET, "trailing_percent": 4.0},
    ),
    (
        "TRAIL LIMIT",
        TrailingStopLimitOrder(
            "SELL", 10, trail_amount=5.0, limit_offset=0.1, trail_stop_price=185.0
        ),
        {
            "order_type": "TRAIL LIMIT",
            "aux_price": 5.0,
            "lmt_price_offset": 0.1,
            "trail_stop_price": 185.0,
            "lmt_price": UNSET,
        },
    ),
    ("MOC", MarketOnCloseOrder("BUY", 10), {"order_type": "MOC", "lmt_price": UNSET}),
    (
        "LOC",
        LimitOnCloseOrder("BUY", 10, 150.0),
        {"order_type": "LOC", "lmt_price": 150.0, "tif": "DAY"},
    ),
    (
        "MIT",
        MarketIfTouchedOrder("BUY", 10, 150.0),
        {"order_type": "MIT", "aux_price": 150.0, "lmt_price": UNSET},
    ),
    (
        "LIT",
        LimitIfTouchedOrder("BUY", 10, 150.0, 150.05),
        {"order_type": "LIT", "aux_price": 150.0, "lmt_price": 150.05},
    ),
    (
        "REL",
        RelativeOrder("BUY", 10, offset=0.01, cap=150.0),
        {"order_type": "REL", "aux_price": 0.01, "lmt_price": 150.0},
    ),
    (
        "PEG MID",
        PeggedToMidpointOrder("BUY", 10, offset=0.02, limit_price=150.0),
        {
            "order_type": "PEG MID",
            "aux_price": 0.02,
            "lmt_price": 150.0,
            "mid_offset_at_whole": UNSET,
            "mid_offset_at_half": UNSET,
        },
    ),
    (
        "Adaptive",
        LimitOrder("BUY", 10, 150.0, algo=Adaptive("Patient")),
        {
            "order_type": "LMT",
            "algo_strategy": "Adaptive",
            "algo_params": (("adaptivePriority", "Patient"),),
        },
    ),
    (
        "Vwap",
        LimitOrder("BUY", 10, 150.0, algo=Algo("Vwap", {"maxPctVol": 0.25, "noTakeLiq": True})),
        {"algo_strategy": "Vwap", "algo_params": (("maxPctVol", "0.25"), ("noTakeLiq", "1"))},
    ),
]


def check_frame(req: PlaceOrderRequest, order: ibflow.Order, expected: dict[str, Any]) -> None:
    assert (req.action, req.total_quantity) == (order.side.value, order.quantity)
    for name, value in expected.items():
        assert getattr(req, name) == value, name
    if order.algo is None:
        assert (req.algo_strategy, req.algo_params) == ("", ())
    assert req.conditions == ()


@pytest.mark.parametrize(("order", "expected"), [w[1:] for w in WIRE], ids=[w[0] for w in WIRE])
async def test_each_type_arrives_with_its_fields_and_works(
    sim: Simulator, session: ibflow.Session, order: ibflow.Order, expected: dict[str, Any]
) -> None:
    trade = await session.place(AAPL, order)
    check_frame(last_place_order(sim), order, expected)
    assert trade.status in (ibflow.OrderStatus.SUBMITTED, ibflow.OrderStatus.PRE_SUBMITTED)
    [snapshot] = [s for s in await session.open_orders() if s.order_id == trade.order_id]
    assert snapshot.order_type is order.order_type
    await trade.cancel()


@pytest.mark.parametrize(("order", "expected"), [w[1:] for w in WIRE], ids=[w[0] for w in WIRE])
async def test_what_if_previews_each_type(
    sim: Simulator, session: ibflow.Session, order: ibflow.Order, expected: dict[str, Any]
) -> None:
    preview = await session.what_if(AAPL, order)
    req = last_place_order(sim)
    assert req.what_if is True
    check_frame(req, order, expected)
    assert preview.init_margin_change is not None
    assert not [o for o in sim.orders if o.order_id == req.order_id]  # nothing was placed


async def test_conditions_arrive_in_order_with_their_flags(
    sim: Simulator, session: ibflow.Session
) -> None:
    at = datetime(2031, 1, 2, 10, 0, tzinfo=ZoneInfo("US/Eastern"))
    order = LimitOrder(
        "BUY",
        10,
        150.0,
        conditions=[
            PriceCondition(contract=AAPL, price=500.0, trigger_method=2),
            TimeCondition(time=at, conjunction="or"),
            MarginCondition(percent=30, is_more=False),
            ExecutionCondition(contract=ibflow.Stock("MSFT")),
            VolumeCondition(contract=AAPL, volume=2_000_000_000),
            PercentChangeCondition(contract=AAPL, change_percent=-50.0, is_more=False),
        ],
        conditions_cancel_order=True,
        conditions_ignore_rth=True,
    )
    trade = await session.place(AAPL, order)
    req = last_place_order(sim)
    assert req.conditions == (
        (1, ("a", "1", "500.0", str(AAPL_CON_ID), "SMART", "2")),
        (3, ("o", "1", "20310102 15:00:00 UTC")),
        (4, ("a", "0", "30")),
        (5, ("a", "STK", "SMART", "MSFT")),
        (6, ("a", "1", "2000000000", str(AAPL_CON_ID), "SMART")),
        (7, ("a", "0", "-50.0", str(AAPL_CON_ID), "SMART")),
    )
    assert (req.conditions_cancel_order, req.conditions_ignore_rth) == (True, True)
    # None of them is true: TWS holds the order.
    assert trade.status in (ibflow.OrderStatus.SUBMITTED, ibflow.OrderStatus.PRE_SUBMITTED)
    await trade.cancel()


async def test_snapshots_report_the_trailing_terms_and_the_algo(
    sim: Simulator, session: ibflow.Session
) -> None:
    trail = await session.place(AAPL, TrailingStopOrder("SELL", 10, trail_amount=30.0))
    pct = await session.place(
        AAPL, TrailingStopOrder("SELL", 10, trail_percent=20.0, trail_stop_price=150.0)
    )
    touch = await session.place(AAPL, MarketIfTouchedOrder("BUY", 10, 150.0))
    algo = await session.place(AAPL, MarketOrder("BUY", 1, algo=Adaptive(), conditions=[
        PriceCondition(contract=AAPL, price=1.0, is_more=False)
    ]))  # fmt: skip
    snapshots = {s.order_id: s for s in await session.open_orders()}
    s = snapshots[trail.order_id]
    assert (s.trail_amount, s.trail_percent) == (30.0, None)
    assert s.trail_stop_price is not None
    assert s.stop_price is None
    s = snapshots[pct.order_id]
    assert (s.trail_amount, s.trail_percent) == (None, 20.0)
    assert snapshots[touch.order_id].trigger_price == 150.0
    assert snapshots[algo.order_id].algo_strategy == "Adaptive"
    for trade in (trail, pct, touch, algo):
        await trade.cancel()


async def test_off_tick_distances_are_refused_before_sending(
    sim: Simulator, session: ibflow.Session
) -> None:
    for order, match in [
        (TrailingStopOrder("SELL", 1, trail_amount=0.005), "trail_amount 0.005 is a price"),
        (RelativeOrder("BUY", 1, offset=0.015), "offset 0.015 is a price distance"),
        (
            TrailingStopLimitOrder("SELL", 1, trail_percent=1, limit_offset=0.001),
            "limit_offset 0.001",
        ),
        (MarketIfTouchedOrder("BUY", 1, 150.005), "trigger_price 150.005 is not a multiple"),
        (TrailingStopOrder("SELL", 1, trail_percent=1, trail_stop_price=1.001), "trail_stop_price"),
    ]:
        with pytest.raises(ibflow.InvalidRequest, match=match):
            await session.place(AAPL, order)
    assert sim.request_count("place_order") == 0
