"""``ibflow doctor`` against healthy and faulty simulators: each failure named correctly."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Callable

import pytest

import ibflow
from ibflow import _doctor
from ibflow.sim import Simulator
from ibflow.testing import eventually

MakeSession = Callable[..., ibflow.Session]


def _statuses(report: _doctor.DoctorReport) -> dict[str, str]:
    return {step.name: step.status for step in report.steps}


def _step(report: _doctor.DoctorReport, name: str) -> _doctor.Step:
    return next(step for step in report.steps if step.name == name)


async def test_healthy_gateway_passes_every_step(sim: Simulator) -> None:
    report = await _doctor.run_checks(sim.host, sim.port, None, timeout=2.0)
    assert report.ok
    assert set(_statuses(report).values()) == {"ok"}
    assert "server version 178" in _step(report, "handshake").detail
    assert "DU***567 (paper)" in _step(report, "accounts").detail
    assert "2104" in _step(report, "farms").detail
    assert _step(report, "quote").detail.startswith("live:")
    # It left with a clean disconnect.
    await eventually(lambda: not sim.clients)


async def test_main_prints_json_and_exits_zero(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() runs its own event loop, as the CLI does; the simulator keeps serving here.
    code = await asyncio.to_thread(_doctor.main, sim.host, sim.port, None, True)
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    assert data["port"] == sim.port
    assert [s["name"] for s in data["steps"]] == [
        "config",
        "port",
        "handshake",
        "client_id",
        "accounts",
        "account_data",
        "farms",
        "quote",
    ]


async def test_main_prints_a_table_and_exits_non_zero_on_a_closed_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = await asyncio.to_thread(_doctor.main, "127.0.0.1", port, None, False)
    assert code != 0
    out = capsys.readouterr().out
    assert "port open" in out
    assert "FAIL" in out
    assert "some checks failed" in out


async def test_closed_port_fails_the_port_step() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await _doctor.run_checks("127.0.0.1", port, None, timeout=1.0)
    assert not report.ok
    statuses = _statuses(report)
    assert statuses["config"] == "ok"
    assert statuses["port"] == "failed"
    assert all(statuses[name] == "skipped" for name in ("handshake", "client_id", "quote"))
    assert "7497" in _step(report, "port").fix


async def test_silent_handshake_fails_the_handshake_step(sim: Simulator) -> None:
    sim.silence_handshake(True)
    report = await _doctor.run_checks(sim.host, sim.port, None, timeout=0.3)
    statuses = _statuses(report)
    assert statuses["port"] == "ok"
    assert statuses["handshake"] == "failed"
    assert "Socket Clients" in _step(report, "handshake").fix


async def test_accept_then_close_is_named_a_relay_without_gateway(sim: Simulator) -> None:
    sim.accept_then_close(True)
    report = await _doctor.run_checks(sim.host, sim.port, None, timeout=1.0)
    statuses = _statuses(report)
    assert statuses["port"] == "ok"
    assert statuses["handshake"] == "failed"
    assert "relay" in _step(report, "handshake").fix
    assert statuses["client_id"] == "skipped"


async def test_taken_client_id_fails_the_client_id_step(
    sim: Simulator, make_session: MakeSession
) -> None:
    await make_session(client_id=5).connect()
    report = await _doctor.run_checks(sim.host, sim.port, 5, timeout=1.0)
    statuses = _statuses(report)
    assert statuses["handshake"] == "ok"
    assert statuses["client_id"] == "failed"
    assert "326" in _step(report, "client_id").detail


async def test_missing_account_data_fails_the_account_data_step(sim: Simulator) -> None:
    sim.ignore("positions", True)
    report = await _doctor.run_checks(sim.host, sim.port, None, timeout=0.3)
    statuses = _statuses(report)
    assert statuses["accounts"] == "ok"
    assert statuses["account_data"] == "failed"
    assert "positions" in _step(report, "account_data").fix


async def test_market_data_permission_error_fails_the_quote_step(sim: Simulator) -> None:
    sim.fail_next("mkt_data", 354, "Requested market data is not subscribed.")
    report = await _doctor.run_checks(sim.host, sim.port, None, timeout=1.0)
    quote = _step(report, "quote")
    assert quote.status == "failed"
    assert "354" in quote.detail
    assert "subscribe" in quote.fix
    assert not report.ok


async def test_bad_environment_fails_the_config_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_PORT", "nope")
    report = await _doctor.run_checks(None, None, None)
    assert _statuses(report)["config"] == "failed"
    assert "IB_PORT" in _step(report, "config").fix


async def test_plain_text_output_without_rich(
    sim: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.accept_then_close(True)
    monkeypatch.setitem(sys.modules, "rich.console", None)  # as if rich were not installed
    code = await asyncio.to_thread(_doctor.main, sim.host, sim.port, None, False)
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"ibflow doctor: {sim.host}:{sim.port}"
    assert any(line.strip().startswith("[  ok] port open") for line in out)
    assert any(line.strip().startswith("[FAIL] API handshake answered") for line in out)
    assert any(line.strip().startswith("fix: the port accepts connections") for line in out)
    assert out[-1] == "some checks failed"
