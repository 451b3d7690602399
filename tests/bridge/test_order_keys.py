"""The Idempotency-Key is the order's ibflow key: it outlives the bridge. Orders of another
client id are listed, and refused with 403 before anything is sent."""

from __future__ import annotations

from typing import Any

import httpx

import ibflow
from ibflow.bridge import create_app
from ibflow.sim import Simulator
from ibflow.testing import session_for

from .conftest import API, serving


async def resting(client: httpx.AsyncClient) -> dict[str, Any]:
    """A limit buy half the market's price: it rests."""
    ask = (await client.get("/quote", params={"symbol": "AAPL"})).json()["ask"]
    return {
        "contract": {"symbol": "AAPL"},
        "order": {"side": "BUY", "quantity": 3, "type": "LMT", "limit_price": round(ask / 2, 2)},
    }


async def post(client: httpx.AsyncClient, body: dict[str, Any], key: str) -> httpx.Response:
    return await client.post("/orders", json=body, headers={"Idempotency-Key": key})


async def test_the_key_outlives_a_restarted_bridge(sim: Simulator) -> None:
    async with (
        session_for(sim, client_id=7) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API, timeout=10) as client,
    ):
        body = await resting(client)
        first = await post(client, body, "rebalance-42")
        again = await post(client, body, "rebalance-42")
        assert first.status_code == again.status_code == 201, first.text
        assert again.content == first.content  # the store replays the very answer
        assert again.headers["Idempotent-Replayed"] == "true"
    assert sim.request_count("place_order") == 1
    [sent] = sim.orders
    assert sent.order_ref == "rebalance-42"  # TWS keeps the key

    # A new bridge, a new session under the same client id: TWS still knows the key.
    async with (
        session_for(sim, client_id=7) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API, timeout=10) as client,
    ):
        # The key for another order: ibflow finds the first one at TWS and sends nothing.
        other = {**body, "order": {**body["order"], "side": "SELL"}}
        reused = await post(client, other, "rebalance-42")
        assert (reused.status_code, reused.json()["error"]) == (422, "IdempotencyKeyReused")
        assert f"order {first.json()['order_id']}" in reused.json()["message"]
        retried = await post(client, body, "rebalance-42")
        assert retried.status_code == 201, retried.text
        assert retried.json()["order_id"] == first.json()["order_id"]
        assert sim.request_count("place_order") == 1
        await client.delete(f"/orders/{first.json()['order_id']}")


async def test_a_filled_orders_key_outlives_a_restart_too(sim: Simulator) -> None:
    market = {
        "contract": {"symbol": "AAPL"},
        "order": {"side": "BUY", "quantity": 1, "type": "MKT"},
    }
    ids = []
    for _ in range(2):  # the second bridge finds the key among TWS's completed orders
        async with (
            session_for(sim, client_id=7) as session,
            serving(create_app(session)) as url,
            httpx.AsyncClient(base_url=url + API, timeout=10) as client,
        ):
            response = await client.post(
                "/orders", json=market, headers={"Idempotency-Key": "buy-1"}, params={"wait": 5}
            )
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "Filled"
            ids.append(response.json()["order_id"])
    assert ids[0] == ids[1]
    assert sim.request_count("place_order") == 1
    assert len(sim.fills) == 1


async def test_a_key_ibflow_cannot_send_is_kept_by_the_bridge_alone(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    body = await resting(client)
    first = await post(client, body, "has spaces: and a colon")
    again = await post(client, body, "has spaces: and a colon")
    assert (first.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert first.json()["order"]["order_ref"] is None
    # The client's own order_ref wins over the key: the store alone remembers it.
    tagged = {**body, "order": {**body["order"], "order_ref": "my-tag"}}
    placed = await post(client, tagged, "another-key")
    assert placed.json()["order"]["order_ref"] == "my-tag"
    assert sim.request_count("place_order") == 2
    for response in (first, placed):
        await client.delete(f"/orders/{response.json()['order_id']}")


async def test_another_client_ids_orders_are_listed_and_refused_with_403(
    sim: Simulator,
) -> None:
    async with session_for(sim, client_id=9) as other:
        [aapl] = await other.qualify(ibflow.Stock("AAPL"))
        price = round((await other.quote(aapl)).ask / 2, 2)  # type: ignore[operator]
        theirs = await other.place(aapl, ibflow.LimitOrder("BUY", 2, price))
        async with (
            session_for(sim, client_id=1, all_open_orders=True) as session,
            serving(create_app(session)) as url,
            httpx.AsyncClient(base_url=url + API, timeout=10) as client,
        ):
            mine = await post(client, await resting(client), "mine-1")
            assert mine.status_code == 201, mine.text
            assert (mine.json()["owned"], mine.json()["adopted"]) == (True, False)
            listed = {o["client_id"]: o for o in (await client.get("/orders")).json()}
            assert (listed[9]["order_id"], listed[9]["owned"], listed[9]["adopted"]) == (
                theirs.order_id,
                False,
                True,
            )
            assert (listed[1]["owned"], listed[1]["adopted"]) == (True, False)

            assert theirs.order_id != mine.json()["order_id"]
            read = await client.get(f"/orders/{theirs.order_id}")
            assert (read.json()["client_id"], read.json()["owned"]) == (9, False)
            for refused in (
                await client.put(f"/orders/{theirs.order_id}", json={"quantity": 1}),
                await client.delete(f"/orders/{theirs.order_id}"),
            ):
                assert refused.status_code == 403, refused.text
                assert refused.json()["error"] == "NotOrderOwner"
                assert "client id 9" in refused.json()["message"]
            assert sim.request_count("cancel_order") == 0
            assert sim.request_count("place_order") == 2
            await client.delete(f"/orders/{mine.json()['order_id']}")
        await theirs.cancel()
