"""Small Markdown helpers shared by the generated blocks.

Layer: tooling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from beds.reference.recording import KeyDoc


def cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(value: Any) -> str:
    """A TOML-looking literal in backticks (`true`, `"x"`, `[]`, `1.5`)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, tuple | list):
        text = json.dumps(list(value))
    elif isinstance(value, str):
        text = json.dumps(value)
    else:
        text = str(value)
    return f"`{cell(text)}`"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    # Cells arrive formatted (code spans included); only line breaks would end a row.
    lines += ["| " + " | ".join(c.replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def default_of(doc: KeyDoc, shown: dict[str, str]) -> str:
    if doc.path in shown:
        return shown[doc.path]
    if len(doc.defaults_seen) > 1:   # computed from the table's name: say how, not one example
        raise ValueError(f"{doc.path}: the loader's default varies ({doc.defaults_seen[:3]}...); "
                         "describe it in the page's DEFAULT_SHOWN")
    if doc.required:
        return "**required**"
    return code(doc.default)
