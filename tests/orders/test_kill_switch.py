"""The kill switch over the wire: ``cancel_all()`` and ``flatten()`` against the simulator.

The fixtures come from ``ibflow.testing`` (``ib_sim``, ``ib_sim_factory``): a fresh simulator per
test, time-scaled, with the default scenario's positions (AAPL, MSFT, SPY and an AAPL option).
"""

from __future__ import annotations

import asyncio

import pytest

import ibflow
from ibflow.sim import Scenario, Simulator
from ibflow.testing import SimFactory, session_for

AAPL = ibflow.Stock("AAPL")
MSFT = ibflow.Stock("MSFT")
MSFT_CON_ID = 272093


def quoted(sim: Simulator) -> Simulator:
    sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
    sim.push_quote("MSFT", bid=410.00, ask=410.04, last=410.02)
    return sim


def sent(sim: Simulator) -> dict[str, int]:
    kinds = ("place_order", "cancel_order", "global_cancel", "positions", "open_orders")
    return {kind: sim.request_count(kind) for kind in kinds}


async def everyones_open_orders(sim: Simulator) -> list[ibflow.OrderSnapshot]:
    async with session_for(sim, client_id=99, all_open_orders=True) as watcher:
        return await watcher.open_orders()


async def test_cancel_all_cancels_every_client_ids_orders_and_returns_them(
    ib_sim: Simulator,
) -> None:
    quoted(ib_sim)
    async with session_for(ib_sim, client_id=1) as one, session_for(ib_sim, client_id=2) as two:
        mine = await one.place(AAPL, ibflow.LimitOrder("BUY", 10, 150.00))
        theirs = await two.place(MSFT, ibflow.LimitOrder("SELL", 5, 500.00))
        # Session one syncs only its own client id's orders; the global cancel reaches both.
        ended = await one.cancel_all()
        assert sorted((r.client_id, r.order_id, r.status) for r in ended) == [
            (1, mine.order_id, ibflow.OrderStatus.CANCELLED),
            (2, theirs.order_id, ibflow.OrderStatus.CANCELLED),
        ]
        assert {r.perm_id for r in ended} == {mine.perm_id, theirs.perm_id}
        assert mine.status is ibflow.OrderStatus.CANCELLED
        await asyncio.wait_for(theirs.wait_done(), 5)
        assert theirs.status is ibflow.OrderStatus.CANCELLED
        assert await everyones_open_orders(ib_sim) == []
        assert ib_sim.request_count("global_cancel") == 1
        # Nothing open: the cancel still goes out once and nothing is returned.
        assert await one.cancel_all() == []
        assert ib_sim.request_count("global_cancel") == 2


async def test_flatten_cancels_orders_and_closes_every_position(ib_sim: Simulator) -> None:
    quoted(ib_sim)
    async with session_for(ib_sim) as session:
        held = {p.contract.con_id: p.quantity for p in await session.positions()}
        assert len(held) == 4
        resting = await session.place(AAPL, ibflow.LimitOrder("BUY", 10, 150.00))
        trades = await session.flatten()
        assert resting.status is ibflow.OrderStatus.CANCELLED
        assert {t.contract.con_id: t.filled for t in trades} == {
            con_id: abs(quantity) for con_id, quantity in held.items()
        }
        for trade in trades:
            assert trade.status is ibflow.OrderStatus.FILLED
            assert trade.order.order_type is ibflow.OrderType.MARKET
            assert trade.order.side is ibflow.Side.SELL  # every default position is long
        assert await session.positions() == []
        assert await everyones_open_orders(ib_sim) == []
        # Flat already: nothing to close, nothing placed.
        placed = ib_sim.request_count("place_order")
        assert await session.flatten() == []
        assert ib_sim.request_count("place_order") == placed


async def test_flatten_symbols_touches_only_those_symbols(ib_sim: Simulator) -> None:
    quoted(ib_sim)
    async with session_for(ib_sim) as session:
        keep = await session.place(AAPL, ibflow.LimitOrder("BUY", 10, 150.00))
        drop = await session.place(MSFT, ibflow.LimitOrder("BUY", 10, 300.00))
        [trade] = await session.flatten(symbols=["msft"])
        assert (trade.contract.symbol, trade.order.side, trade.filled) == ("MSFT", "SELL", 50)
        assert drop.status is ibflow.OrderStatus.CANCELLED
        assert not keep.is_done
        left = {p.contract.local_symbol for p in await session.positions()}
        assert left == {"AAPL", "SPY", "AAPL  270115C00230000"}
        # A symbol covers the stock and its options.
        closed = await session.flatten(symbols=("AAPL",))
        assert sorted(t.contract.sec_type.value for t in closed) == ["OPT", "STK"]
        assert keep.status is ibflow.OrderStatus.CANCELLED
        assert [p.contract.symbol for p in await session.positions()] == ["SPY"]


