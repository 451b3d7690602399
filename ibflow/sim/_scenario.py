"""Scenarios: the accounts, positions and contract universe a simulator starts from.

A test, a demo and a user's own bot all need the simulator to start from a known, repeatable
state. This module builds that state (the built-in default, a TOML or JSON file, or a plain dict)
and validates it up front, so a typo in a scenario file becomes one clear message naming the file
and the key instead of a confusing failure deep inside the server. It also owns `Universe`, the
contract lookup that mirrors how TWS resolves the contract a client describes.

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
import math
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

from ._codec import normalize_right
from ._model import SEC_TYPES, ContractQuery, Instrument, SimAccount, SimError, SimPosition

__all__ = [
    "BUNDLED_SCENARIOS",
    "Scenario",
    "ScenarioError",
    "Universe",
    "default_instruments",
]

#: Directory of the scenario files shipped with ibflow (``example.toml``, ``two_accounts.json``).
BUNDLED_SCENARIOS = Path(__file__).with_name("scenarios")

DEFAULT_ACCOUNT = "DU1234567"


class ScenarioError(ValueError):
    """A scenario is invalid. ``str()`` reads ``"<source>: <key path>: <problem>"``."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


# ---------------------------------------------------------------------------------------------
# Universe: contract lookup as TWS does it for reqContractDetails and placeOrder

# Older clients still name NASDAQ by its former ECN name.
_EXCHANGE_ALIASES = {"ISLAND": "NASDAQ"}


def _exchange_key(exchange: str) -> str:
    ex = exchange.strip().upper()
    return _EXCHANGE_ALIASES.get(ex, ex)


def _local_key(local_symbol: str) -> str:
    # OCC option symbols pad the root with spaces; people type one space or none.
    return "".join(local_symbol.split()).upper()


def _fits(inst: Instrument, q: ContractQuery) -> bool:
    """Whether every non-blank field of the query agrees with the instrument."""
    if q.symbol and q.symbol.strip().upper() != inst.symbol.upper():
        return False
    if q.sec_type and q.sec_type.strip().upper() != inst.sec_type:
        return False
    if q.last_trade_date:
        # "yyyymm" selects a contract month; anything after a space is a time we ignore.
        wanted = q.last_trade_date.strip().split(" ")[0].replace("-", "")
        if not inst.last_trade_date or not inst.last_trade_date.startswith(wanted):
            return False
    # The codec maps "unset" to 0.0; a stray UNSET_DOUBLE must not filter everything out.
    if q.strike and q.strike < 1e300 and not math.isclose(q.strike, inst.strike, rel_tol=1e-9):
        return False
    if q.right:
        right = normalize_right(q.right)
        if right and right != inst.right:
            return False
    if q.multiplier:
        try:
            wanted_mult = float(q.multiplier)
        except ValueError:
            return False
        if not math.isclose(wanted_mult, inst.multiplier_value):
            return False
    if q.exchange:
        ex = _exchange_key(q.exchange)
        if ex != inst.exchange.upper() and ex not in {e.upper() for e in inst.valid_exchanges}:
            return False
    if q.primary_exchange:
        own = inst.primary_exchange or inst.exchange
        if _exchange_key(q.primary_exchange) != own.upper():
            return False
    if q.currency and q.currency.strip().upper() != inst.currency.upper():
        return False
    if q.local_symbol and _local_key(q.local_symbol) != _local_key(inst.local_symbol):
        return False
    return not (q.trading_class and q.trading_class.strip().upper() != inst.trading_class.upper())


