"""Running the ``ibflow`` command line in-process, as its console script does.

``invoke`` calls the same entry as the ``ibflow`` script (so errors go through the one-line
handler) inside click's CliRunner isolation, which captures stdout and stderr and feeds stdin.
Commands run their own event loop: call ``invoke`` from a synchronous test, or through
``asyncio.to_thread`` from an async test that serves a simulator meanwhile.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ibflow._config import ENV_NAMES
from ibflow.cli._app import run

IBFLOW = [sys.executable, "-m", "ibflow"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        """The one stderr line of a failure (and asserts there is exactly one)."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("ibflow: error: "), self.err
        assert "Traceback" not in self.err
        return lines[0]


def invoke(*args: str, input: str | None = None) -> Result:
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            run(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - run() always exits
            code = 0
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


@pytest.fixture(autouse=True)
def _clean_ib_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IBFLOW_CACHE_DIR", str(tmp_path / "cache"))
    for names in ENV_NAMES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
