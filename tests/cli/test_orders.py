"""``ibflow orders`` and ``ibflow cancel`` against a simulator holding other programs' orders,
and the session calls behind them (``cancel_order``, ``cancel_all``, ``flatten``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import ibflow
from ibflow.sim import Simulator

from .conftest import Result, invoke

AAPL = ibflow.Stock("AAPL")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(port=0) as simulator:
        simulator.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        yield simulator


def session(sim: Simulator, client_id: int, **kwargs: object) -> ibflow.Session:
    return ibflow.Session(
        sim.host, sim.port, client_id, timeout=5, heartbeat_interval=None, **kwargs
    )


async def resting(s: ibflow.Session, price: float = 150.0) -> ibflow.Trade:
    return await s.place(AAPL, ibflow.LimitOrder("BUY", 10, price))


async def cli(*args: str, input: str | None = None) -> Result:
    return await asyncio.to_thread(invoke, *args, input=input)


async def test_orders_lists_every_client_ids_orders(sim: Simulator) -> None:
    async with session(sim, 5) as five, session(sim, 6) as six:
        first = await resting(five, 150.0)
        second = await resting(six, 151.5)
        listed = (await cli("--port", str(sim.port), "--json", "orders")).json()
        mine = {(o["client_id"], o["order_id"]) for o in listed}
        assert {(5, first.order_id), (6, second.order_id)} <= mine
        table = await cli("--port", str(sim.port), "orders")
        assert "151.50" in table.out
        await first.cancel()
        everything = await cli("--port", str(sim.port), "--json", "orders", "--all")
        statuses = {o["status"] for o in everything.json()}
        assert {"Cancelled", "Submitted"} <= statuses


async def test_cancel_an_order_another_program_placed(sim: Simulator) -> None:
    port = str(sim.port)
    async with session(sim, 5) as five:
        trade = await resting(five)
        order_id = str(trade.order_id)
        busy = await cli("--port", port, "cancel", order_id, "--yes")
        assert busy.code == 1
        assert "belongs to client id 5, which is connected now" in busy.error_line
    # The program that placed it is gone: the CLI cancels as its client id, after asking.
    declined = await cli("--port", port, "cancel", order_id, input="n\n")
    assert declined.code == 1
    question, answer = declined.err.strip().splitlines()
    assert question == f"Cancel order {order_id} (BUY 10 AAPL LMT 150.00, client id 5)? [y/N]: n"
    assert (
        answer == "ibflow: error: not confirmed: nothing was cancelled (--yes skips the question)"
    )
    unanswered = await cli("--port", port, "cancel", order_id)
    assert unanswered.code == 1
    assert [o.status for o in sim.orders] == ["Submitted"]
    done = await cli("--port", port, "--json", "cancel", order_id, input="y\n")
    assert done.code == 0, done.err
    assert done.json() == {"order_id": trade.order_id, "client_id": 5, "status": "Cancelled"}
    assert [o.status for o in sim.orders] == ["Cancelled"]


async def test_cancel_all_reaches_every_client(sim: Simulator) -> None:
    async with session(sim, 6) as six, session(sim, 7) as seven:
        a, b = await resting(six), await resting(seven, 149.0)
        result = await cli("--port", str(sim.port), "cancel", "--all", "--yes")
        assert result.code == 0, result.err
        assert result.out.strip() == "cancelled 2 order(s)"
        await asyncio.wait_for(asyncio.gather(a.wait_done(), b.wait_done()), 5)
        assert (a.status, b.status) == (ibflow.OrderStatus.CANCELLED,) * 2


async def test_cancel_order_by_id_from_a_later_session(sim: Simulator) -> None:
    async with session(sim, 5) as first:
        trade = await resting(first)
    async with session(sim, 5) as later:
        assert await later.cancel_order(trade.order_id) is ibflow.OrderStatus.CANCELLED
        assert await later.open_orders() == []
        with pytest.raises(ibflow.OrderRejected) as missing:
            await later.cancel_order(trade.order_id + 100)
        assert missing.value.code == 10147


async def test_cancel_order_of_this_session_goes_through_its_trade(sim: Simulator) -> None:
    async with session(sim, 5) as s:
        trade = await resting(s)
        assert await s.cancel_order(trade.order_id) is ibflow.OrderStatus.CANCELLED
        assert trade.status is ibflow.OrderStatus.CANCELLED


async def test_cancels_are_refused_read_only_and_checked(sim: Simulator) -> None:
    async with session(sim, 5, readonly=True) as s:
        with pytest.raises(ibflow.SafetyError):
            await s.cancel_order(1)
        with pytest.raises(ibflow.SafetyError):
            await s.cancel_all()
    async with session(sim, 5) as s:
        with pytest.raises(ibflow.InvalidRequest):
            await s.cancel_order(0)


async def test_a_refused_global_cancel_raises() -> None:
    async with Simulator(port=0, readonly=True) as sim, session(sim, 5) as s:
        with pytest.raises(ibflow.RequestError) as refused:
            await s.cancel_all(timeout=5)
        assert refused.value.code == 321


async def test_cancel_all_asks_first_and_reports_how_each_order_ended(sim: Simulator) -> None:
    port = str(sim.port)
    async with session(sim, 6) as six:
        trade = await resting(six)
        declined = await cli("--port", port, "cancel", "--all", input="n\n")
        assert declined.code == 1
        assert "Cancel all 1 open order(s) of every client id? [y/N]: n" in declined.err
        assert sim.request_count("global_cancel") == 0
        done = await cli("--port", port, "--json", "cancel", "--all", input="y\n")
        assert done.code == 0, done.err
        assert done.json() == {
            "cancelled": [
                {
                    "order_id": trade.order_id,
                    "client_id": 6,
                    "perm_id": trade.perm_id,
                    "status": "Cancelled",
                }
            ]
        }


async def test_flatten_asks_first_then_closes_positions(sim: Simulator) -> None:
    port = str(sim.port)
    sim.push_quote("MSFT", bid=410.00, ask=410.04, last=410.02)
    declined = await cli("--port", port, "flatten", "MSFT", input="n\n")
    assert declined.code == 1
    question = declined.err.strip().splitlines()[0]
    assert (
        question
        == "Cancel 0 open order(s) and close 1 position(s) (50 MSFT) at the market? [y/N]: n"
    )
    assert declined.err.strip().endswith(
        "ibflow: error: not confirmed: nothing was sent (--yes skips the question)"
    )
    unanswered = await cli("--port", port, "flatten")
    assert unanswered.code == 1
    assert sim.request_count("place_order") == 0
    one = await cli("--port", port, "flatten", "msft", "--yes")
    assert one.code == 0, one.err
    first, last = one.out.strip().splitlines()
    assert first.endswith(": SELL 50 MSFT filled at 410.00")
    assert last == "closed 1 position(s)"
    rest = await cli("--port", port, "--json", "flatten", "-y")
    assert rest.code == 0, rest.err
    closed = rest.json()["closed"]
    assert sorted(c["contract"]["local_symbol"] for c in closed) == [
        "AAPL",
        "AAPL  270115C00230000",
        "SPY",
    ]
    assert {(c["side"], c["status"]) for c in closed} == {("SELL", "Filled")}
    flat = await cli("--port", port, "flatten", "--yes")
    assert flat.out.strip() == "nothing to flatten: no open order and no position"


async def test_flatten_of_another_client_ids_order_fails_in_one_line(sim: Simulator) -> None:
    async with session(sim, 6) as six:
        trade = await resting(six)
        refused = await cli("--port", str(sim.port), "flatten", "AAPL", "--yes")
        assert refused.code == 1
        assert f"order {trade.order_id} of client id 6" in refused.error_line
        assert sim.request_count("place_order") == 1


def test_flatten_rejects_an_empty_symbol() -> None:
    result = invoke("flatten", " ")
    assert result.code == 2
    assert result.error_line == "ibflow: error: a SYMBOL cannot be empty"
