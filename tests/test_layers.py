"""The house rules of ``docs/architecture.md``, checked on the source: layers, no cycles, sizes.

Every import counts: module level, inside functions, and under ``TYPE_CHECKING``. Importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those count too, except for the
packages the importer itself lives in (they are already running when it is imported).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import ibflow

PACKAGE = Path(ibflow.__file__).parent

# Bottom to top; a module may import its own layer and the layers below it.
RECORDS = 0
BORDER = 1
FEATURES = 2
SESSION = 3
FACES = 4
SIM = -1  # stands alone

_RECORD_MODULES = {
    "ibflow._client_ids",
    "ibflow._config",
    "ibflow._error_codes",
    "ibflow._errors",
    "ibflow._frames",
    "ibflow._log",
    "ibflow._names",
    "ibflow._periods",
    "ibflow._resample",
    "ibflow._schedule",
    "ibflow._stream",
    "ibflow._timeouts",
    "ibflow._version",
}
_FACE_MODULES = {
    "ibflow.cli",
    "ibflow.testing",
    "ibflow._doctor",
    "ibflow.__main__",
}
_MAX_LINES = 1000
_LINE_LIMIT_EXEMPT = {"ibflow.sim._layouts"}  # the simulator's wire-layout table


def _module_name(path: Path) -> str:
    parts = ["ibflow", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    if module == "ibflow.sim" or module.startswith("ibflow.sim."):
        return SIM
    if module in _RECORD_MODULES or module.startswith("ibflow._records"):
        return RECORDS
    if module.startswith("ibflow._ib"):
        return BORDER
    if module in (
        "ibflow",
        "ibflow._public",
        "ibflow._session",
        "ibflow._session_like",
        "ibflow._connect",
    ):
        return SESSION
    if module in _FACE_MODULES or module.startswith(("ibflow.bridge", "ibflow.cli.", "ibflow.hub")):
        return FACES
    return FEATURES


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every module of any package that ``module`` imports, resolved to absolute names."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from pkg import module`
                if f"{target}.{alias.name}" in MODULES:
                    yield f"{target}.{alias.name}"


def _edges(module: str) -> set[str]:
    """The ibflow modules that importing ``module`` runs first."""
    own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    found: set[str] = set()
    for target in _imports(module, MODULES[module]):
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in MODULES and name not in own_packages and name != module:
                found.add(name)
    return found


GRAPH = {module: _edges(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_package() -> None:
    assert "ibflow._session" in GRAPH
    assert "ibflow._core" in GRAPH["ibflow._session"]
    assert len(GRAPH) > 40


def test_no_import_cycle() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) != SIM))
def test_each_module_imports_only_its_layer_and_below(module: str) -> None:
    mine = layer(module)
    above = sorted(
        t for t in GRAPH[module] if layer(t) > mine or (layer(t) == SIM and mine < FACES)
    )
    assert above == [], f"{module} (layer {mine}) imports {above}"


def test_the_border_imports_only_records() -> None:
    for module in (m for m in MODULES if layer(m) == BORDER):
        outside = sorted(t for t in GRAPH[module] if layer(t) not in (RECORDS, BORDER))
        assert outside == [], (module, outside)


def test_faces_use_the_public_namespace() -> None:
    for module in (m for m in MODULES if layer(m) == FACES):
        private = sorted(t for t in GRAPH[module] if layer(t) in (BORDER, FEATURES))
        assert private == [], (module, private)


def test_the_simulator_stands_alone() -> None:
    for module in (m for m in MODULES if layer(m) == SIM):
        outside = sorted(t for t in GRAPH[module] if layer(t) != SIM)
        assert outside == [], (module, outside)


def test_only_the_border_imports_ib_async() -> None:
    for module, path in MODULES.items():
        if layer(module) == BORDER:
            continue
        third = {t.split(".")[0] for t in _imports(module, path)}
        assert not third & {"ib_async", "eventkit"}, module


def test_session_is_composed_not_inherited() -> None:
    assert ibflow.Session.__mro__ == (ibflow.Session, object)


def test_no_module_is_a_god_module() -> None:
    big = {
        module: n
        for module, path in MODULES.items()
        if module not in _LINE_LIMIT_EXEMPT
        and (n := len(path.read_text().splitlines())) > _MAX_LINES
    }
    assert big == {}
