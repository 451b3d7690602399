"""Placing, cancelling and modifying orders over HTTP; an Idempotency-Key sends an order once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ibflow.sim import Simulator

AAPL = {"symbol": "AAPL"}


def market(quantity: float = 10, side: str = "BUY") -> dict[str, Any]:
    return {"contract": AAPL, "order": {"action": side, "quantity": quantity, "type": "MKT"}}


async def limit_far_below(client: httpx.AsyncClient) -> dict[str, Any]:
    """A limit buy that rests: its price is half the market's."""
    ask = (await client.get("/quote", params=AAPL)).json()["ask"]
    return {
        "contract": AAPL,
        "order": {
            "side": "BUY",
            "quantity": 3,
            "order_type": "LMT",
            "limit_price": round(ask / 2, 2),
        },
    }


async def test_market_order_fills_and_can_be_read_back(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    response = await client.post(
        "/orders", json=market(), headers={"Idempotency-Key": "m-1"}, params={"wait": 5}
    )
    assert response.status_code == 201, response.text
    trade = response.json()
    assert trade["status"] == "Filled"
    assert trade["filled"] == 10
    assert trade["remaining"] == 0
    assert trade["order"] == {
        "side": "BUY",
        "quantity": 10,
        "order_type": "MKT",
        "limit_price": None,
        "stop_price": None,
        "tif": "DAY",
        "good_till": None,
        "outside_rth": False,
        "account": None,
        "order_ref": "m-1",  # the Idempotency-Key travels to TWS as the order's reference
    }
    [fill] = trade["fills"]
    assert fill["price"] == pytest.approx(trade["avg_fill_price"])
    assert response.headers["Idempotent-Replayed"] == "false"
    assert response.headers["Location"].endswith(f"/orders/{trade['order_id']}")

    current = (await client.get(response.headers["Location"])).json()
    assert current["order_id"] == trade["order_id"]
    assert current["commission"] == pytest.approx(1.0)  # the scenario's minimum per order
    assert [f.order_id for f in sim.fills] == [trade["order_id"]]
    positions = (await client.get("/positions")).json()
    assert next(p for p in positions if p["contract"]["symbol"] == "AAPL")["quantity"] == 110


async def test_a_repeated_key_returns_the_first_answer_and_sends_nothing(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    first = await client.post("/orders", json=market(), headers={"Idempotency-Key": "same"})
    again = await client.post("/orders", json=market(), headers={"Idempotency-Key": "same"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert sim.request_count("place_order") == 1
    other = await client.post("/orders", json=market(), headers={"Idempotency-Key": "other"})
    assert other.json()["order_id"] != first.json()["order_id"]
    assert sim.request_count("place_order") == 2


async def test_a_retry_after_a_client_timeout_gets_the_same_order(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.delay(0.15)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            "/orders", json=market(), headers={"Idempotency-Key": "slow"}, timeout=0.02
        )
    retried = await client.post("/orders", json=market(), headers={"Idempotency-Key": "slow"})
    sim.delay(0)
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "Filled"
    assert sim.request_count("place_order") == 1


async def test_concurrent_requests_with_one_key_place_one_order(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.delay(0.1)
    answers = await asyncio.gather(
        *(
            client.post("/orders", json=market(), headers={"Idempotency-Key": "race"})
            for _ in range(3)
        )
    )
    sim.delay(0)
    assert {a.json()["order_id"] for a in answers} == {answers[0].json()["order_id"]}
    assert sorted(a.headers["Idempotent-Replayed"] for a in answers) == ["false", "true", "true"]
    assert sim.request_count("place_order") == 1


async def test_missing_key_is_400_saying_what_to_add(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    response = await client.post("/orders", json=market())
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "IdempotencyKeyRequired"
    assert "Idempotency-Key header" in body["message"]
    blank = await client.post("/orders", json=market(), headers={"Idempotency-Key": ""})
    assert blank.status_code == 400
    assert sim.request_count("place_order") == 0


async def test_a_key_reused_for_another_order_is_422(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    await client.post("/orders", json=market(10), headers={"Idempotency-Key": "k"})
    response = await client.post("/orders", json=market(20), headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.json()["error"] == "IdempotencyKeyReused"
    assert sim.request_count("place_order") == 1


async def test_terms_ibflow_refuses_are_422_and_leave_the_key_free(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    bad = {"contract": AAPL, "order": {"action": "BUY", "quantity": 1, "type": "LMT"}}
    response = await client.post("/orders", json=bad, headers={"Idempotency-Key": "fixme"})
    assert response.status_code == 422
    assert "needs a limit_price" in response.json()["message"]
    fixed = await client.post("/orders", json=market(1), headers={"Idempotency-Key": "fixme"})
    assert fixed.status_code == 201
    assert sim.request_count("place_order") == 1


async def test_cancel_a_resting_order(client: httpx.AsyncClient, sim: Simulator) -> None:
    placed = await client.post(
        "/orders", json=await limit_far_below(client), headers={"Idempotency-Key": "rest"}
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    assert placed.json()["is_done"] is False
    assert [o["order_id"] for o in (await client.get("/orders")).json()] == [order_id]

    cancelled = await client.delete(f"/orders/{order_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "Cancelled"
    assert (await client.get("/orders")).json() == []
    assert sim.request_count("cancel_order") == 1


async def test_modify_a_resting_order(client: httpx.AsyncClient) -> None:
    spec = await limit_far_below(client)
    placed = await client.post("/orders", json=spec, headers={"Idempotency-Key": "mod"})
    order_id = placed.json()["order_id"]
    lower = round(spec["order"]["limit_price"] - 1, 2)
    modified = await client.put(f"/orders/{order_id}", json={"limit_price": lower, "quantity": 4})
    assert modified.status_code == 200, modified.text
    assert modified.json()["order"]["limit_price"] == pytest.approx(lower)
    assert modified.json()["order"]["quantity"] == 4
    nothing = await client.put(f"/orders/{order_id}", json={})
    assert nothing.status_code == 422
    await client.delete(f"/orders/{order_id}")


async def test_waiting_that_ends_first_still_answers_with_the_order(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/orders",
        json=await limit_far_below(client),
        headers={"Idempotency-Key": "w"},
        params={"wait": 0.2},
    )
    assert response.status_code == 201
    assert response.json()["status"] in ("Submitted", "PreSubmitted")
    await client.delete(f"/orders/{response.json()['order_id']}")


async def test_unknown_order_ids_are_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/orders/999"),
        await client.delete("/orders/999"),
        await client.put("/orders/999", json={"quantity": 1}),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "OrderNotFound"
        assert "order 999 was not placed by this bridge" in response.json()["message"]


async def test_what_if_places_nothing(client: httpx.AsyncClient, sim: Simulator) -> None:
    response = await client.post("/orders/what-if", json=market(10))
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["commission"] == pytest.approx(1.0)
    assert preview["init_margin_change"] > 0
    assert sim.orders == []
    assert sim.fills == []
    assert (await client.get("/orders")).json() == []
    assert (await client.get("/orders/completed")).json() == []