class Universe:
    """The instruments of a scenario, indexed for contract lookups.

    Results keep the scenario's instrument order, so answers (and their order) are stable.
    """

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._all: list[Instrument] = list(instruments)
        self._by_id: dict[int, Instrument] = {}
        self._by_symbol: dict[str, list[Instrument]] = {}
        self._by_local: dict[str, list[Instrument]] = {}
        for inst in self._all:
            if inst.con_id in self._by_id:
                raise ValueError(f"duplicate conId {inst.con_id} ({inst.symbol})")
            self._by_id[inst.con_id] = inst
            self._by_symbol.setdefault(inst.symbol.upper(), []).append(inst)
            self._by_local.setdefault(_local_key(inst.local_symbol), []).append(inst)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def by_con_id(self, con_id: int) -> Instrument | None:
        return self._by_id.get(con_id)

    def match(self, q: ContractQuery) -> list[Instrument]:
        """All instruments a reqContractDetails with this contract would return.

        A conId selects that instrument, unless another given field contradicts it. Otherwise
        every non-blank field filters: the symbol (case-insensitive), a ``yyyymm`` or
        ``yyyymmdd`` prefix of the last trade date, a non-zero strike, the exchange (the
        instrument's own or any of its valid exchanges, so "SMART" finds SMART-routed stocks and
        options), and so on. A query with neither conId, symbol nor localSymbol matches nothing,
        which the server answers with error 200 as TWS does.
        """
        if q.con_id:
            inst = self._by_id.get(q.con_id)
            return [inst] if inst is not None and _fits(inst, q) else []
        if q.symbol.strip():
            candidates = self._by_symbol.get(q.symbol.strip().upper(), [])
        elif q.local_symbol.strip():
            candidates = self._by_local.get(_local_key(q.local_symbol), [])
        else:
            return []
        return [inst for inst in candidates if _fits(inst, q)]

    def resolve(self, q: ContractQuery) -> Instrument:
        """The one instrument a contract describes (placeOrder, reqMktData, ...).

        Raises:
            SimError: code 200 with TWS's wording when nothing or more than one instrument
                matches.
        """
        found = self.match(q)
        if len(found) == 1:
            return found[0]
        if not found:
            raise SimError(200, "No security definition has been found for the request")
        name = q.symbol.strip() or q.local_symbol.strip()
        raise SimError(200, f"The contract description specified for {name} is ambiguous.")

    def by_name(self, name: str) -> Instrument | None:
        """Find an instrument from a short human name, e.g. for ``Simulator.push_quote("AAPL")``.

        Tries the local symbol first ("EUR.USD", "ESH7", "AAPL  270115C00230000"), then the
        symbol; when a symbol is shared (a stock and its options), the one stock, forex pair or
        index with that symbol wins. Returns None when the name is unknown or still ambiguous.
        """
        by_local = self._by_local.get(_local_key(name), [])
        if len(by_local) == 1:
            return by_local[0]
        by_symbol = self._by_symbol.get(name.strip().upper(), [])
        if len(by_symbol) == 1:
            return by_symbol[0]
        plain = [i for i in by_symbol if i.sec_type in ("STK", "CASH", "IND")]
        return plain[0] if len(plain) == 1 else None


# ---------------------------------------------------------------------------------------------
# Value parsers: one per kind of key, each producing the same message style


