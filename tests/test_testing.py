"""ibflow.testing, the kit users test their bots with: the README's example project as written,
and the helpers' promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ibflow.testing import ENV_PREFIXES, eventually

ROOT = Path(__file__).resolve().parent.parent
SECTION = "### Testing your own code against it"
# A fenced block whose first line is a comment naming a file: ```toml\n# pyproject.toml\n...```
BLOCK = re.compile(r"```[a-z]+\n# (?P<name>[\w.]+)\n(?P<body>.*?)```", re.DOTALL)


def readme_project() -> dict[str, str]:
    """The files the README's testing section shows, by name, exactly as written there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(SECTION) :]
    section = section[: section.index("\n## ")]
    return {m["name"]: f"# {m['name']}\n{m['body']}" for m in BLOCK.finditer(section)}


def test_the_readme_shows_a_whole_project() -> None:
    assert set(readme_project()) == {"pyproject.toml", "test_my_bot.py"}


def test_the_readme_project_passes_as_written_without_warnings(tmp_path: Path) -> None:
    project = tmp_path / "my_bot"
    project.mkdir()
    for name, text in readme_project().items():
        (project / name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT)
    # Settings in the user's shell must not reach the tests: each of these would break them.
    env |= {"IBFLOW_ACCOUNT": "U9999999", "IBFLOW_READONLY": "1", "TWS_PORT": "1"}
    done = subprocess.run(
        # -W error: also the warnings Python hides by default (pytest-asyncio's are deprecations).
        [sys.executable, "-W", "error", "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "2 passed" in output, output
    assert "warning" not in output.lower(), output
    # pytest-asyncio's default mode: the tests ran without an asyncio marker.
    assert re.search(r"mode=(Mode\.)?strict", output, re.IGNORECASE), output


async def test_eventually_returns_once_the_predicate_holds() -> None:
    calls: list[int] = []
    await eventually(lambda: calls.append(1) or len(calls) >= 3)
    assert len(calls) == 3


async def test_eventually_names_the_predicate_it_gave_up_on() -> None:
    with pytest.raises(TimeoutError, match=r"<lambda> \(test_testing\.py:\d+\) still false"):
        await eventually(lambda: False, timeout=0.02)


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), True, "1"])
async def test_eventually_refuses_a_timeout_that_is_not_a_positive_number(timeout: object) -> None:
    with pytest.raises(ValueError, match="positive number"):
        await eventually(lambda: True, timeout=timeout)  # type: ignore[arg-type]


def test_the_suite_runs_in_a_clean_environment(clean_ib_env: Path) -> None:
    leaked = [n for n in os.environ if n.startswith(ENV_PREFIXES) and n != "IBFLOW_CACHE_DIR"]
    assert leaked in ([], ["IBFLOW_FAST_RECEIVE"])
    assert os.environ["IBFLOW_CACHE_DIR"] == str(clean_ib_env)
    assert not clean_ib_env.exists()  # created by the first download that caches
