"""The sim's wire layouts checked against the real clients.

Every encoder's output goes through the codec (encode, then split exactly as on the wire) into
ib_async's own ``Decoder`` at server version 178; the values must arrive with the right types
and the decoder must not log an error (it swallows exceptions and logs them, so a wrong field
count or a "1.0" in an int field shows up as an ERROR record). The placeOrder parser is fed
messages encoded by ib_async's own client, plus one captured from the official ibapi.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import ib_async
import pytest
from ib_async.client import Client
from ib_async.decoder import Decoder

from ibflow.sim._codec import (
    UNSET_DOUBLE,
    UNSET_INTEGER,
    Fields,
    FrameDecoder,
    ProtocolError,
    encode_fields,
)
from ibflow.sim._layouts import (
    PlaceOrderRequest,
    PortfolioItem,
    account_download_end,
    account_summary,
    account_summary_end,
    account_update_multi,
    account_update_multi_end,
    account_update_time,
    account_value,
    commission_report,
    completed_order,
    completed_orders_end,
    contract_data,
    contract_data_end,
    error_message,
    exec_details,
    exec_details_end,
    format_exec_time,
    open_order,
    open_order_end,
    order_status,
    parse_cancel_order,
    parse_place_order,
    parse_req_executions,
    pnl,
    pnl_single,
    portfolio_value,
    position,
    position_end,
    trading_hours,
)
from ibflow.sim._model import (
    Instrument,
    SimExecution,
    SimOrder,
    SimPosition,
    WhatIfResult,
)

AAPL = Instrument(
    con_id=265598,
    symbol="AAPL",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NASDAQ",
    local_symbol="AAPL",
    trading_class="NMS",
    long_name="Apple Inc",
    valid_exchanges=("SMART", "NASDAQ", "ARCA"),
    stock_type="COMMON",
    industry="Technology",
)
ES = Instrument(
    con_id=495512563,
    symbol="ES",
    sec_type="FUT",
    exchange="CME",
    local_symbol="ESZ7",
    trading_class="ES",
    last_trade_date="20271217",
    multiplier="50",
    min_tick=0.25,
    time_zone="US/Central",
    rth=("0830", "1500"),
    eth=("1700", "1600"),
)
EURUSD = Instrument(
    con_id=12087792,
    symbol="EUR",
    sec_type="CASH",
    exchange="IDEALPRO",
    local_symbol="EUR.USD",
    trading_class="EUR.USD",
    min_tick=0.00005,
    rth=("1715", "1700"),
    eth=("1715", "1700"),
)
AAPL_CALL = Instrument(
    con_id=700000101,
    symbol="AAPL",
    sec_type="OPT",
    exchange="SMART",
    local_symbol="AAPL  270115C00200000",
    trading_class="AAPL",
    last_trade_date="20270115",
    strike=200.0,
    right="C",
    multiplier="100",
    under_con_id=265598,
    under_symbol="AAPL",
    under_sec_type="STK",
)


# ---------------------------------------------------------------------------------------------
# Harness: the real ib_async decoder with a recording wrapper


class Recorder:
    """Stands in for ib_async's Wrapper: records every callback the decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.defaultTimezone = UTC
        self.ib = SimpleNamespace(TimezoneTWS=None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def wire(fields: list[object]) -> list[str]:
    """Encode one message and split it back exactly as a client's reader does."""
    frames = FrameDecoder().feed(encode_fields(fields))
    assert len(frames) == 1
    return frames[0]


def decode(fields: list[object], version: int = 178) -> tuple[str, tuple[Any, ...]]:
    """Feed one message to ib_async's decoder; return its single wrapper callback."""
    rec = Recorder()
    Decoder(rec, version).interpret(wire(fields))  # type: ignore[arg-type]
    assert len(rec.calls) == 1, rec.calls
    return rec.calls[0]


@pytest.fixture(autouse=True)
def _no_decoder_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def make_order(**kw: Any) -> SimOrder:
    base: dict[str, Any] = dict(
        order_id=7,
        client_id=3,
        perm_id=123456789,
        account="DU1234567",
        instrument=AAPL,
        action="BUY",
        total_quantity=10.0,
        order_type="LMT",
        lmt_price=190.5,
        status="Submitted",
    )
    base.update(kw)
    return SimOrder(**base)


def make_execution(**kw: Any) -> SimExecution:
    base: dict[str, Any] = dict(
        exec_id="0000e0d5.6578a1b2.01.01",
        order_id=7,
        client_id=3,
        perm_id=123456789,
        account="DU1234567",
        order_ref="ref1",
        instrument=AAPL,
        time=datetime(2025, 1, 2, 15, 30, 5, tzinfo=UTC),
        side="BOT",
        shares=10.0,
        price=190.5,
        cum_qty=10.0,
        avg_price=190.5,
        commission=1.0,
    )
    base.update(kw)
    return SimExecution(**base)


# ---------------------------------------------------------------------------------------------
# Orders


def test_open_order_plain_has_127_fields_and_typed_values() -> None:
    order = make_order(oca_group="g1", oca_type=1, parent_id=5, outside_rth=True, tif="GTC")
    fields = wire(open_order(order))
    assert len(fields) == 127
    assert fields[85] == "Submitted"
    name, (order_id, contract, o, state) = decode(open_order(order))
    assert name == "openOrder"
    assert order_id == 7
    assert o.orderId == 7
    assert isinstance(o.clientId, int)
    assert o.clientId == 3
    assert isinstance(o.permId, int)
    assert o.permId == 123456789
    assert o.totalQuantity == 10.0
    assert isinstance(o.totalQuantity, float)
    assert o.lmtPrice == 190.5
    assert o.auxPrice == UNSET_DOUBLE
    assert o.parentId == 5
    assert isinstance(o.parentId, int)
    assert o.ocaGroup == "g1"
    assert o.ocaType == 1
    assert o.outsideRth is True
    assert o.whatIf is False
    assert o.tif == "GTC"
    assert o.account == "DU1234567"
    assert o.minQty == UNSET_INTEGER
    assert o.duration == UNSET_INTEGER
    assert o.exemptCode == -1
    assert contract.conId == 265598
    assert isinstance(contract.conId, int)
    assert contract.symbol == "AAPL"
    assert contract.exchange == "SMART"
    assert state.status == "Submitted"
    assert state.commission == UNSET_DOUBLE


def test_open_order_what_if_carries_margins_and_commission() -> None:
    wi = WhatIfResult(
        init_margin_before=1000.0,
        maint_margin_before=500.0,
        equity_with_loan_before=1_000_000.0,
        init_margin_change=952.5,
        maint_margin_change=476.25,
        equity_with_loan_change=-1.0,
        init_margin_after=1952.5,
        maint_margin_after=976.25,
        equity_with_loan_after=999_999.0,
        commission=1.0,
        min_commission=UNSET_DOUBLE,
        max_commission=UNSET_DOUBLE,
    )
    order = make_order(what_if=True, status="PreSubmitted", perm_id=0)
    assert len(wire(open_order(order, wi))) == 127
    _, (_, _, o, state) = decode(open_order(order, wi))
    assert o.whatIf is True
    assert state.initMarginAfter == "1952.5"
    assert state.maintMarginChange == "476.25"
    assert state.equityWithLoanBefore == "1000000.0"
    assert state.commission == 1.0
    assert state.maxCommission == UNSET_DOUBLE
    assert state.commissionCurrency == "USD"


def test_open_order_for_option_and_future() -> None:
    _, (_, c, o, _) = decode(open_order(make_order(instrument=AAPL_CALL, lmt_price=3.25)))
    assert (c.strike, c.right, c.multiplier) == (200.0, "C", "100")
    assert c.lastTradeDateOrContractMonth == "20270115"
    _, (_, c, o, _) = decode(
        open_order(make_order(instrument=ES, order_type="STP", lmt_price=None, aux_price=5000.25))
    )
    assert c.secType == "FUT"
    assert c.multiplier == "50"
    assert o.orderType == "STP"
    assert o.auxPrice == 5000.25
    assert o.lmtPrice == UNSET_DOUBLE


def test_open_order_below_177_carries_fa_profile() -> None:
    order = make_order()
    assert len(wire(open_order(order, version=176))) == 128
    _, (_, _, o, state) = decode(open_order(order, version=176), version=176)
    assert o.permId == 123456789
    assert state.status == "Submitted"


def test_order_status_has_12_fields_without_version() -> None:
    order = make_order(filled=4.0, avg_fill_price=190.25, last_fill_price=190.0, parent_id=2)
    fields = wire(order_status(order))
    assert len(fields) == 12
    assert fields[:3] == ["3", "7", "Submitted"]
    name, args = decode(order_status(order))
    assert name == "orderStatus"
    assert args == (7, "Submitted", 4.0, 6.0, 190.25, 123456789, 2, 190.0, 3, "", 0.0)
    types = [type(a).__name__ for a in args]
    assert " ".join(types) == "int str float float float int int float int str float"


def test_inactive_order_frames_and_its_refusal_decode() -> None:
    order = make_order(status="Inactive")
    _, (_, _, _, state) = decode(open_order(order))
    assert state.status == "Inactive"
    name, args = decode(order_status(order))
    assert (name, args[:4]) == ("orderStatus", (7, "Inactive", 0.0, 10.0))
    text = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. [1.00 USD]"
    assert decode(error_message(7, 201, text)) == ("error", (7, 201, text, ""))


def test_completed_order_has_96_fields() -> None:
    order = make_order(
        status="Filled",
        filled=10.0,
        completed_time="20250102 15:30:05 UTC",
        completed_status="Filled",
    )
    assert len(wire(completed_order(order))) == 96
    name, (contract, o, state) = decode(completed_order(order))
    assert name == "completedOrder"
    assert contract.conId == 265598
    assert o.permId == 123456789
    assert isinstance(o.permId, int)
    assert o.totalQuantity == 10.0
    assert o.filledQuantity == 10.0
    assert o.lmtPrice == 190.5
    assert state.status == "Filled"
    assert state.completedTime == "20250102 15:30:05 UTC"
    assert state.completedStatus == "Filled"
    assert o.minCompeteSize == UNSET_INTEGER
    assert o.midOffsetAtHalf == UNSET_DOUBLE


def test_completed_order_below_177_carries_fa_profile() -> None:
    order = make_order(status="Cancelled")
    assert len(wire(completed_order(order, version=176))) == 97
    _, (_, o, state) = decode(completed_order(order, version=176), version=176)
    assert state.status == "Cancelled"
    assert o.permId == 123456789


def test_small_order_frames() -> None:
    assert wire(open_order_end()) == ["53", "1"]
    assert wire(completed_orders_end()) == ["102"]
    assert decode(open_order_end()) == ("openOrderEnd", ())
    assert decode(completed_orders_end()) == ("completedOrdersEnd", ())


# ---------------------------------------------------------------------------------------------
# Executions


def test_exec_details_has_32_fields_and_a_zoned_time() -> None:
    ex = make_execution()
    fields = wire(exec_details(-1, ex))
    assert len(fields) == 32
    assert fields[15] == "20250102 15:30:05 UTC"
    name, (req_id, contract, e) = decode(exec_details(-1, ex))
    assert name == "execDetails"
    assert req_id == -1
    assert contract.conId == 265598
    assert contract.exchange == "NASDAQ"
    assert e.execId == "0000e0d5.6578a1b2.01.01"
    assert e.time == datetime(2025, 1, 2, 15, 30, 5, tzinfo=UTC)
    assert e.side == "BOT"
    assert e.acctNumber == "DU1234567"
    assert e.shares == 10.0
    assert isinstance(e.shares, float)
    assert e.price == 190.5
    assert e.avgPrice == 190.5
    assert e.cumQty == 10.0
    assert e.orderId == 7
    assert e.clientId == 3
    assert e.permId == 123456789
    assert isinstance(e.liquidation, int)
    assert isinstance(e.lastLiquidity, int)
    assert e.lastLiquidity == 2
    assert e.pendingPriceRevision is False
    assert e.orderRef == "ref1"


def test_exec_details_and_commission_of_a_correction_decode() -> None:
    corrected = make_execution(exec_id="0000e0d5.6578a1b2.01.02", price=190.25)
    _, (_, _, e) = decode(exec_details(-1, corrected))
    assert (e.execId, e.price, e.shares) == ("0000e0d5.6578a1b2.01.02", 190.25, 10.0)
    _, (report,) = decode(commission_report(corrected))
    assert report.execId == "0000e0d5.6578a1b2.01.02"


def test_exec_details_below_178_has_no_pending_price_revision() -> None:
    assert len(wire(exec_details(9, make_execution(), version=177))) == 31
    _, (req_id, _, e) = decode(exec_details(9, make_execution(), version=177), version=177)
    assert req_id == 9
    assert e.shares == 10.0


def test_exec_time_is_utc_whatever_the_input_zone() -> None:
    naive = datetime(2025, 3, 4, 5, 6, 7)
    assert format_exec_time(naive) == "20250304 05:06:07 UTC"
    from zoneinfo import ZoneInfo

    eastern = datetime(2025, 3, 4, 5, 6, 7, tzinfo=ZoneInfo("US/Eastern"))
    assert format_exec_time(eastern) == "20250304 10:06:07 UTC"


def test_commission_report_has_8_fields_and_unset_pnl() -> None:
    fields = wire(commission_report(make_execution()))
    assert len(fields) == 8
    assert fields[5] == fields[6] == "1.7976931348623157E308"
    name, (report,) = decode(commission_report(make_execution()))
    assert name == "commissionReport"
    assert report.execId == "0000e0d5.6578a1b2.01.01"
    assert report.commission == 1.0
    assert report.currency == "USD"
    assert report.realizedPNL == UNSET_DOUBLE
    _, (report,) = decode(commission_report(make_execution(realized_pnl=-12.5)))
    assert report.realizedPNL == -12.5


def test_exec_details_end() -> None:
    assert decode(exec_details_end(4)) == ("execDetailsEnd", (4,))


# ---------------------------------------------------------------------------------------------
# Contracts


@pytest.mark.parametrize("inst", [AAPL, ES, EURUSD, AAPL_CALL], ids=lambda i: i.sec_type)
def test_contract_data_has_40_fields(inst: Instrument) -> None:
    msg = contract_data(11, inst, today=date(2025, 1, 6))
    assert len(wire(msg)) == 40
    name, (req_id, cd) = decode(msg)
    assert name == "contractDetails"
    assert req_id == 11
    c = cd.contract
    assert c.conId == inst.con_id
    assert isinstance(c.conId, int)
    assert (c.symbol, c.secType, c.exchange, c.currency) == (
        inst.symbol,
        inst.sec_type,
        inst.exchange,
        inst.currency,
    )
    assert c.localSymbol == inst.local_symbol
    assert c.tradingClass == inst.trading_class
    assert c.lastTradeDateOrContractMonth == inst.last_trade_date
    assert c.strike == inst.strike
    assert c.right == inst.right
    assert c.multiplier == inst.multiplier
    assert cd.minTick == inst.min_tick
    assert isinstance(cd.priceMagnifier, int)
    assert isinstance(cd.evMultiplier, int)
    assert isinstance(cd.aggGroup, int)
    assert cd.underConId == inst.under_con_id
    assert cd.timeZoneId == inst.time_zone
    assert cd.orderTypes == "LMT,MKT,STP,STP LMT"
    assert cd.minSize == 1.0
    assert cd.sizeIncrement == 1.0
    assert cd.tradingHours.count(";") == 6
    assert cd.liquidHours.count(";") == 6


def test_contract_data_details() -> None:
    _, (_, cd) = decode(contract_data(1, AAPL, today=date(2025, 1, 6)))
    assert cd.longName == "Apple Inc"
    assert cd.contract.primaryExchange == "NASDAQ"
    assert cd.validExchanges == "SMART,NASDAQ,ARCA"
    assert cd.stockType == "COMMON"
    assert cd.liquidHours.startswith("20250106:0930-20250106:1600;")
    assert cd.tradingHours.startswith("20250106:0400-20250106:2000;")
    _, (_, cd) = decode(contract_data(1, ES, today=date(2025, 1, 6)))
    assert cd.contractMonth == "202712"
    assert cd.realExpirationDate == "20271217"


def test_contract_data_escapes_non_ascii_long_names() -> None:
    inst = Instrument(con_id=1, symbol="GLE", sec_type="STK", exchange="SBF", long_name="Société")
    raw = encode_fields(contract_data(2, inst, today=date(2025, 1, 6)))
    assert raw[4:].isascii()
    _, (_, cd) = decode(contract_data(2, inst, today=date(2025, 1, 6)))
    assert cd.longName == "Société"


def test_trading_hours_close_weekends_and_cross_midnight() -> None:
    # 2025-01-03 is a Friday.
    hours, liquid = trading_hours(EURUSD, date(2025, 1, 3), days=4)
    assert hours.split(";") == [
        "20250102:1715-20250103:1700",
        "20250104:CLOSED",
        "20250105:CLOSED",
        "20250105:1715-20250106:1700",
    ]
    assert liquid == hours
    hours, _ = trading_hours(AAPL, date(2025, 1, 3), days=2)
    assert hours == "20250103:0400-20250103:2000;20250104:CLOSED"


def test_contract_data_end() -> None:
    assert decode(contract_data_end(11)) == ("contractDetailsEnd", (11,))


# ---------------------------------------------------------------------------------------------
# Positions, portfolio, account


def test_position_has_16_fields() -> None:
    msg = position(SimPosition("DU1234567", AAPL, 100.0, 150.25))
    assert len(wire(msg)) == 16
    name, (account, contract, qty, avg) = decode(msg)
    assert name == "position"
    assert account == "DU1234567"
    assert contract.conId == 265598
    assert contract.exchange == "NASDAQ"
    assert (qty, avg) == (100.0, 150.25)
    _, (_, contract, qty, _) = decode(position(SimPosition("DU1", ES, -2.0, 250000.0)))
    assert contract.exchange == "CME"
    assert contract.multiplier == "50"
    assert qty == -2.0


def test_portfolio_value_has_20_fields() -> None:
    item = PortfolioItem("DU1234567", AAPL, 100.0, 191.0, 19100.0, 150.25, 4075.0, -3.5)
    assert len(wire(portfolio_value(item))) == 20
    name, args = decode(portfolio_value(item))
    assert name == "updatePortfolio"
    contract, *values, account = args
    assert contract.conId == 265598
    assert contract.primaryExchange == "NASDAQ"
    assert values == [100.0, 191.0, 19100.0, 150.25, 4075.0, -3.5]
    assert account == "DU1234567"


def test_account_frames() -> None:
    assert decode(account_value("NetLiquidation", "1000.00", "USD", "DU1")) == (
        "updateAccountValue",
        ("NetLiquidation", "1000.00", "USD", "DU1"),
    )
    assert decode(account_update_time(datetime(2025, 1, 2, 9, 5))) == (
        "updateAccountTime",
        ("09:05",),
    )
    assert decode(account_download_end("DU1")) == ("accountDownloadEnd", ("DU1",))
    assert decode(account_summary(5, "DU1", "BuyingPower", "4.00", "USD")) == (
        "accountSummary",
        (5, "DU1", "BuyingPower", "4.00", "USD"),
    )
    assert decode(account_summary_end(5)) == ("accountSummaryEnd", (5,))
    assert decode(account_update_multi(6, "DU1", "", "CashBalance", "1.00", "EUR")) == (
        "accountUpdateMulti",
        (6, "DU1", "", "CashBalance", "1.00", "EUR"),
    )
    assert decode(account_update_multi_end(6)) == ("accountUpdateMultiEnd", (6,))
    assert decode(position_end()) == ("positionEnd", ())


def test_pnl_frames() -> None:
    assert decode(pnl(8, 12.5, -3.0, 0.0)) == ("pnl", (8, 12.5, -3.0, 0.0))
    name, args = decode(pnl_single(9, 100.0, 1.5, 2.5, 3.5, 19100.0))
    assert name == "pnlSingle"
    assert args == (9, 100.0, 1.5, 2.5, 3.5, 19100.0)


def test_error_message() -> None:
    msg = error_message(7, 202, "Order Canceled - reason:")
    assert len(wire(msg)) == 6
    assert decode(msg) == ("error", (7, 202, "Order Canceled - reason:", ""))


# ---------------------------------------------------------------------------------------------
# placeOrder parser, fed by ib_async's own encoder


def ib_async_place_order(
    contract: ib_async.Contract, order: ib_async.Order, order_id: int = 42, version: int = 178
) -> list[str]:
    """The fields ib_async's Client sends for ``placeOrder`` at ``version``."""
    client = Client(None)
    client._serverVersion = version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign,assignment]
    client.placeOrder(order_id, contract, order)
    assert len(sent) == 1
    return sent[0].split("\0")[:-1]


