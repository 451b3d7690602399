"""The contract universe: how TWS resolves the contract a client describes.

Used for reqContractDetails (every match), and for placeOrder, reqMktData and the other
requests that need exactly one instrument. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from ._codec import normalize_right
from ._model import ContractQuery, Instrument, SimError

__all__ = ["Universe"]


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
