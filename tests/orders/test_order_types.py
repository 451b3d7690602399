"""The other order types, algos and conditions: validated when built (no simulator needed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
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
    OrderType,
    PeggedToMidpointOrder,
    PercentChangeCondition,
    PriceCondition,
    RelativeOrder,
    TimeCondition,
    TimeInForce,
    TrailingStopLimitOrder,
    TrailingStopOrder,
    VolumeCondition,
)

AAPL = ibflow.Stock("AAPL", con_id=265598)
UNQUALIFIED = ibflow.Stock("MSFT")


def test_each_builder_makes_its_type_with_its_terms() -> None:
    trail = TrailingStopOrder("SELL", 100, trail_amount=2.0, trail_stop_price=188.0)
    assert (trail.order_type, trail.trail_amount, trail.trail_stop_price) == (
        OrderType.TRAILING_STOP,
        2.0,
        188.0,
    )
    assert trail.trail_percent is None
    assert trail.price == 188.0
    pct = TrailingStopOrder("BUY", 5, trail_percent=1.5)
    assert (pct.trail_percent, pct.trail_amount, pct.price) == (1.5, None, None)
    trail_limit = TrailingStopLimitOrder("SELL", 10, trail_amount=1, limit_offset=0.1)
    assert (trail_limit.order_type.value, trail_limit.limit_offset) == ("TRAIL LIMIT", 0.1)
    moc = MarketOnCloseOrder("BUY", 10)
    assert (moc.order_type.value, moc.tif, moc.price) == ("MOC", TimeInForce.DAY, None)
    loc = LimitOnCloseOrder("SELL", 10, 191.5)
    assert (loc.order_type.value, loc.limit_price) == ("LOC", 191.5)
    mit = MarketIfTouchedOrder("BUY", 10, 185.0)
    assert (mit.order_type.value, mit.trigger_price, mit.price) == ("MIT", 185.0, 185.0)
    lit = LimitIfTouchedOrder("BUY", 10, 185.0, 185.1)
    assert (lit.order_type.value, lit.trigger_price, lit.limit_price) == ("LIT", 185.0, 185.1)
    rel = RelativeOrder("BUY", 10, offset=0.01, cap=190.5)
    assert (rel.order_type.value, rel.offset, rel.limit_price) == ("REL", 0.01, 190.5)
    peg = PeggedToMidpointOrder("SELL", 10)
    assert (peg.order_type.value, peg.offset, peg.limit_price) == ("PEG MID", 0.0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        trail.trail_amount = 3.0  # type: ignore[misc]


def test_market_and_limit_on_open_stay_the_opg_tif() -> None:
    assert MarketOrder("BUY", 1, tif="OPG").tif is TimeInForce.OPG
    assert LimitOrder("BUY", 1, 10.0, tif="OPG").order_type is OrderType.LIMIT


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: TrailingStopOrder("SELL", 1), "exactly one of trail_amount"),
        (
            lambda: TrailingStopOrder("SELL", 1, trail_amount=1, trail_percent=1),
            "exactly one of trail_amount",
        ),
        (lambda: TrailingStopOrder("SELL", 1, trail_amount=0), "trail_amount must be greater"),
        (lambda: TrailingStopOrder("SELL", 1, trail_percent=100), "percentage above 0 and below"),
        (lambda: TrailingStopOrder("SELL", 1, trail_percent=-1), "percentage above 0 and below"),
        (
            lambda: TrailingStopOrder("SELL", 1, trail_amount=1, trail_stop_price=float("nan")),
            "finite",
        ),
        (
            lambda: TrailingStopLimitOrder("SELL", 1, trail_amount=1, limit_offset=-0.1),
            "price distance: at least 0",
        ),
        (lambda: LimitOnCloseOrder("BUY", 1, 0), "limit_price must be greater than 0"),
        (lambda: MarketIfTouchedOrder("BUY", 1, -5), "trigger_price must be greater than 0"),
        (lambda: RelativeOrder("BUY", 1, offset=-0.01), "price distance"),
        (lambda: PeggedToMidpointOrder("BUY", 1, offset=True), "must be a number"),
        (
            lambda: ibflow.Order(side="BUY", quantity=1, order_type="MIT"),
            "MIT order needs a trigger_price",
        ),
        (
            lambda: ibflow.Order(side="BUY", quantity=1, order_type="REL"),
            "REL order needs an offset",
        ),
        (
            lambda: ibflow.Order(side="BUY", quantity=1, order_type="LMT", limit_price=1, offset=1),
            "takes no offset .* use RelativeOrder or PeggedToMidpointOrder",
        ),
        (
            lambda: ibflow.Order(
                side="BUY", quantity=1, order_type="STP", stop_price=1, trail_amount=1
            ),
            "takes no trail_amount .* TrailingStopOrder",
        ),
        (
            lambda: ibflow.Order(side="BUY", quantity=1, order_type="MOC", limit_price=5),
            "MOC order takes no limit_price",
        ),
        (
            lambda: ibflow.Order(side="BUY", quantity=1, order_type="MOC", tif="GTC"),
            "closing auction: it takes tif='DAY' only",
        ),
        (
            lambda: ibflow.Order(
                side="BUY", quantity=1, order_type="LOC", limit_price=5, outside_rth=True
            ),
            "drop outside_rth",
        ),
        (
            lambda: ibflow.Order(
                side="BUY", quantity=1, order_type="TRAIL", trail_amount=1, tif="OPG"
            ),
            "market and limit orders",
        ),
    ],
)
def test_invalid_order_types_are_refused_when_built(build: object, match: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=match):
        build()  # type: ignore[operator]


def test_algos_carry_ib_strategy_names_and_parameter_text() -> None:
    assert Adaptive().params == (("adaptivePriority", "Normal"),)
    assert Adaptive("urgent") == Algo("Adaptive", {"adaptivePriority": "Urgent"})
    vwap = Algo(
        "vwap",
        {
            "maxPctVol": 0.1,
            "startTime": time(9, 45, tzinfo=ZoneInfo("US/Eastern")),
            "endTime": "16:00:00 US/Eastern",
            "noTakeLiq": True,
            "allowPastEndTime": False,
        },
    )
    assert vwap.strategy == "Vwap"
    assert vwap.params == (
        ("maxPctVol", "0.1"),
        ("startTime", "09:45:00 US/Eastern"),
        ("endTime", "16:00:00 US/Eastern"),
        ("noTakeLiq", "1"),
        ("allowPastEndTime", "0"),
    )
    assert vwap.param("noTakeLiq") == "1"
    assert vwap.param("speedUp") is None
    order = LimitOrder("BUY", 100, 190.0, algo=Algo("Twap", {"strategyType": "Marketable"}))
    assert order.algo is not None
    assert order.algo.strategy == "Twap"
    assert MarketOrder("BUY", 1, algo=Algo("ArrivalPx", {"riskAversion": "Neutral"})).algo


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Adaptive("Fast"), "Patient, Normal, Urgent"),
        (lambda: Algo("Sniper"), "unknown algo strategy 'Sniper'.*Vwap"),
        (lambda: Algo("Vwap", {"max pct": 1}), "tags are IB's names"),
        (lambda: Algo("Vwap", {"maxPctVol": float("inf")}), "finite"),
        (lambda: Algo("Vwap", {"startTime": time(9, 30)}), "time with a zone"),
        (lambda: Algo("Vwap", {"endTime": ""}), "is empty"),
        (lambda: Algo("Vwap", (("a", "1"), ("a", "2"))), "given twice"),
        (lambda: Algo("Vwap", {"note": "caf\u00e9"}), "printable ASCII"),
        (
            lambda: ibflow.Order(
                side="SELL", quantity=1, order_type="STP", stop_price=180.0, algo=Adaptive()
            ),
            "algos work market and limit orders, not STP",
        ),
        (lambda: LimitOrder("BUY", 1, 10.0, algo="Adaptive"), "must be an ibflow Algo"),  # type: ignore[arg-type]
        (lambda: LimitOrder("BUY", 1, 10.0, tif="IOC", algo=Adaptive()), "tif='DAY' or 'GTC'"),
    ],
)
def test_invalid_algos_are_refused_when_built(build: object, match: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=match):
        build()  # type: ignore[operator]


def test_conditions_are_kept_in_order_with_their_conjunctions() -> None:
    at = datetime(2030, 1, 2, 15, 30, tzinfo=ZoneInfo("US/Eastern"))
    conditions: list[Any] = [
        PriceCondition(contract=AAPL, price=200.0, is_more=False, trigger_method=2),
        TimeCondition(time=at, conjunction="or"),
        MarginCondition(percent=30, is_more=False),
        ExecutionCondition(contract=UNQUALIFIED),
        VolumeCondition(contract=AAPL, volume=1_000_000),
        PercentChangeCondition(contract=AAPL, change_percent=-2.5, is_more=False),
    ]
    order = LimitOrder(
        "BUY", 10, 190.0, conditions=conditions, conditions_cancel_order=True,
        conditions_ignore_rth=True,
    )  # fmt: skip
    assert order.conditions == tuple(conditions)
    assert (order.conditions_cancel_order, order.conditions_ignore_rth) == (True, True)
    assert TimeCondition(time=at).wire_time == "20300102 20:30:00 UTC"
    assert TrailingStopOrder("SELL", 1, trail_amount=1, conditions=conditions[:1]).conditions


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: PriceCondition(contract=UNQUALIFIED, price=1.0), "qualify it first"),
        (lambda: PriceCondition(contract="AAPL", price=1.0), "must be an ibflow Contract"),  # type: ignore[arg-type]
        (lambda: PriceCondition(contract=AAPL, price=0), "price must be greater than 0"),
        (lambda: PriceCondition(contract=AAPL, price=1, trigger_method=5), "trigger_method must"),
        (lambda: PriceCondition(contract=AAPL, price=1, is_more=1), "is_more must be True"),  # type: ignore[arg-type]
        (lambda: PriceCondition(contract=AAPL, price=1, conjunction="xor"), "'and' or 'or'"),  # type: ignore[arg-type]
        (lambda: TimeCondition(time=datetime(2030, 1, 1)), "aware datetime"),
        (lambda: MarginCondition(percent=0), "between 1 and 99"),
        (lambda: MarginCondition(percent=50.5), "between 1 and 99"),  # type: ignore[arg-type]
        (lambda: VolumeCondition(contract=AAPL, volume=-1), "above 0"),
        (lambda: PercentChangeCondition(contract=AAPL, change_percent=0), "not 0"),
        (lambda: ExecutionCondition(contract=None), "ibflow Contract"),  # type: ignore[arg-type]
        (
            lambda: MarketOrder("BUY", 1, conditions=PriceCondition(contract=AAPL, price=1.0)),  # type: ignore[arg-type]
            "must be a list of conditions",
        ),
        (lambda: MarketOrder("BUY", 1, conditions=["price > 5"]), "conditions holds"),  # type: ignore[list-item]
        (lambda: MarketOrder("BUY", 1, conditions_cancel_order=True), "add conditions="),
    ],
)
def test_invalid_conditions_are_refused_when_built(build: object, match: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=match):
        build()  # type: ignore[operator]


def test_a_trailing_stop_can_be_a_brackets_stop_loss() -> None:
    entry = LimitOrder("BUY", 10, 190.0)
    take = LimitOrder("SELL", 10, 195.0)
    spec = ibflow.Bracket(
        parent=entry, take_profit=take, stop_loss=TrailingStopOrder("SELL", 10, trail_amount=2.0)
    )
    assert spec.stop_loss.order_type is OrderType.TRAILING_STOP
    with pytest.raises(ibflow.InvalidRequest, match="take_profit > entry > stop_loss"):
        ibflow.Bracket(
            parent=entry,
            take_profit=take,
            stop_loss=TrailingStopOrder("SELL", 10, trail_amount=2.0, trail_stop_price=191.0),
        )
    with pytest.raises(ibflow.InvalidRequest, match="stop, stop-limit or trailing stop"):
        ibflow.Bracket(
            parent=entry, take_profit=take, stop_loss=MarketIfTouchedOrder("SELL", 10, 180)
        )


def test_modify_style_replace_keeps_the_type_terms() -> None:
    order = TrailingStopOrder("SELL", 10, trail_amount=2.0)
    bigger = dataclasses.replace(order, quantity=20)
    assert (bigger.quantity, bigger.trail_amount) == (20.0, 2.0)
    later = datetime.now(UTC) + timedelta(days=1)
    gtd = MarketIfTouchedOrder("BUY", 1, 180.0, tif="GTD", good_till=later)
    assert gtd.good_till == later
