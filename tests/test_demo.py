"""``ibflow demo`` runs end to end on the embedded simulator, as a newcomer's first command."""

from __future__ import annotations

import os
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


def test_demo_rejects_bad_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from ibflow.cli import main; main()", "demo", "--seconds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("ibflow: error: ")
