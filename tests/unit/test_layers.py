"""Every module of `beds` says in its docstring which layer it belongs to, in a fixed vocabulary,
on a line of its own: `Layer: <word>`, then whatever the module wants to add (what it must not
import, whether it is pure, ...).

    foundation      imports nothing above it: errors, config, table, log, protocol
    domain          what a DBA declares and a request means: templates, idempotency keys
    application     the node at work: dispatch, the consumer and its supervision, reload, services
    infrastructure  the outside world behind a seam: adapters and drivers, AMQP links, topology
    operations      the operations plane: control, events, metrics, logs, the admin node
    interface       what people and services call: the CLI, the client, the public API
    tooling         run by developers and DBAs, never by a serving node: scaffold, docs, test kit
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("foundation", "domain", "application", "infrastructure", "operations", "interface",
          "tooling")
_LAYER_RE = re.compile(r"^Layer: ([a-z]+)\b", re.MULTILINE)


def layer_of(path: Path) -> str | None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = _LAYER_RE.search(doc)
    return match.group(1) if match else None


def misfiled(package: Path) -> dict[str, str | None]:
    """Module path -> what its Layer line says, for every module whose line is missing or names
    a layer outside LAYERS."""
    found = {str(path.relative_to(package.parent)): layer_of(path)
             for path in sorted(package.rglob("*.py"))}
    return {path: layer for path, layer in found.items() if layer not in LAYERS}


def test_every_module_names_its_layer_from_the_list() -> None:
    assert misfiled(ROOT / "beds") == {}


def test_a_missing_or_unknown_layer_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "good.py").write_text('"""Fine.\n\nLayer: domain. Pure."""\n')
    (tmp_path / "pkg" / "odd.py").write_text('"""Odd.\n\nLayer: admin (operations)."""\n')
    (tmp_path / "pkg" / "bare.py").write_text("x = 1\n")
    assert misfiled(tmp_path / "pkg") == {"pkg/odd.py": "admin", "pkg/bare.py": None}
