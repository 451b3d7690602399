"""Order specs, builders and enums: validated when built, immutable, exported (no sim needed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

import ibflow
from ibflow import (
    LimitOrder,
    MarketOrder,
    OcaType,
    OrderStatus,
    OrderType,
    Side,
    StopLimitOrder,
    StopOrder,
    TimeInForce,
)

PUBLIC = {
    "Bracket",
    "BracketTrade",
    "Commission",
    "Fill",
    "LimitOrder",
    "MarketOrder",
    "OcaGroup",
    "OcaType",
    "Order",
    "OrderCancelled",
    "OrderEvent",
    "OrderEventKind",
    "OrderPreview",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Side",
    "StopLimitOrder",
    "StopOrder",
    "TimeInForce",
    "Trade",
    "TradeGroup",
    "bracket",
    "oca",
}


def test_order_names_are_exported() -> None:
    assert set(ibflow._orders.__all__) == PUBLIC
    for name in PUBLIC:
        assert name in ibflow.__all__
        assert getattr(ibflow, name) is getattr(ibflow._orders, name)


def test_order_cancelled_is_a_request_error_not_a_rejection() -> None:
    assert issubclass(ibflow.OrderCancelled, ibflow.RequestError)
    assert not issubclass(ibflow.OrderCancelled, ibflow.OrderRejected)


def test_builders_fill_in_the_type_and_normalise_text() -> None:
    order = LimitOrder("buy", 10, 185.5, tif="gtc", order_ref="mine")
    assert order.side is Side.BUY
    assert order.order_type is OrderType.LIMIT
    assert order.tif is TimeInForce.GTC
    assert (order.limit_price, order.stop_price, order.price) == (185.5, None, 185.5)
    assert order.order_ref == "mine"
    assert MarketOrder(ibflow.Side.SELL, 1).price is None
    stop_limit = StopLimitOrder("SELL", 2, 180.0, 181.0)
    assert (stop_limit.limit_price, stop_limit.stop_price) == (180.0, 181.0)
    assert StopOrder("SELL", 3, 181.0).price == 181.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.quantity = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: MarketOrder("BUY", 0), "greater than 0"),
        (lambda: MarketOrder("BUY", -5), "greater than 0"),
        (lambda: MarketOrder("BUY", float("nan")), "finite"),
        (lambda: MarketOrder("BUY", True), "number"),
        (lambda: MarketOrder("HOLD", 1), "side must be one of"),
        (lambda: LimitOrder("BUY", 1, 0), "limit_price must be greater than 0"),
        (lambda: StopOrder("BUY", 1, float("inf")), "finite"),
        (lambda: ibflow.Order(side="BUY", quantity=1, order_type="LMT"), "needs a limit_price"),
        (lambda: ibflow.Order(side="BUY", quantity=1, order_type="STP"), "needs a stop_price"),
        (
            lambda: ibflow.Order(side="BUY", quantity=1, order_type="MKT", limit_price=1.0),
            "takes no limit_price",
        ),
        (
            lambda: ibflow.Order(
                side="BUY", quantity=1, order_type="LMT", limit_price=1.0, stop_price=2.0
            ),
            "takes no stop_price",
        ),
        (lambda: MarketOrder("BUY", 1, tif="FOREVER"), "tif must be one of"),
        (lambda: MarketOrder("BUY", 1, tif="GTD"), "needs good_till"),
        (
            lambda: MarketOrder("BUY", 1, good_till=datetime.now(UTC) + timedelta(days=1)),
            "only for tif='GTD'",
        ),
        (
            lambda: LimitOrder("BUY", 1, 10.0, tif="GTD", good_till=datetime(2030, 1, 1)),
            "aware datetime",
        ),
        (lambda: StopOrder("BUY", 1, 10.0, tif="OPG"), "market and limit orders"),
        (lambda: LimitOrder("BUY", 1, 10.0, tif="OPG", outside_rth=True), "opening auction"),
        (lambda: MarketOrder("BUY", 1, outside_rth=True), "outside regular trading hours"),
        (lambda: MarketOrder("BUY", 1, order_ref="caf\u00e9"), "printable ASCII"),
    ],
)
def test_invalid_specs_are_refused_when_built(build: object, match: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=match):
        build()  # type: ignore[operator]


def test_gtd_order_keeps_its_expiry() -> None:
    until = datetime(2030, 1, 2, 15, 0, tzinfo=UTC)
    order = LimitOrder("BUY", 1, 10.0, tif="GTD", good_till=until)
    assert order.tif is TimeInForce.GTD
    assert order.good_till == until


def test_bracket_builds_three_orders_on_the_right_sides() -> None:
    spec = ibflow.bracket("BUY", 10, 190.05, 195.00, 185.00, tif="GTC")
    assert spec.parent == LimitOrder("BUY", 10, 190.05, tif="GTC")
    assert spec.take_profit == LimitOrder("SELL", 10, 195.00, tif="GTC")
    assert spec.stop_loss == StopOrder("SELL", 10, 185.00, tif="GTC")
    short = ibflow.bracket("SELL", 5, 190.0, 180.0, 195.0)
    assert short.take_profit.side is Side.BUY


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("BUY", 10, 190.0, 189.0, 185.0), "take_profit > entry > stop_loss"),
        (("BUY", 10, 190.0, 195.0, 191.0), "take_profit > entry > stop_loss"),
        (("SELL", 10, 190.0, 195.0, 185.0), "take_profit < entry < stop_loss"),
        (("BUY", 0, 190.0, 195.0, 185.0), "greater than 0"),
    ],
)
def test_bracket_prices_must_be_in_order(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=match):
        ibflow.bracket(*args)  # type: ignore[arg-type]


def test_oca_group_needs_two_orders_and_names_itself() -> None:
    group = ibflow.oca(LimitOrder("SELL", 1, 200.0), StopOrder("SELL", 1, 180.0))
    assert group.group.startswith("ibflow-")
    assert group.type is OcaType.CANCEL_ALL
    assert OcaType("reduce").code == 3
    named = ibflow.oca(
        LimitOrder("BUY", 1, 1.0), LimitOrder("BUY", 1, 2.0), group="g1", type="reduce_with_block"
    )
    assert (named.group, named.type) == ("g1", OcaType.REDUCE_WITH_BLOCK)
    with pytest.raises(ibflow.InvalidRequest, match="at least two"):
        ibflow.oca(LimitOrder("BUY", 1, 1.0))
    with pytest.raises(ibflow.InvalidRequest, match="ibflow Orders"):
        ibflow.oca(LimitOrder("BUY", 1, 1.0), "LMT")  # type: ignore[arg-type]


def test_status_knows_which_states_are_final() -> None:
    done = {s for s in OrderStatus if s.is_done}
    assert done == {
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.API_CANCELLED,
        OrderStatus.INACTIVE,
        OrderStatus.LOST,
    }
    assert OrderStatus("PreSubmitted") is OrderStatus.PRE_SUBMITTED
