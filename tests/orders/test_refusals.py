"""Every refusal happens before anything is sent; TWS's own rejections become OrderRejected."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import ibflow
from ibflow import LimitOrder, MarketOrder, StopOrder
from ibflow.sim import Scenario, Simulator
from ibflow.testing import session_for

from .conftest import AAPL

MakeSession = Callable[..., ibflow.Session]


def nothing_sent(sim: Simulator) -> bool:
    return all(
        sim.request_count(kind) == 0 for kind in ("place_order", "cancel_order", "global_cancel")
    )


@pytest.mark.parametrize(
    ("contract", "order", "error", "match"),
    [
        (AAPL, LimitOrder("BUY", 1, 190.005), ibflow.InvalidRequest, "minimum tick 0.01; use"),
        (AAPL, StopOrder("SELL", 1, 180.123), ibflow.InvalidRequest, "180.12 or 180.13"),
        (AAPL, MarketOrder("BUY", 1.5), ibflow.InvalidRequest, "size increment"),
        (
            ibflow.Future("ES", "20270319", "CME"),
            LimitOrder("BUY", 1, 5000.10),
            ibflow.InvalidRequest,
            "minimum tick 0.25",
        ),
        (ibflow.Index("SPX", "CBOE"), MarketOrder("BUY", 1), ibflow.InvalidRequest, "index"),
        (AAPL, MarketOrder("BUY", 1, account="DU9999999"), ibflow.InvalidRequest, "not managed"),
        (ibflow.Stock("NOSUCH"), MarketOrder("BUY", 1), ibflow.ContractNotFound, "200"),
        (AAPL, "BUY 1 AAPL", ibflow.InvalidRequest, "must be an ibflow Order"),
        ("AAPL", MarketOrder("BUY", 1), ibflow.InvalidRequest, "must be an ibflow Contract"),
    ],
)
async def test_invalid_orders_are_refused_before_sending(
    session: ibflow.Session,
    sim: Simulator,
    contract: object,
    order: object,
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        await session.place(contract, order)  # type: ignore[call-overload]
    assert nothing_sent(sim)
    assert session.trades() == ()


async def test_bad_timeout_is_refused(session: ibflow.Session, sim: Simulator) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="timeout"):
        await session.place(AAPL, MarketOrder("BUY", 1), timeout=0)
    assert nothing_sent(sim)


async def test_readonly_session_refuses_orders(sim: Simulator, make_session: MakeSession) -> None:
    session = await make_session(readonly=True).connect()
    with pytest.raises(ibflow.SafetyError, match="read-only"):
        await session.place(AAPL, MarketOrder("BUY", 1))
    assert nothing_sent(sim)
    # Reads and previews are fine on a read-only session.
    assert await session.fills() == []
    preview = await session.what_if(AAPL, LimitOrder("BUY", 1, 150.00))
    assert preview.commission is not None


async def test_live_account_needs_allow_live() -> None:
    scenario = Scenario.from_dict(
        {"extends": "default", "accounts": [{"id": "U7654321"}], "positions": []}
    )
    async with Simulator(port=0, scenario=scenario) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        async with session_for(sim) as session:
            with pytest.raises(ibflow.SafetyError, match="allow_live=True"):
                await session.place(AAPL, MarketOrder("BUY", 1))
            assert nothing_sent(sim)
        async with session_for(sim, allow_live=True) as trusted:
            trade = await trusted.place(AAPL, LimitOrder("BUY", 1, 150.00))
            with pytest.raises(ibflow.SafetyError, match="allow_live"):
                await session.place(AAPL, MarketOrder("BUY", 1))
            await trade.cancel()


async def test_modify_is_held_to_the_rails(sim: Simulator, make_session: MakeSession) -> None:
    session = await make_session(max_order_quantity=10, max_order_notional=900).connect()
    trade = await session.place(AAPL, LimitOrder("BUY", 5, 150.00))
    with pytest.raises(ibflow.SafetyError, match="max_order_quantity"):
        await trade.modify(quantity=11)
    with pytest.raises(ibflow.SafetyError, match="max_order_notional"):
        await trade.modify(limit_price=190.00)
    assert sim.request_count("place_order") == 1
    await trade.cancel()


async def test_max_order_quantity(sim: Simulator, make_session: MakeSession) -> None:
    session = await make_session(max_order_quantity=100).connect()
    with pytest.raises(ibflow.SafetyError, match="max_order_quantity is 100"):
        await session.place(AAPL, LimitOrder("BUY", 101, 150.00))
    with pytest.raises(ibflow.SafetyError, match="max_order_quantity"):
        await session.place(AAPL, ibflow.bracket("BUY", 150, 150.00, 160.00, 140.00))
    assert nothing_sent(sim)
    trade = await session.place(AAPL, LimitOrder("BUY", 100, 150.00))
    await trade.cancel()


async def test_max_order_notional(sim: Simulator, make_session: MakeSession) -> None:
    session = await make_session(max_order_notional=10_000).connect()
    with pytest.raises(ibflow.SafetyError, match="max_order_notional"):
        await session.place(AAPL, LimitOrder("BUY", 100, 150.00))  # 15,000
    # A market order is valued at a snapshot quote (the ask for a buy: 190.02).
    with pytest.raises(ibflow.SafetyError, match=r"100 x 190\.02"):
        await session.place(AAPL, MarketOrder("BUY", 100))
    # A future is valued with its multiplier: 1 x 5000 x 50.
    with pytest.raises(ibflow.SafetyError, match="x 50"):
        await session.place(ibflow.Future("ES", "20270319", "CME"), LimitOrder("BUY", 1, 5000))
    assert nothing_sent(sim)
    trade = await session.place(AAPL, MarketOrder("BUY", 50))  # 9,501
    await trade.wait_filled()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_order_quantity": 0}, "max_order_quantity must be a positive number"),
        ({"max_order_notional": -1.0}, "max_order_notional"),
        ({"max_order_quantity": True}, "max_order_quantity"),
        ({"max_order_notional": float("inf")}, "max_order_notional"),
    ],
)
def test_rails_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ibflow.InvalidRequest, match=match):
        ibflow.Session(**kwargs)  # type: ignore[arg-type]


async def test_readonly_tws_rejects_with_321() -> None:
    async with Simulator(port=0, readonly=True) as sim:
        async with session_for(sim) as session:
            with pytest.raises(ibflow.OrderRejected) as caught:
                await session.place(AAPL, MarketOrder("BUY", 1))
            assert caught.value.code == 321
            assert "Read-Only" in caught.value.message
            assert sim.request_count("place_order") == 1
            assert session.trades() == ()


async def test_tws_rejection_is_order_rejected(session: ibflow.Session, sim: Simulator) -> None:
    sim.fail_next("place_order", 201, "Order rejected - reason:no shortable shares")
    with pytest.raises(ibflow.OrderRejected, match="no shortable shares") as caught:
        await session.place(AAPL, MarketOrder("SELL", 1000))
    assert caught.value.code == 201
    assert session.trades() == ()


async def test_margin_rejection_from_the_sim(session: ibflow.Session, sim: Simulator) -> None:
    with pytest.raises(ibflow.OrderRejected, match="INITIAL MARGIN"):
        await session.place(AAPL, LimitOrder("BUY", 1_000_000, 190.00))


async def test_rejected_bracket_parent_leaves_nothing_working(
    session: ibflow.Session, sim: Simulator
) -> None:
    sim.fail_next("place_order", 201, "Order rejected - reason:entry refused")
    with pytest.raises(ibflow.OrderRejected, match="entry refused"):
        await session.place(AAPL, ibflow.bracket("BUY", 10, 150.00, 160.00, 140.00))
    # The children named a parent TWS never accepted: TWS refused them too.
    assert sim.request_count("place_order") == 3
    assert not [o for o in sim.orders if o.client_id == 1 and not o.is_done]
    assert session.trades() == ()


async def test_order_types_the_contract_does_not_take_are_refused() -> None:
    scenario = Scenario.from_dict(
        {
            "extends": "default",
            "instruments": [{"con_id": 265598, "order_types": ["LMT", "MKT", "STP LMT"]}],
        }
    )
    async with Simulator(port=0, scenario=scenario) as sim:
        sim.push_quote("AAPL", bid=190.00, ask=190.02, last=190.01)
        async with session_for(sim) as session:
            with pytest.raises(ibflow.InvalidRequest, match="does not take STP orders"):
                await session.place(AAPL, StopOrder("SELL", 1, 180.00))
            assert nothing_sent(sim)
            trade = await session.place(AAPL, ibflow.StopLimitOrder("SELL", 1, 179.0, 180.0))
            await trade.cancel()
