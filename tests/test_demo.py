"""``ibflow demo`` runs end to end on the embedded simulator, as a newcomer's first command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest


@pytest.mark.timeout(120)
def test_demo_runs_every_step_on_the_embedded_simulator() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from ibflow.cli import main; main()", "demo", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "embedded simulator on 127.0.0.1:" in out
    assert "qualified AAPL: con_id 265598" in out
    assert "the subscription was cancelled on leaving the block" in out
    assert "final status Filled" in out
    assert "hourly bars" in out
    assert "the repeat came from the local cache" in out
    assert "Traceback" not in result.stderr
    # The order rests below the market, is modified across the ask, then fills.
    rests = re.search(r"order (\d+): BUY 10 limit (\d+\.\d\d), .* it rests", out)
    assert rests is not None, out
    modified = re.search(rf"order {rests[1]}: modified to limit (\d+\.\d\d), above the ask", out)
    assert modified is not None, out
    filled = re.search(r"filled 10 @ (\d+\.\d\d) ", out)
    assert filled is not None, out
    assert rests.start() < modified.start() < filled.start()
    assert float(rests[2]) < float(filled[1]) <= float(modified[1])
    # Human output is rounded: prices to the tick, money to cents; no float drift.
    assert not re.search(r"\d\.\d{5,}", out), out
    assert result.stderr == ""


def test_demo_without_a_tws_is_one_line_and_exit_1() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "ibflow", "demo", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"ibflow: error: nothing is listening on 127.0.0.1:{port}: is TWS or IB Gateway running "
        "with the API enabled? Default ports: paper 7497 (TWS) / 4002 (Gateway), live 7496 (TWS) "
        "/ 4001 (Gateway)\n"
    )
    assert result.stdout == ""


def test_demo_rejects_bad_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from ibflow.cli import main; main()", "demo", "--seconds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("ibflow: error: ")
