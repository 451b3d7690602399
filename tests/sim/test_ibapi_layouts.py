"""The simulator's option, depth, tick, symbol, rule and scanner messages read by the official
ibapi client's decoder at server version 178, as its reader thread hands them over."""

from __future__ import annotations

from typing import Any

import pytest
from ibapi import comm
from ibapi.decoder import Decoder

from ibflow.sim import Scenario
from ibflow.sim._codec import encode_fields
from ibflow.sim._depth import depth_update, depth_update_l2, mkt_depth_exchanges
from ibflow.sim._layouts import contract_data
from ibflow.sim._model import Instrument
from ibflow.sim._options import Greeks, option_computation, sec_def_opt_params
from ibflow.sim._rules import market_rule
from ibflow.sim._scanner import Stats, scanner_data, scanner_parameters_xml
from ibflow.sim._symbols import symbol_samples
from ibflow.sim._ticks import historical_ticks_message


class Recorder:
    """Stands in for ibapi's EWrapper: records every callback."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def decode(message: list[object]) -> list[tuple[str, tuple[Any, ...]]]:
    """Split one frame as ibapi's client loop does (id, then fields) and decode it."""
    payload = encode_fields(message)[4:]
    cut = payload.index(b"\0")
    rec = Recorder()
    Decoder(rec, 178).interpret(comm.read_fields(payload[cut + 1 :]), int(payload[:cut]))
    assert not [c for c in rec.calls if c[0] == "error"], rec.calls
    return rec.calls


@pytest.fixture
def aapl() -> Instrument:
    inst = Scenario.default().universe().by_name("AAPL")
    assert inst is not None
    return inst


def test_option_computation_and_sentinels() -> None:
    greeks = Greeks(price=7.5, delta=0.46, gamma=0.018, vega=0.32, theta=-0.098)
    msg = option_computation(7, 13, implied_vol=0.28, greeks=greeks, price=7.5, under_price=226.5)
    assert decode(msg) == [
        ("tickOptionComputation", (7, 13, 0, 0.28, 0.46, 7.5, 0.0, 0.018, 0.32, -0.098, 226.5))
    ]
    empty = option_computation(7, 10, implied_vol=None, greeks=None, price=None, under_price=1.0)
    [(_, args)] = decode(empty)
    assert args == (7, 10, 0, None, None, None, None, None, None, None, 1.0)


def test_option_chain_rows() -> None:
    msg = sec_def_opt_params(4, "SMART", 265598, "AAPL", "100", ["20270115"], [220.0, 230.0])
    [(name, args)] = decode(msg)
    assert name == "securityDefinitionOptionParameter"
    assert args == (4, "SMART", 265598, "AAPL", "100", {"20270115"}, {220.0, 230.0})
    assert decode([76, 4]) == [("securityDefinitionOptionParameterEnd", (4,))]


def test_depth_rows_and_venues() -> None:
    [(name, args)] = decode(depth_update(5, 2, 1, 1, 230.01, 300.0))
    assert (name, args[:5], args[5]) == ("updateMktDepth", (5, 2, 1, 1, 230.01), 300)
    [(name, args)] = decode(depth_update_l2(5, 0, "ARCA", 0, 0, 230.02, 200.0, True))
    assert (name, args[:6], args[6], args[7]) == (
        "updateMktDepthL2",
        (5, 0, "ARCA", 0, 0, 230.02),
        200,
        True,
    )
    [(name, (rows,))] = decode(mkt_depth_exchanges([("NASDAQ", "STK", "NASDAQ", "Deep2", 1)]))
    assert (rows[0].exchange, rows[0].serviceDataType, rows[0].aggGroup) == ("NASDAQ", "Deep2", 1)


def test_historical_ticks_in_three_forms() -> None:
    [(name, (req_id, ticks, done))] = decode(
        historical_ticks_message(2, "TRADES", [(1764601200, 230.01, 100.0)], "NASDAQ")
    )
    assert (name, req_id, done) == ("historicalTicksLast", 2, True)
    assert (ticks[0].time, ticks[0].price, ticks[0].size, ticks[0].exchange) == (
        1764601200,
        230.01,
        100,
        "NASDAQ",
    )
    quote = (1764601200, 230.0, 230.02, 300.0, 500.0)
    [(name, (_, ticks, _))] = decode(historical_ticks_message(2, "BID_ASK", [quote], ""))
    assert (name, ticks[0].priceBid, ticks[0].priceAsk, ticks[0].sizeAsk) == (
        "historicalTicksBidAsk",
        230.0,
        230.02,
        500,
    )
    [(name, (_, ticks, _))] = decode(historical_ticks_message(2, "MIDPOINT", [(1, 230.01, 0)], ""))
    assert (name, ticks[0].price) == ("historicalTicks", 230.01)


def test_symbol_samples_rules_and_details(aapl: Instrument) -> None:
    [(name, (req_id, found))] = decode(symbol_samples(9, [(aapl, ["OPT"])]))
    assert (name, req_id, found[0].contract.conId, found[0].derivativeSecTypes) == (
        "symbolSamples",
        9,
        265598,
        ["OPT"],
    )
    assert found[0].contract.description == "APPLE INC"
    [(name, (rule, grid))] = decode(market_rule(32, ((0.0, 0.01), (3.0, 0.05))))
    assert (name, rule) == ("marketRule", 32)
    assert [(p.lowEdge, p.increment) for p in grid] == [(0.0, 0.01), (3.0, 0.05)]
    [(name, (_, details))] = decode(contract_data(1, aapl))
    assert details.marketRuleIds == ",".join(["26"] * len(aapl.valid_exchanges))


def test_scanner_data_and_parameters(aapl: Instrument) -> None:
    calls = decode(scanner_data(6, [(aapl, Stats(230.0, 1.0, 1e6, 1.0))]))
    assert [name for name, _ in calls] == ["scannerData", "scannerDataEnd"]
    _, (req_id, rank, details, *_) = calls[0]
    assert (req_id, rank, details.contract.symbol, details.marketName) == (6, 0, "AAPL", "NMS")
    [(name, (xml,))] = decode([19, 1, scanner_parameters_xml()])
    assert name == "scannerParameters"
    assert "<scanCode>TOP_PERC_GAIN</scanCode>" in xml
