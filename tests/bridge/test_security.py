"""The bridge's guards over real HTTP and WebSockets: Host, Origin, token, body size, CORS."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import ibflow
from ibflow.bridge import BridgeSettings, create_app, serve
from ibflow.sim import Simulator

from .conftest import API, serving

TOKEN = "s3cret-token-for-tests"
ORDER = {
    "contract": {"symbol": "AAPL"},
    "order": {"action": "BUY", "quantity": 1, "type": "MKT"},
}


def ws(url: str, path: str) -> str:
    return "ws" + url.removeprefix("http") + path


@pytest.fixture
async def guarded(session: ibflow.Session) -> AsyncIterator[str]:
    """A bridge with a token and one allowed cross-site origin."""
    settings = BridgeSettings(token=TOKEN, cors_origins=("http://app.example",))
    async with serving(create_app(session, settings=settings)) as url:
        yield url


# -- Host (DNS rebinding) -------------------------------------------------------------------------


async def test_a_foreign_host_header_is_refused_and_places_nothing(
    base_url: str, sim: Simulator
) -> None:
    port = base_url.rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=base_url + API) as client:
        evil = await client.post(
            "/orders",
            json=ORDER,
            headers={"Host": f"evil.example:{port}", "Idempotency-Key": "rebind"},
        )
        assert evil.status_code == 400
        for name in ("localhost", "127.0.0.1"):
            ok = await client.get("/accounts", headers={"Host": f"{name}:{port}"})
            assert ok.status_code == 200, name
    assert sim.request_count("place_order") == 0
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws(base_url, "/ws/orders"), additional_headers={"Host": f"evil.example:{port}"}
        ):
            pass
    assert refused.value.response.status_code == 400


async def test_allowed_hosts_are_configurable(session: ibflow.Session) -> None:
    settings = BridgeSettings(allowed_hosts=("bridge.internal",))
    async with serving(create_app(session, settings=settings)) as url:
        async with httpx.AsyncClient(base_url=url + API) as client:
            assert (await client.get("/accounts")).status_code == 400  # 127.0.0.1 is not listed
            listed = await client.get("/accounts", headers={"Host": "bridge.internal"})
            assert listed.status_code == 200


# -- Origin on WebSockets -------------------------------------------------------------------------


async def test_a_websocket_from_another_site_is_refused(base_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws(base_url, "/ws/orders"), origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    assert b"OriginNotAllowed" in refused.value.response.body


async def test_same_origin_and_originless_websockets_are_let_in(base_url: str) -> None:
    async with connect(ws(base_url, "/ws/orders"), origin=base_url):  # type: ignore[arg-type]
        pass
    async with connect(ws(base_url, "/ws/orders")):  # a program: no Origin at all
        pass


async def test_a_configured_origin_may_open_websockets(guarded: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(
        ws(guarded, "/ws/orders"),
        origin="http://app.example",  # type: ignore[arg-type]
        additional_headers=auth,
    ):
        pass


# -- the token ------------------------------------------------------------------------------------


async def test_order_routes_need_the_token(guarded: str, sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=guarded + API) as client:
        missing = await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "t1"})
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert missing.json()["error"] == "Unauthorized"
        wrong = await client.post(
            "/orders",
            json=ORDER,
            headers={"Idempotency-Key": "t1", "Authorization": "Bearer nope"},
        )
        assert (wrong.status_code, wrong.json()["error"]) == (403, "Forbidden")
        for response in (
            await client.delete("/orders/1"),
            await client.put("/orders/1", json={"quantity": 2}),
            await client.post("/connect"),
            await client.post("/disconnect"),
        ):
            assert response.status_code == 401, response.request.url
        assert sim.request_count("place_order") == 0

        assert (await client.get("/positions")).status_code == 200  # reads stay open
        placed = await client.post(
            "/orders",
            json=ORDER,
            headers={"Idempotency-Key": "t1", "Authorization": f"Bearer {TOKEN}"},
        )
        assert placed.status_code == 201, placed.text
    assert sim.request_count("place_order") == 1


async def test_the_token_is_checked_before_the_body(guarded: str) -> None:
    async with httpx.AsyncClient(base_url=guarded + API) as client:
        response = await client.post("/orders", json={"nonsense": 1})
    assert response.status_code == 401


async def test_websockets_need_the_token(guarded: str) -> None:
    with pytest.raises(InvalidStatus) as missing:
        async with connect(ws(guarded, "/ws/quotes?symbols=AAPL")):
            pass
    assert missing.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as wrong:
        async with connect(
            ws(guarded, "/ws/quotes?symbols=AAPL"),
            additional_headers={"Authorization": "Bearer nope"},
        ):
            pass
    assert wrong.value.response.status_code == 403
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(ws(guarded, "/ws/quotes?symbols=AAPL"), additional_headers=auth) as sock:
        assert '"type":"quote"' in str(await sock.recv())


async def test_the_token_comes_from_the_environment(
    session: ibflow.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBFLOW_BRIDGE_TOKEN", TOKEN)
    async with (
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        response = await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "e"})
        assert response.status_code == 401


async def test_no_serving_beyond_loopback_without_a_token() -> None:
    with pytest.raises(ibflow.ConfigError, match="IBFLOW_BRIDGE_TOKEN") as refused:
        await serve(host="0.0.0.0", port=0, settings=BridgeSettings())
    assert refused.value.variable == "IBFLOW_BRIDGE_TOKEN"


def test_the_command_refuses_a_public_host_without_a_token_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "IBFLOW_BRIDGE_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-c", "from ibflow.cli import main; main()", "bridge", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "HOST": "0.0.0.0"},
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ibflow: error: refusing to serve on 0.0.0.0")
    assert "IBFLOW_BRIDGE_TOKEN" in line


# -- body size ------------------------------------------------------------------------------------


async def test_a_body_over_the_cap_is_413(session: ibflow.Session, sim: Simulator) -> None:
    settings = BridgeSettings(max_body_bytes=1024)
    async with (
        serving(create_app(session, settings=settings)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        declared = await client.post(
            "/orders",
            content=b"{" + b" " * 5000 + b"}",
            headers={"Idempotency-Key": "big", "Content-Type": "application/json"},
        )
        assert declared.status_code == 413
        assert declared.json()["code"] is None
        assert "1024 bytes" in declared.json()["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(10):
                yield b" " * 500
                await asyncio.sleep(0)

        streamed = await client.post(
            "/orders",
            content=chunks(),
            headers={"Idempotency-Key": "big2", "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"] == declared.json()["error"]
        small = await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "small"})
        assert small.status_code == 201
    assert sim.request_count("place_order") == 1


# -- CORS -----------------------------------------------------------------------------------------

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


async def test_cors_is_off_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/orders", headers={"Origin": "http://app.example", **PREFLIGHT}
    )
    assert "access-control-allow-origin" not in response.headers
    read = await client.get("/accounts", headers={"Origin": "http://app.example"})
    assert "access-control-allow-origin" not in read.headers


@pytest.mark.parametrize("variable", ["IBFLOW_BRIDGE_CORS_ORIGINS", "CORS_ORIGINS"])
async def test_cors_origins_from_the_environment_answer_the_preflight(
    session: ibflow.Session, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://app.example, http://other.example/")
    async with (
        serving(create_app(session)) as url,
        httpx.AsyncClient(base_url=url + API) as client,
    ):
        allowed = await client.options(
            "/orders", headers={"Origin": "http://app.example", **PREFLIGHT}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://app.example"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
        other = await client.get("/accounts", headers={"Origin": "http://other.example"})
        assert other.headers["access-control-allow-origin"] == "http://other.example"
        refused = await client.options(
            "/orders", headers={"Origin": "http://evil.example", **PREFLIGHT}
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        async with connect(ws(url, "/ws/orders"), origin="http://app.example"):  # type: ignore[arg-type]
            pass
