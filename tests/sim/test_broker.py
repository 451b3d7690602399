"""The simulated broker: order lifecycles, matching, brackets, OCA, bookkeeping and PnL.

The broker is pure, so these tests drive it directly with a hand-set market and a fake clock and
check the events it emits (in wire order) and the state it keeps.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ibflow.sim._broker import Broker
from ibflow.sim._events import (
    AccountChanged,
    Commission,
    Event,
    Executed,
    OrderChanged,
    OrderError,
    PositionChanged,
)
from ibflow.sim._layouts import PlaceOrderRequest
from ibflow.sim._ledger import CommissionModel
from ibflow.sim._model import (
    ContractQuery,
    Instrument,
    QuoteState,
    SimAccount,
    SimError,
    SimPosition,
)
from ibflow.sim._order_rules import CANCELED_TEXT, INACTIVE_TEXT, OFF_TICK_TEXT, READONLY_TEXT

ACCOUNT = "DU1234567"
AAPL = Instrument(
    con_id=265598, symbol="AAPL", sec_type="STK", exchange="SMART", primary_exchange="NASDAQ"
)
MSFT = Instrument(
    con_id=272093, symbol="MSFT", sec_type="STK", exchange="SMART", primary_exchange="NASDAQ"
)
EURUSD = Instrument(
    con_id=12087792,
    symbol="EUR",
    sec_type="CASH",
    exchange="IDEALPRO",
    local_symbol="EUR.USD",
    min_tick=0.00005,
    rth=("1715", "1700"),
    eth=("1715", "1700"),
)
ES = Instrument(
    con_id=495512563,
    symbol="ES",
    sec_type="FUT",
    exchange="CME",
    multiplier="50",
    min_tick=0.25,
    last_trade_date="20271217",
)
SPX = Instrument(con_id=416904, symbol="SPX", sec_type="IND", exchange="CBOE")

# 2025-01-06 is a Monday; 15:00 UTC is 10:00 in New York.
MONDAY_10AM = datetime(2025, 1, 6, 15, 0, tzinfo=UTC).timestamp()
SATURDAY = datetime(2025, 1, 4, 15, 0, tzinfo=UTC).timestamp()


class FakeMarket:
    def __init__(self) -> None:
        self.quotes: dict[int, QuoteState] = {
            AAPL.con_id: QuoteState(bid=190.0, ask=190.05, last=190.0, close=189.0),
            MSFT.con_id: QuoteState(bid=400.0, ask=400.1, last=400.05, close=398.0),
            EURUSD.con_id: QuoteState(bid=1.07995, ask=1.08, last=0.0, close=1.07),
            ES.con_id: QuoteState(bid=5000.0, ask=5000.25, last=5000.0, close=4990.0),
            SPX.con_id: QuoteState(bid=5000.0, ask=5001.0, last=5000.5, close=4990.0),
        }

    def quote(self, con_id: int) -> QuoteState:
        return self.quotes[con_id]

    def set(self, inst: Instrument, **kw: float | bool) -> None:
        self.quotes[inst.con_id] = replace(self.quotes[inst.con_id], **kw)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float = MONDAY_10AM) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_broker(
    *,
    positions: list[SimPosition] | None = None,
    accounts: list[SimAccount] | None = None,
    **kw: Any,
) -> tuple[Broker, FakeMarket, Clock]:
    market, clock = FakeMarket(), Clock()
    broker = Broker(
        accounts if accounts is not None else [SimAccount(ACCOUNT, cash=1_000_000.0)],
        positions if positions is not None else [SimPosition(ACCOUNT, AAPL, 100.0, 150.0)],
        market,
        seed=7,
        clock=clock,
        instruments=[AAPL, MSFT, EURUSD, ES, SPX],
        **kw,
    )
    return broker, market, clock


def req(
    order_id: int,
    action: str,
    qty: float,
    order_type: str = "MKT",
    *,
    inst: Instrument = AAPL,
    **kw: Any,
) -> PlaceOrderRequest:
    return PlaceOrderRequest(
        order_id=order_id,
        contract=ContractQuery(con_id=inst.con_id),
        action=action,
        total_quantity=qty,
        order_type=order_type,
        **kw,
    )


def kinds(events: list[Event]) -> list[str]:
    """A compact picture of an event list: OrderChanged shows the order id and status."""
    out = []
    for ev in events:
        if isinstance(ev, OrderChanged):
            out.append(f"{ev.order.order_id}:{ev.order.status}")
        elif isinstance(ev, OrderError):
            out.append(f"{ev.order_id}:error {ev.code}")
        else:
            out.append(type(ev).__name__)
    return out


def executions_of(events: list[Event]) -> list[tuple[float, float]]:
    return [(e.execution.shares, e.execution.price) for e in events if isinstance(e, Executed)]


# ---------------------------------------------------------------------------------------------
# Round trips


def test_market_buy_round_trip_in_wire_order() -> None:
    broker, _, _ = make_broker()
    events = broker.place(1, req(10, "BUY", 10), AAPL)
    assert kinds(events) == [
        "10:PreSubmitted",
        "10:Submitted",
        "Executed",
        "10:Filled",
        "Commission",
        "PositionChanged",
        "AccountChanged",
    ]
    ex = events[2]
    assert isinstance(ex, Executed)
    e = ex.execution
    assert (e.side, e.shares, e.price, e.cum_qty, e.avg_price) == ("BOT", 10, 190.05, 10, 190.05)
    assert (e.order_id, e.client_id, e.account) == (10, 1, ACCOUNT)
    assert e.commission == 1.0
    assert e.commission_currency == "USD"
    assert e.realized_pnl is None  # adding to a long realizes nothing
    assert e.time == datetime(2025, 1, 6, 15, 0, tzinfo=UTC)
    assert re.fullmatch(r"[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01", e.exec_id)
    commission = events[4]
    assert isinstance(commission, Commission)
    assert commission.execution is e
    filled = events[3]
    assert isinstance(filled, OrderChanged)
    o = filled.order
    assert (o.filled, o.remaining, o.avg_fill_price, o.last_fill_price) == (10, 0, 190.05, 190.05)
    assert o.perm_id == e.perm_id
    assert o.client_id == 1
    assert o.completed_status == "Filled"
    assert o.completed_time == "20250106 15:00:00 UTC"
    pos = events[5]
    assert isinstance(pos, PositionChanged)
    assert pos.position is not None
    assert (pos.account, pos.instrument, pos.position.quantity) == (ACCOUNT, AAPL, 110.0)
    assert events[6] == AccountChanged(ACCOUNT)
    # Snapshots: the first event still shows the state it was made in.
    first = events[0]
    assert isinstance(first, OrderChanged)
    assert first.order.status == "PreSubmitted"
    assert first.order.filled == 0
    assert broker.open_orders() == []
    assert [o.order_id for o in broker.completed_orders()] == [10]
    assert broker.cash(ACCOUNT) == {"USD": pytest.approx(1_000_000 - 1900.5 - 1.0)}
    (aapl,) = broker.positions(ACCOUNT)
    assert aapl.quantity == 110
    assert aapl.avg_cost == pytest.approx((100 * 150 + 1900.5 + 1.0) / 110)


def test_market_sell_realizes_pnl_against_average_cost() -> None:
    broker, _, _ = make_broker()
    events = broker.place(1, req(11, "SELL", 40), AAPL)
    (e,) = [ev.execution for ev in events if isinstance(ev, Executed)]
    assert (e.side, e.price) == ("SLD", 190.0)
    assert e.realized_pnl == pytest.approx((190.0 - 150.0) * 40 - 1.0)
    (aapl,) = broker.positions(ACCOUNT)
    assert aapl.quantity == 60
    assert aapl.avg_cost == 150.0
    assert aapl.realized_pnl == pytest.approx(1599.0)
    assert broker.pnl(ACCOUNT)[2] == pytest.approx(1599.0)


def test_closing_and_flipping_a_position() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(1, "SELL", 150), AAPL)  # 100 closed, 50 opened short
    (aapl,) = broker.positions(ACCOUNT)
    assert aapl.quantity == -50
    # A short's average cost is its proceeds net of its share of the commission.
    commission = 1.0  # 150 shares at 0.005 is below the 1.00 minimum
    assert aapl.avg_cost == pytest.approx(190.0 - commission / 3 / 50)
    assert aapl.realized_pnl == pytest.approx(4000 - commission * 2 / 3)
    broker.place(1, req(2, "BUY", 50), AAPL)
    (aapl,) = broker.positions(ACCOUNT)
    assert (aapl.quantity, aapl.avg_cost) == (0, 0)
    assert [p.position for p in broker.portfolio(ACCOUNT)] == [0]


def test_limit_order_rests_until_the_market_crosses() -> None:
    broker, market, _ = make_broker()
    events = broker.place(1, req(20, "BUY", 5, "LMT", lmt_price=189.5), AAPL)
    assert kinds(events) == ["20:PreSubmitted", "20:Submitted"]
    assert [o.order_id for o in broker.open_orders(1)] == [20]
    assert broker.open_orders(2) == []
    market.set(AAPL, bid=189.5, ask=189.6)
    assert broker.on_quote(AAPL.con_id) == []
    market.set(AAPL, bid=189.3, ask=189.4)
    events = broker.on_quote(AAPL.con_id)
    assert executions_of(events) == [(5, 189.4)]  # the better price, not the limit
    assert kinds(events)[1] == "20:Filled"
    assert broker.on_quote(AAPL.con_id) == []


def test_sell_limit_fills_at_the_bid() -> None:
    broker, market, _ = make_broker()
    broker.place(1, req(21, "SELL", 5, "LMT", lmt_price=191.0), AAPL)
    market.set(AAPL, bid=191.2, ask=191.3)
    assert executions_of(broker.on_quote(AAPL.con_id)) == [(5, 191.2)]


def test_stop_triggers_on_last_then_fills_at_market() -> None:
    broker, market, _ = make_broker()
    events = broker.place(1, req(30, "BUY", 10, "STP", aux_price=195.0), AAPL)
    assert kinds(events) == ["30:PreSubmitted"]  # an untriggered stop is held at IB
    market.set(AAPL, last=194.9, bid=194.8, ask=194.95)
    assert broker.on_quote(AAPL.con_id) == []
    market.set(AAPL, last=195.0, bid=195.0, ask=195.1)
    events = broker.on_quote(AAPL.con_id)
    assert kinds(events)[:3] == ["30:Submitted", "Executed", "30:Filled"]
    assert executions_of(events) == [(10, 195.1)]


def test_sell_stop_limit_triggers_then_waits_for_its_limit() -> None:
    broker, market, _ = make_broker()
    events = broker.place(1, req(31, "SELL", 10, "STP LMT", aux_price=185.0, lmt_price=184.5), AAPL)
    assert kinds(events) == ["31:PreSubmitted"]
    market.set(AAPL, last=184.0, bid=184.0, ask=184.1)  # triggered, but below the limit
    assert kinds(broker.on_quote(AAPL.con_id)) == ["31:Submitted"]
    market.set(AAPL, last=184.6, bid=184.6, ask=184.7)
    assert executions_of(broker.on_quote(AAPL.con_id)) == [(10, 184.6)]


def test_forex_stop_triggers_on_the_midpoint() -> None:
    broker, market, _ = make_broker()
    broker.place(1, req(32, "BUY", 20000, "STP", inst=EURUSD, aux_price=1.081), EURUSD)
    market.set(EURUSD, bid=1.081, ask=1.08105)
    assert executions_of(broker.on_quote(EURUSD.con_id)) == [(20000, 1.08105)]


def test_halted_instrument_does_not_fill() -> None:
    broker, market, _ = make_broker()
    market.set(AAPL, halted=True)
    assert kinds(broker.place(1, req(33, "BUY", 1), AAPL)) == ["33:PreSubmitted", "33:Submitted"]
    market.set(AAPL, halted=False)
    assert executions_of(broker.on_quote(AAPL.con_id)) == [(1, 190.05)]


# ---------------------------------------------------------------------------------------------
# Cancel, modify, time in force


def test_cancel_sends_cancelled_then_error_202() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(40, "BUY", 5, "LMT", lmt_price=180.0), AAPL)
    events = broker.cancel(1, 40)
    assert kinds(events) == ["40:Cancelled", "40:error 202"]
    err = events[1]
    assert isinstance(err, OrderError)
    assert (err.client_id, err.text) == (1, CANCELED_TEXT)
    assert broker.open_orders() == []
    (done,) = broker.completed_orders()
    assert (done.status, done.completed_status) == ("Cancelled", "Cancelled by Trader")
    again = broker.cancel(1, 40)
    assert kinds(again) == ["40:error 161"]
    assert isinstance(again[0], OrderError)
    assert again[0].text.startswith("Cancel attempted when order is not in a cancellable state.")


def test_cancel_unknown_or_foreign_order_is_10147() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(41, "BUY", 5, "LMT", lmt_price=180.0), AAPL)
    assert broker.cancel(1, 999) == [
        OrderError(999, 1, 10147, "OrderId 999 that needs to be cancelled is not found.")
    ]
    # Another client cannot cancel it: order ids belong to the client that placed them.
    assert kinds(broker.cancel(2, 41)) == ["41:error 10147"]


def test_global_cancel_reaches_every_client() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(42, "BUY", 5, "LMT", lmt_price=180.0), AAPL)
    broker.place(2, req(42, "SELL", 5, "LMT", lmt_price=200.0), AAPL)
    events = broker.global_cancel()
    assert kinds(events) == ["42:Cancelled", "42:error 202", "42:Cancelled", "42:error 202"]
    assert [e.client_id for e in events if isinstance(e, OrderError)] == [1, 2]
    assert broker.open_orders() == []


def test_modify_price_makes_a_resting_order_fill() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(50, "BUY", 5, "LMT", lmt_price=180.0), AAPL)
    perm_id = broker.open_orders()[0].perm_id
    events = broker.place(1, req(50, "BUY", 8, "LMT", lmt_price=190.1), AAPL)
    assert kinds(events)[:3] == ["50:Submitted", "Executed", "50:Filled"]
    changed = events[0]
    assert isinstance(changed, OrderChanged)
    assert (changed.order.lmt_price, changed.order.total_quantity) == (190.1, 8)
    assert changed.order.perm_id == perm_id  # a modify keeps the order's identity
    assert executions_of(events) == [(8, 190.05)]


def test_modify_rules() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(51, "BUY", 5, "LMT", lmt_price=180.0), AAPL)
    assert kinds(broker.place(1, req(51, "SELL", 5, "LMT", lmt_price=180.0), AAPL)) == [
        "51:error 105"
    ]
    assert kinds(broker.place(1, req(51, "BUY", 5, "LMT", lmt_price=180.013), AAPL)) == [
        "51:error 110"
    ]
    assert broker.open_orders()[0].lmt_price == 180.0  # a rejected modify changes nothing
    broker.place(1, req(52, "BUY", 1), AAPL)
    assert kinds(broker.place(1, req(52, "BUY", 2), AAPL)) == ["52:error 104"]
    broker.cancel(1, 51)
    assert kinds(broker.place(1, req(51, "BUY", 5, "LMT", lmt_price=181.0), AAPL)) == [
        "51:error 103"
    ]


def test_ioc_cancels_what_does_not_fill_at_once() -> None:
    broker, _, _ = make_broker()
    events = broker.place(1, req(60, "BUY", 5, "LMT", lmt_price=189.0, tif="IOC"), AAPL)
    assert kinds(events) == ["60:PreSubmitted", "60:Submitted", "60:Cancelled"]
    events = broker.place(1, req(61, "BUY", 5, "LMT", lmt_price=191.0, tif="IOC"), AAPL)
    assert kinds(events)[2:4] == ["Executed", "61:Filled"]


def test_ioc_with_partial_fill_cancels_the_rest() -> None:
    broker, _, _ = make_broker(partial_fill_clip=3)
    events = broker.place(1, req(62, "BUY", 5, tif="IOC"), AAPL)
    assert executions_of(events) == [(3, 190.05)]
    assert kinds(events)[-1] == "62:Cancelled"
    (done,) = broker.completed_orders()
    assert (done.filled, done.status) == (3, "Cancelled")


def test_gtc_rests_and_gtd_expires() -> None:
    broker, _, clock = make_broker()
    broker.place(1, req(63, "BUY", 5, "LMT", lmt_price=180.0, tif="GTC"), AAPL)
    broker.place(
        1,
        req(64, "BUY", 5, "LMT", lmt_price=180.0, tif="GTD", good_till_date="20250106 16:00:00"),
        AAPL,
    )
    assert broker.on_quote(AAPL.con_id) == []
    clock.now += 3600
    assert kinds(broker.on_quote(AAPL.con_id)) == ["64:Cancelled"]
    assert [o.order_id for o in broker.open_orders()] == [63]


# ---------------------------------------------------------------------------------------------
# Brackets and OCA


def test_bracket_is_held_until_the_last_child_transmits() -> None:
    broker, market, _ = make_broker()
    # The parent is marketable, but nothing happens while it is not transmitted.
    events = broker.place(1, req(70, "BUY", 10, "LMT", lmt_price=190.1, transmit=False), AAPL)
    assert kinds(events) == ["70:PendingSubmit"]
    events = broker.place(
        1, req(71, "SELL", 10, "LMT", lmt_price=200.0, parent_id=70, transmit=False), AAPL
    )
    assert kinds(events) == ["71:PendingSubmit"]
    assert broker.on_quote(AAPL.con_id) == []
    assert {o.status for o in broker.open_orders()} == {"PendingSubmit"}

    events = broker.place(1, req(72, "SELL", 10, "STP", aux_price=185.0, parent_id=70), AAPL)
    assert kinds(events) == [
        "70:PreSubmitted",
        "70:Submitted",
        "71:PreSubmitted",  # children wait for the parent
        "72:PreSubmitted",
        "Executed",
        "70:Filled",
        "Commission",
        "PositionChanged",
        "AccountChanged",
        "71:Submitted",  # the parent filled: the take-profit goes live; the stop stays held
    ]
    assert {o.order_id: o.status for o in broker.open_orders()} == {
        71: "Submitted",
        72: "PreSubmitted",
    }
    # The take-profit fills; its sibling stop is cancelled (no 202: nobody asked).
    market.set(AAPL, bid=200.0, ask=200.05, last=200.0)
    events = broker.on_quote(AAPL.con_id)
    assert kinds(events) == [
        "Executed",
        "71:Filled",
        "Commission",
        "PositionChanged",
        "AccountChanged",
        "72:Cancelled",
    ]
    assert broker.open_orders() == []
    assert broker.positions(ACCOUNT)[0].quantity == 100


def test_bracket_children_wait_for_the_parent_fill() -> None:
    broker, market, _ = make_broker()
    broker.place(1, req(80, "BUY", 10, "LMT", lmt_price=185.0, transmit=False), AAPL)
    # The take-profit would be marketable right away; it must still wait for its parent.
    broker.place(1, req(81, "SELL", 10, "LMT", lmt_price=186.0, parent_id=80), AAPL)
    assert {o.order_id: o.status for o in broker.open_orders()} == {
        80: "Submitted",
        81: "PreSubmitted",
    }
    assert broker.on_quote(AAPL.con_id) == []
    market.set(AAPL, bid=184.9, ask=185.0, last=185.0)
    events = broker.on_quote(AAPL.con_id)
    assert kinds(events)[:2] == ["Executed", "80:Filled"]
    assert "81:Submitted" in kinds(events)
    market.set(AAPL, bid=186.0, ask=186.1, last=186.0)
    assert executions_of(broker.on_quote(AAPL.con_id)) == [(10, 186.0)]


def test_cancelling_a_parent_cancels_its_children() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(90, "BUY", 10, "LMT", lmt_price=185.0, transmit=False), AAPL)
    broker.place(1, req(91, "SELL", 10, "LMT", lmt_price=200.0, parent_id=90), AAPL)
    events = broker.cancel(1, 90)
    assert kinds(events) == ["90:Cancelled", "90:error 202", "91:Cancelled", "91:error 202"]
    assert broker.open_orders() == []


def test_child_of_unknown_parent_is_rejected() -> None:
    broker, _, _ = make_broker()
    assert kinds(broker.place(1, req(95, "SELL", 1, parent_id=94), AAPL)) == ["95:error 201"]


def test_modify_with_transmit_releases_a_held_order() -> None:
    broker, _, _ = make_broker()
    assert kinds(broker.place(1, req(96, "BUY", 1, transmit=False), AAPL)) == ["96:PendingSubmit"]
    events = broker.place(1, req(96, "BUY", 1, transmit=True), AAPL)
    assert kinds(events)[:3] == ["96:PreSubmitted", "96:Submitted", "Executed"]


def test_oca_type_1_cancels_the_others_on_a_fill() -> None:
    broker, market, _ = make_broker()
    broker.place(1, req(100, "BUY", 10, "LMT", lmt_price=189.0, oca_group="g", oca_type=1), AAPL)
    broker.place(1, req(101, "BUY", 10, "LMT", lmt_price=188.0, oca_group="g", oca_type=1), AAPL)
    broker.place(1, req(102, "BUY", 10, "LMT", lmt_price=187.0, oca_group="other"), AAPL)
    market.set(AAPL, bid=188.4, ask=188.5)
    events = broker.on_quote(AAPL.con_id)
    assert executions_of(events) == [(10, 188.5)]
    assert kinds(events)[-1] == "101:Cancelled"
    assert [o.order_id for o in broker.open_orders()] == [102]


def test_oca_reduce_type_shrinks_siblings_by_each_fill() -> None:
    broker, market, _ = make_broker(partial_fill_clip=4)
    broker.place(1, req(110, "SELL", 10, "LMT", lmt_price=191.0, oca_group="r", oca_type=2), AAPL)
    broker.place(1, req(111, "SELL", 10, "LMT", lmt_price=195.0, oca_group="r", oca_type=2), AAPL)
    market.set(AAPL, bid=191.0, ask=191.1)
    events = broker.on_quote(AAPL.con_id)
    assert executions_of(events) == [(4, 191.0)]
    changed = [e.order for e in events if isinstance(e, OrderChanged) and e.order.order_id == 111]
    assert [o.total_quantity for o in changed] == [6]
    broker.on_quote(AAPL.con_id)
    events = broker.on_quote(AAPL.con_id)
    assert executions_of(events) == [(2, 191.0)]
    assert kinds(events)[-1] == "111:Cancelled"


# ---------------------------------------------------------------------------------------------
# Partial fills


def test_partial_fills_come_in_clips_with_one_minimum_commission() -> None:
    broker, market, _ = make_broker(partial_fill_clip=4)
    events = broker.place(1, req(120, "BUY", 10), AAPL)
    assert kinds(events) == [
        "120:PreSubmitted",
        "120:Submitted",
        "Executed",
        "120:Submitted",
        "Commission",
        "PositionChanged",
        "AccountChanged",
    ]
    partial = events[3]
    assert isinstance(partial, OrderChanged)
    assert (partial.order.filled, partial.order.remaining) == (4, 6)
    market.set(AAPL, ask=190.15)
    events += broker.on_quote(AAPL.con_id)
    events += broker.on_quote(AAPL.con_id)
    fills = [e.execution for e in events if isinstance(e, Executed)]
    assert [(f.shares, f.price, f.cum_qty) for f in fills] == [
        (4, 190.05, 4),
        (4, 190.15, 8),
        (2, 190.15, 10),
    ]
    assert fills[-1].avg_price == pytest.approx((4 * 190.05 + 6 * 190.15) / 10)
    assert sum(f.commission for f in fills) == pytest.approx(1.0)
    assert broker.order(1, 120) is not None
    assert broker.order(1, 120).status == "Filled"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(
    ("request_", "code", "text"),
    [
        (req(1, "BUY", 0), 434, "The order size cannot be zero."),
        (req(1, "BUY", -5), 201, None),
        (req(1, "BUY", 5, "LMT", lmt_price=190.013), 110, OFF_TICK_TEXT),
        (req(1, "BUY", 5, "STP", aux_price=190.001), 110, OFF_TICK_TEXT),
        (
            req(1, "BUY", 5, "TRAIL"),
            387,
            "Unsupported order type for this exchange and security type.",
        ),
        (req(1, "BUY", 5, "LMT"), 201, None),
        (req(1, "BUY", 5, "STP"), 201, None),
        (req(1, "HOLD", 5), 201, None),
        (req(1, "BUY", 5, tif="XYZ"), 201, None),
        (req(1, "BUY", 5, account="U999"), 201, None),
        (req(1, "BUY", 100_000), 201, None),  # 19 M of stock on 1 M of equity
    ],
    ids=[
        "zero",
        "negative",
        "lmt-off-tick",
        "stp-off-tick",
        "order-type",
        "lmt-no-price",
        "stp-no-price",
        "action",
        "tif",
        "account",
        "margin",
    ],
)
def test_rejections_emit_only_an_error(
    request_: PlaceOrderRequest, code: int, text: str | None
) -> None:
    broker, _, _ = make_broker()
    events = broker.place(3, request_, AAPL)
    assert len(events) == 1
    err = events[0]
    assert isinstance(err, OrderError)
    assert (err.order_id, err.client_id, err.code) == (1, 3, code)
    if text is not None:
        assert err.text == text
    if code == 201:
        assert err.text.startswith("Order rejected - reason:")
    assert broker.open_orders() == []
    assert broker.completed_orders() == []


def test_margin_rejection_names_the_figures() -> None:
    broker, _, _ = make_broker()
    (err,) = broker.place(1, req(1, "BUY", 100_000), AAPL)
    assert isinstance(err, OrderError)
    assert "EQUITY WITH LOAN VALUE" in err.text
    assert "INITIAL MARGIN" in err.text


def test_index_is_not_tradable() -> None:
    broker, _, _ = make_broker()
    assert kinds(broker.place(1, req(1, "BUY", 1, inst=SPX), SPX)) == ["1:error 201"]


def test_several_accounts_need_an_account_on_the_order() -> None:
    broker, _, _ = make_broker(accounts=[SimAccount("DU1"), SimAccount("DU2")], positions=[])
    assert kinds(broker.place(1, req(1, "BUY", 1), AAPL)) == ["1:error 436"]
    events = broker.place(1, req(2, "BUY", 1, account="du2"), AAPL)
    assert kinds(events)[2] == "Executed"
    assert [p.account for p in broker.positions()] == ["DU2"]
    assert broker.accounts == ["DU1", "DU2"]


def test_readonly_refuses_orders_and_cancels_with_321() -> None:
    broker, _, _ = make_broker(readonly=True)
    assert broker.place(4, req(1, "BUY", 1), AAPL) == [OrderError(1, 4, 321, READONLY_TEXT)]
    assert broker.cancel(4, 1) == [OrderError(1, 4, 321, READONLY_TEXT)]
    assert broker.global_cancel(4) == [OrderError(-1, 4, 321, READONLY_TEXT)]
    assert broker.open_orders() == []


def test_what_if_orders_are_never_placed() -> None:
    broker, _, _ = make_broker()
    with pytest.raises(ValueError, match="what-if"):
        broker.place(1, req(1, "BUY", 1, what_if=True), AAPL)


# ---------------------------------------------------------------------------------------------
# What-if


def test_what_if_previews_margin_and_commission() -> None:
    broker, _, _ = make_broker()
    r = req(5, "BUY", 100, "LMT", lmt_price=190.0, what_if=True)
    result = broker.what_if(r, AAPL, 1)
    assert result.init_margin_before == pytest.approx(100 * 190.0 * 0.5)
    assert result.init_margin_change == pytest.approx(100 * 190.0 * 0.5)
    assert result.maint_margin_after == pytest.approx(200 * 190.0 * 0.25)
    assert result.equity_with_loan_change == pytest.approx(-1.0)  # only the commission
    assert (result.commission, result.commission_currency) == (1.0, "USD")
    preview = broker.preview_order(1, r, AAPL)
    assert (preview.what_if, preview.status, preview.account) == (True, "PreSubmitted", ACCOUNT)
    assert broker.open_orders() == []
    assert broker.executions() == []
    with pytest.raises(SimError) as info:
        broker.what_if(req(6, "BUY", 5, "LMT", lmt_price=190.001), AAPL, 1)
    assert info.value.code == 110


# ---------------------------------------------------------------------------------------------
# Positions, cash, PnL, account values


def test_pnl_follows_quotes_and_fills() -> None:
    broker, market, _ = make_broker()
    daily, unrealized, realized = broker.pnl(ACCOUNT)
    assert daily == pytest.approx(100 * (190.0 - 189.0))
    assert unrealized == pytest.approx(100 * (190.0 - 150.0))
    assert realized == 0.0
    broker.place(1, req(1, "BUY", 10), AAPL)  # at 190.05, commission 1
    daily, unrealized, _ = broker.pnl(ACCOUNT)
    assert daily == pytest.approx(110 * 190.0 - 100 * 189.0 - (1900.5 + 1.0))
    market.set(AAPL, last=192.0, bid=191.95, ask=192.0)
    single = broker.pnl_single(ACCOUNT, AAPL.con_id)
    assert single is not None
    pos, daily, unrealized, realized, value = single
    assert pos == 110
    assert value == pytest.approx(110 * 192.0)
    assert daily == pytest.approx(110 * 192.0 - 100 * 189.0 - 1901.5)
    assert unrealized == pytest.approx(110 * 192.0 - (15000 + 1901.5))
    assert broker.pnl_single(ACCOUNT, MSFT.con_id) is None


def test_forex_moves_both_currency_balances() -> None:
    broker, market, _ = make_broker(positions=[])
    events = broker.place(1, req(1, "BUY", 20000, inst=EURUSD), EURUSD)
    (e,) = [ev.execution for ev in events if isinstance(ev, Executed)]
    assert (e.price, e.commission, e.commission_currency) == (1.08, 2.0, "USD")
    cash = broker.cash(ACCOUNT)
    assert cash["EUR"] == 20000
    assert cash["USD"] == pytest.approx(1_000_000 - 21600 - 2.0)
    market.set(EURUSD, bid=1.09, ask=1.09005)
    values = {(k, c): v for k, v, c in broker.account_values(ACCOUNT)}
    assert values[("CashBalance", "EUR")] == "20000.00"
    assert values[("ExchangeRate", "EUR")] == "1.090025"
    nlv = 1_000_000 - 21602.0 + 20000 * 1.090025
    assert values[("NetLiquidation", "USD")] == f"{nlv:.2f}"
    assert values[("CashBalance", "BASE")] == f"{nlv:.2f}"


def test_futures_move_cash_only_by_realized_pnl() -> None:
    broker, market, _ = make_broker(positions=[])
    broker.place(1, req(1, "BUY", 2, inst=ES), ES)  # at 5000.25
    assert broker.cash(ACCOUNT)["USD"] == 1_000_000
    (pos,) = broker.positions()
    assert pos.avg_cost == pytest.approx(5000.25 * 50 + 0.85)
    market.set(ES, bid=5010.0, ask=5010.25, last=5010.0)
    values = {(k, c): v for k, v, c in broker.account_values(ACCOUNT)}
    unrealized = 2 * 5010.0 * 50 - 2 * (5000.25 * 50 + 0.85)
    assert values[("FuturesPNL", "USD")] == f"{unrealized:.2f}"
    assert values[("NetLiquidation", "USD")] == f"{1_000_000 + unrealized:.2f}"
    events = broker.place(1, req(2, "SELL", 2, inst=ES), ES)
    (e,) = [ev.execution for ev in events if isinstance(ev, Executed)]
    realized = (5010.0 - 5000.25) * 100 - 4 * 0.85
    assert e.realized_pnl == pytest.approx(realized)
    assert broker.cash(ACCOUNT)["USD"] == pytest.approx(1_000_000 + realized)


def test_account_values_cover_the_keys_clients_expect() -> None:
    broker, _, _ = make_broker()
    rows = broker.account_values(ACCOUNT)
    values = {(k, c): v for k, v, c in rows}
    for key in (
        "NetLiquidation",
        "TotalCashValue",
        "BuyingPower",
        "AvailableFunds",
        "ExcessLiquidity",
        "GrossPositionValue",
        "InitMarginReq",
        "MaintMarginReq",
        "EquityWithLoanValue",
    ):
        assert (key, "USD") in values, key
    for key in ("CashBalance", "UnrealizedPnL", "RealizedPnL", "TotalCashBalance"):
        assert (key, "USD") in values, key
        assert (key, "BASE") in values, key
    assert values[("AccountType", "")] == "INDIVIDUAL"
    assert values[("Currency", "USD")] == "USD"
    assert values[("Currency", "BASE")] == "BASE"
    assert values[("AccountCode", "")] == ACCOUNT
    assert values[("NetLiquidation", "USD")] == "1019000.00"  # cash + 100 AAPL at 190
    assert values[("GrossPositionValue", "USD")] == "19000.00"
    assert values[("InitMarginReq", "USD")] == "9500.00"
    assert values[("MaintMarginReq", "USD")] == "4750.00"
    assert values[("AvailableFunds", "USD")] == "1009500.00"
    assert values[("BuyingPower", "USD")] == "4038000.00"
    assert values[("UnrealizedPnL", "USD")] == "4000.00"
    assert values[("StockMarketValue", "BASE")] == "19000.00"
    assert values[("ExchangeRate", "USD")] == "1.00"
    assert all(isinstance(v, str) for _, v, _ in rows)


def test_account_summary_tags_and_ledgers() -> None:
    broker, _, _ = make_broker()
    broker.place(1, req(1, "BUY", 10000, inst=EURUSD), EURUSD)
    rows = broker.account_summary(ACCOUNT, ["NetLiquidation", "AccountType", "Cushion", "Nope"])
    assert [(t, c) for t, _, c in rows] == [
        ("NetLiquidation", "USD"),
        ("AccountType", ""),
        ("Cushion", ""),
    ]
    ledger = broker.account_summary(ACCOUNT, "$LEDGER")
    assert {c for _, _, c in ledger} == {"BASE"}
    assert ("CashBalance", "BASE") in {(t, c) for t, _, c in ledger}
    all_ccy = broker.account_summary(ACCOUNT, "TotalCashValue,$LEDGER:ALL")
    assert all_ccy[0][0] == "TotalCashValue"
    assert {c for _, _, c in all_ccy[1:]} == {"BASE", "USD", "EUR"}
    eur = broker.account_summary(ACCOUNT, ["$LEDGER:EUR"])
    assert {c for _, _, c in eur} == {"EUR"}
    assert dict((t, v) for t, v, _ in eur)["CashBalance"] == "10000.00"
    assert broker.account_summary(ACCOUNT, ["$LEDGER:JPY"]) == []
    assert len(broker.account_summary(ACCOUNT, ["NetLiquidation", "NetLiquidation"])) == 1


def test_portfolio_marks_positions_to_market() -> None:
    broker, _, _ = make_broker()
    (item,) = broker.portfolio(ACCOUNT)
    assert (item.account, item.instrument, item.position) == (ACCOUNT, AAPL, 100)
    assert (item.market_price, item.market_value, item.avg_cost) == (190.0, 19000.0, 150.0)
    assert (item.unrealized_pnl, item.realized_pnl) == (4000.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Executions, ids, commissions, hours


def test_executions_filter() -> None:
    broker, _, clock = make_broker()
    broker.place(1, req(1, "BUY", 10), AAPL)
    clock.now += 60
    broker.place(2, req(1, "SELL", 5, inst=MSFT), MSFT)
    broker.place(2, req(2, "BUY", 20000, inst=EURUSD), EURUSD)

    def ids(**kw: Any) -> list[tuple[int, str]]:
        return [(e.client_id, e.instrument.symbol) for e in broker.executions(**kw)]

    assert ids() == [(1, "AAPL"), (2, "MSFT"), (2, "EUR")]
    assert ids(client_id=2) == [(2, "MSFT"), (2, "EUR")]
    assert ids(symbol="aapl") == [(1, "AAPL")]
    assert ids(side="SELL") == [(2, "MSFT")]
    assert ids(side="BOT") == [(1, "AAPL"), (2, "EUR")]
    assert ids(sec_type="CASH") == [(2, "EUR")]
    assert ids(exchange="IDEALPRO") == [(2, "EUR")]
    assert ids(exchange="NASDAQ") == [(1, "AAPL"), (2, "MSFT")]
    assert ids(account="du1234567") == ids()
    assert ids(account="DU999") == []
    assert ids(time="20250106 15:00:30") == [(2, "MSFT"), (2, "EUR")]
    assert ids(time="20250106-15:00:00") == ids()
    assert ids(time="20250106 10:00:30 US/Eastern") == [(2, "MSFT"), (2, "EUR")]


def test_ids_are_deterministic_per_seed() -> None:
    def run(seed: int) -> list[tuple[int, str]]:
        broker = Broker(
            [SimAccount(ACCOUNT)], [], FakeMarket(), seed=seed, clock=Clock(), instruments=[AAPL]
        )
        broker.place(1, req(1, "BUY", 1), AAPL)
        broker.place(1, req(2, "BUY", 1), AAPL)
        return [(e.perm_id, e.exec_id) for e in broker.executions()]

    first = run(1)
    assert first == run(1)
    assert first != run(2)
    (perm1, exec1), (perm2, exec2) = first
    assert perm2 == perm1 + 1
    assert exec1 != exec2


def test_commission_model() -> None:
    model = CommissionModel()
    assert model.order_total(AAPL, 100, 19000.0) == 1.0  # minimum
    assert model.order_total(AAPL, 1000, 190000.0) == 5.0
    assert model.order_total(AAPL, 100, 25.0) == 0.25  # capped at 1% of the value
    assert model.order_total(EURUSD, 20000, 21600.0) == 2.0
    assert model.order_total(EURUSD, 2_000_000, 2_160_000.0) == pytest.approx(43.2)
    assert model.order_total(ES, 3, 750000.0) == pytest.approx(2.55)
    option = replace(AAPL, sec_type="OPT", multiplier="100")
    assert model.order_total(option, 1, 325.0) == 1.0
    assert model.order_total(option, 10, 3250.0) == pytest.approx(6.5)
    assert model.currency(EURUSD) == "USD"


def test_market_hours_enforcement() -> None:
    broker, _, clock = make_broker(enforce_market_hours=True)
    clock.now = SATURDAY
    assert kinds(broker.place(1, req(1, "BUY", 1), AAPL)) == ["1:PreSubmitted"]
    clock.now = MONDAY_10AM
    assert kinds(broker.on_quote(AAPL.con_id))[:2] == ["1:Submitted", "Executed"]
    # Outside regular hours only outsideRth orders trade (07:00 New York is pre-market).
    clock.now = MONDAY_10AM - 3 * 3600
    assert kinds(broker.place(1, req(2, "BUY", 1), AAPL)) == ["2:PreSubmitted"]
    assert "Executed" in kinds(broker.place(1, req(3, "BUY", 1, outside_rth=True), AAPL))
    # Forex trades through the night (Monday 02:00 UTC is inside Sunday 17:15 - Monday 17:00).
    clock.now = datetime(2025, 1, 6, 2, 0, tzinfo=UTC).timestamp()
    assert "Executed" in kinds(broker.place(1, req(4, "BUY", 20000, inst=EURUSD), EURUSD))


def test_starting_state_is_copied_not_shared() -> None:
    account = SimAccount(ACCOUNT, cash=500.0)
    position = SimPosition(ACCOUNT, AAPL, 1.0, 100.0)
    broker = Broker([account], [position], FakeMarket(), seed=0, clock=Clock())
    broker.place(1, req(1, "BUY", 1), AAPL)
    assert (account.cash, position.quantity) == (500.0, 1.0)
    broker.positions()[0].quantity = 99
    assert broker.positions()[0].quantity == 2


# ---------------------------------------------------------------------------------------------
# Execution corrections


def state(broker: Broker) -> tuple[Any, ...]:
    """Everything a correction may move: positions, cash, account PnL and daily PnL."""
    positions = sorted(
        (p.instrument.con_id, p.quantity, round(p.avg_cost, 9), round(p.realized_pnl, 9))
        for p in broker.positions(ACCOUNT)
    )
    cash = {c: round(v, 6) for c, v in broker.cash(ACCOUNT).items()}
    return positions, cash, tuple(round(v, 6) for v in broker.pnl(ACCOUNT))


def only_execution(events: list[Event]) -> Any:
    (ex,) = [ev.execution for ev in events if isinstance(ev, Executed)]
    return ex


def test_correction_replaces_the_execution_and_raises_its_id() -> None:
    broker, _, _ = make_broker()
    original = only_execution(broker.place(1, req(10, "BUY", 10), AAPL))
    corrected, events = broker.correct_execution(original.exec_id, price=189.9)
    assert kinds(events) == ["Executed", "Commission", "PositionChanged", "AccountChanged"]
    assert events[0] == Executed(corrected)
    assert events[1] == Commission(corrected)
    head = original.exec_id.rsplit(".", 1)[0]
    assert corrected.exec_id == f"{head}.02"
    assert (corrected.shares, corrected.price, corrected.avg_price) == (10, 189.9, 189.9)
    assert (corrected.order_id, corrected.perm_id, corrected.time) == (
        original.order_id,
        original.perm_id,
        original.time,
    )
    assert broker.executions() == [corrected]
    again, _ = broker.correct_execution(corrected.exec_id, price=189.8)
    assert again.exec_id == f"{head}.03"
    assert broker.executions() == [again]
    (order,) = broker.completed_orders()
    assert (order.status, order.filled, order.avg_fill_price) == ("Filled", 10, 189.8)


@pytest.mark.parametrize(
    ("opening", "trades", "fix"),
    [
        pytest.param([(AAPL, 100.0, 150.0)], [("BUY", 10)], {"price": 189.5}, id="add-price"),
        pytest.param([(AAPL, 100.0, 150.0)], [("BUY", 10)], {"quantity": 4}, id="add-size"),
        pytest.param([], [("SELL", 150)], {"price": 191.0}, id="open-short"),
        pytest.param([(AAPL, 100.0, 150.0)], [("SELL", 150)], {"quantity": 120}, id="flip"),
        pytest.param(
            [(AAPL, 100.0, 150.0)],
            [("BUY", 10), ("SELL", 30)],
            {"price": 189.0},
            id="then-reduced",
        ),
        pytest.param([(ES, 2.0, 250_000.0)], [("SELL", 3)], {"price": 4990.0}, id="future"),
    ],
)
def test_correction_books_as_if_the_fill_had_been_right(
    opening: list[tuple[Instrument, float, float]],
    trades: list[tuple[str, float]],
    fix: dict[str, float],
) -> None:
    positions = [SimPosition(ACCOUNT, inst, qty, cost) for inst, qty, cost in opening]
    inst = opening[0][0] if opening else AAPL
    corrected, _, _ = make_broker(positions=positions)
    first = only_execution(corrected.place(1, req(1, *trades[0], inst=inst), inst))
    for n, (action, qty) in enumerate(trades[1:], start=2):
        corrected.place(1, req(n, action, qty, inst=inst), inst)
    corrected.correct_execution(first.exec_id, **fix)

    # The same day with the first fill done right from the start.
    right, market, _ = make_broker(positions=positions)
    price = fix.get("price", first.price)
    market.set(inst, bid=price, ask=price)
    right.place(1, req(1, trades[0][0], fix.get("quantity", trades[0][1]), inst=inst), inst)
    market.quotes[inst.con_id] = FakeMarket().quotes[inst.con_id]
    for n, (action, qty) in enumerate(trades[1:], start=2):
        right.place(1, req(n, action, qty, inst=inst), inst)

    assert state(corrected) == state(right)
    got = corrected.executions()[0]
    want = right.executions()[0]
    assert (got.shares, got.price, got.commission, got.realized_pnl) == pytest.approx(
        (want.shares, want.price, want.commission, want.realized_pnl)
    )


def test_correction_reprices_the_commission_for_the_new_size() -> None:
    broker, _, _ = make_broker()
    original = only_execution(broker.place(1, req(1, "BUY", 1000), AAPL))
    assert original.commission == 5.0
    corrected, _ = broker.correct_execution(original.exec_id, quantity=400)
    assert corrected.commission == 2.0
    assert broker.cash(ACCOUNT)["USD"] == pytest.approx(1_000_000 - 400 * 190.05 - 2.0)


def test_correction_that_completes_a_working_order_fills_it() -> None:
    broker, _, _ = make_broker(partial_fill_clip=3)
    first = only_execution(broker.place(1, req(5, "BUY", 5, "LMT", lmt_price=191.0), AAPL))
    assert first.shares == 3
    assert [o.order_id for o in broker.open_orders()] == [5]
    corrected, events = broker.correct_execution(first.exec_id, quantity=5)
    assert kinds(events)[-1] == "5:Filled"
    assert corrected.cum_qty == 5
    assert broker.open_orders() == []
    with pytest.raises(ValueError, match="would fill 6 of order 5"):
        broker.correct_execution(corrected.exec_id, quantity=6)


def test_correction_refuses_unknown_superseded_and_bad_values() -> None:
    broker, _, _ = make_broker()
    original = only_execution(broker.place(1, req(1, "BUY", 10), AAPL))
    with pytest.raises(ValueError, match="no such execution"):
        broker.correct_execution("00000000.00000000.01.01", price=1.0)
    for bad in ({"price": 0.0}, {"quantity": -1.0}, {"price": float("nan")}):
        with pytest.raises(ValueError, match="positive number"):
            broker.correct_execution(original.exec_id, **bad)
    corrected, _ = broker.correct_execution(original.exec_id, price=190.0)
    with pytest.raises(ValueError, match="already replaced"):
        broker.correct_execution(original.exec_id, price=190.0)
    assert broker.executions() == [corrected]


# ---------------------------------------------------------------------------------------------
# Inactive orders


def test_inactive_order_is_acknowledged_refused_then_inactive() -> None:
    broker, market, _ = make_broker()
    broker.inactivate_next()
    events = broker.place(1, req(7, "BUY", 10), AAPL)
    assert kinds(events) == ["7:PreSubmitted", "7:error 201", "7:Inactive"]
    error = events[1]
    assert isinstance(error, OrderError)
    assert error.client_id == 1
    assert error.text == INACTIVE_TEXT
    assert error.text.startswith("Order rejected - reason:")
    # Never worked, whatever the market does; still open until cancelled.
    market.set(AAPL, bid=150.0, ask=150.05)
    assert broker.on_quote(AAPL.con_id) == []
    assert broker.executions() == []
    assert [(o.order_id, o.status) for o in broker.open_orders(1)] == [(7, "Inactive")]
    assert broker.completed_orders() == []
    events = broker.cancel(1, 7)
    assert kinds(events) == ["7:Cancelled", "7:error 202"]
    assert broker.open_orders() == []
    assert [(o.order_id, o.status) for o in broker.completed_orders()] == [(7, "Cancelled")]
    assert kinds(broker.cancel(1, 7)) == ["7:error 161"]


def test_global_cancel_takes_inactive_orders_too() -> None:
    broker, _, _ = make_broker()
    broker.inactivate_next(code=399, text="Order held: outside trading hours")
    events = broker.place(1, req(7, "BUY", 10, "LMT", lmt_price=150.0), AAPL)
    assert kinds(events) == ["7:PreSubmitted", "7:error 399", "7:Inactive"]
    assert isinstance(events[1], OrderError)
    assert events[1].text == "Order held: outside trading hours"
    assert kinds(broker.global_cancel()) == ["7:Cancelled", "7:error 202"]


def test_inactive_rules_count_new_accepted_orders_of_their_symbol() -> None:
    broker, _, _ = make_broker()
    broker.inactivate_next(symbol="aapl", after=1)
    broker.inactivate_next(after=3)

    def status(order_id: int, inst: Instrument = AAPL, **kw: Any) -> str:
        events = broker.place(1, req(order_id, "BUY", 1, "LMT", inst=inst, **kw), inst)
        return kinds(events)[-1]

    assert status(1, lmt_price=150.0) == "1:Submitted"  # AAPL rule: 1 to skip, now 0
    assert status(2, MSFT, lmt_price=300.0) == "2:Submitted"  # not AAPL
    assert status(3, lmt_price=150.001) == "3:error 110"  # refused outright: not counted
    assert status(4, lmt_price=150.0) == "4:Inactive"  # AAPL rule fires
    assert status(1, lmt_price=151.0) == "1:Submitted"  # a modify: not counted
    assert status(5, MSFT, lmt_price=300.0) == "5:Inactive"  # the any-symbol rule: 4th order
    assert status(6, lmt_price=150.0) == "6:Submitted"
    with pytest.raises(ValueError, match="after"):
        broker.inactivate_next(after=-1)