def parse(fields: list[str], version: int = 178) -> PlaceOrderRequest:
    f = Fields(fields)
    req = parse_place_order(f, version=version)
    assert f.remaining == 0, "the parser must consume the message exactly"
    return req


STOCK = ib_async.Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (ib_async.MarketOrder("BUY", 10), ("MKT", None, None, "DAY", False)),
        (
            ib_async.LimitOrder("SELL", 5, 190.55, tif="GTC", outsideRth=True),
            ("LMT", 190.55, None, "GTC", True),
        ),
        (ib_async.StopOrder("SELL", 7, 180.0, tif="IOC"), ("STP", None, 180.0, "IOC", False)),
        (
            ib_async.StopLimitOrder("BUY", 3, 201.0, 200.5),
            ("STP LMT", 201.0, 200.5, "DAY", False),
        ),
    ],
    ids=["MKT", "LMT", "STP", "STP LMT"],
)
def test_parse_basic_orders(order: ib_async.Order, expected: tuple[Any, ...]) -> None:
    fields = ib_async_place_order(STOCK, order)
    assert len(fields) == 114
    req = parse(fields)
    assert req.order_id == 42
    assert req.contract.symbol == "AAPL"
    assert req.contract.sec_type == "STK"
    assert req.contract.exchange == "SMART"
    assert req.contract.primary_exchange == "NASDAQ"
    assert req.action == order.action
    assert req.total_quantity == order.totalQuantity
    assert (req.order_type, req.lmt_price, req.aux_price, req.tif, req.outside_rth) == expected
    assert req.transmit is True
    assert req.parent_id == 0
    assert req.what_if is False
    assert req.exempt_code == -1
    assert req.min_qty is None
    assert req.use_price_mgmt_algo is False


