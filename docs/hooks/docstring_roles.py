"""MkDocs hook: Sphinx-style roles in docstrings (``:class:`Quote```) as links or plain code.

ibflow's docstrings name other objects the Sphinx way, which Markdown shows as a stray
``:class:`` before the code. This turns a role naming a public object (``Quote``,
``~ibflow.Stream``, ``ibflow.sim.Simulator``) into a cross-reference to its entry in the API
reference, and drops the role prefix where the name cannot be resolved on its own (a bare
method name such as ``wait_filled``).
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(class|meth|func|attr|exc|data|obj|mod):<code>(~?)([\w.]+)</code>")


def _link(match: re.Match[str]) -> str:
    role, tilde, name = match.groups()
    if role in ("meth", "attr") and "." not in name:
        return f"<code>{name}</code>"  # relative to a class the HTML does not name
    identifier = name if name.startswith("ibflow.") else f"ibflow.{name}"
    shown = name.rsplit(".", 1)[-1] if tilde else name
    # ``optional``: a name that is not in the reference stays plain code, with no warning.
    return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Rewrite the roles on pages of the API reference."""
    if not page.file.src_uri.startswith("reference/"):
        return html
    return ROLE.sub(_link, html)
