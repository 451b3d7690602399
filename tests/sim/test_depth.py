"""The depth book and the TWS operations that keep a client's copy of it in step."""

from __future__ import annotations

import itertools
import random

import pytest

from ibflow.sim import Scenario
from ibflow.sim._depth import ASK, BID, DELETE, INSERT, UPDATE, Row, book_side, diff_side
from ibflow.sim._model import QuoteState


def apply(rows: list[Row], ops: list[tuple[int, int, Row]], capacity: int) -> list[Row]:
    """A client's copy of one side, updated with IB's meaning of each operation."""
    out = list(rows)
    for op, pos, row in ops:
        if op == INSERT:
            assert pos <= len(out)
            out.insert(pos, row)
        elif op == UPDATE:
            out[pos] = row
        else:
            del out[pos]
        assert len(out) <= capacity
    return out


def side(rng: random.Random, capacity: int) -> list[Row]:
    prices = sorted(rng.sample(range(100, 115), rng.randint(0, capacity)), reverse=True)
    return [Row(p / 100, rng.randint(1, 3) * 100.0) for p in prices]


def test_operations_turn_any_side_into_any_other() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        capacity = rng.randint(1, 8)

        old, new = side(rng, capacity), side(rng, capacity)
        assert apply(old, diff_side(old, new, capacity), capacity) == new


def test_a_one_tick_move_is_one_insert_and_one_delete() -> None:
    old = [Row(10.00 - i / 100, 100.0) for i in range(5)]
    new = [Row(10.01 - i / 100, 100.0) for i in range(5)]
    ops = diff_side(old, new, 5)
    assert [(op, pos) for op, pos, _ in ops] == [(DELETE, 4), (INSERT, 0)]


@pytest.mark.parametrize("symbol", ["AAPL", "EUR", "ES"])
def test_book_is_uncrossed_sorted_and_topped_by_the_quote(symbol: str) -> None:
    inst = next(i for i in Scenario.default().instruments if i.symbol == symbol)
    tick = inst.min_tick
    q = QuoteState(bid=100 * tick * 1000, ask=100 * tick * 1000 + tick, last=0.0)
    q.bid_size, q.ask_size = 300.0, 500.0
    for t in range(0, 200, 3):
        bids = book_side(inst, q, BID, 10, seed=1, market_time=t)
        asks = book_side(inst, q, ASK, 10, seed=1, market_time=t)
        assert len(bids) == len(asks) == 10
        assert bids[0] == Row(q.bid, 300.0)
        assert asks[0] == Row(q.ask, 500.0)
        assert all(a.price > b.price for a, b in itertools.pairwise(bids))
        assert all(a.price < b.price for a, b in itertools.pairwise(asks))
        assert all(r.size > 0 for r in bids + asks)
        assert bids[0].price < asks[0].price


def test_smart_rows_split_each_level_across_venues() -> None:
    inst = next(i for i in Scenario.default().instruments if i.symbol == "AAPL")
    q = QuoteState(bid=230.00, ask=230.02, last=230.01, bid_size=700.0, ask_size=400.0)
    venues = ("NASDAQ", "ARCA", "BATS")
    bids = book_side(inst, q, BID, 12, seed=3, market_time=5.0, venues=venues)
    assert len(bids) == 12
    top = [r for r in bids if r.price == 230.00]
    assert sum(r.size for r in top) == 700.0
    assert {r.maker for r in bids} <= set(venues)
    assert len({r.key for r in bids}) == len(bids)


def test_sizes_and_levels_move_with_time() -> None:
    inst = next(i for i in Scenario.default().instruments if i.symbol == "MSFT")
    q = QuoteState(bid=420.00, ask=420.01, last=420.0)
    books = {tuple(book_side(inst, q, BID, 10, seed=0, market_time=t)) for t in range(0, 120, 2)}
    assert len(books) > 10