def test_parse_bracket_orders() -> None:
    parent = ib_async.LimitOrder("BUY", 10, 190.0, orderRef="entry", transmit=False)
    take = ib_async.LimitOrder("SELL", 10, 200.0, parentId=50, transmit=False)
    stop = ib_async.StopOrder("SELL", 10, 185.0, parentId=50, transmit=True)
    p = parse(ib_async_place_order(STOCK, parent, order_id=50))
    t = parse(ib_async_place_order(STOCK, take, order_id=51))
    s = parse(ib_async_place_order(STOCK, stop, order_id=52))
    assert (p.order_id, p.transmit, p.parent_id, p.order_ref) == (50, False, 0, "entry")
    assert (t.order_id, t.transmit, t.parent_id, t.lmt_price) == (51, False, 50, 200.0)
    assert (s.order_id, s.transmit, s.parent_id, s.aux_price) == (52, True, 50, 185.0)


def test_parse_oca_what_if_and_account() -> None:
    order = ib_async.LimitOrder(
        "BUY", 1, 100.0, ocaGroup="grp", ocaType=1, whatIf=True, account="DU999"
    )
    req = parse(ib_async_place_order(STOCK, order))
    assert (req.oca_group, req.oca_type, req.what_if, req.account) == ("grp", 1, True, "DU999")


