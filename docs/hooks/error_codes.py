"""MkDocs hook: the IB error-code reference page, generated from ibflow's own table.

The page ``error-codes.md`` holds the prose and a marker; at build time the marker becomes a
table with one row per code in ``CODES``, so the documentation cannot drift from what the code
does. Each exception class is written as a cross-reference into the API reference, so a class
that is not public (or not documented there) fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- error-code-table -->"
PAGE = "error-codes.md"

# Document the ibflow of this checkout, not whichever one happens to be installed.
_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "—"


def error_code_table() -> str:
    """The Markdown table of every code ibflow's error-code table knows, in code order."""
    from ibflow._error_codes import CODES

    lines = [
        "| code | severity | raised as | meaning | what to do |",
        "|---:|---|---|---|---|",
    ]
    for code in sorted(CODES):
        row = CODES[code]
        name = row.error_class.__name__
        lines.append(
            f"| {code} | `{row.severity.value}` | [`{name}`][ibflow.{name}] "
            f"| {_cell(row.summary)} | {_cell(row.hint)} |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the marker on the error-code page with the generated table."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker: the table has nowhere to go")
    return markdown.replace(MARKER, error_code_table())
