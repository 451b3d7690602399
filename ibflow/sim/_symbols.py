"""Symbol search (reqMatchingSymbols) and market rules (reqMarketRule) over the universe.

IB's search takes the first letters of a symbol, or, for longer text, a word of the security's
name; it returns at most 16 contracts, each with the derivative types that exist on it, and
allows one request per second. Here: exact symbol first, then symbols starting with the text,
then names with a word starting with it (two letters or more), in universe order; stocks,
indices and forex pairs are found, their options listed as derivatives. A second request
within a second (scaled by ``speed``, per client) is refused with 321; TWS documents the rule
but not its answer, so the code and text are the simulator's choice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._codec import Fields
from ._ids import Msg
from ._model import Instrument, SimError
from ._rules import market_rule, rules

if TYPE_CHECKING:
    from ._core import Connection
    from ._universe import Universe

MAX_MATCHES = 16
LOOKUP_INTERVAL = 1.0
_SEARCHABLE = ("STK", "IND", "CASH")


def matching_symbols(universe: Universe, pattern: str) -> list[tuple[Instrument, list[str]]]:
    """The contracts a search for ``pattern`` finds, best first, with their derivative types."""
    text = pattern.strip().upper()
    if not text:
        return []
    derivatives: dict[int, set[str]] = {}
    for inst in universe:
        if inst.under_con_id:
            derivatives.setdefault(inst.under_con_id, set()).add(inst.sec_type)
    ranked: list[tuple[int, int, Instrument]] = []
    for order, inst in enumerate(universe):
        if inst.sec_type not in _SEARCHABLE:
            continue
        symbol = inst.local_symbol.upper() if inst.sec_type == "CASH" else inst.symbol.upper()
        words = inst.long_name.upper().replace("-", " ").replace("/", " ").split()
        if symbol == text or inst.symbol.upper() == text:
            score = 0
        elif symbol.startswith(text):
            score = 1
        elif len(text) >= 2 and any(w.startswith(text) for w in words):
            score = 2
        else:
            continue
        ranked.append((score, order, inst))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [(inst, sorted(derivatives.get(inst.con_id, ()))) for _, _, inst in ranked][:MAX_MATCHES]


def symbol_samples(req_id: int, found: list[tuple[Instrument, list[str]]]) -> list[object]:
    """symbolSamples (id 79) at v178: per contract conId, symbol, secType, primaryExchange,
    currency, the derivative types (counted), description and issuerId (both since 176)."""
    out: list[object] = [int(Msg.SYMBOL_SAMPLES), req_id, len(found)]
    for inst, derived in found:
        out += [
            inst.con_id,
            inst.symbol,
            inst.sec_type,
            inst.primary_exchange or inst.exchange,
            inst.currency,
            len(derived),
            *derived,
            inst.long_name,
            "",  # issuerId: bonds only
        ]
    return out


def h_matching_symbols(c: Connection, f: Fields) -> None:
    req_id = f.int()
    pattern = f.str()
    sim = c.sim
    if sim.pacing != "off" and c.client_id is not None:
        lookups = sim.features.symbol_lookups
        now = time.monotonic()
        last = lookups.get(c.client_id)
        if last is not None and now - last < LOOKUP_INTERVAL / sim.speed:
            raise SimError(
                321,
                "Error validating request.-'bW' : cause - "
                "only one matching symbols request per second is allowed",
            )
        lookups[c.client_id] = now
    c.send(symbol_samples(req_id, matching_symbols(sim.universe, pattern)))


def h_market_rule(c: Connection, f: Fields) -> None:
    rule = f.int()
    grid = rules(c.sim.universe).get(rule)
    if grid is None:
        c.error(-1, 321, f"Error validating request.-'bV' : cause - unknown market rule id {rule}")
        return
    c.send(market_rule(rule, grid))
