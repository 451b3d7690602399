"""An order refused before anything was sent leaves its Idempotency-Key free for the fix."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import ibflow
from ibflow.bridge import create_app
from ibflow.bridge._routes import nothing_sent
from ibflow.sim import Simulator
from ibflow.testing import session_for

from .conftest import API, serving


def order(symbol: str = "AAPL", quantity: float = 1, **terms: Any) -> dict[str, Any]:
    return {
        "contract": {"symbol": symbol},
        "order": {"action": "BUY", "quantity": quantity, "type": "MKT", **terms},
    }


async def test_an_unknown_symbol_leaves_the_key_free(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    unknown = await client.post("/orders", json=order("ZZZZ"), headers={"Idempotency-Key": "k"})
    assert unknown.status_code == 404
    fixed = await client.post("/orders", json=order(), headers={"Idempotency-Key": "k"})
    assert (fixed.status_code, fixed.headers["Idempotent-Replayed"]) == (201, "false")
    assert sim.request_count("place_order") == 1


async def test_an_off_tick_price_leaves_the_key_free(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    off_tick = order(type="LMT", limit_price=100.001)
    refused = await client.post("/orders", json=off_tick, headers={"Idempotency-Key": "t"})
    assert refused.status_code == 422, refused.text
    fixed = order(type="LMT", limit_price=100.0)
    placed = await client.post("/orders", json=fixed, headers={"Idempotency-Key": "t"})
    assert placed.status_code == 201, placed.text
    assert sim.request_count("place_order") == 1
    await client.delete(f"/orders/{placed.json()['order_id']}")


async def test_a_safety_rail_leaves_the_key_free(sim: Simulator) -> None:
    async with (
        session_for(sim, max_order_quantity=5) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        big = await client.post(
            "/orders", json=order(quantity=10), headers={"Idempotency-Key": "s"}
        )
        assert (big.status_code, big.json()["error"]) == (403, "SafetyError")
        small = await client.post(
            "/orders", json=order(quantity=2), headers={"Idempotency-Key": "s"}
        )
        assert small.status_code == 201
    assert sim.request_count("place_order") == 1


async def test_a_refusal_by_ib_keeps_the_key(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.fail_next("place_order", 201, "Order rejected - reason:no trading permissions")
    first = await client.post("/orders", json=order(), headers={"Idempotency-Key": "r"})
    again = await client.post("/orders", json=order(), headers={"Idempotency-Key": "r"})
    assert first.status_code == again.status_code == 502
    assert again.headers["Idempotent-Replayed"] == "true"
    assert sim.request_count("place_order") == 1  # it went out once: never again


@pytest.mark.parametrize(
    ("exc", "sent", "expected"),
    [
        (ibflow.InvalidRequest("x"), None, True),
        (ibflow.ContractNotFound(200, "x"), None, True),
        (ibflow.AmbiguousContract(200, "x"), None, True),
        (ibflow.SafetyError("x"), None, True),
        (ibflow.ConfigError("x", variable="V"), None, True),
        (ibflow.OrderRejected(201, "x"), None, False),
        (ibflow.RequestTimeout("x"), None, False),
        (ibflow.ConnectionLost("x"), None, False),
        (ibflow.RequestTimeout("x"), False, True),  # the error's own word wins
        (ibflow.InvalidRequest("x"), True, False),
    ],
)
def test_nothing_sent_reads_the_errors_own_flag_first(
    exc: ibflow.IBFlowError, sent: bool | None, expected: bool
) -> None:
    if sent is not None:
        exc.sent = sent  # type: ignore[attr-defined]
    assert nothing_sent(exc) is expected
