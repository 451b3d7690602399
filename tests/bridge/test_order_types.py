"""IB's other order types over HTTP: their terms in, the same terms back in the Trade's JSON."""

from __future__ import annotations

from typing import Any

import httpx

from ibflow.sim import Simulator

AAPL = {"symbol": "AAPL"}


async def post(client: httpx.AsyncClient, key: str, order: dict[str, Any]) -> httpx.Response:
    body = {"contract": AAPL, "order": order}
    return await client.post("/orders", json=body, headers={"Idempotency-Key": key})


async def test_a_trailing_stop_and_an_algo_order_carry_their_terms(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    trail = {"side": "SELL", "quantity": 5, "type": "TRAIL", "trail_percent": 30}
    response = await post(client, "t-1", trail)
    assert response.status_code == 201, response.text
    order = response.json()["order"]
    assert (order["order_type"], order["trail_percent"]) == ("TRAIL", 30)
    assert "trail_amount" not in order  # terms the order does not use are left out
    assert "conditions" not in order
    adaptive = {"strategy": "Adaptive", "params": {"adaptivePriority": "Patient"}}
    spec = {"side": "BUY", "quantity": 1, "type": "LMT", "limit_price": 1.0, "algo": adaptive}
    response = await post(client, "t-2", spec)
    assert response.status_code == 201, response.text
    assert response.json()["order"]["algo"] == {
        "strategy": "Adaptive",
        "params": [["adaptivePriority", "Patient"]],
    }
    assert {o.order_type for o in sim.orders} == {"TRAIL", "LMT"}


async def test_terms_that_do_not_fit_the_type_are_refused(client: httpx.AsyncClient) -> None:
    response = await post(
        client, "t-3", {"side": "BUY", "quantity": 1, "type": "MKT", "trail_amount": 1.0}
    )
    assert response.status_code == 422
    assert "takes no trail_amount" in response.text
    response = await post(
        client, "t-4", {"side": "BUY", "quantity": 1, "type": "MKT", "algo": {"strategy": "X"}}
    )
    assert response.status_code == 422
    assert "unknown algo strategy" in response.text
