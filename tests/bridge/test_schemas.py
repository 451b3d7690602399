"""Request descriptions become ibflow contracts through ibflow's own builders."""

from __future__ import annotations

import pytest

import ibflow
from ibflow.bridge._requests import ContractSpec


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"symbol": "aapl"}, ibflow.Stock("AAPL")),
        ({"symbol": "EUR.USD", "sec_type": "cash"}, ibflow.Forex("EURUSD")),
        ({"symbol": "EUR", "sec_type": "CASH", "currency": "usd"}, ibflow.Forex("EURUSD")),
        ({"symbol": "ES", "sec_type": "FUT", "expiry": "202703", "exchange": "CME"},
         ibflow.Future("ES", "202703", "CME")),
        ({"symbol": "AAPL", "sec_type": "OPT", "expiry": "20270115", "strike": 230,
          "right": "call"},
         ibflow.Option("AAPL", "20270115", 230, "C")),
        ({"symbol": "SPX", "sec_type": "IND", "exchange": "CBOE"}, ibflow.Index("SPX", "CBOE")),
        ({"con_id": 265598}, ibflow.Contract(sec_type="STK", symbol="", con_id=265598)),
        ({"symbol": "AAPL", "sec_type": "OPT"}, ibflow.Contract(sec_type="OPT", symbol="AAPL")),
    ],
)  # fmt: skip
def test_descriptions_become_ibflow_contracts(
    fields: dict[str, object], expected: ibflow.Contract
) -> None:
    assert ContractSpec.model_validate(fields).to_contract() == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"symbol": "SPX", "sec_type": "IND"}, "indexes need their exchange"),
        ({"symbol": "ES", "sec_type": "FUT"}, "futures need their exchange"),
        ({"symbol": "EURO", "sec_type": "CASH"}, "six letters"),
        ({}, "needs a symbol, a local_symbol or a con_id"),
    ],
)
def test_incomplete_descriptions_get_ibflows_message(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=message):
        ContractSpec.model_validate(fields).to_contract()
