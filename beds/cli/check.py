"""`beds templates check`: every problem with a role's templates, one line each.

Layer: interface (CLI). Offline first (files that do not load, duplicate names, names another
role owns, ops no broker serves, unknown datasources, what Node.build refuses), then, unless
--offline, each datasource's own check against the live database (routines, parameter counts,
view columns). A problem does not stop the check: everything found is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from beds.adapters import schema_tool
from beds.adapters.base import Adapter
from beds.adapters.schema import Problem
from beds.cli.commands import print_json
from beds.config import Settings
from beds.dispatch import adapters_for, assign_broker
from beds.errors import RequestError, TemplateError
from beds.templates import Template, TemplateRegistry, load_template
from beds.templates.names import clashes
from beds.templates.repeats import unexplained_repeats


def _problem(exc: TemplateError, path: Path | str) -> Problem:
    # TemplateError messages start with the file: keep it as `where`, as adapters' problems do.
    text, prefix = str(exc), f"{path}: "
    return Problem(str(path), text.removeprefix(prefix) if text.startswith(prefix) else text)


def offline_problems(settings: Settings, role: str) -> tuple[list[Template], list[Problem]]:
    """The templates that load cleanly, and every problem found without a database."""
    folder = settings.templates_dir(role)
    if not folder.is_dir():
        return [], [Problem(str(folder), "templates directory not found")]
    problems: list[Problem] = []
    loaded: dict[str, Template] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            template = load_template(path)
        except TemplateError as exc:
            problems.append(_problem(exc, path))
            continue
        loaded[template.name] = template   # one file per name: the loader ties name to file
    problems += [Problem(str(path), message)
                 for path, message in clashes(settings, role, loaded.values())]
    problems += [Problem(where, message, warning=True)
                 for where, message in unexplained_repeats(loaded.values())]
    for template in loaded.values():
        if template.datasource not in settings.datasources:
            known = ", ".join(sorted(settings.datasources)) or "(none)"
            problems.append(Problem(str(template.path), f"datasource: {template.datasource!r} "
                                    f"is not a [datasources.*] entry of the config; known: {known}"))
        for op in template.ops.values():
            try:
                assign_broker(template, op, settings.brokers)
            except TemplateError as exc:
                problems.append(_problem(exc, template.path))
    if all(p.warning for p in problems):   # what else the node refuses (statements, policies)
        from beds.node import Node

        try:
            Node.build(settings, role)
        except TemplateError as exc:
            problems.append(_problem(exc, folder))
    return list(loaded.values()), problems


async def database_problems(settings: Settings, templates: list[Template]) -> list[Problem]:
    registry = TemplateRegistry(t for t in templates if t.datasource in settings.datasources)
    problems: list[Problem] = []
    adapters: dict[str, Adapter] = adapters_for(settings, registry)
    for name, adapter in adapters.items():
        try:
            problems += await schema_tool(adapter).check([t for t in registry if t.datasource == name])
        except RequestError as exc:
            problems.append(Problem(f"datasource {name}", f"cannot check: {exc}: check that the "
                                    "database runs and that the datasource's dsn names the "
                                    "right host, user and password"))
        finally:
            await adapter.close()
    return problems


async def templates_check(settings: Settings, args: argparse.Namespace) -> int:
    role = args.templates_role or next(iter(settings.roles))
    settings.role(role)
    templates, problems = offline_problems(settings, role)
    if not args.offline:
        problems += await database_problems(settings, templates)
    errors = [p for p in problems if not p.warning]
    ops = sum(len(t.ops) for t in templates)
    summary = (f"{len(templates)} templates, {ops} ops checked"
               f"{' (offline)' if args.offline else ''}: {len(errors)} errors, "
               f"{len(problems) - len(errors)} warnings")
    if args.json:
        print_json({"ok": not errors, "role": role, "templates": len(templates), "ops": ops,
                    "offline": args.offline,
                    "problems": [{"where": p.where, "level": "warning" if p.warning else "error",
                                  "message": p.message} for p in problems]})
    else:
        for problem in problems:
            print(problem)
    print(summary, file=sys.stderr)
    return 1 if errors else 0
