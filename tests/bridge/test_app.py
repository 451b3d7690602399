"""How the app holds its session (owned through the lifespan, or borrowed), and what it imports."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import ibflow
import ibflow.bridge
from ibflow.bridge import _schemas, create_app
from ibflow.sim import Simulator
from ibflow.testing import eventually

from .conftest import API, serving


async def test_an_owned_session_connects_and_closes_with_the_app(sim: Simulator) -> None:
    app = create_app(host=sim.host, port=sim.port, client_id=5)
    assert sim.clients == []
    async with serving(app) as url, httpx.AsyncClient(base_url=url + API) as client:
        health = (await client.get("/health")).json()
        assert (health["state"], health["client_id"]) == ("ready", 5)
        assert [c.client_id for c in sim.clients] == [5]
    await eventually(lambda: sim.clients == [])


async def test_an_owned_session_takes_its_settings_from_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBFLOW_PORT", str(sim.port))
    monkeypatch.setenv("IBFLOW_CLIENT_ID", "6")
    monkeypatch.setenv("IBFLOW_READONLY", "1")
    async with serving(create_app()) as url, httpx.AsyncClient(base_url=url + API) as client:
        assert (await client.get("/health")).json()["client_id"] == 6
        order = {
            "contract": {"symbol": "AAPL"},
            "order": {"action": "BUY", "quantity": 1, "type": "MKT"},
        }
        response = await client.post("/orders", json=order, headers={"Idempotency-Key": "env"})
        assert response.status_code == 403


async def test_a_failed_connect_fails_the_startup_with_ibflows_error(sim: Simulator) -> None:
    port = sim.port
    await sim.aclose()  # nothing listens there any more
    app = create_app(host="127.0.0.1", port=port, client_id=7)
    # The lifespan itself, as uvicorn runs it (uvicorn then logs the error and exits).
    with pytest.raises(ibflow.ConnectRefused, match="nothing is listening"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_borrowed_session_stays_open_after_the_app_stops(
    session: ibflow.Session,
) -> None:
    async with serving(create_app(session)):
        pass
    assert session.state is ibflow.ConnectionState.READY


async def test_the_app_mounts_inside_another_with_a_session_it_is_given(
    session: ibflow.Session,
) -> None:
    host = FastAPI()
    host.mount("/ib", create_app(session))
    async with serving(host) as url, httpx.AsyncClient(base_url=url + "/ib" + API) as client:
        positions = (await client.get("/positions")).json()
        assert any(p["contract"]["symbol"] == "AAPL" for p in positions)
        order = {
            "contract": {"symbol": "AAPL"},
            "order": {"action": "BUY", "quantity": 1, "type": "MKT"},
        }
        placed = await client.post("/orders", json=order, headers={"Idempotency-Key": "m"})
        assert "/ib/api/v1/orders/" in placed.headers["Location"]


async def test_a_mounted_app_without_a_session_answers_503() -> None:
    host = FastAPI()
    host.mount("/ib", create_app(port=1))  # a mounted app's lifespan never runs
    async with serving(host) as url, httpx.AsyncClient(base_url=url + "/ib" + API) as client:
        response = await client.get("/positions")
        assert response.status_code == 503
        assert "pass a session you connect yourself" in response.json()["message"]
        assert (await client.get("/health")).status_code == 503


def test_a_session_and_settings_together_are_refused(session: ibflow.Session) -> None:
    with pytest.raises(ibflow.InvalidRequest, match="not both"):
        create_app(session, port=7497)
    with pytest.raises(ibflow.InvalidRequest, match="not both"):
        create_app(factory=ibflow.Session, readonly=True)
    with pytest.raises(ibflow.InvalidRequest, match="max_keys"):
        create_app(max_idempotency_keys=0)


def test_the_openapi_document_names_every_endpoint() -> None:
    paths = create_app(port=1).openapi()["paths"]
    assert {
        "/health",
        "/accounts",
        "/positions",
        "/account/values",
        "/account/summary",
        "/portfolio",
        "/pnl",
        "/contracts",
        "/contracts/qualify",
        "/quote",
        "/history",
        "/orders",
        "/orders/completed",
        "/orders/what-if",
        "/orders/{order_id}",
        "/fills",
    } <= set(paths)
    assert set(paths["/orders/{order_id}"]) == {"get", "put", "delete"}


@pytest.mark.parametrize(
    ("record", "model"),
    [
        (ibflow.Contract, _schemas.Contract),
        (ibflow.Position, _schemas.Position),
        (ibflow.AccountValue, _schemas.AccountValue),
        (ibflow.AccountSummary, _schemas.AccountSummary),
        (ibflow.PortfolioItem, _schemas.PortfolioItem),
        (ibflow.PnL, _schemas.PnL),
        (ibflow.ContractDetails, _schemas.ContractDetails),
        (ibflow.Quote, _schemas.Quote),
        (ibflow.Bar, _schemas.Bar),
        (ibflow.Commission, _schemas.Commission),
        (ibflow.Fill, _schemas.Fill),
        (ibflow.Order, _schemas.Order),
        (ibflow.OrderSnapshot, _schemas.OrderSnapshot),
        (ibflow.OrderPreview, _schemas.OrderPreview),
        (ibflow.OrderEvent, _schemas.OrderEvent),
        (ibflow.SessionStatistics, _schemas.SessionStatistics),
        (ibflow.Gap, _schemas.GapMessage),
    ],
)
def test_every_model_mirrors_every_field_of_its_record(record: type, model: type) -> None:
    assert {f.name for f in dataclasses.fields(record)} <= set(model.model_fields)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_ibflow_does_not_import_fastapi() -> None:
    result = run_python(
        "import sys, ibflow; bad = {'fastapi', 'uvicorn', 'starlette'} & set(sys.modules); "
        "assert not bad, bad"
    )
    assert result.returncode == 0, result.stderr


def test_without_fastapi_the_bridge_says_what_to_install() -> None:
    result = run_python(
        "import sys; sys.modules['fastapi'] = None\n"
        "try:\n    import ibflow.bridge\nexcept ImportError as exc:\n    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "ibflow[bridge]"' in result.stdout


def test_the_bridge_uses_only_ibflows_public_api() -> None:
    package = Path(ibflow.bridge.__file__).parent
    imported = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    assert not {m for m in imported if m.startswith(("ib_async", "ibflow._"))}
    assert {m for m in imported if m.startswith("ibflow")} == {"ibflow", "ibflow.sim"}


def test_the_bridge_reports_tws_settings_from_the_sessions_own_variables() -> None:
    from ibflow._config import ENV_NAMES
    from ibflow.bridge._settings import _TWS_ENV

    assert {name: ENV_NAMES[name] for name in _TWS_ENV} == dict(_TWS_ENV)