def test_parse_walks_every_conditional_block() -> None:
    bag = ib_async.Bag(
        symbol="AAPL",
        exchange="SMART",
        currency="USD",
        comboLegs=[
            ib_async.ComboLeg(conId=1, ratio=1, action="BUY", exchange="SMART"),
            ib_async.ComboLeg(conId=2, ratio=2, action="SELL", exchange="SMART"),
        ],
    )
    bag.deltaNeutralContract = ib_async.DeltaNeutralContract(conId=265598, delta=0.5, price=190.0)
    order = ib_async.LimitOrder("BUY", 2, 1.25)
    order.orderComboLegs = [ib_async.OrderComboLeg(price=1.0), ib_async.OrderComboLeg(price=0.5)]
    order.smartComboRoutingParams = [ib_async.TagValue("NonGuaranteed", "1")]
    order.deltaNeutralOrderType = "LMT"
    order.deltaNeutralAuxPrice = 1.5
    order.scalePriceIncrement = 0.05
    order.scaleInitLevelSize = 100
    order.hedgeType = "D"
    order.hedgeParam = "0.5"
    order.algoStrategy = "Adaptive"
    order.algoParams = [ib_async.TagValue("adaptivePriority", "Normal")]
    order.conditions = [
        ib_async.PriceCondition(price=200.0, conId=265598, exch="SMART"),
        ib_async.TimeCondition(time="20270101 10:00:00 UTC"),
        ib_async.MarginCondition(percent=30),
        ib_async.ExecutionCondition(secType="STK", exch="SMART", symbol="MSFT"),
        ib_async.VolumeCondition(volume=1000, conId=265598, exch="SMART"),
        ib_async.PercentChangeCondition(changePercent=5.0, conId=265598, exch="SMART"),
    ]
    order.conditionsIgnoreRth = True
    order.cashQty = 1234.5
    order.mifid2DecisionMaker = "dm"
    order.mifid2ExecutionAlgo = "ea"
    order.usePriceMgmtAlgo = True
    order.advancedErrorOverride = "8229"
    order.manualOrderTime = "20250102-10:00:00"
    order.orderRef = "all-blocks"
    req = parse(ib_async_place_order(bag, order))
    assert req.contract.sec_type == "BAG"
    assert [(leg.con_id, leg.ratio, leg.action) for leg in req.combo_legs] == [
        (1, 1, "BUY"),
        (2, 2, "SELL"),
    ]
    assert req.order_combo_leg_prices == (1.0, 0.5)
    assert req.smart_combo_routing_params == (("NonGuaranteed", "1"),)
    assert req.delta_neutral_order_type == "LMT"
    assert req.delta_neutral_aux_price == 1.5
    assert req.scale_price_increment == 0.05
    assert (req.hedge_type, req.hedge_param) == ("D", "0.5")
    assert req.delta_neutral_contract == (265598, 0.5, 190.0)
    assert req.algo_strategy == "Adaptive"
    assert req.algo_params == (("adaptivePriority", "Normal"),)
    assert [c[0] for c in req.conditions] == [1, 3, 4, 5, 6, 7]
    assert req.conditions[3][1] == ("a", "STK", "SMART", "MSFT")
    assert req.conditions_ignore_rth is True
    assert req.conditions_cancel_order is False
    # The fields after all the blocks land where they belong.
    assert req.cash_qty == 1234.5
    assert req.mifid2 == ("dm", "", "", "ea")
    assert req.use_price_mgmt_algo is True
    assert req.advanced_error_override == "8229"
    assert req.manual_order_time == "20250102-10:00:00"
    assert req.order_ref == "all-blocks"
    assert req.lmt_price == 1.25