class _Ctx:
    """Where values come from, so errors can name the file."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ScenarioError(self.source, key, problem)


_Parser = Callable[[_Ctx, str, object], Any]


def _got(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(ctx: _Ctx, key: str, value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    number = float(value)
    if not math.isfinite(number):
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    return number


def _float(ctx: _Ctx, key: str, value: object) -> float:
    return _number(ctx, key, value, "a number")


def _positive_float(ctx: _Ctx, key: str, value: object) -> float:
    number = _number(ctx, key, value, "a positive number")
    if number <= 0:
        ctx.fail(key, f"expected a positive number, got {_got(value)}")
    return number


def _nonneg_float(ctx: _Ctx, key: str, value: object) -> float:
    number = _number(ctx, key, value, "a non-negative number")
    if number < 0:
        ctx.fail(key, f"expected a non-negative number, got {_got(value)}")
    return number


def _volatility(ctx: _Ctx, key: str, value: object) -> float:
    expected = "an annualised volatility between 0 and 5 (0.25 = 25%)"
    number = _number(ctx, key, value, expected)
    if not 0 <= number <= 5:
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    return number


def _integer(ctx: _Ctx, key: str, value: object, expected: str, minimum: int) -> int:
    # JSON has one number type, so 3.0 is accepted where an integer is meant.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    return value


def _positive_int(ctx: _Ctx, key: str, value: object) -> int:
    return _integer(ctx, key, value, "a positive integer", 1)


def _nonneg_int(ctx: _Ctx, key: str, value: object) -> int:
    return _integer(ctx, key, value, "a non-negative integer", 0)


def _seed(ctx: _Ctx, key: str, value: object) -> int | None:
    if value is None:
        return None
    return _integer(ctx, key, value, "a non-negative integer", 0)


def _bool(ctx: _Ctx, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        ctx.fail(key, f"expected true or false, got {_got(value)}")
    return value


def _str(ctx: _Ctx, key: str, value: object) -> str:
    if not isinstance(value, str):
        ctx.fail(key, f"expected a string, got {_got(value)}")
    return value.strip()


def _nonempty_str(ctx: _Ctx, key: str, value: object) -> str:
    text = _str(ctx, key, value)
    if not text:
        ctx.fail(key, f"expected a non-empty string, got {_got(value)}")
    return text


def _symbol(ctx: _Ctx, key: str, value: object) -> str:
    return _nonempty_str(ctx, key, value).upper()


def _sec_type(ctx: _Ctx, key: str, value: object) -> str:
    text = _str(ctx, key, value).upper()
    if text not in SEC_TYPES:
        ctx.fail(key, f"expected one of {', '.join(SEC_TYPES)}, got {_got(value)}")
    return text


def _currency(ctx: _Ctx, key: str, value: object) -> str:
    text = _str(ctx, key, value).upper()
    if not re.fullmatch(r"[A-Z]{3}", text):
        ctx.fail(key, f"expected a 3-letter currency code such as 'USD', got {_got(value)}")
    return text


def _date_or_blank(ctx: _Ctx, key: str, value: object) -> str:
    if isinstance(value, date):  # TOML has a native date type
        return value.strftime("%Y%m%d")
    text = _str(ctx, key, value)
    if not text:
        return ""
    try:
        if not re.fullmatch(r"\d{8}", text):
            raise ValueError(text)
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        ctx.fail(key, f"expected a date 'yyyymmdd', got {_got(value)}")
    return text


def _right(ctx: _Ctx, key: str, value: object) -> str:
    text = normalize_right(_str(ctx, key, value))
    if text not in ("", "C", "P"):
        ctx.fail(key, f"expected 'C' or 'P' (or '' for non-options), got {_got(value)}")
    return text


def _multiplier(ctx: _Ctx, key: str, value: object) -> str:
    expected = "a positive number or numeric string such as '100'"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        try:
            number = float(text)
        except ValueError:
            ctx.fail(key, f"expected {expected}, got {_got(value)}")
    else:
        number = _number(ctx, key, value, expected)
    if not (math.isfinite(number) and number > 0):
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    # IB sends multipliers as "100", "50", "0.1": keep integers free of a ".0".
    return str(int(number)) if number.is_integer() else repr(number)


def _str_tuple(ctx: _Ctx, key: str, value: object) -> tuple[str, ...]:
    expected = "a list of strings or a comma-separated string"
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or "," in item:
            ctx.fail(key, f"expected {expected}, got {_got(value)}")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


_HHMM = re.compile(r"([01]\d|2[0-3])[0-5]\d")


def _session(ctx: _Ctx, key: str, value: object) -> tuple[str, str]:
    expected = "two 'HHMM' local times such as ['0930', '1600']"
    parts: list[object]
    if isinstance(value, str):
        parts = list(value.split("-"))
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    if len(parts) != 2 or not all(isinstance(p, str) and _HHMM.fullmatch(p) for p in parts):
        ctx.fail(key, f"expected {expected}, got {_got(value)}")
    return (str(parts[0]), str(parts[1]))


def _time_zone(ctx: _Ctx, key: str, value: object) -> str:
    text = _nonempty_str(ctx, key, value)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        ctx.fail(key, f"unknown time zone {_got(value)} (use an IANA name such as 'US/Eastern')")
    return text


def _account_id(ctx: _Ctx, key: str, value: object) -> str:
    text = _str(ctx, key, value)
    if not re.fullmatch(r"[A-Za-z0-9]+", text):
        ctx.fail(
            key,
            f"expected an account id of letters and digits such as 'DU1234567', got {_got(value)}",
        )
    return text


def _any(ctx: _Ctx, key: str, value: object) -> object:
    return value


_INSTRUMENT_PARSERS: dict[str, _Parser] = {
    "con_id": _positive_int,
    "symbol": _symbol,
    "sec_type": _sec_type,
    "exchange": _nonempty_str,
    "currency": _currency,
    "primary_exchange": _str,
    "local_symbol": _str,
    "trading_class": _str,
    "last_trade_date": _date_or_blank,
    "strike": _nonneg_float,
    "right": _right,
    "multiplier": _multiplier,
    "min_tick": _positive_float,
    "long_name": _str,
    "market_name": _str,
    "valid_exchanges": _str_tuple,
    "order_types": _str_tuple,
    "time_zone": _time_zone,
    "rth": _session,
    "eth": _session,
    "under_con_id": _nonneg_int,
    "under_symbol": _str,
    "under_sec_type": _str,
    "industry": _str,
    "category": _str,
    "subcategory": _str,
    "stock_type": _str,
    "min_size": _positive_float,
    "size_increment": _positive_float,
    "price": _positive_float,
    "volatility": _volatility,
}

_BY_ANNOTATION: dict[str, _Parser] = {
    "int": _nonneg_int,
    "float": _float,
    "str": _str,
    "bool": _bool,
    "tuple[str, ...]": _str_tuple,
    "tuple[str, str]": _session,
}


def _instrument_parsers() -> dict[str, _Parser]:
    # Fields added to Instrument later still load, typed by their annotation.
    out: dict[str, _Parser] = {}
    for f in fields(Instrument):
        out[f.name] = _INSTRUMENT_PARSERS.get(f.name) or _BY_ANNOTATION.get(str(f.type), _any)
    return out


_INSTRUMENT_KEYS = _instrument_parsers()
_ACCOUNT_KEYS: dict[str, _Parser] = {
    "id": _account_id,
    "base_currency": _currency,
    "cash": _float,
    "realized_pnl": _float,
}
_POSITION_SELECTORS: dict[str, _Parser] = {
    "con_id": _positive_int,
    "symbol": _symbol,
    "sec_type": _sec_type,
    "currency": _currency,
    "exchange": _str,
    "local_symbol": _str,
    "last_trade_date": _str,
    "strike": _nonneg_float,
    "right": _right,
}
_POSITION_KEYS: dict[str, _Parser] = {
    "account": _account_id,
    **_POSITION_SELECTORS,
    "quantity": _float,
    "avg_cost": _nonneg_float,
    "avg_price": _nonneg_float,
    "realized_pnl": _float,
}
# Scalar settings of Scenario, in file order.
_SETTINGS: dict[str, _Parser] = {
    "name": _str,
    "seed": _seed,
    "market_data_lines": _positive_int,
    "tick_interval": _positive_float,
    "commission_per_share": _nonneg_float,
    "min_commission": _nonneg_float,
    "max_commission_rate": _nonneg_float,
    "forex_commission_rate": _nonneg_float,
    "forex_min_commission": _nonneg_float,
    "future_commission": _nonneg_float,
    "option_commission": _nonneg_float,
    "option_min_commission": _nonneg_float,
    "fill_clip": _nonneg_float,
    "enforce_market_hours": _bool,
}
_LISTS = ("accounts", "instruments", "positions")
_TOP_KEYS = ("extends", *_SETTINGS, *_LISTS)


def _check_keys(ctx: _Ctx, path: str, table: object, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        ctx.fail(path, f"expected a table, got {_got(table)}")
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            ctx.fail(where, f"unknown key; allowed keys: {', '.join(allowed)}")
    return table


def _list(ctx: _Ctx, key: str, value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        ctx.fail(key, f"expected a list of tables, got {_got(value)}")
    return list(value)


# ---------------------------------------------------------------------------------------------
# Instruments


_STOCK_EXCHANGES = (
    "SMART", "AMEX", "NYSE", "CBOE", "PHLX", "ISE", "CHX", "ARCA", "NASDAQ", "DRCTEDGE", "BEX",
    "BATS", "EDGEA", "BYX", "IEX", "EDGX", "PEARL", "MEMX", "PSX", "LTSE", "TPLUS1",
)  # fmt: skip
_OPTION_EXCHANGES = (
    "SMART", "AMEX", "CBOE", "PHLX", "PSE", "ISE", "BOX", "BATS", "NASDAQOM", "CBOE2", "MIAX",
    "GEMINI", "EDGX", "MERCURY", "PEARL", "EMERALD", "MEMX", "IBUSOPT",
)  # fmt: skip
_FX_SESSION = ("1715", "1700")  # IDEALPRO trades round the clock Sunday to Friday
_FUTURE_MONTH_CODES = "FGHJKMNQUVXZ"


def _occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    """The OCC option symbol IB uses as localSymbol: root padded to 6, yymmdd, C/P, strike*1000."""
    return f"{symbol:<6}{expiry[2:]}{right}{round(strike * 1000):08d}"


def _future_local_symbol(symbol: str, expiry: str) -> str:
    return f"{symbol}{_FUTURE_MONTH_CODES[int(expiry[4:6]) - 1]}{expiry[3]}"


def _apply_defaults(ctx: _Ctx, path: str, kw: dict[str, Any]) -> None:
    """Fill keys a file may leave out with what IB would report for that kind of contract."""

    def need(key: str, why: str) -> Any:
        if key not in kw or kw[key] in ("", 0, 0.0):
            ctx.fail(f"{path}.{key}", f"missing; required {why}")
        return kw[key]

    for key in ("con_id", "symbol", "sec_type"):
        need(key, "for every instrument")
    symbol: str = kw["symbol"]
    sec_type: str = kw["sec_type"]
    currency: str = kw.setdefault("currency", "USD")
    if sec_type == "STK":
        exchange = kw.setdefault("exchange", "SMART")
        if exchange != "SMART":
            kw.setdefault("primary_exchange", exchange)
        primary = need("primary_exchange", "for a SMART-routed stock (its listing exchange)")
        kw.setdefault("valid_exchanges", tuple(dict.fromkeys((exchange, primary))))
        kw.setdefault("trading_class", symbol)
        kw.setdefault("stock_type", "COMMON")
    elif sec_type == "CASH":
        pair = f"{symbol}.{currency}"
        kw.setdefault("exchange", "IDEALPRO")
        kw.setdefault("local_symbol", pair)
        kw.setdefault("trading_class", pair)
        kw.setdefault("long_name", pair)
        kw.setdefault("min_tick", 0.005 if currency == "JPY" else 0.00005)
        kw.setdefault("rth", _FX_SESSION)
        kw.setdefault("eth", _FX_SESSION)
    elif sec_type == "OPT":
        kw.setdefault("exchange", "SMART")
        kw.setdefault("multiplier", "100")
        expiry = need("last_trade_date", "for an option")
        right = need("right", "for an option")
        strike = need("strike", "for an option")
        kw.setdefault("local_symbol", _occ_symbol(symbol, expiry, right, strike))
        kw.setdefault("trading_class", symbol)
        kw.setdefault("eth", kw.get("rth", ("0930", "1600")))  # no extended hours for options
        kw.setdefault("under_symbol", symbol)
        kw.setdefault("under_sec_type", "STK")
    elif sec_type == "FUT":
        need("exchange", "for a future")
        need("multiplier", "for a future")
        expiry = need("last_trade_date", "for a future")
        kw.setdefault("local_symbol", _future_local_symbol(symbol, expiry))
        kw.setdefault("trading_class", symbol)
        kw.setdefault("under_symbol", symbol)
        kw.setdefault("under_sec_type", "IND")
    elif sec_type == "IND":
        need("exchange", "for an index")
        kw.setdefault("order_types", ())  # an index is quoted, never traded
        kw.setdefault("eth", kw.get("rth", ("0930", "1600")))
    need("exchange", "for every instrument")
    kw.setdefault("local_symbol", symbol)
    kw.setdefault("market_name", kw.get("trading_class") or symbol)
    kw.setdefault("long_name", symbol)
    kw.setdefault("valid_exchanges", (kw["exchange"],))


def _check_instrument(ctx: _Ctx, path: str, kw: Mapping[str, Any]) -> None:
    """Rules that tie several fields together."""
    sec_type = kw.get("sec_type", "")
    if sec_type == "OPT":
        for key in ("last_trade_date", "right", "strike", "multiplier"):
            if not kw.get(key):
                ctx.fail(f"{path}.{key}", "missing; required for an option")
    elif kw.get("right"):
        ctx.fail(f"{path}.right", f"only options have a right, this is a {sec_type}")
    if sec_type == "FUT":
        for key in ("last_trade_date", "multiplier"):
            if not kw.get(key):
                ctx.fail(f"{path}.{key}", "missing; required for a future")


def _parse_instrument(
    ctx: _Ctx, path: str, raw: object, *, fill_defaults: bool = True
) -> Instrument:
    table = _check_keys(ctx, path, raw, _INSTRUMENT_KEYS)
    kw: dict[str, Any] = {}
    for key, value in table.items():
        kw[key] = _INSTRUMENT_KEYS[key](ctx, f"{path}.{key}", value)
    if fill_defaults:
        _apply_defaults(ctx, path, kw)
    _check_instrument(ctx, path, kw)
    return Instrument(**kw)


def _instrument_to_dict(inst: Instrument) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Instrument):
        value = getattr(inst, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


# ---------------------------------------------------------------------------------------------
# The default universe


def _stock(
    con_id: int,
    symbol: str,
    primary: str,
    long_name: str,
    sector: tuple[str, str, str],
    price: float,
    volatility: float,
    *,
    etf: bool = False,
) -> Instrument:
    # IB reports NASDAQ-listed names with the "NMS" trading class.
    trading_class = "NMS" if primary == "NASDAQ" else symbol
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type="STK",
        exchange="SMART",
        currency="USD",
        primary_exchange=primary,
        local_symbol=symbol,
        trading_class=trading_class,
        market_name=trading_class,
        long_name=long_name,
        valid_exchanges=_STOCK_EXCHANGES,
        industry=sector[0],
        category=sector[1],
        subcategory=sector[2],
        stock_type="ETF" if etf else "COMMON",
        price=price,
        volatility=volatility,
    )


def _forex(
    con_id: int, base: str, quote: str, long_name: str, price: float, volatility: float
) -> Instrument:
    pair = f"{base}.{quote}"
    return Instrument(
        con_id=con_id,
        symbol=base,
        sec_type="CASH",
        exchange="IDEALPRO",
        currency=quote,
        local_symbol=pair,
        trading_class=pair,
        market_name=pair,
        long_name=long_name,
        valid_exchanges=("IDEALPRO",),
        min_tick=0.005 if quote == "JPY" else 0.00005,
        rth=_FX_SESSION,
        eth=_FX_SESSION,
        price=price,
        volatility=volatility,
    )


# Option starting prices come from Black-Scholes as of this fixed date, so they are plausible
# relative to the underlying and never depend on when the simulator runs.
_PRICING_DATE = date(2026, 11, 20)
AAPL_OPTION_EXPIRIES = ("20270115", "20270219", "20270319")
AAPL_OPTION_STRIKES = (210.0, 220.0, 230.0, 240.0, 250.0)
OPTION_CON_ID_BASE = 800_000_000


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _option_start(
    spot: float, strike: float, expiry: str, right: str, vol: float
) -> tuple[float, float]:
    """(price, volatility of the option's own price path) from Black-Scholes with zero rates."""
    years = (date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:])) - _PRICING_DATE).days / 365
    d1 = (math.log(spot / strike) + 0.5 * vol * vol * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    if right == "C":
        price = spot * _norm_cdf(d1) - strike * _norm_cdf(d2)
        delta = _norm_cdf(d1)
    else:
        price = strike * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
        delta = _norm_cdf(d1) - 1.0
    price = max(round(price, 2), 0.05)
    # An option's price moves |delta| * S / C times as much as its underlying, in relative terms.
    leverage = abs(delta) * spot / price
    return price, round(min(max(leverage * vol, 0.3), 2.0), 2)


def _aapl_options(under: Instrument) -> list[Instrument]:
    out: list[Instrument] = []
    for expiry in AAPL_OPTION_EXPIRIES:
        for strike in AAPL_OPTION_STRIKES:
            for right in ("C", "P"):
                price, vol = _option_start(under.price, strike, expiry, right, under.volatility)
                out.append(
                    Instrument(
                        con_id=OPTION_CON_ID_BASE + len(out),
                        symbol="AAPL",
                        sec_type="OPT",
                        exchange="SMART",
                        currency="USD",
                        local_symbol=_occ_symbol("AAPL", expiry, right, strike),
                        trading_class="AAPL",
                        market_name="AAPL",
                        last_trade_date=expiry,
                        strike=strike,
                        right=right,
                        multiplier="100",
                        long_name=under.long_name,
                        valid_exchanges=_OPTION_EXCHANGES,
                        eth=("0930", "1600"),
                        under_con_id=under.con_id,
                        under_symbol="AAPL",
                        under_sec_type="STK",
                        industry=under.industry,
                        category=under.category,
                        subcategory=under.subcategory,
                        price=price,
                        volatility=vol,
                    )
                )
    return out


def default_instruments() -> list[Instrument]:
    """The built-in universe: 14 US stocks/ETFs, 4 forex pairs, ES, SPX and 30 AAPL options.

    Real IB conIds where known; the future and the options carry invented but fixed ones
    (options are ``OPTION_CON_ID_BASE + i`` in expiry, strike, call-then-put order).
    """
    tech = ("Technology", "Computers", "Computers")
    aapl = _stock(265598, "AAPL", "NASDAQ", "APPLE INC", tech, 230.00, 0.28)
    stocks = [
        aapl,
        _stock(272093, "MSFT", "NASDAQ", "MICROSOFT CORP",
               ("Technology", "Software", "Software"), 420.00, 0.25),
        _stock(3691937, "AMZN", "NASDAQ", "AMAZON.COM INC",
               ("Communications", "Internet", "E-Commerce/Products"), 190.00, 0.32),
        _stock(208813719, "GOOGL", "NASDAQ", "ALPHABET INC-CL A",
               ("Communications", "Internet", "Web Portals/ISP"), 170.00, 0.30),
        _stock(76792991, "TSLA", "NASDAQ", "TESLA INC",
               ("Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks"),
               250.00, 0.55),
        _stock(4815747, "NVDA", "NASDAQ", "NVIDIA CORP",
               ("Technology", "Semiconductors", "Electronic Compo-Semicon"), 130.00, 0.50),
        _stock(107113386, "META", "NASDAQ", "META PLATFORMS INC-CLASS A",
               ("Communications", "Internet", "Internet Content-Entmnt"), 560.00, 0.38),
        _stock(1520593, "JPM", "NYSE", "JPMORGAN CHASE & CO",
               ("Financial", "Banks", "Money Center Banks"), 220.00, 0.24),
        _stock(13977, "XOM", "NYSE", "EXXON MOBIL CORP",
               ("Energy", "Oil&Gas", "Oil Comp-Integrated"), 115.00, 0.26),
        _stock(8894, "KO", "NYSE", "COCA-COLA CO/THE",
               ("Consumer, Non-cyclical", "Beverages", "Beverages-Non-alcoholic"), 68.00, 0.15),
        _stock(756733, "SPY", "ARCA", "SPDR S&P 500 ETF TRUST",
               ("Funds", "Equity Fund", "Large Cap"), 570.00, 0.16, etf=True),
        _stock(320227571, "QQQ", "NASDAQ", "INVESCO QQQ TRUST SERIES 1",
               ("Funds", "Equity Fund", "Large Cap"), 490.00, 0.20, etf=True),
        _stock(9579970, "IWM", "ARCA", "ISHARES RUSSELL 2000 ETF",
               ("Funds", "Equity Fund", "Small Cap"), 220.00, 0.22, etf=True),
        _stock(15547841, "TLT", "NASDAQ", "ISHARES 20+ YEAR TREASURY BD",
               ("Funds", "Debt Fund", "Government"), 92.00, 0.15, etf=True),
    ]  # fmt: skip
    forex = [
        _forex(12087792, "EUR", "USD", "European Monetary Union Euro", 1.0850, 0.07),
        _forex(12087797, "GBP", "USD", "British pound", 1.2700, 0.08),
        _forex(15016059, "USD", "JPY", "US dollar", 150.00, 0.10),
        _forex(14433401, "AUD", "USD", "Australian dollar", 0.6600, 0.10),
    ]
    es = Instrument(
        con_id=700_000_001,
        symbol="ES",
        sec_type="FUT",
        exchange="CME",
        currency="USD",
        local_symbol=_future_local_symbol("ES", "20270319"),
        trading_class="ES",
        market_name="ES",
        last_trade_date="20270319",
        multiplier="50",
        min_tick=0.25,
        long_name="E-mini S&P 500",
        valid_exchanges=("CME", "QBALGO"),
        time_zone="US/Central",
        rth=("0830", "1500"),
        eth=("1700", "1600"),  # Globex: Sunday to Friday, a one-hour break each day
        under_con_id=11004968,
        under_symbol="ES",
        under_sec_type="IND",
        price=5800.00,
        volatility=0.18,
    )
    spx = Instrument(
        con_id=416904,
        symbol="SPX",
        sec_type="IND",
        exchange="CBOE",
        currency="USD",
        local_symbol="SPX",
        market_name="SPX",
        long_name="S&P 500 Stock Index",
        valid_exchanges=("CBOE",),
        order_types=(),
        time_zone="US/Central",
        rth=("0830", "1500"),
        eth=("0830", "1515"),
        price=5730.00,
        volatility=0.17,
    )
    return [*stocks, *forex, es, spx, *_aapl_options(aapl)]


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
        call = by_symbol[_occ_symbol("AAPL", "20270115", "C", 230.0)]
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
            raise ScenarioError(source, "", f"expected a table at the top, got {_got(data)}")
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
        """Build a scenario from the same structure a file holds (see the module docstring).

        Raises:
            ScenarioError: naming ``source`` and the key path of the first problem found.
        """
        ctx = _Ctx(source)
        data = _check_keys(ctx, "", data, _TOP_KEYS)
        base = cls._base(ctx, data.get("extends", ""))

        settings: dict[str, Any] = {}
        for key, parse in _SETTINGS.items():
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
                for i, raw in enumerate(_list(ctx, "positions", data["positions"]))
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
    def _base(ctx: _Ctx, extends: object) -> Scenario | None:
        name = _str(ctx, "extends", extends).lower()
        if name in ("", "none"):
            return None
        if name == "default":
            return Scenario.default()
        ctx.fail("extends", f"expected 'default' or 'none', got {_got(extends)}")

    @staticmethod
    def _load_instruments(
        ctx: _Ctx, data: Mapping[str, Any], base: Scenario | None
    ) -> list[Instrument]:
        base_raw = {i.con_id: _instrument_to_dict(i) for i in (base.instruments if base else [])}
        replaced: dict[int, Instrument] = {}
        added: list[Instrument] = []
        first_seen: dict[int, int] = {}
        entries = _list(ctx, "instruments", data["instruments"]) if "instruments" in data else []
        for i, raw in enumerate(entries):
            path = f"instruments[{i}]"
            table = _check_keys(ctx, path, raw, _INSTRUMENT_KEYS)
            if "con_id" not in table:
                ctx.fail(f"{path}.con_id", "missing; required for every instrument")
            con_id = _positive_int(ctx, f"{path}.con_id", table["con_id"])
            if con_id in first_seen:
                ctx.fail(
                    f"{path}.con_id",
                    f"duplicate conId {con_id} (also instruments[{first_seen[con_id]}])",
                )
            first_seen[con_id] = i
            if con_id in base_raw:
                replaced[con_id] = _parse_instrument(ctx, path, {**base_raw[con_id], **table})
            else:
                added.append(_parse_instrument(ctx, path, table))
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
        ctx: _Ctx, data: Mapping[str, Any], base: Scenario | None
    ) -> list[SimAccount]:
        if "accounts" not in data:
            if base is None:
                ctx.fail("accounts", "missing; a scenario needs at least one account")
            return [replace(a) for a in base.accounts]
        accounts: list[SimAccount] = []
        entries = _list(ctx, "accounts", data["accounts"])
        if not entries:
            ctx.fail("accounts", "a scenario needs at least one account")
        for i, raw in enumerate(entries):
            path = f"accounts[{i}]"
            table = _check_keys(ctx, path, raw, _ACCOUNT_KEYS)
            if "id" not in table:
                ctx.fail(f"{path}.id", "missing; every account needs an id such as 'DU1234567'")
            kw = {key: _ACCOUNT_KEYS[key](ctx, f"{path}.{key}", v) for key, v in table.items()}
            account_id = kw.pop("id")
            if any(a.account_id == account_id for a in accounts):
                ctx.fail(f"{path}.id", f"duplicate account {account_id!r}")
            accounts.append(SimAccount(account_id=account_id, **kw))
        return accounts

    @staticmethod
    def _load_position(
        ctx: _Ctx, path: str, raw: object, universe: Universe, accounts: Sequence[SimAccount]
    ) -> SimPosition:
        table = _check_keys(ctx, path, raw, _POSITION_KEYS)
        kw = {key: _POSITION_KEYS[key](ctx, f"{path}.{key}", v) for key, v in table.items()}
        ids = [a.account_id for a in accounts]
        account = kw.get("account")
        if account is None:
            if len(ids) != 1:
                ctx.fail(f"{path}.account", f"missing; required with several accounts ({ids})")
            account = ids[0]
        elif account not in ids:
            ctx.fail(f"{path}.account", f"unknown account {account!r}; accounts: {ids}")

        selectors = {k: v for k, v in kw.items() if k in _POSITION_SELECTORS}
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
        ctx = _Ctx("scenario")
        for key, parse in _SETTINGS.items():
            parse(ctx, key, getattr(self, key))
        if not self.accounts:
            ctx.fail("accounts", "a scenario needs at least one account")
        if not self.instruments:
            ctx.fail("instruments", "a scenario needs at least one instrument")
        ids: set[str] = set()
        for i, acct in enumerate(self.accounts):
            for key, parse in _ACCOUNT_KEYS.items():
                attr = "account_id" if key == "id" else key
                parse(ctx, f"accounts[{i}].{key}", getattr(acct, attr))
            if acct.account_id in ids:
                ctx.fail(f"accounts[{i}].id", f"duplicate account {acct.account_id!r}")
            ids.add(acct.account_id)
        con_ids: dict[int, int] = {}
        for i, inst in enumerate(self.instruments):
            path = f"instruments[{i}]"
            _parse_instrument(ctx, path, _instrument_to_dict(inst), fill_defaults=False)
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
            if _float(ctx, f"{path}.quantity", pos.quantity) == 0:
                ctx.fail(f"{path}.quantity", "expected a non-zero number, got 0")
            _nonneg_float(ctx, f"{path}.avg_cost", pos.avg_cost)
            _float(ctx, f"{path}.realized_pnl", pos.realized_pnl)

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
        for key in _SETTINGS:
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
        out["instruments"] = [_instrument_to_dict(i) for i in self.instruments]
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
            if key in _LISTS and value:
                for row in value:
                    tables += ["", f"[[{key}]]"]
                    tables += [f"{k} = {_toml_value(v)}" for k, v in row.items()]
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines + tables) + "\n"
