"""Reading scenario data: one parser per kind of key, the key tables, and instrument entries.

Every problem becomes a :class:`ScenarioError` naming the source, the key path and what was
expected, so a typo in a scenario file reads as one clear message.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import date
from typing import Any, NoReturn

from ._codec import normalize_right
from ._instruments import FX_SESSION, future_local_symbol, occ_symbol
from ._model import SEC_TYPES, Instrument
from ._order_types import order_types_for


class ScenarioError(ValueError):
    """A scenario is invalid. ``str()`` reads ``"<source>: <key path>: <problem>"``."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


# ---------------------------------------------------------------------------------------------
# Value parsers: one per kind of key, each producing the same message style


class Ctx:
    """Where values come from, so errors can name the file."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ScenarioError(self.source, key, problem)


_Parser = Callable[[Ctx, str, object], Any]


def got(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(ctx: Ctx, key: str, value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    number = float(value)
    if not math.isfinite(number):
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    return number


def parse_float(ctx: Ctx, key: str, value: object) -> float:
    return _number(ctx, key, value, "a number")


def _positive_float(ctx: Ctx, key: str, value: object) -> float:
    number = _number(ctx, key, value, "a positive number")
    if number <= 0:
        ctx.fail(key, f"expected a positive number, got {got(value)}")
    return number


def parse_nonneg_float(ctx: Ctx, key: str, value: object) -> float:
    number = _number(ctx, key, value, "a non-negative number")
    if number < 0:
        ctx.fail(key, f"expected a non-negative number, got {got(value)}")
    return number


def _volatility(ctx: Ctx, key: str, value: object) -> float:
    expected = "an annualised volatility between 0 and 5 (0.25 = 25%)"
    number = _number(ctx, key, value, expected)
    if not 0 <= number <= 5:
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    return number


def _integer(ctx: Ctx, key: str, value: object, expected: str, minimum: int) -> int:
    # JSON has one number type, so 3.0 is accepted where an integer is meant.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    return value


def parse_positive_int(ctx: Ctx, key: str, value: object) -> int:
    return _integer(ctx, key, value, "a positive integer", 1)


def _nonneg_int(ctx: Ctx, key: str, value: object) -> int:
    return _integer(ctx, key, value, "a non-negative integer", 0)


def _seed(ctx: Ctx, key: str, value: object) -> int | None:
    if value is None:
        return None
    return _integer(ctx, key, value, "a non-negative integer", 0)


def _bool(ctx: Ctx, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        ctx.fail(key, f"expected true or false, got {got(value)}")
    return value


def parse_str(ctx: Ctx, key: str, value: object) -> str:
    if not isinstance(value, str):
        ctx.fail(key, f"expected a string, got {got(value)}")
    return value.strip()


def _nonempty_str(ctx: Ctx, key: str, value: object) -> str:
    text = parse_str(ctx, key, value)
    if not text:
        ctx.fail(key, f"expected a non-empty string, got {got(value)}")
    return text


def _symbol(ctx: Ctx, key: str, value: object) -> str:
    return _nonempty_str(ctx, key, value).upper()


def _sec_type(ctx: Ctx, key: str, value: object) -> str:
    text = parse_str(ctx, key, value).upper()
    if text not in SEC_TYPES:
        ctx.fail(key, f"expected one of {', '.join(SEC_TYPES)}, got {got(value)}")
    return text


def _currency(ctx: Ctx, key: str, value: object) -> str:
    text = parse_str(ctx, key, value).upper()
    if not re.fullmatch(r"[A-Z]{3}", text):
        ctx.fail(key, f"expected a 3-letter currency code such as 'USD', got {got(value)}")
    return text


def _date_or_blank(ctx: Ctx, key: str, value: object) -> str:
    if isinstance(value, date):  # TOML has a native date type
        return value.strftime("%Y%m%d")
    text = parse_str(ctx, key, value)
    if not text:
        return ""
    try:
        if not re.fullmatch(r"\d{8}", text):
            raise ValueError(text)
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        ctx.fail(key, f"expected a date 'yyyymmdd', got {got(value)}")
    return text


def _right(ctx: Ctx, key: str, value: object) -> str:
    text = normalize_right(parse_str(ctx, key, value))
    if text not in ("", "C", "P"):
        ctx.fail(key, f"expected 'C' or 'P' (or '' for non-options), got {got(value)}")
    return text


def _multiplier(ctx: Ctx, key: str, value: object) -> str:
    expected = "a positive number or numeric string such as '100'"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        try:
            number = float(text)
        except ValueError:
            ctx.fail(key, f"expected {expected}, got {got(value)}")
    else:
        number = _number(ctx, key, value, expected)
    if not (math.isfinite(number) and number > 0):
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    # IB sends multipliers as "100", "50", "0.1": keep integers free of a ".0".
    return str(int(number)) if number.is_integer() else repr(number)


def _str_tuple(ctx: Ctx, key: str, value: object) -> tuple[str, ...]:
    expected = "a list of strings or a comma-separated string"
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or "," in item:
            ctx.fail(key, f"expected {expected}, got {got(value)}")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


_HHMM = re.compile(r"([01]\d|2[0-3])[0-5]\d")


def _session(ctx: Ctx, key: str, value: object) -> tuple[str, str]:
    expected = "two 'HHMM' local times such as ['0930', '1600']"
    parts: list[object]
    if isinstance(value, str):
        parts = list(value.split("-"))
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    if len(parts) != 2 or not all(isinstance(p, str) and _HHMM.fullmatch(p) for p in parts):
        ctx.fail(key, f"expected {expected}, got {got(value)}")
    return (str(parts[0]), str(parts[1]))


def _time_zone(ctx: Ctx, key: str, value: object) -> str:
    text = _nonempty_str(ctx, key, value)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        ctx.fail(key, f"unknown time zone {got(value)} (use an IANA name such as 'US/Eastern')")
    return text


def _account_id(ctx: Ctx, key: str, value: object) -> str:
    text = parse_str(ctx, key, value)
    if not re.fullmatch(r"[A-Za-z0-9]+", text):
        ctx.fail(
            key,
            f"expected an account id of letters and digits such as 'DU1234567', got {got(value)}",
        )
    return text


def _any(ctx: Ctx, key: str, value: object) -> object:
    return value


_INSTRUMENT_PARSERS: dict[str, _Parser] = {
    "con_id": parse_positive_int,
    "symbol": _symbol,
    "sec_type": _sec_type,
    "exchange": _nonempty_str,
    "currency": _currency,
    "primary_exchange": parse_str,
    "local_symbol": parse_str,
    "trading_class": parse_str,
    "last_trade_date": _date_or_blank,
    "strike": parse_nonneg_float,
    "right": _right,
    "multiplier": _multiplier,
    "min_tick": _positive_float,
    "long_name": parse_str,
    "market_name": parse_str,
    "valid_exchanges": _str_tuple,
    "order_types": _str_tuple,
    "time_zone": _time_zone,
    "rth": _session,
    "eth": _session,
    "under_con_id": _nonneg_int,
    "under_symbol": parse_str,
    "under_sec_type": parse_str,
    "industry": parse_str,
    "category": parse_str,
    "subcategory": parse_str,
    "stock_type": parse_str,
    "min_size": _positive_float,
    "size_increment": _positive_float,
    "price": _positive_float,
    "volatility": _volatility,
}

_BY_ANNOTATION: dict[str, _Parser] = {
    "int": _nonneg_int,
    "float": parse_float,
    "str": parse_str,
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


INSTRUMENT_KEYS = _instrument_parsers()
ACCOUNT_KEYS: dict[str, _Parser] = {
    "id": _account_id,
    "base_currency": _currency,
    "cash": parse_float,
    "realized_pnl": parse_float,
}
POSITION_SELECTORS: dict[str, _Parser] = {
    "con_id": parse_positive_int,
    "symbol": _symbol,
    "sec_type": _sec_type,
    "currency": _currency,
    "exchange": parse_str,
    "local_symbol": parse_str,
    "last_trade_date": parse_str,
    "strike": parse_nonneg_float,
    "right": _right,
}
POSITION_KEYS: dict[str, _Parser] = {
    "account": _account_id,
    **POSITION_SELECTORS,
    "quantity": parse_float,
    "avg_cost": parse_nonneg_float,
    "avg_price": parse_nonneg_float,
    "realized_pnl": parse_float,
}
# Scalar settings of Scenario, in file order.
SETTINGS: dict[str, _Parser] = {
    "name": parse_str,
    "seed": _seed,
    "market_data_lines": parse_positive_int,
    "tick_interval": _positive_float,
    "commission_per_share": parse_nonneg_float,
    "min_commission": parse_nonneg_float,
    "max_commission_rate": parse_nonneg_float,
    "forex_commission_rate": parse_nonneg_float,
    "forex_min_commission": parse_nonneg_float,
    "future_commission": parse_nonneg_float,
    "option_commission": parse_nonneg_float,
    "option_min_commission": parse_nonneg_float,
    "fill_clip": parse_nonneg_float,
    "enforce_market_hours": _bool,
}
LISTS = ("accounts", "instruments", "positions")
TOP_KEYS = ("extends", *SETTINGS, *LISTS)


def check_keys(ctx: Ctx, path: str, table: object, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        ctx.fail(path, f"expected a table, got {got(table)}")
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            ctx.fail(where, f"unknown key; allowed keys: {', '.join(allowed)}")
    return table


def parse_list(ctx: Ctx, key: str, value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        ctx.fail(key, f"expected a list of tables, got {got(value)}")
    return list(value)


def _apply_defaults(ctx: Ctx, path: str, kw: dict[str, Any]) -> None:
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
        kw.setdefault("rth", FX_SESSION)
        kw.setdefault("eth", FX_SESSION)
    elif sec_type == "OPT":
        kw.setdefault("exchange", "SMART")
        kw.setdefault("multiplier", "100")
        expiry = need("last_trade_date", "for an option")
        right = need("right", "for an option")
        strike = need("strike", "for an option")
        kw.setdefault("local_symbol", occ_symbol(symbol, expiry, right, strike))
        kw.setdefault("trading_class", symbol)
        kw.setdefault("eth", kw.get("rth", ("0930", "1600")))  # no extended hours for options
        kw.setdefault("under_symbol", symbol)
        kw.setdefault("under_sec_type", "STK")
    elif sec_type == "FUT":
        need("exchange", "for a future")
        need("multiplier", "for a future")
        expiry = need("last_trade_date", "for a future")
        kw.setdefault("local_symbol", future_local_symbol(symbol, expiry))
        kw.setdefault("trading_class", symbol)
        kw.setdefault("under_symbol", symbol)
        kw.setdefault("under_sec_type", "IND")
    elif sec_type == "IND":
        need("exchange", "for an index")
        kw.setdefault("order_types", ())  # an index is quoted, never traded
        kw.setdefault("eth", kw.get("rth", ("0930", "1600")))
    need("exchange", "for every instrument")
    kw.setdefault("order_types", order_types_for(sec_type))
    kw.setdefault("local_symbol", symbol)
    kw.setdefault("market_name", kw.get("trading_class") or symbol)
    kw.setdefault("long_name", symbol)
    kw.setdefault("valid_exchanges", (kw["exchange"],))


def _check_instrument(ctx: Ctx, path: str, kw: Mapping[str, Any]) -> None:
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


def parse_instrument(ctx: Ctx, path: str, raw: object, *, fill_defaults: bool = True) -> Instrument:
    table = check_keys(ctx, path, raw, INSTRUMENT_KEYS)
    kw: dict[str, Any] = {}
    for key, value in table.items():
        kw[key] = INSTRUMENT_KEYS[key](ctx, f"{path}.{key}", value)
    if fill_defaults:
        _apply_defaults(ctx, path, kw)
    _check_instrument(ctx, path, kw)
    return Instrument(**kw)


def instrument_to_dict(inst: Instrument) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Instrument):
        value = getattr(inst, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
