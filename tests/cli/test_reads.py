"""The read commands on the embedded simulator (``--sim``): tables for people, JSON for scripts."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest

from .conftest import invoke


def test_positions_table_rounds_and_json_keeps_the_numbers() -> None:
    table = invoke("--sim", "positions")
    assert table.code == 0, table.err
    assert re.search(r"DU1234567 .* AAPL .* STK .* 100 .* 180\.00", table.out)
    # An option's average cost includes its multiplier, shown as money.
    assert re.search(r"AAPL 20270115 230C .* OPT .* 2 .* 1,250\.00", table.out)
    data = invoke("positions", "--sim", "--json").json()
    aapl = next(p for p in data if p["contract"]["symbol"] == "AAPL" and p["quantity"] == 100)
    assert aapl == {
        "account": "DU1234567",
        "contract": aapl["contract"],
        "quantity": 100.0,
        "avg_cost": 180.0,
    }
    assert aapl["contract"]["sec_type"] == "STK"
    assert aapl["contract"]["con_id"] == 265598


def test_account_shows_money_in_cents() -> None:
    result = invoke("--sim", "account")
    assert result.code == 0, result.err
    assert "DU1234567 (USD)" in result.out
    assert re.search(r"total cash\s+│\s+1,000,000\.00", result.out)
    for line in result.out.splitlines():
        for number in re.findall(r"\d[\d,]*\.\d+", line):
            assert len(number.split(".")[1]) == 2, line
    [summary] = invoke("--sim", "--json", "account").json()
    assert summary["account"] == "DU1234567"
    assert summary["total_cash"] == 1_000_000.0
    assert summary["tags"]["TotalCashValue"] == "1000000.00"


def test_account_for_an_unknown_account_is_bad_input() -> None:
    result = invoke("--sim", "account", "--account", "DU0000000")
    assert result.code == 2
    assert "is not managed by this login" in result.error_line


def test_quote_once_for_a_stock_and_a_currency_pair() -> None:
    result = invoke("--sim", "quote", "AAPL", "EUR.USD", "--once")
    assert result.code == 0, result.err
    aapl = next(line for line in result.out.splitlines() if "AAPL" in line)
    prices = re.findall(r"\d+\.\d+", aapl)
    assert prices, aapl
    assert all(len(p.split(".")[1]) == 2 for p in prices), aapl  # tick 0.01
    eur = next(line for line in result.out.splitlines() if "EUR.USD" in line)
    assert re.search(r"1\.\d{5}\b", eur), eur  # IDEALPRO's tick is 0.00005
    quotes = invoke("--sim", "--json", "quote", "MSFT", "--once").json()
    assert [q["contract"]["symbol"] for q in quotes] == ["MSFT"]
    assert quotes[0]["bid"] < quotes[0]["ask"]
    assert quotes[0]["market_data_type"] == "live"


def test_bars_table_and_json() -> None:
    table = invoke("--sim", "bars", "AAPL", "--period", "1h", "--duration", "2 D")
    assert table.code == 0, table.err
    assert re.search(r"\b\d+ bars\b", table.out)
    bars = invoke("--sim", "--json", "bars", "AAPL", "--period", "1h", "--duration", "2 D").json()
    assert len(bars) > 1
    assert set(bars[0]) == {"time", "open", "high", "low", "close", "volume", "wap", "count"}
    assert bars[0]["time"] < bars[-1]["time"]


def test_bars_longer_than_one_request_are_downloaded_in_pieces() -> None:
    # 30-minute bars for two months exceed one IB request: ibflow downloads them in pieces.
    result = invoke("--sim", "--json", "bars", "AAPL", "--period", "30m", "--duration", "2 M")
    assert result.code == 0, result.err
    bars = result.json()
    days = {b["time"][:10] for b in bars}
    assert len(days) >= 35
    assert len(bars) == len({b["time"] for b in bars})
    # A period too long for the duration is refused, not downloaded.
    refused = invoke("--sim", "bars", "AAPL", "--period", "1M", "--duration", "1 D")
    assert refused.code == 2
    assert "allows periods from" in refused.error_line


def test_bars_to_csv(tmp_path: Path) -> None:
    out = tmp_path / "aapl.csv"
    result = invoke(
        "--sim", "bars", "AAPL", "--period", "1d", "--duration", "1 M", "--out", str(out)
    )
    assert result.code == 0, result.err
    assert result.out.startswith("wrote ")
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 15
    assert {"open", "high", "low", "close", "volume"} <= set(rows[0])


def test_bars_to_parquet_or_a_clear_missing_engine(tmp_path: Path) -> None:
    out = tmp_path / "aapl.parquet"
    result = invoke(
        "--sim", "bars", "AAPL", "--period", "1d", "--duration", "1 M", "--out", str(out)
    )
    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        assert result.code == 0, result.err
        import pandas as pd

        assert len(pd.read_parquet(out)) >= 15
    else:
        assert result.code == 4
        assert "pyarrow" in result.error_line
        assert not out.exists()


def test_orders_and_cancel_all_on_an_empty_book() -> None:
    assert invoke("--sim", "orders").out.strip() == "no open orders"
    assert invoke("--sim", "orders", "--all", "--json").json() == []
    result = invoke("--sim", "cancel", "--all", "--json")
    assert (result.code, result.json()) == (0, {"cancelled": []})


@pytest.mark.parametrize("where", ["before", "after"])
def test_connection_options_before_or_after_the_command(where: str) -> None:
    flags = ["--sim", "--json", "--client-id", "77"]
    args = [*flags, "account"] if where == "before" else ["account", *flags]
    result = invoke(*args)
    assert result.code == 0, result.err
    assert result.json()[0]["account"] == "DU1234567"
