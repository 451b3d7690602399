"""The read-only and live-account guards refuse client-side, before anything is sent.

Orders arrive in a later issue; until then the guard is ``session._core.check_can_trade()``, the
call every order-mutating method will make first. These tests drive it on sessions connected
to the simulator and prove the simulator never saw an order.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import ibflow
from ibflow.sim import Scenario, Simulator
from ibflow.testing import session_for

MakeSession = Callable[..., ibflow.Session]

_ORDER_KINDS = ("place_order", "cancel_order", "global_cancel")


def _no_orders_seen(sim: Simulator) -> bool:
    return all(sim.request_count(kind) == 0 for kind in _ORDER_KINDS)


async def test_readonly_session_refuses_order_calls(
    sim: Simulator, make_session: MakeSession
) -> None:
    session = make_session(readonly=True)
    await session.connect()
    with pytest.raises(ibflow.SafetyError) as caught:
        session._core.check_can_trade("place an order")
    message = str(caught.value)
    assert "read-only" in message
    assert "readonly=True" in message
    assert "Nothing was sent" in message
    assert _no_orders_seen(sim)


async def test_readonly_from_the_environment_is_named(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBFLOW_READONLY", "1")
    async with session_for(sim, readonly=False) as session:
        with pytest.raises(ibflow.SafetyError, match="IBFLOW_READONLY"):
            session._core.check_can_trade()
    assert _no_orders_seen(sim)


async def test_readonly_refuses_even_before_connect() -> None:
    session = ibflow.Session(readonly=True)
    with pytest.raises(ibflow.SafetyError, match="read-only"):
        session._core.check_can_trade()


async def test_paper_account_may_trade(sim: Simulator, make_session: MakeSession) -> None:
    session = make_session()
    await session.connect()
    assert session.is_paper
    session._core.check_can_trade()  # no exception: paper trading is allowed by default


async def test_live_account_is_refused_without_allow_live() -> None:
    scenario = Scenario.from_dict(
        {"extends": "default", "accounts": [{"id": "U7654321"}], "positions": []}
    )
    async with Simulator(port=0, scenario=scenario) as sim:
        async with session_for(sim) as session:
            assert session.accounts == ("U7654321",)
            assert session.is_paper is False
            with pytest.raises(ibflow.SafetyError) as caught:
                session._core.check_can_trade("place an order")
            message = str(caught.value)
            assert "allow_live=True" in message
            assert "U***321" in message
            assert "U7654321" not in message  # account ids are masked in messages too
        assert _no_orders_seen(sim)

        async with session_for(sim, allow_live=True) as trusted:
            trusted._core.check_can_trade()  # allowed on purpose


async def test_live_guard_needs_a_connection_first() -> None:
    session = ibflow.Session()
    with pytest.raises(ibflow.SessionClosedError, match="connect"):
        session._core.check_can_trade()
