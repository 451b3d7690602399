"""IB's other order types, algos and conditions on the wire at server version 178.

The simulator's placeOrder parser reads each one as ib_async's and the official ibapi's
encoders write it, and its openOrder and completedOrder echoes decode in both clients with the
fields the order was placed with (trailing stop, limit offset, algo, conditions, mid offsets).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import ib_async
import pytest
from ib_async.client import Client
from ib_async.decoder import Decoder as IbAsyncDecoder
from ibapi import comm
from ibapi import order_condition as ibapi_conditions
from ibapi.client import EClient
from ibapi.contract import Contract as IbapiContract
from ibapi.decoder import Decoder as IbapiDecoder
from ibapi.order import Order as IbapiOrder
from ibapi.tag_value import TagValue as IbapiTagValue

from ibflow.sim._codec import UNSET_DOUBLE, Fields, FrameDecoder, encode_fields
from ibflow.sim._layouts import PlaceOrderRequest, completed_order, open_order, parse_place_order
from ibflow.sim._model import Instrument, SimCondition, SimOrder
from ibflow.sim._order_types import order_types_for

AAPL = Instrument(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    order_types=order_types_for("STK"),
)
STOCK = ib_async.Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")


# ---------------------------------------------------------------------------------------------
# Encoders and decoders of both clients


def ib_async_fields(order: ib_async.Order, contract: ib_async.Contract = STOCK) -> list[str]:
    client = Client(None)
    client._serverVersion = 178
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign,assignment]
    client.placeOrder(42, contract, order)
    [message] = sent
    return message.split("\0")[:-1]


class _Capture:
    """Stands in for ibapi's socket connection: keeps what the client sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def isConnected(self) -> bool:
        return True

    def sendMsg(self, msg: bytes) -> None:
        self.sent.append(msg)


def ibapi_fields(order: IbapiOrder, exchange: str = "SMART") -> list[str]:
    contract = IbapiContract()
    contract.symbol, contract.secType, contract.currency = "AAPL", "STK", "USD"
    contract.exchange, contract.primaryExchange = exchange, "NASDAQ"
    client = EClient(wrapper=None)  # type: ignore[arg-type]
    capture = _Capture()
    client.conn = capture  # type: ignore[assignment]
    client.connState = EClient.CONNECTED
    client.serverVersion_ = 178
    client.placeOrder(42, contract, order)
    [message] = capture.sent
    return message[4:].decode().split("\0")[:-1]


def parse(fields: list[str]) -> PlaceOrderRequest:
    f = Fields(fields)
    req = parse_place_order(f, version=178)
    assert f.remaining == 0, "the parser must consume the message exactly"
    return req


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def ib_async_decode(message: list[object]) -> tuple[str, tuple[Any, ...]]:
    [frame] = FrameDecoder().feed(encode_fields(message))
    rec = Recorder()
    IbAsyncDecoder(rec, 178).interpret(frame)  # type: ignore[arg-type]
    [call] = rec.calls
    return call


def ibapi_decode(message: list[object]) -> tuple[str, tuple[Any, ...]]:
    payload = encode_fields(message)[4:]
    cut = payload.index(b"\0")
    rec = Recorder()
    IbapiDecoder(rec, 178).interpret(comm.read_fields(payload[cut + 1 :]), int(payload[:cut]))
    [call] = [c for c in rec.calls if c[0] != "openOrderEnd"]
    assert call[0] != "error", call
    return call


@pytest.fixture(autouse=True)
def _no_decoder_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# ---------------------------------------------------------------------------------------------
# placeOrder: both encoders, one reading


def _ib_async(kind: str, **kw: Any) -> ib_async.Order:
    return ib_async.Order(action="SELL", totalQuantity=10, orderType=kind, **kw)


def _ibapi(kind: str, **kw: Any) -> IbapiOrder:
    order = IbapiOrder()
    order.action, order.totalQuantity, order.orderType = "SELL", 10, kind
    for name, value in kw.items():
        setattr(order, name, value)
    return order


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "TRAIL",
        {"auxPrice": 1.5, "trailStopPrice": 98.5},
        {"aux_price": 1.5, "trail_stop_price": 98.5, "trailing_percent": None},
    ),
    (
        "TRAIL",
        {"trailingPercent": 2.0},
        {"aux_price": None, "trailing_percent": 2.0, "trail_stop_price": None},
    ),
    (
        "TRAIL LIMIT",
        {"auxPrice": 1.0, "trailStopPrice": 99.0, "lmtPriceOffset": 0.1},
        {"aux_price": 1.0, "trail_stop_price": 99.0, "lmt_price_offset": 0.1},
    ),
    ("MOC", {}, {"lmt_price": None, "aux_price": None}),
    ("LOC", {"lmtPrice": 101.0}, {"lmt_price": 101.0}),
    ("MIT", {"auxPrice": 102.0}, {"aux_price": 102.0}),
    ("LIT", {"auxPrice": 102.0, "lmtPrice": 102.1}, {"aux_price": 102.0, "lmt_price": 102.1}),
    ("REL", {"auxPrice": 0.01, "lmtPrice": 105.0}, {"aux_price": 0.01, "lmt_price": 105.0}),
    ("PEG MID", {"auxPrice": 0.01}, {"aux_price": 0.01, "mid_offset_at_whole": None}),
]


