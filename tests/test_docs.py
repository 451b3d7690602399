"""The documentation site builds with ``mkdocs build --strict``, and its reference is complete.

A broken cross-reference, a page missing from the navigation, a dead link or an API name that
no longer exists makes the strict build fail, so CI catches documentation that drifted from the
code. The build reads ibflow statically from this checkout and fetches nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ibflow
from ibflow._error_codes import CODES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, "PYTHONPATH": path, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _directives() -> list[str]:
    return [name for page in REFERENCE.glob("*.md") for name in DIRECTIVE.findall(page.read_text())]


def test_reference_documents_every_public_name_by_its_public_path() -> None:
    documented = _directives()
    private = [name for name in documented if any(p.startswith("_") for p in name.split("."))]
    assert private == [], "the API reference must use public paths only"
    flat = {name.removeprefix("ibflow.") for name in documented if name.count(".") == 1}
    assert set(ibflow.__all__) - {"__version__"} - flat == set()


def test_strict_build_renders_every_documented_object(site: Path) -> None:
    html = "".join(page.read_text() for page in (site / "reference").glob("*/index.html"))
    anchors = set(re.findall(r'id="(ibflow[\w.]*)"', html))
    assert set(_directives()) - anchors == set()
    # Members inherited from the feature mixins are part of the Session's reference.
    assert {"ibflow.Session.place", "ibflow.Session.quotes", "ibflow.Session.history"} <= anchors


def test_error_code_page_is_generated_from_the_code_table(site: Path) -> None:
    html = (site / "error-codes" / "index.html").read_text()
    rows = re.findall(r"<tr>\s*<td[^>]*>(\d+)</td>(.*?)</tr>", html, re.DOTALL)
    assert {int(code) for code, _ in rows} == set(CODES)
    for code, cells in rows:
        info = CODES[int(code)]
        assert f"<code>{info.severity.value}</code>" in cells
        # The class is a working link into the API reference, not plain text.
        assert f'href="../reference/errors/#ibflow.{info.error_class.__name__}"' in cells


# Pages whose complete programs (a ``python`` block that calls ``asyncio.run``) are executed, so
# every example the guide promises "runs as it is" does, against the embedded simulator.
PROGRAM_PAGES = ("getting-started.md", "streams.md", "orders.md", "history.md")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks(page: str, language: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # A child pytest is its own run: it must not think it is one of this run's xdist workers.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**env, "PYTHONPATH": path, "IBFLOW_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.timeout(120)
def test_guide_programs_run_as_written(tmp_path: Path) -> None:
    programs = {
        f"{page} #{n}": body
        for page in PROGRAM_PAGES
        for n, body in enumerate(_blocks(page, "python"))
        if "asyncio.run(" in body
    }
    assert len(programs) == len(PROGRAM_PAGES)
    # Each program on its own, all at once: they only share the machine's loopback.
    running = {
        name: subprocess.Popen(
            [sys.executable, "-c", body],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, body in programs.items()
    }
    failed = {}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=100)
        if proc.returncode != 0 or "Traceback" in err:
            failed[name] = out + err
    assert failed == {}


@pytest.mark.timeout(120)
def test_testing_guide_example_passes_in_a_fresh_project(tmp_path: Path) -> None:
    [config] = _blocks("testing.md", "toml")[:1]
    [tests] = [body for body in _blocks("testing.md", "python") if "def test_" in body][:1]
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "test_my_bot.py").write_text(tests)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
