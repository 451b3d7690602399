"""Layouts of the option, depth, tick, symbol, market-rule and scanner messages, checked by
feeding them to ib_async's own decoder at server version 178 (as in test_layouts)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from ib_async.decoder import Decoder

from ibflow.sim import Scenario
from ibflow.sim._depth import depth_update, depth_update_l2, mkt_depth_exchanges
from ibflow.sim._layouts import contract_data
from ibflow.sim._options import Greeks, option_computation, sec_def_opt_params
from ibflow.sim._rules import market_rule
from ibflow.sim._scanner import Stats, scanner_data, scanner_parameters_xml
from ibflow.sim._symbols import symbol_samples
from ibflow.sim._ticks import historical_ticks_message

from .test_layouts import Recorder, decode, wire


@pytest.fixture(autouse=True)
def _no_decoder_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def test_option_computation_has_twelve_fields_and_no_version() -> None:
    greeks = Greeks(price=7.5, delta=0.46, gamma=0.018, vega=0.32, theta=-0.098)
    msg = option_computation(7, 13, implied_vol=0.28, greeks=greeks, price=7.5, under_price=226.5)
    assert len(wire(msg)) == 12
    name, args = decode(msg)
    assert name == "tickOptionComputation"
    assert args == (7, 13, 0, 0.28, 0.46, 7.5, 0.0, 0.018, 0.32, -0.098, 226.5)


def test_option_computation_sends_ibs_not_computed_sentinels() -> None:
    msg = option_computation(3, 10, implied_vol=None, greeks=None, price=0.05, under_price=230.0)
    _name, args = decode(msg)
    assert args == (3, 10, 0, -1.0, -2.0, 0.05, -1.0, -2.0, -2.0, -2.0, 230.0)


def test_sec_def_opt_params_lists_expirations_then_strikes() -> None:
    msg = sec_def_opt_params(
        4, "SMART", 265598, "AAPL", "100", ["20270115", "20270219"], [220.0, 230.0, 240.0]
    )
    name, args = decode(msg)
    assert name == "securityDefinitionOptionParameter"
    assert args == (4, "SMART", "265598", "AAPL", "100", ["20270115", "20270219"],
                    [220.0, 230.0, 240.0])  # fmt: skip
    assert decode([76, 4]) == ("securityDefinitionOptionParameterEnd", (4,))


def test_depth_updates_decode_in_both_forms() -> None:
    assert decode(depth_update(5, 2, 1, 1, 230.01, 300.0)) == (
        "updateMktDepth",
        (5, 2, 1, 1, 230.01, 300.0),
    )
    assert wire(depth_update(5, 2, 1, 1, 230.01, 300.0))[-1] == "300"  # sizes are integers
    msg = depth_update_l2(5, 0, "ARCA", 0, 0, 230.02, 200.0, True)
    assert decode(msg) == ("updateMktDepthL2", (5, 0, "ARCA", 0, 0, 230.02, 200.0, True))


def test_depth_exchanges_decode() -> None:
    name, (rows,) = decode(mkt_depth_exchanges([("NASDAQ", "STK", "NASDAQ", "Deep2", 1)]))
    assert name == "mktDepthExchanges"
    [row] = rows
    assert (row.exchange, row.secType, row.listingExch, row.serviceDataType, row.aggGroup) == (
        "NASDAQ",
        "STK",
        "NASDAQ",
        "Deep2",
        1,
    )


def test_historical_ticks_decode_in_their_three_forms() -> None:
    name, (req_id, ticks, done) = decode(
        historical_ticks_message(2, "TRADES", [(1764601200.0, 230.01, 100.0)], "NASDAQ")
    )
    assert (name, req_id, done) == ("historicalTicksLast", 2, True)
    [t] = ticks
    assert (t.time.timestamp(), t.price, t.size, t.exchange) == (
        1764601200,
        230.01,
        100.0,
        "NASDAQ",
    )
    quote = (1764601200.0, 230.0, 230.02, 300.0, 500.0)
    name, (_, ticks, done) = decode(historical_ticks_message(3, "BID_ASK", [quote], ""))
    assert name == "historicalTicksBidAsk"
    [q] = ticks
    assert (q.priceBid, q.priceAsk, q.sizeBid, q.sizeAsk) == (230.0, 230.02, 300.0, 500.0)
    name, (_, ticks, _) = decode(historical_ticks_message(4, "MIDPOINT", [(1.0, 230.01, 0.0)], ""))
    assert name == "historicalTicks"
    assert ticks[0].price == 230.01
    assert wire(historical_ticks_message(4, "MIDPOINT", [(1.0, 230.01, 0.0)], "")) == [
        "96", "4", "1", "1", "0", "230.01", "0", "1",
    ]  # fmt: skip


def test_symbol_samples_decode_with_description_and_issuer() -> None:
    aapl = Scenario.default().universe().by_name("AAPL")
    assert aapl is not None
    msg = symbol_samples(9, [(aapl, ["OPT"]), (aapl, [])])
    name, (req_id, found) = decode(msg)
    assert (name, req_id, len(found)) == ("symbolSamples", 9, 2)
    first = found[0]
    assert (first.contract.conId, first.contract.symbol, first.contract.secType) == (
        265598,
        "AAPL",
        "STK",
    )
    assert first.derivativeSecTypes == ["OPT"]
    assert first.contract.description == "APPLE INC"
    assert found[1].derivativeSecTypes == []


def test_market_rule_decodes() -> None:
    name, (rule, grid) = decode(market_rule(32, ((0.0, 0.01), (3.0, 0.05))))
    assert (name, rule) == ("marketRule", 32)
    assert [(p.lowEdge, p.increment) for p in grid] == [(0.0, 0.01), (3.0, 0.05)]


def test_contract_details_carry_one_rule_id_per_exchange() -> None:
    aapl = Scenario.default().universe().by_name("AAPL")
    assert aapl is not None
    _, (_, details) = decode(contract_data(1, aapl))
    assert details.marketRuleIds == ",".join(["26"] * len(aapl.valid_exchanges))


def test_scanner_data_decodes_every_row_and_ends() -> None:
    universe = Scenario.default().universe()
    aapl, msft = universe.by_name("AAPL"), universe.by_name("MSFT")
    assert aapl is not None
    assert msft is not None
    stats = Stats(last=230.0, change_pct=1.5, volume=1e6, relative_volume=1.2)
    rec = Recorder()
    Decoder(rec, 178).interpret(wire(scanner_data(6, [(aapl, stats), (msft, stats)])))  # type: ignore[arg-type]
    assert [name for name, _ in rec.calls] == ["scannerData", "scannerData", "scannerDataEnd"]
    _, (req_id, rank, details, *_rest) = rec.calls[1]
    assert (req_id, rank, details.contract.conId, details.contract.symbol) == (
        6,
        1,
        272093,
        "MSFT",
    )
    assert details.marketName == "NMS"


def test_scanner_parameters_decode_as_one_xml_text() -> None:
    name, (xml,) = decode([19, 1, scanner_parameters_xml()])
    assert name == "scannerParameters"
    assert xml.startswith("<?xml")