@pytest.mark.parametrize(("kind", "attrs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_both_encoders_of_each_order_type_parse_alike(
    kind: str, attrs: dict[str, Any], expected: dict[str, Any]
) -> None:
    for req in (
        parse(ib_async_fields(_ib_async(kind, **attrs))),
        parse(ibapi_fields(_ibapi(kind, **attrs))),
    ):
        assert (req.order_id, req.order_type, req.action, req.total_quantity) == (
            42,
            kind,
            "SELL",
            10,
        )
        for name, value in expected.items():
            assert getattr(req, name) == value, name


def test_peg_mid_offsets_on_ibkrats_parse_from_both() -> None:
    attrs = {"midOffsetAtWhole": 0.02, "midOffsetAtHalf": 0.005}
    ib_fields = ib_async_fields(
        _ib_async("PEG MID", **attrs), ib_async.Stock("AAPL", "IBKRATS", "USD")
    )
    for req in (parse(ib_fields), parse(ibapi_fields(_ibapi("PEG MID", **attrs), "IBKRATS"))):
        assert (req.mid_offset_at_whole, req.mid_offset_at_half) == (0.02, 0.005)


def test_algos_parse_from_both() -> None:
    params = [("adaptivePriority", "Patient")]
    mine = _ib_async("LMT", lmtPrice=100.0, algoStrategy="Adaptive")
    mine.algoParams = [ib_async.TagValue(t, v) for t, v in params]
    theirs = _ibapi("LMT", lmtPrice=100.0, algoStrategy="Adaptive")
    theirs.algoParams = [IbapiTagValue(t, v) for t, v in params]
    for req in (parse(ib_async_fields(mine)), parse(ibapi_fields(theirs))):
        assert (req.algo_strategy, req.algo_params) == ("Adaptive", tuple(params))


def test_conditions_parse_from_both() -> None:
    mine = _ib_async("MKT")
    mine.conditions = [
        ib_async.PriceCondition(
            conjunction="o", isMore=False, price=99.5, conId=265598, exch="SMART", triggerMethod=2
        ),
        ib_async.TimeCondition(time="20250106 11:00:00 US/Eastern"),
        ib_async.MarginCondition(percent=30),
        ib_async.ExecutionCondition(secType="STK", exch="SMART", symbol="MSFT"),
        ib_async.VolumeCondition(volume=1000, conId=265598, exch="SMART"),
        ib_async.PercentChangeCondition(changePercent=2.5, conId=265598, exch="SMART"),
    ]
    mine.conditionsCancelOrder = True
    theirs = _ibapi("MKT")
    price = ibapi_conditions.PriceCondition(2, 265598, "SMART", False, 99.5)
    price.isConjunctionConnection = False
    theirs.conditions = [
        price,
        ibapi_conditions.TimeCondition(True, "20250106 11:00:00 US/Eastern"),
        ibapi_conditions.MarginCondition(True, 30),
        ibapi_conditions.ExecutionCondition("STK", "SMART", "MSFT"),
        ibapi_conditions.VolumeCondition(265598, "SMART", True, 1000),
        ibapi_conditions.PercentChangeCondition(265598, "SMART", True, 2.5),
    ]
    theirs.conditionsCancelOrder = True
    for req in (parse(ib_async_fields(mine)), parse(ibapi_fields(theirs))):
        assert [kind for kind, _ in req.conditions] == [1, 3, 4, 5, 6, 7]
        price_fields = req.conditions[0][1]
        assert price_fields[0] == "o"
        assert price_fields[1] in ("0", "False")
        assert float(price_fields[2]) == 99.5
        assert (price_fields[3], price_fields[5]) == ("265598", "2")
        assert req.conditions[3][1][1:] == ("STK", "SMART", "MSFT")
        assert req.conditions_cancel_order is True


# ---------------------------------------------------------------------------------------------
# openOrder and completedOrder: echoed as placed


def _order(**kw: Any) -> SimOrder:
    base: dict[str, Any] = dict(
        order_id=7,
        client_id=3,
        perm_id=123456789,
        account="DU1234567",
        instrument=AAPL,
        action="SELL",
        total_quantity=10.0,
        order_type="TRAIL LIMIT",
        lmt_price=98.9,
        aux_price=1.0,
        trail_stop_price=99.0,
        lmt_price_offset=0.1,
        trigger_method=2,
        algo_strategy="Adaptive",
        algo_params=(("adaptivePriority", "Urgent"),),
        conditions=(
            SimCondition(1, "o", False, "99.5", 265598, "SMART", 2),
            SimCondition(3, "a", True, "20250106 11:00:00 US/Eastern"),
            SimCondition(4, "a", True, "30"),
            SimCondition(5, "a", sec_type="STK", exchange="SMART", symbol="MSFT"),
            SimCondition(6, "a", True, "1000", 265598, "SMART"),
            SimCondition(7, "a", False, "-2.5", 265598, "SMART"),
        ),
        conditions_ignore_rth=True,
        conditions_cancel_order=True,
        status="PreSubmitted",
    )
    base.update(kw)
    return SimOrder(**base)


def test_open_order_echo_decodes_in_ib_async() -> None:
    name, (_, _, o, state) = ib_async_decode(open_order(_order()))
    assert name == "openOrder"
    assert (o.orderType, o.trailStopPrice, o.lmtPriceOffset, o.auxPrice) == (
        "TRAIL LIMIT",
        99.0,
        0.1,
        1.0,
    )
    assert o.triggerMethod == 2
    assert o.algoStrategy == "Adaptive"
    assert [(p.tag, p.value) for p in o.algoParams] == [("adaptivePriority", "Urgent")]
    assert [type(c).__name__ for c in o.conditions] == [
        "PriceCondition",
        "TimeCondition",
        "MarginCondition",
        "ExecutionCondition",
        "VolumeCondition",
        "PercentChangeCondition",
    ]
    price = o.conditions[0]
    assert (price.conjunction, price.isMore, price.price, price.conId) == ("o", False, 99.5, 265598)
    assert price.triggerMethod == 2
    assert o.conditions[3].symbol == "MSFT"
    assert o.conditions[5].changePercent == -2.5
    assert (o.conditionsIgnoreRth, o.conditionsCancelOrder) == (True, True)
    assert state.status == "PreSubmitted"


def test_open_order_echo_decodes_in_ibapi() -> None:
    name, (order_id, _, o, state) = ibapi_decode(open_order(_order()))
    assert (name, order_id) == ("openOrder", 7)
    assert (o.orderType, o.trailStopPrice, o.lmtPriceOffset) == ("TRAIL LIMIT", 99.0, 0.1)
    assert o.algoStrategy == "Adaptive"
    assert [(p.tag, p.value) for p in o.algoParams] == [("adaptivePriority", "Urgent")]
    assert len(o.conditions) == 6
    assert o.conditions[0].isConjunctionConnection is False
    assert o.conditions[0].price == 99.5
    assert o.conditions[4].volume == 1000
    assert (o.conditionsIgnoreRth, o.conditionsCancelOrder) == (True, True)
    assert state.status == "PreSubmitted"


def test_trailing_percent_and_mid_offsets_echo() -> None:
    trail = _order(
        order_type="TRAIL",
        aux_price=None,
        lmt_price=None,
        lmt_price_offset=None,
        trailing_percent=2.0,
        algo_strategy="",
        algo_params=(),
        conditions=(),
    )
    _, (_, _, o, _) = ib_async_decode(open_order(trail))
    assert (o.trailingPercent, o.trailStopPrice, o.algoStrategy, o.conditions) == (
        2.0,
        99.0,
        "",
        [],
    )
    peg = _order(
        order_type="PEG MID",
        aux_price=None,
        trail_stop_price=None,
        lmt_price_offset=None,
        mid_offset_at_whole=0.02,
        mid_offset_at_half=0.005,
        conditions=(),
    )
    _, (_, _, o, _) = ib_async_decode(open_order(peg))
    assert (o.midOffsetAtWhole, o.midOffsetAtHalf, o.trailStopPrice) == (0.02, 0.005, UNSET_DOUBLE)


def test_completed_order_echo_decodes_in_both() -> None:
    done = _order(
        status="Cancelled", completed_status="Cancelled", completed_time="20250106 15:00:00 UTC"
    )
    name, (_, o, state) = ib_async_decode(completed_order(done))
    assert name == "completedOrder"
    assert (o.trailStopPrice, o.lmtPriceOffset, o.algoStrategy) == (99.0, 0.1, "Adaptive")
    assert len(o.conditions) == 6
    assert o.conditionsCancelOrder is True
    assert state.status == "Cancelled"
    name, (_, o, state) = ibapi_decode(completed_order(done))
    assert name == "completedOrder"
    assert (o.trailStopPrice, o.lmtPriceOffset, o.algoStrategy) == (99.0, 0.1, "Adaptive")
    assert len(o.conditions) == 6
