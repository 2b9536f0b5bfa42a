"""No import cycle inside `beds`: dependencies point one way.

The graph is read from the source (Python `ast`), never by importing, and it holds every `import`
and `from ... import` statement of a module wherever it stands:
- at module level;
- inside a function (a deferred import is still a dependency: the four adapter <-> admin cycles
  this test was written against were all deferred);
- under `if TYPE_CHECKING:`. Such an import is no run-time cycle, but it is a dependency of the
  design all the same: types point the same way as code, so a module that needs a type from
  above it is in the wrong place (the warehouse policy's dataclass moved into templates/model.py
  for this reason).

`from beds.a import b` is an edge to `beds.a.b` when that is a module, else to `beds.a` (the
package's `__init__`). Importing `beds.a.b` also runs `beds/a/__init__.py`, but that implied edge
is not counted: a package `__init__` that re-exports its submodules would otherwise cycle with
every submodule. A submodule that imports its own package by name (`from beds.a import X`
inside `beds/a/b.py`) is an explicit edge and is counted. Imports by string
(`importlib.import_module("beds.adapters.mysql.adapter")`) are not statements and are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "beds"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every dotted name an import statement anywhere in `tree` reaches."""
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from beds.a import b`: the module beds.a.b, or a name of beds.a (resolved later)
            yield from (f"{source}.{alias.name}" for alias in node.names)


def import_graph(modules: dict[str, Path], root: str) -> dict[str, set[str]]:
    """module -> the modules of `root` it imports."""
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for name in imported_names(tree, module, path.name == "__init__.py"):
            if name == root or name.startswith(root + "."):
                target = resolve(name)
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module, as a path that
    starts and ends at the same module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
    return [path_through(graph, component) for component in components]


def path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    first = min(component)
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == first:
                    path = [node]
                    while path[-1] != first:
                        path.append(came_from[path[-1]])
                    return [first, *reversed(path[:-1]), first]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {first}")   # a component always has one


def test_beds_has_no_import_cycle() -> None:
    graph = import_graph(module_files(PACKAGE), "beds")
    found = [" -> ".join(cycle) for cycle in cycles(graph)]
    assert not found, "import cycles inside beds:\n  " + "\n  ".join(found)


def test_the_graph_holds_deferred_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg import a\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from .. import b\nfrom . import d\n")
    (package / "sub" / "d.py").write_text("import pkg.sub.c\n")
    graph = import_graph(module_files(package), "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.sub": set(),
                     "pkg.sub.c": {"pkg.b", "pkg.sub.d"}, "pkg.sub.d": {"pkg.sub.c"}}
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b", "pkg.a"],
                                     ["pkg.sub.c", "pkg.sub.d", "pkg.sub.c"]]
