"""ibflow's exceptions become HTTP statuses with one JSON error shape a client can act on."""

from __future__ import annotations

import httpx
import pytest

import ibflow
from ibflow.bridge import create_app
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .conftest import API, serving

MARKET_BUY = {
    "contract": {"symbol": "AAPL"},
    "order": {"action": "BUY", "quantity": 1, "type": "MKT"},
}
PACING = "Historical Market Data Service error message:Historical data request pacing violation"


def assert_error(response: httpx.Response, status: int, error: str, code: int | None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["error"], body["code"]) == (error, code)
    assert body["message"]
    return body


async def test_unknown_symbol_is_404(client: httpx.AsyncClient) -> None:
    body = assert_error(
        await client.get("/quote", params={"symbol": "ZZZZ"}), 404, "ContractNotFound", 200
    )
    assert "ZZZZ" in body["message"]


async def test_ambiguous_contract_is_409_with_the_candidates(client: httpx.AsyncClient) -> None:
    response = await client.get("/contracts/qualify", params={"symbol": "AAPL", "sec_type": "OPT"})
    body = assert_error(response, 409, "AmbiguousContract", 200)
    assert len(body["candidates"]) == 30
    assert {c["sec_type"] for c in body["candidates"]} == {"OPT"}
    assert all(c["con_id"] for c in body["candidates"])


async def test_bad_period_is_422_with_ibflows_message(client: httpx.AsyncClient) -> None:
    response = await client.get("/history", params={"symbol": "AAPL", "period": "7x"})
    body = assert_error(response, 422, "InvalidRequest", None)
    assert "unknown period '7x'" in body["message"]
    assert '"5m"' in body["message"]  # it lists what works


async def test_badly_typed_query_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/contracts", params={"symbol": "AAPL", "con_id": "abc"})
    body = assert_error(response, 422, "InvalidRequest", None)
    assert body["message"].startswith("query.con_id: ")


async def test_bad_order_body_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    body = {
        "contract": {"symbol": "AAPL"},
        "order": {"action": "HOLD", "quantity": 1, "type": "MKT"},
    }
    response = await client.post("/orders", json=body, headers={"Idempotency-Key": "k"})
    assert assert_error(response, 422, "InvalidRequest", None)["message"].startswith(
        "order.action: "
    )
    typo = {"contract": {"symbol": "AAPL"}, "order": {**MARKET_BUY["order"], "limt_price": 1}}
    response = await client.post("/orders", json=typo, headers={"Idempotency-Key": "k"})
    assert "limt_price" in assert_error(response, 422, "InvalidRequest", None)["message"]


async def test_unknown_route_has_the_same_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nowhere"), 404, "NotFound", None)
    assert_error(await client.patch("/positions"), 405, "MethodNotAllowed", None)


async def test_read_only_session_refuses_orders_with_403(sim: Simulator) -> None:
    async with (
        session_for(sim, readonly=True) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        response = await client.post("/orders", json=MARKET_BUY, headers={"Idempotency-Key": "ro"})
        assert "read-only" in assert_error(response, 403, "SafetyError", None)["message"]
        assert (await client.get("/positions")).status_code == 200  # reads still work
    assert sim.request_count("place_order") == 0


async def test_order_rejected_by_ib_is_502(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.fail_next("place_order", 201, "Order rejected - reason:no trading permissions")
    response = await client.post("/orders", json=MARKET_BUY, headers={"Idempotency-Key": "rej"})
    assert "no trading permissions" in assert_error(response, 502, "OrderRejected", 201)["message"]


async def test_pacing_violation_is_429_with_retry_after(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.fail_next("historical_data", 162, PACING)
    response = await client.get("/history", params={"symbol": "AAPL", "period": "1h"})
    assert_error(response, 429, "PacingViolation", 162)
    assert int(response.headers["Retry-After"]) >= 1


async def test_no_answer_in_time_is_504(sim: Simulator) -> None:
    async with (
        session_for(sim, timeout=0.3) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        sim.stall(True)
        try:
            response = await client.get("/positions")
        finally:
            sim.stall(False)
        assert_error(response, 504, "RequestTimeout", None)


async def test_lost_connection_is_503_and_health_says_so(sim: Simulator) -> None:
    async with (
        session_for(sim, reconnect=None) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        sim.drop_connections()
        await eventually(lambda: session.state is ibflow.ConnectionState.CLOSED)
        assert_error(await client.get("/positions"), 503, "ConnectionLost", None)
        health = await client.get("/health")
        assert health.status_code == 503
        assert (health.json()["state"], health.json()["ready"]) == ("closed", False)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ibflow.AmbiguousContract(200, "x"), 409),
        (ibflow.ContractNotFound(200, "x"), 404),
        (ibflow.PacingViolation(162, "x"), 429),
        (ibflow.SafetyError("x"), 403),
        (ibflow.ConfigError("x", variable="IBFLOW_PORT"), 422),
        (ibflow.RequestTimeout("x"), 504),
        (ibflow.SyncTimeout("x", part="positions"), 504),
        (ibflow.ConnectionLost("x"), 503),
        (ibflow.ConnectRefused("x"), 503),
        (ibflow.SessionClosedError("x"), 503),
        (ibflow.SlowConsumer("x", stream="s", buffer=1), 503),
        (ibflow.MarketDataError(354, "x"), 502),
        (ibflow.OrderRejected(201, "x"), 502),
        (ibflow.RequestError(999, "x"), 502),
        (ibflow.IBFlowError("x"), 502),
    ],
)
def test_every_error_class_has_its_status(exc: ibflow.IBFlowError, status: int) -> None:
    from ibflow.bridge._errors import status_for

    assert status_for(exc) == status


async def test_a_bug_answers_500_in_the_same_shape(session: ibflow.Session) -> None:
    app = create_app(session)

    @app.get(API + "/broken")
    async def broken() -> None:
        raise ZeroDivisionError("division by zero")

    async with serving(app) as url, httpx.AsyncClient(base_url=url + API) as client:
        response = await client.get("/broken")
    assert_error(response, 500, "ZeroDivisionError", None)


async def test_every_422_has_one_shape(client: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "shape"}
    answers = [
        await client.get("/history", params={"symbol": "AAPL", "period": "7x"}),  # ibflow
        await client.get("/contracts", params={"symbol": "AAPL", "con_id": "abc"}),  # FastAPI
        await client.post("/orders", json={"contract": {}, "order": {}}, headers=key),
        await client.post("/orders", content=b"{not json", headers=key),
        await client.post("/orders", json=MARKET_BUY, headers=key, params={"wait": 99}),
        await client.get("/positions", params={"account": "DU0000000"}),
        await client.put("/orders/1", json={"quantity": "many"}),
    ]
    for response in answers:
        assert response.status_code == 422, response.request.url
        body = response.json()
        assert set(body) == {"error", "code", "message"}, body
        assert body["error"] == "InvalidRequest"
        assert body["code"] is None
