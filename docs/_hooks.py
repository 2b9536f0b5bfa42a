"""mkdocs hook: fills the generated parts of the docs pages at build time, so they never go stale.

Layer: tooling (docs build only; mkdocs.yml `hooks:`). Two markers, each on a line of its own:

    <!-- beds:generated NAME -->   a reference table built from the code (beds/reference/blocks.py)
    <!-- beds:readme TITLE -->     the README's `## TITLE` section (README keeps the tables other
                                   issues require there; the site shows them without a copy)

An unknown name or a missing section fails the build.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from beds.reference import render

_MARKER_RE = re.compile(r"^<!-- beds:(generated|readme) ([^>]+?) -->$", re.MULTILINE)
_LINK_RE = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    project = Path(config.config_file_path).parent

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2).strip()
        try:
            if kind == "generated":
                return render(name, project)
            return readme_section(project / "README.md", name, page.file.src_uri)
        except (KeyError, ValueError) as exc:
            raise PluginError(f"{page.file.src_uri}: beds:{kind} {name}: {exc}") from exc

    return _MARKER_RE.sub(fill, markdown)


def readme_section(readme: Path, title: str, page_uri: str) -> str:
    """The README's `## title` section, headings one level down, links made page-relative."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ValueError(f"README.md has no '## {title}' section")
    body = re.sub(r"^(#{2,5}) ", r"#\1 ", match.group(1), flags=re.M)
    here = posixpath.dirname(page_uri)

    def relink(link: re.Match[str]) -> str:
        bang, label, target = link.groups()
        if target.startswith("docs/"):
            return f"{bang}[{label}]({posixpath.relpath(target[5:], here or '.')})"
        if "://" in target or target.startswith("#"):
            return link.group(0)
        # A repository file outside docs/: name it, since the site cannot serve it.
        return f"`{target}`" if bang else f"{label} (`{target}`)"

    return _LINK_RE.sub(relink, body).strip()
