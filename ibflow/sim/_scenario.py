"""Scenarios: the accounts, positions and contract universe a simulator starts from.

A test, a demo and a user's own bot all need the simulator to start from a known, repeatable
state. This module builds that state (the built-in default, a TOML or JSON file, or a plain dict)
and validates it up front, so a typo in a scenario file becomes one clear message naming the file
and the key instead of a confusing failure deep inside the server. The key parsers live in
``_scenario_keys``, the built-in instruments in ``_instruments``.

Pure: no sockets, no asyncio, and no I/O except reading the scenario file itself.

Scenario files (see ``scenarios/example.toml`` for every key, documented):

* top-level settings (``name``, ``seed``, ``market_data_lines``, ``tick_interval``, commission
  rates, ``fill_clip``, ``enforce_market_hours``);
* ``accounts``, ``instruments`` and ``positions``, each a list of tables;
* ``extends = "default"`` starts from the built-in default scenario: instruments are merged by
  ``con_id`` (a partial entry overrides fields of a default instrument, a new ``con_id`` adds
  one), while ``accounts`` and ``positions``, when present, replace the default lists. Default
  positions are kept when ``positions`` is absent, as long as their account still exists.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

from ._instruments import default_instruments, occ_symbol
from ._model import ContractQuery, Instrument, SimAccount, SimPosition
from ._scenario_keys import (
    ACCOUNT_KEYS,
    INSTRUMENT_KEYS,
    LISTS,
    POSITION_KEYS,
    POSITION_SELECTORS,
    SETTINGS,
    TOP_KEYS,
    Ctx,
    ScenarioError,
    check_keys,
    got,
    instrument_to_dict,
    parse_float,
    parse_instrument,
    parse_list,
    parse_nonneg_float,
    parse_positive_int,
    parse_str,
)
from ._universe import Universe

__all__ = ["BUNDLED_SCENARIOS", "Scenario", "ScenarioError"]

#: Directory of the scenario files shipped with ibflow (``example.toml``, ``two_accounts.json``).
BUNDLED_SCENARIOS = Path(__file__).with_name("scenarios")

DEFAULT_ACCOUNT = "DU1234567"


# ---------------------------------------------------------------------------------------------
# Scenario


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


@dataclass
class Scenario:
    """Everything the simulator starts from: accounts, universe, positions and settings.

    Build one with `Scenario.default`, `Scenario.from_file` (``.toml`` / ``.json``),
    `Scenario.from_dict`, or directly; the constructor validates and raises `ScenarioError`.
    Accounts and positions are mutable records the broker updates, so give each simulator its
    own `copy`.

    Position ``avg_cost`` is per contract with the multiplier included, as IB reports it: a stock
    bought at 180.00 has avg_cost 180.0, an option bought at 5.20 (multiplier 100) 520.0.
    """

    accounts: list[SimAccount]
    instruments: list[Instrument]
    positions: list[SimPosition] = field(default_factory=list)
    name: str = ""
    seed: int | None = None  # overrides Simulator(seed=) only when set
    market_data_lines: int = 100  # concurrent reqMktData lines; one more → error 101
    tick_interval: float = 0.25  # seconds between streamed quote updates, before `speed`
    # Commissions, IB-tiered-like. Stocks/ETFs: per share, min per order, max share of value.
    commission_per_share: float = 0.005
    min_commission: float = 1.0
    max_commission_rate: float = 0.01
    forex_commission_rate: float = 0.00002  # 0.2 basis points of the trade value
    forex_min_commission: float = 2.0
    future_commission: float = 0.85  # per contract
    option_commission: float = 0.65  # per contract
    option_min_commission: float = 1.0
    fill_clip: float = 0.0  # > 0: fill at most this many units per match (partial fills)
    enforce_market_hours: bool = False  # reject/hold orders outside the trading session

    def __post_init__(self) -> None:
        self.validate()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def default(cls) -> Scenario:
        """The built-in scenario: paper account DU1234567, USD 1,000,000 cash, four positions."""
        instruments = default_instruments()
        by_symbol = {i.local_symbol: i for i in instruments}
        call = by_symbol[occ_symbol("AAPL", "20270115", "C", 230.0)]
        return cls(
            name="default",
            accounts=[SimAccount(DEFAULT_ACCOUNT, "USD", 1_000_000.0)],
            instruments=instruments,
            positions=[
                SimPosition(DEFAULT_ACCOUNT, by_symbol["AAPL"], 100.0, 180.0),
                SimPosition(DEFAULT_ACCOUNT, by_symbol["MSFT"], 50.0, 400.0),
                SimPosition(DEFAULT_ACCOUNT, by_symbol["SPY"], 20.0, 500.0),
                SimPosition(DEFAULT_ACCOUNT, call, 2.0, 1250.0),  # bought at 12.50 x 100
            ],
        )

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> Scenario:
        """Load a ``.toml`` or ``.json`` scenario file.

        Raises:
            ScenarioError: unreadable file, unsupported suffix, syntax error or invalid content;
                the message starts with the path.
        """
        p = Path(path)
        source = str(path)
        suffix = p.suffix.lower()
        if suffix not in (".toml", ".json"):
            raise ScenarioError(source, "", "unsupported file type; use .toml or .json")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ScenarioError(source, "", f"cannot read file: {reason}") from None
        data: object
        try:
            data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ScenarioError(source, "", f"invalid {suffix[1:].upper()}: {exc}") from None
        if not isinstance(data, Mapping):
            raise ScenarioError(source, "", f"expected a table at the top, got {got(data)}")
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
        """Build a scenario from the same structure a file holds (see the module docstring).

        Raises:
            ScenarioError: naming ``source`` and the key path of the first problem found.
        """
        ctx = Ctx(source)
        data = check_keys(ctx, "", data, TOP_KEYS)
        base = cls._base(ctx, data.get("extends", ""))

        settings: dict[str, Any] = {}
        for key, parse in SETTINGS.items():
            if key in data:
                settings[key] = parse(ctx, key, data[key])
            elif base is not None:
                settings[key] = getattr(base, key)

        instruments = cls._load_instruments(ctx, data, base)
        universe = Universe(instruments)
        accounts = cls._load_accounts(ctx, data, base)
        known = {a.account_id for a in accounts}
        if "positions" in data:
            positions = [
                cls._load_position(ctx, f"positions[{i}]", raw, universe, accounts)
                for i, raw in enumerate(parse_list(ctx, "positions", data["positions"]))
            ]
        elif base is not None:
            positions = []
            for pos in base.positions:
                if pos.account in known:
                    inst = universe.by_con_id(pos.instrument.con_id)
                    assert inst is not None  # default instruments are never removed
                    positions.append(replace(pos, instrument=inst))
        else:
            positions = []
        seen: dict[tuple[str, int], int] = {}
        for i, pos in enumerate(positions):
            pair = (pos.account, pos.instrument.con_id)
            if pair in seen:
                ctx.fail(
                    f"positions[{i}]",
                    f"duplicate position in {pos.account} for conId "
                    f"{pair[1]} (also positions[{seen[pair]}])",
                )
            seen[pair] = i
        try:
            return cls(accounts=accounts, instruments=instruments, positions=positions, **settings)
        except ScenarioError as exc:  # rules only the whole scenario can check
            raise ScenarioError(source, exc.key, exc.problem) from None

    @staticmethod
    def _base(ctx: Ctx, extends: object) -> Scenario | None:
        name = parse_str(ctx, "extends", extends).lower()
        if name in ("", "none"):
            return None
        if name == "default":
            return Scenario.default()
        ctx.fail("extends", f"expected 'default' or 'none', got {got(extends)}")

    @staticmethod
    def _load_instruments(
        ctx: Ctx, data: Mapping[str, Any], base: Scenario | None
    ) -> list[Instrument]:
        base_raw = {i.con_id: instrument_to_dict(i) for i in (base.instruments if base else [])}
        replaced: dict[int, Instrument] = {}
        added: list[Instrument] = []
        first_seen: dict[int, int] = {}
        entries = (
            parse_list(ctx, "instruments", data["instruments"]) if "instruments" in data else []
        )
        for i, raw in enumerate(entries):
            path = f"instruments[{i}]"
            table = check_keys(ctx, path, raw, INSTRUMENT_KEYS)
            if "con_id" not in table:
                ctx.fail(f"{path}.con_id", "missing; required for every instrument")
            con_id = parse_positive_int(ctx, f"{path}.con_id", table["con_id"])
            if con_id in first_seen:
                ctx.fail(
                    f"{path}.con_id",
                    f"duplicate conId {con_id} (also instruments[{first_seen[con_id]}])",
                )
            first_seen[con_id] = i
            if con_id in base_raw:
                replaced[con_id] = parse_instrument(ctx, path, {**base_raw[con_id], **table})
            else:
                added.append(parse_instrument(ctx, path, table))
        if base is None and not added:
            ctx.fail(
                "instruments",
                "missing; a scenario needs at least one instrument (or extends = 'default')",
            )
        merged = [replaced.get(i.con_id, i) for i in (base.instruments if base else [])]
        instruments = merged + added
        # An option names its underlying by conId; find it when the file only gave the symbol.
        stocks = {(i.symbol, i.currency): i.con_id for i in instruments if i.sec_type == "STK"}
        for inst in added:
            if inst.sec_type == "OPT" and not inst.under_con_id:
                inst.under_con_id = stocks.get((inst.under_symbol, inst.currency), 0)
        return instruments

    @staticmethod
    def _load_accounts(
        ctx: Ctx, data: Mapping[str, Any], base: Scenario | None
    ) -> list[SimAccount]:
        if "accounts" not in data:
            if base is None:
                ctx.fail("accounts", "missing; a scenario needs at least one account")
            return [replace(a) for a in base.accounts]
        accounts: list[SimAccount] = []
        entries = parse_list(ctx, "accounts", data["accounts"])
        if not entries:
            ctx.fail("accounts", "a scenario needs at least one account")
        for i, raw in enumerate(entries):
            path = f"accounts[{i}]"
            table = check_keys(ctx, path, raw, ACCOUNT_KEYS)
            if "id" not in table:
                ctx.fail(f"{path}.id", "missing; every account needs an id such as 'DU1234567'")
            kw = {key: ACCOUNT_KEYS[key](ctx, f"{path}.{key}", v) for key, v in table.items()}
            account_id = kw.pop("id")
            if any(a.account_id == account_id for a in accounts):
                ctx.fail(f"{path}.id", f"duplicate account {account_id!r}")
            accounts.append(SimAccount(account_id=account_id, **kw))
        return accounts

    @staticmethod
    def _load_position(
        ctx: Ctx, path: str, raw: object, universe: Universe, accounts: Sequence[SimAccount]
    ) -> SimPosition:
        table = check_keys(ctx, path, raw, POSITION_KEYS)
        kw = {key: POSITION_KEYS[key](ctx, f"{path}.{key}", v) for key, v in table.items()}
        ids = [a.account_id for a in accounts]
        account = kw.get("account")
        if account is None:
            if len(ids) != 1:
                ctx.fail(f"{path}.account", f"missing; required with several accounts ({ids})")
            account = ids[0]
        elif account not in ids:
            ctx.fail(f"{path}.account", f"unknown account {account!r}; accounts: {ids}")

        selectors = {k: v for k, v in kw.items() if k in POSITION_SELECTORS}
        if not any(k in selectors for k in ("con_id", "symbol", "local_symbol")):
            ctx.fail(path, "missing instrument; give con_id, local_symbol or symbol")
        found = universe.match(ContractQuery(**selectors))
        described = ", ".join(f"{k}={v!r}" for k, v in selectors.items())
        if not found:
            ctx.fail(path, f"no instrument matches {described}")
        if len(found) > 1:
            listed = ", ".join(f"{i.sec_type} {i.con_id}" for i in found[:5])
            more = ", ..." if len(found) > 5 else ""
            ctx.fail(
                path,
                f"{described} is ambiguous ({len(found)} instruments: {listed}{more});"
                " add con_id, sec_type or local_symbol",
            )
        inst = found[0]

        if "quantity" not in kw:
            ctx.fail(f"{path}.quantity", "missing; required for every position")
        if kw["quantity"] == 0:
            ctx.fail(f"{path}.quantity", "expected a non-zero number, got 0")
        if ("avg_cost" in kw) == ("avg_price" in kw):
            ctx.fail(
                path,
                "give exactly one of avg_cost (per contract, multiplier included) "
                "or avg_price (per unit)",
            )
        avg_cost = kw.get("avg_cost", kw.get("avg_price", 0.0) * inst.multiplier_value)
        return SimPosition(account, inst, kw["quantity"], avg_cost, kw.get("realized_pnl", 0.0))

    # -- checks and export ----------------------------------------------------------------

    def validate(self) -> None:
        """Check the whole scenario; the constructor calls this.

        Raises:
            ScenarioError: with source "scenario" and the key path of the first problem.
        """
        ctx = Ctx("scenario")
        for key, parse in SETTINGS.items():
            parse(ctx, key, getattr(self, key))
        if not self.accounts:
            ctx.fail("accounts", "a scenario needs at least one account")
        if not self.instruments:
            ctx.fail("instruments", "a scenario needs at least one instrument")
        ids: set[str] = set()
        for i, acct in enumerate(self.accounts):
            for key, parse in ACCOUNT_KEYS.items():
                attr = "account_id" if key == "id" else key
                parse(ctx, f"accounts[{i}].{key}", getattr(acct, attr))
            if acct.account_id in ids:
                ctx.fail(f"accounts[{i}].id", f"duplicate account {acct.account_id!r}")
            ids.add(acct.account_id)
        con_ids: dict[int, int] = {}
        for i, inst in enumerate(self.instruments):
            path = f"instruments[{i}]"
            parse_instrument(ctx, path, instrument_to_dict(inst), fill_defaults=False)
            if inst.con_id in con_ids:
                ctx.fail(
                    f"{path}.con_id",
                    f"duplicate conId {inst.con_id} (also instruments[{con_ids[inst.con_id]}])",
                )
            con_ids[inst.con_id] = i
        for i, pos in enumerate(self.positions):
            path = f"positions[{i}]"
            if pos.account not in ids:
                ctx.fail(f"{path}.account", f"unknown account {pos.account!r}")
            if pos.instrument.con_id not in con_ids:
                ctx.fail(f"{path}.con_id", f"conId {pos.instrument.con_id} is not an instrument")
            if parse_float(ctx, f"{path}.quantity", pos.quantity) == 0:
                ctx.fail(f"{path}.quantity", "expected a non-zero number, got 0")
            parse_nonneg_float(ctx, f"{path}.avg_cost", pos.avg_cost)
            parse_float(ctx, f"{path}.realized_pnl", pos.realized_pnl)

    def universe(self) -> Universe:
        return Universe(self.instruments)

    @property
    def account_ids(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    def copy(self) -> Scenario:
        """A deep copy, so a simulator can mutate accounts and positions freely."""
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """A complete, self-contained structure that `from_dict` turns back into an equal scenario.

        Plain JSON types only (lists, not tuples); ``seed`` is left out when unset.
        """
        out: dict[str, Any] = {}
        for key in SETTINGS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["accounts"] = []
        for acct in self.accounts:
            entry: dict[str, Any] = {
                "id": acct.account_id,
                "base_currency": acct.base_currency,
                "cash": acct.cash,
            }
            if acct.realized_pnl:
                entry["realized_pnl"] = acct.realized_pnl
            out["accounts"].append(entry)
        out["instruments"] = [instrument_to_dict(i) for i in self.instruments]
        out["positions"] = []
        for pos in self.positions:
            entry = {
                "account": pos.account,
                "con_id": pos.instrument.con_id,
                "quantity": pos.quantity,
                "avg_cost": pos.avg_cost,
            }
            if pos.realized_pnl:
                entry["realized_pnl"] = pos.realized_pnl
            out["positions"].append(entry)
        return out

    def to_toml(self) -> str:
        """The scenario as a TOML document that `from_file` loads back into an equal scenario."""
        data = self.to_dict()
        lines = ["# ibflow simulator scenario (written by Scenario.to_toml)", ""]
        tables: list[str] = []
        for key, value in data.items():
            if key in LISTS and value:
                for row in value:
                    tables += ["", f"[[{key}]]"]
                    tables += [f"{k} = {_toml_value(v)}" for k, v in row.items()]
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines + tables) + "\n"
