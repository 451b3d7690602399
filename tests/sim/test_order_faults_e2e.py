"""Order faults a real TWS produces, as a TWS API client sees them over the wire.

Execution corrections (same execution id, last part raised), orders TWS holds ``Inactive``,
and a placeOrder rejected outright: each driven with real ib_async against the simulator.
"""

from __future__ import annotations

import ib_async
import pytest
from ib_async import LimitOrder, MarketOrder, Stock

from ibflow.sim import Simulator
from ibflow.testing import eventually

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
MSFT = Stock("MSFT", "SMART", "USD", conId=272093)
QUOTE = {"bid": 190.00, "ask": 190.02, "last": 190.01}


def position(ib: ib_async.IB, con_id: int = 265598) -> ib_async.Position | None:
    return next((p for p in ib.positions() if p.contract.conId == con_id), None)


async def filled_market_order(ib: ib_async.IB, action: str, qty: float) -> ib_async.Fill:
    trade = ib.placeOrder(AAPL, MarketOrder(action, qty))
    await eventually(lambda: trade.isDone() and trade.fills)
    [fill] = trade.fills
    await eventually(lambda: fill.commissionReport.execId == fill.execution.execId)
    return fill


# ---------------------------------------------------------------------------------------------
# Execution corrections


async def test_correction_arrives_with_the_raised_id_then_its_commission(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    original = await filled_market_order(ib, "BUY", 10)
    seen: list[tuple[str, str]] = []
    ib.execDetailsEvent += lambda _trade, fill: seen.append(("exec", fill.execution.execId))
    ib.commissionReportEvent += lambda _trade, _fill, report: seen.append(
        ("commission", report.execId)
    )

    new_id = ib_sim.correct_fill(original.execution.execId, price=189.95)

    head, _, tail = original.execution.execId.rpartition(".")
    assert tail == "01"
    assert new_id == f"{head}.02"
    await eventually(lambda: len(seen) == 2)
    assert seen == [("exec", new_id), ("commission", new_id)]
    corrected = next(f for f in ib.fills() if f.execution.execId == new_id)
    assert corrected.execution.price == pytest.approx(189.95)
    assert corrected.execution.shares == 10
    assert corrected.execution.orderId == original.execution.orderId
    assert corrected.execution.permId == original.execution.permId
    assert corrected.commissionReport.commission > 0


async def test_executions_report_the_correction_instead_of_the_original(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    original = await filled_market_order(ib, "BUY", 4)
    other = await filled_market_order(ib, "SELL", 1)
    new_id = ib_sim.correct_fill(original.execution.execId, quantity=3)

    fills = await ib.reqExecutionsAsync()
    ids = [f.execution.execId for f in fills]
    assert ids == [new_id, other.execution.execId]
    corrected = fills[0]
    assert corrected.execution.shares == 3
    assert corrected.execution.cumQty == 3
    assert [f.exec_id for f in ib_sim.fills] == ids
    # A client connecting now loads the corrected execution, with its commission report.
    late = ib_async.IB()
    await late.connectAsync(ib_sim.host, ib_sim.port, clientId=2, timeout=3)
    try:
        loaded = {f.execution.execId: f for f in late.fills()}
        assert set(loaded) == set(ids)
        assert loaded[new_id].commissionReport.execId == new_id
        assert loaded[new_id].commissionReport.commission == ib_sim.fills[0].commission
    finally:
        late.disconnect()
    # The original is gone for good: correcting it again is refused.
    with pytest.raises(ValueError, match="already replaced"):
        ib_sim.correct_fill(original.execution.execId, price=1.0)


async def test_correction_moves_the_position_by_the_difference(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    start = position(ib)
    assert start is not None
    fill = await filled_market_order(ib, "BUY", 10)
    await eventually(lambda: position(ib).position == start.position + 10)  # type: ignore[union-attr]
    after_fill = position(ib)
    assert after_fill is not None

    ib_sim.correct_fill(fill.execution.execId, quantity=6)
    await eventually(lambda: position(ib).position == start.position + 6)  # type: ignore[union-attr]

    # Cost basis: the correction removes 4 shares bought at the fill price (and the
    # commission re-priced for 6 shares instead of 10).
    corrected = position(ib)
    assert corrected is not None
    held_cost = after_fill.avgCost * after_fill.position
    removed = 4 * fill.execution.price
    expected = (held_cost - removed) / corrected.position
    assert corrected.avgCost == pytest.approx(expected, abs=0.01)
    assert [f.shares for f in ib_sim.fills] == [6]


async def test_correction_reaches_the_master_client_but_not_others(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    ib_sim.master_client_id = 0  # TWS's "Master API client ID" setting
    master, bystander = ib_async.IB(), ib_async.IB()
    await master.connectAsync(ib_sim.host, ib_sim.port, clientId=0, timeout=3)
    await bystander.connectAsync(ib_sim.host, ib_sim.port, clientId=2, timeout=3)
    try:
        fill = await filled_market_order(ib, "BUY", 2)
        await eventually(lambda: fill.execution.execId in master.wrapper.fills)
        new_id = ib_sim.correct_fill(fill.execution.execId, price=190.00)
        await eventually(lambda: new_id in master.wrapper.fills and new_id in ib.wrapper.fills)
        assert master.wrapper.fills[new_id].execution.price == pytest.approx(190.00)
        await ib.reqCurrentTimeAsync()  # a round trip: anything for the bystander has arrived
        assert new_id not in bystander.wrapper.fills
    finally:
        master.disconnect()
        bystander.disconnect()


def test_correcting_an_unknown_execution_is_a_value_error(ib_sim: Simulator) -> None:
    with pytest.raises(ValueError, match="no such execution"):
        ib_sim.correct_fill("0000beef.00000001.01.01", price=100.0)


# ---------------------------------------------------------------------------------------------
# Inactive orders


async def test_inactive_order_is_reported_and_never_fills(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *_: errors.append((req_id, code, text))
    ib_sim.inactivate_next()
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", 5))  # marketable: it would fill at once
    await eventually(lambda: trade.orderStatus.status == "Inactive")
    order_id = trade.order.orderId
    [(_, code, text)] = [e for e in errors if e[0] == order_id]
    assert code == 201
    assert text.startswith("Order rejected - reason:")
    statuses = [e.status for e in trade.log]
    assert statuses[-1] == "Inactive"
    assert "PreSubmitted" in statuses
    # Still held by TWS: it is listed among the open orders, as Inactive.
    [listed] = [t for t in await ib.reqAllOpenOrdersAsync() if t.order.orderId == order_id]
    assert listed.orderStatus.status == "Inactive"
    # The market crossing it again changes nothing.
    ib_sim.push_quote("AAPL", bid=180.00, ask=180.02, last=180.01)
    await ib.reqCurrentTimeAsync()
    assert trade.fills == []
    assert ib_sim.fills == []
    assert trade.orderStatus.status == "Inactive"


async def test_cancelling_an_inactive_order_makes_it_cancelled(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    ib_sim.inactivate_next(text="Order rejected - reason:Trading outside permitted hours")
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 5, 150.00))
    await eventually(lambda: trade.orderStatus.status == "Inactive")
    ib.cancelOrder(trade.order)
    await eventually(lambda: trade.orderStatus.status == "Cancelled")
    await eventually(lambda: (trade.order.orderId, 202) in errors)
    still_open = await ib.reqAllOpenOrdersAsync()
    assert trade.order.orderId not in {t.order.orderId for t in still_open}
    completed = await ib.reqCompletedOrdersAsync(apiOnly=True)
    assert [t.orderStatus.status for t in completed if t.order.permId == trade.order.permId] == [
        "Cancelled"
    ]


async def test_inactivate_the_nth_order_of_one_symbol(ib: ib_async.IB, ib_sim: Simulator) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    ib_sim.push_quote("MSFT", bid=400.00, ask=400.05, last=400.02)
    ib_sim.inactivate_next("AAPL", after=1)
    trades = [
        ib.placeOrder(AAPL, LimitOrder("BUY", 1, 150.00)),
        ib.placeOrder(MSFT, LimitOrder("BUY", 1, 300.00)),  # another symbol: not counted
        ib.placeOrder(AAPL, LimitOrder("BUY", 1, 151.00)),
        ib.placeOrder(AAPL, LimitOrder("BUY", 1, 152.00)),
    ]
    await eventually(lambda: all(t.orderStatus.status in ("Submitted", "Inactive") for t in trades))
    assert [t.orderStatus.status for t in trades] == [
        "Submitted",
        "Submitted",
        "Inactive",
        "Submitted",
    ]


def test_inactivate_next_checks_its_arguments(ib_sim: Simulator) -> None:
    with pytest.raises(KeyError):
        ib_sim.inactivate_next("NOPE")
    with pytest.raises(ValueError, match="after"):
        ib_sim.inactivate_next(after=-1)


# ---------------------------------------------------------------------------------------------
# fail_next(after=N)


async def test_fail_next_after_rejects_exactly_one_place_order(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.push_quote("AAPL", **QUOTE)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    ib_sim.fail_next("place_order", 201, "Order rejected - reason:Simulated rejection", after=2)
    trades = [ib.placeOrder(AAPL, LimitOrder("BUY", 1, 150.00 + i)) for i in range(4)]
    rejected = trades[2]
    await eventually(lambda: all(t.isDone() or t.orderStatus.status == "Submitted" for t in trades))
    assert [t.orderStatus.status for t in trades] == [
        "Submitted",
        "Submitted",
        "Cancelled",  # how ib_async ends an order TWS rejected with an error
        "Submitted",
    ]
    assert [e for e in errors if e[1] == 201] == [(rejected.order.orderId, 201)]
    assert ib_sim.request_count("place_order") == 4
    live = {o.order_id for o in ib_sim.orders}
    assert rejected.order.orderId not in live
    assert {t.order.orderId for t in trades} - live == {rejected.order.orderId}


async def test_fail_next_without_after_still_fails_the_very_next_request(
    ib: ib_async.IB, ib_sim: Simulator
) -> None:
    ib_sim.fail_next("current_time", 321, "Error validating request")
    errors: list[int] = []
    ib.errorEvent += lambda _req_id, code, *_: errors.append(code)
    ib.client.reqCurrentTime()
    await eventually(lambda: 321 in errors)
    assert (await ib.reqCurrentTimeAsync()).year >= 2024  # only one was failed


def test_fail_next_refuses_a_negative_after(ib_sim: Simulator) -> None:
    with pytest.raises(ValueError, match="after"):
        ib_sim.fail_next("place_order", 201, "x", after=-1)
