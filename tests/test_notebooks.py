"""Every notebook in ``notebooks/`` runs top to bottom against the embedded simulator.

Notebooks use Jupyter's top-level ``await`` (no nest_asyncio, no loop patching), so this runner
compiles each code cell with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaits it inside one running
loop, sharing one namespace across cells — which is exactly what IPython does.
"""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELLS = {path: json.loads(path.read_text())["cells"] for path in NOTEBOOKS}


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
async def test_notebook_runs(path: Path) -> None:
    cells = CELLS[path]
    namespace: dict[str, object] = {"__name__": "__notebook__"}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        code = compile(
            source, f"{path.name}[{index}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = types.FunctionType(code, namespace)()
        if result is not None:  # a cell with top-level await compiles to a coroutine
            await result