@pytest.mark.parametrize(
    ("order_type", "offset", "exchange", "expected_tail"),
    [
        ("PEG BENCH", None, "SMART", {}),
        ("PEG BEST", math.inf, "SMART", {"mid_offset_at_half": 0.02}),
        ("PEG BEST", 0.01, "SMART", {"compete_against_best_offset": 0.01}),
        ("PEG MID", None, "SMART", {"mid_offset_at_whole": 0.03}),
        ("LMT", None, "IBKRATS", {"min_trade_qty": 5}),
    ],
)
def test_parse_peg_and_ats_tails(
    order_type: str, offset: float | None, exchange: str, expected_tail: dict[str, Any]
) -> None:
    order = ib_async.Order(action="BUY", totalQuantity=100, orderType=order_type, lmtPrice=10.0)
    order.referenceContractId = 265598
    order.peggedChangeAmount = 0.5
    order.referenceChangeAmount = 0.25
    order.minCompeteSize = 100
    if offset is not None:
        order.competeAgainstBestOffset = offset
    order.midOffsetAtWhole = 0.03
    order.midOffsetAtHalf = 0.02
    order.minTradeQty = 5
    order.orderRef = "tail"
    contract = ib_async.Stock("AAPL", exchange, "USD")
    req = parse(ib_async_place_order(contract, order))
    assert req.order_type == order_type
    assert req.order_ref == "tail"
    for name, value in expected_tail.items():
        assert getattr(req, name) == value


