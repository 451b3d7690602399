"""Market rules: the price increment of each price level, as reqMarketRule reports it.

Contract details list one market rule id per valid exchange (``marketRuleIds``, in the order
of ``validExchanges``); reqMarketRule turns an id into its increments, each applying from its
low edge up. The simulator's rules follow its own quoting, so a client that validates prices
with them agrees with the quotes and fills it sees: a flat increment of the contract's minimum
tick for stocks, futures, forex and indices, and for options the US penny-program grid (0.01
below 3.00, 0.05 from 3.00) that the market quotes them on.

Ids: the usual rules carry fixed ids (26 for a cent, as IB numbers its US-stock rule; the
others are the simulator's own); any other grid a scenario brings gets a stable id from its
increments.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from ._ids import Msg
from ._model import Instrument

Increments = tuple[tuple[float, float], ...]  # (low edge, increment), low edges ascending

_KNOWN_RULES: dict[Increments, int] = {
    ((0.0, 0.01),): 26,
    ((0.0, 0.01), (3.0, 0.05)): 32,
    ((0.0, 0.25),): 67,
    ((0.0, 0.00005),): 239,
    ((0.0, 0.005),): 240,
}


def increments(inst: Instrument) -> Increments:
    """The price grid the simulator quotes ``inst`` on."""
    if inst.sec_type == "OPT":
        return ((0.0, max(0.01, inst.min_tick)), (3.0, max(0.05, inst.min_tick)))
    return ((0.0, inst.min_tick),)


def rule_id(grid: Increments) -> int:
    known = _KNOWN_RULES.get(grid)
    if known is not None:
        return known
    return 1000 + zlib.crc32(repr(grid).encode()) % 9000


def market_rule_ids(inst: Instrument) -> str:
    """contractDetails' ``marketRuleIds``: the rule of ``inst`` once per valid exchange."""
    exchanges = inst.valid_exchanges or (inst.exchange,)
    return ",".join([str(rule_id(increments(inst)))] * len(exchanges))


def rules(universe: Iterable[Instrument]) -> dict[int, Increments]:
    """Every rule the universe's instruments use, by id."""
    return {rule_id(increments(i)): increments(i) for i in universe}


def increment_at(grid: Increments, price: float) -> float:
    """The increment that applies at ``price``."""
    step = grid[0][1]
    for low, inc in grid:
        if price >= low:
            step = inc
    return step


def market_rule(rule: int, grid: Increments) -> list[object]:
    """marketRule (id 93): the id, the count, then (low edge, increment) pairs."""
    out: list[object] = [int(Msg.MARKET_RULE), rule, len(grid)]
    for low, inc in grid:
        out += [float(low), float(inc)]
    return out
