"""Every GET endpoint answers with the simulator's real data, as JSON a non-Python client reads."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

import ibflow
from ibflow.sim import Simulator

ACCOUNT = "DU1234567"  # the default scenario's account


async def test_health_reports_a_ready_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["state"] == "ready"
    assert health["ready"] is True
    assert health["server_version"] == 178
    assert health["accounts"] == [ACCOUNT]
    assert health["is_paper"] is True
    assert health["client_id"] == 1
    assert health["statistics"]["connects"] == 1
    assert set(health["statistics"]["time_in_state"]) == {s.value for s in ibflow.ConnectionState}


async def test_accounts(client: httpx.AsyncClient) -> None:
    assert (await client.get("/accounts")).json() == [ACCOUNT]


async def test_positions_are_the_scenarios(client: httpx.AsyncClient) -> None:
    positions = (await client.get("/positions")).json()
    by_name = {p["contract"]["display_name"]: p for p in positions}
    aapl = by_name["AAPL"]
    assert aapl["quantity"] == 100
    assert aapl["avg_cost"] == 180
    assert aapl["account"] == ACCOUNT
    assert aapl["contract"]["sec_type"] == "STK"  # enums travel as their values
    assert aapl["contract"]["con_id"] == 265598
    assert by_name["MSFT"]["quantity"] == 50
    assert by_name["AAPL 20270115 230C"]["contract"]["right"] == "C"


async def test_positions_of_an_unknown_account_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/positions", params={"account": "DU0000000"})
    assert response.status_code == 422
    assert response.json()["error"] == "InvalidRequest"
    assert "not managed by this login" in response.json()["message"]


async def test_account_values_summary_portfolio_and_pnl(client: httpx.AsyncClient) -> None:
    values = (await client.get("/account/values", params={"account": ACCOUNT})).json()
    net = next(v for v in values if v["tag"] == "NetLiquidation" and v["currency"] == "USD")
    assert net["number"] == pytest.approx(float(net["value"]))

    summary = (await client.get("/account/summary")).json()
    assert summary["account"] == ACCOUNT
    assert summary["currency"] == "USD"
    assert summary["net_liquidation"] > 1_000_000 * 0.9
    assert summary["tags"]["NetLiquidation"]

    portfolio = (await client.get("/portfolio")).json()
    aapl = next(p for p in portfolio if p["contract"]["symbol"] == "AAPL" and p["quantity"] == 100)
    assert aapl["market_price"] > 0

    pnl = (await client.get("/pnl", params={"account": ACCOUNT})).json()
    assert pnl["account"] == ACCOUNT
    assert pnl["unrealized"] is not None


async def test_contracts_lists_details_and_qualify_names_one(client: httpx.AsyncClient) -> None:
    details = (await client.get("/contracts", params={"symbol": "aapl"})).json()
    assert [d["contract"]["con_id"] for d in details] == [265598]
    assert details[0]["long_name"] == "APPLE INC"
    assert details[0]["min_tick"] == 0.01

    forex = await client.get("/contracts/qualify", params={"symbol": "EUR.USD", "sec_type": "cash"})
    assert forex.status_code == 200
    assert forex.json()["display_name"] == "EUR.USD"
    assert forex.json()["exchange"] == "IDEALPRO"

    by_id = (await client.get("/contracts/qualify", params={"con_id": 272093})).json()
    assert by_id["symbol"] == "MSFT"


async def test_quote_is_one_snapshot(client: httpx.AsyncClient) -> None:
    quote = (await client.get("/quote", params={"symbol": "AAPL"})).json()
    assert quote["contract"]["con_id"] == 265598
    assert quote["bid"] < quote["ask"]
    assert quote["midpoint"] == pytest.approx((quote["bid"] + quote["ask"]) / 2)
    assert quote["market_data_type"] == "live"
    assert datetime.fromisoformat(quote["time"]).utcoffset() is not None


async def test_history_returns_bars_with_offsets(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/history",
        params={"symbol": "AAPL", "period": "1h", "duration": "2 D", "end": "2027-01-13T21:00:00Z"},
    )
    assert response.status_code == 200, response.text
    bars = response.json()
    assert bars
    times = [datetime.fromisoformat(b["time"]) for b in bars]
    assert times == sorted(times)
    assert all(t.utcoffset() is not None for t in times)  # the exchange's zone, with its offset
    assert all(b["low"] <= b["close"] <= b["high"] for b in bars)


async def test_orders_completed_orders_and_fills_start_empty_then_fill(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    assert (await client.get("/orders")).json() == []
    assert (await client.get("/fills")).json() == []
    placed = await client.post(
        "/orders",
        json={
            "contract": {"symbol": "MSFT"},
            "order": {"side": "BUY", "quantity": 5, "order_type": "MKT"},
        },
        headers={"Idempotency-Key": "reads-1"},
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    completed = (await client.get("/orders/completed", params={"api_only": True})).json()
    assert [o["order_id"] for o in completed] == [order_id]
    assert completed[0]["status"] == "Filled"
    fills = (await client.get("/fills", params={"since": "2000-01-01T00:00:00+00:00"})).json()
    assert [f["order_id"] for f in fills] == [order_id]
    assert fills[0]["side"] == "BUY"
    assert fills[0]["quantity"] == 5
