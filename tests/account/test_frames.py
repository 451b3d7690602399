"""``to_frame``: ibflow records as pandas DataFrames."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pytest

import ibflow


async def test_positions_become_flat_columns(session: ibflow.Session) -> None:
    positions = await session.positions()
    frame = ibflow.to_frame(positions)
    assert len(frame) == len(positions)
    assert {"account", "symbol", "con_id", "sec_type", "quantity", "avg_cost"} <= set(frame.columns)
    aapl = frame.set_index("symbol").loc["AAPL"]
    stock = aapl[aapl["sec_type"] == "STK"].iloc[0]
    assert stock["con_id"] == 265598
    assert stock["quantity"] == 100
    by_symbol = ibflow.to_frame(positions, index="con_id")
    assert by_symbol.loc[265598, "symbol"] == "AAPL"


async def test_portfolio_and_account_values(session: ibflow.Session) -> None:
    items = ibflow.to_frame(await session.portfolio())
    assert {"symbol", "market_price", "market_value", "unrealized_pnl"} <= set(items.columns)
    values = ibflow.to_frame(await session.account_values())
    assert list(values.columns) == ["account", "tag", "value", "currency", "model_code"]


def test_bars_indexed_by_time() -> None:
    bars = [
        ibflow.Bar(
            time=datetime(2027, 1, 11, 14, 30 + i, tzinfo=UTC),
            open=100.0 + i,
            high=101.0 + i,
            low=99.0 + i,
            close=100.5 + i,
            volume=1000.0,
        )
        for i in range(3)
    ]
    frame = ibflow.to_frame(bars, index="time")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "wap", "count"]
    assert frame.index[0] == pd.Timestamp("2027-01-11 14:30", tz="UTC")
    assert frame["close"].tolist() == [100.5, 101.5, 102.5]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Routed:
    contract: ibflow.Contract
    exchange: str  # clashes with contract.exchange


def test_clashing_nested_names_are_prefixed() -> None:
    row = _Routed(contract=ibflow.Stock("AAPL", con_id=265598), exchange="IEX")
    frame = ibflow.to_frame([row])
    assert frame.loc[0, "symbol"] == "AAPL"
    assert frame.loc[0, "exchange"] == "IEX"
    assert frame.loc[0, "contract_exchange"] == "SMART"


def test_details_keep_their_tuples() -> None:
    details = ibflow.ContractDetails(
        contract=ibflow.Stock("AAPL", con_id=265598), valid_exchanges=("SMART", "NASDAQ")
    )
    frame = ibflow.to_frame([details])
    assert frame.loc[0, "valid_exchanges"] == ("SMART", "NASDAQ")
    assert frame.loc[0, "con_id"] == 265598


def test_empty_list_is_an_empty_frame() -> None:
    frame = ibflow.to_frame([])
    assert frame.empty


def test_bad_input_is_refused() -> None:
    with pytest.raises(ibflow.InvalidRequest, match="ibflow records"):
        ibflow.to_frame([1, 2])
    mixed = [ibflow.PnL(account="DU1"), ibflow.Stock("AAPL")]
    with pytest.raises(ibflow.InvalidRequest, match="one type"):
        ibflow.to_frame(mixed)
    with pytest.raises(ibflow.InvalidRequest, match="not a column"):
        ibflow.to_frame([ibflow.PnL(account="DU1")], index="nope")


def test_missing_pandas_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"ibflow\[pandas\]"):
        ibflow.to_frame([ibflow.PnL(account="DU1")])
