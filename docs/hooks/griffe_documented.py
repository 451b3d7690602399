"""Griffe extension: Session methods written ``@documented(docs.NAME)`` get ``NAME``'s text.

The site reads ibflow statically, and the longest Session docstrings live in
``ibflow/_session_docs.py`` (attached at import time by the decorator), so this extension
attaches them the same way when griffe visits the source.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import griffe

_DOCS = Path(__file__).resolve().parents[2] / "ibflow" / "_session_docs.py"
_DECORATOR = re.compile(r"documented\(docs\.(\w+)\)")


def _texts() -> dict[str, str]:
    texts = {}
    for node in ast.parse(_DOCS.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            texts[node.targets[0].id] = node.value.value
    return texts


class Documented(griffe.Extension):
    def __init__(self) -> None:
        self._texts = _texts()

    def on_function_instance(self, *, func: griffe.Function, agent: Any, **kwargs: Any) -> None:
        for decorator in func.decorators:
            match = _DECORATOR.fullmatch(str(decorator.value))
            if match:
                # Parsed as the loader parses every other docstring (style and options).
                func.docstring = griffe.Docstring(
                    self._texts[match[1]],
                    parent=func,
                    parser=agent.docstring_parser,
                    parser_options=agent.docstring_options,
                )