@pytest.mark.parametrize("version", [160, 166, 170, 176, 177])
def test_parse_older_versions(version: int) -> None:
    order = ib_async.LimitOrder("BUY", 10, 190.5, orderRef="old", tif="GTC")
    req = parse(ib_async_place_order(STOCK, order, version=version), version=version)
    assert (req.order_ref, req.tif, req.lmt_price, req.total_quantity) == ("old", "GTC", 190.5, 10)


# One LMT order as the official ibapi 10.51 sends it at server version 178 (captured from its
# encoder): empty strike, empty openClose, "0" amounts, and IB's max-double and max-int literals
# for unset values where ib_async writes "".
IBAPI_LMT = [
    "3", "42", "265598", "AAPL", "STK", "", "", "", "", "SMART", "", "USD", "", "", "", "", "BUY",
    "10", "LMT", "190.5", "", "GTC", "", "", "", "0", "ref1", "1", "0", "0", "0", "0", "0", "1",
    "0", "", "0", "", "", "", "", "", "", "0", "", "-1", "0", "", "", "0", "", "", "0", "0", "",
    "0", "", "", "", "", "", "0", "", "", "", "", "0", "", "", "", "", "", "", "", "", "", "", "0",
    "", "", "0", "0", "", "", "0", "", "0", "0", "0", "0", "", "1.7976931348623157e+308",
    "1.7976931348623157e+308", "1.7976931348623157e+308", "1.7976931348623157e+308",
    "1.7976931348623157e+308", "0", "", "", "", "1.7976931348623157e+308", "", "", "", "", "0",
    "0", "0", "", "2147483647", "2147483647", "0", "", "",
]  # fmt: skip


