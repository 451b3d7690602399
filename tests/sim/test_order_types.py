"""IB's other order types, algos and conditions in the simulated broker: checks and matching.

The broker is pure, so these tests set the market by hand, move a fake clock and check the
events (in wire order) and the orders' state exactly.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ibflow.sim._broker import Broker
from ibflow.sim._events import Event, Executed, OrderChanged, OrderError
from ibflow.sim._layouts import PlaceOrderRequest
from ibflow.sim._model import (
    ContractQuery,
    Instrument,
    QuoteState,
    SimAccount,
    SimError,
)
from ibflow.sim._order_types import check_close_entry, next_close, order_types_for

ACCOUNT = "DU1234567"
AAPL = Instrument(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    order_types=order_types_for("STK"),
)
MSFT = replace(AAPL, con_id=272093, symbol="MSFT")
EURUSD = Instrument(
    con_id=12087792,
    symbol="EUR",
    sec_type="CASH",
    exchange="IDEALPRO",
    min_tick=0.00005,
    rth=("1715", "1700"),
    eth=("1715", "1700"),
    order_types=order_types_for("CASH"),
)
# 2025-01-06 is a Monday; 15:00 UTC is 10:00 in New York, the close is 21:00 UTC.
MONDAY_10AM = datetime(2025, 1, 6, 15, 0, tzinfo=UTC).timestamp()
MONDAY_CLOSE = datetime(2025, 1, 6, 21, 0, tzinfo=UTC).timestamp()


class Market:
    def __init__(self) -> None:
        self.quotes = {
            AAPL.con_id: QuoteState(bid=100.0, ask=100.02, last=100.01, close=98.0),
            MSFT.con_id: QuoteState(bid=400.0, ask=400.1, last=400.05, close=398.0),
            EURUSD.con_id: QuoteState(bid=1.08, ask=1.08005, last=0.0, close=1.07),
        }

    def quote(self, con_id: int) -> QuoteState:
        return self.quotes[con_id]


class Clock:
    def __init__(self) -> None:
        self.now = MONDAY_10AM

    def __call__(self) -> float:
        return self.now


class Desk:
    """A broker with a hand-driven market and clock."""

    def __init__(self, **kw: Any) -> None:
        self.market = Market()
        self.clock = Clock()
        self.broker = Broker(
            [SimAccount(ACCOUNT, cash=1_000_000.0)],
            [],
            self.market,
            seed=3,
            clock=self.clock,
            instruments=[AAPL, MSFT, EURUSD],
            **kw,
        )

    def place(self, order_id: int, action: str, qty: float, kind: str, **kw: Any) -> list[Event]:
        inst = kw.pop("inst", AAPL)
        request = PlaceOrderRequest(
            order_id=order_id,
            contract=ContractQuery(con_id=inst.con_id),
            action=action,
            total_quantity=qty,
            order_type=kind,
            **kw,
        )
        return self.broker.place(1, request, inst)

    def quote(self, inst: Instrument = AAPL, **kw: float) -> list[Event]:
        q = self.market.quotes[inst.con_id]
        self.market.quotes[inst.con_id] = replace(q, **kw)
        return self.broker.on_quote(inst.con_id)

    def last(self, price: float, spread: float = 0.02) -> list[Event]:
        """A trade at ``price`` with the book around it."""
        bid, ask = round(price - spread / 2, 4), round(price + spread / 2, 4)
        return self.quote(last=price, bid=bid, ask=ask)

    def status(self, order_id: int) -> str:
        order = self.broker.order(1, order_id)
        assert order is not None
        return order.status


def fills(events: list[Event]) -> list[tuple[float, float]]:
    return [(e.execution.shares, e.execution.price) for e in events if isinstance(e, Executed)]


def errors(events: list[Event]) -> list[tuple[int, str]]:
    return [(e.code, e.text) for e in events if isinstance(e, OrderError)]


def echoes(events: list[Event]) -> list[OrderChanged]:
    return [e for e in events if isinstance(e, OrderChanged)]


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    ("kind", "fields", "code", "words"),
    [
        ("TRAIL", {}, 201, "trailing amount or a trailing percent"),
        ("TRAIL", {"aux_price": 1.0, "trailing_percent": 2.0}, 201, "not both"),
        ("TRAIL", {"trailing_percent": 120.0}, 201, "between 0 and 100"),
        ("TRAIL", {"aux_price": 1.003}, 110, "minimum price variation"),
        ("TRAIL LIMIT", {"aux_price": 1.0}, 201, "limit price offset"),
        ("LOC", {}, 201, "limit price is required"),
        ("MOC", {"tif": "GTC"}, 113, "DAY for MOC and LOC"),
        ("LOC", {"lmt_price": 100.0, "tif": "IOC"}, 113, "DAY for MOC and LOC"),
        ("MIT", {}, 201, "trigger price is required"),
        ("LIT", {"aux_price": 99.0}, 201, "limit price is required"),
        ("LMT", {"lmt_price": 99.0, "algo_strategy": "Sniper"}, 439, "Algorithm definition"),
        (
            "LMT",
            {
                "lmt_price": 99.0,
                "algo_strategy": "Adaptive",
                "algo_params": (("adaptivePriority", "Fast"),),
            },
            441,
            "adaptivePriority must be one of Normal, Patient, Urgent",
        ),
        (
            "LMT",
            {"lmt_price": 99.0, "algo_strategy": "Adaptive", "algo_params": (("speed", "1"),)},
            443,
            "Unknown algo attribute: speed",
        ),
        ("STP", {"aux_price": 99.0, "algo_strategy": "Adaptive"}, 442, "not allowed"),
        (
            "MKT",
            {"algo_strategy": "Vwap", "algo_params": (("maxPctVol", "0.9"),)},
            441,
            "maxPctVol must be from 0.01 to 0.5",
        ),
        (
            "MKT",
            {"algo_strategy": "Twap", "algo_params": (("strategyType", "Fast"),)},
            441,
            "strategyType must be one of",
        ),
        (
            "MKT",
            {"conditions": ((1, ("a", "1", "abc", "265598", "SMART", "0")),)},
            201,
            "Invalid price condition",
        ),
        (
            "MKT",
            {"conditions": ((3, ("a", "1", "tomorrow")),)},
            201,
            "Invalid time condition",
        ),
        (
            "MKT",
            {"conditions": ((6, ("x", "1", "100", "265598", "SMART")),)},
            201,
            "conjunction",
        ),
        (
            "MKT",
            {"conditions": ((1, ("a", "1", "100", "999", "SMART", "0")),)},
            200,
            "No security definition",
        ),
    ],
)
def test_tws_refuses_incomplete_or_invalid_orders(
    kind: str, fields: dict[str, Any], code: int, words: str
) -> None:
    desk = Desk()
    events = desk.place(1, "BUY", 10, kind, **fields)
    [(got_code, text)] = errors(events)
    assert got_code == code
    assert words in text
    assert not echoes(events), "a refused order never exists"
    assert desk.broker.order(1, 1) is None


def test_relative_orders_are_for_stocks_and_close_orders_not_for_forex() -> None:
    desk = Desk()
    [(code, text)] = errors(desk.place(1, "BUY", 10_000, "REL", aux_price=0.0001, inst=EURUSD))
    assert code == 387  # IDEALPRO takes no REL at all
    [(code, _)] = errors(desk.place(2, "BUY", 10_000, "MOC", inst=EURUSD))
    assert code == 387
    cash_rel = replace(EURUSD, order_types=())
    [(code, text)] = errors(desk.place(3, "BUY", 10_000, "REL", aux_price=0.0001, inst=cash_rel))
    assert (code, text) == (114, "Relative orders are valid for stocks only.")


def test_default_order_types_by_security_type() -> None:
    assert "PEG MID" in order_types_for("STK")
    assert "MOC" in order_types_for("FUT")
    assert "REL" not in order_types_for("FUT")
    assert "MOC" not in order_types_for("CASH")
    assert order_types_for("IND") == ()


# ---------------------------------------------------------------------------------------------
# Trailing stops


def test_trailing_stop_ratchets_and_fills_at_the_ratcheted_stop() -> None:
    desk = Desk()
    events = desk.place(1, "SELL", 10, "TRAIL", aux_price=1.0)
    assert [e.order.status for e in echoes(events)] == ["PreSubmitted"]
    assert echoes(events)[0].order.trail_stop_price == 99.01  # last 100.01 less 1.00
    # Up: the stop follows, each move echoed; down a little: it stays.
    moved = desk.last(101.50)
    assert [e.order.trail_stop_price for e in echoes(moved)] == [100.50]
    assert desk.last(102.00)
    assert desk.broker.order(1, 1).trail_stop_price == 101.00
    assert desk.last(101.20) == []
    assert desk.status(1) == "PreSubmitted"
    # Down through the stop: it works as a market order and sells at the bid.
    events = desk.quote(last=100.99, bid=100.99, ask=101.01)
    assert fills(events) == [(10, 100.99)]
    assert desk.status(1) == "Filled"


def test_buy_trailing_percent_ratchets_down() -> None:
    desk = Desk()
    desk.place(1, "BUY", 5, "TRAIL", trailing_percent=2.0)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.trail_stop_price == 102.02  # 100.01 plus 2%, rounded up to the tick
    desk.last(90.00)
    assert order.trail_stop_price == 91.80
    assert fills(desk.last(91.00)) == []
    assert fills(desk.quote(last=91.80, bid=91.79, ask=91.81)) == [(5, 91.81)]


def test_trailing_stop_limit_limit_follows_the_stop() -> None:
    desk = Desk()
    desk.place(1, "SELL", 10, "TRAIL LIMIT", aux_price=1.0, lmt_price_offset=0.10)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert (order.trail_stop_price, order.lmt_price) == (99.01, 98.91)
    desk.last(105.00)
    assert (order.trail_stop_price, order.lmt_price) == (104.00, 103.90)
    # Touches the stop: a limit order at 103.90 that the bid reaches.
    events = desk.quote(last=104.00, bid=103.95, ask=103.97)
    assert fills(events) == [(10, 103.95)]
    # Gapping below the limit: triggered, but it rests as a limit order.
    desk2 = Desk()
    desk2.place(1, "SELL", 10, "TRAIL LIMIT", aux_price=1.0, lmt_price_offset=0.10)
    desk2.last(105.00)
    assert fills(desk2.quote(last=103.00, bid=102.00, ask=102.02)) == []
    assert desk2.status(1) == "Submitted"  # triggered: a working limit order at 103.90
    assert fills(desk2.quote(bid=103.95, ask=103.97)) == [(10, 103.95)]


@pytest.mark.parametrize(("method", "stop"), [(0, 99.01), (2, 99.01), (4, 99.00), (8, 99.01)])
def test_trigger_method_sets_the_price_stops_watch(method: int, stop: float) -> None:
    desk = Desk()
    desk.quote(bid=100.00, ask=100.02, last=100.01)
    desk.place(1, "SELL", 1, "TRAIL", aux_price=1.0, trigger_method=method)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.trail_stop_price == stop  # from the last, the bid or the midpoint


def test_bid_ask_trigger_method_triggers_a_sell_stop_on_the_bid() -> None:
    desk = Desk()
    desk.place(1, "SELL", 1, "STP", aux_price=99.00, trigger_method=4)
    assert fills(desk.quote(last=98.90, bid=99.01, ask=99.03)) == []  # a print below, bid above
    assert fills(desk.quote(bid=99.00, ask=99.02)) == [(1, 99.00)]


def test_trailing_stop_limit_with_a_limit_price_trails_its_distance() -> None:
    desk = Desk()
    desk.place(1, "SELL", 10, "TRAIL LIMIT", aux_price=1.0, lmt_price=98.80)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert (order.trail_stop_price, order.lmt_price, order.lmt_price_offset) == (99.01, 98.80, 0.21)
    desk.last(101.00)
    assert (order.trail_stop_price, order.lmt_price) == (100.00, 99.79)


def test_bracket_trailing_stop_starts_trailing_when_the_parent_fills() -> None:
    desk = Desk()
    desk.place(1, "BUY", 10, "LMT", lmt_price=95.00, transmit=False)
    desk.place(2, "SELL", 10, "TRAIL", aux_price=1.0, parent_id=1)
    child = desk.broker.order(1, 2)
    assert child is not None
    assert child.trail_stop_price is None  # not working yet
    events = desk.quote(last=95.00, bid=94.98, ask=95.00)
    assert fills(events) == [(10, 95.00)]  # the parent only
    assert (desk.status(2), child.trail_stop_price) == ("PreSubmitted", 94.00)
    assert fills(desk.last(96.50)) == []
    assert child.trail_stop_price == 95.50


def test_trailing_stop_starts_at_the_given_stop() -> None:
    desk = Desk()
    desk.place(1, "SELL", 1, "TRAIL", aux_price=2.0, trail_stop_price=99.50)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.trail_stop_price == 99.50
    desk.last(101.00)
    assert order.trail_stop_price == 99.50
    desk.last(102.00)
    assert order.trail_stop_price == 100.00


# ---------------------------------------------------------------------------------------------
# If touched, on close


def test_market_if_touched_triggers_on_touch() -> None:
    desk = Desk()
    events = desk.place(1, "BUY", 10, "MIT", aux_price=98.00)
    assert [e.order.status for e in echoes(events)] == ["PreSubmitted"]
    assert desk.last(98.50) == []
    events = desk.quote(last=98.00, bid=97.99, ask=98.01)
    assert [e.order.status for e in echoes(events)] == ["Submitted", "Filled"]
    assert fills(events) == [(10, 98.01)]


def test_limit_if_touched_becomes_a_limit_order() -> None:
    desk = Desk()
    desk.place(1, "SELL", 10, "LIT", aux_price=102.00, lmt_price=102.05)
    assert desk.last(101.90) == []
    events = desk.quote(last=102.00, bid=102.00, ask=102.02)
    assert fills(events) == []
    assert desk.status(1) == "Submitted"
    assert fills(desk.quote(bid=102.06, ask=102.08)) == [(10, 102.06)]


def test_market_on_close_fills_at_the_close() -> None:
    desk = Desk()
    events = desk.place(1, "BUY", 10, "MOC")
    assert [e.order.status for e in echoes(events)] == ["PreSubmitted", "Submitted"]
    assert fills(desk.last(101.00)) == []
    desk.clock.now = MONDAY_CLOSE - 1
    assert fills(desk.last(101.50)) == []
    desk.clock.now = MONDAY_CLOSE
    events = desk.quote(last=101.70, bid=101.60, ask=101.80)
    assert fills(events) == [(10, 101.70)]  # the closing print, not the offer


@pytest.mark.parametrize(
    ("primary", "sec_type", "before_close", "refused"),
    [
        ("NYSE", "STK", 601, False),
        ("NYSE", "STK", 600, True),
        ("ARCA", "STK", 600, True),
        ("NASDAQ", "STK", 301, False),
        ("NASDAQ", "STK", 300, True),
        ("", "FUT", 60, False),  # the cut-offs are the stock exchanges' auction rules
    ],
)
def test_on_close_entry_cut_off_by_listing_market(
    primary: str, sec_type: str, before_close: float, refused: bool
) -> None:
    inst = replace(AAPL, primary_exchange=primary, sec_type=sec_type)
    for kind, limit in (("MOC", None), ("LOC", 100.0)):
        req = PlaceOrderRequest(
            order_id=1,
            contract=ContractQuery(con_id=inst.con_id),
            action="BUY",
            total_quantity=10,
            order_type=kind,
            lmt_price=limit,
        )
        if refused:
            with pytest.raises(SimError) as raised:
                check_close_entry(req, inst, MONDAY_CLOSE - before_close)
            assert raised.value.code == 201
        else:
            check_close_entry(req, inst, MONDAY_CLOSE - before_close)


def test_an_on_close_order_not_yet_transmitted_can_still_be_cancelled() -> None:
    desk = Desk()
    desk.place(1, "BUY", 10, "MOC", transmit=False)
    desk.clock.now = MONDAY_CLOSE - 60
    events = desk.broker.cancel(1, 1)
    assert 161 not in [code for code, _ in errors(events)]
    assert desk.status(1) == "Cancelled"


def test_limit_on_close_fills_only_if_the_close_reaches_the_limit() -> None:
    desk = Desk()
    desk.place(1, "BUY", 10, "LOC", lmt_price=101.00)
    desk.place(2, "BUY", 10, "LOC", lmt_price=102.00)
    desk.clock.now = MONDAY_CLOSE + 5
    events = desk.last(101.50)
    assert fills(events) == [(10, 101.50)]
    assert desk.status(1) == "Cancelled"  # the close is beyond its limit
    assert desk.status(2) == "Filled"
    assert not errors(events)


def test_opening_orders_fill_at_the_open() -> None:
    desk = Desk()
    desk.clock.now = datetime(2025, 1, 6, 13, 0, tzinfo=UTC).timestamp()  # 08:00 in New York
    desk.place(1, "BUY", 10, "MKT", tif="OPG")
    desk.place(2, "SELL", 10, "LMT", lmt_price=100.50, tif="OPG")
    desk.place(3, "SELL", 10, "LMT", lmt_price=99.50, tif="OPG")
    assert fills(desk.last(100.01)) == []
    assert {desk.status(i) for i in (1, 2, 3)} == {"Submitted"}
    desk.clock.now = datetime(2025, 1, 6, 14, 30, tzinfo=UTC).timestamp()  # 09:30
    events = desk.last(100.20)
    assert fills(events) == [(10, 100.20), (10, 100.20)]  # orders 1 and 3 at the opening print
    assert (desk.status(1), desk.status(2), desk.status(3)) == ("Filled", "Cancelled", "Filled")


def test_opening_orders_placed_in_the_session_wait_for_the_next_open() -> None:
    desk = Desk()
    desk.place(1, "BUY", 10, "MKT", tif="OPG")
    assert fills(desk.last(100.01)) == []
    desk.clock.now = datetime(2025, 1, 7, 14, 30, tzinfo=UTC).timestamp()  # Tuesday 09:30
    assert fills(desk.last(100.01)) == [(10, 100.01)]


def test_opening_tif_only_for_market_and_limit_orders() -> None:
    desk = Desk()
    [(code, text)] = errors(desk.place(1, "BUY", 10, "STP", aux_price=101.0, tif="OPG"))
    assert (code, text) == (111, "The TIF (Tif type) and the order type are incompatible.")


def test_close_orders_wait_for_the_next_session_close() -> None:
    friday_evening = datetime(2025, 1, 10, 23, 0, tzinfo=UTC).timestamp()
    monday_close = datetime(2025, 1, 13, 21, 0, tzinfo=UTC).timestamp()
    assert next_close(AAPL, friday_evening) == monday_close
    assert next_close(AAPL, MONDAY_10AM) == MONDAY_CLOSE


def test_close_orders_ignore_enforced_trading_hours_at_the_close() -> None:
    desk = Desk(enforce_market_hours=True)
    desk.place(1, "SELL", 10, "MOC")
    desk.clock.now = MONDAY_CLOSE + 1
    assert fills(desk.last(99.00)) == [(10, 99.00)]


# ---------------------------------------------------------------------------------------------
# Pegged


def test_relative_order_pegs_to_the_bid_and_reprices() -> None:
    desk = Desk()
    desk.place(1, "BUY", 10, "REL", aux_price=0.01, lmt_price=101.00)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.working_price == 100.01
    assert desk.status(1) == "Submitted"
    desk.quote(bid=100.50, ask=100.60)
    assert order.working_price == 100.51
    desk.quote(bid=101.00, ask=101.30)
    assert order.working_price == 101.00  # capped
    # Back down: the order follows the bid, and fills once the offer comes to it.
    assert fills(desk.quote(bid=100.20, ask=100.25)) == []
    assert order.working_price == 100.21
    assert fills(desk.quote(bid=100.20, ask=100.21)) == [(10, 100.21)]


def test_relative_order_with_a_percent_offset() -> None:
    desk = Desk()
    desk.quote(bid=100.00, ask=100.30)
    desk.place(1, "BUY", 10, "REL", percent_offset=0.001)  # 0.1% of the bid, on the tick grid
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.working_price == 100.10
    desk.quote(bid=200.00, ask=200.50)
    assert order.working_price == 200.20


def test_sell_relative_order_pegs_to_the_ask() -> None:
    desk = Desk()
    desk.place(1, "SELL", 10, "REL", aux_price=0.01)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.working_price == 100.01
    assert fills(desk.quote(bid=100.01, ask=100.04)) == []
    assert order.working_price == 100.03
    # A trade through its price: the order was first in line and fills at its own price.
    assert fills(desk.quote(last=100.05)) == [(10, 100.03)]


def test_pegged_to_midpoint_tracks_the_mid() -> None:
    desk = Desk()
    desk.place(1, "BUY", 10, "PEG MID", aux_price=0.01)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.working_price == 100.0
    desk.quote(bid=101.00, ask=101.10)
    assert order.working_price == 101.04
    assert desk.status(1) == "Submitted"
    assert fills(desk.quote(last=101.04)) == []  # at its price is not through it
    assert fills(desk.quote(bid=100.90, ask=101.04, last=100.95)) == [(10, 100.96)]


def test_midpoint_offsets_for_whole_and_half_ticks() -> None:
    desk = Desk()
    desk.place(1, "SELL", 10, "PEG MID", mid_offset_at_whole=0.02, mid_offset_at_half=0.005)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.working_price == 100.03
    desk.quote(bid=100.00, ask=100.03)
    assert order.working_price == 100.02  # mid 100.015 is a half tick


# ---------------------------------------------------------------------------------------------
# Algos


@pytest.mark.parametrize(
    ("priority", "price"), [("Urgent", 100.09), ("Normal", 100.05), ("Patient", 100.04)]
)
def test_adaptive_fills_at_once_by_priority(priority: str, price: float) -> None:
    desk = Desk()
    desk.market.quotes[AAPL.con_id] = QuoteState(bid=100.00, ask=100.09, last=100.05)
    params = (("adaptivePriority", priority),)
    events = desk.place(1, "BUY", 10, "MKT", algo_strategy="Adaptive", algo_params=params)
    assert fills(events) == [(10, price)]


def test_adaptive_limit_never_fills_beyond_its_limit() -> None:
    desk = Desk()
    desk.market.quotes[AAPL.con_id] = QuoteState(bid=100.00, ask=100.10, last=100.05)
    params = (("adaptivePriority", "Normal"),)
    events = desk.place(
        1, "SELL", 10, "LMT", lmt_price=100.06, algo_strategy="Adaptive", algo_params=params
    )
    assert fills(events) == []  # would sell at 100.05
    assert desk.status(1) == "Submitted"
    assert fills(desk.quote(bid=100.04, ask=100.12)) == [(10, 100.08)]


def test_twap_fills_through_its_window() -> None:
    desk = Desk()
    params = (("strategyType", "Marketable"), ("endTime", "10:10:00 US/Eastern"))
    events = desk.place(1, "BUY", 10, "MKT", algo_strategy="Twap", algo_params=params)
    assert fills(events) == []  # nothing of the window has passed
    assert desk.status(1) == "Submitted"
    desk.clock.now = MONDAY_10AM + 150
    assert fills(desk.last(100.01)) == [(2, 100.02)]  # a quarter of the window: 2.5 → 2
    desk.clock.now = MONDAY_10AM + 300
    assert fills(desk.last(100.01)) == [(3, 100.02)]
    desk.clock.now = MONDAY_10AM + 600
    assert fills(desk.last(100.01)) == [(5, 100.02)]
    assert desk.status(1) == "Filled"


def test_vwap_starts_at_its_start_time_and_defaults_to_the_close() -> None:
    desk = Desk()
    params = (("maxPctVol", "0.1"), ("startTime", "15:00:00 US/Eastern"))
    desk.place(1, "SELL", 100, "MKT", algo_strategy="Vwap", algo_params=params)
    desk.clock.now = MONDAY_10AM + 3600
    assert fills(desk.last(100.01)) == []
    desk.clock.now = MONDAY_CLOSE - 1800  # 15:30: half of 15:00 to 16:00
    assert fills(desk.last(100.01)) == [(50, 100.00)]
    order = desk.broker.order(1, 1)
    assert order is not None
    assert order.algo_params == params


@pytest.mark.parametrize(("allow_past", "status"), [("0", "Cancelled"), ("1", "Submitted")])
def test_algo_limit_left_at_its_end_time(allow_past: str, status: str) -> None:
    desk = Desk()
    params = (("endTime", "10:05:00 US/Eastern"), ("allowPastEndTime", allow_past))
    desk.place(1, "BUY", 10, "LMT", lmt_price=99.0, algo_strategy="ArrivalPx", algo_params=params)
    desk.clock.now = MONDAY_10AM + 600
    desk.last(100.01)
    assert desk.status(1) == status
    assert desk.broker.executions() == []


@pytest.mark.parametrize(
    "end",
    ["10:05:00 US/Eastern", "16:05:00 CET", "20250106-15:05:00", "20250106 10:05:00 US/Eastern"],
)
def test_algo_times_in_ibs_forms(end: str) -> None:
    desk = Desk()
    params = (("endTime", end), ("allowPastEndTime", "1"), ("monetaryValue", "100000.0"))
    desk.place(1, "BUY", 10, "MKT", algo_strategy="Twap", algo_params=params)
    desk.clock.now = MONDAY_10AM + 150  # half of five minutes
    assert fills(desk.last(100.01)) == [(5, 100.02)]


def test_algo_times_are_checked() -> None:
    desk = Desk()
    params = (("startTime", "25:00:00 US/Eastern"),)
    [(code, text)] = errors(
        desk.place(1, "BUY", 1, "MKT", algo_strategy="Twap", algo_params=params)
    )
    assert code == 441
    assert "startTime" in text


# ---------------------------------------------------------------------------------------------
# Conditions


def _cond(kind: int, *fields: str) -> tuple[int, tuple[str, ...]]:
    return kind, fields


def test_price_condition_holds_then_submits() -> None:
    desk = Desk()
    cond = _cond(1, "a", "1", "401.00", str(MSFT.con_id), "SMART", "0")
    events = desk.place(1, "BUY", 10, "MKT", conditions=(cond,))
    assert [e.order.status for e in echoes(events)] == ["PreSubmitted"]
    assert fills(desk.quote(MSFT, last=400.50)) == []
    assert desk.status(1) == "PreSubmitted"
    events = desk.quote(MSFT, last=401.00)
    assert desk.status(1) == "Filled"
    assert fills(events) == [(10, 100.02)]
    assert fills(desk.quote(MSFT, last=399.00)) == []  # once true, never re-checked


def test_condition_cancels_the_order_with_conditions_cancel_order() -> None:
    desk = Desk()
    cond = _cond(1, "a", "0", "399.00", str(MSFT.con_id), "SMART", "0")
    desk.place(
        1, "BUY", 10, "LMT", lmt_price=90.0, conditions=(cond,), conditions_cancel_order=True
    )
    assert desk.status(1) == "PreSubmitted"
    events = desk.quote(MSFT, last=398.00)
    assert [e.order.status for e in echoes(events)] == ["Cancelled"]
    assert not fills(events)


def test_time_condition() -> None:
    desk = Desk()
    cond = _cond(3, "a", "1", "20250106 11:00:00 US/Eastern")
    desk.place(1, "BUY", 10, "MKT", conditions=(cond,))
    assert desk.last(100.01) == []
    desk.clock.now = datetime(2025, 1, 6, 16, 0, tzinfo=UTC).timestamp()
    assert fills(desk.last(100.01)) == [(10, 100.02)]


def test_margin_condition_on_the_cushion() -> None:
    desk = Desk()
    below = _cond(4, "a", "0", "50")
    above = _cond(4, "a", "1", "50")
    desk.place(1, "BUY", 10, "MKT", conditions=(below,))
    desk.place(2, "BUY", 10, "MKT", conditions=(above,))
    # Cash only: the cushion is 100%.
    assert desk.status(1) == "PreSubmitted"
    assert desk.status(2) == "Filled"


def test_execution_condition_waits_for_a_fill_of_the_symbol() -> None:
    desk = Desk()
    cond = _cond(5, "a", "STK", "SMART", "MSFT")
    desk.place(1, "SELL", 10, "MKT", conditions=(cond,))
    desk.place(2, "BUY", 1, "MKT", inst=AAPL)  # a fill of another symbol
    assert desk.status(1) == "PreSubmitted"
    desk.place(3, "BUY", 1, "MKT", inst=MSFT)
    assert fills(desk.last(100.01)) == [(10, 100.00)]


def test_volume_and_percent_change_conditions() -> None:
    desk = Desk()
    volume = _cond(6, "a", "1", "5000", str(MSFT.con_id), "SMART")
    change = _cond(7, "a", "1", "2.5", str(AAPL.con_id), "SMART")
    desk.place(1, "BUY", 1, "MKT", conditions=(volume,))
    desk.place(2, "BUY", 1, "MKT", conditions=(change,))
    assert desk.quote(MSFT, volume=4000) == []
    assert fills(desk.quote(MSFT, volume=5000)) == [(1, 100.02)]
    assert desk.last(100.00) == []  # +2.04% on the close of 98
    assert fills(desk.last(100.50)) == [(1, 100.51)]  # +2.55%


def test_and_or_conjunctions_chain_left_to_right() -> None:
    desk = Desk()
    late = _cond(3, "o", "1", "20250106 12:00:00 US/Eastern")
    high = _cond(1, "a", "1", "105.00", str(AAPL.con_id), "SMART", "0")
    both = (replace_conj(late, "a"), high)
    either = (late, high)
    desk.place(1, "SELL", 1, "MKT", conditions=both)
    desk.place(2, "SELL", 1, "MKT", conditions=either)
    desk.last(105.00)
    assert (desk.status(1), desk.status(2)) == ("PreSubmitted", "Filled")
    desk.clock.now = datetime(2025, 1, 6, 17, 0, tzinfo=UTC).timestamp()
    desk.last(105.00)
    assert desk.status(1) == "Filled"


def replace_conj(cond: tuple[int, tuple[str, ...]], conj: str) -> tuple[int, tuple[str, ...]]:
    kind, fields = cond
    return kind, (conj, *fields[1:])


def test_conditions_wait_for_regular_hours_unless_ignored() -> None:
    desk = Desk(enforce_market_hours=True)
    desk.clock.now = datetime(2025, 1, 6, 13, 0, tzinfo=UTC).timestamp()  # 08:00, pre-market
    cond = _cond(6, "a", "1", "0", str(AAPL.con_id), "SMART")
    desk.place(1, "BUY", 1, "LMT", lmt_price=100.05, outside_rth=True, conditions=(cond,))
    desk.place(
        2,
        "BUY",
        1,
        "LMT",
        lmt_price=100.05,
        outside_rth=True,
        conditions=(cond,),
        conditions_ignore_rth=True,
    )
    desk.last(100.01)
    assert (desk.status(1), desk.status(2)) == ("PreSubmitted", "Filled")


def test_modify_keeps_the_ratcheted_stop() -> None:
    desk = Desk()
    desk.place(1, "SELL", 10, "TRAIL", aux_price=1.0)
    desk.last(103.00)
    desk.place(1, "SELL", 20, "TRAIL", aux_price=1.0)
    order = desk.broker.order(1, 1)
    assert order is not None
    assert (order.total_quantity, order.trail_stop_price) == (20, 102.00)


# ---------------------------------------------------------------------------------------------
# What-if


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("TRAIL", {"aux_price": 1.0}),
        ("TRAIL LIMIT", {"trailing_percent": 1.0, "lmt_price_offset": 0.1}),
        ("MOC", {}),
        ("LOC", {"lmt_price": 100.0}),
        ("MIT", {"aux_price": 99.0}),
        ("LIT", {"aux_price": 99.0, "lmt_price": 99.1}),
        ("REL", {"aux_price": 0.01}),
        ("PEG MID", {}),
        ("MKT", {"algo_strategy": "Adaptive", "algo_params": (("adaptivePriority", "Patient"),)}),
        ("MKT", {"conditions": (_cond(3, "a", "1", "20300101 10:00:00 UTC"),)}),
    ],
)
def test_what_if_previews_every_type(kind: str, fields: dict[str, Any]) -> None:
    desk = Desk()
    request = PlaceOrderRequest(
        order_id=9,
        contract=ContractQuery(con_id=AAPL.con_id),
        action="BUY",
        total_quantity=100,
        order_type=kind,
        what_if=True,
        **fields,
    )
    result = desk.broker.what_if(request, AAPL, 1)
    assert result.init_margin_change == pytest.approx(100 * 100.0 * 0.5, rel=0.01)
    assert result.commission == 1.0
    preview = desk.broker.preview_order(1, request, AAPL)
    assert preview.order_type == kind
    assert preview.algo_strategy == fields.get("algo_strategy", "")
    assert len(preview.conditions) == len(fields.get("conditions", ()))
    assert desk.broker.open_orders() == []


def test_what_if_refuses_what_placing_refuses() -> None:
    desk = Desk()
    request = PlaceOrderRequest(
        order_id=9,
        contract=ContractQuery(con_id=AAPL.con_id),
        action="BUY",
        total_quantity=100,
        order_type="TRAIL",
        what_if=True,
    )
    with pytest.raises(SimError) as info:
        desk.broker.what_if(request, AAPL, 1)
    assert info.value.code == 201