async def test_flatten_symbols_refuses_another_client_ids_order_first(ib_sim: Simulator) -> None:
    quoted(ib_sim)
    async with session_for(ib_sim, client_id=1) as one, session_for(ib_sim, client_id=2) as two:
        theirs = await two.place(MSFT, ibflow.LimitOrder("BUY", 5, 300.00))
        before = sent(ib_sim)
        with pytest.raises(ibflow.SafetyError, match=f"order {theirs.order_id} of client id 2"):
            await one.flatten(symbols=["MSFT"])
        after = sent(ib_sim)
        for kind in ("place_order", "cancel_order", "global_cancel"):
            assert after[kind] == before[kind]
        assert theirs.status is ibflow.OrderStatus.SUBMITTED
        assert {p.contract.symbol for p in await one.positions()} >= {"MSFT"}
        await theirs.cancel()


@pytest.mark.parametrize(
    ("quantity", "side", "limit"), [(50, ibflow.Side.SELL, 410.00), (-30, ibflow.Side.BUY, 410.04)]
)
async def test_flatten_uses_a_marketable_limit_where_market_orders_are_not_taken(
    ib_sim_factory: SimFactory, quantity: float, side: ibflow.Side, limit: float
) -> None:
    scenario = Scenario.from_dict(
        {
            "extends": "default",
            "instruments": [{"con_id": MSFT_CON_ID, "order_types": ["LMT"]}],
            "positions": [{"con_id": MSFT_CON_ID, "quantity": quantity, "avg_cost": 400.0}],
        }
    )
    sim = quoted(await ib_sim_factory(scenario=scenario))
    async with session_for(sim) as session:
        [trade] = await session.flatten(symbols=["MSFT"])
        # A sell at the bid, a buy at the ask: a limit that crosses the spread.
        assert trade.order.order_type is ibflow.OrderType.LIMIT
        assert (trade.order.side, trade.order.limit_price) == (side, limit)
        assert (trade.status, trade.filled) == (ibflow.OrderStatus.FILLED, abs(quantity))
        assert await session.positions() == []


async def test_both_are_refused_read_only_before_anything_is_sent(ib_sim: Simulator) -> None:
    quoted(ib_sim)
    async with session_for(ib_sim, readonly=True) as session:
        before = sent(ib_sim)
        with pytest.raises(ibflow.SafetyError, match="read-only"):
            await session.cancel_all()
        with pytest.raises(ibflow.SafetyError, match="read-only"):
            await session.flatten()
        with pytest.raises(ibflow.SafetyError, match="read-only"):
            await session.flatten(symbols=["AAPL"])
        assert sent(ib_sim) == before
        assert len(await session.positions()) == 4


async def test_a_read_only_api_refuses_the_global_cancel_and_nothing_is_placed(
    ib_sim_factory: SimFactory,
) -> None:
    sim = quoted(await ib_sim_factory(readonly=True))
    async with session_for(sim) as session:
        with pytest.raises(ibflow.RequestError) as refused:
            await session.flatten()
        assert refused.value.code == 321
        assert sim.request_count("place_order") == 0


async def test_both_are_refused_on_a_live_account_without_allow_live(
    ib_sim_factory: SimFactory,
) -> None:
    scenario = Scenario.from_dict(
        {
            "extends": "default",
            "accounts": [{"id": "U7654321"}],
            "positions": [{"con_id": 756733, "quantity": 20, "avg_cost": 500.0}],
        }
    )
    sim = quoted(await ib_sim_factory(scenario=scenario))
    async with session_for(sim) as session:
        before = sent(sim)
        with pytest.raises(ibflow.SafetyError, match="allow_live"):
            await session.cancel_all()
        with pytest.raises(ibflow.SafetyError, match="allow_live"):
            await session.flatten()
        assert sent(sim) == before
    async with session_for(sim, allow_live=True) as trusted:
        [trade] = await trusted.flatten(symbols=["SPY"])
        assert (trade.order.side, trade.filled) == (ibflow.Side.SELL, 20)
        assert sim.request_count("place_order") == 1


@pytest.mark.parametrize("symbols", ["AAPL", [], [""], [42], 7])
async def test_flatten_checks_its_symbols_first(ib_sim: Simulator, symbols: object) -> None:
    async with session_for(ib_sim) as session:
        before = sent(ib_sim)
        with pytest.raises(ibflow.InvalidRequest, match="symbols must be"):
            await session.flatten(symbols=symbols)  # type: ignore[arg-type]
        assert sent(ib_sim) == before
