"""Conditions on POST and every modify term on PUT, checked by the schema and by ibflow."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ibflow.sim import Simulator

AAPL = {"symbol": "AAPL"}


async def post(client: httpx.AsyncClient, key: str, order: dict[str, Any]) -> httpx.Response:
    body = {"contract": AAPL, "order": order}
    return await client.post("/orders", json=body, headers={"Idempotency-Key": key})


async def far_below(client: httpx.AsyncClient) -> float:
    """A limit price half the market's: the order rests."""
    return float(round((await client.get("/quote", params=AAPL)).json()["ask"] / 2, 2))


async def test_conditions_reach_tws_with_their_contracts_qualified(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    conditions = [
        {"type": "price", "contract": {"symbol": "MSFT"}, "price": 500, "conjunction": "or"},
        {"type": "time", "time": "2027-01-13T15:30:00Z", "is_more": True},
        {"type": "margin", "percent": 30, "is_more": False},
    ]
    order = {
        "side": "BUY",
        "quantity": 2,
        "type": "LMT",
        "limit_price": await far_below(client),
        "conditions": conditions,
        "conditions_cancel_order": True,
        "conditions_ignore_rth": True,
    }
    response = await post(client, "cond-1", order)
    assert response.status_code == 201, response.text
    terms = response.json()["order"]
    msft = (await client.get("/contracts/qualify", params={"symbol": "MSFT"})).json()
    [price, time, margin] = terms["conditions"]
    assert (price["kind"], price["contract"]["con_id"], price["price"]) == (
        "price",
        msft["con_id"],
        500,
    )
    assert (price["conjunction"], time["kind"], margin["percent"]) == ("or", "time", 30)
    assert terms["conditions_cancel_order"] is terms["conditions_ignore_rth"] is True
    [sent] = sim.orders
    assert [(c.kind, c.conjunction) for c in sent.conditions] == [(1, "o"), (3, "a"), (4, "a")]
    assert sent.conditions[0].con_id == msft["con_id"]
    assert (sent.conditions_cancel_order, sent.conditions_ignore_rth) == (True, True)
    await client.delete(f"/orders/{response.json()['order_id']}")


async def test_a_condition_on_an_unknown_contract_is_404_and_leaves_the_key_free(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    condition = {"type": "volume", "contract": {"symbol": "ZZZZ"}, "volume": 1000}
    base = {"side": "BUY", "quantity": 1, "type": "MKT"}
    unknown = await post(client, "cond-2", {**base, "conditions": [condition]})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "ContractNotFound")
    assert sim.request_count("place_order") == 0
    placed = await post(client, "cond-2", base)
    assert placed.status_code == 201, placed.text
    assert sim.request_count("place_order") == 1


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ({"type": "margin", "percent": 150}, "between 1 and 99"),
        ({"type": "time", "time": "2027-01-13T15:30:00Z", "conjunction": "xor"}, "conjunction"),
        ({"type": "weather", "sunny": True}, "weather"),
        ({"type": "price", "contract": {"symbol": "MSFT"}, "price": 1, "bogus": 1}, "bogus"),
    ],
)
async def test_bad_conditions_are_422_naming_the_problem(
    client: httpx.AsyncClient, sim: Simulator, condition: dict[str, Any], says: str
) -> None:
    order = {"side": "BUY", "quantity": 1, "type": "MKT", "conditions": [condition]}
    response = await post(client, "cond-bad", order)
    assert response.status_code == 422, response.text
    assert says in response.json()["message"]
    assert sim.request_count("place_order") == 0


async def test_put_changes_a_trailing_stops_terms(
    client: httpx.AsyncClient, sim: Simulator, base_url: str
) -> None:
    trail = {"side": "SELL", "quantity": 5, "type": "TRAIL", "trail_amount": 40}
    placed = await post(client, "trail-1", trail)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    changed = await client.put(
        f"/orders/{order_id}", json={"trail_amount": 30, "quantity": 4, "tif": "gtc"}
    )
    assert changed.status_code == 200, changed.text
    terms = changed.json()["order"]
    assert (terms["trail_amount"], terms["quantity"], terms["tif"]) == (30, 4, "GTC")
    [order] = sim.orders
    assert (order.aux_price, order.total_quantity, order.tif) == (30, 4, "GTC")
    # A term the type does not take: ibflow names the ones it does, and nothing is sent.
    refused = await client.put(f"/orders/{order_id}", json={"offset": 0.1})
    assert refused.status_code == 422, refused.text
    assert "offset" in refused.json()["message"]
    assert "trail_amount" in refused.json()["message"]
    unknown = await client.put(f"/orders/{order_id}", json={"trailing": 1})
    assert unknown.status_code == 422
    assert "trailing" in unknown.json()["message"]
    assert sim.request_count("place_order") == 2  # the order, and one change
    # The old path answers 308 to the new one, body and all.
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=True) as legacy:
        moved = await legacy.put(f"/orders/{order_id}", json={"trail_amount": 35})
    assert moved.status_code == 200, moved.text
    assert moved.json()["order"]["trail_amount"] == 35
    await client.delete(f"/orders/{order_id}")


async def test_put_changes_a_relative_orders_offset_and_cap(client: httpx.AsyncClient) -> None:
    cap = await far_below(client)
    relative = {"side": "BUY", "quantity": 1, "type": "REL", "offset": 0.05, "limit_price": cap}
    placed = await post(client, "rel-1", relative)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    lower = round(cap - 1, 2)
    changed = await client.put(f"/orders/{order_id}", json={"offset": 0.1, "cap": lower})
    assert changed.status_code == 200, changed.text
    terms = changed.json()["order"]
    assert (terms["offset"], terms["limit_price"]) == (pytest.approx(0.1), pytest.approx(lower))
    await client.delete(f"/orders/{order_id}")