def test_parse_ibapi_encoding() -> None:
    assert len(IBAPI_LMT) == 114
    req = parse(IBAPI_LMT)
    assert (req.order_id, req.contract.con_id, req.contract.strike) == (42, 265598, 0.0)
    assert (req.action, req.total_quantity, req.order_type, req.lmt_price) == (
        "BUY",
        10.0,
        "LMT",
        190.5,
    )
    assert (req.tif, req.order_ref, req.transmit, req.outside_rth) == ("GTC", "ref1", True, True)
    assert req.trigger_price is None
    assert req.cash_qty is None
    assert req.lmt_price_offset is None
    assert req.duration is None
    assert req.post_to_ats is None
    assert req.use_price_mgmt_algo is None


def test_parse_unknown_condition_type_is_a_protocol_error() -> None:
    order = ib_async.LimitOrder("BUY", 1, 10.0)
    order.conditions = [ib_async.MarginCondition(percent=30)]
    fields = ib_async_place_order(STOCK, order)
    fields[fields.index("4", 90)] = "2"  # condition type 2 does not exist
    with pytest.raises(ProtocolError):
        parse_place_order(Fields(fields))


def test_parse_cancel_order_and_executions_request() -> None:
    client = Client(None)
    client._serverVersion = 178
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign,assignment]
    client.cancelOrder(77, "20250102-10:00:00")
    flt = ib_async.ExecutionFilter(clientId=3, acctCode="DU1", time="20250102 09:00:00")
    flt.symbol, flt.secType, flt.side = "AAPL", "STK", "BUY"
    client.reqExecutions(12, flt)
    cancel_fields, exec_fields = (m.split("\0")[:-1] for m in sent)
    assert parse_cancel_order(Fields(cancel_fields)) == (77, "20250102-10:00:00")
    req_id, parsed = parse_req_executions(Fields(exec_fields))
    assert req_id == 12
    assert (parsed.client_id, parsed.account, parsed.time) == (3, "DU1", "20250102 09:00:00")
    assert (parsed.symbol, parsed.sec_type, parsed.exchange, parsed.side) == (
        "AAPL",
        "STK",
        "",
        "BUY",
    )
