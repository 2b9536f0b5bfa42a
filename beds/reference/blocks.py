"""The generated blocks a docs page can ask for, by name.

Layer: tooling. A page holds `<!-- beds:generated NAME -->` on a line of its own; the mkdocs hook
(docs/_hooks.py) replaces it with `render(NAME, project)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from beds.reference.cli_commands import cli_reference
from beds.reference.config_keys import config_reference, env_variables, roles_table
from beds.reference.error_codes import error_table, protocol_limits
from beds.reference.template_format import template_reference


def json_schemas(project: Path) -> str:
    """Links to the JSON Schemas in docs/schemas/, for pages in docs/reference/; "" when the
    folder is absent (another change generates it), so the page builds either way."""
    files = sorted((project / "docs/schemas").glob("*.json"))
    if not files:
        return ""
    links = ", ".join(f"[`{path.name}`](../schemas/{path.name})" for path in files)
    return f"JSON Schemas for editors (e.g. Even Better TOML / taplo): {links}."


BLOCKS: dict[str, Callable[[Path], str]] = {
    "config-keys": lambda project: config_reference(project / "config/beds.toml"),
    "config-env": lambda project: env_variables(sorted((project / "config").glob("*.toml"))),
    "roles": lambda project: roles_table(project / "config/beds.toml"),
    "cli": lambda _project: cli_reference(),
    "template-keys": lambda project: template_reference(project / "templates"),
    "error-codes": lambda _project: error_table(),
    "protocol-limits": lambda _project: protocol_limits(),
    "json-schemas": json_schemas,
}


def render(name: str, project: Path) -> str:
    """One generated block. Raises KeyError naming the known blocks for an unknown name."""
    if name not in BLOCKS:
        raise KeyError(f"no generated block {name!r}; known: {', '.join(sorted(BLOCKS))}")
    return BLOCKS[name](project)
