"""ib_async records → ibflow records, without a loop or a socket."""

from __future__ import annotations

import math

import ib_async
import pytest
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

import ibflow
from ibflow._ib._account import (
    account_value_from_ib,
    details_from_ib,
    number,
    pnl_from_ib,
    pnl_single_from_ib,
    portfolio_item_from_ib,
    position_from_ib,
)

AAPL = ib_async.Contract(
    secType="STK",
    conId=265598,
    symbol="AAPL",
    exchange="SMART",
    primaryExchange="NASDAQ",
    currency="USD",
    localSymbol="AAPL",
    tradingClass="NMS",
)


@pytest.mark.parametrize("unset", [math.nan, UNSET_DOUBLE, -UNSET_DOUBLE, math.inf, None, ""])
def test_number_turns_ib_sentinels_into_none(unset: object) -> None:
    assert number(unset) is None


def test_number_keeps_real_values() -> None:
    assert number(0.0) == 0.0
    assert number(-12.5) == -12.5
    assert number("3.25") == 3.25


def test_position() -> None:
    p = position_from_ib(ib_async.Position("DU1", AAPL, 100.0, 180.5))
    assert p == ibflow.Position(
        account="DU1",
        contract=ibflow.Contract(
            sec_type=ibflow.SecType.STOCK,
            symbol="AAPL",
            con_id=265598,
            primary_exchange="NASDAQ",
            local_symbol="AAPL",
            trading_class="NMS",
        ),
        quantity=100.0,
        avg_cost=180.5,
    )
    assert position_from_ib(ib_async.Position("DU1", AAPL, -5, math.nan)).avg_cost is None


def test_unknown_security_type_is_a_value_error() -> None:
    bag = ib_async.Contract(secType="BAG", symbol="X", conId=1)
    with pytest.raises(ValueError, match="BAG"):
        position_from_ib(ib_async.Position("DU1", bag, 1.0, 1.0))


def test_account_value() -> None:
    v = account_value_from_ib(ib_async.AccountValue("DU1", "NetLiquidation", "1000.5", "USD", ""))
    assert v == ibflow.AccountValue(
        account="DU1", tag="NetLiquidation", value="1000.5", currency="USD", model_code=None
    )
    assert v.number == 1000.5
    text = account_value_from_ib(ib_async.AccountValue("DU1", "AccountType", "INDIVIDUAL", "", ""))
    assert text.currency is None
    assert text.number is None


def test_portfolio_item() -> None:
    item = portfolio_item_from_ib(
        ib_async.PortfolioItem(AAPL, 10.0, 190.0, 1900.0, 180.0, 100.0, math.nan, "DU1")
    )
    assert item.account == "DU1"
    assert item.contract.con_id == 265598
    assert (item.quantity, item.market_price, item.market_value) == (10.0, 190.0, 1900.0)
    assert (item.avg_cost, item.unrealized_pnl, item.realized_pnl) == (180.0, 100.0, None)


def test_pnl_unset_values_become_none() -> None:
    pnl = pnl_from_ib(ib_async.PnL("DU1", "", UNSET_DOUBLE, 12.5, math.nan))
    assert pnl == ibflow.PnL(account="DU1", daily=None, unrealized=12.5, realized=None)
    assert pnl_from_ib(ib_async.PnL("DU1")).daily is None  # ib_async's own default is NaN


def test_position_pnl() -> None:
    single = pnl_single_from_ib(
        ib_async.PnLSingle("DU1", "", 265598, 1.5, 2.5, UNSET_DOUBLE, 100, 19000.0)
    )
    assert single == ibflow.PositionPnL(
        account="DU1",
        con_id=265598,
        position=100.0,
        daily=1.5,
        unrealized=2.5,
        realized=None,
        value=19000.0,
    )


def test_contract_details() -> None:
    d = details_from_ib(
        ib_async.ContractDetails(
            contract=AAPL,
            marketName="NMS",
            minTick=0.01,
            orderTypes="LMT,MKT,STP,",
            validExchanges="SMART,NASDAQ,ARCA",
            priceMagnifier=1,
            underConId=0,
            longName="APPLE INC",
            industry="Technology",
            category="Computers",
            timeZoneId="US/Eastern",
            tradingHours="20270111:0400-20270111:2000;20270112:CLOSED",
            liquidHours="20270111:0930-20270111:1600",
            marketRuleIds="26,26",
            minSize=UNSET_DOUBLE,
            sizeIncrement=1.0,
        )
    )
    assert d.contract.con_id == 265598
    assert d.min_tick == 0.01
    assert d.valid_exchanges == ("SMART", "NASDAQ", "ARCA")
    assert d.order_types == ("LMT", "MKT", "STP")
    assert d.long_name == "APPLE INC"
    assert d.time_zone == "US/Eastern"
    assert d.trading_hours is not None
    assert d.trading_hours.startswith("20270111:0400")
    assert d.under_con_id is None  # 0 means "none" for ids
    assert d.market_rule_ids == (26, 26)
    assert d.min_size is None
    assert d.size_increment == 1.0
    assert d.subcategory is None  # empty text becomes None
    assert d.price_magnifier == 1
    assert d.multiplier is None


def test_contract_details_ids_and_empty_lists() -> None:
    es = ib_async.Contract(
        secType="FUT", conId=7, symbol="ES", exchange="CME", currency="USD", multiplier="50"
    )
    d = details_from_ib(
        ib_async.ContractDetails(contract=es, underConId=11004968, priceMagnifier=UNSET_INTEGER)
    )
    assert d.under_con_id == 11004968
    assert d.price_magnifier is None
    assert d.valid_exchanges == ()
    assert d.multiplier == 50.0
    with pytest.raises(ValueError, match="without a contract"):
        details_from_ib(ib_async.ContractDetails())


def test_records_are_frozen_and_slotted() -> None:
    p = ibflow.PnL(account="DU1")
    with pytest.raises(AttributeError):
        p.daily = 1.0  # type: ignore[misc]
    assert not hasattr(p, "__dict__")
    summary = ibflow.AccountSummary(account="DU1", tags={"NetLiquidation": "1"})
    with pytest.raises(TypeError):
        summary.tags["NetLiquidation"] = "2"  # type: ignore[index]


def test_public_names_are_exported() -> None:
    for name in (
        "AccountSummary",
        "AccountValue",
        "ContractDetails",
        "PnL",
        "PortfolioItem",
        "Position",
        "PositionPnL",
        "to_frame",
    ):
        assert name in ibflow.__all__
        assert getattr(ibflow, name) is not None
    for method in (
        "positions",
        "account_values",
        "account_summary",
        "portfolio",
        "pnl",
        "contract_details",
        "qualify",
        "current_time",
    ):
        assert callable(getattr(ibflow.Session, method))
