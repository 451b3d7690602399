"""Scenario loading, the default universe and TWS-like contract matching."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ibflow.sim._model import ContractQuery, Instrument, SimAccount, SimError, SimPosition
from ibflow.sim._scenario import BUNDLED_SCENARIOS, Scenario, ScenarioError
from ibflow.sim._universe import Universe

AAPL, MSFT, SPY, EURUSD = 265598, 272093, 756733, 12087792


@pytest.fixture(scope="module")
def default() -> Scenario:
    return Scenario.default()


@pytest.fixture(scope="module")
def universe(default: Scenario) -> Universe:
    return default.universe()


def minimal(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "accounts": [{"id": "DU1"}],
        "instruments": [
            {"con_id": 1, "symbol": "ABC", "sec_type": "STK", "primary_exchange": "NYSE"}
        ],
    }
    data.update(extra)
    return data


# ---------------------------------------------------------------------------------------------
# The default scenario


def test_default_universe_invariants(default: Scenario) -> None:
    insts = default.instruments
    con_ids = [i.con_id for i in insts]
    assert len(set(con_ids)) == len(con_ids)
    assert len([i for i in insts if i.sec_type != "OPT"]) >= 20
    assert {i.sec_type for i in insts} == {"STK", "CASH", "FUT", "OPT", "IND"}
    for inst in insts:
        assert inst.min_tick > 0, inst
        assert inst.price > 0, inst
        assert 0 < inst.volatility <= 5, inst
        assert inst.long_name, inst
        assert inst.valid_exchanges, inst
        assert inst.time_zone, inst
        # Starting prices sit on the tick grid, so quotes derived from them do too.
        assert abs(inst.price / inst.min_tick - round(inst.price / inst.min_tick)) < 1e-6, inst


def test_default_real_con_ids(universe: Universe) -> None:
    for con_id, symbol, sec_type in [
        (AAPL, "AAPL", "STK"),
        (MSFT, "MSFT", "STK"),
        (SPY, "SPY", "STK"),
        (320227571, "QQQ", "STK"),
        (EURUSD, "EUR", "CASH"),
        (416904, "SPX", "IND"),
    ]:
        inst = universe.by_con_id(con_id)
        assert inst is not None
        assert (inst.symbol, inst.sec_type) == (symbol, sec_type)


def test_default_stock_forex_future_fields(universe: Universe) -> None:
    aapl = universe.by_con_id(AAPL)
    assert aapl is not None
    assert (aapl.exchange, aapl.primary_exchange, aapl.min_tick) == ("SMART", "NASDAQ", 0.01)
    assert {"SMART", "NASDAQ", "NYSE", "ARCA"} <= set(aapl.valid_exchanges)
    spy = universe.by_con_id(SPY)
    assert spy is not None
    assert (spy.primary_exchange, spy.stock_type) == ("ARCA", "ETF")

    eur = universe.by_con_id(EURUSD)
    assert eur is not None
    assert (eur.exchange, eur.currency, eur.local_symbol) == ("IDEALPRO", "USD", "EUR.USD")
    assert eur.min_tick == 0.00005
    assert eur.rth == eur.eth == ("1715", "1700")
    jpy = universe.by_name("USD.JPY")
    assert jpy is not None
    assert jpy.min_tick == 0.005

    es = universe.by_name("ES")
    assert es is not None
    assert (es.sec_type, es.exchange, es.multiplier, es.min_tick) == ("FUT", "CME", "50", 0.25)
    assert (es.last_trade_date, es.local_symbol, es.trading_class) == ("20270319", "ESH7", "ES")
    spx = universe.by_name("SPX")
    assert spx is not None
    assert (spx.sec_type, spx.exchange, spx.order_types) == ("IND", "CBOE", ())


def test_default_option_chain_shape(universe: Universe) -> None:
    chain = [i for i in universe if i.sec_type == "OPT"]
    aapl = universe.by_con_id(AAPL)
    assert aapl is not None
    assert len(chain) == 30
    expiries = sorted({o.last_trade_date for o in chain})
    strikes = sorted({o.strike for o in chain})
    assert len(expiries) == 3
    assert all(e.startswith("2027") for e in expiries)
    assert len(strikes) == 5
    assert strikes[0] < aapl.price < strikes[-1]
    assert {(o.last_trade_date, o.strike, o.right) for o in chain} == {
        (e, k, r) for e in expiries for k in strikes for r in "CP"
    }
    for o in chain:
        assert (o.symbol, o.multiplier, o.trading_class, o.exchange) == (
            "AAPL",
            "100",
            "AAPL",
            "SMART",
        )
        assert (o.under_con_id, o.min_tick, o.currency) == (AAPL, 0.01, "USD")
        assert re.fullmatch(r"AAPL  \d{6}[CP]\d{8}", o.local_symbol), o.local_symbol
        assert o.local_symbol[6:12] == o.last_trade_date[2:]
        assert int(o.local_symbol[13:]) == o.strike * 1000
    call = universe.by_name("AAPL  270115C00210000")
    put = universe.by_name("AAPL  270115P00250000")
    assert call is not None
    assert put is not None
    # Deep in the money: worth at least the intrinsic value.
    assert call.price >= aapl.price - 210
    assert put.price >= 250 - aapl.price


def test_default_accounts_and_positions(default: Scenario) -> None:
    assert default.account_ids == ["DU1234567"]
    assert default.accounts[0].cash == 1_000_000.0
    assert default.accounts[0].base_currency == "USD"
    held = {(p.instrument.con_id, p.quantity, p.avg_cost) for p in default.positions}
    assert {(AAPL, 100.0, 180.0), (MSFT, 50.0, 400.0), (SPY, 20.0, 500.0)} <= held
    option = [p for p in default.positions if p.instrument.sec_type == "OPT"]
    assert len(option) == 1
    assert option[0].avg_cost == 1250.0
    ids = {i.con_id for i in default.instruments}
    assert all(p.account == "DU1234567" and p.instrument.con_id in ids for p in default.positions)


def test_default_is_fresh_and_deterministic() -> None:
    a, b = Scenario.default(), Scenario.default()
    assert a == b
    a.accounts[0].cash = 0.0
    a.instruments[0].price = 1.0
    assert b.accounts[0].cash == 1_000_000.0
    assert b.instruments[0].price != 1.0
    c = b.copy()
    c.positions[0].quantity = 7.0
    assert b.positions[0].quantity != 7.0


# ---------------------------------------------------------------------------------------------
# Matching


def q(**kw: Any) -> ContractQuery:
    return ContractQuery(**kw)


def con_ids(found: list[Instrument]) -> list[int]:
    return [i.con_id for i in found]


def test_match_by_con_id(universe: Universe) -> None:
    assert con_ids(universe.match(q(con_id=AAPL))) == [AAPL]
    assert con_ids(universe.match(q(con_id=AAPL, symbol="aapl", exchange="SMART"))) == [AAPL]
    assert universe.match(q(con_id=AAPL, symbol="MSFT")) == []
    assert universe.match(q(con_id=AAPL, sec_type="OPT")) == []
    assert universe.match(q(con_id=123)) == []


def test_match_symbol_only_is_ambiguous(universe: Universe) -> None:
    found = universe.match(q(symbol="aapl"))
    assert len(found) == 31
    assert found[0].con_id == AAPL  # universe order: the stock first
    assert con_ids(universe.match(q(symbol="AAPL", sec_type="STK"))) == [AAPL]
    assert universe.match(q(symbol="NOPE")) == []
    assert universe.match(q(sec_type="STK", exchange="SMART")) == []  # no symbol → nothing


def test_match_exchange_routing(universe: Universe) -> None:
    stock = {"symbol": "AAPL", "sec_type": "STK", "currency": "USD"}
    assert con_ids(universe.match(q(**stock, exchange="SMART"))) == [AAPL]
    assert con_ids(universe.match(q(**stock, exchange="NYSE"))) == [AAPL]  # a valid exchange
    assert universe.match(q(**stock, exchange="IDEALPRO")) == []
    assert con_ids(universe.match(q(**stock, primary_exchange="NASDAQ"))) == [AAPL]
    assert con_ids(universe.match(q(**stock, primary_exchange="ISLAND"))) == [AAPL]
    assert universe.match(q(**stock, primary_exchange="NYSE")) == []
    assert universe.match(q(symbol="AAPL", sec_type="STK", currency="EUR")) == []
    assert len(universe.match(q(symbol="AAPL", exchange="SMART"))) == 31  # options route too


def test_match_forex(universe: Universe) -> None:
    assert con_ids(universe.match(q(symbol="EUR", sec_type="CASH", currency="USD"))) == [EURUSD]
    assert con_ids(universe.match(q(symbol="EUR", exchange="IDEALPRO"))) == [EURUSD]
    assert con_ids(universe.match(q(local_symbol="EUR.USD"))) == [EURUSD]
    assert universe.match(q(symbol="EUR", currency="GBP")) == []
    usd = universe.match(q(symbol="USD", sec_type="CASH"))
    assert [i.local_symbol for i in usd] == ["USD.JPY"]


def test_match_options(universe: Universe) -> None:
    opt = {"symbol": "AAPL", "sec_type": "OPT"}
    assert len(universe.match(q(**opt))) == 30
    assert len(universe.match(q(**opt, last_trade_date="202702"))) == 10  # month prefix
    assert len(universe.match(q(**opt, last_trade_date="20270219"))) == 10
    assert len(universe.match(q(**opt, last_trade_date="202702", right="C"))) == 5
    assert len(universe.match(q(**opt, right="PUT"))) == 15
    assert len(universe.match(q(**opt, strike=230.0))) == 6
    assert len(universe.match(q(**opt, multiplier="100"))) == 30
    assert universe.match(q(**opt, multiplier="10")) == []
    assert universe.match(q(**opt, strike=231.0)) == []
    one = universe.match(q(**opt, last_trade_date="202701", strike=230.0, right="C"))
    assert [i.local_symbol for i in one] == ["AAPL  270115C00230000"]
    # Local symbols match with the OCC padding typed loosely, and with no symbol at all.
    assert con_ids(universe.match(q(local_symbol="aapl 270115c00230000"))) == con_ids(one)
    by_class = q(symbol="AAPL", trading_class="AAPL", strike=230.0, last_trade_date="202701")
    assert con_ids(universe.match(dataclasses.replace(by_class, right="C"))) == con_ids(one)
    assert universe.match(q(**opt, last_trade_date="202801")) == []


def test_match_future_by_month(universe: Universe) -> None:
    found = universe.match(q(symbol="ES", sec_type="FUT", exchange="CME", last_trade_date="202703"))
    assert [i.local_symbol for i in found] == ["ESH7"]
    assert universe.match(q(symbol="ES", sec_type="FUT", exchange="SMART")) == []


def test_resolve_and_errors(universe: Universe) -> None:
    assert universe.resolve(q(symbol="MSFT", sec_type="STK", exchange="SMART")).con_id == MSFT
    with pytest.raises(SimError) as none:
        universe.resolve(q(symbol="NOPE", sec_type="STK"))
    assert (none.value.code, none.value.text) == (
        200,
        "No security definition has been found for the request",
    )
    with pytest.raises(SimError) as many:
        universe.resolve(q(symbol="AAPL"))
    assert (many.value.code, many.value.text) == (
        200,
        "The contract description specified for AAPL is ambiguous.",
    )


def test_by_name(universe: Universe) -> None:
    def name(text: str) -> str | None:
        inst = universe.by_name(text)
        return None if inst is None else inst.local_symbol

    assert name("AAPL") == "AAPL"
    assert name("aapl") == "AAPL"
    assert name("EUR.USD") == "EUR.USD"
    assert name("ESH7") == "ESH7"
    assert name("AAPL  270219P00240000") == "AAPL  270219P00240000"
    assert name("nope") is None


def test_universe_rejects_duplicate_con_ids(default: Scenario) -> None:
    with pytest.raises(ValueError, match="duplicate conId 265598"):
        Universe([default.instruments[0], default.instruments[0]])


# ---------------------------------------------------------------------------------------------
# Round trips and bundled files


def test_dict_round_trip(default: Scenario) -> None:
    data = default.to_dict()
    assert "seed" not in data
    assert "extends" not in data
    assert Scenario.from_dict(json.loads(json.dumps(data))) == default


def test_toml_and_json_file_round_trip(default: Scenario, tmp_path: Path) -> None:
    seeded = dataclasses.replace(default, seed=5, name="copy")
    toml_file = tmp_path / "s.toml"
    toml_file.write_text(seeded.to_toml(), encoding="utf-8")
    json_file = tmp_path / "s.json"
    json_file.write_text(json.dumps(seeded.to_dict()), encoding="utf-8")
    assert Scenario.from_file(toml_file) == seeded
    assert Scenario.from_file(str(json_file)) == seeded
    assert tomllib.loads(seeded.to_toml())["seed"] == 5


def test_bundled_example_toml() -> None:
    s = Scenario.from_file(BUNDLED_SCENARIOS / "example.toml")
    assert s.name == "example"
    assert s.seed == 42
    assert s.account_ids == ["DU1111111", "DU2222222"]
    assert {i.sec_type for i in s.instruments} == {"STK", "CASH", "FUT", "OPT", "IND"}
    u = s.universe()
    call = u.by_name("AAPL  270115C00230000")
    assert call is not None
    assert call.under_con_id == AAPL
    assert call.multiplier == "100"
    es = u.by_name("ESH7")
    assert es is not None
    assert es.time_zone == "US/Central"
    by_key = {(p.account, p.instrument.local_symbol): p for p in s.positions}
    assert by_key["DU2222222", "AAPL  270115C00230000"].avg_cost == 1250.0
    assert by_key["DU2222222", "EUR.USD"].quantity == -20000.0
    assert Scenario.from_dict(s.to_dict()) == s


def test_bundled_two_accounts_json_extends_default(default: Scenario) -> None:
    s = Scenario.from_file(BUNDLED_SCENARIOS / "two_accounts.json")
    assert s.account_ids == ["DU1234567", "DU7654321"]
    assert s.seed == 7
    assert len(s.instruments) == len(default.instruments) + 1
    aapl = s.universe().by_con_id(AAPL)
    default_aapl = default.universe().by_con_id(AAPL)
    assert aapl is not None
    assert default_aapl is not None
    assert aapl.price == 200.0
    assert dataclasses.replace(aapl, price=default_aapl.price) == default_aapl
    ibm = s.universe().by_name("IBM")
    assert ibm is not None
    assert ibm.exchange == "SMART"
    assert ibm.valid_exchanges == ("SMART", "NYSE")
    accounts = {p.account for p in s.positions}
    assert accounts == {"DU1234567", "DU7654321"}
    es = [p for p in s.positions if p.instrument.local_symbol == "ESH7"]
    assert es[0].avg_cost == 5750.0 * 50


def test_extends_keeps_default_positions_on_overridden_instruments() -> None:
    s = Scenario.from_dict({"extends": "default", "instruments": [{"con_id": AAPL, "price": 1.5}]})
    aapl_pos = [p for p in s.positions if p.instrument.con_id == AAPL]
    assert aapl_pos[0].instrument.price == 1.5
    assert aapl_pos[0].instrument is s.universe().by_con_id(AAPL)
    assert len(s.positions) == len(Scenario.default().positions)
    flat = Scenario.from_dict({"extends": "default", "positions": []})
    assert flat.positions == []
    assert flat.account_ids == ["DU1234567"]
    other = Scenario.from_dict({"extends": "default", "accounts": [{"id": "U999"}]})
    assert other.positions == []  # the default positions' account is gone


def test_new_instrument_defaults_by_sec_type() -> None:
    s = Scenario.from_dict(
        minimal(
            instruments=[
                {"con_id": 1, "symbol": "abc", "sec_type": "stk", "primary_exchange": "NYSE"},
                {"con_id": 2, "symbol": "EUR", "sec_type": "CASH", "currency": "JPY"},
                {"con_id": 3, "symbol": "NQ", "sec_type": "FUT", "exchange": "CME",
                 "multiplier": 20, "last_trade_date": "20271217"},
                {"con_id": 4, "symbol": "ABC", "sec_type": "OPT", "last_trade_date": "20270115",
                 "strike": 12.5, "right": "put"},
                {"con_id": 5, "symbol": "VIX", "sec_type": "IND", "exchange": "CBOE"},
            ]
        )
    )  # fmt: skip
    stk, cash, fut, opt, ind = s.instruments
    assert (stk.symbol, stk.sec_type, stk.exchange, stk.local_symbol) == (
        "ABC",
        "STK",
        "SMART",
        "ABC",
    )
    assert stk.valid_exchanges == ("SMART", "NYSE")
    assert stk.stock_type == "COMMON"
    assert (cash.exchange, cash.local_symbol, cash.min_tick) == ("IDEALPRO", "EUR.JPY", 0.005)
    assert cash.rth == cash.eth == ("1715", "1700")
    assert (fut.local_symbol, fut.multiplier, fut.trading_class) == ("NQZ7", "20", "NQ")
    assert (opt.right, opt.multiplier, opt.under_con_id) == ("P", "100", 1)
    assert opt.local_symbol == "ABC   270115P00012500"
    assert ind.order_types == ()


def test_values_are_normalised() -> None:
    s = Scenario.from_dict(
        minimal(
            instruments=[
                {"con_id": 1.0, "symbol": "ABC", "sec_type": "STK", "exchange": "NYSE",
                 "valid_exchanges": "NYSE, ARCA", "rth": "0900-1700", "currency": "usd",
                 "multiplier": "1.0"}
            ],
            positions=[{"symbol": "ABC", "quantity": 3, "avg_price": 10}],
        )
    )  # fmt: skip
    inst = s.instruments[0]
    assert (inst.con_id, inst.currency, inst.multiplier) == (1, "USD", "1")
    assert inst.valid_exchanges == ("NYSE", "ARCA")
    assert inst.rth == ("0900", "1700")
    assert s.positions[0].account == "DU1"
    assert s.positions[0].avg_cost == 10.0


def test_python_construction_validates() -> None:
    inst = Instrument(con_id=1, symbol="ABC", sec_type="STK", exchange="NYSE")
    ok = Scenario(accounts=[SimAccount("DU1")], instruments=[inst])
    assert ok.positions == []
    with pytest.raises(ScenarioError, match=r"^scenario: instruments\[1\].con_id: duplicate"):
        Scenario(accounts=[SimAccount("DU1")], instruments=[inst, inst])
    with pytest.raises(ScenarioError, match=r"positions\[0\].account: unknown account 'DU2'"):
        Scenario(
            accounts=[SimAccount("DU1")],
            instruments=[inst],
            positions=[SimPosition("DU2", inst, 1.0, 1.0)],
        )
    with pytest.raises(ScenarioError, match=r"instruments\[0\].min_tick: expected a positive"):
        Scenario(accounts=[SimAccount("DU1")], instruments=[dataclasses.replace(inst, min_tick=0)])


def test_settings_cover_every_scalar_field() -> None:
    lists = {"accounts", "instruments", "positions"}
    scalars = {f.name for f in dataclasses.fields(Scenario)} - lists
    assert set(Scenario.default().to_dict()) == (scalars - {"seed"}) | lists


# ---------------------------------------------------------------------------------------------
# Errors


def test_error_names_file_and_key_path(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(
        '[[accounts]]\nid = "DU1"\n'
        + "".join(
            f'[[instruments]]\ncon_id = {n}\nsymbol = "S{n}"\nsec_type = "STK"\n'
            f'primary_exchange = "NYSE"\n'
            for n in range(1, 4)
        )
        + '[[instruments]]\ncon_id = 9\nsymbol = "X"\nsec_type = "STK"\nmin_tick = "abc"\n',
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as err:
        Scenario.from_file(path)
    assert str(err.value) == (
        f"{path}: instruments[3].min_tick: expected a positive number, got 'abc'"
    )
    assert (err.value.source, err.value.key) == (str(path), "instruments[3].min_tick")
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        ({"colour": 1}, "colour", "unknown key; allowed keys: extends, name, seed,"),
        ({"seed": True}, "seed", "expected a non-negative integer, got True"),
        ({"seed": -1}, "seed", "expected a non-negative integer"),
        ({"tick_interval": 0}, "tick_interval", "expected a positive number, got 0"),
        ({"enforce_market_hours": "yes"}, "enforce_market_hours", "expected true or false"),
        ({"extends": "big"}, "extends", "expected 'default' or 'none', got 'big'"),
        ({"accounts": []}, "accounts", "at least one account"),
        ({"accounts": [{"id": "DU1", "cash": "lots"}]}, "accounts[0].cash", "expected a number"),
        ({"accounts": [{"id": "DU 1"}]}, "accounts[0].id", "letters and digits"),
        ({"accounts": [{"cash": 1.0}]}, "accounts[0].id", "missing"),
        ({"accounts": [{"id": "DU1"}, {"id": "DU1"}]}, "accounts[1].id", "duplicate account"),
        ({"accounts": [{"id": "DU1", "bank": "x"}]}, "accounts[0].bank", "allowed keys: id,"),
        ({"accounts": {"id": "DU1"}}, "accounts", "expected a list of tables"),
        ({"instruments": []}, "instruments", "at least one instrument"),
    ],
)
def test_top_level_and_account_errors(data: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(minimal(**data), source="s.json")
    assert err.value.key == key
    assert err.value.problem.startswith(problem) or problem in err.value.problem
    assert str(err.value).startswith(f"s.json: {key}: ")


STK = {"con_id": 1, "symbol": "ABC", "sec_type": "STK", "primary_exchange": "NYSE"}


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ({**STK, "colour": "red"}, "colour", "unknown key; allowed keys: con_id, symbol,"),
        ({**STK, "con_id": 0}, "con_id", "expected a positive integer, got 0"),
        ({**STK, "con_id": "1"}, "con_id", "expected a positive integer, got '1'"),
        ({**STK, "sec_type": "BOND"}, "sec_type", "expected one of STK, CASH, FUT, OPT, IND"),
        ({**STK, "symbol": ""}, "symbol", "expected a non-empty string"),
        ({**STK, "currency": "dollars"}, "currency", "expected a 3-letter currency code"),
        ({**STK, "price": -1}, "price", "expected a positive number, got -1"),
        ({**STK, "price": float("nan")}, "price", "expected a positive number"),
        ({**STK, "volatility": 9}, "volatility", "expected an annualised volatility"),
        ({**STK, "rth": ["930", "1600"]}, "rth", "expected two 'HHMM' local times"),
        ({**STK, "eth": "2500-0100"}, "eth", "expected two 'HHMM' local times"),
        ({**STK, "valid_exchanges": 3}, "valid_exchanges", "expected a list of strings"),
        ({**STK, "time_zone": "Mars/Olympus"}, "time_zone", "unknown time zone"),
        ({**STK, "right": "C"}, "right", "only options have a right"),
        ({**STK, "multiplier": "x"}, "multiplier", "expected a positive number or numeric"),
        ({**STK, "last_trade_date": "2027-01-15"}, "last_trade_date", "expected a date"),
        ({**STK, "last_trade_date": "20270230"}, "last_trade_date", "expected a date"),
        ({"con_id": 1, "symbol": "ABC", "sec_type": "STK"}, "primary_exchange", "missing"),
        ({"con_id": 1, "sec_type": "STK"}, "symbol", "missing; required for every instrument"),
        ({"symbol": "ABC", "sec_type": "STK"}, "con_id", "missing"),
        ({"con_id": 2, "symbol": "ES", "sec_type": "FUT", "exchange": "CME", "multiplier": 50},
         "last_trade_date", "missing; required for a future"),
        ({"con_id": 2, "symbol": "ES", "sec_type": "FUT", "last_trade_date": "20270319",
          "multiplier": 50}, "exchange", "missing; required for a future"),
        ({"con_id": 3, "symbol": "ABC", "sec_type": "OPT", "last_trade_date": "20270115",
          "strike": 10}, "right", "missing; required for an option"),
        ({"con_id": 3, "symbol": "ABC", "sec_type": "OPT", "last_trade_date": "20270115",
          "right": "C", "strike": 10, "multiplier": ""}, "multiplier", "missing; required"),
    ],
)  # fmt: skip
def test_instrument_errors(entry: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(minimal(instruments=[entry]))
    assert err.value.key == f"instruments[0].{key}"
    assert problem in err.value.problem
    assert str(err.value).startswith(f"scenario: instruments[0].{key}: ")


def test_duplicate_con_id_in_file() -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(minimal(instruments=[STK, {**STK, "symbol": "DEF"}]))
    assert err.value.key == "instruments[1].con_id"
    assert err.value.problem == "duplicate conId 1 (also instruments[0])"


def test_override_of_default_instrument_is_validated() -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict({"extends": "default", "instruments": [{"con_id": AAPL, "min_tick": 0}]})
    assert err.value.key == "instruments[0].min_tick"


@pytest.mark.parametrize(
    ("positions", "key", "problem"),
    [
        ([{"con_id": 1, "quantity": 1, "avg_cost": 1, "account": "DU9"}],
         "positions[0].account", "unknown account 'DU9'"),
        ([{"con_id": 77, "quantity": 1, "avg_cost": 1}],
         "positions[0]", "no instrument matches con_id=77"),
        ([{"symbol": "ABC", "sec_type": "OPT", "quantity": 1, "avg_cost": 1}],
         "positions[0]", "no instrument matches"),
        ([{"quantity": 1, "avg_cost": 1}], "positions[0]", "missing instrument"),
        ([{"con_id": 1, "avg_cost": 1}], "positions[0].quantity", "missing"),
        ([{"con_id": 1, "quantity": 0, "avg_cost": 1}], "positions[0].quantity", "non-zero"),
        ([{"con_id": 1, "quantity": 1}], "positions[0]", "give exactly one of avg_cost"),
        ([{"con_id": 1, "quantity": 1, "avg_cost": 1, "avg_price": 1}],
         "positions[0]", "give exactly one of avg_cost"),
        ([{"con_id": 1, "quantity": 1, "avg_cost": -1}], "positions[0].avg_cost", "non-negative"),
        ([{"con_id": 1, "quantity": 1, "avg_cost": 1, "side": "long"}],
         "positions[0].side", "allowed keys: account, con_id,"),
        ([{"con_id": 1, "quantity": 1, "avg_cost": 1}, {"symbol": "abc", "quantity": 2,
          "avg_cost": 1}], "positions[1]", "duplicate position in DU1 for conId 1"),
    ],
)  # fmt: skip
def test_position_errors(positions: list[dict[str, Any]], key: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(minimal(positions=positions))
    assert err.value.key == key
    assert problem in err.value.problem


def test_position_errors_with_several_accounts_and_ambiguity() -> None:
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(
            {
                "extends": "default",
                "accounts": [{"id": "DU1"}, {"id": "DU2"}],
                "positions": [{"con_id": AAPL, "quantity": 1, "avg_cost": 1}],
            }
        )
    assert err.value.key == "positions[0].account"
    assert "required with several accounts" in err.value.problem
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(
            {"extends": "default", "positions": [{"symbol": "AAPL", "quantity": 1, "avg_cost": 1}]}
        )
    assert err.value.key == "positions[0]"
    assert "is ambiguous (31 instruments: STK 265598, OPT 800000000" in err.value.problem


def test_file_errors(tmp_path: Path) -> None:
    cases: list[tuple[str, str, str]] = [
        ("s.yaml", "a: 1", "unsupported file type; use .toml or .json"),
        ("bad.toml", "seed = = 3", "invalid TOML: "),
        ("bad.json", '{"seed": ', "invalid JSON: "),
        ("list.json", "[1, 2]", "expected a table at the top, got [1, 2]"),
        ("latin.toml", "", "cannot read file: "),
    ]
    for name, text, problem in cases:
        path = tmp_path / name
        if name == "latin.toml":
            path.write_bytes(b'name = "\xff"')
        else:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(ScenarioError) as err:
            Scenario.from_file(path)
        assert str(err.value).startswith(f"{path}: {problem}"), str(err.value)
    missing = tmp_path / "missing.toml"
    with pytest.raises(ScenarioError, match=r"missing\.toml: cannot read file: No such file"):
        Scenario.from_file(missing)
