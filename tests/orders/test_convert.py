"""Conversions at the ib_async border, without a loop or a socket."""

from __future__ import annotations

from datetime import UTC, datetime

import ib_async
import pytest

import ibflow
from ibflow._ib import _order_records as wire
from ibflow._orders._checks import exec_key as _exec_key

UNSET = ib_async.util.UNSET_DOUBLE


def test_number_turns_ib_sentinels_into_none() -> None:
    assert wire.number("") is None
    assert wire.number(None) is None
    assert wire.number(UNSET) is None
    assert wire.number("1.7976931348623157E308") is None
    assert wire.number(float("nan")) is None
    assert wire.number("12.5") == 12.5
    assert wire.number(0) == 0.0


def test_order_to_ib_sets_prices_transmit_and_group() -> None:
    until = datetime(2030, 1, 2, 15, 30, tzinfo=UTC)
    spec = ibflow.LimitOrder("SELL", 3, 101.25, tif="GTD", good_till=until, order_ref="r1")
    order = wire.order_to_ib(spec, 42, parent_id=41, transmit=False, oca_group="g", oca_type=2)
    assert (order.orderId, order.action, order.totalQuantity) == (42, "SELL", 3.0)
    assert (order.orderType, order.lmtPrice, order.auxPrice) == ("LMT", 101.25, UNSET)
    assert (order.tif, order.goodTillDate) == ("GTD", "20300102-15:30:00")
    assert (order.parentId, order.transmit, order.ocaGroup, order.ocaType) == (41, False, "g", 2)
    assert order.orderRef == "r1"
    assert order.whatIf is False
    stop = wire.order_to_ib(ibflow.StopOrder("BUY", 1, 99.5), 7, what_if=True)
    assert (stop.lmtPrice, stop.auxPrice, stop.whatIf) == (UNSET, 99.5, True)


def test_fill_and_commission_from_ib() -> None:
    contract = ibflow.Stock("AAPL")
    execution = ib_async.Execution(
        execId="0000e0d5.6576fd36.01.01",
        time=datetime(2026, 1, 5, 15, 0, 1, tzinfo=UTC),
        acctNumber="DU1234567",
        exchange="NASDAQ",
        side="SLD",
        shares=5.0,
        price=190.0,
        permId=123,
        clientId=1,
        orderId=9,
        cumQty=5.0,
        avgPrice=190.0,
        orderRef="",
    )
    report = ib_async.CommissionReport(
        execId="0000e0d5.6576fd36.01.01", commission=1.0, currency="USD", realizedPNL=UNSET
    )
    commission = wire.commission_from_ib(report)
    assert commission == ibflow.Commission(
        exec_id="0000e0d5.6576fd36.01.01", amount=1.0, currency="USD", realized_pnl=None
    )
    fill = wire.fill_from_ib(contract, execution, commission)
    assert fill.side is ibflow.Side.SELL
    assert (fill.order_id, fill.perm_id, fill.client_id) == (9, 123, 1)
    assert (fill.quantity, fill.price, fill.account, fill.order_ref) == (
        5.0,
        190.0,
        "DU1234567",
        None,
    )
    assert fill.time.tzinfo is not None
    assert fill.commission is commission
    assert wire.commission_from_ib(ib_async.CommissionReport()) is None
    with pytest.raises(ValueError, match="side"):
        wire.fill_from_ib(contract, ib_async.Execution(side="XYZ"))


def test_snapshot_of_a_completed_order() -> None:
    contract = ib_async.Contract(
        conId=265598, symbol="AAPL", secType="STK", exchange="SMART", currency="USD"
    )
    order = ib_async.Order(
        permId=77,
        action="BUY",
        totalQuantity=10,
        orderType="STP LMT",
        lmtPrice=10.5,
        auxPrice=10.0,
        tif="GTC",
        filledQuantity=4.0,
        account="DU1",
        ocaGroup="",
    )
    snap = wire.snapshot_from_ib(
        contract,
        order,
        "Cancelled",
        completed_time="20260105 15:00:01 UTC",
        completed_status="Cancelled by Trader",
        completed=True,
    )
    assert (snap.order_id, snap.perm_id, snap.client_id) == (None, 77, None)
    assert snap.order_type is ibflow.OrderType.STOP_LIMIT
    assert (snap.limit_price, snap.stop_price, snap.tif) == (10.5, 10.0, ibflow.TimeInForce.GTC)
    assert (snap.status, snap.filled, snap.remaining) == (ibflow.OrderStatus.CANCELLED, 4.0, 6.0)
    assert snap.completed_time == datetime(2026, 1, 5, 15, 0, 1, tzinfo=UTC)
    assert snap.completed_status == "Cancelled by Trader"
    assert snap.contract.con_id == 265598
    # An order type ibflow does not build stays as IB's text, with no invented prices.
    trail = ib_async.Order(
        orderId=3,
        clientId=2,
        action="SELL",
        totalQuantity=1,
        orderType="TRAIL",
        lmtPrice=0.0,
        auxPrice=1.0,
    )
    other = wire.snapshot_from_ib(contract, trail, "Submitted", filled=0.0, remaining=1.0)
    assert (other.order_type, other.limit_price, other.stop_price) == ("TRAIL", None, None)
    assert (other.order_id, other.client_id, other.tif) == (3, 2, ibflow.TimeInForce.DAY)


def test_preview_from_ib() -> None:
    state = ib_async.OrderState(
        initMarginBefore="100.5",
        initMarginChange="20",
        initMarginAfter="120.5",
        commission=1.25,
        minCommission=UNSET,
        commissionCurrency="USD",
        warningText="",
    )
    preview = wire.preview_from_ib(state)
    assert (preview.init_margin_before, preview.init_margin_change) == (100.5, 20.0)
    assert (preview.commission, preview.min_commission) == (1.25, None)
    assert (preview.maint_margin_after, preview.warning) == (None, None)
    assert preview.commission_currency == "USD"


def test_exec_ids_and_their_corrections() -> None:
    assert _exec_key("0000e0d5.6576fd36.01.01") == ("0000e0d5.6576fd36.01", 1)
    assert _exec_key("0000e0d5.6576fd36.01.02") == ("0000e0d5.6576fd36.01", 2)
    assert _exec_key("plain-id") == ("plain-id", 0)


class _Quiet:
    """A listener that ignores everything (the tap's wiring is what is under test)."""

    def __getattr__(self, name: str) -> object:
        return lambda *args: None


async def test_the_tap_wraps_the_decoder_callbacks_and_comes_off_cleanly() -> None:
    session = ibflow.Session(port=7497)
    wrapper = session._core.adapter._ib.wrapper
    names = ("orderStatus", "openOrder", "completedOrder", "execDetails", "commissionReport")
    assert not any(name in vars(wrapper) for name in names)
    handlers = len(session._core.adapter._ib.errorEvent)
    remove = session._core.adapter.orders.install_order_tap(_Quiet())  # type: ignore[arg-type]
    assert all(name in vars(wrapper) for name in names)
    assert len(session._core.adapter._ib.errorEvent) == handlers + 1
    remove()
    assert not any(name in vars(wrapper) for name in names)
    assert len(session._core.adapter._ib.errorEvent) == handlers
