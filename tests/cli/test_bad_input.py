"""Every bad input ends in one ``ibflow: error: …`` line and its documented exit code."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from .conftest import IBFLOW, invoke


def closed_port() -> int:
    with socket.socket() as probe:  # nothing listens on it once closed
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("positions", "--bogus"),
        ("--port", "abc", "positions"),
        ("--port", "0", "positions"),
        ("--client-id", "-1", "positions"),
        ("--sim", "--port", "4002", "positions"),
        ("quote",),
        ("--sim", "quote", "AA$PL", "--once"),
        ("--sim", "bars", "AAPL", "--period", "7m"),
        ("--sim", "bars", "AAPL", "--duration", "yesterday"),
        ("--sim", "bars", "AAPL", "--what", "GOSSIP"),
        ("--sim", "bars", "AAPL", "--out", "bars.txt"),
        ("--sim", "bars", "AAPL", "--out", "/no/such/dir/bars.csv"),
        ("--sim", "cancel"),
        ("--sim", "cancel", "5", "--all"),
        ("--sim", "cancel", "0"),
        ("--json", "demo"),
        ("--port", "4002", "sim"),
        ("--sim", "doctor"),
    ],
)
def test_bad_input_exits_2(args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.code == 2, result
    assert result.error_line


@pytest.mark.parametrize(
    "args",
    [
        ("--sim", "quote", "NOSUCH", "--once"),
        ("--sim", "bars", "NOSUCH"),
        ("--sim", "cancel", "12345", "--yes"),
    ],
)
def test_not_found_exits_3(args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.code == 3, result
    assert "NOSUCH" in result.error_line or "no open order 12345" in result.error_line


@pytest.mark.parametrize(
    "command", [("positions",), ("account",), ("orders",), ("quote", "AAPL"), ("demo",)]
)
def test_nothing_listening_exits_1(command: tuple[str, ...]) -> None:
    port = str(closed_port())
    result = invoke(*command, "--port", port)
    assert result.code == 1, result
    assert f"nothing is listening on 127.0.0.1:{port}" in result.error_line


def test_csv_without_pandas_exits_4(tmp_path: object) -> None:
    # A subprocess where pandas cannot be imported, as with only the cli extra installed.
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "from ibflow.cli import main\n"
        "sys.argv = ['ibflow', '--sim', 'bars', 'AAPL', '--out', 'x.csv']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip() == (
        "ibflow: error: --out needs pandas: pip install 'ibflow[pandas]' "
        "(or print the bars without --out)"
    )


def test_python_dash_m_and_the_help_exit_0() -> None:
    result = subprocess.run([*IBFLOW, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("quote", "bars", "positions", "account", "orders", "cancel", "demo"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
