"""The TWS Bridge Server contract over real HTTP: a client written for that server works as is."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import ibflow
from ibflow.bridge import create_app
from ibflow.sim import Simulator
from ibflow.testing import eventually, session_for

from .conftest import API, MARKET_OPEN, serving

BAR_KEYS = {"date", "open", "high", "low", "close", "volume", "wap", "count", "time"}
ANSWER_KEYS = {"success", "symbol", "period", "bars", "count", "error", "error_type", "code"}


def bars_body(**changes: Any) -> dict[str, Any]:
    body = {
        "symbol": "AAPL",
        "period": "5m",
        "duration": "3600 S",
        "what": "TRADES",
        "session": "rth",
        "include_forming": False,
        "end_datetime": "",
    }
    return body | changes


@pytest.fixture
async def market() -> AsyncIterator[Simulator]:
    """A simulator whose clock reads 2027-01-13 10:02:30 New York time at the start."""
    origin = time.monotonic()
    start = MARKET_OPEN + 150
    async with Simulator(port=0, speed=100, clock=lambda: start + time.monotonic() - origin) as s:
        yield s


@pytest.fixture
async def owned(market: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """The API of an app that builds and owns its session (as ``ibflow bridge`` does)."""
    app = create_app(host=market.host, port=market.port, client_id=3)
    async with serving(app) as url, httpx.AsyncClient(base_url=url + API, timeout=10) as client:
        yield client


# -- health ---------------------------------------------------------------------------------------


async def test_health_has_the_contract_fields(owned: httpx.AsyncClient, market: Simulator) -> None:
    response = await owned.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["connected"] is True
    assert (health["tws_host"], health["tws_port"]) == (market.host, market.port)
    assert 0 <= health["uptime_seconds"] < 60
    assert health["version"] == ibflow.__version__
    assert (health["state"], health["client_id"]) == ("ready", 3)  # and ibflow's own


# -- bars -----------------------------------------------------------------------------------------


async def test_bars_answer_in_the_contracts_shape(owned: httpx.AsyncClient) -> None:
    response = await owned.post("/bars", json=bars_body())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == ANSWER_KEYS
    assert (answer["success"], answer["symbol"], answer["period"]) == (True, "AAPL", "5m")
    assert (answer["error"], answer["error_type"], answer["code"]) == (None, None, None)
    bars = answer["bars"]
    assert answer["count"] == len(bars) == 6  # 09:30 … 09:55; 10:00 is still forming
    assert all(set(bar) == BAR_KEYS for bar in bars)
    assert [bar["date"] for bar in bars[:2]] == ["20270113 09:30:00", "20270113 09:35:00"]
    assert bars[-1]["date"] == "20270113 09:55:00"
    assert bars[0]["time"] == "2027-01-13T09:30:00-05:00"
    assert all(b["low"] <= b["open"] <= b["high"] and b["volume"] > 0 for b in bars)


async def test_include_forming_appends_the_bar_in_progress(owned: httpx.AsyncClient) -> None:
    complete = (await owned.post("/bars", json=bars_body())).json()["bars"]
    answer = (await owned.post("/bars", json=bars_body(include_forming=True))).json()
    assert answer["count"] == len(complete) + 1
    assert answer["bars"][:-1] == complete
    assert answer["bars"][-1]["date"] == "20270113 10:00:00"


@pytest.mark.parametrize(
    "end",
    [
        "20270112 16:00:00",  # the exchange's time, as the TWS Bridge Server took it
        "20270112 16:00:00 US/Eastern",
        "20270112-21:00:00",  # IB's UTC form
        "2027-01-12T21:00:00Z",
        "2027-01-12T16:00:00-05:00",
        "2027-01-12 16:00:00",  # ISO without an offset: the exchange's time too
    ],
)
async def test_end_datetime_takes_ibs_form_and_iso_8601(owned: httpx.AsyncClient, end: str) -> None:
    response = await owned.post(
        "/bars", json=bars_body(period="1h", duration="1 D", end_datetime=end)
    )
    assert response.status_code == 200, response.text
    dates = [bar["date"] for bar in response.json()["bars"]]
    assert dates[0] == "20270112 09:30:00"
    assert dates[-1] == "20270112 15:00:00"


async def test_daily_bars_are_dated_by_day(owned: httpx.AsyncClient) -> None:
    answer = (await owned.post("/bars", json=bars_body(period="1d", duration="5 D"))).json()
    assert answer["success"] is True
    assert all(re.fullmatch(r"\d{8}", bar["date"]) for bar in answer["bars"])
    assert answer["bars"][-1]["date"] == "20270112"  # today's daily bar is still forming


async def test_a_bad_body_is_422_naming_the_field_in_the_same_shape(
    owned: httpx.AsyncClient,
) -> None:
    body = bars_body()
    del body["period"]
    response = await owned.post("/bars", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert set(answer) == ANSWER_KEYS
    assert (answer["success"], answer["bars"], answer["count"]) == (False, [], 0)
    assert (answer["symbol"], answer["error_type"]) == ("AAPL", "InvalidRequest")
    assert answer["error"] == "period: Field required"

    weekend = await owned.post("/bars", json=bars_body(session="weekend"))
    assert weekend.status_code == 422
    assert weekend.json()["error"].startswith("session: ")


@pytest.mark.parametrize(
    ("change", "status", "error_type", "says"),
    [
        ({"period": "7x"}, 422, "InvalidRequest", "unknown period '7x'"),
        ({"end_datetime": "yesterday"}, 422, "InvalidRequest", "end_datetime must be"),
        ({"end_datetime": "20270112 16:00:00 Mars/Olympus"}, 422, "InvalidRequest", "time zone"),
        ({"symbol": "ZZZZ"}, 404, "ContractNotFound", "ZZZZ"),
    ],
)
async def test_refusals_keep_the_shape_with_the_right_status(
    owned: httpx.AsyncClient, change: dict[str, str], status: int, error_type: str, says: str
) -> None:
    response = await owned.post("/bars", json=bars_body(**change))
    assert response.status_code == status
    answer = response.json()
    assert (answer["success"], answer["count"], answer["error_type"]) == (False, 0, error_type)
    assert says in answer["error"]


async def test_bars_answer_503_with_the_reason_when_tws_is_down(market: Simulator) -> None:
    async with (
        session_for(market, reconnect=None) as session,
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        market.drop_connections()
        await eventually(lambda: session.state is ibflow.ConnectionState.CLOSED)
        response = await client.post("/bars", json=bars_body())
        assert response.status_code == 503
        answer = response.json()
        assert (answer["success"], answer["error_type"]) == (False, "ConnectionLost")
        assert "connection" in answer["error"].lower()
        health = await client.get("/health")
        assert health.status_code == 503
        assert (health.json()["status"], health.json()["connected"]) == ("degraded", False)


# -- connect and disconnect -----------------------------------------------------------------------


async def test_disconnect_then_connect_builds_a_new_session(
    owned: httpx.AsyncClient, market: Simulator
) -> None:
    already = await owned.post("/connect")
    assert already.json() == {
        "success": True,
        "message": "Already connected to TWS",
        "connected": True,
        "state": "ready",
    }
    gone = await owned.post("/disconnect")
    assert (gone.status_code, gone.json()["success"], gone.json()["connected"]) == (
        200,
        True,
        False,
    )
    await eventually(lambda: market.clients == [])
    refused = await owned.get("/positions")
    assert refused.status_code == 503
    assert "POST /api/v1/connect" in refused.json()["message"]
    health = (await owned.get("/health")).json()
    assert (health["connected"], health["state"]) == (False, "closed")
    assert (await owned.post("/disconnect")).json()["message"] == "Not connected to TWS"

    back = await owned.post("/connect")
    assert back.json()["message"] == "Connected to TWS"
    assert [c.client_id for c in market.clients] == [3]
    assert (await owned.get("/positions")).status_code == 200


async def test_connect_answers_503_with_the_reason_when_tws_is_down(
    owned: httpx.AsyncClient, market: Simulator
) -> None:
    await owned.post("/disconnect")
    await market.aclose()
    response = await owned.post("/connect")
    assert response.status_code == 503
    assert response.json()["error"] == "ConnectRefused"
    assert "nothing is listening" in response.json()["message"]


async def test_a_borrowed_session_is_never_disconnected(client: httpx.AsyncClient) -> None:
    response = await client.post("/disconnect")
    assert (response.status_code, response.json()["error"]) == (409, "SessionNotOwned")
    assert (await client.post("/connect")).json()["connected"] is True
    assert (await client.get("/accounts")).status_code == 200


# -- the old paths --------------------------------------------------------------------------------


async def test_old_paths_redirect_with_308(base_url: str, sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        moved = await client.get("/positions", params={"account": "DU1234567"})
        assert moved.status_code == 308
        assert moved.headers["Location"].endswith("/api/v1/positions?account=DU1234567")
        assert (await client.get("/orders/12")).headers["Location"].endswith("/api/v1/orders/12")
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=True) as client:
        order = {
            "contract": {"symbol": "AAPL"},
            "order": {"action": "BUY", "quantity": 1, "type": "MKT"},
        }
        placed = await client.post("/orders", json=order, headers={"Idempotency-Key": "old"})
        assert placed.status_code == 201, placed.text  # method, body and key kept
        assert (await client.get("/health")).json()["status"] == "ok"
    assert sim.request_count("place_order") == 1


async def test_a_mounted_apps_redirect_keeps_its_prefix(session: ibflow.Session) -> None:
    host = FastAPI()
    host.mount("/ib", create_app(session))
    async with serving(host) as url, httpx.AsyncClient(base_url=url) as client:
        moved = await client.get("/ib/positions")
        assert moved.status_code == 308
        assert moved.headers["Location"] == f"{url}/ib/api/v1/positions"


# -- the environment ------------------------------------------------------------------------------


async def test_tws_environment_names_configure_the_session(
    market: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWS_HOST", "127.0.0.1")
    monkeypatch.setenv("TWS_PORT", str(market.port))
    monkeypatch.setenv("TWS_CLIENT_ID", "9")
    monkeypatch.setenv("TWS_MARKET_DATA_TYPE", "3")
    async with (
        serving(create_app()) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        health = (await client.get("/health")).json()
        assert (health["tws_port"], health["client_id"]) == (market.port, 9)
        quote = (await client.get("/quote", params={"symbol": "AAPL"})).json()
        assert quote["market_data_type"] == "delayed"
        # A new session after a disconnect gets the same data type.
        await client.post("/disconnect")
        await client.post("/connect")
        quote = (await client.get("/quote", params={"symbol": "MSFT"})).json()
        assert quote["market_data_type"] == "delayed"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TWS_MARKET_DATA_TYPE", "7"), ("TWS_PORT", "abc"), ("IBFLOW_BRIDGE_MAX_BODY", "-1")],
)
def test_a_bad_variable_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ibflow.ConfigError, match=variable) as refused:
        create_app()
    assert refused.value.variable == variable


async def test_connect_while_reconnecting_answers_503_saying_so(
    client: httpx.AsyncClient, session: ibflow.Session, sim: Simulator
) -> None:
    await sim.aclose()
    await eventually(lambda: session.state is ibflow.ConnectionState.RECONNECTING)
    response = await client.post("/connect")
    assert response.status_code == 503
    assert response.json()["error"] == "ConnectionLost"
    assert "reconnecting" in response.json()["message"]
